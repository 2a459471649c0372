/**
 * Ward linkage from the vectors (`wardFromVectors`): conformance of the three backends with each other
 * and with `linkage(pdist(x), {method: 'ward'})`, tie handling, input errors; and the memory planning of the
 * clustering stage (`memoryLimit`, `ERR_MEMORY_LIMIT`, automatic switch of `'ward'` to the vectors).
 *
 * What "agree" means here:
 * - the three backends run the same algorithm with the same floating-point operation order (the pure-TS
 *   reference is a line-by-line port), so their Z are **identical bit for bit**, on random and on tied data;
 * - against `linkage` on an **f64** condensed matrix of the same points: identical merges (columns a, b, size)
 *   and heights within 1e-12 relative (Ward's centroid formula vs the Lance–Williams recurrence round differently);
 * - against `linkage(pdist(x))` (f32 distances): identical merges and flat labels, heights within 1e-5 relative
 *   (pdist rounds each distance to f32). Random Gaussian data has no near-ties at these sizes.
 * - ties (duplicate points, grid data): the merge order among equal heights may differ from the condensed
 *   path (each breaks ties in its own rounding), so only invariants are compared: a valid Z, the same number of
 *   zero-height merges (n − distinct rows), and backends identical to each other.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import * as K from '../../src/kernels.js';
import { getBackend } from '../../bindings/select.js';
import { KernelError } from '../../src/errors.js';
import { clusterImages } from '../../src/pipeline/run.js';
import { condensedBytes, defaultMemoryLimit, planClustering } from '../../src/pipeline/memory.js';
import { generateSample } from '../../src/sample/index.js';
import { arr, backendsUnderTest, condensedF64, randomRows, rng, skippedBackends } from '../helpers.js';

const DIMS = [1, 3, 7, 8, 9, 31, 130];
const SIZES = [1, 2, 3, 5, 17, 64, 150];

/** Columns a, b, size of Z (the merges), and the heights, separately. */
function merges(z: Float64Array): number[] {
  return arr(z).filter((_, i) => i % 4 !== 2);
}
function heights(z: Float64Array): number[] {
  return arr(z).filter((_, i) => i % 4 === 2);
}
function maxRelDiff(a: number[], b: number[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
  return m;
}

for (const s of skippedBackends()) describe.skip(`wardFromVectors on ${s.backend}: not loaded (${s.reason})`, () => {});

describe.each(backendsUnderTest())('wardFromVectors on %s', (backend) => {
  describe.each(DIMS)('d=%i', (d) => {
    it.each(SIZES)('n=%i: equals the js reference bit for bit and Ward on the condensed matrix', async (n) => {
      const x = randomRows(n, d, 1000 * n + d);
      const got = K.wardFromVectors(x, { d, backend });
      expect(got.n).toBe(n);
      expect(got.Z).toBeInstanceOf(Float64Array);
      expect(got.Z.length).toBe(4 * (n - 1));
      const ref = K.wardFromVectors(x, { d, backend: 'js' });
      expect(arr(got.Z)).toEqual(arr(ref.Z));
      expect(arr((await K.wardFromVectorsAsync(x, { d, backend })).Z)).toEqual(arr(got.Z));
      if (n < 2) return;

      // f64 condensed matrix: same merges, heights to 1e-12 relative.
      const exact = K.linkage(condensedF64(x, n, d), { method: 'ward', backend: 'js' });
      expect(merges(got.Z)).toEqual(merges(exact.Z));
      expect(maxRelDiff(heights(got.Z), heights(exact.Z))).toBeLessThan(1e-12);

      // The usual path on this backend (f32 pdist): same merges and cuts, heights to f32 rounding.
      const usual = K.linkage(K.pdist(x, { d, backend }), { method: 'ward', backend });
      expect(merges(got.Z)).toEqual(merges(usual.Z));
      expect(maxRelDiff(heights(got.Z), heights(usual.Z))).toBeLessThan(1e-5);
      for (const k of new Set([1, 2, 3, Math.ceil(n / 2), n].filter((v) => v <= n))) {
        expect(arr(K.cutTree(got, { nClusters: k, backend }))).toEqual(arr(K.cutTree(usual, { nClusters: k, backend })));
      }
    });
  });

  it('n ≥ 256 (the f32 lower-bound screen is on): identical to the js reference on clustered, offset and tied data', () => {
    const r = rng(4242);
    for (const [n, d, kind] of [[300, 40, 'clustered'], [400, 16, 'offset'], [260, 8, 'grid']] as const) {
      const centres = randomRows(6, d, n + d, 5);
      const x = new Float32Array(n * d);
      for (let i = 0; i < n; i++) {
        for (let k = 0; k < d; k++) {
          const v = centres[(i % 6) * d + k]! + (r() - 0.5);
          x[i * d + k] = kind === 'grid' ? Math.floor(r() * 3) : kind === 'offset' ? 1000 + 1e-3 * v : v;
        }
      }
      const got = K.wardFromVectors(x, { d, backend });
      expect(arr(got.Z), kind).toEqual(arr(K.wardFromVectors(x, { d, backend: 'js' }).Z));
      if (kind === 'clustered') {
        expect(merges(got.Z)).toEqual(merges(K.linkage(condensedF64(x, n, d), { method: 'ward', backend: 'js' }).Z));
      }
    }
  });

  it('accepts number[][] rows and gives the same Z as the flat Float32Array', () => {
    const x = randomRows(12, 5, 7);
    const rows = Array.from({ length: 12 }, (_, i) => Array.from(x.subarray(i * 5, i * 5 + 5)));
    expect(arr(K.wardFromVectors(rows, { backend }).Z)).toEqual(arr(K.wardFromVectors(x, { d: 5, backend }).Z));
  });

  it('ties (duplicate rows on a grid): valid Z, n − distinct zero-height merges, identical to js', () => {
    const r = rng(99);
    for (const [n, d] of [[40, 3], [60, 2], [33, 5]] as const) {
      const x = new Float32Array(n * d);
      for (let i = 0; i < x.length; i++) x[i] = Math.floor(r() * 3);
      const distinct = new Set(Array.from({ length: n }, (_, i) => x.subarray(i * d, i * d + d).join(','))).size;
      const got = K.wardFromVectors(x, { d, backend });
      expect(arr(got.Z)).toEqual(arr(K.wardFromVectors(x, { d, backend: 'js' }).Z));
      const h = heights(got.Z);
      for (let i = 1; i < h.length; i++) expect(h[i]!).toBeGreaterThanOrEqual(h[i - 1]!); // Ward is monotone
      expect(h.filter((v) => v === 0).length).toBe(n - distinct);
      const usual = K.linkage(K.pdist(x, { d, backend }), { method: 'ward', backend });
      expect(heights(usual.Z).filter((v) => v === 0).length).toBe(n - distinct);
      // Same last height up to rounding only if the top split is unique; the total sizes always agree.
      expect(got.Z[4 * (n - 2) + 3]).toBe(n);
      const labels = K.cutTree(got, { nClusters: distinct, backend });
      // Cutting at the number of distinct rows separates exactly the distinct rows.
      const byRow = new Map<string, number>();
      for (let i = 0; i < n; i++) {
        const key = x.subarray(i * d, i * d + d).join(',');
        if (!byRow.has(key)) byRow.set(key, labels[i]!);
        expect(labels[i]).toBe(byRow.get(key));
      }
      expect(new Set(labels).size).toBe(distinct);
    }
  });

  it('all-identical rows: every height 0', () => {
    const x = new Float32Array(10 * 4).fill(0.5);
    const z = K.wardFromVectors(x, { d: 4, backend }).Z;
    expect(heights(z)).toEqual(new Array(9).fill(0));
    expect(arr(z)).toEqual(arr(K.wardFromVectors(x, { d: 4, backend: 'js' }).Z));
  });

  describe('input errors (public API, before the backend)', () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return e instanceof KernelError ? e.code : (e as Error).name;
      }
      return undefined;
    };
    it('wrong types are TypeErrors', () => {
      expect(code(() => K.wardFromVectors(new Float32Array(6), { backend }))).toBe('TypeError'); // no d
      expect(code(() => K.wardFromVectors([1, 2, 3] as never, { backend }))).toBe('TypeError');
      expect(code(() => K.wardFromVectors(new Float64Array(6) as never, { d: 2, backend }))).toBe('TypeError');
      expect(code(() => K.wardFromVectors(new Float32Array(6), null as never))).toBe('TypeError');
      expect(code(() => K.wardFromVectors(new Float32Array(6), { d: 1.5, backend }))).toBe('TypeError');
    });
    it('bad values have their codes', () => {
      expect(code(() => K.wardFromVectors(new Float32Array(7), { d: 2, backend }))).toBe('ERR_SHAPE_MISMATCH');
      expect(code(() => K.wardFromVectors([[1, 2], [3]], { backend }))).toBe('ERR_SHAPE_MISMATCH');
      expect(code(() => K.wardFromVectors([[1, 2]], { d: 3, backend }))).toBe('ERR_SHAPE_MISMATCH');
      expect(code(() => K.wardFromVectors(new Float32Array([1, NaN, 3, 4]), { d: 2, backend }))).toBe('ERR_NON_FINITE');
      expect(code(() => K.wardFromVectors([[1, 2], [Infinity, 0]], { backend }))).toBe('ERR_NON_FINITE');
      expect(code(() => K.wardFromVectors(new Float32Array(0), { d: 2, backend }))).toBe('ERR_EMPTY');
      expect(code(() => K.wardFromVectors([], { backend }))).toBe('ERR_EMPTY');
      expect(code(() => K.wardFromVectors(new Float32Array(0), { d: 0, backend }))).toBe('ERR_EMPTY');
      try {
        K.wardFromVectors(new Float32Array([1, 2, 3, NaN]), { d: 2, backend });
      } catch (e) {
        expect((e as Error).message).toMatch(/index 3/);
      }
    });
    it('async: validation errors reject the promise', async () => {
      await expect(K.wardFromVectorsAsync(new Float32Array(7), { d: 2, backend })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
      await expect(K.wardFromVectorsAsync(new Float32Array([NaN, 0]), { d: 2, backend })).rejects.toMatchObject({ code: 'ERR_NON_FINITE' });
    });
  });

  describe('input errors (the backend itself, unvalidated)', () => {
    const be = () => getBackend(backend);
    const cases: [string, () => unknown, string][] = [
      ['length ≠ n·d', () => be().wardFromVectors(new Float32Array(5), 2, 3), 'ERR_SHAPE_MISMATCH'],
      ['NaN', () => be().wardFromVectors(new Float32Array([0, NaN]), 1, 2), 'ERR_NON_FINITE'],
      ['n = 0', () => be().wardFromVectors(new Float32Array(0), 0, 3), 'ERR_EMPTY'],
      ['d = 0', () => be().wardFromVectors(new Float32Array(0), 2, 0), 'ERR_EMPTY'],
      ['n not an integer', () => be().wardFromVectors(new Float32Array(4), 1.5, 2), 'ERR_INVALID_ARGUMENT'],
      ['d negative', () => be().wardFromVectors(new Float32Array(4), 2, -2), 'ERR_INVALID_ARGUMENT'],
      ['x missing', () => be().wardFromVectors(null as never, 2, 2), 'ERR_INVALID_ARGUMENT'],
      ['x not a typed array', () => be().wardFromVectors([1, 2, 3, 4] as never, 2, 2), 'ERR_INVALID_ARGUMENT'],
    ];
    it.each(cases)('%s', (_, f, expected) => {
      let err: unknown;
      try {
        f();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(KernelError);
      expect((err as KernelError).code).toBe(expected);
    });
    it('async twin rejects (never throws synchronously) with the same codes', async () => {
      const p = be().wardFromVectorsAsync(new Float32Array(5), 2, 3);
      await expect(p).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
      await expect(be().wardFromVectorsAsync(new Float32Array([0, Infinity]), 1, 2)).rejects.toMatchObject({ code: 'ERR_NON_FINITE' });
    });
    it('n = 1 gives an empty Z', () => {
      expect(be().wardFromVectors(new Float32Array([1, 2]), 1, 2).length).toBe(0);
    });
  });
});

