/**
 * @file The one contract that every kernel backend (native N-API addon, WebAssembly module, pure-TS reference)
 * implements. Nothing above `bindings/` sees a backend's raw exports: only this interface.
 *
 * Conventions shared by all backends:
 * - Data are flat, row-major typed arrays with explicit dimensions. `f32` data unless stated.
 * - Inputs are *already validated* by `src/` (shapes, finiteness, ranges). A backend must still never crash on
 *   bad input: it throws a `KernelError` (see `bindings/errors.ts`) instead.
 * - Methods return freshly allocated outputs.
 * - Every heavy method has an `…Async` twin that returns a promise and must not block the event loop for the
 *   duration of the work (native: libuv thread pool; wasm/js: may run synchronously inside the promise).
 * @module bindings/backend
 */

/** Names of the three interchangeable backends. */
export type BackendName = 'native' | 'wasm' | 'js';
/** Runtime list of {@link BackendName}s, in the loader's order of preference. */
export const BACKEND_NAMES = ['native', 'wasm', 'js'] as const;

/** Instruction set a backend's hot loops run on. */
export type Isa = 'scalar' | 'avx2' | 'simd128' | 'js';

/** Agglomerative linkage methods (SciPy's names and semantics). */
export type LinkageMethod = 'single' | 'complete' | 'average' | 'weighted' | 'ward' | 'centroid' | 'median';
/** Runtime list of {@link LinkageMethod}s. */
export const LINKAGE_METHODS = ['single', 'complete', 'average', 'weighted', 'ward', 'centroid', 'median'] as const;

/**
 * What {@link KernelBackend.groupedNN} reduces to, for each query row q (with its nearest-row distances
 * `dmin[q][g]` = min over rows r of group g of d(q, r)):
 * - `'per-group'`: the full `nq × ngroups` matrix `dmin` (row-major).
 * - `'min'`: `nq` values, the minimum over all groups (= nearest row of the whole base). Semi-supervised scores.
 * - `'mean-excluding-own'`: `nq` values, the mean of `dmin[q][g]` over groups g ≠ `queryGroups[q]`
 *   (if `queryGroups[q]` is -1 or out of range no group is excluded). Unsupervised scores.
 */
export type GroupedMode = 'per-group' | 'min' | 'mean-excluding-own';
/** Runtime list of {@link GroupedMode}s. */
export const GROUPED_MODES = ['per-group', 'min', 'mean-excluding-own'] as const;

/** Arguments of the grouped nearest-neighbour search. */
export interface GroupedNNArgs {
  /** Query rows, size `nq*d`. */
  queries: Float32Array;
  /** Number of query rows. */
  nq: number;
  /** Base rows, size `nb*d`, the groups stored one after another. */
  base: Float32Array;
  /** Group boundaries in rows of `base`: length `ngroups+1`, `offsets[0]=0`, non-decreasing, last = nb. Every group non-empty. */
  groupOffsets: Uint32Array;
  /** Row dimension. */
  d: number;
  /** Reduction, see {@link GroupedMode}. */
  mode: GroupedMode;
  /** For `'mean-excluding-own'`: the group index of each query row (length nq; -1 = none). */
  queryGroups?: Int32Array;
  /** Distances are Euclidean unless `squared` (then squared Euclidean). @default false */
  squared?: boolean;
  /**
   * Set by the caller when this is the **self-join** of the unsupervised scores: `queries` and `base` are the same
   * memory (same buffer, byteOffset and length) and, for `'mean-excluding-own'`, `queryGroups[r]` is the group
   * that contains row r. Backends then multiply each pair of groups once and reduce it both ways (about half
   * the work), with the same results as without the flag. A backend re-checks the cheap conditions and ignores
   * the flag when they do not hold. @default false
   */
  selfJoin?: boolean;
}

/**
 * How one argument of a table kernel crosses the boundary; the kinds of the Rust table (`crates/kernels/src/table.rs`):
 * `f32s` `f64s` `u32s` `i32s` a typed array of that element, `opt_u32s` `opt_i32s` the same or absent, `dim` and
 * `k` a count (`k` a number of clusters), `f64` a number, `bool` a boolean, `mode` a {@link GroupedMode}.
 */
