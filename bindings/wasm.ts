/**
 * @file WebAssembly backend: loads the module built by `scripts/build-wasm.mjs` (`bindings/wasm/`, gitignored)
 * **synchronously** and wraps its raw `hc_*` exports as a {@link KernelBackend}.
 *
 * - Loading: the wasm-bindgen glue is CommonJS (`ac_wasm.cjs`, `--target nodejs`), so `createRequire` loads it
 *   synchronously from this ES module; the glue reads `ac_wasm_bg.wasm` with `readFileSync` and instantiates it
 *   with `new WebAssembly.Module` + `new WebAssembly.Instance`. The folder is found relative to this file, both
 *   from the sources (`bindings/wasm.ts` → `bindings/wasm/`) and from the compiled `dist/bindings/wasm.js`
 *   (→ `../../bindings/wasm/`); `ANOMALY_CLUSTERING_WASM_PATH` (that folder, or a file in it) overrides.
 * - Copies: wasm-bindgen copies each typed array into linear memory and each result out into a fresh typed array.
 * - Errors: a kernel error comes back as a JS `Error` whose message is `"<CODE>: <message>"`; it is rebuilt here
 *   as the same coded {@link KernelError} that the native addon throws. A trap (`WebAssembly.RuntimeError`, e.g.
 *   a panic under panic=abort, which the Rust side is written never to reach) becomes `ERR_INTERNAL`, and the
 *   module is re-instantiated first because a trapped instance may hold corrupt state.
 * @module bindings/wasm
 */
import { statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ABI_VERSION, KERNEL_ARGS, TABLE_KERNELS, WASM_EXPORT_NAMES, expectTableArgs, signatureMismatch, wasmName, type KernelArg, type WasmExports,
} from './abi.js';
import { KERNELS, type AsyncTableMethods, type GroupedNNArgs, type Isa, type KernelBackend, type LinkageMethod, type TableMethods } from './backend.js';
import { isSelfJoin } from './selfjoin.js';
import { ARG_KINDS, expectGroupedArgs, expectNumber, expectString, expectTypedArray as arr } from './validate.js';
import { ERROR_CODES, KernelError, type ErrorCode } from './errors.js';

/** File names inside the build folder. */
export const WASM_GLUE_FILE = 'ac_wasm.cjs';
/** The module itself (loaded by the glue from its own folder). */
export const WASM_BINARY_FILE = 'ac_wasm_bg.wasm';
/** Environment variable naming the build folder (or a file in it) to load instead of the default. */
export const WASM_PATH_ENV = 'ANOMALY_CLUSTERING_WASM_PATH';

export { WASM_EXPORT_NAMES, type WasmExports } from './abi.js';

const ISAS: readonly Isa[] = ['scalar', 'avx2', 'simd128', 'js'];
const U32_MAX = 0xffff_ffff;

/**
 * The build folders to try, in order.
 * @param env process environment (for {@link WASM_PATH_ENV})
 * @param here URL of this module (`import.meta.url`), so that both `bindings/wasm.ts` and `dist/bindings/wasm.js` work
 */
export function wasmSearchDirs(env: Record<string, string | undefined> = process.env, here: string = import.meta.url): string[] {
  const override = env[WASM_PATH_ENV];
  if (override) {
    const p = resolve(override);
    let isDir: boolean | undefined;
    try {
      isDir = statSync(p).isDirectory();
    } catch {
      /* missing: fine for a file name (reported as not built), an error for anything else */
    }
    if (isDir) return [p];
    const name = basename(p);
    if (name !== WASM_GLUE_FILE && name !== WASM_BINARY_FILE) {
      throw new KernelError(
        'ERR_BACKEND_UNAVAILABLE',
        isDir === undefined
          ? `${WASM_PATH_ENV}=${override}: no such folder`
          : `${WASM_PATH_ENV}: expected the wasm build folder or its ${WASM_GLUE_FILE} / ${WASM_BINARY_FILE}, got ${override}`,
      );
    }
    return [dirname(p)];
  }
  return [fileURLToPath(new URL('./wasm/', here)), fileURLToPath(new URL('../../bindings/wasm/', here))];
}

/**
 * Loads the raw glue synchronously (memoised by Node's `require` cache: one instance per process).
 * @throws {KernelError} `ERR_BACKEND_UNAVAILABLE` when no build is found or it fails to load (the error is the `cause`)
 */
