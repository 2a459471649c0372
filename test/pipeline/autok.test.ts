import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { generateSample } from '../../src/sample/index.js';
import { getBackend } from '../../bindings/select.js';
import {
  AUTO_K_CRITERIA, chooseK, chooseKAsync, calinskiHarabaszScores, heightGapScores, pcaScores, silhouetteScores, type AutoKCriterion,
} from '../../src/pipeline/autok.js';
import { clusterImages } from '../../src/pipeline/run.js';
import * as api from '../../src/stages.js';
import { gauss, randomRows, rng } from '../helpers.js';

const be = getBackend();

/** `k` Gaussian blobs in `d` dims (centres ~N(0, spread²), points σ = 1), uneven sizes, interleaved order. */
function blobs(k: number, d: number, seed: number, spread = 12, base = 9): { x: Float32Array; n: number; truth: number[] } {
  const r = rng(seed);
  const centres = Array.from({ length: k }, () => Array.from({ length: d }, () => gauss(r) * spread));
  const truth: number[] = [];
  for (let c = 0; c < k; c++) for (let i = 0; i < base + 2 * c; i++) truth.push(c);
  // deterministic shuffle so clusters are not contiguous
  for (let i = truth.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [truth[i], truth[j]] = [truth[j]!, truth[i]!];
  }
  const n = truth.length;
  const x = new Float32Array(n * d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) x[i * d + j] = centres[truth[i]!]![j]! + gauss(r);
  return { x, n, truth };
}

function wardZ(x: Float32Array, n: number, d: number): Float64Array {
  return be.linkage(be.pdist(x, n, d, false), n, 'ward');
}

/** Brute-force silhouette (the definition, square matrix, f64). */
function bruteSilhouette(x: Float32Array, n: number, d: number, lab: Int32Array): number {
  const dist = (i: number, j: number) => {
    let s = 0;
    for (let t = 0; t < d; t++) s += (x[i * d + t]! - x[j * d + t]!) ** 2;
    return Math.sqrt(s);
  };
  let total = 0;
  for (let i = 0; i < n; i++) {
    const sum = new Map<number, [number, number]>();
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const e = sum.get(lab[j]!) ?? [0, 0];
      sum.set(lab[j]!, [e[0] + dist(i, j), e[1] + 1]);
    }
    const own = sum.get(lab[i]!);
    if (!own) continue;
    const a = own[0] / own[1];
    let b = Infinity;
    for (const [c, [s, m]] of sum) if (c !== lab[i]) b = Math.min(b, s / m);
    total += (b - a) / Math.max(a, b);
  }
  return total / n;
}

describe('chooseK finds the true K of clearly clustered data', () => {
  const cases: [number, number, number][] = [[3, 8, 1], [4, 16, 2], [6, 8, 3], [8, 32, 4]];
  for (const criterion of AUTO_K_CRITERIA) {
    for (const [k, d, seed] of cases) {
      it(`${criterion}: K=${k} (d=${d})`, () => {
        const { x, n } = blobs(k, d, seed);
        const Z = wardZ(x, n, d);
        const r = chooseK({ embeddings: x, n, d, Z }, { criterion });
        expect(r.criterion).toBe(criterion);
        expect(r.chosen).toBe(k);
        expect(r.kMax).toBe(20);
        expect(r.candidates.map((c) => c.k)).toEqual(Array.from({ length: 19 }, (_, i) => i + 2));
        if (criterion !== 'gap-statistic') {
          const best = Math.max(...r.candidates.map((c) => c.score));
          expect(r.candidates.find((c) => c.k === k)!.score).toBe(best);
        } else {
          expect(r.candidates.every((c) => Number.isFinite(c.se))).toBe(true);
        }
      });
    }
  }
  it('the default criterion is exported and used when none is given', () => {
    const { x, n } = blobs(4, 8, 9);
    const Z = wardZ(x, n, 8);
    const r = chooseK({ embeddings: x, n, d: 8, Z });
    expect(r.criterion).toBe(api.DEFAULT_AUTO_K_CRITERION);
    expect(r.chosen).toBe(4);
  });
});

