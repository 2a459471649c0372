/** @file Pure-TS reference backend (STUB: being implemented). @module reference */
import type { KernelBackend } from '../../bindings/backend.js';

/** The pure-TS backend: reference implementation of every kernel and the test oracle. */
export function createJsBackend(): KernelBackend {
  throw new Error('js backend not implemented yet');
}