export type ArgKind = 'f32s' | 'f64s' | 'u32s' | 'i32s' | 'opt_u32s' | 'opt_i32s' | 'dim' | 'k' | 'f64' | 'bool' | 'mode';

/** A method type of the contract. */
type Method = (...args: never[]) => unknown;

/**
 * One line of {@link KERNELS}: the method's TypeScript type `F` (names, optional arguments) and its signature as it
 * crosses the boundary, `(name: kind, …) -> kind` in the {@link ArgKind}s of the Rust table.
 */
export interface KernelDecl<F extends Method = Method, Async extends boolean = boolean> {
  /** `(name: kind, …) -> kind`: the Rust table's line for this kernel (without its names). */
  readonly signature: string;
  /** Whether the method has an `…Async` twin (the addon's runs on the libuv thread pool). */
  readonly async: Async;
  /** Type only: the method. */
  readonly method?: F;
}

/** A line of {@link KERNELS} whose method has no `…Async` twin. */
function kernel<F extends Method>(signature: string): KernelDecl<F, false> {
  return { signature, async: false };
}

/** A line of {@link KERNELS} whose method has an `…Async` twin: same arguments, a promise of the same result. */
function asyncKernel<F extends Method>(signature: string): KernelDecl<F, true> {
  return { signature, async: true };
}

/**
 * The table kernels of the contract, **one line each**: the method (and, for an {@link asyncKernel}, its `…Async`
 * twin) that every backend implements, and how it crosses the boundary. The native and wasm adapters are generated
 * from it; the loaders compare each line with the one the compiled artifact reports (`kernelSignatures`), so an
 * artifact built from another table is refused. The two kernels that take an object or choose between exports,
 * `groupedNN` and `linkage`, are written out in {@link KernelBackend} instead.
 *
 * Adding a kernel: its Rust function and its line in the Rust table (`crates/kernels/src/table.rs`), its js
 * reference (`bindings/reference/`), and its line here.
 */
export const KERNELS = {
  /**
   * Condensed pairwise distances of `n` rows (SciPy layout: upper triangle, row-major, length n(n−1)/2).
   * @param x rows, size `n*d`
   */
  pdist: asyncKernel<(x: Float32Array, n: number, d: number, squared: boolean) => Float32Array>('(x: f32s, n: dim, d: dim, squared: bool) -> f32s'),
  /** Distances between `nq` query rows and `nb` base rows: `nq × nb`, row-major. */
  cdist: asyncKernel<(q: Float32Array, nq: number, b: Float32Array, nb: number, d: number, squared: boolean) => Float32Array>(
    '(q: f32s, nq: dim, b: f32s, nb: dim, d: dim, squared: bool) -> f32s',
  ),
  /**
   * Softmax of `scores / tau` within each bag (bags given by `bagOffsets`, length nbags+1), max-subtracted.
   * `tau = 0`: hard arg-max, ties share the weight equally. `tau = Infinity`: uniform weights.
   * Output has the length of `scores`, each bag sums to 1.
   */
  softmaxWeights: kernel<(scores: Float32Array, bagOffsets: Uint32Array, tau: number) => Float32Array>('(scores: f32s, bagOffsets: u32s, tau: f64) -> f32s'),
  /** Weighted mean of each bag's rows: output `nbags × d`. `weights` has one entry per row, each bag's sum > 0. */
  weightedMean: kernel<(rows: Float32Array, bagOffsets: Uint32Array, d: number, weights: Float32Array) => Float32Array>(
    '(rows: f32s, bagOffsets: u32s, d: dim, weights: f32s) -> f32s',
  ),
  /** Per-dimension max over each bag's rows: output `nbags × d`. */
  maxPool: kernel<(rows: Float32Array, bagOffsets: Uint32Array, d: number) => Float32Array>('(rows: f32s, bagOffsets: u32s, d: dim) -> f32s'),
  /**
   * Linear map of `n` rows: `x` (`n × dIn`, row-major) times the transpose of `w` (`dOut × dIn`, row-major), so
   * row `i` of the `n × dOut` output is `w · x_i`. Used to whiten patch banks. Inputs must be finite; a result that
   * overflows f32 is an `ERR_INVALID_ARGUMENT`. `n = 0` gives an empty array.
   */
  linearMap: asyncKernel<(x: Float32Array, n: number, dIn: number, w: Float32Array, dOut: number) => Float32Array>(
    '(x: f32s, n: dim, dIn: dim, w: f32s, dOut: dim) -> f32s',
  ),
  /**
   * Ward linkage straight from the `n ≥ 1` rows `x` (`n*d`, row-major): the NN-chain on cluster centroids, `O(n·d)`
   * memory instead of the n(n−1)/2 condensed matrix, `O(n²·d)` time. Same Z as `linkage(pdist(x), n, 'ward')` up
   * to floating-point rounding (heights ~1e-12 relative; merge order may differ only between merges whose heights
   * tie up to that rounding). Centroids in f64.
   *
   * `sizes` (length n, integers ≥ 1; absent = all 1): row i is the centroid of a cluster of `sizes[i]`
   * observations, and the Ward distance between clusters of a and b observations is `sqrt(2ab/(a+b))·‖c_a − c_b‖`
   * (size-weighted Ward, e.g. on micro-clusters). Column 3 of Z still counts rows (leaves), not observations.
   */
  wardFromVectors: asyncKernel<(x: Float32Array, n: number, d: number, sizes?: Uint32Array) => Float64Array>(
    '(x: f32s, n: dim, d: dim, sizes: opt_u32s) -> f64s',
  ),
  /** Flat clusters: cut Z into exactly `k` clusters (1 ≤ k ≤ n). **0-based** labels numbered in order of first appearance over the observations. */
  cutK: kernel<(z: Float64Array, n: number, k: number) => Int32Array>('(z: f64s, n: dim, k: k) -> i32s'),
  /** Flat clusters: merges with height ≤ `height` are kept. **0-based** labels, numbered in order of first appearance. */
  cutHeight: kernel<(z: Float64Array, n: number, height: number) => Int32Array>('(z: f64s, n: dim, height: f64) -> i32s'),
} as const;

