/**
 * @file The binary interface between TypeScript and the compiled artifacts: the ABI version both must agree on,
 * and the raw exports of the Node-API addon, typed once here (usearch's `CompiledIndex` idea). Nothing outside
 * `bindings/` uses these types: adapters turn them into a {@link KernelBackend}.
 *
 * Raw calling convention of the addon (`crates/node/src/lib.rs`):
 * - flat row-major typed arrays plus explicit dimensions (plain JS numbers; a dimension that is not a
 *   non-negative integer is `ERR_INVALID_ARGUMENT`); outputs are freshly allocated and returned;
 * - failures are thrown (sync) or rejected (`…Async`) as `Error`s whose `code` is one of the kernel codes of
 *   {@link ErrorCode} (`ERR_SHAPE_MISMATCH`, `ERR_NON_FINITE`, …, `ERR_INTERNAL` for a caught panic), or, for a JS
 *   value of the wrong type, a napi-rs status such as `InvalidArg` / `NumberExpected`;
 * - `…Async` exports copy their inputs and run on the libuv thread pool.
 * @module bindings/abi
 */
// Types named in the doc links below.
import type { GroupedMode, KernelBackend, LinkageMethod } from './backend.js';

export type { ErrorCode } from './errors.js';

/**
 * ABI version of this TypeScript side. The addon's `abiVersion()` and the wasm module's version must equal it, else
 * the loader refuses the artifact with `ERR_ABI_MISMATCH`. Bump it together with `ac_kernels::ABI_VERSION`
 * whenever a raw signature below changes.
 */
export const ABI_VERSION = 5;

/** Raw exports of the `.node` addon (`crates/node`), exactly as napi-rs generates them. */
export interface NativeExports {
  /** `ac_kernels::ABI_VERSION` the addon was built with. */
  abiVersion(): number;
  /** ISA the kernels dispatch to now: `'avx2'` or `'scalar'` (after `ANOMALY_CLUSTERING_ISA=scalar`). */
  isa(): string;
  /** Threads of the addon's rayon pool (after `ANOMALY_CLUSTERING_THREADS`). */
  threads(): number;

