/**
 * @file The WebAssembly backend: the adapter on fake exports (ABI check, error mapping, trap recovery, path
 * lookup), then the real module built by `npm run build:wasm`: its exports, the coded error of every export, a
 * real trap, and results on tiny inputs with known answers. Without a build the module suites are skipped with
 * the load error as the reason, except in CI, where a missing build fails.
 * @module test/wasm
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { ABI_VERSION, KERNEL_TABLE_TEXT } from '../../bindings/abi.js';
import type { KernelBackend } from '../../bindings/backend.js';
import {
  WASM_BINARY_FILE,
  WASM_EXPORT_NAMES,
  WASM_GLUE_FILE,
  WASM_PATH_ENV,
  createWasmBackend,
  loadWasmBackend,
  loadWasmExports,
  toKernelError,
  wasmSearchDirs,
  type WasmExports,
} from '../../bindings/wasm.js';
import { KernelError } from '../../src/errors.js';
import { caught } from '../helpers.js';

/** Asserts `f` throws a KernelError with `code` (and returns it for further checks). */
function expectCode(f: () => unknown, code: string): KernelError {
  const e = caught(f);
  expect(e).toBeInstanceOf(KernelError);
  expect((e as KernelError).code, (e as Error).message).toBe(code);
  return e as KernelError;
}

/** A complete fake module; `overrides` replace single exports. */
function fakeExports(overrides: Partial<Record<keyof WasmExports, unknown>> = {}): WasmExports {
  const raw: Record<string, unknown> = {};
  for (const name of WASM_EXPORT_NAMES) raw[name] = vi.fn(() => 'unexpected call');
  Object.assign(
    raw,
    {
      hc_abi_version: () => ABI_VERSION,
      hc_kernel_signatures: () => KERNEL_TABLE_TEXT,
      hc_isa: () => 'simd128',
      hc_set_force_scalar: vi.fn(),
      hc_take_panic_message: () => '',
      __wbg_reset_state: vi.fn(),
    },
    overrides,
  );
  return raw as unknown as WasmExports;
}

