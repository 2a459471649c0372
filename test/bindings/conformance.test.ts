/**
 * Conformance: every kernel on every available backend against the pure-TS reference, on seeded data.
 * - distances: within a tolerance relative to the row norms (native/wasm may use ‖a‖²+‖b‖²−2a·b in f32);
 * - linkage: Z exactly equal from f64 condensed input (and from f32 input on wasm/js, which widen it); native
 *   works in place on an f32 copy of f32 input: heights within f32 rounding, same merges and flat labels;
 * - flat labels: identical;
 * - async twins: identical to the sync results.
 * A backend that did not load is listed as skipped with its load error (in CI, missing backends fail).
 */
import { describe, expect, it } from 'vitest';
import { LINKAGE_METHODS } from '../../bindings/backend.js';
import type { GroupedMode } from '../../bindings/backend.js';
import * as K from '../../src/kernels.js';
import { getBackend } from '../../bindings/select.js';
import { arr, backendsUnderTest, euclideanCondensed, firstNotClose, randomRows, rng, skippedBackends } from '../helpers.js';

const DIMS = [1, 3, 7, 8, 9, 31, 513];
const SIZES = [1, 2, 5, 17, 64, 200];

function sqNorms(x: Float32Array, n: number, d: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += x[i * d + k]! ** 2;
    out[i] = s;
  }
  return out;
}

/** Allowed |Δ| between a backend's and the reference's distance for a pair with squared norms na, nb. */
function tol(na: number, nb: number, ref: number, squared: boolean, d: number): number {
  const eSq = 2e-6 * Math.sqrt(d) * (na + nb) + 1e-6;
  if (squared) return eSq;
  return Math.min(Math.sqrt(eSq), ref > 0 ? eSq / (2 * ref) + 1e-6 : Math.sqrt(eSq)) + 2e-6 * ref;
}

for (const s of skippedBackends()) describe.skip(`conformance on ${s.backend}: not loaded (${s.reason})`, () => {});

