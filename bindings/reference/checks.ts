/**
 * @file The shape checks the reference kernels share: rows of a matrix and bags of rows. They throw the
 * `KernelError` codes the Rust kernels return for the same input (`bindings/validate.ts` has the single checks).
 * @module bindings/reference/checks
 */
import { KernelError } from '../errors.js';
import { ARG_KINDS, expectCount, expectFinite, expectLength, expectNonEmpty, expectOffsets, expectTypedArray } from '../validate.js';

/** `x` holds `n ≥ 1` finite rows of `d ≥ 1` values. */
export function expectRows(name: string, x: Float32Array, n: number, d: number): void {
  expectTypedArray('js', name, x, ARG_KINDS[name]);
  expectCount(`${name} rows`, n, 0);
  expectCount('d', d, 0);
  expectNonEmpty(`${name} (rows)`, n);
  expectNonEmpty('d (dimension)', d);
  expectLength(name, x, n * d, `${n} rows × d=${d}`);
  expectFinite(name, x);
}

/** `data` holds finite rows of `d ≥ 1` values cut into bags by `offsets`; returns the number of bags. */
export function expectBags(name: string, data: ArrayLike<number>, offsets: Uint32Array, d: number): number {
  expectTypedArray('js', name, data, ARG_KINDS[name]);
  expectTypedArray('js', 'bagOffsets', offsets, ARG_KINDS.bagOffsets);
  expectCount('d', d, 0);
  expectNonEmpty('d (dimension)', d);
  if (data.length % d !== 0) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `${name}: expected a multiple of d=${d} values, got ${data.length}`);
  }
  const nrows = data.length / d;
  expectNonEmpty(`${name} (rows)`, nrows);
  expectFinite(name, data);
  return expectOffsets('bagOffsets', offsets, nrows);
}
