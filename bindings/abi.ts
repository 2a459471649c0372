/**
 * @file The binary interface between TypeScript and the compiled artifacts: the ABI version both must agree on,
 * the raw exports of the Node-API addon and of the WebAssembly module, and the table of kernels that drives the
 * native and wasm adapters. Nothing outside `bindings/` uses these: the adapters turn the raw exports into a
 * {@link KernelBackend}.
 *
 * The raw export types are **derived from the typings the toolchains generate** (napi-rs writes
 * `bindings/native/anomaly-clustering.d.ts` from the `#[napi]` attributes of `crates/node`, wasm-bindgen writes
 * `bindings/wasm/ac_wasm.d.cts` from the `#[wasm_bindgen]` ones of `crates/wasm`), never written by hand; both are
 * build outputs (git-ignored) that `scripts/bootstrap.sh` produces before it runs `tsc`.
 *
 * Raw calling convention of the addon (`crates/node/src/lib.rs`):
 * - flat row-major typed arrays plus explicit dimensions (plain JS numbers; a dimension that is not a
 *   non-negative integer is `ERR_INVALID_ARGUMENT`); outputs are freshly allocated and returned;
 * - failures are thrown (sync) or rejected (`…Async`) as `Error`s whose `code` is one of the kernel codes of
 *   {@link ErrorCode} (`ERR_SHAPE_MISMATCH`, `ERR_NON_FINITE`, …, `ERR_INTERNAL` for a caught panic), or, for a JS
 *   value of the wrong type, a napi-rs status such as `InvalidArg` / `NumberExpected`;
 * - `…Async` exports copy their inputs and run on the libuv thread pool.
 *
 * Raw calling convention of the wasm module (`crates/wasm/src/lib.rs`, `hc_*` exports): dimensions are wasm32
 * `usize`s (the glue would wrap anything else silently, so the adapter checks them); a kernel error is thrown as
 * an `Error` whose message is `"<CODE>: <message>"`; a trap as a `WebAssembly.RuntimeError`.
 * @module bindings/abi
 */
import type * as NativeModule from './native/anomaly-clustering.js';
import type * as WasmModule from './wasm/ac_wasm.cjs';
// Types named in the doc links above.
import type { KernelBackend } from './backend.js';
import type { ErrorCode } from './errors.js';

export type { ErrorCode } from './errors.js';

/**
 * ABI version of this TypeScript side. The addon's `abiVersion()` and the wasm module's version must equal it, else
 * the loader refuses the artifact with `ERR_ABI_MISMATCH`. It follows `ac_kernels::ABI_VERSION`
 * (`crates/kernels/src/lib.rs`), which is bumped whenever a raw signature changes; `test/bindings/select.test.ts` reads that
 * line and fails until this one agrees.
 */
export const ABI_VERSION = 5;

/** Raw exports of the `.node` addon (`crates/node`), exactly as napi-rs generates their typings. */
export type NativeExports = typeof NativeModule;

/**
 * Raw exports of the wasm-bindgen glue (`crates/wasm`), exactly as wasm-bindgen generates their typings, plus
 * `__wbg_reset_state` (re-instantiates the module; `--experimental-reset-state-function`). The `start` function
 * runs by itself at instantiation and is not part of the interface (nor is the `default` that TypeScript adds to
 * a CommonJS module's namespace).
 */
export type WasmExports = Omit<typeof WasmModule, 'start' | 'default'>;

/**
 * How one argument of a kernel crosses the boundary:
 * - `'array'`: a typed array (kinds: `ARG_KINDS` of `bindings/validate.ts` by argument name, or `kinds` below);
 * - `'array?'`: the same or `undefined` (the addon receives `null`, the wasm glue `undefined`);
 * - `'dim'`: a count or dimension (wasm: checked to be a `u32` first; the addon checks it itself);
 * - `'flag'`: a boolean (`undefined` is `false`);
 * - `'number'`: any number (the kernel judges the value);
 * - `'k'`: a number of clusters (wasm: one it could never represent is `ERR_K_OUT_OF_RANGE`, as the kernel says).
 */
export type ArgKind = 'array' | 'array?' | 'dim' | 'flag' | 'number' | 'k';

/** One positional argument of a kernel: its name (for messages and `ARG_KINDS`) and how it crosses. */
export type ArgSpec = readonly [name: string, kind: ArgKind, kinds?: readonly (abstract new (...a: never[]) => unknown)[]];

/** A kernel whose {@link KernelBackend} method maps one to one onto a raw export of each artifact. */
export interface KernelSpec {
  /** The method's positional arguments, in order (the raw exports take the same). */
  readonly args: readonly ArgSpec[];
  /** The addon's export. */
  readonly native: keyof NativeExports;
  /** The addon's `…Async` export, when the method has an async twin. */
  readonly nativeAsync?: keyof NativeExports;
  /** The wasm module's export (the async twin runs it inside a promise). */
  readonly wasm: keyof WasmExports;
}

/**
 * The kernels the native and wasm adapters wrap from this table, one line each (the others, `groupedNN` and
 * `linkage`, choose between two exports and are written out in each adapter). Adding such a kernel: its Rust
 * function, its `kernel!` line in `crates/node` and its `#[wasm_bindgen]` export in `crates/wasm`, its js
 * reference, its method in {@link KernelBackend}, and one line here (the runtime export lists below follow from
 * it, and the compile-time checks below hold the line to the generated typings).
 */
