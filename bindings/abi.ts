/**
 * @file The binary interface between TypeScript and the compiled artifacts: the ABI version both must agree on,
 * the raw exports of the Node-API addon and of the WebAssembly module, and what the native and wasm adapters read
 * from the kernel table ({@link KERNELS} of `bindings/backend.ts`): each kernel's arguments, its wasm export, the
 * signature lines an artifact must report. Nothing outside `bindings/` uses these: the adapters turn the raw exports into a
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
import { expectFlag, expectTypedArray } from './validate.js';
import { KERNELS, type ArgKind, type AsyncTableKernel, type KernelBackend, type KernelDecl, type TableKernel } from './backend.js';
// Types named in the doc links above.
import type { ErrorCode } from './errors.js';

export type { ErrorCode } from './errors.js';

/**
 * ABI version of this TypeScript side. The addon's `abiVersion()` and the wasm module's version must equal it, else
 * the loader refuses the artifact with `ERR_ABI_MISMATCH`. It follows `ac_kernels::ABI_VERSION`
 * (`crates/kernels/src/lib.rs`), which is bumped when a convention or an export outside the kernel table changes (the
 * table's signatures are compared line by line, {@link signatureMismatch}); `test/bindings/select.test.ts` reads that
 * line and fails until this one agrees.
 */
export const ABI_VERSION = 6;

/** Raw exports of the `.node` addon (`crates/node`), exactly as napi-rs generates their typings. */
export type NativeExports = typeof NativeModule;

/**
 * Raw exports of the wasm-bindgen glue (`crates/wasm`), exactly as wasm-bindgen generates their typings, plus
 * `__wbg_reset_state` (re-instantiates the module; `--experimental-reset-state-function`). The `start` function
 * runs by itself at instantiation and is not part of the interface (nor is the `default` that TypeScript adds to
 * a CommonJS module's namespace).
 */
export type WasmExports = Omit<typeof WasmModule, 'start' | 'default'>;

/** A wasm export's name: `hc_` and the snake_case of the method's (`cutK` → `hc_cut_k`). */
type Snake<S extends string> = S extends `${infer C}${infer R}` ? `${C extends Lowercase<C> ? C : `_${Lowercase<C>}`}${Snake<R>}` : '';
/** The wasm module's export of a table kernel. */
export type WasmName<K extends TableKernel> = `hc_${Snake<K>}`;

/** The wasm module's export of a table kernel: `hc_` and the snake_case of its name. */
export function wasmName<K extends TableKernel>(kernel: K): WasmName<K> {
  return `hc_${kernel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)}` as WasmName<K>;
}

/** One argument of a table kernel: its name and {@link ArgKind}. */
export type KernelArg = readonly [name: string, kind: ArgKind];

const ARG_KIND_NAMES: readonly ArgKind[] = ['f32s', 'f64s', 'u32s', 'i32s', 'opt_u32s', 'opt_i32s', 'dim', 'k', 'f64', 'bool', 'mode'];

/** The arguments and result kind of a {@link KernelDecl}'s signature `(name: kind, …) -> kind`. */
function parseSignature(kernel: string, signature: string): { args: KernelArg[]; out: string } {
  const m = /^\((.*)\)\s*->\s*(\w+)$/.exec(signature.trim());
  if (!m) throw new Error(`KERNELS.${kernel}: malformed signature ${JSON.stringify(signature)}`);
  const args = m[1]!.split(',').map((a) => a.trim()).filter((a) => a !== '').map((a): KernelArg => {
    const [name, kind] = a.split(':').map((t) => t.trim()) as [string, string | undefined];
    if (!(ARG_KIND_NAMES as readonly (string | undefined)[]).includes(kind)) {
      throw new Error(`KERNELS.${kernel}: argument ${JSON.stringify(a)} has no known kind (${ARG_KIND_NAMES.join(', ')})`);
    }
    return [name, kind as ArgKind];
  });
  return { args, out: m[2]! };
}

const PARSED = Object.fromEntries(
  (Object.entries(KERNELS) as [TableKernel, KernelDecl][]).map(([k, decl]) => [k, parseSignature(k, decl.signature)]),
) as Record<TableKernel, { args: KernelArg[]; out: string }>;

/** The arguments of each table kernel, in order: what the adapters check and convert. */
export const KERNEL_ARGS = Object.fromEntries(Object.entries(PARSED).map(([k, p]) => [k, p.args])) as unknown as Readonly<
  Record<TableKernel, readonly KernelArg[]>
>;

type ArrayKind = abstract new (...a: never[]) => unknown;
/** The typed-array kind of each array {@link ArgKind}. */
const ARRAY_OF_KIND: Partial<Record<ArgKind, readonly ArrayKind[]>> = {
  f32s: [Float32Array], f64s: [Float64Array], u32s: [Uint32Array], i32s: [Int32Array], opt_u32s: [Uint32Array], opt_i32s: [Int32Array],
};

/**
 * The guards every adapter runs on a table kernel's arguments before they reach an export (see `bindings/validate.ts`):
 * each array must be a live typed array of its kind (an optional one may be absent), each `bool` a boolean or
 * absent; `ERR_INVALID_ARGUMENT` otherwise. Counts and numbers are the artifact's to judge, or `more`'s: an
 * adapter's own check of each argument, run in the same pass (so the first bad argument is the one reported).
 */
