/**
 * @file The whole pipeline in one call: images → patch embeddings (features.ts) → patch weights and image
 * embeddings (weighting.ts) → Euclidean distances → agglomerative linkage → K flat clusters.
 * @module pipeline/run
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BackendName, Isa, LinkageMethod } from '../../bindings/backend.js';
import { BACKEND_NAMES, LINKAGE_METHODS } from '../../bindings/backend.js';
import { getBackend } from '../../bindings/select.js';
import { KernelError } from '../errors.js';
import type { BackboneSpec, FeatureBank, ImageInput, Progress, Stage } from './types.js';
import { computeWeights, checkTau, DEFAULT_TAU, WEIGHTINGS, type Tau, type Weighting } from './weighting.js';

/** File extensions treated as images when a folder is given (lower case, with the dot). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.gif', '.avif'] as const;

/** What was wrong with the images given (see {@link InputError}). */
export type InputProblem = 'not-found' | 'no-images' | 'normals-not-found' | 'normals-empty' | 'normals-required';

/**
 * A problem with the images given rather than with a value: the folder does not exist, holds no images, or the
 * normal images are missing. `code` is `ERR_INVALID_ARGUMENT` (not found / required) or `ERR_EMPTY` (no images).
 */
export class InputError extends KernelError {
  readonly problem: InputProblem;
  readonly path: string | undefined;
  constructor(problem: InputProblem, message: string, where?: string) {
    super(problem === 'no-images' || problem === 'normals-empty' ? 'ERR_EMPTY' : 'ERR_INVALID_ARGUMENT', message);
    this.name = 'InputError';
    this.problem = problem;
    this.path = where;
  }
}

/** Options of {@link clusterImages}. */
export interface ClusterOptions {
  /** Number of clusters, 1 ≤ k ≤ number of images (required). */
  k: number;
  /** @default 'unsupervised' */
  weighting?: Weighting;
  /** Softmax temperature, absolute or `{relative: r}`. @default {relative: 1} */
  tau?: Tau;
  /** Normal images (a folder or a list) for `'semi-supervised'`; ignored otherwise. */
  normals?: string | ImageInput[];
  /** @default 'ward' */
  linkage?: LinkageMethod;
  /** @default the embedded default backbone */
  backbone?: BackboneSpec;
  /** Kernel backend. @default the first that loads (native, wasm, js) */
  backend?: BackendName;
  /** Only these extensions when listing a folder (e.g. `['.jpg']`). @default {@link IMAGE_EXTENSIONS} */
  extensions?: readonly string[];
  /** Images per inference batch. @default 8 */
  batchSize?: number;
  /** onnxruntime threads. @default number of cores */
  threads?: number;
  /** Feature cache folder or `false`. @default see `extractFeatures` */
  cacheDir?: string | false;
  /** Skip unreadable images (listed in `skipped`) instead of failing. @default false */
  skipBad?: boolean;
  /** Per-layer normalisation of the patch features (see `FeatureOptions.layerNorm`). @default 'l2' */
  layerNorm?: 'none' | 'l2';
  /** Random projection of the patch features (see `FeatureOptions.projectDim`). @default 256 */
  projectDim?: number | false;
  /** Approximate unsupervised weighting: R random reference images per image (see `WeightingOptions.references`). @default exact */
  references?: number;
  /** Work per grouped-NN call (see `WeightingOptions.chunkWork`). @default 2e9 */
  chunkWork?: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** Output of {@link clusterImages}. */
export interface ClusterResult {
  /** Image names (paths or given names), in the order of every per-image array below. */
  files: string[];
  /** Cluster of each image, 0-based, numbered in order of first appearance. Length n. */
  labels: Int32Array;
  k: number;
  n: number;
  /** Image embeddings, size `n*d`. */
  embeddings: Float32Array;
  d: number;
  /** Per-image patch-weight maps, each `gridH × gridW` row-major, summing to 1. */
  weights: Float32Array[];
  gridH: number;
  gridW: number;
  /** Per-patch scores, size `n*gridH*gridW` (zeros for uniform / max). */
  scores: Float32Array;
  /** SciPy linkage matrix, `(n−1) × 4` row-major `[a, b, height, size]`. */
  Z: Float64Array;
  weighting: Weighting;
  /** The absolute τ used. */
  tau: number;
  linkage: LinkageMethod;
  /** Wall time per stage in ms, plus `total`. */
  timings: Partial<Record<Stage, number>> & { total: number };
  backend: { name: BackendName; isa: Isa; threads: number };
  /** Images skipped with `skipBad` and why (clustered and normal images). */
  skipped: { file: string; error: string }[];
  /** Number of normal images used (semi-supervised), else 0. */
  normals: number;
}

/**
 * Image files under a folder, recursively, sorted by relative path (code-point order, `/` separators), hidden
 * files and folders skipped. Deterministic across platforms and runs.
 * @throws {InputError} `not-found` when `dir` is not an existing folder
 */
export function listImages(dir: string, extensions: readonly string[] = IMAGE_EXTENSIONS, problem: InputProblem = 'not-found'): string[] {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new InputError(problem, `folder not found: ${dir}`, dir);
  }
  if (!st.isDirectory()) throw new InputError(problem, `not a folder: ${dir}`, dir);
  const exts = new Set(extensions.map((e) => (e.startsWith('.') ? e : `.${e}`).toLowerCase()));
  const out: string[] = [];
  const walk = (rel: string) => {
    const entries = readdirSync(path.join(dir, rel), { withFileTypes: true });
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(r);
      else if ((e.isFile() || e.isSymbolicLink()) && exts.has(path.extname(e.name).toLowerCase())) out.push(r);
    }
  };
  walk('');
  out.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return out.map((r) => path.join(dir, r));
}

