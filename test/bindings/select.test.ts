/**
 * @file The native loader without any binary: candidates, env override, the list of failures, ABI mismatch, and
 * the error mapping of the wrapped backend, all with an injected `require` (lightningcss `native-binding.test`).
 * @module test/loader
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';

import { ABI_VERSION, KERNEL_TABLE_TEXT, NATIVE_EXPORT_NAMES, type NativeExports } from '../../bindings/abi.js';
import {
  NATIVE_PATH_ENV,
  createNativeBackend,
  loadNativeAddon,
  loadNativeBackend,
  nativeCandidates,
  nativeTriple,
  toKernelError,
} from '../../bindings/native.js';
import { KernelError } from '../../src/errors.js';
import { caught } from '../helpers.js';

const LINUX = { platform: 'linux', arch: 'x64', libc: 'gnu', moduleDir: '/pkg/bindings' } as const;
const LOCAL = '/pkg/bindings/native/anomaly-clustering.linux-x64-gnu.node';
const PACKAGE = 'anomaly-clustering-linux-x64-gnu';

function notFound(id: string): Error {
  return Object.assign(new Error(`Cannot find module '${id}'`), { code: 'MODULE_NOT_FOUND' });
}

/** A `require` that knows only `modules`; everything else is MODULE_NOT_FOUND. Records what was asked. */
function fakeRequire(modules: Record<string, unknown> = {}) {
  return vi.fn((id: string) => {
    if (id in modules) return modules[id];
    throw notFound(id);
  });
}

/** A complete fake addon; `overrides` replace single exports. */
function fakeAddon(overrides: Partial<Record<keyof NativeExports, unknown>> = {}): NativeExports {
  const addon: Record<string, unknown> = {};
  for (const name of NATIVE_EXPORT_NAMES) addon[name] = () => 'unexpected call';
  Object.assign(addon, { abiVersion: () => ABI_VERSION, kernelSignatures: () => KERNEL_TABLE_TEXT, isa: () => 'avx2', threads: () => 4 }, overrides);
  return addon as unknown as NativeExports;
}

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

describe('ABI_VERSION', () => {
  it('is the ABI_VERSION of the kernels crate (bump them together)', () => {
    const lib = readFileSync(new URL('../../crates/kernels/src/lib.rs', import.meta.url), 'utf8');
    const m = /^pub const ABI_VERSION: u32 = (\d+);$/m.exec(lib);
    expect(m, 'pub const ABI_VERSION in crates/kernels/src/lib.rs').not.toBeNull();
    expect(Number(m![1])).toBe(ABI_VERSION);
  });
});

describe('nativeTriple', () => {
  it.each([
    [{ platform: 'linux', arch: 'x64', libc: 'gnu' }, 'linux-x64-gnu'],
    [{ platform: 'linux', arch: 'arm64', libc: 'musl' }, 'linux-arm64-musl'],
    [{ platform: 'darwin', arch: 'arm64' }, 'darwin-arm64'],
    [{ platform: 'win32', arch: 'x64' }, 'win32-x64-msvc'],
  ] as const)('%o → %s', (opts, triple) => {
    expect(nativeTriple(opts)).toBe(triple);
  });
});

describe('nativeCandidates', () => {
  it('local file next to the module, then the optional package', () => {
    expect(nativeCandidates({ ...LINUX, env: {} })).toEqual([
      { kind: 'local', id: LOCAL },
      { kind: 'package', id: PACKAGE },
    ]);
  });

  it('from dist/bindings also looks in <root>/bindings/native', () => {
    const ids = nativeCandidates({ ...LINUX, env: {}, moduleDir: '/pkg/dist/bindings' }).map((c) => c.id);
    expect(ids).toEqual([
      '/pkg/dist/bindings/native/anomaly-clustering.linux-x64-gnu.node',
      join('/pkg', 'bindings', 'native', 'anomaly-clustering.linux-x64-gnu.node'),
      PACKAGE,
    ]);
  });

  it('the env override is the only candidate', () => {
    expect(nativeCandidates({ ...LINUX, env: { [NATIVE_PATH_ENV]: '/tmp/x.node' } })).toEqual([
      { kind: 'env', id: '/tmp/x.node' },
    ]);
  });
});