describe('wasm adapter (fake exports)', () => {
  it('finds the build next to bindings/wasm.ts and from dist/bindings/wasm.js', () => {
    expect(wasmSearchDirs({}, 'file:///pkg/bindings/wasm.ts')).toEqual(['/pkg/bindings/wasm/', '/bindings/wasm/']);
    expect(wasmSearchDirs({}, 'file:///pkg/dist/bindings/wasm.js')).toContain('/pkg/bindings/wasm/');
  });

  it(`${WASM_PATH_ENV} overrides: a folder, or a file in it`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ac-wasm-'));
    try {
      expect(wasmSearchDirs({ [WASM_PATH_ENV]: dir })).toEqual([dir]);
      expect(wasmSearchDirs({ [WASM_PATH_ENV]: join(dir, WASM_BINARY_FILE) })).toEqual([dir]);
      expect(wasmSearchDirs({ [WASM_PATH_ENV]: join(dir, WASM_GLUE_FILE) })).toEqual([dir]);
      expectCode(() => wasmSearchDirs({ [WASM_PATH_ENV]: join(dir, 'other.wasm') }), 'ERR_BACKEND_UNAVAILABLE');
      expect(expectCode(() => wasmSearchDirs({ [WASM_PATH_ENV]: join(dir, 'missing') }), 'ERR_BACKEND_UNAVAILABLE').message).toMatch(/no such folder$/);
      const e = expectCode(() => loadWasmExports({ [WASM_PATH_ENV]: dir }), 'ERR_BACKEND_UNAVAILABLE');
      expect(e.message).toContain(dir);
      expect(e.message).toContain('npm run build:wasm');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses another ABI version, a missing export, an unknown isa', () => {
    expect(expectCode(() => createWasmBackend(fakeExports({ hc_abi_version: () => ABI_VERSION + 1 })), 'ERR_ABI_MISMATCH').message).toMatch(
      new RegExp(`ABI version ${ABI_VERSION + 1}, expected ${ABI_VERSION}`),
    );
    expect(expectCode(() => createWasmBackend(fakeExports({ hc_cut_k: undefined })), 'ERR_ABI_MISMATCH').message).toContain('hc_cut_k');
    expectCode(() => createWasmBackend(fakeExports({ hc_isa: () => 'sse9' })), 'ERR_ABI_MISMATCH');
    const changed = KERNEL_TABLE_TEXT.replace('linearMap(x:f32s,n:dim,dIn:dim,w:f32s,dOut:dim,)->f32s /linearMapAsync', 'linearMap(x:f32s,n:dim,dIn:dim,w:f32s,dOut:dim,)->f32s');
    expect(changed).not.toBe(KERNEL_TABLE_TEXT);
    expect(expectCode(() => createWasmBackend(fakeExports({ hc_kernel_signatures: () => changed })), 'ERR_ABI_MISMATCH').message).toContain(
      'linearMap is linearMap(x:f32s,n:dim,dIn:dim,w:f32s,dOut:dim,)->f32s, expected',
    );
  });

  it('is named wasm, single-threaded, with the module isa; ANOMALY_CLUSTERING_ISA=scalar forces scalar', () => {
    const raw = fakeExports();
    const b = createWasmBackend(raw, {});
    expect([b.name, b.isa, b.threads]).toEqual(['wasm', 'simd128', 1]);
    expect(raw.hc_set_force_scalar).toHaveBeenLastCalledWith(false);
    createWasmBackend(raw, { ANOMALY_CLUSTERING_ISA: 'scalar' });
    expect(raw.hc_set_force_scalar).toHaveBeenLastCalledWith(true);
  });

  it('rebuilds "<CODE>: <message>" errors as KernelError with that code', () => {
    const onTrap = vi.fn(() => '');
    const e = toKernelError('pdist', new Error('ERR_SHAPE_MISMATCH: x: expected length 6, got 5'), onTrap);
    expect([e.code, e.message]).toEqual(['ERR_SHAPE_MISMATCH', 'x: expected length 6, got 5']);
    expect(toKernelError('f', new Error('ERR_NOT_A_CODE: x'), onTrap).code).toBe('ERR_INTERNAL');
    expect(toKernelError('f', 'a string', onTrap).code).toBe('ERR_INTERNAL');
    expect(onTrap).not.toHaveBeenCalled();
  });

  it('turns a trap into ERR_INTERNAL, with the panic message, and re-instantiates (keeping the isa setting)', () => {
    const raw = fakeExports({
      hc_pdist: () => {
        throw new WebAssembly.RuntimeError('unreachable');
      },
      hc_take_panic_message: () => 'panicked at src/x.rs:1:2:\nboom',
    });
    const b = createWasmBackend(raw, { ANOMALY_CLUSTERING_ISA: 'scalar' });
    vi.mocked(raw.hc_set_force_scalar).mockClear();
    const e = expectCode(() => b.pdist(new Float32Array(4), 2, 2, false), 'ERR_INTERNAL');
    expect(e.message).toBe('wasm pdist trapped (unreachable): panicked at src/x.rs:1:2: boom; the module was re-instantiated');
    expect(e.cause).toBeInstanceOf(WebAssembly.RuntimeError);
    expect(raw.__wbg_reset_state).toHaveBeenCalledTimes(1);
    expect(raw.hc_set_force_scalar).toHaveBeenCalledWith(true);
  });

  it('checks dimensions before the glue could wrap them', () => {
    const raw = fakeExports();
    const b = createWasmBackend(raw, {});
    expectCode(() => b.pdist(new Float32Array(0), -1, 2, false), 'ERR_INVALID_ARGUMENT');
    expectCode(() => b.cdist(new Float32Array(0), 0, new Float32Array(0), 1.5, 2, false), 'ERR_INVALID_ARGUMENT');
    expectCode(() => b.linkage(new Float64Array(0), 2 ** 32, 'single'), 'ERR_INVALID_ARGUMENT');
    expectCode(() => b.cutK(new Float64Array(0), 1, -1), 'ERR_K_OUT_OF_RANGE');
    expect(raw.hc_pdist).not.toHaveBeenCalled();
    expect(raw.hc_cut_k).not.toHaveBeenCalled();
  });

  it('async variants reject instead of throwing', async () => {
    const b = createWasmBackend(fakeExports(), {});
    const p = b.pdistAsync(new Float32Array(0), -1, 2, false);
    await expect(p).rejects.toBeInstanceOf(KernelError);
  });
});

// ---- the real module ------------------------------------------------------------------------------------------

