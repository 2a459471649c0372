/**
 * @file Patch embeddings: images → CNN (ONNX, onnxruntime-node) → two intermediate maps → local aggregation →
 * one bag of M = H×W patches × D dims per image. The only module that imports `onnxruntime-node` (lazily).
 *
 * The two layers are named by the user; this module appends them to the graph's outputs itself (the model's own
 * outputs are dropped, so onnxruntime prunes the unused head). A layer name is either an exact tensor name
 * (a node output, e.g. `block_6_expand_relu` in the embedded MobileNetV2) or a module scope such as `layer2`
 * of a torchvision export (`/layer2/…` node names): the scope's last node output is used.
 * Decoding (sharp, libuv pool) of batch i+1 runs while batch i is inferred (in a worker thread, see
 * `inference.ts`: onnxruntime-node runs synchronously on its calling thread) and batch i−1 aggregated.
 * @module pipeline/features
 */
import { readFileSync, existsSync, statSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import type { BackboneSpec, FeatureBank, FeatureOptions, ImageInput, PooledFeatures, Progress, Stage } from './types.js';
import { KernelError } from '../errors.js';
import { checkMaxImageBytes, DEFAULT_FIT, DEFAULT_MAX_IMAGE_BYTES, decodeImage, defaultResize, imageName, readImageBytes, toNCHW, type Fit } from './image.js';
import { type FeatureMap, type LayerNorm } from './aggregate.js';
import { appendAggregation, PATCH_OUTPUTS } from './batch-features.js';
import type { PatchSpec } from './patch-spec.js';
import { FeatureCache, makeDir, sha256Hex, type FeatureConfig } from './cache.js';
import { DiskBags } from './bank-store.js';
import { checkProjectionBasis, CovarianceAccumulator, PCA_ITERATIONS, PCA_SAMPLE_IMAGES, pcaSample, principalSubspace, projectionBasis, type ProjectionBasis } from './pca.js';
import { cacheRoot, embeddedBackbone, prepareModel } from '../models/index.js';
import { createInference, type InferenceEngine } from './inference.js';
import { maxThreads } from '../../bindings/select.js';
import { int8Model, int8Key } from '../models/int8.js';
import { abortError, throwIfAborted } from './context.js';

const { onnx } = onnxProto;

/** ImageNet mean/std (torchvision), the default normalisation for a user-supplied ONNX model. */
export const IMAGENET_MEAN: [number, number, number] = [0.485, 0.456, 0.406];
/** See {@link IMAGENET_MEAN}. */
export const IMAGENET_STD: [number, number, number] = [0.229, 0.224, 0.225];
/** Strides (relative to the input) the two feature layers must have. */
export const REQUIRED_STRIDES: readonly [number, number] = [8, 16];
/** Describes the aggregation (part of the feature-cache key). */
export const AGGREGATION = 'avgpool3x3/s1/p1/count_include_pad + bilinear(align_corners=false) coarse→fine + concat(fine,coarse)';
/** Default per-layer normalisation ({@link FeatureOptions.layerNorm}); chosen by `benches/evaluate.mjs` on both sets. */
export const DEFAULT_LAYER_NORM: LayerNorm = 'l2';
export { DEFAULT_FIT };
/** Default projection dimension ({@link FeatureOptions.projectDim}): the set's top principal subspace (`pca.ts`). */
export const DEFAULT_PROJECT_DIM = 256;

/** The aggregation description (feature-cache key) for given post-processing options and projection basis. */
export function aggregationKey(layerNorm: LayerNorm, dIn: number, basis?: ProjectionBasis): string {
  let s = AGGREGATION;
  if (layerNorm !== 'none') s += ` + per-layer ${layerNorm}`;
  if (basis) s += ` + projection ${dIn}→${basis.dOut} (basis ${basis.key}; f32 sgemm)`;
  return s;
}

/** A fully resolved backbone. */
export interface ResolvedBackbone {
  /** The embedded backbone's id (`'keras:resnet50'`, `'nsfwjs:…'`), else the absolute model path. */
  id: string;
  modelPath: string;
  modelSha256: string;
  layers: [string, string];
  inputSize: number;
  resize: number;
  fit: Fit;
  mean: [number, number, number];
  std: [number, number, number];
  /** `'fp32'`, or `'int8'` (the quantised fast mode, see `BackboneSpec.precision`). */
  precision: 'fp32' | 'int8';
}

/** Where embedded models are cached and how their download is reported ({@link resolveBackbone}, {@link openBackbone}). */
export interface ModelCacheOptions {
  /** Folder of converted models. @default `<cacheRoot()>/models` */
  modelDir?: string;
  /** Download progress (bytes) of a model fetched on first use. */
  onDownload?: (done: number, total: number) => void;
}

/**
 * Resolves a {@link BackboneSpec}: `'default'` or an embedded id prepares the embedded model (downloading and
 * converting it on first use), anything else is an ONNX file path.
 * @throws {KernelError} `ERR_MODEL` if the path does not exist or layers are missing for a custom model, or the
 * download fails; `ERR_CACHE` if the model cache cannot be written
 */
export async function resolveBackbone(spec: BackboneSpec = {}, cache: ModelCacheOptions = {}): Promise<ResolvedBackbone> {
  const precision = spec.precision ?? 'fp32';
  if (precision !== 'fp32' && precision !== 'int8') throw new RangeError(`precision: expected 'fp32' or 'int8', got ${JSON.stringify(precision)}`);
  const emb = embeddedBackbone(spec.model);
  if (emb) {
    const p = await prepareModel(emb, { cacheDir: cache.modelDir, onDownload: cache.onDownload });
    const inputSize = spec.inputSize ?? emb.inputSize;
    return {
      id: emb.id, modelPath: p.path, modelSha256: p.sha256, layers: spec.layers ?? emb.layers, inputSize,
      resize: spec.resize ?? (spec.inputSize ? defaultResize(inputSize) : emb.resize), fit: spec.fit ?? DEFAULT_FIT,
      mean: spec.mean ?? emb.mean, std: spec.std ?? emb.std, precision,
    };
  }
  const modelPath = path.resolve(spec.model!);
  if (!existsSync(modelPath) || !statSync(modelPath).isFile()) {
    throw new KernelError('ERR_MODEL', `model file not found: ${modelPath} (BackboneSpec.model must be 'default', an embedded id or an .onnx path)`);
  }
  if (!spec.layers) {
    throw new KernelError('ERR_MODEL', `${modelPath}: BackboneSpec.layers is required for a custom model (two layer names, stride 8 and stride 16, e.g. ['layer2','layer3'])`);
  }
  const inputSize = spec.inputSize ?? 224;
  return {
    id: modelPath, modelPath, modelSha256: '', layers: spec.layers, inputSize,
    resize: spec.resize ?? defaultResize(inputSize), fit: spec.fit ?? DEFAULT_FIT, mean: spec.mean ?? IMAGENET_MEAN, std: spec.std ?? IMAGENET_STD,
    precision,
  };
}

/** An open backbone: an onnxruntime session that outputs the two feature maps. */
export interface BackboneSession {
  backbone: ResolvedBackbone;
  /** The session, in a worker thread when possible (`engine.where`). */
  engine: InferenceEngine;
  inputName: string;
  /** Tensor names of the finer (stride 8) and coarser (stride 16) maps. */
  fine: string;
  coarse: string;
  /** [C, H, W] of each map at the configured input size. */
  fineShape: [number, number, number];
  coarseShape: [number, number, number];
  threads: number;
  /**
   * Runs a batch `[n,3,S,S]` and returns the two maps (the caller may reuse `input` at once). An abort of `signal`
   * rejects with `ERR_ABORTED` immediately; a batch already running in the worker finishes there and is dropped,
   * a queued one is cancelled (see `inference.ts`).
   */
  run(input: Float32Array, n: number, signal?: AbortSignal): Promise<{ fine: FeatureMap; coarse: FeatureMap }>;
  /**
   * Runs a batch and returns its images' patch embeddings (`n × m × d`, see `batch-features.ts`; `spec.fine` and
   * `spec.coarse` are filled in), computed where the model runs — off the main thread with the worker.
   */
  features(input: Float32Array, n: number, spec: Omit<PatchSpec, 'fine' | 'coarse'>, signal?: AbortSignal): Promise<Float32Array>;
}

/**
 * Environment variable: `1` aggregates the patches in JS (`aggregate.ts`, in the inference worker) instead of in the
 * onnxruntime graph (`appendAggregation`, the default): the two give the same features up to float rounding; the
 * switch is for benchmarks (before/after) and the test that compares them. Read when a session is opened.
 */
export const JS_AGGREGATION_ENV = 'ANOMALY_CLUSTERING_JS_AGGREGATION';

const sessions = new Map<string, Promise<BackboneSession>>();

/** Releases all memoised sessions. */
export async function clearSessions(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  for (const p of all) {
    try { await (await p).engine.release(); } catch { /* already failed */ }
  }
}

/** Finds the tensor a layer name refers to: exact node output, else the last node output of the scope `name/`. */
function findLayer(graph: onnxProto.onnx.IGraphProto, layer: string): string | undefined {
  const nodes = graph.node ?? [];
  for (const n of nodes) if (n.output?.includes(layer)) return layer;
  const scopes = [`/${layer}/`, `${layer}/`];
  let hit: string | undefined;
  for (const n of nodes) {
    const nm = n.name ?? '';
    const out = n.output?.[0] ?? '';
    if (scopes.some((s) => nm.startsWith(s) || out.startsWith(s))) hit = out || hit;
  }
  return hit;
}

function candidateList(graph: onnxProto.onnx.IGraphProto): string {
  const outs = (graph.node ?? []).map((n) => n.output?.[0]).filter((s): s is string => !!s);
  const scopes = [...new Set((graph.node ?? []).map((n) => /^\/?([^/]+)\//.exec(n.name ?? '')?.[1]).filter((s): s is string => !!s))];
  const cap = 300;
  const list = outs.slice(0, cap).join(', ') + (outs.length > cap ? `, … and ${outs.length - cap} more` : '');
  return (scopes.length ? `scopes: ${scopes.join(', ')}; ` : '') + `node outputs: ${list}`;
}

/** Nearest power of two of `inputSize/size` (valid-padding nets such as InceptionV3 are not exact). */
export function strideOf(inputSize: number, size: number): number {
  return 2 ** Math.round(Math.log2(inputSize / size));
}

/**
 * Opens (memoised) an onnxruntime session whose outputs are the backbone's two feature layers, and probes their
 * shapes with one blank image.
 * @param checkStrides require the layers at strides 8 and 16 (the method's contract). @default true
 * @throws {KernelError} `ERR_MODEL` for a missing/invalid model, an unknown layer (lists candidates), wrong strides
 */
export async function openBackbone(spec: BackboneSpec = {}, threads = availableParallelism(), checkStrides = true, cache: ModelCacheOptions = {}): Promise<BackboneSession> {
  const bb = await resolveBackbone(spec, cache);
  const key = JSON.stringify([bb, threads, checkStrides, statSync(bb.modelPath).mtimeMs, process.env[JS_AGGREGATION_ENV] === '1']);
  let p = sessions.get(key);
  if (!p) {
    p = createSession(bb, threads, checkStrides);
    sessions.set(key, p);
    p.catch(() => sessions.delete(key));
  }
  return p;
}

async function createSession(bb: ResolvedBackbone, threads: number, checkStrides: boolean): Promise<BackboneSession> {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(bb.modelPath);
  } catch (e) {
    throw new KernelError('ERR_MODEL', `cannot read the model file ${bb.modelPath}`, { cause: e });
  }
  if (!bb.modelSha256) bb.modelSha256 = sha256Hex(bytes);
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    throw new KernelError('ERR_MODEL', `${bb.modelPath} is not an ONNX model (protobuf decoding failed: ${(e as Error).message})`, { cause: e });
  }
  const graph = model.graph;
  if (!graph || !graph.node?.length || !graph.input?.length) {
    throw new KernelError('ERR_MODEL', `${bb.modelPath} is not an ONNX model (no graph nodes or inputs)`);
  }
  const names = bb.layers.map((l) => {
    const t = findLayer(graph, l);
    if (!t) throw new KernelError('ERR_MODEL', `${bb.modelPath}: layer ${JSON.stringify(l)} not found. Candidates — ${candidateList(graph)}`);
    return t;
  });
  graph.output = names.map((name) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1 } } }));
  const net = bb.precision === 'int8' ? onnx.ModelProto.decode(int8Model(model, bb.modelSha256, names as [string, string], bb.modelPath)) : model;
  // The aggregation runs in the graph (assuming the first layer is the finer one; checked by the probe below).
  const inGraph = process.env[JS_AGGREGATION_ENV] !== '1' && appendAggregation(net, names[0]!, names[1]!);
  const modelBytes = onnx.ModelProto.encode(net).finish();
  let engine: InferenceEngine;
  try {
    engine = await createInference(modelBytes, {
      intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      // No busy-waiting worker threads: the machine is usually shared with sharp's decoders (and other work);
      // measured 2× faster under contention, equal when idle.
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    });
  } catch (e) {
    throw new KernelError('ERR_MODEL', `${bb.modelPath}: onnxruntime cannot load the model (${(e as Error).message})`, { cause: e });
  }
  const initNames = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputName = engine.inputNames.find((n) => !initNames.has(n)) ?? engine.inputNames[0]!;
  const S = bb.inputSize;
  const run = async (input: Float32Array, n: number, signal?: AbortSignal) => {
    const out = await engine.run(inputName, input, [n, 3, S, S], signal, names);
    const maps = names.map((nm) => {
      const t = out[nm]!;
      const dims = t.dims;
      if (dims.length !== 4) {
        throw new KernelError('ERR_MODEL', `${bb.modelPath}: layer ${nm} has shape [${dims.join(',')}], expected a 4-D NCHW feature map`);
      }
      return { data: t.data, n: dims[0]!, c: dims[1]!, h: dims[2]!, w: dims[3]! };
    });
    return maps as [FeatureMap, FeatureMap];
  };
  let probe: [FeatureMap, FeatureMap];
  try {
    probe = await run(new Float32Array(3 * S * S), 1);
  } catch (e) {
    if (e instanceof KernelError) throw e;
    throw new KernelError('ERR_MODEL', `${bb.modelPath}: inference on a 1×3×${S}×${S} input failed (${(e as Error).message})`, { cause: e });
  }
  const fineFirst = probe[0].h >= probe[1].h;
  const [f, c] = fineFirst ? probe : [probe[1], probe[0]];
  const [fn, cn] = fineFirst ? names : [names[1]!, names[0]!];
  const sf = strideOf(S, f.h), sc = strideOf(S, c.h);
  if (checkStrides && (sf !== REQUIRED_STRIDES[0] || sc !== REQUIRED_STRIDES[1])) {
    throw new KernelError('ERR_MODEL', `${bb.modelPath}: layers must be at strides ${REQUIRED_STRIDES.join(' and ')} of the ${S}×${S} input; ` +
      `found ${fn} [${f.c},${f.h},${f.w}] (stride ≈ ${(S / f.h).toFixed(1)}) and ${cn} [${c.c},${c.h},${c.w}] (stride ≈ ${(S / c.h).toFixed(1)})`);
  }
  const aggregated = inGraph && fineFirst;
  return {
    backbone: bb, engine, inputName, fine: fn!, coarse: cn!, threads,
    fineShape: [f.c, f.h, f.w], coarseShape: [c.c, c.h, c.w],
    run: async (input, n, signal) => {
      const [a, b] = await run(input, n, signal);
      return fineFirst ? { fine: a, coarse: b } : { fine: b, coarse: a };
    },
    features: (input, n, spec, signal) =>
      engine.runFeatures(inputName, input, [n, 3, S, S], { ...spec, fine: fn!, coarse: cn!, ...(aggregated ? { patches: PATCH_OUTPUTS[spec.layerNorm] } : {}) }, signal),
  };
}

