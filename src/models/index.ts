/**
 * @file The embedded backbones: nsfwjs's bundled tfjs models converted to ONNX on first use (or by
 * `node scripts/prepare-model.mjs`), written to a cache folder and verified by SHA-256 checksums pinned here.
 *
 * Cache folder: `$ANOMALY_CLUSTERING_CACHE/models`, else `<root>/.cache/anomaly-clustering/models` where `<root>`
 * is this package's own folder in a development checkout, or the current working directory when the package is
 * installed under `node_modules`.
 * @module models
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { KernelError } from '../errors.js';
import { CONVERTER_VERSION, convertTfjsToOnnx } from './convert.js';
import { loadNsfwjsModel, type NsfwjsModelId } from './tfjs.js';

export { CONVERTER_VERSION, convertTfjsToOnnx, shortTfName } from './convert.js';
export { loadNsfwjsModel, NSFWJS_MODEL_IDS, type NsfwjsModelId } from './tfjs.js';

/** An embedded backbone: which nsfwjs model, its preprocessing, its default feature layers. */
export interface EmbeddedBackbone {
  /** Id accepted as `BackboneSpec.model`: `'nsfwjs:<source>'`. */
  id: `nsfwjs:${NsfwjsModelId}`;
  source: NsfwjsModelId;
  description: string;
  /** Network input side. */
  inputSize: number;
  /** Shorter side before the centre crop. */
  resize: number;
  /** Stride-8 and stride-16 layers (ONNX tensor names in the converted graph). */
  layers: [string, string];
  /** nsfwjs feeds RGB in [0,1]: mean 0, std 1. */
  mean: [number, number, number];
  std: [number, number, number];
  /** SHA-256 (hex) of the converted ONNX file. */
  sha256: string;
}

/** The three embedded backbones, by id. */
export const EMBEDDED_BACKBONES: Record<`nsfwjs:${NsfwjsModelId}`, EmbeddedBackbone> = {
  'nsfwjs:mobilenet_v2': {
    id: 'nsfwjs:mobilenet_v2', source: 'mobilenet_v2',
    description: 'MobileNetV2 α=1.0 (Keras), fine-tuned by nsfwjs; 10.5 MB fp32 ONNX',
    inputSize: 224, resize: 256, layers: ['block_6_expand_relu', 'block_13_expand_relu'],
    mean: [0, 0, 0], std: [1, 1, 1],
    sha256: 'd23bebec62a32d0a0e6b3329763692e570b6dc3a09bf6fe378b91b3fc613ae9e',
  },
  'nsfwjs:mobilenet_v2_mid': {
    id: 'nsfwjs:mobilenet_v2_mid', source: 'mobilenet_v2_mid',
    description: 'MobileNetV2 α=1.4 (TF-Hub graph model), fine-tuned by nsfwjs; 17 MB fp32 ONNX',
    inputSize: 224, resize: 256, layers: ['MobilenetV2/expanded_conv_6/expand/Relu6', 'MobilenetV2/expanded_conv_13/expand/Relu6'],
    mean: [0, 0, 0], std: [1, 1, 1],
    sha256: '55fcc21d6b35e66f93016e3844f11111f15404bacf4a9e59309cef026975d694',
  },
  'nsfwjs:inception_v3': {
    id: 'nsfwjs:inception_v3', source: 'inception_v3',
    description: 'InceptionV3 (Keras), fine-tuned by nsfwjs; 90 MB fp32 ONNX',
    inputSize: 299, resize: 342, layers: ['mixed2', 'mixed7'],
    mean: [0, 0, 0], std: [1, 1, 1],
    sha256: 'e56b876915c12c8e8d6636e314f992a1547ed3a647cd740b619a358e0daecad6',
  },
};

/**
 * The backbone used when `BackboneSpec.model` is `'default'`: nsfwjs MobileNetV2 α=1.0, layers
 * `block_6_expand_relu` [192,28,28] (stride 8) + `block_13_expand_relu` [576,14,14] (stride 16) → M=784, D=768.
 * Chosen by `scripts/select-backbone.mjs` (unsupervised weights, τ = 1·σ, Ward, NMI): best mean NMI over MVTec
 * bottle (0.496) and MTD 392+191 (0.224) among MobileNetV2 α=1.0/1.4 and InceptionV3 layer pairs, and the smallest
 * and fastest model (10.5 MB, ≈15 ms/image).
 */
