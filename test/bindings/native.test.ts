/**
 * @file The real Node-API addon at its boundary: every export present, coded errors for bad input, no panic or
 * garbage argument ever aborting the process, async twins agreeing with sync and leaving the event loop free,
 * inputs of async calls safe from later JS mutation, and the env configuration (ISA, threads).
 *
 * Needs `npm run build:native`. Without the addon the suite is skipped with the load error as the reason, except in
 * CI (`CI` set), where a missing addon fails.
 * Kernel bodies may still be stubs (`Err(InvalidArgument("…: not implemented yet"))`): then the result checks
 * assert that the stub's error arrives with its code, and check real numbers once the kernels land.
 * @module test/native-boundary
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

import { ABI_VERSION, NATIVE_EXPORT_NAMES, type NativeExports } from '../../bindings/abi.js';
import { LINKAGE_METHODS, type KernelBackend } from '../../bindings/backend.js';
import { createNativeBackend, loadNativeAddon, toKernelError, type LoadedNativeAddon } from '../../bindings/native.js';
import { KernelError } from '../../src/errors.js';

let loaded: LoadedNativeAddon | undefined;
let loadError: unknown;
try {
  loaded = loadNativeAddon();
} catch (e) {
  loadError = e;
}
const reason = loadError instanceof Error ? loadError.message.split('\n').slice(0, 3).join(' ') : '';

describe('native addon availability', () => {
  it.runIf(!loaded && process.env.CI)('loads in CI', () => {
    throw loadError;
  });
  // Shown as skipped, with the reason in its name (`npx vitest run --reporter=verbose` lists it).
  if (!loaded && !process.env.CI) it.skip(`native addon not built, boundary tests skipped: ${reason}`, () => {});
  if (loaded) it('loads', () => expect(loaded?.addon.abiVersion()).toBe(ABI_VERSION));
});

/** Seeded rows (mulberry32), so async/sync comparisons see the same data each run. */
function rows(n: number, d: number, seed: number): Float32Array {
  let a = seed >>> 0;
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    x[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  }
  return x;
}

const STUB = /not implemented yet/;

function caught(f: () => unknown): KernelError {
  try {
    f();
  } catch (e) {
    return e as KernelError;
  }
  throw new Error('expected a throw');
}

/** Result of a sync call: the value, or the KernelError it threw. */
function outcome<T>(f: () => T): { ok: true; value: T } | { ok: false; error: KernelError } {
  try {
    return { ok: true, value: f() };
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    return { ok: false, error: e as KernelError };
  }
}

async function outcomeAsync<T>(p: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: KernelError }> {
  try {
    return { ok: true, value: await p() };
  } catch (e) {
    expect(e).toBeInstanceOf(KernelError);
    return { ok: false, error: e as KernelError };
  }
}

/** Same outcome of sync and async: same numbers, or the same error code and message. */
function expectSameOutcome(sync: ReturnType<typeof outcome>, async: ReturnType<typeof outcome>): void {
  expect(async.ok).toBe(sync.ok);
  if (sync.ok && async.ok) expect(async.value).toEqual(sync.value);
  if (!sync.ok && !async.ok) {
    expect(async.error.code).toBe(sync.error.code);
    expect(async.error.message).toBe(sync.error.message);
  }
}

/** Runs `body` in a fresh node process with the addon at `path` as `a`; returns its status and output. */
function inChild(path: string, body: string, env: Record<string, string> = {}) {
  const script = `const a = require(${JSON.stringify(path)});\n${body}`;
  return spawnSync(process.execPath, ['-e', script], {
    encoding: 'utf8',
    env: { ...process.env, RUST_BACKTRACE: '0', ...env },
    timeout: 60_000,
  });
}