describe('memory planning of the clustering stage', () => {
  it('condensed path when it fits; ward switches to the vectors, other linkages throw ERR_MEMORY_LIMIT', () => {
    expect(condensedBytes(1, 'native')).toBe(0);
    expect(condensedBytes(100_000, 'native')).toBe(((100_000 * 99_999) / 2) * 8);
    expect(planClustering(1000, 'average', 'native', Infinity)).toBe('condensed');
    expect(planClustering(1000, 'ward', 'native', condensedBytes(1000, 'native'))).toBe('condensed');
    expect(planClustering(1000, 'ward', 'native', condensedBytes(1000, 'native') - 1)).toBe('vectors');
    expect(planClustering(100_000, 'ward', 'js', 8 * 2 ** 30)).toBe('vectors');
    let err: unknown;
    try {
      planClustering(100_000, 'average', 'native', 8 * 2 ** 30);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).code).toBe('ERR_MEMORY_LIMIT');
    expect((err as Error).message).toMatch(/37\.3 GiB.*memoryLimit = 8\.0 GiB/);
    // wasm: 12 B per pair must also fit in the 4 GiB linear memory, whatever the budget.
    expect(planClustering(20_000, 'single', 'wasm', Infinity)).toBe('condensed');
    expect(planClustering(30_000, 'ward', 'wasm', Infinity)).toBe('vectors');
    expect(() => planClustering(30_000, 'single', 'wasm', Infinity)).toThrow(/4 GiB linear memory/);
    expect(defaultMemoryLimit()).toBeGreaterThan(0);
  });

  it('clusterImages: a non-Ward linkage over memoryLimit fails before any work (images not even decoded)', async () => {
    const junk = Array.from({ length: 5 }, (_, i) => ({ name: `x${i}.png`, data: new Uint8Array([1, 2, 3]) }));
    await expect(clusterImages(junk, { k: 2, linkage: 'average', features: { cacheDir: false }, resources: { memoryLimit: 10 } })).rejects.toMatchObject({
      code: 'ERR_MEMORY_LIMIT',
    });
    // The same junk with Ward is accepted by the planner (it would run on the vectors) and fails later, on the images.
    const later = await clusterImages(junk, { k: 2, linkage: 'ward', features: { cacheDir: false }, resources: { memoryLimit: 10 } }).catch((e: unknown) => e);
    expect(later).toBeInstanceOf(KernelError);
    expect((later as KernelError).code).not.toBe('ERR_MEMORY_LIMIT');
    for (const bad of [0, -1, NaN, '1GB']) {
      await expect(clusterImages(junk, { k: 2, resources: { memoryLimit: bad as never } })).rejects.toBeInstanceOf(RangeError);
    }
  });
});

describe('clusterImages with ward over memoryLimit', () => {
  it('switches to the vectors: same labels and Z (up to rounding) as the condensed path', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'ac-wfv-'));
    try {
      const sample = await generateSample(path.join(tmp, 'sample'), { perClass: 3, trainNormals: 0, seed: 5 });
      const cacheDir = path.join(tmp, 'cache');
      for (const backend of backendsUnderTest()) {
        // Uniform weights keep it quick on the js backend; the clustering stage is what is under test. No projection:
        // with memoryLimit 1 the unprojected pooled vectors would not be kept, so both runs pool the same bags.
        const base = { k: 5, features: { cacheDir, threads: 2, projectDim: false }, resources: { backend }, weighting: 'uniform' } as const;
        const a = await clusterImages(sample.testDir, base);
        const b = await clusterImages(sample.testDir, { ...base, resources: { ...base.resources, memoryLimit: 1 } });
        expect(a.linkageFrom).toBe('condensed');
        expect(b.linkageFrom).toBe('vectors');
        expect(arr(b.labels)).toEqual(arr(a.labels));
        expect(merges(b.Z)).toEqual(merges(a.Z));
        expect(maxRelDiff(heights(b.Z), heights(a.Z))).toBeLessThan(1e-5);
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});