  /** Condensed distances, length n(n−1)/2. `x`: n*d. */
  pdist(x: Float32Array, n: number, d: number, squared: boolean): Float32Array;
  pdistAsync(x: Float32Array, n: number, d: number, squared: boolean): Promise<Float32Array>;
  /** nq × nb distances. `q`: nq*d, `b`: nb*d. */
  cdist(q: Float32Array, nq: number, b: Float32Array, nb: number, d: number, squared: boolean): Float32Array;
  cdistAsync(q: Float32Array, nq: number, b: Float32Array, nb: number, d: number, squared: boolean): Promise<Float32Array>;
  /** Grouped nearest-neighbour search; `mode` is a {@link GroupedMode} string, `queryGroups` may be null. */
  groupedNn(
    queries: Float32Array,
    nq: number,
    base: Float32Array,
    groupOffsets: Uint32Array,
    d: number,
    mode: string,
    queryGroups: Int32Array | undefined | null,
    squared: boolean,
  ): Float32Array;
  groupedNnAsync(
    queries: Float32Array,
    nq: number,
    base: Float32Array,
    groupOffsets: Uint32Array,
    d: number,
    mode: string,
    queryGroups: Int32Array | undefined | null,
    squared: boolean,
  ): Promise<Float32Array>;
  /**
   * Grouped search of `base` against itself, each row's own group being the group it belongs to (the symmetric
   * self-join: each pair of groups multiplied once). Same result as `groupedNn(base, nb, base, …, rowGroups, …)`.
   */
  groupedNnSelf(base: Float32Array, groupOffsets: Uint32Array, d: number, mode: string, squared: boolean): Float32Array;
  groupedNnSelfAsync(base: Float32Array, groupOffsets: Uint32Array, d: number, mode: string, squared: boolean): Promise<Float32Array>;
  /** Per-bag softmax of scores/tau, same length as `scores`. */
  softmaxWeights(scores: Float32Array, bagOffsets: Uint32Array, tau: number): Float32Array;
  /** nbags × d weighted means. */
  weightedMean(rows: Float32Array, bagOffsets: Uint32Array, d: number, weights: Float32Array): Float32Array;
  /** nbags × d maxima. */
  maxPool(rows: Float32Array, bagOffsets: Uint32Array, d: number): Float32Array;
  /** n × dOut rows `x · wᵀ`. `x`: n*dIn, `w`: dOut*dIn. */
  linearMap(x: Float32Array, n: number, dIn: number, w: Float32Array, dOut: number): Float32Array;
  linearMapAsync(x: Float32Array, n: number, dIn: number, w: Float32Array, dOut: number): Promise<Float32Array>;
  /** SciPy Z ((n−1) × 4) of an f64 condensed matrix; `method` is a {@link LinkageMethod} string. */
  linkageF64(y: Float64Array, n: number, method: string): Float64Array;
  /** SciPy Z of an f32 condensed matrix (computed in f64). */
  linkageF32(y: Float32Array, n: number, method: string): Float64Array;
  linkageF64Async(y: Float64Array, n: number, method: string): Promise<Float64Array>;
  linkageF32Async(y: Float32Array, n: number, method: string): Promise<Float64Array>;
  /**
   * Ward Z ((n−1) × 4) straight from the n × d rows `x`, without the condensed matrix; scans on the rayon pool.
   * `sizes` (null = all 1): row i is the centroid of `sizes[i]` observations (size-weighted Ward).
   */
  wardFromVectors(x: Float32Array, n: number, d: number, sizes: Uint32Array | undefined | null): Float64Array;
  wardFromVectorsAsync(x: Float32Array, n: number, d: number, sizes: Uint32Array | undefined | null): Promise<Float64Array>;
  /** n 0-based labels, exactly k clusters. */
  cutK(z: Float64Array, n: number, k: number): Int32Array;
  /** n 0-based labels, merges of height ≤ `height` kept. */
  cutHeight(z: Float64Array, n: number, height: number): Int32Array;

  /** Test hook: panics inside the addon's failure boundary; must throw `ERR_INTERNAL`, never abort. */
  panicForTests(message: string): void;
  /** Test hook: the same panic on the libuv thread pool; must reject with `ERR_INTERNAL`. */
  panicForTestsAsync(message: string): Promise<never>;
}

/** Every key of {@link NativeExports}, at run time: the loader checks a loaded addon has them all. */
export const NATIVE_EXPORT_NAMES = [
  'abiVersion',
  'isa',
  'threads',
  'pdist',
  'pdistAsync',
  'cdist',
  'cdistAsync',
  'groupedNn',
  'groupedNnAsync',
  'groupedNnSelf',
  'groupedNnSelfAsync',
  'softmaxWeights',
  'weightedMean',
  'maxPool',
  'linearMap',
  'linearMapAsync',
  'linkageF64',
  'linkageF32',
  'linkageF64Async',
  'linkageF32Async',
  'wardFromVectors',
  'wardFromVectorsAsync',
  'cutK',
  'cutHeight',
  'panicForTests',
  'panicForTestsAsync',
] as const satisfies readonly (keyof NativeExports)[];

// Compile-time proof that NATIVE_EXPORT_NAMES lists every key of NativeExports (and nothing else).
type MissingNames = Exclude<keyof NativeExports, (typeof NATIVE_EXPORT_NAMES)[number]>;
const _allNamesListed: [MissingNames] extends [never] ? true : MissingNames = true;
void _allNamesListed;

// WasmExports: the raw exports of the WebAssembly module (`crates/wasm`, `hc_*` functions plus memory) are typed
// by the wasm adapter's owner and belong here too, next to NativeExports, as the single source of truth; until
// they move, see `bindings/wasm.ts`.
