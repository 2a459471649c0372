/**
 * The pure-TS reference against itself, kodama style: every fast linkage algorithm (MST, NN-chain, generic)
 * against the slow `primitive` oracle on seeded matrices of 0–40 points with distinct distances (exact `==`
 * for single and complete, 1e-10 for the others), plus properties of the other kernels.
 */
import { describe, expect, it } from 'vitest';
import { LINKAGE_METHODS } from '../../bindings/backend.js';
import type { LinkageMethod } from '../../bindings/backend.js';
import {
  createJsBackend,
  cdistRef,
  cutHeightRef,
  cutKRef,
  genericLinkage,
  groupedNNRef,
  linkageRef,
  maxPoolRef,
  mstSingleLinkage,
  nnChainLinkage,
  pdistRef,
  primitiveLinkage,
  softmaxWeightsRef,
  weightedMeanRef,
  condensedIndex,
  numObs,
} from '../../bindings/reference/index.js';
import { condensed, fcluster, squareform } from '../../src/kernels.js';
import { arr, distinctCondensed, euclideanCondensed, isIsomorphic, randomRows, rng } from '../helpers.js';

const SIZES = [1, 2, 3, 4, 5, 7, 10, 16, 23, 31, 40];
const EUCLIDEAN_ONLY = new Set<LinkageMethod>(['ward', 'centroid', 'median']);

function expectZClose(a: Float64Array, b: Float64Array, eps: number): void {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < a.length; i++) {
    if (i % 4 === 2) expect(Math.abs(a[i]! - b[i]!), `Z[${i}]`).toBeLessThanOrEqual(eps * Math.max(1, Math.abs(b[i]!)));
    else expect(a[i], `Z[${i}]`).toBe(b[i]);
  }
}

function inputFor(method: LinkageMethod, n: number, seed: number): Float64Array {
  return EUCLIDEAN_ONLY.has(method) ? euclideanCondensed(n, 3, seed) : distinctCondensed(n, seed);
}

describe('linkage: fast algorithms match primitive', () => {
  const fast: Record<LinkageMethod, (y: Float64Array, n: number) => Float64Array> = {
    single: (y, n) => mstSingleLinkage(y, n),
    complete: (y, n) => nnChainLinkage(y, n, 'complete'),
    average: (y, n) => nnChainLinkage(y, n, 'average'),
    weighted: (y, n) => nnChainLinkage(y, n, 'weighted'),
    ward: (y, n) => nnChainLinkage(y, n, 'ward'),
    centroid: (y, n) => genericLinkage(y, n, 'centroid'),
    median: (y, n) => genericLinkage(y, n, 'median'),
  };
  const algo = (m: LinkageMethod): string => (m === 'single' ? 'mst' : m === 'centroid' || m === 'median' ? 'generic' : 'nn_chain');
  for (const method of LINKAGE_METHODS) {
    it(`${algo(method)}_${method}_matches_primitive`, () => {
      for (const n of SIZES) {
        if (n < 2) continue;
        for (let seed = 1; seed <= 5; seed++) {
          const y = inputFor(method, n, 1000 * n + seed);
          const got = fast[method](y, n);
          const want = primitiveLinkage(y, n, method);
          if (method === 'single' || method === 'complete') expect(arr(got), `n=${n} seed=${seed}`).toEqual(arr(want));
          else expectZClose(got, want, 1e-10);
        }
      }
    });
  }

  it('generic_matches_nn_chain_for_reducible_methods', () => {
    for (const method of ['complete', 'average', 'weighted', 'ward'] as const) {
      for (const n of SIZES) {
        if (n < 2) continue;
        const y = euclideanCondensed(n, 4, n + 17);
        const g = genericLinkage(y, n, method);
        // generic emits merge order; for reducible methods with distinct heights that is already sorted.
        expectZClose(g, nnChainLinkage(y, n, method), 1e-10);
      }
    }
  });

  it('mst_single_matches_generic_single', () => {
    for (const n of SIZES) {
      if (n < 2) continue;
      const y = distinctCondensed(n, 99 + n);
      expect(arr(mstSingleLinkage(y, n))).toEqual(arr(genericLinkage(y, n, 'single')));
    }
  });

  it('linkage_of_0_and_1_points', () => {
    expect(linkageRef(new Float64Array(0), 1, 'ward').length).toBe(0);
    expect(primitiveLinkage(new Float64Array(0), 1, 'ward').length).toBe(0);
    expect(() => createJsBackend().linkage(new Float64Array(0), 0, 'ward')).toThrowError(expect.objectContaining({ code: 'ERR_EMPTY' }));
  });

  it('z_is_well_formed', () => {
    for (const method of LINKAGE_METHODS) {
      for (const n of SIZES) {
        const z = linkageRef(inputFor(method, n, 7 * n), n, method);
        expect(z.length).toBe(4 * (n - 1));
        const used = new Set<number>();
        for (let i = 0; i < n - 1; i++) {
          const [a, b, h, s] = [z[4 * i]!, z[4 * i + 1]!, z[4 * i + 2]!, z[4 * i + 3]!];
          expect(a).toBeLessThan(b);
          expect(b).toBeLessThan(n + i);
          expect(used.has(a) || used.has(b)).toBe(false);
          used.add(a).add(b);
          expect(h).toBeGreaterThanOrEqual(0);
          const size = (id: number): number => (id < n ? 1 : z[4 * (id - n) + 3]!);
          expect(s).toBe(size(a) + size(b));
          if (method !== 'centroid' && method !== 'median' && i > 0) expect(h).toBeGreaterThanOrEqual(z[4 * (i - 1) + 2]!);
        }
      }
    }
  });

  it('f32_input_equals_widened_f64_input', () => {
    const y32 = Float32Array.from(euclideanCondensed(20, 3, 5));
    for (const method of LINKAGE_METHODS) {
      expect(arr(linkageRef(y32, 20, method))).toEqual(arr(linkageRef(Float64Array.from(y32), 20, method)));
    }
  });
});