let loadError: unknown;
let raw: WasmExports | undefined;
let backend: KernelBackend | undefined;
try {
  raw = loadWasmExports();
  backend = loadWasmBackend();
} catch (e) {
  loadError = e;
}
const reason = `wasm module not available: ${(loadError as Error)?.message}`;

if (loadError && process.env.CI) {
  describe('wasm module', () => {
    it('is built (CI requires every backend)', () => {
      throw loadError;
    });
  });
}

/** A kernel still being written answers "not implemented yet": skip the test with that reason. */
function skipIfStub(ctx: { skip: (note?: string) => void }, e: unknown): void {
  if (e instanceof KernelError && /not implemented yet/.test(e.message)) ctx.skip(`kernel not landed yet: ${e.message}`);
}

/** Runs `f`, skipping the test while its kernel is a stub. */
function landed(ctx: { skip: (note?: string) => void }, f: () => unknown): void {
  try {
    f();
  } catch (e) {
    skipIfStub(ctx, e);
    throw e;
  }
}

/** {@link expectCode} for an error the kernel itself reports (skipped while that kernel is a stub). */
function expectKernelCode(ctx: { skip: (note?: string) => void }, f: () => unknown, code: string): void {
  const e = caught(f);
  skipIfStub(ctx, e);
  expectCode(() => {
    throw e;
  }, code);
}

/** Element-wise closeness (the distance kernels use a GEMM form: not bit-exact). */
function expectClose(actual: ArrayLike<number>, expected: number[], digits = 5): void {
  expect(actual).toHaveLength(expected.length);
  expected.forEach((v, i) => expect(actual[i], `[${i}]`).toBeCloseTo(v, digits));
}

const f32 = (...v: number[]) => Float32Array.from(v);
const f64 = (...v: number[]) => Float64Array.from(v);
const u32 = (...v: number[]) => Uint32Array.from(v);

/** 1-D points 0, 1, 3, 7 as a condensed matrix: d01=1 d02=3 d03=7 d12=2 d13=6 d23=4. */
const Y4 = f64(1, 3, 7, 2, 6, 4);
/** SciPy `linkage(Y4, 'single')`. */
const Z4_SINGLE = [0, 1, 1, 2, 2, 4, 2, 3, 3, 5, 4, 4];