function resolveInputs(input: string | ImageInput[], extensions: readonly string[] | undefined, normals: boolean): ImageInput[] {
  const what = normals ? 'normals' : 'input';
  if (typeof input === 'string') {
    const list = listImages(input, extensions, normals ? 'normals-not-found' : 'not-found');
    if (list.length === 0) {
      throw new InputError(normals ? 'normals-empty' : 'no-images', `${what}: no images (${(extensions ?? IMAGE_EXTENSIONS).join(' ')}) found under ${input}`, input);
    }
    return list;
  }
  if (!Array.isArray(input)) throw new TypeError(`${what}: expected a folder path or an array of paths / {name, data}, got ${typeof input}`);
  if (input.length === 0) throw new InputError(normals ? 'normals-empty' : 'no-images', `${what}: expected at least one image, got an empty list`);
  return input;
}

function checkK(k: number, n: number): void {
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1 || k > n) {
    throw new KernelError('ERR_K_OUT_OF_RANGE', `k: expected an integer in 1..${n} (the number of images), got ${k}`);
  }
}

/**
 * Validates the options that do not depend on the images (fail before any work).
 * @throws {TypeError} / {RangeError} / {KernelError}
 */
export function checkClusterOptions(options: ClusterOptions): void {
  if (options == null || typeof options !== 'object') throw new TypeError('options: expected an object with at least {k}');
  const { k, weighting = 'unsupervised', linkage = 'ward', backend, tau = DEFAULT_TAU } = options;
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1) {
    throw new KernelError('ERR_K_OUT_OF_RANGE', `k: expected an integer ≥ 1, got ${k}`);
  }
  if (!(WEIGHTINGS as readonly string[]).includes(weighting)) {
    throw new RangeError(`weighting: expected one of ${WEIGHTINGS.join(', ')}, got ${JSON.stringify(weighting)}`);
  }
  if (!(LINKAGE_METHODS as readonly string[]).includes(linkage)) {
    throw new KernelError('ERR_INVALID_METHOD', `linkage: expected one of ${LINKAGE_METHODS.join(', ')}, got ${JSON.stringify(linkage)}`);
  }
  if (backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(backend)) {
    throw new TypeError(`backend: expected one of ${BACKEND_NAMES.join(', ')}, got ${JSON.stringify(backend)}`);
  }
  checkTau(tau);
  if (weighting === 'semi-supervised' && options.normals === undefined) {
    throw new InputError('normals-required', "normals: weighting 'semi-supervised' needs normal images (a folder or a list)");
  }
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new KernelError('ERR_ABORTED', 'clustering: aborted', { cause: signal.reason });
}