export function loadWasmExports(env: Record<string, string | undefined> = process.env, here: string = import.meta.url): WasmExports {
  const dirs = wasmSearchDirs(env, here);
  const dir = dirs.find((d) => {
    try {
      return statSync(join(d, WASM_GLUE_FILE)).isFile() && statSync(join(d, WASM_BINARY_FILE)).isFile();
    } catch {
      return false;
    }
  });
  if (!dir) {
    throw new KernelError(
      'ERR_BACKEND_UNAVAILABLE',
      `wasm module not built: no ${WASM_GLUE_FILE} + ${WASM_BINARY_FILE} in ${dirs.join(' or ')} (run \`npm run build:wasm\`)`,
    );
  }
  const glue = join(dir, WASM_GLUE_FILE);
  try {
    return createRequire(here)(glue) as WasmExports;
  } catch (e) {
    throw new KernelError('ERR_BACKEND_UNAVAILABLE', `wasm module ${glue} failed to load: ${(e as Error)?.message ?? e}`, { cause: e });
  }
}

/** Instantiates the wasm module (synchronously) and wraps it as a {@link KernelBackend}. @throws {KernelError} when it cannot load (`ERR_BACKEND_UNAVAILABLE`, `ERR_ABI_MISMATCH`). */
export function loadWasmBackend(): KernelBackend {
  return createWasmBackend(loadWasmExports());
}

/**
 * Rebuilds the error an export threw as a {@link KernelError}. Exported for tests.
 * @param fn the export's name, for messages
 * @param onTrap called after a trap: re-instantiates the module and returns what to add to the message (the panic
 *   message, how the reset went)
 */
export function toKernelError(fn: string, e: unknown, onTrap: () => string): KernelError {
  if (e instanceof KernelError) return e;
  if (e instanceof WebAssembly.RuntimeError) {
    return new KernelError('ERR_INTERNAL', `wasm ${fn} trapped (${e.message})${onTrap()}`, { cause: e });
  }
  if (e instanceof Error) {
    const m = /^(ERR_[A-Z_]+): ([\s\S]*)$/.exec(e.message);
    if (m && (ERROR_CODES as readonly string[]).includes(m[1]!)) return new KernelError(m[1] as ErrorCode, m[2]!);
  }
  return new KernelError('ERR_INTERNAL', `wasm ${fn} failed: ${(e as Error)?.message ?? String(e)}`, { cause: e });
}