/** The names of the {@link KERNELS}. */
export type TableKernel = keyof typeof KERNELS;
/** The table kernels that have an `…Async` twin. */
export type AsyncTableKernel = { [K in TableKernel]: (typeof KERNELS)[K] extends KernelDecl<Method, true> ? K : never }[TableKernel];

/** The method of a line of {@link KERNELS}. */
type MethodOf<D> = D extends KernelDecl<infer F> ? F : never;
/** The same arguments, a promise of the same result. */
type Promised<F> = F extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : never;

/** The methods of the {@link KERNELS} (documented there). */
export type TableMethods = { [K in keyof typeof KERNELS]: MethodOf<(typeof KERNELS)[K]> };
/** The `…Async` twins of the {@link KERNELS} that have one. */
export type AsyncTableMethods = { [K in AsyncTableKernel as `${K}Async`]: Promised<MethodOf<(typeof KERNELS)[K]>> };

/**
 * The kernel contract. All three backends implement it and must give the same answers: the {@link KERNELS}
 * (`pdist`, `cdist`, `softmaxWeights`, `weightedMean`, `maxPool`, `linearMap`, `wardFromVectors`, `cutK`,
 * `cutHeight`, and the `…Async` twins of `pdist`, `cdist`, `linearMap`, `wardFromVectors`), and the two written out
 * below.
 */
export interface KernelBackend extends TableMethods, AsyncTableMethods {
  /** Which backend this is. */
  readonly name: BackendName;
  /** Instruction set in use (after run-time detection and any `ANOMALY_CLUSTERING_ISA=scalar` override). */
  readonly isa: Isa;
  /** Worker threads the heavy kernels use (1 for wasm and js). */
  readonly threads: number;

  /** Grouped nearest-neighbour search; output length `nq*ngroups` for `'per-group'`, else `nq`. */
  groupedNN(args: GroupedNNArgs): Float32Array;
  groupedNNAsync(args: GroupedNNArgs): Promise<Float32Array>;

  /**
   * Agglomerative clustering of a condensed distance matrix of `n ≥ 1` points. Returns SciPy's linkage matrix Z,
   * `(n−1) × 4` row-major `[a, b, height, size]` (a < b; the cluster made at step i has id n+i), computed in f64.
   */
  linkage(y: Float64Array | Float32Array, n: number, method: LinkageMethod): Float64Array;
  linkageAsync(y: Float64Array | Float32Array, n: number, method: LinkageMethod): Promise<Float64Array>;
}