export function expectTableArgs(
  fn: string, args: readonly KernelArg[], values: readonly unknown[], more?: (name: string, kind: ArgKind, v: unknown) => void,
): void {
  args.forEach(([name, kind], i) => {
    const v = values[i];
    const kinds = ARRAY_OF_KIND[kind];
    if (kinds && !(kind.startsWith('opt_') && v === undefined)) expectTypedArray(fn, name, v, kinds);
    else if (kind === 'bool') expectFlag(fn, name, v);
    more?.(name, kind, v);
  });
}

/** The table kernels, in the table's order. */
export const TABLE_KERNELS = Object.keys(KERNELS) as TableKernel[];

/** The line of `ac_kernels::KERNEL_SIGNATURES` (`crates/kernels/src/table.rs`) that a table kernel must have. */
export function signatureLine(kernel: TableKernel): string {
  const { args, out } = PARSED[kernel];
  return `${kernel}(${args.map(([name, kind]) => `${name}:${kind},`).join('')})->${out}${KERNELS[kernel].async ? ` /${kernel}Async` : ''}`;
}

/** The kernel table as an artifact built from {@link KERNELS} reports it (its lines for the table kernels). */
export const KERNEL_TABLE_TEXT: string = TABLE_KERNELS.map((k) => `${signatureLine(k)}\n`).join('');

/**
 * Compares the kernel table an artifact reports (its `kernelSignatures()`) with {@link KERNELS}: `undefined` when
 * every table kernel has the same line, else what differs (for an `ERR_ABI_MISMATCH`).
 */
export function signatureMismatch(reported: unknown): string | undefined {
  if (typeof reported !== 'string') return `no kernel table (kernelSignatures() gave ${typeof reported})`;
  const lines = new Map(reported.split('\n').filter(Boolean).map((l) => [l.slice(0, l.indexOf('(')), l]));
  const diffs = TABLE_KERNELS.flatMap((k) => {
    const want = signatureLine(k);
    const got = lines.get(k);
    return got === want ? [] : [got === undefined ? `${k} missing (expected ${want})` : `${k} is ${got}, expected ${want}`];
  });
  return diffs.length > 0 ? `kernel table differs: ${diffs.join('; ')}` : undefined;
}

// Compile-time proof that each table line fits the generated typings: the method's arguments can be passed to the
// raw exports (an absent optional array becomes null / undefined) and their results are what the method returns.
type Fits<M extends keyof KernelBackend, F> = KernelBackend[M] extends (...a: infer P) => infer R
  ? F extends (...a: infer A) => infer FR
    ? Required<P> extends A
      ? FR extends R ? true : M
      : M
    : M
  : M;
type AsyncFits<K extends TableKernel> = K extends AsyncTableKernel ? Fits<`${K}Async`, NativeExports[`${K}Async`]> : true;
type TableFits = { [K in TableKernel]: Fits<K, NativeExports[K]> | Fits<K, WasmExports[WasmName<K>]> | AsyncFits<K> }[TableKernel];
type Misfits = Exclude<TableFits, true>;
const _tableFits: [Misfits] extends [never] ? true : Misfits = true;
void _tableFits;

/** The addon's exports that are not a line of {@link KERNELS}. */
const NATIVE_OTHER_EXPORTS = [
  'abiVersion', 'kernelSignatures', 'isa', 'threads', 'groupedNn', 'groupedNnAsync', 'groupedNnSelf', 'groupedNnSelfAsync',
  'linkageF64', 'linkageF32', 'linkageF64Async', 'linkageF32Async', 'panicForTests', 'panicForTestsAsync',
] as const satisfies readonly (keyof NativeExports)[];
/** The wasm module's exports that are not a line of {@link KERNELS}. */
const WASM_OTHER_EXPORTS = [
  'hc_abi_version', 'hc_kernel_signatures', 'hc_isa', 'hc_set_force_scalar', 'hc_grouped_nn', 'hc_grouped_nn_self',
  'hc_linkage_f64', 'hc_linkage_f32', 'hc_take_panic_message', 'hc_panic_for_tests', '__wbg_reset_state',
] as const satisfies readonly (keyof WasmExports)[];

type NativeExportName = TableKernel | `${AsyncTableKernel}Async` | (typeof NATIVE_OTHER_EXPORTS)[number];
type WasmExportName = WasmName<TableKernel> | (typeof WASM_OTHER_EXPORTS)[number];

/** Every key of {@link NativeExports}, at run time: the loader checks a loaded addon has them all. */
export const NATIVE_EXPORT_NAMES: readonly NativeExportName[] = [
  ...NATIVE_OTHER_EXPORTS,
  ...TABLE_KERNELS.flatMap((k): NativeExportName[] => (KERNELS[k].async ? [k, `${k}Async` as NativeExportName] : [k])),
];

/** Runtime list of the keys of {@link WasmExports}: a module missing one is refused with `ERR_ABI_MISMATCH`. */
export const WASM_EXPORT_NAMES: readonly WasmExportName[] = [...WASM_OTHER_EXPORTS, ...TABLE_KERNELS.map(wasmName)];

// Compile-time proof that the runtime lists name every generated export (and, by their types, nothing else).
type MissingNames = Exclude<keyof NativeExports, NativeExportName>;
const _allNamesListed: [MissingNames] extends [never] ? true : MissingNames = true;
void _allNamesListed;
type MissingWasmNames = Exclude<keyof WasmExports, WasmExportName>;
const _allWasmNamesListed: [MissingWasmNames] extends [never] ? true : MissingWasmNames = true;
void _allWasmNamesListed;
