/**
 * @file The int8 fast mode of a backbone (`BackboneSpec.precision: 'int8'`): its quantised model, built from the
 * float model and a shipped calibration (`int8-ranges.ts`), memoised per process.
 * @module models/int8
 */
import { createHash } from 'node:crypto';
import type onnxProto from 'onnx-proto';
import { KernelError } from '../errors.js';
import { INT8_CALIBRATIONS, type Int8Calibration } from './int8-ranges.js';
import { foldBatchNorm, quantizeModel } from './quantize.js';

/** Version of the quantisation scheme (part of the feature-cache key: bump when `quantize.ts` changes its output). */
export const INT8_SCHEME = 'qdq-u8act-s8w-perchannel-v1';

const sameLayers = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/** The shipped calibration of a model (by SHA-256) and its two layers, or undefined. */
export function findCalibration(modelSha256: string, layers: readonly string[]): Int8Calibration | undefined {
  return INT8_CALIBRATIONS.find((c) => c.modelSha256 === modelSha256 && sameLayers(c.layers, layers));
}

function need(modelSha256: string, layers: readonly string[], where: string): Int8Calibration {
  const c = findCalibration(modelSha256, layers);
  if (!c) {
    const known = INT8_CALIBRATIONS.map((k) => `layers ${k.layers.join(',')} of the model with SHA-256 ${k.modelSha256.slice(0, 12)}…`).join('; ');
    throw new KernelError('ERR_MODEL', `${where}: precision 'int8' needs a shipped calibration for this model and layers ` +
      `(${layers.join(', ')}); there is one for: ${known || 'none'}. Use precision 'fp32' (the default).`);
  }
  return c;
}

/** The feature-cache key part of the int8 mode for a model and layers: scheme + a digest of its calibration. */
export function int8Key(modelSha256: string, layers: readonly string[]): string {
  const c = need(modelSha256, layers, 'int8');
  return `int8:${INT8_SCHEME}:${createHash('sha256').update(JSON.stringify(c.ranges)).digest('hex').slice(0, 16)}`;
}

const built = new Map<string, Uint8Array>();
/**
 * The int8 model of `model` (whose outputs are the two feature layers `layers`).
 * @param where the model file, for error messages
 * @throws {KernelError} `ERR_MODEL` when there is no shipped calibration for this model and these layers
 */
export function int8Model(model: onnxProto.onnx.ModelProto, modelSha256: string, layers: [string, string], where: string): Uint8Array {
  const c = need(modelSha256, layers, where);
  const key = `${modelSha256}/${[...layers].sort().join(',')}`;
  let b = built.get(key);
  if (!b) {
    b = quantizeModel(foldBatchNorm(model, layers), c.ranges);
    built.set(key, b);
  }
  return b;
}
