/**
 * @file Native backend adapter: finds and loads the Node-API addon (`crates/node`, built by
 * `scripts/build-native.mjs`) and wraps its raw exports as a {@link KernelBackend}.
 *
 * The loader is pure apart from the `require` it is given (lightningcss' `native-binding` style), so tests inject
 * `{platform, arch, libc, env, require}` and need no binary. Candidates, in order:
 * 1. `ANOMALY_CLUSTERING_NATIVE_PATH` — when set it is the **only** candidate (an explicit path that does not load
 *    is an error, never a silent fall-back to another binary);
 * 2. `bindings/native/anomaly-clustering.<triple>.node` next to this module (`bindings/native.ts` when run from
 *    source, and `../../bindings/native/` from the compiled `dist/bindings/native.js`);
 * 3. the optional package `anomaly-clustering-<triple>` (npm/<triple>/, packed with the stripped addon by
 *    `scripts/pack.mjs`; the main package lists it in `optionalDependencies` and ships no binary).
 *
 * `<triple>` is napi-rs' platform suffix: `linux-x64-gnu`, `linux-arm64-musl`, `darwin-arm64`, `win32-x64-msvc`.
 * Every failed candidate is kept: the thrown error lists them all in its message and in `errors`, each with the
 * underlying failure as its `cause`. An addon with another ABI version is skipped; if nothing loads and one was
 * skipped for that reason the error is a `KernelError` `ERR_ABI_MISMATCH`.
 * @module bindings/native
 */
import { createRequire } from 'node:module';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { GroupedNNArgs, Isa, KernelBackend } from './backend.js';
import { isSelfJoin } from './selfjoin.js';
import { ARG_KINDS, expectGroupedArgs, expectTypedArray } from './validate.js';
import {
  ABI_VERSION, KERNEL_ARGS, NATIVE_EXPORT_NAMES, TABLE_KERNELS, expectTableArgs, signatureMismatch, type NativeExports,
} from './abi.js';
import { KERNELS, type AsyncTableMethods, type TableMethods } from './backend.js';
import { ERROR_CODES, KernelError, type ErrorCode } from './errors.js';

/** Base name of the addon file and of its optional per-platform packages. */
export const NATIVE_BINARY_NAME = 'anomaly-clustering';
/** Environment variable naming an addon file to load instead of searching. */
export const NATIVE_PATH_ENV = 'ANOMALY_CLUSTERING_NATIVE_PATH';

/** Everything the loader reads from its surroundings; each field defaults to the real process. */
export interface LoadNativeOptions {
  /** @default process.platform */
  platform?: string;
  /** @default process.arch */
  arch?: string;
  /** C library on Linux, for the triple's last part. @default detected from `process.report` ('gnu' or 'musl') */
  libc?: 'gnu' | 'musl';
  /** @default process.env */
  env?: Record<string, string | undefined>;
  /** Loads a `.node` file (absolute path) or a package name. @default `createRequire(import.meta.url)` */
  require?: (id: string) => unknown;
  /** Folder of this module, used to find `bindings/native/`. @default the folder of this file */
  moduleDir?: string;
}

/** One place the loader looked. */
export interface NativeCandidate {
  /** How it was found: the env override, a file next to this module, or an optional package. */
  kind: 'env' | 'local' | 'package';
  /** What is passed to `require`: an absolute path or a package name. */
  id: string;
}

/** A loaded addon and where it came from. */
export interface LoadedNativeAddon {
  addon: NativeExports;
  candidate: NativeCandidate;
}

function detectLibc(): 'gnu' | 'musl' {
  const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
  return report?.header?.glibcVersionRuntime ? 'gnu' : 'musl';
}