/** Rejects as soon as `signal` aborts. */
function raceAbort<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(abortError(signal, 'feature extraction'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(signal, 'feature extraction'));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then((v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e) => { signal.removeEventListener('abort', onAbort); reject(e); });
  });
}

/** Default feature cache folder: `<cacheRoot()>/features` (see `cacheRoot` in models/index.ts; never the cwd). */
export function defaultFeatureCacheDir(env: Record<string, string | undefined> = process.env): string {
  return path.join(cacheRoot(env), 'features');
}

/**
 * Extracts the patch embeddings of images.
 * @param inputs image paths or `{name, data}` (any format sharp reads)
 * @param options see {@link FeatureOptions}; defaults: embedded backbone, batchSize 8, threads = cores, cache on
 * @returns the bags, size `n*m*d`, in input order (skipped images left out)
 * @throws {KernelError} `ERR_IMAGE` (a bad image, unless `skipBad`), `ERR_MODEL` (model/layers), `ERR_ABORTED`
 * @throws {RangeError} for a non-positive batchSize or threads
 */
export async function extractFeatures(inputs: ImageInput[], options: FeatureOptions = {}): Promise<FeatureBank> {
  return (await extractOrFit(inputs, options, 'bank')) as FeatureBank;
}

/**
 * The projection basis {@link extractFeatures} would fit for these images (see `pca.ts`), without extracting the
 * set: the sharded extraction fits it on the whole list so that every shard projects alike.
 * @param options as for `extractFeatures`; `cachedOnly`: read it from the feature cache only (the cluster step of a
 *   sharded run never runs the CNN) and fail with `ERR_IO` when it is not there
 * @returns the basis, or undefined when the options ask for no projection
 */
