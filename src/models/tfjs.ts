/**
 * @file Reads the tfjs models that ship inside the `nsfwjs` npm package (`dist/models/<id>/model.min.js` plus
 * base64 weight shards `group1-shard<k>of<n>.min.js`, all CommonJS modules exporting a JSON object or a base64
 * string) and dequantises their weights, without the TensorFlow.js runtime. `nsfwjs` is an optional peer
 * dependency (it pulls ≈270 MB of TensorFlow.js): it is looked up only when an `nsfwjs:*` backbone is asked for.
 * @module models/tfjs
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { KernelError } from '../errors.js';

/** The three models nsfwjs ships. */
export type NsfwjsModelId = 'mobilenet_v2' | 'mobilenet_v2_mid' | 'inception_v3';
/** Runtime list of {@link NsfwjsModelId}s. */
export const NSFWJS_MODEL_IDS = ['mobilenet_v2', 'mobilenet_v2_mid', 'inception_v3'] as const;

/** One entry of a tfjs weights manifest. */
export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool' | string;
  quantization?: { min?: number; scale?: number; dtype: 'uint8' | 'uint16' | 'float16' | string };
}

/** A tfjs model as stored on disk: topology JSON + weights manifest (+ format for graph models). */
export interface TfjsModelJson {
  format?: string;
  modelTopology: any; // eslint-disable-line @typescript-eslint/no-explicit-any
  weightsManifest: { paths: string[]; weights: TfjsWeightSpec[] }[];
}

/** A loaded tfjs model: topology plus dequantised float32 weights by name. */
export interface TfjsModel {
  id: string;
  json: TfjsModelJson;
  weights: Map<string, { shape: number[]; data: Float32Array }>;
}

const require = createRequire(import.meta.url);

/** Folder holding nsfwjs's bundled models (`node_modules/nsfwjs/dist/models`). */
export function nsfwjsModelsDir(): string {
  // nsfwjs's `exports` map hides dist/models, so resolve the package entry and walk up to its root.
  let entry: string;
  try {
    entry = require.resolve('nsfwjs');
  } catch (e) {
    throw new KernelError('ERR_MODEL', 'the nsfwjs:* backbones need the optional package nsfwjs: run `npm install nsfwjs@4.4.0` (or use the default backbone)', { cause: e });
  }
  let dir = path.dirname(entry);
  while (!existsSync(path.join(dir, 'package.json')) || path.basename(dir) === 'cjs' || path.basename(dir) === 'esm') {
    const up = path.dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return path.join(dir, 'dist', 'models');
}

/** Dequantises one weight: uint8/uint16 `q·scale + min` (tfjs semantics), float16, or plain float32/int32. */
export function dequantise(spec: TfjsWeightSpec, bytes: Uint8Array): Float32Array {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  const q = spec.quantization;
  if (q) {
    const scale = q.scale ?? 1;
    const min = q.min ?? 0;
    if (q.dtype === 'uint8') {
      for (let i = 0; i < n; i++) out[i] = bytes[i]! * scale + min;
    } else if (q.dtype === 'uint16') {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
      for (let i = 0; i < n; i++) out[i] = dv.getUint16(i * 2, true) * scale + min;
    } else if (q.dtype === 'float16') {
      const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(i * 2, true));
    } else {
      throw new KernelError('ERR_MODEL', `weight ${spec.name}: unsupported quantization dtype ${q.dtype}`);
    }
  } else if (spec.dtype === 'float32' || spec.dtype === 'int32') {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, n * 4);
    for (let i = 0; i < n; i++) out[i] = spec.dtype === 'float32' ? dv.getFloat32(i * 4, true) : dv.getInt32(i * 4, true);
  } else {
    throw new KernelError('ERR_MODEL', `weight ${spec.name}: unsupported dtype ${spec.dtype}`);
  }
  return out;
}

/** Bytes one stored weight occupies in the concatenated shards. */
function storedBytes(spec: TfjsWeightSpec): number {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const q = spec.quantization?.dtype;
  if (q === 'uint8') return n;
  if (q === 'uint16' || q === 'float16') return 2 * n;
  return 4 * n;
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

/**
 * Loads one of nsfwjs's bundled models.
 * @param id which model
 * @returns topology and dequantised weights
 * @throws {KernelError} `ERR_MODEL` if the files are missing or inconsistent
 */
export function loadNsfwjsModel(id: NsfwjsModelId): TfjsModel {
  const dir = path.join(nsfwjsModelsDir(), id);
  let json: TfjsModelJson;
  try {
    json = require(path.join(dir, 'model.min.js')) as TfjsModelJson;
  } catch (e) {
    throw new KernelError('ERR_MODEL', `cannot read the nsfwjs model ${id} in ${dir}`, { cause: e });
  }
  const weights = readWeights(json, id, (p) => Buffer.from(require(path.join(dir, `${p}.min.js`)) as string, 'base64'));
  return { id, json, weights };
}

/**
 * Loads a tfjs model stored as files (`model.json` + binary weight shards), e.g. the output of
 * `tensorflowjs_converter`, from a map of file name → bytes (so it works on files unpacked from a tarball in memory).
 * @param id model name used in messages
 * @param files `model.json` and every shard it names, keyed by file name
 * @throws {KernelError} `ERR_MODEL` if a file is missing, the JSON is malformed or the shards are short
 */
export function loadTfjsModelFiles(id: string, files: ReadonlyMap<string, Uint8Array>): TfjsModel {
  const manifest = files.get('model.json');
  if (!manifest) throw new KernelError('ERR_MODEL', `tfjs model ${id}: model.json is missing`);
  let json: TfjsModelJson;
  try {
    json = JSON.parse(Buffer.from(manifest).toString('utf8')) as TfjsModelJson;
  } catch (e) {
    throw new KernelError('ERR_MODEL', `tfjs model ${id}: model.json is not valid JSON`, { cause: e });
  }
  if (!Array.isArray(json.weightsManifest)) throw new KernelError('ERR_MODEL', `tfjs model ${id}: model.json has no weightsManifest`);
  const weights = readWeights(json, id, (p) => {
    const b = files.get(p);
    if (!b) throw new KernelError('ERR_MODEL', `tfjs model ${id}: weight shard ${p} is missing`);
    return b;
  });
  return { id, json, weights };
}

/** Splits each manifest group's concatenated shards into named, dequantised weights. */
function readWeights(json: TfjsModelJson, id: string, shard: (path: string) => Uint8Array): TfjsModel['weights'] {
  const weights = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const group of json.weightsManifest) {
    const all = Buffer.concat(group.paths.map(shard));
    let off = 0;
    for (const spec of group.weights) {
      const nb = storedBytes(spec);
      if (off + nb > all.length) {
        throw new KernelError('ERR_MODEL', `tfjs model ${id}: weight ${spec.name} needs bytes ${off}..${off + nb}, shards hold ${all.length}`);
      }
      weights.set(spec.name, { shape: spec.shape, data: dequantise(spec, all.subarray(off, off + nb)) });
      off += nb;
    }
  }
  return weights;
}