/** `v` as a wasm32 `usize`: wasm-bindgen would silently wrap a negative, fractional or too large number. */
function u32(fn: string, name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > U32_MAX) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${fn}: ${name} must be an integer in 0..=${U32_MAX}, got ${v}`);
  }
  return v;
}

/**
 * Wraps raw exports as a {@link KernelBackend} (pure: tests inject fakes). Checks the ABI version and the export
 * list, and applies `ANOMALY_CLUSTERING_ISA=scalar`.
 * @throws {KernelError} `ERR_ABI_MISMATCH` when the module is from another ABI version or lacks an export
 */
export function createWasmBackend(raw: WasmExports, env: Record<string, string | undefined> = process.env): KernelBackend {
  const missing = WASM_EXPORT_NAMES.filter((k) => typeof (raw as unknown as Record<string, unknown>)[k] !== 'function');
  if (missing.length > 0) {
    throw new KernelError('ERR_ABI_MISMATCH', `wasm module lacks exports ${missing.join(', ')} (rebuild it: npm run build:wasm)`);
  }
  const forceScalar = env.ANOMALY_CLUSTERING_ISA === 'scalar';
  const init = (): void => raw.hc_set_force_scalar(forceScalar);
  /** After a trap: the panic message (still in the trapped instance's memory), then a fresh instance. */
  const onTrap = (): string => {
    let msg = '';
    try {
      const panic = raw.hc_take_panic_message();
      if (panic) msg += `: ${panic.replace(/\s*\n\s*/g, ' ')}`; // "panicked at file:line:col: message"
    } catch {
      /* the trapped instance cannot even say why */
    }
    try {
      raw.__wbg_reset_state();
      init();
      return `${msg}; the module was re-instantiated`;
    } catch (re) {
      return `${msg}; re-instantiating the module failed too: ${(re as Error)?.message ?? re}`;
    }
  };
  /** Runs one export; every failure leaves as a KernelError. */
  function call<T>(fn: string, f: () => T): T {
    try {
      return f();
    } catch (e) {
      throw toKernelError(fn, e, onTrap);
    }
  }

  const abi = call('hc_abi_version', () => raw.hc_abi_version());
  if (abi !== ABI_VERSION) {
    throw new KernelError('ERR_ABI_MISMATCH', `wasm module has ABI version ${abi}, expected ${ABI_VERSION} (rebuild it: npm run build:wasm)`);
  }
  const mismatch = signatureMismatch(call('hc_kernel_signatures', () => raw.hc_kernel_signatures()));
  if (mismatch) throw new KernelError('ERR_ABI_MISMATCH', `wasm module: ${mismatch} (rebuild it: npm run build:wasm)`);
  call('hc_set_force_scalar', init);
  const isa = call('hc_isa', () => raw.hc_isa());
  if (!(ISAS as readonly string[]).includes(isa)) {
    throw new KernelError('ERR_ABI_MISMATCH', `wasm module reports isa ${JSON.stringify(isa)}, expected one of ${ISAS.join(', ')}`);
  }

  type RawFn = (...args: unknown[]) => unknown;
  const fns = raw as unknown as Record<string, RawFn>;
  /**
   * One table kernel ({@link KERNELS}): the arrays must be of the kinds the glue expects (it would convert another
   * kind silently, or throw a TypeError for BigInt arrays), flags booleans and numbers numbers; then the dimensions
   * must be wasm32 `usize`s (the glue would wrap anything else).
   */
  const tableKernel = (fn: string, exportName: string, args: readonly KernelArg[]) => (...values: unknown[]): unknown =>
    call(fn, () => {
      expectTableArgs(fn, args, values, (name, kind, v) => {
        if (kind === 'f64') expectNumber(fn, name, v);
        else if (kind === 'k' && (!Number.isInteger(v) || (v as number) < 0 || (v as number) > U32_MAX)) {
          // Same code as the kernels for a k they could never see (negative, fractional, beyond u32).
          throw new KernelError('ERR_K_OUT_OF_RANGE', `k must be in 1..=${String(values[args.findIndex(([a]) => a === 'n')])}, got ${String(v)}`);
        }
      });
      const converted = args.map(([name, kind], i) => (kind === 'dim' ? u32(fn, name, values[i] as number) : kind === 'bool' ? !!values[i] : values[i]));
      return fns[exportName]!(...converted);
    });
  const table: Record<string, RawFn> = {};
  for (const name of TABLE_KERNELS) {
    const f = tableKernel(name, wasmName(name), KERNEL_ARGS[name]);
    table[name] = f;
    if (KERNELS[name].async) table[`${name}Async`] = async (...args: unknown[]) => f(...args);
  }

  const groupedNN = (a: GroupedNNArgs): Float32Array =>
    call('groupedNN', () => {
      // A non-string mode would reach wasm-bindgen's string marshalling, which traps (fuzzer, seed 42).
      expectGroupedArgs('groupedNN', a, true);
      return a.selfJoin && isSelfJoin(a)
        ? raw.hc_grouped_nn_self(a.base, a.groupOffsets, u32('groupedNN', 'd', a.d), a.mode, !!a.squared)
        : raw.hc_grouped_nn(
            a.queries, u32('groupedNN', 'nq', a.nq), a.base, a.groupOffsets, u32('groupedNN', 'd', a.d), a.mode,
            a.queryGroups ?? undefined, !!a.squared,
          );
    });
  const linkage = (y: Float64Array | Float32Array, n: number, method: LinkageMethod): Float64Array =>
    call('linkage', () => {
      arr('linkage', 'y', y, ARG_KINDS.y);
      expectString('linkage', 'method', method); // a non-string traps in wasm-bindgen's marshalling (see groupedNN)
      return y instanceof Float64Array
        ? raw.hc_linkage_f64(y, u32('linkage', 'n', n), method)
        : raw.hc_linkage_f32(y, u32('linkage', 'n', n), method);
    });

  return {
    ...(table as unknown as TableMethods & AsyncTableMethods),
    name: 'wasm',
    isa: isa as Isa,
    threads: 1,
    groupedNN,
    groupedNNAsync: async (a) => groupedNN(a),
    linkage,
    linkageAsync: async (y, n, method) => linkage(y, n, method),
  };
}