export async function fitProjectionBasis(inputs: ImageInput[], options: FeatureOptions & { cachedOnly?: boolean } = {}): Promise<ProjectionBasis | undefined> {
  const { cachedOnly, ...rest } = options;
  return (await extractOrFit(inputs, rest, cachedOnly ? 'cached-basis' : 'basis')) as ProjectionBasis | undefined;
}

async function extractOrFit(inputs: ImageInput[], options: FeatureOptions, mode: 'bank' | 'basis' | 'cached-basis'): Promise<FeatureBank | ProjectionBasis | undefined> {
  const {
    backbone: spec = {}, batchSize = 8, threads = availableParallelism(), cacheDir: root = cacheRoot(),
    skipBad = false, onProgress, signal, layerNorm = DEFAULT_LAYER_NORM, projectDim: projectDimOpt = DEFAULT_PROJECT_DIM,
    projection: givenBasis, streamAbove = Infinity, onPlan, pooled = false, maxImageBytes = DEFAULT_MAX_IMAGE_BYTES, onWarning,
  } = options;
  checkMaxImageBytes(maxImageBytes);
  if (typeof streamAbove !== 'number' || Number.isNaN(streamAbove) || streamAbove < 0) {
    throw new RangeError(`streamAbove: expected a number of bytes ≥ 0 (Infinity = never stream), got ${String(streamAbove)}`);
  }
  if (layerNorm !== 'none' && layerNorm !== 'l2') throw new RangeError(`layerNorm: expected 'none' or 'l2', got ${JSON.stringify(layerNorm)}`);
  if (projectDimOpt !== false && (!Number.isSafeInteger(projectDimOpt) || projectDimOpt < 1)) {
    throw new RangeError(`projectDim: expected an integer ≥ 1 or false, got ${projectDimOpt}`);
  }
  if ('projectSeed' in options) {
    throw new RangeError('projectSeed: removed; the projection is the set\'s principal subspace (deterministic, no seed), or pass `projection`');
  }
  if (typeof pooled !== 'boolean' && (typeof pooled !== 'number' || Number.isNaN(pooled) || pooled < 0)) {
    throw new RangeError(`pooled: expected a boolean or a number of bytes ≥ 0, got ${String(pooled)}`);
  }
  if (!Array.isArray(inputs)) throw new TypeError(`inputs: expected an array of paths or {name, data}, got ${typeof inputs}`);
  if (inputs.length === 0) throw new KernelError('ERR_EMPTY', 'inputs: expected at least one image, got 0');
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize: expected an integer ≥ 1, got ${batchSize}`);
  if (!Number.isSafeInteger(threads) || threads < 1) throw new RangeError(`threads: expected an integer ≥ 1, got ${threads}`);
  throwIfAborted(signal, 'feature extraction');

  // One cache root: features in <root>/features, models in <root>/models (`false`: no feature cache, default models).
  const cacheDir = root === false ? false : path.join(root, 'features');
  const modelCache: ModelCacheOptions = {
    modelDir: root === false ? undefined : path.join(root, 'models'),
    onDownload: onProgress && ((done, total) => onProgress({ stage: 'model', done, total, message: 'downloading the default backbone (once)' })),
  };
  const timings: Partial<Record<Stage, number>> = { decode: 0, features: 0 };
  const bs = await raceAbort(openBackbone(spec, Math.min(threads, maxThreads()), true, modelCache), signal); // capped: 4 × cores, ≤ 256
  const bb = bs.backbone;
  const [fc, gridH, gridW] = bs.fineShape;
  const m = gridH * gridW;
  const cc = bs.coarseShape[0];
  const dRaw = fc + cc;
  if (givenBasis !== undefined) checkProjectionBasis(givenBasis, dRaw);
  const projectDim = givenBasis ? givenBasis.dOut : projectDimOpt;
  const projected = givenBasis !== undefined || (projectDim !== false && projectDim < dRaw);
  const d = projected ? (projectDim as number) : dRaw;
  const S = bb.inputSize;
  const n = inputs.length;
  const files = inputs.map(imageName);
  const progress = (stage: Stage, done: number) => onProgress?.({ stage, done, total: n } satisfies Progress);
  const read = { maxBytes: maxImageBytes, signal };
  const decodeOpts = { inputSize: S, resize: bb.resize, fit: bb.fit, mean: bb.mean };
  /** Decodes image `i` from its bytes into slot `slot` of an NCHW batch tensor. */
  const decodeInto = async (bytes: Uint8Array, i: number, tensor: Float32Array, slot: number) => {
    toNCHW(await raceAbort(decodeImage(bytes, files[i]!, decodeOpts), signal), tensor, slot * 3 * S * S, bb.mean, bb.std);
  };

  const baseConfig = {
    backbone: {
      id: embeddedBackbone(bb.id) ? bb.id : path.basename(bb.modelPath), layers: [bs.fine, bs.coarse] as [string, string],
      modelSha256: bb.precision === 'int8' ? `${bb.modelSha256}+${int8Key(bb.modelSha256, [bs.fine, bs.coarse])}` : bb.modelSha256,
    },
    // `fit` enters the key only when not the original centre crop (older cache entries stay valid)
    preprocess: { inputSize: S, resize: bb.resize, ...(bb.fit !== 'crop' ? { fit: bb.fit } : {}), mean: [...bb.mean], std: [...bb.std] },
  };
  // The bank's size is known now, before any image is read: stream it from disk if it is over `streamAbove`.
  const bytes = n * m * d * 4;
  const streamed = bytes > streamAbove;
  if (mode === 'bank') onPlan?.({ n, m, d, gridH, gridW, bytes, streamed });
  const basis = !projected ? undefined : givenBasis ?? await fitProjection(d);
  if (mode !== 'bank') return basis;
  const config: FeatureConfig = { ...baseConfig, aggregation: aggregationKey(layerNorm, dRaw, basis) };
  const cache = cacheDir === false ? undefined : new FeatureCache(cacheDir, config, onWarning);
  // Unprojected pooled vectors (uniform / max pooling in the full dimension), for a projected bank: held in memory
  // even when the bags stream (2·D + M values per image, about 2 % of a bag with the default backbone).
  const per = 2 * dRaw + m;
  const pooledCap = pooled === true ? Infinity : pooled === false ? -1 : pooled;
  const pool: PooledFeatures | undefined = projected && n * per * 4 <= pooledCap
    ? { d: dRaw, mean: new Float32Array(n * dRaw), max: new Float32Array(n * dRaw), maxShare: new Float32Array(n * m) }
    : undefined;
  const poolCache = pool && cache
    ? new FeatureCache(cacheDir as string, { ...config, aggregation: `${config.aggregation} → per image, unprojected: mean (${dRaw}), max (${dRaw}), arg-max share (${m})` }, onWarning)
    : undefined;
  if (!streamed) return collect(new Float32Array(n * m * d), undefined);
  const store = new DiskBags(n, m, d, spillFolder(cacheDir));
  try {
    return await collect(new Float32Array(0), store);
  } catch (e) {
    store.close();
    throw e;
  }

  /**
   * The projection basis of this set: the top-`dOut` principal subspace of the patch covariance of
   * {@link PCA_SAMPLE_IMAGES} evenly spaced images (see `pca.ts`), from the cache when those images were seen with
   * this configuration before. Unreadable sample images are left out of the sample (the main pass reports them).
   */
  async function fitProjection(dOut: number): Promise<ProjectionBasis> {
    const sample = pcaSample(n);
    const basisCache = cacheDir === false ? undefined
      : new FeatureCache(cacheDir, { ...baseConfig, aggregation: `${aggregationKey(layerNorm, dRaw)} → PCA basis ${dRaw}→${dOut} (${PCA_SAMPLE_IMAGES} evenly spaced images, ${PCA_ITERATIONS} subspace iterations, covariance in row blocks; last row: explained, images, patches)` }, onWarning);
    const readable: { i: number; bytes: Uint8Array }[] = [];
    for (const i of sample) {
      throwIfAborted(signal, 'feature extraction');
      try {
        readable.push({ i, bytes: await readImageBytes(inputs[i]!, read) });
      } catch (e) {
        if (e instanceof KernelError && e.code === 'ERR_ABORTED') throw e;
        /* reported by the main pass */
      }
    }
    const sampleKey = sha256Hex(readable.map((r) => sha256Hex(r.bytes)).join('\n'));
    const hit = basisCache?.get(sampleKey, 1, dRaw + 1, dOut);
    if (hit) {
      const tail = hit.subarray(dRaw * dOut);
      return projectionBasis(hit.slice(0, dRaw * dOut), dRaw, dOut, tail[1]!, tail[2]!, tail[0]!);
    }
    if (mode === 'cached-basis') {
      throw new KernelError('ERR_IO', `projection: the ${dRaw}→${dOut} basis of these ${n} images is not in the feature cache${cacheDir === false ? ' (no cache)' : ` under ${cacheDir}`}: `
        + 'extract the features first (e.g. every shard of a sharded run, with the same cache and options)');
    }
    const t0 = performance.now();
    const acc = new CovarianceAccumulator(dRaw);
    let images = 0;
    for (let k = 0; k < readable.length; k += batchSize) {
      const part = readable.slice(k, k + batchSize);
      const tensor = new Float32Array(part.length * 3 * S * S);
      let good = 0;
      for (const r of part) {
        try {
          await decodeInto(r.bytes, r.i, tensor, good);
          good++;
        } catch (e) {
          if (e instanceof KernelError && e.code === 'ERR_ABORTED') throw e;
        }
      }
      if (!good) continue;
      const rows = await raceAbort(bs.features(tensor.subarray(0, good * 3 * S * S), good, { layerNorm }, signal), signal);
      await acc.add(rows, good * m);
      images += good;
    }
    if (acc.rows < 2) {
      // no sampled image decodes: the main pass reports the bad images (ERR_IMAGE, or every one skipped with
      // skipBad); with skipBad and some good images elsewhere, fit on the first good one instead
      for (let i = 0; i < n && acc.rows < 2; i++) {
        if (sample.includes(i)) continue;
        try {
          const tensor = new Float32Array(3 * S * S);
          await decodeInto(await readImageBytes(inputs[i]!, read), i, tensor, 0);
          await acc.add(await raceAbort(bs.features(tensor, 1, { layerNorm }, signal), signal), m);
          images++;
        } catch (e) {
          if (e instanceof KernelError && e.code === 'ERR_ABORTED') throw e;
          if (!skipBad) throw e;
        }
      }
      // nothing decodes at all: an unused placeholder (every image is skipped below, or the first one throws)
      if (acc.rows < 2) return projectionBasis(new Float32Array(dRaw * dOut), dRaw, dOut, 0, 0, 0);
    }
    const { matrix, explained } = await principalSubspace(acc.covariance(), dRaw, dOut);
    const fitted = projectionBasis(matrix, dRaw, dOut, images, acc.rows, explained);
    if (basisCache) {
      const packed = new Float32Array((dRaw + 1) * dOut);
      packed.set(matrix);
      packed.set([explained, images, acc.rows], dRaw * dOut);
      basisCache.put(sampleKey, `PCA basis of ${images} images`, packed, 1, dRaw + 1, dOut);
    }
    timings.features! += performance.now() - t0;
    return fitted;
  }

  /** The rest of the extraction, into `data` (in memory) or `store` (streamed; `data` is then empty). */
  async function collect(data: Float32Array, store: DiskBags | undefined): Promise<FeatureBank> {
    const ok = new Uint8Array(n);
    const skipped: { file: string; error: string }[] = [];
    const bad = new Map<number, string>();
    const hashes: string[] = new Array(n);
    const fail = (i: number, e: unknown) => {
      if (!skipBad || !(e instanceof KernelError) || e.code !== 'ERR_IMAGE') throw e;
      bad.set(i, e.message);
    };

    // 1. Cache lookup (reads and hashes each file once; misses are decoded below).
    let todo: number[] = [];
    let done = 0;
    const tLook = performance.now();
    if (cache) {
      for (let i = 0; i < n; i++) {
        throwIfAborted(signal, 'feature extraction');
        try {
          const bytes = await readImageBytes(inputs[i]!, read);
          hashes[i] = sha256Hex(bytes);
          // a hit needs the bag and, when asked for, the pooled vector
          const pHit = pool ? poolCache!.get(hashes[i]!, 1, 1, per) : undefined;
          if (!pool || pHit) {
            let hit = false;
            if (store) {
              const loc = cache.locate(hashes[i]!, gridH, gridW, d);
              if (loc) store.addLocation(i, loc);
              hit = Boolean(loc);
            } else {
              const bag = cache.get(hashes[i]!, gridH, gridW, d);
              if (bag) data.set(bag, i * m * d);
              hit = Boolean(bag);
            }
            if (hit) {
              if (pool) setPooled(pool, m, i, pHit!);
              ok[i] = 1;
              progress('decode', ++done);
              continue;
            }
          }
        } catch (e) { fail(i, e); progress('decode', ++done); continue; }
        todo.push(i);
      }
    } else {
      todo = inputs.map((_, i) => i);
    }
    timings.decode! += performance.now() - tLook;

    // 2. Decode (batch i+1) ‖ infer (batch i) ‖ aggregate (batch i−1).
    const batches: number[][] = [];
    for (let k = 0; k < todo.length; k += batchSize) batches.push(todo.slice(k, k + batchSize));
    const decodeBatch = async (idx: number[]) => {
      const t0 = performance.now();
      const settled = await Promise.allSettled(idx.map(async (i) => {
        const bytes = await readImageBytes(inputs[i]!, read);
        if (cache && !hashes[i]) hashes[i] = sha256Hex(bytes);
        return decodeImage(bytes, files[i]!, decodeOpts);
      }));
      const good: number[] = [];
      const tensor = new Float32Array(idx.length * 3 * S * S);
      for (const [k, r] of settled.entries()) {
        // toNCHW is 10–30 ms of JS per image: let timers and I/O run between images.
        if (k > 0) await new Promise((resolve) => setImmediate(resolve));
        if (r.status === 'fulfilled') {
          toNCHW(r.value, tensor, good.length * 3 * S * S, bb.mean, bb.std);
          good.push(idx[k]!);
        } else {
          fail(idx[k]!, r.reason);
        }
        progress('decode', ++done);
      }
      timings.decode! += performance.now() - t0;
      return { good, tensor: tensor.subarray(0, good.length * 3 * S * S) };
    };
    let fdone = n - todo.length - bad.size;
    if (fdone > 0) progress('features', fdone);
    const patchSpec = { layerNorm, pooled: Boolean(pool), ...(basis ? { projection: { matrix: basis.matrix, dOut: basis.dOut, key: basis.key } } : {}) };
    /** Stores a batch's patch rows (aggregated and projected with the inference, see `batch-features.ts`). */
    const aggregate = (good: number[], rows: Float32Array) => {
      const t0 = performance.now();
      good.forEach((i, k) => {
        const bag = rows.subarray(k * m * d, (k + 1) * m * d);
        ok[i] = 1;
        if (pool) {
          const pv = rows.subarray(good.length * m * d + k * per, good.length * m * d + (k + 1) * per);
          setPooled(pool, m, i, pv);
          poolCache?.put(hashes[i]!, files[i]!, pv, 1, 1, per);
        }
        const loc = cache?.put(hashes[i]!, files[i]!, bag, gridH, gridW, d);
        if (!store) data.set(bag, i * m * d);
        else if (loc) store.addLocation(i, loc);
        else store.addRows(i, bag);
      });
      fdone += good.length;
      progress('features', fdone);
      timings.features! += performance.now() - t0;
    };

    let next = batches.length ? decodeBatch(batches[0]!) : undefined;
    next?.catch(() => undefined); // handled when awaited
    let pending: { good: number[]; maps: Promise<Float32Array>; t0: number } | undefined;
    // Two batches are in flight (one computing, one queued): count the union of their intervals, not the sum.
    let featEnd = 0;
    const featuresDone = (t0: number) => {
      const now = performance.now();
      timings.features! += Math.max(0, now - Math.max(t0, featEnd));
      featEnd = now;
    };
    for (let b = 0; b < batches.length; b++) {
      const { good, tensor } = await raceAbort(next!, signal);
      next = b + 1 < batches.length ? decodeBatch(batches[b + 1]!) : undefined;
      next?.catch(() => undefined);
      const t0 = performance.now();
      const maps = good.length ? bs.features(tensor, good.length, patchSpec, signal) : Promise.resolve(undefined as never);
      maps.catch(() => undefined);
      if (pending) {
        const r = await raceAbort(pending.maps, signal);
        featuresDone(pending.t0);
        aggregate(pending.good, r);
      }
      pending = good.length ? { good, maps, t0 } : undefined;
    }
    if (pending) {
      const r = await raceAbort(pending.maps, signal);
      featuresDone(pending.t0);
      aggregate(pending.good, r);
    }

    if (fdone < n) progress('features', n); // skipped images count as done

    // 3. Compact out skipped images (in place, order kept).
    let w = 0;
    const kept: string[] = [];
    const keptIdx: number[] = [];
    for (let i = 0; i < n; i++) {
      if (!ok[i]) { skipped.push({ file: files[i]!, error: bad.get(i) ?? 'not processed' }); continue; }
      if (w !== i && !store) data.copyWithin(w * m * d, i * m * d, (i + 1) * m * d);
      if (w !== i && pool) movePooled(pool, m, i, w);
      kept.push(files[i]!);
      keptIdx.push(i);
      w++;
    }
    const extra = {
      ...(basis ? { projectedFrom: dRaw, projection: basis } : {}),
      ...(pool ? { pooled: w === n ? pool : keepPooled(pool, m, w) } : {}),
      ...(cache ? { cache: { dir: cache.dir, ...(poolCache ? { pooledDir: poolCache.dir } : {}), sha256: keptIdx.map((i) => hashes[i]!) } } : {}),
    };
    if (store) {
      store.compact(keptIdx);
      return { n: w, m, d, gridH, gridW, data, store, files: kept, skipped, timings, ...extra };
    }
    return { n: w, m, d, gridH, gridW, data: w === n ? data : data.slice(0, w * m * d), files: kept, skipped, timings, ...extra };
  }
}

/** Stores image `i`'s packed pooled vector `[mean (d), max (d), share (m)]` (`poolBag`'s layout, the cache entry's). */
function setPooled(p: PooledFeatures, m: number, i: number, packed: Float32Array): void {
  const d = p.d;
  p.mean.set(packed.subarray(0, d), i * d);
  p.max.set(packed.subarray(d, 2 * d), i * d);
  p.maxShare.set(packed.subarray(2 * d, 2 * d + m), i * m);
}

/** Moves image `from`'s pooled vectors to slot `to` (compaction of skipped images). */
function movePooled(p: PooledFeatures, m: number, from: number, to: number): void {
  const d = p.d;
  p.mean.copyWithin(to * d, from * d, (from + 1) * d);
  p.max.copyWithin(to * d, from * d, (from + 1) * d);
  p.maxShare.copyWithin(to * m, from * m, (from + 1) * m);
}

/** The first `n` images' pooled vectors. */
function keepPooled(p: PooledFeatures, m: number, n: number): PooledFeatures {
  return { d: p.d, mean: p.mean.slice(0, n * p.d), max: p.max.slice(0, n * p.d), maxShare: p.maxShare.slice(0, n * m) };
}

/** The folder of a streamed bank's spill file: the feature cache folder if there is one, else the OS temp dir. */
function spillFolder(cacheDir: string | false): string {
  if (cacheDir !== false) {
    try {
      makeDir(cacheDir);
      return cacheDir;
    } catch {
      /* not writable: fall back */
    }
  }
  return tmpdir();
}