describe('chooseK scores', () => {
  const { x, n } = blobs(4, 6, 11, 3); // overlapping: scores are not trivial
  const d = 6;
  const Z = wardZ(x, n, d);
  const cuts = [2, 3, 4, 5, 6, 7].map((k) => be.cutK(Z, n, k));
  it('silhouette matches the brute-force definition', () => {
    const y = be.pdist(x, n, d, false);
    const s = silhouetteScores(y, n, cuts);
    cuts.forEach((lab, i) => expect(s[i]).toBeCloseTo(bruteSilhouette(x, n, d, lab), 5));
    // the row-block path (condensed matrix over budget) gives the same
    const viaRows = chooseK({ embeddings: x, n, d, Z }, { criterion: 'silhouette', kMax: 7, maxDistanceBytes: 0 });
    viaRows.candidates.forEach((c, i) => expect(c.score).toBeCloseTo(s[i]!, 5));
  });
  it('calinski-harabasz matches the formula', () => {
    const ch = calinskiHarabaszScores(x, n, d, cuts);
    cuts.forEach((lab, i) => {
      const k = i + 2;
      const mean = new Array(d).fill(0);
      for (let p = 0; p < n; p++) for (let t = 0; t < d; t++) mean[t] += x[p * d + t]! / n;
      const cm = Array.from({ length: k }, () => new Array(d).fill(0));
      const cnt = new Array(k).fill(0);
      for (let p = 0; p < n; p++) { cnt[lab[p]!]++; for (let t = 0; t < d; t++) cm[lab[p]!]![t] += x[p * d + t]!; }
      let B = 0;
      let W = 0;
      for (let c = 0; c < k; c++) for (let t = 0; t < d; t++) B += cnt[c] * (cm[c]![t] / cnt[c] - mean[t]) ** 2;
      for (let p = 0; p < n; p++) for (let t = 0; t < d; t++) W += (x[p * d + t]! - cm[lab[p]!]![t] / cnt[lab[p]!]) ** 2;
      expect(ch[i]! / ((B / (k - 1)) / (W / (n - k)))).toBeCloseTo(1, 4);
    });
  });
  it('height-gap reads the merge heights around each cut', () => {
    // n = 5, heights 1, 2, 3, 10: K=2 cuts between 3 and 10
    const Z5 = new Float64Array([0, 1, 1, 2, 2, 5, 2, 3, 3, 6, 3, 4, 4, 7, 10, 5]);
    expect(heightGapScores(Z5, 5, 4)).toEqual([0.7, 1 / 3, 0.5]);
    const r = chooseK({ embeddings: new Float32Array(5), n: 5, d: 1, Z: Z5 }, { criterion: 'height-gap' });
    expect(r.chosen).toBe(2);
    expect(r.kMax).toBe(4);
  });
  it('is deterministic (gap statistic: same seed, same scores; another seed differs)', () => {
    const a = chooseK({ embeddings: x, n, d, Z }, { criterion: 'gap-statistic', kMax: 6, seed: 3 });
    const b = chooseK({ embeddings: x, n, d, Z }, { criterion: 'gap-statistic', kMax: 6, seed: 3 });
    const c = chooseK({ embeddings: x, n, d, Z }, { criterion: 'gap-statistic', kMax: 6, seed: 4 });
    expect(a).toEqual(b);
    expect(c.candidates[0]!.score).not.toBe(a.candidates[0]!.score);
  });
  it('chooseKAsync gives the same answer; given distances are used', async () => {
    const s = chooseK({ embeddings: x, n, d, Z }, { criterion: 'silhouette' });
    expect(await chooseKAsync({ embeddings: x, n, d, Z }, { criterion: 'silhouette' })).toEqual(s);
    const y = be.pdist(x, n, d, false);
    expect(chooseK({ embeddings: x, n, d, Z, distances: y }, { criterion: 'silhouette' })).toEqual(s);
    const zeros = new Float32Array(y.length); // proves the given matrix is read: all-zero distances → all 0
    expect(chooseK({ embeddings: x, n, d, Z, distances: zeros }, { criterion: 'silhouette' }).candidates.every((c) => c.score === 0)).toBe(true);
  });
});

describe('pcaScores (gap-statistic reference frame)', () => {
  for (const [n, d] of [[12, 30], [40, 5]] as const) {
    it(`keeps every pairwise distance (n=${n}, d=${d}: ${n <= d ? 'Gram' : 'scatter'} route)`, () => {
      const xs = randomRows(n, d, n + d, 3);
      const { scores, r } = pcaScores(xs, n, d);
      expect(r).toBe(Math.min(n - 1, d));
      const y = be.pdist(xs, n, d, false);
      const ys = be.pdist(Float32Array.from(scores), n, r, false);
      for (let i = 0; i < y.length; i++) expect(ys[i]).toBeCloseTo(y[i]!, 3);
    });
  }
});

