/**
 * @file What every stage takes from the run besides its data: the kernel backend (given by name or as an object)
 * and the one abort check (every stage that honours an `AbortSignal` throws the same `KernelError`
 * `ERR_ABORTED`, the signal's reason as `cause`, named after the stage that stopped).
 * @module pipeline/context
 */
import type { BackendName, KernelBackend } from '../../bindings/backend.js';
import { getBackend } from '../../bindings/select.js';
import { KernelError } from '../errors.js';

/** The backend option of a stage: a backend object as it is, a name (or nothing) through `getBackend`. */
export function resolveBackend(b: BackendName | KernelBackend | undefined): KernelBackend {
  return typeof b === 'object' && b !== null ? b : getBackend(b);
}

/** The `ERR_ABORTED` error of stage `what` for an aborted `signal` (for promises that reject rather than throw). */
export function abortError(signal: AbortSignal, what: string): KernelError {
  const reason = signal.reason instanceof Error ? ` (${signal.reason.message})` : '';
  return new KernelError('ERR_ABORTED', `${what}: aborted${reason}`, { cause: signal.reason });
}

/**
 * Throws {@link abortError} when `signal` has fired; nothing otherwise.
 * @throws {KernelError} `ERR_ABORTED`
 */
export function throwIfAborted(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw abortError(signal, what);
}