describe('flat clusters', () => {
  it('cut_k_gives_exactly_k_clusters', () => {
    for (const method of LINKAGE_METHODS) {
      for (const n of SIZES) {
        const z = linkageRef(inputFor(method, n, n), n, method);
        for (let k = 1; k <= n; k++) {
          const l = cutKRef(z, n, k);
          expect(Math.max(...l) + 1).toBe(k);
          // numbered in order of first appearance
          let next = 0;
          for (const v of l) {
            expect(v).toBeLessThanOrEqual(next);
            if (v === next) next++;
          }
        }
      }
    }
  });

  it('cut_height_at_each_merge_height_matches_cut_k_for_monotone_methods', () => {
    for (const method of ['single', 'complete', 'average', 'weighted', 'ward'] as const) {
      const n = 25;
      const z = linkageRef(euclideanCondensed(n, 2, 3), n, method);
      for (let i = 0; i < n - 1; i++) {
        expect(arr(cutHeightRef(z, n, z[4 * i + 2]!))).toEqual(arr(cutKRef(z, n, n - 1 - i)));
      }
      expect(arr(cutHeightRef(z, n, -1))).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(arr(cutHeightRef(z, n, Infinity))).toEqual(new Array(n).fill(0));
    }
  });

  it('fcluster_maxclust_gives_k_clusters_with_distinct_heights', () => {
    for (const method of ['single', 'complete', 'average', 'weighted', 'ward'] as const) {
      const n = 30;
      const z = linkageRef(euclideanCondensed(n, 3, 11), n, method);
      for (let k = 1; k <= n; k++) {
        const l = fcluster({ Z: z, n }, k, { backend: 'js' });
        expect(Math.max(...l)).toBe(k);
        expect(Math.min(...l)).toBe(1);
        expect(isIsomorphic(l, cutKRef(z, n, k))).toBe(true);
      }
    }
  });
});