export const DEFAULT_BACKBONE: EmbeddedBackbone = EMBEDDED_BACKBONES['nsfwjs:mobilenet_v2'];

/** Cache root: `$ANOMALY_CLUSTERING_CACHE`, else `<package root in a checkout | cwd>/.cache/anomaly-clustering`. */
export function cacheRoot(env: NodeJS.ProcessEnv = process.env): string {
  if (env.ANOMALY_CLUSTERING_CACHE) return path.resolve(env.ANOMALY_CLUSTERING_CACHE);
  return path.join(packageRoot() ?? process.cwd(), '.cache', 'anomaly-clustering');
}

/** This package's folder when it is a development checkout (not under node_modules), else undefined. */
function packageRoot(): string | undefined {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (existsSync(pj)) {
      try {
        if (JSON.parse(readFileSync(pj, 'utf8')).name === 'anomaly-clustering') {
          return dir.split(path.sep).includes('node_modules') ? undefined : dir;
        }
      } catch { /* keep walking */ }
    }
    const up = path.dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** Resolves `'default'` or `'nsfwjs:<id>'` to an embedded backbone, anything else to undefined (a file path). */
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
}

/** Result of {@link prepareModel}. */
export interface PreparedModel {
  path: string;
  sha256: string;
  /** `'hit'`: valid file found; `'converted'`: written now (fresh or replacing a corrupt file). */
  status: 'hit' | 'converted';
  ms: number;
}

const prepared = new Map<string, PreparedModel>();

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/**
 * Makes sure the converted ONNX file of an embedded backbone exists and matches its pinned checksum; converts it
 * (and replaces a corrupt file) otherwise. Memoised per process.
 * @param backbone an embedded backbone or its id (`'default'`, `'nsfwjs:mobilenet_v2'`, …)
 * @returns the file path and what happened
 * @throws {KernelError} `ERR_MODEL` if the conversion fails or does not reproduce the pinned checksum
 */
export function prepareModel(backbone: EmbeddedBackbone | string = DEFAULT_BACKBONE, options: PrepareOptions = {}): PreparedModel {
  const bb = typeof backbone === 'string' ? embeddedBackbone(backbone) : backbone;
  if (!bb) throw new KernelError('ERR_MODEL', `unknown embedded backbone ${JSON.stringify(backbone)}; expected 'default' or one of ${Object.keys(EMBEDDED_BACKBONES).join(', ')}`);
  const { cacheDir = path.join(cacheRoot(), 'models'), allowChecksumMismatch = false, log } = options;
  const file = path.join(cacheDir, `nsfwjs-${bb.source}-v${CONVERTER_VERSION}.onnx`);
  const memo = prepared.get(file);
  if (memo && existsSync(file)) return { ...memo, status: 'hit', ms: 0 };
  const t0 = performance.now();
  const pinned = bb.sha256;
  if (existsSync(file)) {
    const h = sha256(readFileSync(file));
    if (h === pinned) {
      const r: PreparedModel = { path: file, sha256: h, status: 'hit', ms: performance.now() - t0 };
      prepared.set(file, r);
      return r;
    }
    log?.(`${file}: checksum ${h} ≠ pinned ${pinned}; regenerating`);
  }
  const { bytes } = convertTfjsToOnnx(loadNsfwjsModel(bb.source));
  const h = sha256(bytes);
  if (h !== pinned && !allowChecksumMismatch) {
    throw new KernelError('ERR_MODEL', `converted ${bb.id} has SHA-256 ${h}, expected ${pinned} (nsfwjs or converter changed?)`);
  }
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, file);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* ignore */ }
    throw new KernelError('ERR_MODEL', `cannot write the converted model to ${file}`, { cause: e });
  }
  const r: PreparedModel = { path: file, sha256: h, status: 'converted', ms: performance.now() - t0 };
  prepared.set(file, r);
  log?.(`${bb.id}: converted to ${file} (${(bytes.length / 1e6).toFixed(1)} MB, sha256 ${h}) in ${r.ms.toFixed(0)} ms`);
  return r;
}

/** Forgets the per-process memo of {@link prepareModel} (tests). */
export function resetPreparedModels(): void {
  prepared.clear();
}
