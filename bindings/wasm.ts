/** @file WebAssembly backend adapter (STUB: being implemented). @module bindings/wasm */
import type { KernelBackend } from './backend.js';

/** Instantiates the wasm module (synchronously) and wraps it as a {@link KernelBackend}. @throws when it cannot load. */
export function loadWasmBackend(): KernelBackend {
  throw new Error('wasm backend not built yet');
}
