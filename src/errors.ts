/**
 * @file The library's error contract: one error class with a stable `code`, plus input checks shared by the
 * public API. Every backend throws the same codes for the same bad input.
 * @module errors
 */

/**
 * Stable error codes. Most name a bad value (shape, finiteness, emptiness, range, method); `ERR_MEMORY_LIMIT` is
 * thrown by `clusterImages` *before any work starts* when an explicitly requested exact computation (a linkage
 * other than Ward, which needs the n(n−1)/2 condensed distance matrix) would exceed the `memoryLimit` option;
 * Ward never throws it, it switches to `wardFromVectors` (O(n·d) memory) instead; the same holds for exact
 * unsupervised weights (`references: 'exact'`), which need the whole feature bank in memory. `ERR_IO` is a file
 * of a streamed feature bank (see `FeatureBank.store`) that could not be written or read. `ERR_CACHE` is a cache
 * folder (models, features) that cannot be created or written; `ERR_MODEL` covers a model that cannot be
 * downloaded (offline), converted or verified — both messages say how to fix it.
 */
export type ErrorCode =
  | 'ERR_SHAPE_MISMATCH'
  | 'ERR_NON_FINITE'
  | 'ERR_EMPTY'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_K_OUT_OF_RANGE'
  | 'ERR_INVALID_METHOD'
  | 'ERR_BACKEND_UNAVAILABLE'
  | 'ERR_ABI_MISMATCH'
  | 'ERR_IMAGE'
  | 'ERR_MODEL'
  | 'ERR_ABORTED'
  | 'ERR_MEMORY_LIMIT'
  | 'ERR_IO'
  | 'ERR_CACHE'
  | 'ERR_INTERNAL';

/** Runtime list of {@link ErrorCode}s. */
export const ERROR_CODES: readonly ErrorCode[] = [
  'ERR_SHAPE_MISMATCH', 'ERR_NON_FINITE', 'ERR_EMPTY', 'ERR_INVALID_ARGUMENT', 'ERR_K_OUT_OF_RANGE',
  'ERR_INVALID_METHOD', 'ERR_BACKEND_UNAVAILABLE', 'ERR_ABI_MISMATCH', 'ERR_IMAGE', 'ERR_MODEL',
  'ERR_ABORTED', 'ERR_MEMORY_LIMIT', 'ERR_IO', 'ERR_CACHE', 'ERR_INTERNAL',
];

/** Error thrown by the library for any failure it can name. `code` is stable; `message` says what was expected and what came. */
export class KernelError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KernelError';
    this.code = code;
  }
}

/** Throws `ERR_SHAPE_MISMATCH` unless `arr.length === expected`. */
export function checkLength(name: string, arr: ArrayLike<number>, expected: number, what: string): void {
  if (arr.length !== expected) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `${name}: expected length ${expected} (${what}), got ${arr.length}`);
  }
}

/** Throws `ERR_NON_FINITE` naming the first NaN/±Infinity index. */
export function checkFinite(name: string, arr: ArrayLike<number>): void {
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i]!;
    if (!Number.isFinite(v)) {
      throw new KernelError('ERR_NON_FINITE', `${name}: value at index ${i} is ${v}; all values must be finite`);
    }
  }
}

/** Throws `TypeError` unless `v` is a non-negative safe integer (or ≥ `min`). */
export function checkInt(name: string, v: unknown, min = 0): asserts v is number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v)) {
    throw new TypeError(`${name}: expected an integer, got ${typeof v === 'number' ? v : typeof v}`);
  }
  if (v < min) throw new RangeError(`${name}: expected an integer ≥ ${min}, got ${v}`);
}

/** What was wrong with the images given to `clusterImages` (see {@link InputError}). */
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