describe.each(backendsUnderTest())('conformance of %s with the js reference', (backend) => {
  it('reports its identity', () => {
    const b = getBackend(backend);
    expect(b.name).toBe(backend);
    expect(['scalar', 'avx2', 'simd128', 'js']).toContain(b.isa);
    expect(b.threads).toBeGreaterThanOrEqual(1);
  });

  describe.each(DIMS)('d=%i', (d) => {
    it.each(SIZES)('pdist n=%i (euclidean and squared)', (n) => {
      const x = randomRows(n, d, 31 * n + d);
      const na = sqNorms(x, n, d);
      for (const squared of [false, true]) {
        const ref = K.pdist(x, { d, squared, backend: 'js' });
        const got = K.pdist(x, { d, squared, backend });
        expect(got).toBeInstanceOf(Float32Array);
        expect(got.length).toBe(ref.length);
        let p = 0;
        for (let i = 0; i < n; i++) {
          for (let j = i + 1; j < n; j++, p++) {
            const t = tol(na[i]!, na[j]!, ref[p]!, squared, d);
            if (!(Math.abs(got[p]! - ref[p]!) <= t)) {
              expect.fail(`pair (${i},${j}) squared=${squared}: got ${got[p]}, ref ${ref[p]}, tol ${t}`);
            }
          }
        }
      }
    });

    it('cdist nq=13 nb=37', () => {
      const q = randomRows(13, d, d + 1);
      const b = randomRows(37, d, d + 2);
      const nq = sqNorms(q, 13, d);
      const nb = sqNorms(b, 37, d);
      for (const squared of [false, true]) {
        const ref = K.cdist(q, b, { d, squared, backend: 'js' });
        const got = K.cdist(q, b, { d, squared, backend });
        expect(got.length).toBe(13 * 37);
        for (let i = 0; i < 13; i++) {
          for (let j = 0; j < 37; j++) {
            const r = ref[i * 37 + j]!;
            const t = tol(nq[i]!, nb[j]!, r, squared, d);
            if (!(Math.abs(got[i * 37 + j]! - r) <= t)) expect.fail(`(${i},${j}) squared=${squared}: got ${got[i * 37 + j]}, ref ${r}`);
          }
        }
      }
    });

    it.each(['per-group', 'min', 'mean-excluding-own'] as GroupedMode[])('groupedNN %s', (mode) => {
      const m = 9; // patches per image
      const nimg = 6;
      const base = randomRows(nimg * m, d, 7 * d);
      const offsets = Uint32Array.from({ length: nimg + 1 }, (_, i) => i * m);
      const queries = base.subarray(0, 3 * m * d); // the first three images query the bank
      const queryGroups = Int32Array.from({ length: 3 * m }, (_, i) => Math.floor(i / m));
      const norms = sqNorms(base, nimg * m, d);
      let maxNorm = 0;
      for (const v of norms) maxNorm = Math.max(maxNorm, v);
      for (const squared of [false, true]) {
        const opts = { d, mode, queryGroups, squared };
        const ref = K.groupedNN(queries, base, offsets, { ...opts, backend: 'js' });
        const got = K.groupedNN(queries, base, offsets, { ...opts, backend });
        expect(got.length).toBe(ref.length);
        for (let i = 0; i < ref.length; i++) {
          const t = tol(maxNorm, maxNorm, ref[i]!, squared, d);
          if (!(Math.abs(got[i]! - ref[i]!) <= t)) expect.fail(`[${i}] squared=${squared}: got ${got[i]}, ref ${ref[i]}, tol ${t}`);
        }
      }
    });

    it('weightedMean and maxPool', () => {
      const rows = randomRows(30, d, 3 * d);
      const offsets = Uint32Array.from([0, 1, 11, 30]);
      const r = rng(d);
      const weights = Float32Array.from({ length: 30 }, () => r());
      const ref = K.weightedMean(rows, offsets, weights, { d, backend: 'js' });
      const got = K.weightedMean(rows, offsets, weights, { d, backend });
      expect(firstNotClose(got, ref, 1e-5, 1e-5)).toBe(-1);
      expect(arr(K.maxPool(rows, offsets, { d, backend }))).toEqual(arr(K.maxPool(rows, offsets, { d, backend: 'js' })));
    });
  });

  it.each([[1, 1, 1], [7, 3, 5], [13, 256, 17], [50, 300, 40], [145, 64, 300], [0, 4, 4]])('linearMap n=%i dIn=%i dOut=%i (and its async twin)', async (n, dIn, dOut) => {
    const x = randomRows(n, dIn, 7 * n + dIn);
    const w = randomRows(dOut, dIn, 11 * dOut + dIn);
    const b = getBackend(backend);
    const ref = getBackend('js').linearMap(x, n, dIn, w, dOut);
    const got = b.linearMap(x, n, dIn, w, dOut);
    expect(got).toBeInstanceOf(Float32Array);
    expect(got.length).toBe(n * dOut);
    // f32 accumulation (FMA tiles) against the f64-accumulated reference: |Δ| ≤ 1e-6·dIn·max|x|·max|w|-ish
    expect(firstNotClose(got, ref, 4e-6 * Math.sqrt(dIn), 4e-6 * Math.sqrt(dIn))).toBe(-1);
    expect(arr(await b.linearMapAsync(x, n, dIn, w, dOut))).toEqual(arr(got));
  });

  it.each([0, 1e-3, 0.1, 1, 10, Infinity])('softmaxWeights tau=%s', (tau) => {
    const r = rng(5);
    const scores = Float32Array.from({ length: 300 }, () => r() * 5);
    scores[10] = scores[20] = 9; // tie at the max of bag 0
    const offsets = Uint32Array.from([0, 100, 101, 300]);
    const ref = K.softmaxWeights(scores, offsets, { tau, backend: 'js' });
    const got = K.softmaxWeights(scores, offsets, { tau, backend });
    expect(firstNotClose(got, ref, 1e-7, 1e-4)).toBe(-1);
  });

  describe.each([...LINKAGE_METHODS])('linkage %s', (method) => {
    it.each([1, 2, 3, 10, 57, 150])('n=%i: Z identical to js (f64 and f32 input)', (n) => {
      const y = euclideanCondensed(n, 5, n * 13 + 1);
      const ref = K.linkage(y, { method, n, backend: 'js' });
      expect(arr(K.linkage(y, { method, n, backend }).Z)).toEqual(arr(ref.Z));
      const y32 = Float32Array.from(y);
      const z32 = K.linkage(y32, { method, n, backend }).Z;
      const ref32 = K.linkage(y32, { method, n, backend: 'js' }).Z;
      if (backend !== 'native' || method === 'single') {
        expect(arr(z32)).toEqual(arr(ref32));
      } else {
        // The native addon works in place on an f32 copy (half the memory): every updated distance is rounded
        // to f32, so heights agree up to that rounding; on these untied data the merges are the same.
        for (let i = 0; i < ref32.length; i++) {
          if (i % 4 === 2) expect(Math.abs(z32[i]! - ref32[i]!)).toBeLessThanOrEqual(1e-5 * Math.abs(ref32[i]!));
          else expect(z32[i]).toBe(ref32[i]);
        }
        for (const k of new Set([1, Math.min(3, n), Math.max(1, n >> 1), n])) {
          const cut = (b: 'js' | typeof backend) => K.cutTree(K.linkage(y32, { method, n, backend: b }), { nClusters: k, backend: 'js' });
          expect(arr(cut(backend)), `k=${k}`).toEqual(arr(cut('js')));
        }
      }
    });

    it('tied integer distances: Z identical to js', () => {
      const r = rng(9);
      const pts = Array.from({ length: 40 }, () => [Math.floor(r() * 4), Math.floor(r() * 4)]);
      const y = K.pdist(pts, { backend: 'js' }); // small integers: exact in f32 for squared, sqrt rounded once
      const y64 = Float64Array.from(y);
      expect(arr(K.linkage(y64, { method, backend }).Z)).toEqual(arr(K.linkage(y64, { method, backend: 'js' }).Z));
    });

    it('flat labels identical to js', () => {
      const n = 60;
      const lk = K.linkage(euclideanCondensed(n, 3, 4), { method, backend: 'js' });
      for (const k of [1, 2, 3, 7, 30, 59, 60]) {
        expect(arr(K.cutTree(lk, { nClusters: k, backend })), `k=${k}`).toEqual(arr(K.cutTree(lk, { nClusters: k, backend: 'js' })));
        expect(arr(K.fcluster(lk, k, { backend })), `maxclust ${k}`).toEqual(arr(K.fcluster(lk, k, { backend: 'js' })));
      }
      for (let i = 0; i < n - 1; i += 7) {
        const h = lk.Z[4 * i + 2]!;
        expect(arr(K.cutTree(lk, { height: h, backend }))).toEqual(arr(K.cutTree(lk, { height: h, backend: 'js' })));
        expect(arr(K.fcluster(lk, h, { criterion: 'distance', backend }))).toEqual(arr(K.fcluster(lk, h, { criterion: 'distance', backend: 'js' })));
      }
    });
  });

  it('async twins resolve to the sync results', async () => {
    const d = 9;
    const x = randomRows(40, d, 1);
    expect(arr(await K.pdistAsync(x, { d, backend }))).toEqual(arr(K.pdist(x, { d, backend })));
    const q = randomRows(5, d, 2);
    expect(arr(await K.cdistAsync(q, x, { d, backend }))).toEqual(arr(K.cdist(q, x, { d, backend })));
    const offsets = [0, 10, 25, 40];
    expect(arr(await K.groupedNNAsync(q, x, offsets, { d, mode: 'min', backend }))).toEqual(
      arr(K.groupedNN(q, x, offsets, { d, mode: 'min', backend })),
    );
    const y = euclideanCondensed(40, 3, 3);
    expect(arr((await K.linkageAsync(y, { method: 'average', backend })).Z)).toEqual(arr(K.linkage(y, { method: 'average', backend }).Z));
    await expect(K.linkageAsync(Float64Array.from([1, NaN, 2]), { backend })).rejects.toMatchObject({ code: 'ERR_NON_FINITE' });
  });

  it('accepts number[][] rows like the equivalent Float32Array', () => {
    const rows = [
      [0, 1, 2],
      [3, 4, 5],
      [1, 1, 1],
    ];
    expect(arr(K.pdist(rows, { backend }))).toEqual(arr(K.pdist(Float32Array.from(rows.flat()), { d: 3, backend })));
  });
});