describe('chooseK edge cases', () => {
  const all = AUTO_K_CRITERIA as readonly AutoKCriterion[];
  it('n = 1 and n = 2: no candidate, K = 1', () => {
    for (const criterion of all) {
      expect(chooseK({ embeddings: new Float32Array([1, 2]), n: 1, d: 2, Z: new Float64Array(0) }, { criterion }))
        .toEqual({ criterion, chosen: 1, kMax: 1, candidates: [] });
      const x2 = new Float32Array([0, 0, 3, 4]);
      const r = chooseK({ embeddings: x2, n: 2, d: 2, Z: wardZ(x2, 2, 2) }, { criterion });
      expect(r.chosen).toBe(1);
      expect(r.candidates).toEqual([]);
    }
  });
  it('n = 3: the only candidate is K = 2', () => {
    const x3 = new Float32Array([0, 0.1, 10]);
    for (const criterion of all) {
      const r = chooseK({ embeddings: x3, n: 3, d: 1, Z: wardZ(x3, 3, 1) }, { criterion });
      expect(r.chosen).toBe(2);
      expect(r.kMax).toBe(2);
      expect(r.candidates.map((c) => c.k)).toEqual([2]);
    }
    expect(chooseK({ embeddings: x3, n: 3, d: 1, Z: wardZ(x3, 3, 1) }, { criterion: 'silhouette' }).candidates[0]!.score)
      .toBeCloseTo(bruteSilhouette(x3, 3, 1, new Int32Array([0, 0, 1])), 6);
  });
  it('all points identical: K = 1, every candidate scored 0', () => {
    const x = new Float32Array(10 * 3).fill(0.5);
    const Z = wardZ(x, 10, 3);
    for (const criterion of all) {
      const r = chooseK({ embeddings: x, n: 10, d: 3, Z }, { criterion });
      expect(r.chosen).toBe(1);
      expect(r.candidates.length).toBe(8);
      expect(r.candidates.every((c) => c.score === 0)).toBe(true);
    }
  });
  it('kMax > n−1 is clamped; a small kMax limits the candidates', () => {
    const { x, n } = blobs(3, 4, 5, 40, 2); // n = 2+4+6 = 12, far apart
    const Z = wardZ(x, n, 4);
    const r = chooseK({ embeddings: x, n, d: 4, Z }, { kMax: 1000 });
    expect(r.kMax).toBe(n - 1);
    expect(r.candidates.length).toBe(n - 2);
    expect(r.chosen).toBe(3);
    const r2 = chooseK({ embeddings: x, n, d: 4, Z }, { kMax: 2 });
    expect(r2.candidates.map((c) => c.k)).toEqual([2]);
    expect(r2.chosen).toBe(2);
  });
  it('invalid options → RangeError; wrong shapes → KernelError', () => {
    const x = new Float32Array([0, 1, 2, 3]);
    const Z = wardZ(x, 4, 1);
    const input = { embeddings: x, n: 4, d: 1, Z };
    for (const kMax of [1, 0, -3, 2.5, NaN, Infinity]) expect(() => chooseK(input, { kMax })).toThrow(RangeError);
    expect(() => chooseK(input, { kMax: 1 })).toThrow(/kMax: expected an integer ≥ 2/);
    expect(() => chooseK(input, { criterion: 'elbow' as AutoKCriterion })).toThrow(/criterion: expected one of height-gap, silhouette/);
    expect(() => chooseK(input, { criterion: 'gap-statistic', references: 0 })).toThrow(RangeError);
    expect(() => chooseK({ ...input, Z: Z.subarray(4) })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE_MISMATCH' }));
    expect(() => chooseK({ ...input, d: 3 })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE_MISMATCH' }));
    expect(() => chooseK({ ...input, distances: new Float32Array(5) })).toThrow(expect.objectContaining({ code: 'ERR_SHAPE_MISMATCH' }));
  });
  it('clusterImages validates k / autoK before any work', async () => {
    await expect(clusterImages('/nonexistent', { k: 'many' as unknown as number })).rejects.toMatchObject({ code: 'ERR_K_OUT_OF_RANGE', message: expect.stringMatching(/or 'auto'/) });
    await expect(clusterImages('/nonexistent', { autoK: { kMax: 1 } })).rejects.toThrow(RangeError);
    await expect(clusterImages('/nonexistent', { autoK: { criterion: 'elbow' as AutoKCriterion } })).rejects.toThrow(RangeError);
    // valid options get as far as the (missing) folder
    await expect(clusterImages('/nonexistent', { k: 'auto' })).rejects.toMatchObject({ problem: 'not-found' });
    await expect(clusterImages('/nonexistent', {})).rejects.toMatchObject({ problem: 'not-found' });
  });
  it('clusterImages without k: kAuto, same choice with the condensed matrix and with Ward on the vectors', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'ac-autok-'));
    try {
      const sample = await generateSample(path.join(tmp, 's'), { perClass: 3, trainNormals: 0, seed: 4 });
      // no projection: under memoryLimit 1 the unprojected pooled vectors of max pooling would not be kept
      const base = { weighting: 'max' as const, features: { projectDim: false as const, cacheDir: path.join(tmp, 'cache'), threads: 2 }, autoK: { criterion: 'silhouette' as const } };
      const a = await clusterImages(sample.testDir, base);
      const b = await clusterImages(sample.testDir, { ...base, resources: { memoryLimit: 1 } });
      expect(a.linkageFrom).toBe('condensed');
      expect(b.linkageFrom).toBe('vectors');
      expect(a.kAuto!.criterion).toBe('silhouette');
      expect(a.kAuto!.candidates.length).toBe(13); // 15 images: K = 2..14
      expect(a.k).toBe(a.kAuto!.chosen);
      expect(new Set(a.labels).size).toBe(a.k);
      expect(b.kAuto!.chosen).toBe(a.kAuto!.chosen);
      b.kAuto!.candidates.forEach((c, i) => expect(c.score).toBeCloseTo(a.kAuto!.candidates[i]!.score, 4));
      const fixed = await clusterImages(sample.testDir, { ...base, k: 3 });
      expect(fixed.kAuto).toBeUndefined();
      expect(fixed.k).toBe(3);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
  it('is exported from the package entry', () => {
    expect(api.chooseK).toBe(chooseK);
    expect(api.AUTO_K_CRITERIA).toEqual(['height-gap', 'silhouette', 'calinski-harabasz', 'gap-statistic']);
  });
});
