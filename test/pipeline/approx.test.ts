/**
 * Approximate weighting (src/pipeline/approx.ts, the `references` / `coreset` / `bankPrecision` knobs of
 * weighting.ts, the automatic switch of clusterImages): each approximation gives back the exact result at its
 * exact setting, its error shrinks as the knob moves towards it, it is deterministic for a seed, and malformed
 * knob values are RangeErrors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { availableBackends, getBackend } from '../../bindings/select.js';
import {
  autoReferences, coresetSize, DEFAULT_AUTO_REFERENCES, DEFAULT_EXACT_WORK_LIMIT, f16ToF32, f32ToF16, kCenterGreedy, kCenterGreedyAsync,
  roundToF16,
} from '../../src/pipeline/approx.js';
import { computeWeights, patchScores, referenceImages } from '../../src/pipeline/weighting.js';
import { clusterImages } from '../../src/pipeline/run.js';
import { resolveClusterOptions } from '../../src/pipeline/options.js';
import { generateSample, type Sample } from '../../src/sample/index.js';
import type { FeatureBank, Progress } from '../../src/pipeline/types.js';
import { mulberry32 as rng } from '../../src/random.js';


/** n images of a 4×4 grid of d-dim patches: a shared background pattern plus noise (so neighbours are informative). */
function bank(n: number, d: number, seed: number, gridH = 4, gridW = 4): FeatureBank {
  const m = gridH * gridW;
  const r = rng(seed);
  const data = new Float32Array(n * m * d);
  for (let i = 0; i < n; i++) for (let p = 0; p < m; p++) for (let k = 0; k < d; k++) {
    data[(i * m + p) * d + k] = Math.sin(p * 0.7 + k) + 0.3 * (r() - 0.5) + (r() < 0.02 ? 1.5 * r() : 0);
  }
  return { n, m, d, gridH, gridW, data, files: Array.from({ length: n }, (_, i) => `img${i}.png`), skipped: [], timings: {} };
}

const mae = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + Math.abs(x - b[i]!), 0) / a.length;
const backends = availableBackends();

