/**
 * @file Input checks shared by the pure-TS backend and the public kernel API (`src/kernels.ts`). Each check
 * throws a {@link KernelError} with the documented code, so that a backend never crashes on bad input and
 * every backend reports the same code for the same mistake.
 * @module reference/validate
 */
import { KernelError } from '../errors.js';
import { LINKAGE_METHODS, GROUPED_MODES } from '../../bindings/backend.js';
import type { LinkageMethod, GroupedMode } from '../../bindings/backend.js';

/** `ERR_SHAPE_MISMATCH` unless `arr.length === expected`. */
export function expectLength(name: string, arr: ArrayLike<number>, expected: number, what: string): void {
  if (arr.length !== expected) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `${name}: expected length ${expected} (${what}), got ${arr.length}`);
  }
}

/** `ERR_NON_FINITE` naming the first NaN/±Infinity index. */
export function expectFinite(name: string, arr: ArrayLike<number>): void {
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i]!;
    if (!Number.isFinite(v)) {
      throw new KernelError('ERR_NON_FINITE', `${name}: value at index ${i} is ${v}; all values must be finite`);
    }
  }
}

/** `ERR_INVALID_ARGUMENT` unless `v` is a safe integer ≥ `min`. */
export function expectCount(name: string, v: number, min = 0): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${name}: expected an integer ≥ ${min}, got ${String(v)}`);
  }
}

/** `ERR_EMPTY` when `count` is 0. */
export function expectNonEmpty(name: string, count: number): void {
  if (count === 0) throw new KernelError('ERR_EMPTY', `${name}: must not be empty`);
}

/** `ERR_INVALID_METHOD` unless `m` is one of {@link LINKAGE_METHODS}. */
export function expectLinkageMethod(m: unknown): asserts m is LinkageMethod {
  if (typeof m !== 'string' || !(LINKAGE_METHODS as readonly string[]).includes(m)) {
    throw new KernelError(
      'ERR_INVALID_METHOD',
      `method: expected one of ${LINKAGE_METHODS.join(', ')}, got ${JSON.stringify(m)}`,
    );
  }
}

/** `ERR_INVALID_METHOD` unless `m` is one of {@link GROUPED_MODES}. */
export function expectGroupedMode(m: unknown): asserts m is GroupedMode {
  if (typeof m !== 'string' || !(GROUPED_MODES as readonly string[]).includes(m)) {
    throw new KernelError('ERR_INVALID_METHOD', `mode: expected one of ${GROUPED_MODES.join(', ')}, got ${JSON.stringify(m)}`);
  }
}

/**
 * Checks bag/group offsets: length ≥ 1 (ERR_EMPTY when there is no bag), `offsets[0] = 0`, strictly increasing
 * (every bag non-empty), last = `nrows`. All violations but "no bag" are `ERR_INVALID_ARGUMENT`.
 * @returns the number of bags
 */
export function expectOffsets(name: string, offsets: ArrayLike<number>, nrows: number): number {
  if (offsets.length < 2) {
    if (offsets.length === 1 && offsets[0] === 0 && nrows === 0) throw new KernelError('ERR_EMPTY', `${name}: no bag/group`);
    if (offsets.length === 0) throw new KernelError('ERR_EMPTY', `${name}: no bag/group (offsets must have length nbags+1 ≥ 2)`);
  }
  if (offsets[0] !== 0) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${name}: offsets[0] must be 0, got ${offsets[0]}`);
  }
  for (let i = 1; i < offsets.length; i++) {
    const a = offsets[i - 1]!;
    const b = offsets[i]!;
    if (!Number.isSafeInteger(b) || b <= a) {
      throw new KernelError(
        'ERR_INVALID_ARGUMENT',
        `${name}: offsets must be strictly increasing integers (every bag/group non-empty); offsets[${i - 1}]=${a}, offsets[${i}]=${b}`,
      );
    }
  }
  const last = offsets[offsets.length - 1]!;
  if (last !== nrows) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${name}: last offset must equal the number of rows ${nrows}, got ${last}`);
  }
  return offsets.length - 1;
}

/** Methods whose Lance–Williams update is only meaningful for Euclidean (non-negative) distances. */
export const EUCLIDEAN_METHODS: readonly LinkageMethod[] = ['ward', 'centroid', 'median'];

/** Full check of a condensed matrix for {@link linkage}: length n(n−1)/2, finite, non-negative for ward/centroid/median. */
export function expectCondensed(y: ArrayLike<number>, n: number, method: LinkageMethod): void {
  expectCount('n', n, 0);
  expectNonEmpty('n (number of observations)', n);
  expectLength('y', y, (n * (n - 1)) / 2, `condensed distances of n=${n} points: n(n-1)/2`);
  expectFinite('y', y);
  if (EUCLIDEAN_METHODS.includes(method)) {
    for (let i = 0; i < y.length; i++) {
      if (y[i]! < 0) {
        throw new KernelError(
          'ERR_INVALID_ARGUMENT',
          `y: value at index ${i} is ${y[i]}; method '${method}' needs non-negative (Euclidean) distances`,
        );
      }
    }
  }
}

/**
 * Checks that `z` is a valid SciPy linkage matrix of `n` points: length (n−1)·4, finite, ids integers with
 * `id < n + i` at row i, each id used at most once, non-negative heights, sizes equal to the sum of the children's.
 */
export function expectLinkageMatrix(z: ArrayLike<number>, n: number): void {
  expectCount('n', n, 0);
  expectNonEmpty('n (number of observations)', n);
  expectLength('Z', z, (n - 1) * 4, `(n-1)*4 for n=${n}`);
  expectFinite('Z', z);
  const size = new Float64Array(2 * n - 1);
  const used = new Uint8Array(2 * n - 1);
  for (let i = 0; i < n; i++) size[i] = 1;
  for (let i = 0; i < n - 1; i++) {
    for (let c = 0; c < 2; c++) {
      const id = z[4 * i + c]!;
      if (!Number.isInteger(id) || id < 0 || id >= n + i) {
        throw new KernelError('ERR_INVALID_ARGUMENT', `Z: row ${i} has cluster id ${id}; expected an integer in [0, ${n + i})`);
      }
      if (used[id]) throw new KernelError('ERR_INVALID_ARGUMENT', `Z: cluster id ${id} is merged twice (row ${i})`);
      used[id] = 1;
    }
    const a = z[4 * i]!;
    const b = z[4 * i + 1]!;
    if (a === b) throw new KernelError('ERR_INVALID_ARGUMENT', `Z: row ${i} merges cluster ${a} with itself`);
    if (z[4 * i + 2]! < 0) throw new KernelError('ERR_INVALID_ARGUMENT', `Z: row ${i} has negative height ${z[4 * i + 2]}`);
    const s = size[a]! + size[b]!;
    if (z[4 * i + 3] !== s) {
      throw new KernelError('ERR_INVALID_ARGUMENT', `Z: row ${i} has size ${z[4 * i + 3]}; its children hold ${s} observations`);
    }
    size[n + i] = s;
  }
}
