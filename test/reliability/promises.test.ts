/**
 * @file Issue 16 — the README's promises, as tests, on every backend (`backendsUnderTest()`):
 * - one error policy: a bad option value is an `OptionError` (a `RangeError` with a code: an unknown linkage
 *   method `ERR_INVALID_METHOD`, k `ERR_K_OUT_OF_RANGE`), thrown before any image is read; bad data is a
 *   `KernelError` with a code;
 * - the backends answer the same on the edge cases where they used to differ: out-of-range `queryGroups`,
 *   `squared: 'yes'`, Float64Array rows (raw backend methods and the API), NaN queries and negative Ward distances
 *   (API), and a linkage whose intermediate distances overflow (js returned ∞/NaN in Z, native and wasm threw);
 * - the stated tolerance: native and wasm `pdist` / `cdist` / `groupedNN` within 1e-5 relative of the js
 *   reference, also on near-duplicate rows far from the origin (measured ≤ 3.5e-7).
 * @module test/reliability/promises
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import * as ac from '../../src/index.js';
import { KernelError } from '../../src/errors.js';
import { getBackend } from '../../bindings/select.js';
import type { LinkageMethod } from '../../bindings/backend.js';
import { backendsUnderTest } from '../helpers.js';
import { tempDir, texturedPng } from './helpers.js';

const BACKENDS = backendsUnderTest();

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('one error policy: bad option values throw OptionError (a RangeError with a code) before any work', () => {
  let dir: string;
  beforeAll(async () => {
    dir = tempDir('ac-promises-');
    mkdirSync(path.join(dir, 'imgs'));
    for (let i = 0; i < 2; i++) writeFileSync(path.join(dir, 'imgs', `i${i}.png`), await texturedPng(32, 32, i + 1));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cases: [string, object, string, string?][] = [
    ['tau -1', { weights: { tau: -1 } }, 'weights.tau', 'ERR_INVALID_ARGUMENT'],
    ['tau "hot"', { weights: { tau: 'hot' } }, 'weights.tau', 'ERR_INVALID_ARGUMENT'],
    ['memoryLimit -1', { resources: { memoryLimit: -1 } }, 'resources.memoryLimit', 'ERR_INVALID_ARGUMENT'],
    ['weighting "x"', { weighting: 'x' }, 'weighting', 'ERR_INVALID_ARGUMENT'],
    ['preset "fast"', { preset: 'fast' }, 'preset', 'ERR_INVALID_ARGUMENT'],
    ['batchSize 0', { features: { batchSize: 0 } }, 'features.batchSize', 'ERR_INVALID_ARGUMENT'],
    ['maxImageBytes 0', { features: { maxImageBytes: 0 } }, 'features.maxImageBytes', 'ERR_INVALID_ARGUMENT'],
    ['references 0', { weights: { references: 0 } }, 'weights.references', 'ERR_INVALID_ARGUMENT'],
    ['backend "gpu"', { resources: { backend: 'gpu' } }, 'resources.backend', 'ERR_INVALID_ARGUMENT'],
    ['autoK kMax 1', { k: 'auto', autoK: { kMax: 1 } }, 'autoK', 'ERR_INVALID_ARGUMENT'],
    ['linkage "nearest"', { linkage: 'nearest' }, 'linkage', 'ERR_INVALID_METHOD'],
    ['k 0', { k: 0 }, 'k', 'ERR_K_OUT_OF_RANGE'],
  ];
  for (const [name, opts, option, code] of cases) {
    it(`clusterImages ${name} → OptionError ${option} ${code}, no image decoded`, async () => {
      let decoded = 0;
      const e = await ac.clusterImages(path.join(dir, 'imgs'), { k: 2, ...opts, onProgress: (p) => { if (p.stage === 'features' && p.done > 0) decoded++; }, features: { ...(opts as { features?: object }).features, cacheDir: false } }).catch((x: unknown) => x);
      expect(e, String(e)).toBeInstanceOf(ac.OptionError);
      expect(e).toBeInstanceOf(RangeError);
      expect(e).toMatchObject({ name: 'OptionError', option, code });
      expect(decoded).toBe(0);
    }, 60_000);
  }
  it('an options object of the wrong shape is a TypeError (an unknown or misplaced key names its group)', async () => {
    const misplaced = await ac.clusterImages(path.join(dir, 'imgs'), { k: 2, tau: 1 } as never).catch((x: unknown) => x);
    expect(misplaced).toBeInstanceOf(TypeError);
    expect((misplaced as Error).message).toMatch(/tau: unknown option here; it belongs to the 'weights' group/);
    expect(await ac.clusterImages(path.join(dir, 'imgs'), { k: 2, weights: 3 } as never).catch((x: unknown) => x)).toBeInstanceOf(TypeError);
  });
});

describe('backends agree on the edge cases', () => {
  const x = new Float32Array([0, 0, 1, 0, 0, 1, 1, 1]);
  const off = new Uint32Array([0, 2, 4]);
  for (const b of BACKENDS) {
    describe(b, () => {
      const be = () => getBackend(b);
      it('raw groupedNN: a queryGroups entry out of range is ERR_INVALID_ARGUMENT (was: silently ignored on native/wasm)', () => {
        for (const bad of [5, -2, 2]) {
          const e = thrown(() => be().groupedNN({ queries: x, nq: 4, base: x, groupOffsets: off, d: 2, mode: 'mean-excluding-own', queryGroups: new Int32Array([0, 0, bad, 1]) }));
          expect(e).toBeInstanceOf(KernelError);
          expect((e as KernelError).code).toBe('ERR_INVALID_ARGUMENT');
          expect((e as Error).message).toBe(`queryGroups: value at index 2 is ${bad}; expected -1 or a group index in [0, 2)`);
        }
        // -1 (no own group) is fine
        expect(be().groupedNN({ queries: x, nq: 4, base: x, groupOffsets: off, d: 2, mode: 'mean-excluding-own', queryGroups: new Int32Array([0, 0, -1, 1]) }).length).toBe(4);
      });
      it("raw pdist / cdist / groupedNN: squared 'yes' is ERR_INVALID_ARGUMENT (was: accepted by wasm and js)", async () => {
        for (const f of [
          () => be().pdist(x, 4, 2, 'yes' as never),
          () => be().cdist(x, 4, x, 4, 2, 1 as never),
          () => be().groupedNN({ queries: x, nq: 4, base: x, groupOffsets: off, d: 2, mode: 'min', squared: 'yes' as never }),
        ]) {
          expect((thrown(f) as KernelError).code).toBe('ERR_INVALID_ARGUMENT');
        }
        await expect(be().pdistAsync(x, 4, 2, 'yes' as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
        expect(ac.pdist(x, { d: 2, squared: true, backend: b })[0]).toBe(1);
      });
      it('raw kernels: Float64Array rows are ERR_INVALID_ARGUMENT (was: computed by js)', () => {
        const x64 = new Float64Array(x);
        for (const f of [
          () => be().pdist(x64 as never, 4, 2, false),
          () => be().cdist(x64 as never, 4, x, 4, 2, false),
          () => be().weightedMean(x64 as never, off, 2, new Float32Array(4).fill(0.5)),
          () => be().maxPool(x64 as never, off, 2),
          () => be().groupedNN({ queries: x64 as never, nq: 4, base: x, groupOffsets: off, d: 2, mode: 'min' }),
        ]) {
          const e = thrown(f);
          expect((e as KernelError).code, String(e)).toBe('ERR_INVALID_ARGUMENT');
          expect((e as Error).message).toMatch(/must be a Float32Array, got Float64Array/);
        }
        expect(thrown(() => ac.pdist(x64 as never, { d: 2, backend: b }))).toBeInstanceOf(TypeError); // the API: a TypeError, as documented
      });
      it('API: NaN queries → ERR_NON_FINITE, negative Ward distances → ERR_INVALID_ARGUMENT', () => {
        const xn = x.slice();
        xn[0] = NaN;
        expect((thrown(() => ac.groupedNN(xn, x, off, { d: 2, mode: 'min', backend: b })) as KernelError).code).toBe('ERR_NON_FINITE');
        expect((thrown(() => ac.linkage(new Float64Array([1, -2, 3]), { method: 'ward', backend: b })) as KernelError).code).toBe('ERR_INVALID_ARGUMENT');
      });
      it('linkage whose intermediate distances overflow throws the same error (was: js returned Infinity/NaN in Z)', () => {
        const y = new Float64Array([1e308, 1e308, 1e308]);
        for (const method of ['ward', 'average', 'complete', 'centroid', 'median'] as LinkageMethod[]) {
          const e = thrown(() => ac.linkage(y, { method, backend: b }));
          const got = e === undefined ? 'a result' : String(e);
          if (method === 'complete') {
            expect(e, got).toBeUndefined(); // max of finite values stays finite
            continue;
          }
          expect(e, `${method}: ${got}`).toBeInstanceOf(KernelError);
          expect((e as KernelError).code).toBe('ERR_INVALID_ARGUMENT');
          expect((e as Error).message).toMatch(new RegExp(`^linkage \\(${method}\\): no finite pair of clusters to merge at step 1;`));
        }
      });
    });
  }
});

describe('stated tolerance: native and wasm distances within 1e-5 relative of the js reference', () => {
  let s = 99;
  const rnd = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const rows = (n: number, d: number, spread: number, centre: number) => {
    const c = Float32Array.from({ length: d }, () => centre * (rnd() * 2 - 1));
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) for (let k = 0; k < d; k++) x[i * d + k] = c[k]! + spread * (rnd() * 2 - 1);
    return x;
  };
  const maxRel = (a: Float32Array, ref: Float32Array) => {
    let m = 0;
    for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - ref[i]!) / Math.abs(ref[i]!));
    return m;
  };
  const configs: [string, number, number, number, number][] = [
    ['random rows', 300, 256, 1, 1],
    ['near-duplicates 1e-2 apart', 300, 256, 1e-2, 1],
    ['near-duplicates 1e-3 apart, |x| ~ 10', 300, 64, 1e-3, 10],
    ['1 apart, |x| ~ 1e3', 300, 16, 1, 1000],
  ];
  for (const b of BACKENDS.filter((x) => x !== 'js')) {
    for (const [name, n, d, spread, centre] of configs) {
      it(`${b}: ${name}`, () => {
        const x = rows(n, d, spread, centre);
        expect(maxRel(ac.pdist(x, { d, backend: b }), ac.pdist(x, { d, backend: 'js' }))).toBeLessThan(1e-5);
        const q = x.subarray(0, 60 * d), base = x.subarray(60 * d);
        expect(maxRel(ac.cdist(q, base, { d, backend: b }), ac.cdist(q, base, { d, backend: 'js' }))).toBeLessThan(1e-5);
        const go = new Uint32Array([0, 80, 160, n - 60]);
        expect(maxRel(ac.groupedNN(q, base, go, { d, mode: 'per-group', backend: b }), ac.groupedNN(q, base, go, { d, mode: 'per-group', backend: 'js' }))).toBeLessThan(1e-5);
      });
    }
  }
});
