/**
 * @file The error contract of the kernels and of the whole library: one error class with a stable `code`. Every
 * backend throws the same codes for the same bad input; `src/errors.ts` re-exports it for the public API.
 * @module bindings/errors
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