describe('distances and other kernels', () => {
  it('pdist_matches_cdist_and_naive', () => {
    for (const d of [1, 3, 8, 33]) {
      const n = 17;
      const x = randomRows(n, d, d);
      const p = pdistRef(x, n, d, false);
      const c = cdistRef(x, n, x, n, d, false);
      for (let i = 0; i < n; i++) {
        expect(c[i * n + i]).toBe(0);
        for (let j = i + 1; j < n; j++) {
          expect(p[condensedIndex(n, i, j)]).toBe(c[i * n + j]);
          expect(c[j * n + i]).toBe(c[i * n + j]);
          let s = 0;
          for (let k = 0; k < d; k++) s += (x[i * d + k]! - x[j * d + k]!) ** 2;
          expect(p[condensedIndex(n, i, j)]).toBe(Math.fround(Math.sqrt(s)));
          expect(pdistRef(x, n, d, true)[condensedIndex(n, i, j)]).toBe(Math.fround(s));
        }
      }
    }
  });

  it('grouped_nn_modes_agree_with_cdist', () => {
    const d = 5;
    const offsets = Uint32Array.from([0, 3, 4, 9, 12]);
    const base = randomRows(12, d, 1);
    const q = randomRows(7, d, 2);
    const qg = Int32Array.from([0, 1, 2, 3, -1, 0, 2]);
    const c = cdistRef(q, 7, base, 12, d, false);
    const per = groupedNNRef(q, 7, base, offsets, d, 'per-group', undefined, false);
    const min = groupedNNRef(q, 7, base, offsets, d, 'min', undefined, false);
    const mean = groupedNNRef(q, 7, base, offsets, d, 'mean-excluding-own', qg, false);
    for (let i = 0; i < 7; i++) {
      let all = Infinity;
      let s = 0;
      let cnt = 0;
      for (let g = 0; g < 4; g++) {
        let m = Infinity;
        for (let r = offsets[g]!; r < offsets[g + 1]!; r++) m = Math.min(m, c[i * 12 + r]!);
        expect(per[i * 4 + g]).toBe(m);
        all = Math.min(all, m);
        if (g !== qg[i]) {
          s += m;
          cnt++;
        }
      }
      expect(min[i]).toBe(all);
      expect(mean[i]).toBeCloseTo(s / cnt, 6);
    }
    // a query whose own group is the only group has nothing to average: 0
    expect(arr(groupedNNRef(q, 1, base, [0, 12], d, 'mean-excluding-own', [0], false))).toEqual([0]);
  });

  it('softmax_weights_properties', () => {
    const r = rng(3);
    const scores = Float32Array.from({ length: 20 }, () => r() * 4);
    scores[2] = scores[5] = 10; // tied maximum in bag 0
    const offsets = Uint32Array.from([0, 8, 9, 20]);
    for (const tau of [0, 1e-3, 0.5, 1, 7, Infinity]) {
      const w = softmaxWeightsRef(scores, offsets, tau);
      for (let b = 0; b < 3; b++) {
        let s = 0;
        for (let i = offsets[b]!; i < offsets[b + 1]!; i++) s += w[i]!;
        expect(s).toBeCloseTo(1, 6);
      }
    }
    const hard = softmaxWeightsRef(scores, offsets, 0);
    expect(hard[2]).toBe(0.5);
    expect(hard[5]).toBe(0.5);
    expect(hard[0]).toBe(0);
    expect(hard[8]).toBe(1);
    const uni = softmaxWeightsRef(scores, offsets, Infinity);
    expect(uni[0]).toBe(Math.fround(1 / 8));
    // huge scores do not overflow (max-subtracted)
    const big = softmaxWeightsRef(Float32Array.from([1e30, 1e30 - 1e24, 0]), Uint32Array.from([0, 3]), 1e23);
    expect(big.every((v) => Number.isFinite(v))).toBe(true);
  });

  it('weighted_mean_and_max_pool', () => {
    const d = 3;
    const rows = randomRows(6, d, 4);
    const offsets = Uint32Array.from([0, 2, 6]);
    const uniform = new Float32Array(6).fill(1);
    const m = weightedMeanRef(rows, offsets, d, uniform);
    const mx = maxPoolRef(rows, offsets, d);
    for (let k = 0; k < d; k++) {
      expect(m[k]).toBeCloseTo((rows[k]! + rows[d + k]!) / 2, 6);
      expect(mx[k]).toBe(Math.max(rows[k]!, rows[d + k]!));
    }
    const onehot = Float32Array.from([0, 1, 0, 0, 2, 0]);
    const w = weightedMeanRef(rows, offsets, d, onehot);
    for (let k = 0; k < d; k++) {
      expect(w[k]).toBe(rows[d + k]);
      expect(w[d + k]).toBe(rows[4 * d + k]);
    }
  });

  it('squareform_condensed_roundtrip', () => {
    for (const n of [1, 2, 5, 12]) {
      const y = distinctCondensed(n, n);
      expect(numObs(y.length)).toBe(n);
      const m = squareform(y);
      expect(m.length).toBe(n * n);
      expect(arr(condensed(m))).toEqual(arr(y));
    }
    expect(numObs(4)).toBe(-1);
  });

  it('is_isomorphic', () => {
    expect(isIsomorphic([0, 0, 1, 2], [5, 5, 3, 1])).toBe(true);
    expect(isIsomorphic([0, 0, 1], [1, 2, 2])).toBe(false);
    expect(isIsomorphic([0, 1, 1], [0, 0, 1])).toBe(false);
    expect(isIsomorphic([0], [0, 1])).toBe(false);
  });
});