describe('f16 conversion', () => {
  it('is exact for values binary16 represents and keeps signs, zeros, infinities and NaN', () => {
    const exact = [0, -0, 1, -1, 0.5, 2048, 65504, -65504, 2 ** -14, 2 ** -24, 3 * 2 ** -24, 1 + 2 ** -10, Infinity, -Infinity];
    const back = f16ToF32(f32ToF16(new Float32Array(exact)));
    expect([...back]).toEqual(exact);
    expect(Object.is(back[1], -0)).toBe(true);
    expect(Number.isNaN(f16ToF32(f32ToF16(new Float32Array([NaN])))[0])).toBe(true);
    expect([...f32ToF16(new Float32Array([1, -2, 65504, Infinity]))]).toEqual([0x3c00, 0xc000, 0x7bff, 0x7c00]);
  });

  it('rounds to nearest, ties to even, overflow to Infinity, underflow to zero', () => {
    // ties between 1 and 1+2⁻¹⁰ (1 + 2⁻¹¹) go to the even one (1); between 1+2⁻¹⁰ and 1+2⁻⁹ to 1+2⁻⁹
    expect(roundToF16(1 + 2 ** -11)).toBe(1);
    expect(roundToF16(1 + 3 * 2 ** -11)).toBe(1 + 2 ** -9);
    expect(roundToF16(1 + 2 ** -11 + 2 ** -20)).toBe(1 + 2 ** -10);
    expect(roundToF16(65519)).toBe(65504);
    expect(roundToF16(65520)).toBe(Infinity);
    expect(roundToF16(-1e6)).toBe(-Infinity);
    expect(roundToF16(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal: even = 0
    expect(roundToF16(2 ** -25 + 2 ** -40)).toBe(2 ** -24);
    expect(roundToF16(3 * 2 ** -25)).toBe(2 * 2 ** -24); // tie between 1 and 2 subnormal ulps: even = 2
    expect(roundToF16(2 ** -14 - 2 ** -26)).toBe(2 ** -14); // rounds up from the subnormals into the normals
  });

  it('matches a brute-force nearest-value search (ties even) on random values of every magnitude', () => {
    const r = rng(3);
    const all = f16ToF32(new Uint16Array(65536).map((_, i) => i));
    const finite: number[] = [];
    for (let h = 0; h < 0x7c00; h++) finite.push(all[h]!); // non-negative finite values, increasing
    const x = new Float32Array(4000).map(() => (r() < 0.5 ? -1 : 1) * 2 ** (r() * 44 - 28) * (1 + r()));
    const h = f32ToF16(x);
    for (let i = 0; i < x.length; i++) {
      const v = Math.abs(x[i]!);
      let lo = 0;
      let hi = finite.length - 1;
      while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (finite[mid]! <= v) lo = mid; else hi = mid; }
      let want: number;
      if (v >= 65520) want = Infinity;
      else if (v - finite[lo]! < finite[hi]! - v) want = finite[lo]!;
      else if (v - finite[lo]! > finite[hi]! - v) want = finite[hi]!;
      else want = lo % 2 === 0 ? finite[lo]! : finite[hi]!;
      expect(Math.abs(all[h[i]!]!)).toBe(want);
    }
  });
});

describe('coreset selection', () => {
  it('is the farthest-point greedy: matches a brute-force greedy run', () => {
    const r = rng(5);
    const n = 300;
    const d = 6;
    const x = new Float32Array(n * d).map(() => r());
    const got = kCenterGreedy(x, n, d, 40, { seed: 2, dim: false });
    // brute force from the same first centre
    const minD = new Float64Array(n).fill(Infinity);
    const want = [got.indices[0]!];
    const dist = (a: number, b: number) => Math.sqrt(Array.from({ length: d }, (_, k) => (x[a * d + k]! - x[b * d + k]!) ** 2).reduce((s, v) => s + v, 0));
    for (let j = 1; j <= 40; j++) {
      const c = want[j - 1]!;
      for (let q = 0; q < n; q++) minD[q] = Math.min(minD[q]!, dist(q, c));
      if (j === 40) break;
      let best = 0;
      for (let q = 1; q < n; q++) if (minD[q]! > minD[best]!) best = q;
      want.push(best);
    }
    expect([...got.indices]).toEqual(want);
    expect(got.radius).toBeCloseTo(Math.max(...minD), 6);
  });

  it('is deterministic for a seed, and the seed matters', () => {
    const b = bank(6, 8, 1);
    const rows = b.n * b.m;
    const a1 = kCenterGreedy(b.data, rows, b.d, 20, { seed: 4, dim: 4 });
    const a2 = kCenterGreedy(b.data, rows, b.d, 20, { seed: 4, dim: 4 });
    const a3 = kCenterGreedy(b.data, rows, b.d, 20, { seed: 5, dim: 4 });
    expect([...a1.indices]).toEqual([...a2.indices]);
    expect([...a1.indices]).not.toEqual([...a3.indices]);
    expect(new Set(a1.indices).size).toBe(20);
  });

  it('the async selection (yields to the event loop) gives the same result and honours an abort', async () => {
    const b = bank(20, 8, 2);
    const rows = b.n * b.m;
    const sync = kCenterGreedy(b.data, rows, b.d, 200, { seed: 1, backend: getBackend('js') });
    const asyncR = await kCenterGreedyAsync(b.data, rows, b.d, 200, { seed: 1, backend: getBackend('js') });
    expect([...asyncR.indices]).toEqual([...sync.indices]);
    const ac = new AbortController();
    const p = kCenterGreedyAsync(b.data, rows, b.d, 300, { signal: ac.signal });
    setImmediate(() => ac.abort());
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });

  it('coresetSize: fractions, counts and bad values', () => {
    expect(coresetSize(1, 500)).toBe(500);
    expect(coresetSize(0.1, 500)).toBe(50);
    expect(coresetSize(0.0001, 500)).toBe(1);
    expect(coresetSize(20, 500)).toBe(20);
    expect(coresetSize(9999, 500)).toBe(500);
    for (const bad of [0, -0.5, NaN, Infinity, 2.5, -3]) expect(() => coresetSize(bad, 500)).toThrow(RangeError);
  });
});

for (const name of backends) {
  describe(`approximate scores, backend ${name}`, () => {
    const be = getBackend(name);
    const b = bank(12, 16, 7);
    const normals = bank(10, 16, 8);

    it('references = N−1 (or more) gives exactly the exact unsupervised scores', async () => {
      const exact = await patchScores(b, 'unsupervised', { backend: be });
      expect(await patchScores(b, 'unsupervised', { backend: be, references: b.n - 1 })).toEqual(exact);
      expect(await patchScores(b, 'unsupervised', { backend: be, references: 1000 })).toEqual(exact);
      const w = await computeWeights(b, { backend: be, references: b.n - 1 });
      expect(w.approximations).toEqual([]);
    });

    it('the R-reference error falls as R grows, and N−2 references is close', async () => {
      const exact = await patchScores(b, 'unsupervised', { backend: be });
      const err: number[] = [];
      for (const R of [1, 3, 6, 10]) err.push(mae(await patchScores(b, 'unsupervised', { backend: be, references: R }), exact));
      expect(err[3]!).toBeLessThan(err[1]!);
      expect(err[1]!).toBeLessThan(err[0]!);
      const w = await computeWeights(b, { backend: be, references: 3 });
      expect(w.approximations[0]).toMatch(/3 reference images per image \(of 11, evenly spaced\)/);
    });

    it('R references are seed-free: evenly spaced other images, each image used equally often', async () => {
      const a = await patchScores(b, 'unsupervised', { backend: be, references: 4 });
      expect(await patchScores(b, 'unsupervised', { backend: be, references: 4, seed: 10 })).toEqual(a);
      const uses = new Array(b.n).fill(0);
      for (let i = 0; i < b.n; i++) {
        const r = [...referenceImages(b.n, i, 4)];
        expect(r).not.toContain(i);
        expect(new Set(r).size).toBe(4);
        for (const j of r) uses[j]++;
      }
      expect(Math.max(...uses) - Math.min(...uses)).toBeLessThanOrEqual(1);
      expect(() => referenceImages(5, 0, 5)).toThrow(RangeError);
    });

    it('coreset 100 % (1, or a count ≥ all patches) gives exactly the exact semi-supervised scores', async () => {
      const exact = await patchScores(b, 'semi-supervised', { backend: be, normals });
      expect(await patchScores(b, 'semi-supervised', { backend: be, normals, coreset: 1 })).toEqual(exact);
      expect(await patchScores(b, 'semi-supervised', { backend: be, normals, coreset: normals.n * normals.m })).toEqual(exact);
      expect((await computeWeights(b, { weighting: 'semi-supervised', backend: be, normals, coreset: 1 })).approximations).toEqual([]);
    });

    it('coreset scores bound the exact ones from above, and their error decreases with the coreset size', async () => {
      const exact = await patchScores(b, 'semi-supervised', { backend: be, normals });
      const err: number[] = [];
      for (const frac of [0.02, 0.1, 0.3, 0.7]) {
        let e = 0;
        for (let seed = 0; seed < 3; seed++) {
          const s = await patchScores(b, 'semi-supervised', { backend: be, normals, coreset: frac, seed, coresetDim: false });
          for (let i = 0; i < s.length; i++) expect(s[i]!).toBeGreaterThanOrEqual(exact[i]! - 1e-4);
          e += mae(s, exact);
        }
        err.push(e / 3);
      }
      for (let i = 1; i < err.length; i++) expect(err[i]!).toBeLessThan(err[i - 1]!);
      // the default (selection on a projection) is also close at a large fraction
      const s = await patchScores(b, 'semi-supervised', { backend: be, normals, coreset: 0.7 });
      expect(mae(s, exact)).toBeLessThan(0.2 * mae(new Float32Array(exact.length), exact));
    });

    it('coreset scores are deterministic for a seed', async () => {
      const a = await patchScores(b, 'semi-supervised', { backend: be, normals, coreset: 0.1, seed: 3 });
      expect(await patchScores(b, 'semi-supervised', { backend: be, normals, coreset: 0.1, seed: 3 })).toEqual(a);
      expect(await patchScores(b, 'semi-supervised', { backend: be, normals, coreset: 0.1, seed: 4 })).not.toEqual(a);
    });

    it('an f16 bank gives scores within f16 rounding of the f32 ones, also when expanded in several chunks', async () => {
      const exact = await patchScores(b, 'semi-supervised', { backend: be, normals });
      const s = await patchScores(b, 'semi-supervised', { backend: be, normals, bankPrecision: 'f16' });
      const maxS = Math.max(...exact);
      for (let i = 0; i < s.length; i++) expect(Math.abs(s[i]! - exact[i]!)).toBeLessThan(2e-3 * maxS);
      expect(s).not.toEqual(exact);
      // a bank that is exactly representable in f16 gives the same minima whatever the chunking
      const n16 = { ...normals, data: f16ToF32(f32ToF16(normals.data)) };
      const e16 = await patchScores(b, 'semi-supervised', { backend: be, normals: n16 });
      const s16 = await patchScores(b, 'semi-supervised', { backend: be, normals: n16, bankPrecision: 'f16' });
      for (let i = 0; i < s16.length; i++) expect(s16[i]!).toBeCloseTo(e16[i]!, 4);
      const w = await computeWeights(b, { weighting: 'semi-supervised', backend: be, normals, bankPrecision: 'f16', coreset: 0.5 });
      expect(w.approximations.length).toBe(2);
    });
  });
}

describe('invalid knob values', () => {
  const b = bank(4, 4, 1);
  const normals = bank(3, 4, 2);
  it('are RangeErrors, whether or not the weighting uses them', async () => {
    const bad: Record<string, unknown>[] = [
      { references: 0 }, { references: 1.5 }, { references: -2 }, { coreset: 0 }, { coreset: -0.1 }, { coreset: NaN },
      { coreset: 2.5 }, { coreset: Infinity }, { bankPrecision: 'f8' }, { coresetDim: 0 }, { coresetDim: 1.5 }, { seed: 0.5 },
    ];
    for (const o of bad) {
      await expect(computeWeights(b, { weighting: 'semi-supervised', normals, ...o })).rejects.toThrow(RangeError);
      await expect(computeWeights(b, { weighting: 'uniform', ...o })).rejects.toThrow(RangeError);
      await expect(patchScores(b, 'unsupervised', o)).rejects.toThrow(RangeError);
    }
    expect(() => kCenterGreedy(b.data, 4, 4, 0)).toThrow(RangeError);
    expect(() => kCenterGreedy(b.data, 4, 4, 5)).toThrow(RangeError);
    for (const o of [{ references: 'fast' }, { references: 0 }, { exactWorkLimit: -1 }, { exactWorkLimit: NaN }]) {
      expect(() => resolveClusterOptions({ k: 2, weights: o } as never)).toThrow(RangeError);
    }
    expect(() => resolveClusterOptions({ k: 2, weights: { references: 'exact' } })).not.toThrow();
    expect(() => resolveClusterOptions({ k: 2, weights: { references: 'auto' } })).not.toThrow();
  });
});

describe('automatic switch to R references', () => {
  it('stays exact up to the work limit and switches above it, saying so', () => {
    expect(autoReferences(83, 784, 256).references).toBeUndefined(); // MVTec bottle: 1.1e12
    const big = autoReferences(583, 784, 256); // MTD: 5.3e13
    expect(big.references).toBe(DEFAULT_AUTO_REFERENCES);
    expect(big.exactWork).toBeCloseTo(583 ** 2 * 784 ** 2 * 256, -6);
    expect(big.message).toMatch(/32 reference images per image instead of all 582/);
    // N−1 ≤ R: exact whatever the work
    expect(autoReferences(30, 784, 256, 0).references).toBeUndefined();
    expect(autoReferences(40, 784, 256, 0, 8).references).toBe(8);
    // the threshold in images at M=784, D=256
    const nMax = Math.floor(Math.sqrt(DEFAULT_EXACT_WORK_LIMIT / (784 ** 2 * 256)));
    expect(autoReferences(nMax, 784, 256).references).toBeUndefined();
    expect(autoReferences(nMax + 1, 784, 256).references).toBe(DEFAULT_AUTO_REFERENCES);
  });

  describe('in clusterImages', () => {
    let tmp: string;
    let sample: Sample;
    beforeAll(async () => {
      tmp = mkdtempSync(path.join(tmpdir(), 'ac-approx-'));
      sample = await generateSample(path.join(tmp, 'sample'), { perClass: 7, trainNormals: 0, seed: 3 });
    });
    afterAll(() => rmSync(tmp, { recursive: true, force: true }));

    it('approximates above exactWorkLimit (progress message + result.approximations); references: exact overrides', async () => {
      const cacheDir = path.join(tmp, 'cache');
      const events: Progress[] = [];
      const r = await clusterImages(sample.testDir, { k: 5, onProgress: (p) => events.push(p), features: { cacheDir, threads: 2, projectDim: 64 }, weights: { exactWorkLimit: 0 } });
      expect(r.n).toBe(35);
      expect(r.approximations.length).toBe(2);
      expect(r.approximations[0]).toMatch(/32 reference images per image instead of all 34/);
      expect(events.some((e) => e.stage === 'weights' && /approximated/.test(e.message ?? ''))).toBe(true);
      const exact = await clusterImages(sample.testDir, { k: 5, features: { cacheDir, threads: 2, projectDim: 64 }, weights: { exactWorkLimit: 0, references: 'exact' } });
      expect(exact.approximations).toEqual([]);
      const explicit = await clusterImages(sample.testDir, { k: 5, features: { cacheDir, threads: 2, projectDim: 64 }, weights: { references: 8 } });
      expect(explicit.approximations).toEqual(['unsupervised scores against 8 reference images per image (of 34, evenly spaced)']);
    }, 300_000);
  });
});