/**
 * Clusters images by anomaly type.
 * @param input a folder (searched recursively; sorted paths) or a list of paths / `{name, data}`
 * @param options see {@link ClusterOptions}; `k` is required
 * @returns see {@link ClusterResult}
 * @throws {InputError} missing folder, no images, normals missing or empty
 * @throws {KernelError} `ERR_K_OUT_OF_RANGE` (k ∉ 1..n), `ERR_IMAGE` (a bad image without `skipBad`), `ERR_MODEL`,
 *   `ERR_BACKEND_UNAVAILABLE`, `ERR_ABORTED`, `ERR_INVALID_METHOD`
 * @throws {TypeError} / {RangeError} for malformed options
 */
export async function clusterImages(input: string | ImageInput[], options: ClusterOptions): Promise<ClusterResult> {
  const t0 = performance.now();
  checkClusterOptions(options);
  const {
    k, weighting = 'unsupervised', tau = DEFAULT_TAU, linkage = 'ward', backbone, extensions,
    batchSize, threads, cacheDir, skipBad = false, chunkWork, references, onProgress, signal, layerNorm, projectDim,
  } = options;
  const inputs = resolveInputs(input, extensions, false);
  checkK(k, inputs.length);
  const normalInputs = weighting === 'semi-supervised' ? resolveInputs(options.normals!, extensions, true) : undefined;
  const be = getBackend(options.backend);
  aborted(signal);

  const { extractFeatures } = await import('./features.js');
  const featureOptions = { backbone, batchSize, threads, cacheDir, skipBad, signal, layerNorm, projectDim };
  const bank: FeatureBank = await extractFeatures(inputs, { ...featureOptions, onProgress });
  const timings: Partial<Record<Stage, number>> & { total: number } = {
    decode: bank.timings.decode ?? 0, features: bank.timings.features ?? 0, total: 0,
  };
  const skipped = [...bank.skipped];
  if (bank.n === 0) throw new InputError('no-images', 'input: every image was unreadable (all skipped)');
  checkK(k, bank.n);
  let normals: FeatureBank | undefined;
  if (normalInputs) {
    normals = await extractFeatures(normalInputs, {
      ...featureOptions,
      onProgress: onProgress && ((p) => onProgress({ ...p, message: p.message ? `normal images: ${p.message}` : 'normal images' })),
    });
    timings.decode! += normals.timings.decode ?? 0;
    timings.features! += normals.timings.features ?? 0;
    skipped.push(...normals.skipped);
    if (normals.n === 0) throw new InputError('normals-empty', 'normals: every normal image was unreadable (all skipped)');
  }

  const tw = performance.now();
  const w = await computeWeights(bank, { weighting, tau, normals, backend: be, chunkWork, references, onProgress, signal });
  timings.weights = performance.now() - tw;
  aborted(signal);

  const tc = performance.now();
  const n = bank.n;
  onProgress?.({ stage: 'clustering', done: 0, total: 3, message: 'distances' });
  let Z: Float64Array;
  let labels: Int32Array;
  if (n === 1) {
    Z = new Float64Array(0);
    labels = new Int32Array(1);
  } else {
    const y = await be.pdistAsync(w.embeddings, n, w.d, false);
    onProgress?.({ stage: 'clustering', done: 1, total: 3, message: `${linkage} linkage` });
    aborted(signal);
    Z = await be.linkageAsync(y, n, linkage);
    onProgress?.({ stage: 'clustering', done: 2, total: 3, message: `cut into ${k}` });
    labels = be.cutK(Z, n, k);
  }
  onProgress?.({ stage: 'clustering', done: 3, total: 3 });
  timings.clustering = performance.now() - tc;
  timings.total = performance.now() - t0;

  return {
    files: bank.files, labels, k, n, embeddings: w.embeddings, d: w.d, weights: w.maps, gridH: w.gridH, gridW: w.gridW,
    scores: w.scores, Z, weighting, tau: w.tau, linkage, timings,
    backend: { name: be.name, isa: be.isa, threads: be.threads }, skipped, normals: normals?.n ?? 0,
  };
}
