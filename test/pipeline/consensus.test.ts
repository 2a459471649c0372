/**
 * Consensus clustering (pipeline/consensus.ts) and method presets (pipeline/presets.ts).
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { getBackend } from '../../bindings/select.js';
import { averageLinkageFromCounts, coAssociationDistances, consensusClusters } from '../../src/pipeline/consensus.js';
import { PAPER_METHOD, PRESETS, resolveMethod, SINGLE_DEFAULTS, describeMethod } from '../../src/pipeline/presets.js';
import { evaluate } from '../../src/pipeline/metrics.js';

const L = (...x: number[]) => Int32Array.from(x);

describe('coAssociationDistances', () => {
  it('is the share of partitions that separate each pair, in condensed order', () => {
    const y = coAssociationDistances([L(0, 0, 1), L(0, 1, 1)], 3);
    // pairs (0,1) (0,2) (1,2): separated by 1 of 2, 2 of 2, 1 of 2
    expect([...y]).toEqual([0.5, 1, 0.5]);
    expect([...coAssociationDistances([L(3, 3, 3)], 3)]).toEqual([0, 0, 0]);
  });

  it('rejects no partitions or a partition of the wrong length', () => {
    expect(() => coAssociationDistances([], 3)).toThrow(expect.objectContaining({ code: 'ERR_EMPTY' }));
    expect(() => coAssociationDistances([L(0, 1)], 3)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE_MISMATCH' }));
  });
});

describe('consensusClusters', () => {
  const be = getBackend();
  it('recovers the majority partition when most members agree, and is deterministic', async () => {
    const truth = L(0, 0, 0, 1, 1, 1, 2, 2, 2);
    const noisy1 = L(0, 0, 1, 1, 1, 1, 2, 2, 2); // image 2 misplaced
    const noisy2 = L(0, 0, 0, 1, 1, 2, 2, 2, 2); // image 5 misplaced
    const parts = [truth, noisy1, noisy2, truth];
    const a = await consensusClusters(parts, 9, 3, be);
    expect(evaluate(a.labels, [...truth].map(String)).nmi).toBeCloseTo(1, 10);
    expect(a.Z.length).toBe(8 * 4);
    const b = await consensusClusters(parts, 9, 3, be);
    expect([...b.labels]).toEqual([...a.labels]);
    expect([...b.Z]).toEqual([...a.Z]);
    // one point alone
    expect([...(await consensusClusters([L(0)], 1, 1, be)).labels]).toEqual([0]);
  });
});

/** Checks a SciPy linkage matrix: merges of live clusters, sizes adding up to n, finite non-decreasing heights. */
function checkZ(Z: Float64Array, n: number): void {
  const size = new Map<number, number>();
  for (let i = 0; i < n; i++) size.set(i, 1);
  let last = -Infinity;
  for (let r = 0; r < n - 1; r++) {
    const [a, b, h, s] = [Z[4 * r]!, Z[4 * r + 1]!, Z[4 * r + 2]!, Z[4 * r + 3]!];
    expect(size.has(a) && size.has(b) && a !== b).toBe(true);
    expect(Number.isFinite(h) && h >= last).toBe(true);
    expect(s).toBe(size.get(a)! + size.get(b)!);
    size.delete(a);
    size.delete(b);
    size.set(n + r, s);
    last = h;
  }
  expect([...size.values()]).toEqual([n]);
}

/** Average linkage by its definition, O(n³): merge the pair with the smallest mean pairwise distance (ties: lowest ids). */
function averageByDefinition(d: (i: number, j: number) => number, n: number): number[] {
  let clusters: number[][] = Array.from({ length: n }, (_, i) => [i]);
  const heights: number[] = [];
  while (clusters.length > 1) {
    let best = Infinity, bi = 0, bj = 1;
    for (let i = 0; i < clusters.length; i++) for (let j = i + 1; j < clusters.length; j++) {
      let s = 0;
      for (const a of clusters[i]!) for (const b of clusters[j]!) s += d(a, b);
      const v = s / (clusters[i]!.length * clusters[j]!.length);
      if (v < best) { best = v; bi = i; bj = j; }
    }
    heights.push(best);
    clusters = [...clusters.filter((_, t) => t !== bi && t !== bj), [...clusters[bi]!, ...clusters[bj]!]];
  }
  return heights.sort((a, b) => a - b);
}