/** napi-rs' platform suffix for a platform/arch (`linux-x64-gnu`, `darwin-arm64`, `win32-x64-msvc`, …). */
export function nativeTriple(opts: Pick<LoadNativeOptions, 'platform' | 'arch' | 'libc'> = {}): string {
  const platform = opts.platform ?? process.platform;
  const arch = opts.arch ?? process.arch;
  if (platform === 'linux') {
    const libc = opts.libc ?? (platform === process.platform ? detectLibc() : 'gnu');
    return `linux-${arch}-${libc}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** The candidates the loader tries, in order (see the module doc). Pure. */
export function nativeCandidates(opts: LoadNativeOptions = {}): NativeCandidate[] {
  const env = opts.env ?? process.env;
  const override = env[NATIVE_PATH_ENV];
  if (override) return [{ kind: 'env', id: override }];
  const triple = nativeTriple(opts);
  const file = `${NATIVE_BINARY_NAME}.${triple}.node`;
  const here = opts.moduleDir ?? dirname(fileURLToPath(import.meta.url));
  const local = [join(here, 'native', file)];
  // Compiled output lives in dist/bindings/; the build writes the addon to <root>/bindings/native/.
  if (basename(dirname(here)) === 'dist') local.push(join(here, '..', '..', 'bindings', 'native', file));
  return [
    ...local.map((id): NativeCandidate => ({ kind: 'local', id })),
    { kind: 'package', id: `${NATIVE_BINARY_NAME}-${triple}` },
  ];
}

function describe(c: NativeCandidate): string {
  return c.kind === 'env' ? `${NATIVE_PATH_ENV}=${c.id}` : c.kind === 'package' ? `package ${c.id}` : c.id;
}

function reason(c: NativeCandidate, e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') {
    return c.kind === 'package' ? 'not installed' : 'not found';
  }
  return e instanceof Error ? e.message : String(e);
}

/** Checks a required module is a usable addon of our ABI. @throws {KernelError} ERR_ABI_MISMATCH, or Error */
function checkAddon(mod: unknown): NativeExports {
  const m = mod as Partial<Record<string, unknown>> | null;
  if (m === null || typeof m !== 'object' || typeof m.abiVersion !== 'function') {
    throw new Error('not an anomaly-clustering addon (no abiVersion export)');
  }
  const version = (m.abiVersion as () => unknown)();
  if (version !== ABI_VERSION) {
    throw new KernelError(
      'ERR_ABI_MISMATCH',
      `ABI version ${String(version)}, expected ${ABI_VERSION}: rebuild it with \`npm run build:native\``,
    );
  }
  const missing = NATIVE_EXPORT_NAMES.filter((k) => typeof m[k] !== 'function');
  if (missing.length > 0) throw new Error(`missing exports ${missing.join(', ')} (stale build?)`);
  const mismatch = signatureMismatch((m.kernelSignatures as () => unknown)());
  if (mismatch) throw new KernelError('ERR_ABI_MISMATCH', `${mismatch}: rebuild it with \`npm run build:native\``);
  return m as unknown as NativeExports;
}

/**
 * Finds and loads the raw addon (no wrapping).
 * @throws {KernelError} `ERR_ABI_MISMATCH` when nothing loaded and a candidate had another ABI version
 * @throws {AggregateError} when nothing loaded: `errors` has one Error per candidate (its `cause` is the failure)
 */
export function loadNativeAddon(opts: LoadNativeOptions = {}): LoadedNativeAddon {
  const req = opts.require ?? createRequire(import.meta.url);
  const attempts: Error[] = [];
  let abiMismatch = false;
  const candidates = nativeCandidates(opts);
  for (const candidate of candidates) {
    try {
      return { addon: checkAddon(req(candidate.id)), candidate };
    } catch (e) {
      if (e instanceof KernelError && e.code === 'ERR_ABI_MISMATCH') abiMismatch = true;
      attempts.push(new Error(`${describe(candidate)}: ${reason(candidate, e)}`, { cause: e }));
    }
  }
  const where = `${nativeTriple(opts)}, node ${process.version}`;
  const list = attempts.map((a) => `\n  - ${a.message}`).join('');
  const hint = candidates[0]?.kind === 'env' ? '' : '\n  (build it with `npm run build:native`)';
  const message = `native addon could not be loaded (${where}); tried:${list}${hint}`;
  const all = new AggregateError(attempts, message, { cause: attempts[0] });
  if (abiMismatch) {
    throw Object.assign(new KernelError('ERR_ABI_MISMATCH', message, { cause: all }), { errors: attempts });
  }
  throw all;
}

/** napi-rs statuses for a JS value of the wrong type, thrown before the addon's own code runs. */
const NAPI_ARGUMENT_STATUSES = new Set([
  'InvalidArg',
  'ObjectExpected',
  'StringExpected',
  'NameExpected',
  'FunctionExpected',
  'NumberExpected',
  'BooleanExpected',
  'ArrayExpected',
  'BigintExpected',
  'DateExpected',
  'ArrayBufferExpected',
  'DetachableArraybufferExpected',
]);

/**
 * The {@link KernelError} for anything the addon threw: its own codes pass through (same message, original error
 * as `cause`), a napi-rs argument status becomes `ERR_INVALID_ARGUMENT`, a cancelled task `ERR_ABORTED`, anything
 * else `ERR_INTERNAL`.
 */