describe('loadNativeAddon', () => {
  it('no binary: one error listing every attempt, each with its cause', () => {
    const require = fakeRequire();
    const err = caught(() => loadNativeAddon({ ...LINUX, env: {}, require })) as AggregateError;
    expect(err).toBeInstanceOf(AggregateError);
    expect(require.mock.calls.map((c) => c[0])).toEqual([LOCAL, PACKAGE]);
    expect(err.message).toContain('linux-x64-gnu');
    expect(err.message).toContain(`${LOCAL}: not found`);
    expect(err.message).toContain(`package ${PACKAGE}: not installed`);
    expect(err.message).toContain('npm run build:native');
    expect(err.errors).toHaveLength(2);
    for (const e of err.errors as Error[]) {
      expect(e).toBeInstanceOf(Error);
      expect((e.cause as { code?: string }).code).toBe('MODULE_NOT_FOUND');
    }
    expect(err.cause).toBe(err.errors[0]);
  });

  it('a load failure other than not-found keeps its message (e.g. a broken .node)', () => {
    const require = vi.fn((id: string) => {
      if (id === LOCAL) throw new Error('invalid ELF header');
      throw notFound(id);
    });
    const err = caught(() => loadNativeAddon({ ...LINUX, env: {}, require })) as AggregateError;
    expect(err.message).toContain(`${LOCAL}: invalid ELF header`);
  });

  it('falls through to the optional package', () => {
    const addon = fakeAddon();
    const loaded = loadNativeAddon({ ...LINUX, env: {}, require: fakeRequire({ [PACKAGE]: addon }) });
    expect(loaded.addon).toBe(addon);
    expect(loaded.candidate).toEqual({ kind: 'package', id: PACKAGE });
  });

  it('env override: loads exactly that path', () => {
    const addon = fakeAddon();
    const require = fakeRequire({ '/opt/custom.node': addon, [LOCAL]: fakeAddon() });
    const loaded = loadNativeAddon({ ...LINUX, env: { [NATIVE_PATH_ENV]: '/opt/custom.node' }, require });
    expect(loaded.addon).toBe(addon);
    expect(require).toHaveBeenCalledTimes(1);
  });

  it('env override that does not load is an error, not a fall-back to another binary', () => {
    const require = fakeRequire({ [LOCAL]: fakeAddon(), [PACKAGE]: fakeAddon() });
    const err = caught(() =>
      loadNativeAddon({ ...LINUX, env: { [NATIVE_PATH_ENV]: '/nope.node' }, require }),
    ) as AggregateError;
    expect(require.mock.calls.map((c) => c[0])).toEqual(['/nope.node']);
    expect(err.message).toContain(`${NATIVE_PATH_ENV}=/nope.node: not found`);
    expect(err.errors).toHaveLength(1);
  });

  it('ABI mismatch: KernelError ERR_ABI_MISMATCH listing the attempts', () => {
    const require = fakeRequire({ [LOCAL]: fakeAddon({ abiVersion: () => ABI_VERSION + 1 }) });
    const err = caught(() => loadNativeAddon({ ...LINUX, env: {}, require })) as KernelError & { errors: Error[] };
    expect(err).toBeInstanceOf(KernelError);
    expect(err.code).toBe('ERR_ABI_MISMATCH');
    expect(err.message).toContain(`ABI version ${ABI_VERSION + 1}, expected ${ABI_VERSION}`);
    expect(err.message).toContain(`package ${PACKAGE}: not installed`);
    expect(err.errors).toHaveLength(2);
    expect((err.errors[0]!.cause as KernelError).code).toBe('ERR_ABI_MISMATCH');
    expect(err.cause).toBeInstanceOf(AggregateError);
  });

  it('refuses an addon whose kernel table differs from KERNELS (no version bump needed)', () => {
    const changed = KERNEL_TABLE_TEXT.replace('cutK(z:f64s,n:dim,k:k,)->i32s', 'cutK(z:f64s,k:k,n:dim,)->i32s');
    expect(changed).not.toBe(KERNEL_TABLE_TEXT);
    for (const [table, what] of [[changed, 'cutK is cutK(z:f64s,k:k,n:dim,)->i32s, expected cutK(z:f64s,n:dim,k:k,)->i32s'], [KERNEL_TABLE_TEXT.replace(/^pdist\(.*\n/m, ''), 'pdist missing']] as const) {
      const require = fakeRequire({ [LOCAL]: fakeAddon({ kernelSignatures: () => table }) });
      const err = caught(() => loadNativeAddon({ ...LINUX, env: {}, require })) as KernelError;
      expect(err.code).toBe('ERR_ABI_MISMATCH');
      expect(err.message).toContain(what);
    }
  });

  it('a stale local build with another ABI is skipped for a matching package', () => {
    const good = fakeAddon();
    const require = fakeRequire({ [LOCAL]: fakeAddon({ abiVersion: () => 0 }), [PACKAGE]: good });
    expect(loadNativeAddon({ ...LINUX, env: {}, require }).addon).toBe(good);
  });

  it('rejects a module that is not our addon, or lacks exports', () => {
    const missing = fakeAddon();
    delete (missing as unknown as Record<string, unknown>).cutHeight;
    const require = fakeRequire({ [LOCAL]: { hello: 1 }, [PACKAGE]: missing });
    const err = caught(() => loadNativeAddon({ ...LINUX, env: {}, require })) as AggregateError;
    expect(err.message).toContain('not an anomaly-clustering addon');
    expect(err.message).toContain('missing exports cutHeight');
  });
});

describe('createNativeBackend (wrapped raw exports)', () => {
  it('reports name, isa and threads', () => {
    const b = loadNativeBackend({ ...LINUX, env: {}, require: fakeRequire({ [LOCAL]: fakeAddon() }) });
    expect(b.name).toBe('native');
    expect(b.isa).toBe('avx2');
    expect(b.threads).toBe(4);
  });

  it('passes arguments through and dispatches linkage on the array type', async () => {
    const out = new Float64Array(4);
    const linkageF32 = vi.fn(() => out);
    const linkageF64 = vi.fn(() => out);
    const linkageF64Async = vi.fn(async () => out);
    const groupedNn = vi.fn(() => new Float32Array(1));
    const b = createNativeBackend(fakeAddon({ linkageF32, linkageF64, linkageF64Async, groupedNn }));
    expect(b.linkage(new Float32Array(1), 2, 'ward')).toBe(out);
    expect(linkageF32).toHaveBeenCalledWith(expect.any(Float32Array), 2, 'ward');
    expect(b.linkage(new Float64Array(1), 2, 'single')).toBe(out);
    expect(linkageF64).toHaveBeenCalledWith(expect.any(Float64Array), 2, 'single');
    await expect(b.linkageAsync(new Float64Array(1), 2, 'average')).resolves.toBe(out);
    const q = new Float32Array(2);
    const offsets = new Uint32Array([0, 1]);
    b.groupedNN({ queries: q, nq: 1, base: q, groupOffsets: offsets, d: 2, mode: 'min' });
    expect(groupedNn).toHaveBeenCalledWith(q, 1, q, offsets, 2, 'min', null, false);
  });

  it('rethrows addon errors as KernelError with the same code and message', () => {
    const err = codedError('ERR_SHAPE_MISMATCH', 'x: expected length 6, got 5');
    const b = createNativeBackend(
      fakeAddon({
        pdist: () => {
          throw err;
        },
      }),
    );
    const e = caught(() => b.pdist(new Float32Array(5), 2, 3, false)) as KernelError;
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe('ERR_SHAPE_MISMATCH');
    expect(e.message).toBe('x: expected length 6, got 5');
    expect(e.cause).toBe(err);
  });

  it('async rejections become KernelError too (and sync throws of an async export reject)', async () => {
    const b = createNativeBackend(
      fakeAddon({
        pdistAsync: () => Promise.reject(codedError('ERR_NON_FINITE', 'x: value at index 3 is not finite')),
        cdistAsync: () => {
          throw codedError('InvalidArg', 'Expected Float32Array');
        },
      }),
    );
    await expect(b.pdistAsync(new Float32Array(6), 2, 3, false)).rejects.toMatchObject({
      name: 'KernelError',
      code: 'ERR_NON_FINITE',
    });
    await expect(b.cdistAsync(new Float32Array(1), 1, new Float32Array(1), 1, 1, false)).rejects.toMatchObject({
      code: 'ERR_INVALID_ARGUMENT',
    });
  });

  it.each([
    ['ERR_K_OUT_OF_RANGE', 'ERR_K_OUT_OF_RANGE'],
    ['ERR_INTERNAL', 'ERR_INTERNAL'],
    ['InvalidArg', 'ERR_INVALID_ARGUMENT'],
    ['NumberExpected', 'ERR_INVALID_ARGUMENT'],
    ['Cancelled', 'ERR_ABORTED'],
    ['GenericFailure', 'ERR_INTERNAL'],
    [undefined, 'ERR_INTERNAL'],
  ])('toKernelError maps code %s to %s', (code, expected) => {
    const e = toKernelError(code === undefined ? new Error('boom') : codedError(code, 'boom'));
    expect(e).toBeInstanceOf(KernelError);
    expect(e.code).toBe(expected);
    expect(e.message).toContain('boom');
  });

  it('toKernelError keeps a KernelError and wraps non-errors', () => {
    const k = new KernelError('ERR_EMPTY', 'x: must not be empty');
    expect(toKernelError(k)).toBe(k);
    expect(toKernelError('weird').code).toBe('ERR_INTERNAL');
  });
});