describe.skipIf(!backend)(`wasm module${backend ? '' : ` (skipped: ${reason})`}`, () => {
  const b = backend!;
  const w = raw!;
  afterAll(() => w.hc_set_force_scalar(false));

  it('loads: name wasm, isa simd128, 1 thread, ABI version', () => {
    expect([b.name, b.isa, b.threads]).toEqual(['wasm', 'simd128', 1]);
    expect(w.hc_abi_version()).toBe(ABI_VERSION);
  });

  it('ANOMALY_CLUSTERING_ISA=scalar switches the module to its scalar kernels (same results)', () => {
    const scalar = createWasmBackend(w, { ANOMALY_CLUSTERING_ISA: 'scalar' });
    expect(scalar.isa).toBe('scalar');
    expectClose(scalar.pdist(f32(0, 0, 3, 4, 6, 8), 3, 2, false), [5, 10, 5]);
    expect(createWasmBackend(w, {}).isa).toBe('simd128');
  });

  it('exports exactly the hc_* functions of WasmExports', () => {
    for (const name of WASM_EXPORT_NAMES) expect(typeof w[name], name).toBe('function');
    const hc = Object.keys(w).filter((k) => k.startsWith('hc_')).sort();
    expect(hc).toEqual(WASM_EXPORT_NAMES.filter((k) => k.startsWith('hc_')).sort());
  });

  describe('every export reports bad input as a coded KernelError', () => {
    it('pdist', () => {
      expect(expectCode(() => b.pdist(new Float32Array(5), 3, 2, false), 'ERR_SHAPE_MISMATCH').message).toBe('x: expected length 6, got 5');
      expectCode(() => b.pdist(new Float32Array(0), 3, 0, false), 'ERR_INVALID_ARGUMENT');
    });
    it('cdist', () => {
      expectCode(() => b.cdist(new Float32Array(4), 2, new Float32Array(3), 2, 2, false), 'ERR_SHAPE_MISMATCH');
    });
    it('groupedNN', () => {
      const args = { queries: new Float32Array(2), nq: 1, base: new Float32Array(4), groupOffsets: u32(0, 1, 2), d: 2 };
      expectCode(() => b.groupedNN({ ...args, mode: 'bogus' as never }), 'ERR_INVALID_METHOD');
      expectCode(() => b.groupedNN({ ...args, queries: new Float32Array(3), mode: 'min' }), 'ERR_SHAPE_MISMATCH');
    });
    it('softmaxWeights', (ctx) => {
      expectKernelCode(ctx, () => b.softmaxWeights(f32(1, 2, 3), u32(0, 5), 1), 'ERR_INVALID_ARGUMENT');
    });
    it('weightedMean', (ctx) => {
      expectKernelCode(ctx, () => b.weightedMean(f32(1, 2, 3, 4), u32(0, 2), 2, f32(1)), 'ERR_SHAPE_MISMATCH');
    });
    it('maxPool', (ctx) => {
      expectKernelCode(ctx, () => b.maxPool(f32(1, 2), u32(0, 1, 1), 2), 'ERR_INVALID_ARGUMENT');
    });
    it('linkage', (ctx) => {
      expectCode(() => b.linkage(Y4, 4, 'bogus' as never), 'ERR_INVALID_METHOD');
      expectCode(() => b.linkage(new Float32Array(6), 4, 'nope' as never), 'ERR_INVALID_METHOD');
      expectKernelCode(ctx, () => b.linkage(f64(1, 2), 4, 'single'), 'ERR_SHAPE_MISMATCH');
    });
    it('cutK', (ctx) => {
      expect(expectCode(() => b.cutK(new Float64Array(3), 2, 1), 'ERR_SHAPE_MISMATCH').message).toBe('z: expected length 4, got 3');
      expectKernelCode(ctx, () => b.cutK(f64(...Z4_SINGLE), 4, 0), 'ERR_K_OUT_OF_RANGE');
      expectKernelCode(ctx, () => b.cutK(f64(...Z4_SINGLE), 4, 5), 'ERR_K_OUT_OF_RANGE');
    });
    it('cutHeight', () => {
      expectCode(() => b.cutHeight(new Float64Array(5), 3, 1), 'ERR_SHAPE_MISMATCH');
    });
    it('async variants reject with the same code', async () => {
      await expect(b.pdistAsync(new Float32Array(5), 3, 2, false)).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
      await expect(b.linkageAsync(Y4, 4, 'bogus' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_METHOD' });
    });
  });

  it('a trap (panic under panic=abort) becomes ERR_INTERNAL with the panic message, and the module keeps working', () => {
    // Route pdist into the real panicking test hook, through the adapter's own error boundary.
    const hc_pdist = (): Float32Array => {
      w.hc_panic_for_tests('boom from the test');
      return new Float32Array(0);
    };
    const trapping = createWasmBackend({ ...w, hc_pdist }, {});
    const e = expectCode(() => trapping.pdist(new Float32Array(0), 0, 1, false), 'ERR_INTERNAL');
    expect(e.message).toMatch(/^wasm pdist trapped \(unreachable\): panicked at .*boom from the test; the module was re-instantiated$/);
    expect(e.cause).toBeInstanceOf(WebAssembly.RuntimeError);
    expectClose(b.pdist(f32(0, 0, 3, 4, 6, 8), 3, 2, false), [5, 10, 5]);
  });

  describe('results on tiny known inputs', () => {
    it('pdist of 3 points', async () => {
      const x = f32(0, 0, 3, 4, 6, 8);
      expectClose(b.pdist(x, 3, 2, false), [5, 10, 5]);
      expectClose(b.pdist(x, 3, 2, true), [25, 100, 25], 4);
      expectClose(await b.pdistAsync(x, 3, 2, false), [5, 10, 5]);
      expect(b.pdist(f32(1, 2), 1, 2, false)).toHaveLength(0);
    });

    it('cdist', async () => {
      const q = f32(0, 0, 3, 4);
      const base = f32(0, 0, 6, 8, 3, 0);
      expectClose(b.cdist(q, 2, base, 3, 2, false), [0, 10, 3, 5, 5, 4]);
      expectClose(await b.cdistAsync(q, 2, base, 3, 2, true), [0, 100, 9, 25, 25, 16], 4);
    });

    it('groupedNN in its three modes', async () => {
      // query (0,0); group 0 = {(1,0)}, group 1 = {(0,3), (0,-2)}: nearest distances 1 and 2.
      const args = { queries: f32(0, 0), nq: 1, base: f32(1, 0, 0, 3, 0, -2), groupOffsets: u32(0, 1, 3), d: 2 };
      expectClose(b.groupedNN({ ...args, mode: 'per-group' }), [1, 2]);
      expectClose(b.groupedNN({ ...args, mode: 'min' }), [1]);
      expectClose(b.groupedNN({ ...args, mode: 'min', squared: true }), [1]);
      const own = { ...args, mode: 'mean-excluding-own' as const };
      expectClose(b.groupedNN({ ...own, queryGroups: Int32Array.of(0) }), [2]);
      expectClose(b.groupedNN({ ...own, queryGroups: Int32Array.of(-1) }), [1.5]);
      expectClose(await b.groupedNNAsync({ ...args, mode: 'per-group', squared: true }), [1, 4]);
    });

    it('softmaxWeights', (ctx) => {
      landed(ctx, () => {
        const w3 = b.softmaxWeights(f32(1, 2, 3, 5), u32(0, 3, 4), 1);
        const e = [Math.exp(-2), Math.exp(-1), 1];
        const s = e[0]! + e[1]! + e[2]!;
        expect(w3).toHaveLength(4);
        e.forEach((v, i) => expect(w3[i]).toBeCloseTo(v / s, 6));
        expect(w3[3]).toBe(1);
        expect(Array.from(b.softmaxWeights(f32(1, 3, 3), u32(0, 3), 0))).toEqual([0, 0.5, 0.5]);
        expect(Array.from(b.softmaxWeights(f32(1, 2, 3, 4), u32(0, 4), Infinity))).toEqual([0.25, 0.25, 0.25, 0.25]);
      });
    });

    it('weightedMean and maxPool', (ctx) => {
      landed(ctx, () => {
        const rows = f32(1, 2, 3, 4, 10, -10);
        expectClose(b.weightedMean(rows, u32(0, 2, 3), 2, f32(1, 3, 2)), [2.5, 3.5, 10, -10], 6);
        expect(Array.from(b.maxPool(rows, u32(0, 2, 3), 2))).toEqual([3, 4, 10, -10]);
      });
    });

    it('linkage of 4 points (f64 and f32, SciPy Z)', async (ctx) => {
      landed(ctx, () => b.linkage(Y4, 4, 'single'));
      expect(Array.from(b.linkage(Y4, 4, 'single'))).toEqual(Z4_SINGLE);
      expect(Array.from(b.linkage(Float32Array.from(Y4), 4, 'single'))).toEqual(Z4_SINGLE);
      expect(Array.from(await b.linkageAsync(Y4, 4, 'single'))).toEqual(Z4_SINGLE);
      expect(Array.from(b.linkage(Y4, 4, 'complete'))).toEqual([0, 1, 1, 2, 2, 4, 3, 3, 3, 5, 7, 4]);
      const avg = b.linkage(Y4, 4, 'average');
      expect(Array.from(avg.subarray(0, 10))).toEqual([0, 1, 1, 2, 2, 4, 2.5, 3, 3, 5]);
      expect(avg[10]).toBeCloseTo(17 / 3, 12);
      expect(b.linkage(f64(), 1, 'single')).toHaveLength(0);
    });

    it('cutK and cutHeight (0-based labels in order of first appearance)', (ctx) => {
      landed(ctx, () => {
        const z = f64(...Z4_SINGLE);
        expect(Array.from(b.cutK(z, 4, 1))).toEqual([0, 0, 0, 0]);
        expect(Array.from(b.cutK(z, 4, 2))).toEqual([0, 0, 0, 1]);
        expect(Array.from(b.cutK(z, 4, 4))).toEqual([0, 1, 2, 3]);
        expect(Array.from(b.cutHeight(z, 4, 1.5))).toEqual([0, 0, 1, 2]);
        expect(Array.from(b.cutHeight(z, 4, 10))).toEqual([0, 0, 0, 0]);
      });
    });
  });
});

it('loadWasmBackend is synchronous and shares one module instance per process', () => {
  if (!backend) {
    // Not built: the load error must be the coded one that bindings/select.ts reports (asserted, not skipped).
    expect((loadError as KernelError).code).toBe('ERR_BACKEND_UNAVAILABLE');
    return;
  }
  expect(loadWasmBackend()).not.toBeInstanceOf(Promise);
  expect(loadWasmExports()).toBe(raw);
});
