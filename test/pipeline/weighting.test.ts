import { describe, expect, it } from 'vitest';
import { availableBackends, getBackend } from '../../bindings/select.js';
import { computeWeights, meanWithinStd, patchScores, checkTau, DEFAULT_TAU } from '../../src/pipeline/weighting.js';
import type { FeatureBank, Progress } from '../../src/pipeline/types.js';
import { KernelError } from '../../src/errors.js';
import { mulberry32 as rng } from '../../src/random.js';


function bank(n: number, gridH: number, gridW: number, d: number, seed: number, f?: (i: number, p: number, k: number) => number): FeatureBank {
  const m = gridH * gridW;
  const r = rng(seed);
  const data = new Float32Array(n * m * d);
  for (let i = 0; i < n; i++) for (let p = 0; p < m; p++) for (let k = 0; k < d; k++) {
    data[(i * m + p) * d + k] = f ? f(i, p, k) : r() * 0.1;
  }
  return { n, m, d, gridH, gridW, data, files: Array.from({ length: n }, (_, i) => `img${i}.png`), skipped: [], timings: {} };
}

/** Brute-force unsupervised scores (docs/method.md §2) in f64. */
function bruteUnsup(b: FeatureBank): Float64Array {
  const { n, m, d, data } = b;
  const out = new Float64Array(n * m);
  for (let i = 0; i < n; i++) for (let p = 0; p < m; p++) {
    let acc = 0;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      let best = Infinity;
      for (let q = 0; q < m; q++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += (data[(i * m + p) * d + k]! - data[(j * m + q) * d + k]!) ** 2;
        best = Math.min(best, Math.sqrt(s));
      }
      acc += best;
    }
    out[i * m + p] = acc / (n - 1);
  }
  return out;
}

const backends = availableBackends();

