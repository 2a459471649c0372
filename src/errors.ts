/**
 * @file The library's error contract: one error class with a stable `code` (defined beside the kernels, in
 * `bindings/errors.ts`, because every backend throws it too).
 * @module errors
 */
export { ERROR_CODES, KernelError, type ErrorCode } from '../bindings/errors.js';