export function toKernelError(e: unknown): KernelError {
  if (e instanceof KernelError) return e;
  const code = (e as { code?: unknown } | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  let mapped: ErrorCode;
  if (typeof code === 'string' && (ERROR_CODES as readonly string[]).includes(code)) mapped = code as ErrorCode;
  else if (typeof code === 'string' && NAPI_ARGUMENT_STATUSES.has(code)) mapped = 'ERR_INVALID_ARGUMENT';
  else if (code === 'Cancelled') mapped = 'ERR_ABORTED';
  else mapped = 'ERR_INTERNAL';
  const prefix = mapped === code ? '' : `native addon: `;
  return new KernelError(mapped, `${prefix}${message}`, { cause: e });
}

function call<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw toKernelError(e);
  }
}

async function callAsync<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw toKernelError(e);
  }
}

type RawFn = (...args: unknown[]) => unknown;

/**
 * The methods of the table kernels ({@link KERNELS}): check the arrays and flags, then pass the arguments through
 * (an absent optional array as `null`). Missing (null/undefined) and detached arrays are checked here, before
 * napi-rs touches them (its answer to a detached buffer depends on the build); wrong values are napi-rs' and the
 * addon's to reject.
 */
function tableMethods(raw: NativeExports): TableMethods & AsyncTableMethods {
  const fns = raw as unknown as Record<string, RawFn>;
  const methods: Record<string, RawFn> = {};
  for (const name of TABLE_KERNELS) {
    const args = KERNEL_ARGS[name];
    const prepare = (fn: string, values: unknown[]): unknown[] => {
      expectTableArgs(fn, args, values);
      return args.map(([, kind], i) => (kind.startsWith('opt_') ? (values[i] ?? null) : values[i]));
    };
    methods[name] = (...values) => call(() => fns[name]!(...prepare(name, values)));
    if (KERNELS[name].async) {
      const asyncName = `${name}Async`;
      methods[asyncName] = (...values) => callAsync(async () => fns[asyncName]!(...prepare(asyncName, values)));
    }
  }
  return methods as unknown as TableMethods & AsyncTableMethods;
}

/** Wraps raw addon exports as the `'native'` {@link KernelBackend}; every failure becomes a {@link KernelError}. */
export function createNativeBackend(raw: NativeExports): KernelBackend {
  const isa = call(() => raw.isa()) as Isa;
  const threads = call(() => raw.threads());
  const grouped = (a: GroupedNNArgs) =>
    [a.queries, a.nq, a.base, a.groupOffsets, a.d, a.mode, a.queryGroups ?? null, a.squared ?? false] as const;
  // The self-join check dereferences the arrays in JS: they are checked first (a TypeError there would be
  // ERR_INTERNAL).
  return {
    ...tableMethods(raw),
    name: 'native',
    isa,
    threads,
    groupedNN: (a) =>
      call(() => {
        expectGroupedArgs('groupedNN', a, true);
        return a.selfJoin && isSelfJoin(a)
          ? raw.groupedNnSelf(a.base, a.groupOffsets, a.d, a.mode, a.squared ?? false)
          : raw.groupedNn(...grouped(a));
      }),
    groupedNNAsync: (a) =>
      callAsync(() => {
        expectGroupedArgs('groupedNNAsync', a, true);
        return a.selfJoin && isSelfJoin(a)
          ? raw.groupedNnSelfAsync(a.base, a.groupOffsets, a.d, a.mode, a.squared ?? false)
          : raw.groupedNnAsync(...grouped(a));
      }),
    // Anything that is not a Float32Array goes to the f64 entry, whose argument check rejects non-Float64Arrays.
    linkage: (y, n, method) =>
      call(() => {
        expectTypedArray('linkage', 'y', y, ARG_KINDS.y);
        return y instanceof Float32Array ? raw.linkageF32(y, n, method) : raw.linkageF64(y, n, method);
      }),
    linkageAsync: (y, n, method) =>
      callAsync(() => {
        expectTypedArray('linkageAsync', 'y', y, ARG_KINDS.y);
        return y instanceof Float32Array ? raw.linkageF32Async(y, n, method) : raw.linkageF64Async(y, n, method);
      }),
  };
}

/**
 * Loads the `.node` addon and wraps it as a {@link KernelBackend} (synchronous; `bindings/select.ts` memoises it).
 * @throws {KernelError} `ERR_ABI_MISMATCH` when only addons of another ABI version were found
 * @throws {AggregateError} when no addon loads (one entry per candidate tried, see {@link loadNativeAddon})
 */
export function loadNativeBackend(opts: LoadNativeOptions = {}): KernelBackend {
  return createNativeBackend(loadNativeAddon(opts).addon);
}
