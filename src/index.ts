/**
 * @file Public entry point of anomaly-clustering: re-exports only.
 * @module anomaly-clustering
 */
export * from './kernels.js';
export * from './errors.js';
export type { BackendName, Isa, LinkageMethod, GroupedMode, KernelBackend } from '../bindings/backend.js';
export { getBackend, availableBackends, loadErrors } from '../bindings/select.js';
