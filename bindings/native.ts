/** @file Native backend adapter (STUB: being implemented). @module bindings/native */
import type { KernelBackend } from './backend.js';

/** Loads the `.node` addon and wraps it as a {@link KernelBackend}. @throws when it cannot load. */
export function loadNativeBackend(): KernelBackend {
  throw new Error('native backend not built yet');
}
