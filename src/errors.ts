/**
 * @file The library's error contract, one class per kind of mistake, each with a stable `code`:
 * - {@link KernelError}: bad data (shapes, non-finite values, …) and failures the library can name (defined beside
 *   the kernels, in `bindings/errors.ts`, because every backend throws it too);
 * - {@link OptionError}: an option value `clusterImages` does not accept (a `RangeError`);
 * - {@link InputError}: a problem with the images given (a `KernelError`);
 * - a `TypeError` for an options object of the wrong shape: not an object, an unknown option, one outside its group.
 * @module errors
 */
export { ERROR_CODES, KernelError, type ErrorCode } from '../bindings/errors.js';
import { KernelError, type ErrorCode } from '../bindings/errors.js';

/**
 * An option value that `clusterImages` does not accept: out of its range, not in its list, of the wrong type, or
 * in conflict with another option. Thrown before any work, by the one validation of the options. A `RangeError`,
 * with the option's path (`'weights.tau'`) and a stable `code`: `ERR_K_OUT_OF_RANGE` for `k`,
 * `ERR_INVALID_METHOD` for `linkage`, `ERR_INVALID_ARGUMENT` for every other option.
 */
export class OptionError extends RangeError {
  /** Stable machine-readable code. */
  readonly code: ErrorCode;
  /** The option, as a path into the options object (`'k'`, `'weights.tau'`, `'resources.backend'`). */
  readonly option: string;
  constructor(option: string, message: string, code: ErrorCode = 'ERR_INVALID_ARGUMENT', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'OptionError';
    this.option = option;
    this.code = code;
  }
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