describe('weighting', () => {
  it('at least the js backend loads', () => expect(backends).toContain('js'));

  for (const name of backends) {
    describe(`backend ${name}`, () => {
      const be = getBackend(name);

      it('unsupervised scores match the definition', async () => {
        const b = bank(4, 3, 3, 5, 1);
        const s = await patchScores(b, 'unsupervised', { backend: be });
        const ref = bruteUnsup(b);
        for (let i = 0; i < s.length; i++) expect(s[i]).toBeCloseTo(ref[i]!, 5);
      });

      it('exact unsupervised: the symmetric self-join and the per-image chunks give the same scores', async () => {
        const b = bank(7, 4, 5, 9, 11);
        const joined = await patchScores(b, 'unsupervised', { backend: be }); // small: one self-join call
        const chunked = await patchScores(b, 'unsupervised', { backend: be, selfJoinWork: 0, chunkWork: 1 });
        const ref = bruteUnsup(b);
        for (let i = 0; i < joined.length; i++) {
          expect(Math.abs(joined[i]! - chunked[i]!)).toBeLessThanOrEqual(1e-5 * Math.max(1, ref[i]!));
          expect(joined[i]).toBeCloseTo(ref[i]!, 5);
        }
        const msgs: string[] = [];
        await patchScores(b, 'unsupervised', { backend: be, onProgress: (p) => msgs.push(p.message ?? '') });
        expect(msgs).toContain('unsupervised patch scores (symmetric self-join)');
        await expect(patchScores(b, 'unsupervised', { backend: be, selfJoinWork: -1 })).rejects.toThrow(RangeError);
      });

      it('a bag with one outlier patch gives that patch the highest weight', async () => {
        const b = bank(6, 4, 4, 8, 2);
        // image 3, patch 5 is a "defect": far from every other patch
        for (let k = 0; k < 8; k++) b.data[(3 * 16 + 5) * 8 + k] = 2 + k * 0.1;
        const r = await computeWeights(b, { weighting: 'unsupervised', backend: be });
        const w3 = r.maps[3]!;
        expect(w3.length).toBe(16);
        expect([...w3].indexOf(Math.max(...w3))).toBe(5);
        expect(w3[5]!).toBeGreaterThan(1 / 16);
        expect([...r.scores.subarray(3 * 16, 4 * 16)].indexOf(Math.max(...r.scores.subarray(3 * 16, 4 * 16)))).toBe(5);
        for (let i = 0; i < 6; i++) expect(r.maps[i]!.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 5);
        // embedding of image 3 pulled towards the outlier
        const u = await computeWeights(b, { weighting: 'uniform', backend: be });
        expect(r.embeddings[3 * 8]!).toBeGreaterThan(u.embeddings[3 * 8]!);
      });

      it('tau → ∞ gives uniform weights; tau 0 the arg-max', async () => {
        const b = bank(5, 2, 3, 4, 3);
        // (raw patches: the uniform embeddings below are means of unwhitened patches)
        const inf = await computeWeights(b, { tau: Infinity, backend: be, whiten: false });
        for (const w of inf.weights) expect(w).toBeCloseTo(1 / 6, 6);
        const huge = await computeWeights(b, { tau: { relative: 1e9 }, backend: be });
        for (const w of huge.weights) expect(w).toBeCloseTo(1 / 6, 4);
        const uni = await computeWeights(b, { weighting: 'uniform', backend: be });
        for (let i = 0; i < inf.embeddings.length; i++) expect(inf.embeddings[i]).toBeCloseTo(uni.embeddings[i]!, 5);
        const hard = await computeWeights(b, { tau: 0, backend: be });
        for (let i = 0; i < 5; i++) {
          const s = [...hard.scores.subarray(i * 6, i * 6 + 6)];
          const am = s.indexOf(Math.max(...s));
          expect(hard.maps[i]![am]).toBeCloseTo(1, 6);
        }
      });

      it("relative tau with spread 'set' = r × mean within-image std of the scores", async () => {
        const b = bank(5, 3, 3, 4, 4);
        const r = await computeWeights(b, { tau: { relative: 0.5, spread: 'set' }, backend: be });
        expect(r.scoreSpread).toBeCloseTo(meanWithinStd(r.scores, 5, 9), 10);
        expect(r.tau).toBeCloseTo(0.5 * r.scoreSpread, 10);
        const a = await computeWeights(b, { tau: r.tau, backend: be });
        for (let i = 0; i < a.weights.length; i++) expect(a.weights[i]).toBeCloseTo(r.weights[i]!, 6);
      });

      it('relative tau (default per-image spread): image i weighted at τ_i = r × its own score std', async () => {
        const b = bank(5, 3, 3, 4, 4);
        const r = await computeWeights(b, { tau: { relative: 0.5 }, backend: be });
        expect(r.tau).toBeCloseTo(0.5 * r.scoreSpread, 10);
        for (let i = 0; i < 5; i++) {
          const s = r.scores.subarray(i * 9, (i + 1) * 9);
          const t = 0.5 * meanWithinStd(s, 1, 9);
          const mx = Math.max(...s);
          const e = [...s].map((v) => Math.exp((v - mx) / t));
          const z = e.reduce((x, y) => x + y, 0);
          for (let k = 0; k < 9; k++) expect(r.maps[i]![k]).toBeCloseTo(e[k]! / z, 5);
        }
        // 'image' is the default spread
        const same = await computeWeights(b, { tau: { relative: 0.5, spread: 'image' }, backend: be });
        for (let i = 0; i < same.weights.length; i++) expect(same.weights[i]).toBeCloseTo(r.weights[i]!, 7);
      });

      it('semi-supervised scores are distances to the nearest normal patch', async () => {
        // normals: all patches at 0; test images: patch 0 at distance 3, others at distance 0.1
        const normals = bank(3, 2, 2, 3, 5, () => 0);
        const b = bank(2, 2, 2, 3, 6, (_i, p, k) => (p === 0 ? (k === 0 ? 3 : 0) : k === 1 ? 0.1 : 0));
        // the definition, on raw patches (whitening would rescale the distances)
        const r = await computeWeights(b, { weighting: 'semi-supervised', normals, backend: be, whiten: false });
        expect(r.scores[0]).toBeCloseTo(3, 5);
        expect(r.scores[1]).toBeCloseTo(0.1, 5);
        expect(r.maps[0]![0]!).toBeGreaterThan(0.5);
        // a normal bank that contains the "defect" makes it unremarkable
        const normals2 = bank(1, 2, 2, 3, 7, (_i, p, k) => (p === 0 && k === 0 ? 3 : 0));
        const r2 = await computeWeights(b, { weighting: 'semi-supervised', normals: normals2, backend: be, whiten: false });
        expect(r2.scores[0]).toBeCloseTo(0, 5);
      });

      it('max pooling: per-dimension max embeddings, weights = share of arg-max dims', async () => {
        const b = bank(3, 2, 2, 4, 8);
        const r = await computeWeights(b, { weighting: 'max', backend: be });
        for (let i = 0; i < 3; i++) for (let k = 0; k < 4; k++) {
          let mx = -Infinity;
          for (let p = 0; p < 4; p++) mx = Math.max(mx, b.data[(i * 4 + p) * 4 + k]!);
          expect(r.embeddings[i * 4 + k]).toBe(Math.fround(mx));
        }
        for (const w of r.maps) expect(w.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 6);
      });

      it('fires progress per chunk and honours an AbortSignal', async () => {
        const b = bank(6, 3, 3, 4, 9);
        const events: Progress[] = [];
        await computeWeights(b, { backend: be, chunkWork: 1, selfJoinWork: 0, onProgress: (p) => events.push(p) });
        expect(events.length).toBe(8); // whitening + start + one per image
        expect(events[0]).toMatchObject({ stage: 'weights', done: 0, message: 'whitening the patches' });
        expect(events.at(-1)).toMatchObject({ stage: 'weights', done: 54, total: 54 });
        const ac = new AbortController();
        const p = computeWeights(b, {
          backend: be, chunkWork: 1, selfJoinWork: 0, signal: ac.signal,
          onProgress: (e) => { if (e.done >= 18) ac.abort(); },
        });
        await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
      });
    });
  }

  it('all backends agree', async () => {
    const b = bank(7, 3, 4, 6, 10);
    const ref = await computeWeights(b, { backend: 'js' });
    for (const name of backends) {
      const r = await computeWeights(b, { backend: name });
      for (let i = 0; i < ref.weights.length; i++) expect(r.weights[i]).toBeCloseTo(ref.weights[i]!, 5);
      for (let i = 0; i < ref.embeddings.length; i++) expect(r.embeddings[i]).toBeCloseTo(ref.embeddings[i]!, 5);
    }
  });

  it('checks its options', async () => {
    const b = bank(2, 1, 2, 2, 11);
    await expect(computeWeights(b, { weighting: 'semi-supervised', backend: 'js' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
    await expect(computeWeights(b, { weighting: 'bogus' as never, backend: 'js' })).rejects.toThrow(RangeError);
    await expect(computeWeights(b, { tau: -1, backend: 'js' })).rejects.toThrow(RangeError);
    await expect(computeWeights({ ...b, data: new Float32Array(3) }, { backend: 'js' })).rejects.toBeInstanceOf(KernelError);
    await expect(computeWeights(b, { weighting: 'semi-supervised', normals: bank(1, 1, 1, 3, 1), backend: 'js' }))
      .rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
    expect(checkTau(DEFAULT_TAU)).toEqual({ relative: 0.5, spread: 'image' });
    expect(checkTau({ relative: 2, spread: 'set' })).toEqual({ relative: 2, spread: 'set' });
    expect(() => checkTau({ relative: 2, spread: 'bogus' as never })).toThrow(RangeError);
  });

  it('references: evenly spaced other images, seed-free; ≥ n−1 is exact', async () => {
    const b = bank(8, 2, 3, 4, 13);
    const exact = await patchScores(b, 'unsupervised', { backend: 'js' });
    const all = await patchScores(b, 'unsupervised', { backend: 'js', references: 7 });
    expect([...all]).toEqual([...exact]);
    const a1 = await patchScores(b, 'unsupervised', { backend: 'js', references: 3, seed: 1 });
    const a2 = await patchScores(b, 'unsupervised', { backend: 'js', references: 3, seed: 1 });
    const a3 = await patchScores(b, 'unsupervised', { backend: 'js', references: 3, seed: 2 });
    const a4 = await patchScores(b, 'unsupervised', { backend: 'js', references: 4 });
    expect([...a2]).toEqual([...a1]);
    expect([...a3]).toEqual([...a1]); // no seed in the reference choice
    expect([...a4]).not.toEqual([...a1]);
    // each approximate score is a mean of 3 of the exact per-image nearest distances: within their range
    const per = getBackend('js').groupedNN({ queries: b.data, nq: 48, base: b.data, groupOffsets: Uint32Array.from({ length: 9 }, (_, i) => i * 6), d: 4, mode: 'per-group' });
    for (let q = 0; q < 48; q++) {
      const own = Math.floor(q / 6);
      const others = [...per.subarray(q * 8, q * 8 + 8)].filter((_, g) => g !== own);
      expect(a1[q]!).toBeGreaterThanOrEqual(Math.min(...others) - 1e-5);
      expect(a1[q]!).toBeLessThanOrEqual(Math.max(...others) + 1e-5);
    }
    // identical other images: the subset changes nothing
    const same = bank(6, 2, 2, 3, 14, (i, p, k) => (i === 0 ? p * 0.3 + k : (p + k) * 0.1));
    const e2 = await patchScores(same, 'unsupervised', { backend: 'js' });
    const s2 = await patchScores(same, 'unsupervised', { backend: 'js', references: 2 });
    for (let q = 0; q < 4; q++) expect(s2[q]).toBeCloseTo(e2[q]!, 5);
    await expect(patchScores(b, 'unsupervised', { backend: 'js', references: 0 })).rejects.toThrow(RangeError);
  });

  it('one image: unsupervised falls back to uniform', async () => {
    const r = await computeWeights(bank(1, 2, 2, 3, 12), { backend: 'js' });
    for (const w of r.weights) expect(w).toBeCloseTo(0.25, 6);
  });
});
