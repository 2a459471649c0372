/**
 * @file The library's error contract: one error class with a stable `code` (defined beside the kernels, in
 * `bindings/errors.ts`, because every backend throws it too).
 * @module errors
 */
export { ERROR_CODES, KernelError, type ErrorCode } from '../bindings/errors.js';
import { KernelError } from '../bindings/errors.js';

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