describe('averageLinkageFromCounts', () => {
  it('stays a valid tree on tie-heavy votes where the floating-point update fails (many partitions, few labels)', async () => {
    // 5 partitions of 600 points into 3–7 clusters: co-association distances in {0, .2, …, 1}, ties everywhere
    const n = 600;
    let s = 7;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
    const parts = [3, 4, 5, 6, 7].map((k) => Int32Array.from({ length: n }, (_, i) => (rnd() < 0.8 ? i % k : Math.floor(rnd() * k))));
    const y = coAssociationDistances(parts, n);
    const counts = y.map((v) => Math.round(v * 5));
    const Z = averageLinkageFromCounts(counts, n, 5);
    checkZ(Z, n);
  });

  it('stays valid on real tie-heavy votes that break the floating-point update (SciPy and the kernels)', async () => {
    const { partitions } = JSON.parse(readFileSync(new URL('../fixtures/consensus-ties.json', import.meta.url), 'utf8')) as { partitions: number[][] };
    const parts = partitions.map((p) => Int32Array.from(p));
    const n = parts[0]!.length;
    const y = coAssociationDistances(parts, n);
    const be = getBackend();
    const floatZ = be.linkage(y, n, 'average');
    const broken = !floatZ.every(Number.isFinite) || Array.from({ length: n - 1 }, (_, r) => floatZ[4 * r + 3]!).some((s) => s > n);
    expect(broken).toBe(true); // why the consensus does not use it
    const Z = averageLinkageFromCounts(y.map((v) => Math.round(v * parts.length)), n, parts.length);
    checkZ(Z, n);
    const { labels } = await consensusClusters(parts, n, 6, be);
    expect(new Set(labels).size).toBe(6);
  });

  it('gives the heights of average linkage by its definition (small, distinct sums)', () => {
    const n = 9;
    const d = (i: number, j: number) => (i === j ? 0 : ((i * 7 + j * 7 + i * j * 3) % 11) + 1 + (i + j) / 100);
    const counts = new Float64Array((n * (n - 1)) / 2);
    let o = 0;
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) counts[o++] = d(i, j);
    const Z = averageLinkageFromCounts(counts, n, 1);
    checkZ(Z, n);
    const h = Array.from({ length: n - 1 }, (_, r) => Z[4 * r + 2]!);
    const ref = averageByDefinition(d, n);
    h.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 10));
  });
});

describe('resolveMethod', () => {
  it('the default preset runs its members; the paper preset runs the published method', () => {
    const d = resolveMethod({});
    expect(d.preset).toBe('default');
    expect(d.members).toEqual(PRESETS.default.members);
    expect(resolveMethod({ preset: 'paper' })).toEqual({ preset: 'paper', members: [PAPER_METHOD], kSpread: 0 });
    expect(PAPER_METHOD).toEqual({ weighting: 'unsupervised', tau: { relative: 0.5 }, whiten: false, embeddingNorm: 'none' });
  });

  it('explicit fields make a single configuration (the preset’s own, else the single defaults)', () => {
    expect(resolveMethod({ weighting: 'max' })).toEqual({ preset: 'custom', members: [{ ...SINGLE_DEFAULTS, weighting: 'max' }], kSpread: 0 });
    expect(resolveMethod({ preset: 'paper', whiten: 1 }).members).toEqual([{ ...PAPER_METHOD, whiten: 1 }]);
    expect(() => resolveMethod({ preset: 'best' as never })).toThrow(RangeError);
    expect(describeMethod(PAPER_METHOD)).toBe('unsupervised τ0.5σ');
    expect(describeMethod({ ...PAPER_METHOD, whiten: 1, embeddingNorm: 'l2-center-l2' })).toBe('unsupervised τ0.5σ whiten 1 l2-center-l2');
  });
});