export const KERNELS = {
  pdist: { args: [['x', 'array'], ['n', 'dim'], ['d', 'dim'], ['squared', 'flag']], native: 'pdist', nativeAsync: 'pdistAsync', wasm: 'hc_pdist' },
  cdist: {
    args: [['q', 'array'], ['nq', 'dim'], ['b', 'array'], ['nb', 'dim'], ['d', 'dim'], ['squared', 'flag']],
    native: 'cdist', nativeAsync: 'cdistAsync', wasm: 'hc_cdist',
  },
  softmaxWeights: { args: [['scores', 'array'], ['bagOffsets', 'array'], ['tau', 'number']], native: 'softmaxWeights', wasm: 'hc_softmax_weights' },
  weightedMean: {
    args: [['rows', 'array'], ['bagOffsets', 'array'], ['d', 'dim'], ['weights', 'array']], native: 'weightedMean', wasm: 'hc_weighted_mean',
  },
  maxPool: { args: [['rows', 'array'], ['bagOffsets', 'array'], ['d', 'dim']], native: 'maxPool', wasm: 'hc_max_pool' },
  linearMap: {
    args: [['x', 'array'], ['n', 'dim'], ['dIn', 'dim'], ['w', 'array'], ['dOut', 'dim']],
    native: 'linearMap', nativeAsync: 'linearMapAsync', wasm: 'hc_linear_map',
  },
  wardFromVectors: {
    args: [['x', 'array'], ['n', 'dim'], ['d', 'dim'], ['sizes', 'array?', [Uint32Array]]],
    native: 'wardFromVectors', nativeAsync: 'wardFromVectorsAsync', wasm: 'hc_ward_from_vectors',
  },
  cutK: { args: [['z', 'array'], ['n', 'dim'], ['k', 'k']], native: 'cutK', wasm: 'hc_cut_k' },
  cutHeight: { args: [['z', 'array'], ['n', 'dim'], ['height', 'number']], native: 'cutHeight', wasm: 'hc_cut_height' },
} as const satisfies Record<string, KernelSpec> & Partial<Record<keyof KernelBackend, KernelSpec>>;

/** The table's kernels by name. */
export type TableKernel = keyof typeof KERNELS;

// Compile-time proof that each table line fits the generated typings: the method's arguments can be passed to the
// raw exports (an absent optional array becomes null / undefined) and their results are what the method returns.
type Method = { [M in keyof KernelBackend]: KernelBackend[M] extends (...a: never[]) => unknown ? M : never }[keyof KernelBackend];
type Fits<M extends Method, F> = F extends (...a: infer A) => infer R
  ? Required<Parameters<KernelBackend[M]>> extends A
    ? R extends ReturnType<KernelBackend[M]> ? true : M
    : M
  : M;
type Spec<K extends TableKernel> = (typeof KERNELS)[K];
type AsyncFits<K extends TableKernel> = Spec<K> extends { nativeAsync: infer N extends keyof NativeExports }
  ? Fits<`${K}Async` & Method, NativeExports[N]>
  : true;
type TableFits = {
  [K in TableKernel]: Fits<K, NativeExports[Spec<K>['native']]> | Fits<K, WasmExports[Spec<K>['wasm']]> | AsyncFits<K>;
}[TableKernel];
type Misfits = Exclude<TableFits, true>;
const _tableFits: [Misfits] extends [never] ? true : Misfits = true;
void _tableFits;

/** The addon's exports that are not a line of {@link KERNELS}. */
const NATIVE_OTHER_EXPORTS = [
  'abiVersion', 'isa', 'threads', 'groupedNn', 'groupedNnAsync', 'groupedNnSelf', 'groupedNnSelfAsync',
  'linkageF64', 'linkageF32', 'linkageF64Async', 'linkageF32Async', 'panicForTests', 'panicForTestsAsync',
] as const satisfies readonly (keyof NativeExports)[];
/** The wasm module's exports that are not a line of {@link KERNELS}. */
const WASM_OTHER_EXPORTS = [
  'hc_abi_version', 'hc_isa', 'hc_set_force_scalar', 'hc_grouped_nn', 'hc_grouped_nn_self', 'hc_linkage_f64', 'hc_linkage_f32',
  'hc_take_panic_message', 'hc_panic_for_tests', '__wbg_reset_state',
] as const satisfies readonly (keyof WasmExports)[];

type TableNativeName = { [K in TableKernel]: Spec<K>['native'] | (Spec<K> extends { nativeAsync: infer A } ? A : never) }[TableKernel];
type TableWasmName = Spec<TableKernel>['wasm'];
type NativeExportName = TableNativeName | (typeof NATIVE_OTHER_EXPORTS)[number];
type WasmExportName = TableWasmName | (typeof WASM_OTHER_EXPORTS)[number];

/** Every key of {@link NativeExports}, at run time: the loader checks a loaded addon has them all. */
export const NATIVE_EXPORT_NAMES: readonly NativeExportName[] = [
  ...NATIVE_OTHER_EXPORTS,
  ...Object.values(KERNELS).flatMap((k): NativeExportName[] => ('nativeAsync' in k ? [k.native, k.nativeAsync] : [k.native])),
];

/** Runtime list of the keys of {@link WasmExports}: a module missing one is refused with `ERR_ABI_MISMATCH`. */
export const WASM_EXPORT_NAMES: readonly WasmExportName[] = [...WASM_OTHER_EXPORTS, ...Object.values(KERNELS).map((k) => k.wasm)];

// Compile-time proof that the runtime lists name every generated export (and, by their types, nothing else).
type MissingNames = Exclude<keyof NativeExports, NativeExportName>;
const _allNamesListed: [MissingNames] extends [never] ? true : MissingNames = true;
void _allNamesListed;
type MissingWasmNames = Exclude<keyof WasmExports, WasmExportName>;
const _allWasmNamesListed: [MissingWasmNames] extends [never] ? true : MissingWasmNames = true;
void _allWasmNamesListed;