describe.skipIf(!loaded)('native addon boundary', () => {
  const raw = loaded?.addon as NativeExports;
  const b = (loaded ? createNativeBackend(raw) : undefined) as KernelBackend;
  const path = loaded?.candidate.id as string;

  it('exports exactly NativeExports, all functions, with our ABI', () => {
    expect(Object.keys(raw).sort()).toEqual([...NATIVE_EXPORT_NAMES].sort());
    for (const name of NATIVE_EXPORT_NAMES) expect(typeof raw[name]).toBe('function');
    expect(raw.abiVersion()).toBe(ABI_VERSION);
    expect(['avx2', 'scalar']).toContain(raw.isa());
    expect(raw.threads()).toBeGreaterThanOrEqual(1);
    expect(b.name).toBe('native');
    expect(b.isa).toBe(raw.isa());
  });

  it('wrong-length inputs give ERR_SHAPE_MISMATCH (checked before any allocation)', () => {
    const cases: [string, () => unknown][] = [
      ['pdist', () => b.pdist(new Float32Array(5), 2, 3, false)],
      ['cdist q', () => b.cdist(new Float32Array(5), 2, new Float32Array(6), 2, 3, false)],
      ['cdist b', () => b.cdist(new Float32Array(6), 2, new Float32Array(7), 2, 3, false)],
      [
        'groupedNN',
        () =>
          b.groupedNN({
            queries: new Float32Array(5),
            nq: 2,
            base: new Float32Array(6),
            groupOffsets: new Uint32Array([0, 2]),
            d: 3,
            mode: 'min',
          }),
      ],
      ['maxPool', () => b.maxPool(new Float32Array(5), new Uint32Array([0, 2]), 3)],
      ['linearMap x', () => b.linearMap(new Float32Array(5), 2, 3, new Float32Array(6), 2)],
      ['linearMap w', () => b.linearMap(new Float32Array(6), 2, 3, new Float32Array(7), 2)],
      ['weightedMean', () => b.weightedMean(new Float32Array(7), new Uint32Array([0, 2]), 3, new Float32Array(2))],
      ['cutK', () => b.cutK(new Float64Array(3), 2, 1)],
      ['cutHeight', () => b.cutHeight(new Float64Array(9), 3, 1)],
    ];
    for (const [what, f] of cases) {
      const e = caught(f);
      expect(e, what).toBeInstanceOf(KernelError);
      expect(e.code, what).toBe('ERR_SHAPE_MISMATCH');
      expect(e.message, what).toMatch(/expected length \d+, got \d+/);
    }
  });

  it('dimensions that are not non-negative integers give ERR_INVALID_ARGUMENT', () => {
    for (const n of [-1, 1.5, Number.NaN, Infinity, 2 ** 60]) {
      const e = caught(() => b.pdist(new Float32Array(0), n, 3, false));
      expect(e.code, String(n)).toBe('ERR_INVALID_ARGUMENT');
      expect(e.message).toContain('n: expected a non-negative integer');
    }
  });

  it('wrong JS types give ERR_INVALID_ARGUMENT', () => {
    const bad: unknown[] = [new Float64Array(6), [0, 0, 0, 0, 0, 0], 'x', undefined, null, {}];
    for (const x of bad) {
      const e = caught(() => b.pdist(x as Float32Array, 2, 3, false));
      expect(e.code, String(x)).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(caught(() => b.pdist(new Float32Array(6), '2' as unknown as number, 3, false)).code).toBe(
      'ERR_INVALID_ARGUMENT',
    );
    expect(caught(() => b.cutK(new Float32Array(4) as unknown as Float64Array, 2, 1)).code).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('unknown method or mode names give ERR_INVALID_METHOD', () => {
    expect(caught(() => b.linkage(new Float64Array(1), 2, 'bogus' as 'ward')).code).toBe('ERR_INVALID_METHOD');
    const e = caught(() =>
      b.groupedNN({
        queries: new Float32Array(2),
        nq: 1,
        base: new Float32Array(2),
        groupOffsets: new Uint32Array([0, 1]),
        d: 2,
        mode: 'nearest' as 'min',
      }),
    );
    expect(e.code).toBe('ERR_INVALID_METHOD');
  });

  it('kernel validation codes arrive intact, sync and async (ERR_K_OUT_OF_RANGE, ERR_NON_FINITE)', async () => {
    const z = new Float64Array([0, 1, 1, 2, 2, 3, 2, 3]);
    const k = outcome(() => b.cutK(z, 3, 5));
    expect(k.ok).toBe(false);
    if (!k.ok && !STUB.test(k.error.message)) {
      expect(k.error.code).toBe('ERR_K_OUT_OF_RANGE');
    }
    const y = new Float64Array([1, Number.NaN, 2]);
    const sync = outcome(() => b.linkage(y, 3, 'single'));
    expect(sync.ok).toBe(false);
    if (!sync.ok && !STUB.test(sync.error.message)) {
      expect(sync.error.code).toBe('ERR_NON_FINITE');
      expect(sync.error.message).toContain('index 1');
    }
    expectSameOutcome(sync, await outcomeAsync(() => b.linkageAsync(y, 3, 'single')));
  });

  it('outputs too large to allocate are errors, not aborts', () => {
    // d = 0 makes any n consistent with an empty x: the output size alone must be refused.
    for (const n of [2 ** 40, 2 ** 52]) {
      expect(caught(() => b.pdist(new Float32Array(0), n, 0, false)).code).toBe('ERR_INVALID_ARGUMENT');
    }
    expect(caught(() => b.cdist(new Float32Array(0), 2 ** 30, new Float32Array(0), 2 ** 30, 0, false)).code).toBe(
      'ERR_INVALID_ARGUMENT',
    );
  });

  it('a panic inside the addon (even on a rayon worker) becomes ERR_INTERNAL, sync and async', async () => {
    const e = caught(() => {
      try {
        raw.panicForTests('boom');
      } catch (err) {
        expect((err as { code?: string }).code).toBe('ERR_INTERNAL');
        throw toKernelError(err);
      }
    });
    expect(e.code).toBe('ERR_INTERNAL');
    expect(e.message).toContain('boom');
    await expect(raw.panicForTestsAsync('boom async')).rejects.toMatchObject({ code: 'ERR_INTERNAL' });
    // …and the addon still works afterwards.
    expect(raw.abiVersion()).toBe(ABI_VERSION);
  });

  it('a battery of garbage calls never aborts the process', () => {
    // In a child process, so that an abort shows up as a signal/exit status instead of killing the test worker.
    const body = `
      const F = Float32Array, D = Float64Array, U = Uint32Array, I = Int32Array;
      const vals = [undefined, null, -1, 0, 1, 2.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32 + 3, 2 ** 53, 1e300,
        'x', {}, [], new F(0), new F(7), new D(3), new U([0, 3, 1]), new U([5]), new I([-1, 9])];
      let calls = 0, errors = 0;
      let seed = 12345;
      const pick = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return vals[seed % vals.length]; };
      const arity = { pdist: 4, cdist: 6, groupedNn: 8, groupedNnSelf: 5, softmaxWeights: 3, weightedMean: 4, maxPool: 3,
        linearMap: 5, linkageF64: 3, linkageF32: 3, cutK: 3, cutHeight: 3 };
      const pending = [];
      const check = (name, e) => {
        errors++;
        if (typeof e?.code !== 'string') throw new Error(name + ' failed without a code: ' + e);
      };
      for (let round = 0; round < 300; round++) {
        for (const [name, k] of Object.entries(arity)) {
          const asyncName = { pdist: 'pdistAsync', cdist: 'cdistAsync', groupedNn: 'groupedNnAsync', groupedNnSelf: 'groupedNnSelfAsync',
            linkageF64: 'linkageF64Async', linkageF32: 'linkageF32Async', linearMap: 'linearMapAsync' }[name];
          for (const fn of asyncName ? [name, asyncName] : [name]) {
            const args = Array.from({ length: k }, pick);
            calls++;
            try {
              const r = a[fn](...args);
              if (r instanceof Promise) pending.push(r.then(() => {}, (e) => check(fn, e)));
            } catch (e) { check(fn, e); }
          }
        }
      }
      try { a.panicForTests('in battery'); } catch {}
      Promise.all(pending).then(() => console.log('survived', calls, errors));
    `;
    const r = inChild(path, body);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('survived');
  });

  it('pdist of 3 known points (or the stub error with its code)', () => {
    const x = new Float32Array([0, 0, 3, 4, 6, 8]);
    const r = outcome(() => b.pdist(x, 3, 2, false));
    if (!r.ok) {
      expect(r.error.message).toMatch(STUB);
      expect(r.error.code).toBe('ERR_INVALID_ARGUMENT');
      return;
    }
    expect(Array.from(r.value)).toEqual([5, 10, 5]);
    const sq = b.pdist(x, 3, 2, true);
    expect(Array.from(sq)).toEqual([25, 100, 25]);
  });

  it('every kernel on a tiny known input (or its stub error with its code)', () => {
    const x = new Float32Array([0, 0, 3, 4, 6, 8]); // three points: d01 = 5, d02 = 10, d12 = 5
    const one = new Uint32Array([0, 3]);
    const zSingle = new Float64Array([0, 1, 1, 2, 2, 3, 2, 3]); // scipy single linkage of y = [1, 4, 2]
    const cases: [string, () => ArrayLike<number>, number[]][] = [
      ['cdist', () => b.cdist(x.subarray(0, 2), 1, x, 3, 2, false), [0, 5, 10]],
      [
        'groupedNN per-group',
        () => b.groupedNN({ queries: x, nq: 3, base: x, groupOffsets: new Uint32Array([0, 1, 3]), d: 2, mode: 'per-group' }),
        [0, 5, 5, 0, 10, 0],
      ],
      [
        'groupedNN mean-excluding-own',
        () =>
          b.groupedNN({
            queries: x,
            nq: 3,
            base: x,
            groupOffsets: new Uint32Array([0, 1, 3]),
            d: 2,
            mode: 'mean-excluding-own',
            queryGroups: new Int32Array([0, 1, 1]),
          }),
        [5, 5, 10],
      ],
      ['softmaxWeights', () => b.softmaxWeights(new Float32Array([1, 2, 3]), one, 1), [0.09003057, 0.24472847, 0.66524096]],
      ['weightedMean', () => b.weightedMean(x, one, 2, new Float32Array([1, 1, 2])), [3.75, 5]],
      ['maxPool', () => b.maxPool(x, one, 2), [6, 8]],
      ['linearMap', () => b.linearMap(x, 3, 2, new Float32Array([1, 0, 0.5, 2]), 2), [0, 0, 3, 9.5, 6, 19]],
      ['linkage single', () => b.linkage(new Float64Array([1, 4, 2]), 3, 'single'), Array.from(zSingle)],
      ['linkage complete f32', () => b.linkage(new Float32Array([1, 4, 2]), 3, 'complete'), [0, 1, 1, 2, 2, 3, 4, 3]],
      ['cutK', () => b.cutK(zSingle, 3, 2), [0, 0, 1]],
      ['cutHeight', () => b.cutHeight(zSingle, 3, 0.5), [0, 1, 2]],
    ];
    for (const [what, f, expected] of cases) {
      const r = outcome(f);
      if (!r.ok) {
        expect(r.error.message, what).toMatch(STUB);
        expect(r.error.code, what).toBe('ERR_INVALID_ARGUMENT');
        continue;
      }
      expect(r.value.length, what).toBe(expected.length);
      expected.forEach((v, i) => expect(r.value[i], `${what}[${i}]`).toBeCloseTo(v, 5));
    }
  });

  it('async twins give the same result (or error) as sync', async () => {
    const n = 40;
    const d = 7;
    const x = rows(n, d, 1);
    const q = rows(5, d, 2);
    expectSameOutcome(
      outcome(() => b.pdist(x, n, d, false)),
      await outcomeAsync(() => b.pdistAsync(x, n, d, false)),
    );
    expectSameOutcome(
      outcome(() => b.cdist(q, 5, x, n, d, true)),
      await outcomeAsync(() => b.cdistAsync(q, 5, x, n, d, true)),
    );
    const args = {
      queries: q,
      nq: 5,
      base: x,
      groupOffsets: new Uint32Array([0, 10, 25, 40]),
      d,
      mode: 'mean-excluding-own' as const,
      queryGroups: new Int32Array([0, 1, 2, -1, 0]),
    };
    expectSameOutcome(
      outcome(() => b.groupedNN(args)),
      await outcomeAsync(() => b.groupedNNAsync(args)),
    );
    const y64 = new Float64Array((n * (n - 1)) / 2).map((_, i) => 1 + ((i * 7919) % 1000) / 1000);
    const y32 = Float32Array.from(y64);
    for (const method of LINKAGE_METHODS) {
      for (const y of [y64, y32]) {
        expectSameOutcome(
          outcome(() => b.linkage(y, n, method)),
          await outcomeAsync(() => b.linkageAsync(y, n, method)),
        );
      }
    }
    // Validation failures reject (never throw synchronously) with the sync error's code.
    expectSameOutcome(
      outcome(() => b.pdist(x, n + 1, d, false)),
      await outcomeAsync(() => b.pdistAsync(x, n + 1, d, false)),
    );
  });

  it('async inputs are copied: mutating or detaching them after the call does not change the result', async () => {
    const n = 64;
    const d = 16;
    const x = rows(n, d, 3);
    const expected = outcome(() => b.pdist(x, n, d, false));
    const mutated = x.slice();
    const p1 = outcomeAsync(() => b.pdistAsync(mutated, n, d, false));
    mutated.fill(1e30);
    const detached = x.slice();
    const p2 = outcomeAsync(() => b.pdistAsync(detached, n, d, false));
    structuredClone(detached.buffer, { transfer: [detached.buffer] }); // detaches `detached`
    expect(detached.length).toBe(0);
    expectSameOutcome(expected, await p1);
    expectSameOutcome(expected, await p2);
  });

  it('the event loop keeps ticking during a long pdistAsync', async () => {
    const probe = outcome(() => b.pdist(new Float32Array(4), 2, 2, false));
    if (!probe.ok && STUB.test(probe.error.message)) {
      // Kernel still a stub: nothing long-running to observe yet; the async path is covered above.
      expect(probe.error.code).toBe('ERR_INVALID_ARGUMENT');
      return;
    }
    const d = 256;
    // Grow n until one call takes ≥ 150 ms, so that ticks are meaningful on any machine.
    for (let n = 1000; ; n *= 2) {
      const x = rows(n, d, 4);
      let ticks = 0;
      const timer = setInterval(() => ticks++, 5);
      const t0 = performance.now();
      const out = await b.pdistAsync(x, n, d, false);
      const ms = performance.now() - t0;
      clearInterval(timer);
      expect(out.length).toBe((n * (n - 1)) / 2);
      if (ms >= 150 || n >= 16000) {
        // A blocked loop would tick at most once; a free one ticks about ms/5 times (be lenient on a busy box).
        expect(ticks).toBeGreaterThanOrEqual(Math.min(10, Math.floor(ms / 25)));
        break;
      }
    }
  });

  it('ANOMALY_CLUSTERING_ISA=scalar and ANOMALY_CLUSTERING_THREADS=N configure a fresh process', () => {
    const r = inChild(path, 'console.log(JSON.stringify({ isa: a.isa(), threads: a.threads() }));', {
      ANOMALY_CLUSTERING_ISA: 'scalar',
      ANOMALY_CLUSTERING_THREADS: '3',
    });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ isa: 'scalar', threads: 3 });
    const bad = inChild(path, 'console.log(a.threads());', { ANOMALY_CLUSTERING_THREADS: 'lots' });
    expect(Number(bad.stdout)).toBeGreaterThanOrEqual(1);
  });
});

