/**
 * The data-driven projection (pipeline/pca.ts): covariance, orthonormalisation, principal subspace, and the
 * extraction's use of it (deterministic basis of the set, reused for other images).
 */
import { describe, expect, it } from 'vitest';
import { CovarianceAccumulator, orthonormalise, pcaSample, principalSubspace, projectionBasis } from '../../src/pipeline/pca.js';

/** A deterministic LCG in [−1, 1). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  };
}

describe('pcaSample', () => {
  it('takes every image up to the sample size, then evenly spaced distinct ascending indices', () => {
    expect(pcaSample(5, 24)).toEqual([0, 1, 2, 3, 4]);
    const s = pcaSample(583, 24);
    expect(s).toHaveLength(24);
    expect(new Set(s).size).toBe(24);
    expect(s.every((v, i) => i === 0 || v > s[i - 1]!)).toBe(true);
    expect(s[0]).toBe(12);
    expect(s[23]).toBe(570);
  });
});

describe('CovarianceAccumulator', () => {
  it('matches the two-pass double-precision covariance, whatever the chunking', async () => {
    const d = 7, n = 300;
    const r = lcg(3);
    const x = Float32Array.from({ length: n * d }, (_, i) => r() * (1 + (i % d)) + (i % d));
    const acc = new CovarianceAccumulator(d);
    await acc.add(x.subarray(0, 100 * d), 100);
    await acc.add(x.subarray(100 * d), 200);
    const c = acc.covariance();
    const mean = new Float64Array(d);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]! / n;
    for (let a = 0; a < d; a++) {
      for (let b = 0; b < d; b++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += (x[i * d + a]! - mean[a]!) * (x[i * d + b]! - mean[b]!);
        expect(c[a * d + b]).toBeCloseTo(s / (n - 1), 3);
      }
    }
    expect(() => new CovarianceAccumulator(3).covariance()).toThrow(RangeError);
  });
});

describe('orthonormalise', () => {
  it('gives orthonormal columns and fills a dependent column with a fresh unit direction', () => {
    const d = 4, k = 3;
    // column-major: c0 = (1,1,0,0), c1 = 2·c0 (dependent), c2 = (0,0,1,0)
    const q = Float64Array.from([1, 1, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0]);
    orthonormalise(q, d, k);
    for (let i = 0; i < k; i++) {
      for (let j = 0; j < k; j++) {
        let dot = 0;
        for (let t = 0; t < d; t++) dot += q[i * d + t]! * q[j * d + t]!;
        expect(dot).toBeCloseTo(i === j ? 1 : 0, 12);
      }
    }
    expect(() => orthonormalise(new Float64Array(3 * 2), 2, 3)).toThrow(RangeError);
  });
});

describe('principalSubspace', () => {
  it('finds the planted high-variance directions, deterministically', async () => {
    const d = 40, n = 2000, k = 3;
    const r = lcg(11);
    // three orthogonal directions with variances 100, 50, 25; isotropic noise of variance ≈ 1/3 elsewhere
    const dirs = [0, 1, 2].map((a) => Float64Array.from({ length: d }, (_, t) => (t % 3 === a ? 1 : 0) / Math.sqrt(Math.ceil((d - a) / 3))));
    const sd = [10, Math.sqrt(50), 5];
    const x = new Float32Array(n * d);
    for (let i = 0; i < n; i++) {
      const coef = sd.map((s) => s * r() * Math.sqrt(3));
      for (let t = 0; t < d; t++) x[i * d + t] = r() + coef.reduce((acc, c, a) => acc + c * dirs[a]![t]!, 0);
    }
    const acc = new CovarianceAccumulator(d);
    await acc.add(x, n);
    const c = acc.covariance();
    const a = await principalSubspace(c, d, k);
    const b = await principalSubspace(c, d, k);
    expect(Buffer.compare(Buffer.from(a.matrix.buffer), Buffer.from(b.matrix.buffer))).toBe(0);
    // each planted direction lies in the subspace: ‖Pᵀ u‖ ≈ 1
    for (const u of dirs) {
      let sq = 0;
      for (let j = 0; j < k; j++) {
        let dot = 0;
        for (let t = 0; t < d; t++) dot += a.matrix[t * k + j]! * u[t]!;
        sq += dot * dot;
      }
      expect(Math.sqrt(sq)).toBeGreaterThan(0.99);
    }
    expect(a.explained).toBeGreaterThan(0.9);
    expect(a.explained).toBeLessThanOrEqual(1 + 1e-6);
    await expect(principalSubspace(c, d, 0)).rejects.toThrow(RangeError);
    await expect(principalSubspace(c, d, d + 1)).rejects.toThrow(RangeError);
  });

  it('projectionBasis keys the matrix by its bytes and checks its size', () => {
    const m = new Float32Array([1, 0, 0, 1, 0, 0]);
    const p = projectionBasis(m, 3, 2, 1, 10, 0.5);
    expect(p.key).toMatch(/^[0-9a-f]{16}$/);
    expect(projectionBasis(m.slice(), 3, 2, 1, 10, 0.5).key).toBe(p.key);
    expect(projectionBasis(new Float32Array([0, 1, 1, 0, 0, 0]), 3, 2, 1, 10, 0.5).key).not.toBe(p.key);
    expect(() => projectionBasis(m, 2, 2, 1, 10, 0.5)).toThrow(RangeError);
  });
});
