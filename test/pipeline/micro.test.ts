/**
 * Approximate Ward for large sets (`pipeline/micro.ts`): size-weighted Ward from the vectors on
 * every backend (bit-identical Z; equal to Ward on the expanded observations; input errors), the deterministic
 * k-means micro-clusters (backend-independent, a real k-means fixed point when converged), the agreement of the
 * approximation with exact Ward on clustered data, and its wiring into `clusterImages` (`clustering`,
 * `result.approximations`, `result.microClusters`).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as K from '../../src/kernels.js';
import { getBackend } from '../../bindings/select.js';
import { KernelError } from '../../src/errors.js';
import { ari } from '../../src/pipeline/metrics.js';
import { approximateWard, labelsOf, microClusters } from '../../src/pipeline/micro.js';
import { clusterImages } from '../../src/pipeline/run.js';
import { generateSample } from '../../src/sample/index.js';
import { EXIT, main, type ResultJson } from '../../src/cli/main.js';
import { arr, backendsUnderTest, gauss, randomRows, rng } from '../helpers.js';

/** n rows around `k` well-separated centres (spread `noise`), with the generating centre of each row. */
function blobs(n: number, d: number, k: number, noise: number, seed: number): { x: Float32Array; truth: Int32Array } {
  const r = rng(seed);
  const centres = Float64Array.from({ length: k * d }, () => gauss(r));
  const x = new Float32Array(n * d);
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * k);
    truth[i] = c;
    for (let t = 0; t < d; t++) x[i * d + t] = centres[c * d + t]! + noise * gauss(r);
  }
  return { x, truth };
}

const heights = (z: Float64Array) => arr(z).filter((_, i) => i % 4 === 2);

describe.each(backendsUnderTest())('size-weighted wardFromVectors on %s', (backend) => {
  it('equals the js reference bit for bit, and Ward on the expanded observations above height 0', () => {
    for (const [n, d] of [[2, 3], [40, 7], [300, 33]] as const) {
      const x = randomRows(n, d, 11 + n);
      const r = rng(n);
      const sizes = Uint32Array.from({ length: n }, () => 1 + Math.floor(r() * 4));
      const got = K.wardFromVectors(x, { d, backend, sizes }).Z;
      expect(arr(got)).toEqual(arr(K.wardFromVectors(x, { d, backend: 'js', sizes }).Z));
      expect(arr(got)).toEqual(arr(getBackend(backend).wardFromVectors(x, n, d, sizes)));
      // all-ones sizes are the unweighted linkage; other sizes change it
      expect(arr(K.wardFromVectors(x, { d, backend, sizes: new Uint32Array(n).fill(1) }).Z)).toEqual(arr(K.wardFromVectors(x, { d, backend }).Z));
      if (n > 2) expect(arr(got)).not.toEqual(arr(K.wardFromVectors(x, { d, backend }).Z));
      // row i repeated sizes[i] times: Ward merges the copies at height 0, then exactly the weighted merges
      const rows: number[][] = [];
      for (let i = 0; i < n; i++) for (let s = 0; s < sizes[i]!; s++) rows.push(arr(x.subarray(i * d, (i + 1) * d)));
      const big = K.wardFromVectors(rows, { backend: 'js' }).Z;
      const hb = heights(big).filter((h) => h > 0);
      const hw = heights(got);
      expect(hb.length).toBe(hw.length);
      for (let i = 0; i < hw.length; i++) expect(Math.abs(hb[i]! - hw[i]!)).toBeLessThanOrEqual(1e-9 * Math.max(1, hw[i]!));
    }
  });

  it('async twin gives the same Z; bad sizes are clear errors', async () => {
    const x = randomRows(20, 4, 3);
    const sizes = Uint32Array.from({ length: 20 }, (_, i) => 1 + (i % 3));
    expect(arr((await K.wardFromVectorsAsync(x, { d: 4, backend, sizes })).Z)).toEqual(arr(K.wardFromVectors(x, { d: 4, backend, sizes }).Z));
    const code = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e instanceof KernelError ? e.code : (e as Error).name;
      }
      return 'no error';
    };
    expect(code(() => K.wardFromVectors(x, { d: 4, backend, sizes: new Uint32Array(19).fill(1) }))).toBe('ERR_SHAPE_MISMATCH');
    expect(code(() => K.wardFromVectors(x, { d: 4, backend, sizes: [...sizes.slice(0, 19), 0] }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => K.wardFromVectors(x, { d: 4, backend, sizes: [...sizes.slice(0, 19), 1.5] }))).toBe('ERR_INVALID_ARGUMENT');
    expect(code(() => K.wardFromVectors(x, { d: 4, backend, sizes: 'x' as never }))).toBe('TypeError');
    // the backend itself (unvalidated by src/kernels.ts)
    const be = getBackend(backend);
    expect(code(() => be.wardFromVectors(x, 20, 4, new Uint32Array(3).fill(1)))).toBe('ERR_SHAPE_MISMATCH');
    expect(code(() => be.wardFromVectors(x, 20, 4, new Uint32Array(20)))).toBe('ERR_INVALID_ARGUMENT');
    await expect(be.wardFromVectorsAsync(x, 20, 4, new Uint32Array(20))).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });
});

describe('micro-clusters (deterministic k-means)', () => {
  const { x, truth } = blobs(1200, 24, 6, 0.8, 7);
  const n = 1200;
  const d = 24;

  it('is the same on every backend and on every run; sizes and assignment are consistent', async () => {
    const runs = await Promise.all(backendsUnderTest().map((b) => microClusters(x, n, d, 60, { backend: getBackend(b) })));
    const again = await microClusters(x, n, d, 60, { backend: getBackend(backendsUnderTest()[0]) });
    for (const r of [...runs, again]) {
      expect(arr(r.assign)).toEqual(arr(runs[0]!.assign));
      expect(arr(r.centroids)).toEqual(arr(runs[0]!.centroids));
    }
    const r = runs[0]!;
    expect(r.m).toBeLessThanOrEqual(60);
    expect(r.sizes.reduce((a, b) => a + b, 0)).toBe(n);
    const count = new Uint32Array(r.m);
    for (const a of r.assign) count[a]!++;
    expect(arr(count)).toEqual(arr(r.sizes));
    expect(Math.min(...r.sizes)).toBeGreaterThanOrEqual(1);
    // every centroid is the mean of its members (f32 of the f64 mean)
    for (const j of [0, r.m - 1]) {
      const mean = new Float64Array(d);
      for (let i = 0; i < n; i++) if (r.assign[i] === j) for (let t = 0; t < d; t++) mean[t]! += x[i * d + t]! / r.sizes[j]!;
      for (let t = 0; t < d; t++) expect(Math.abs(r.centroids[j * d + t]! - mean[t]!)).toBeLessThan(1e-5);
    }
  });

  it('converged: every row is nearest (f64) to its own centroid — a k-means fixed point', async () => {
    const r = await microClusters(x, n, d, 30, { backend: getBackend(backendsUnderTest()[0]), iterations: 50 });
    expect(r.moved).toBe(0);
    let worse = 0;
    for (let i = 0; i < n; i++) {
      const dist = (j: number) => {
        let s = 0;
        for (let t = 0; t < d; t++) s += (x[i * d + t]! - r.centroids[j * d + t]!) ** 2;
        return s;
      };
      const own = dist(r.assign[i]!);
      for (let j = 0; j < r.m; j++) if (dist(j) < own - 1e-6) worse++;
    }
    expect(worse).toBe(0);
  });

  it('micro-clusters within the true clusters: approximate Ward agrees with exact Ward and the truth', async () => {
    const be = getBackend(backendsUnderTest()[0]);
    const aw = await approximateWard(x, n, d, 100, { backend: be });
    expect(aw.Z.length).toBe(4 * (aw.m - 1));
    const approx = labelsOf(be.cutK(aw.Z, aw.m, 6), aw.assign);
    const exact = be.cutK(be.wardFromVectors(x, n, d), n, 6);
    expect(ari(approx, exact)).toBeGreaterThan(0.95);
    expect(ari(approx, truth)).toBeGreaterThan(0.95);
    // labels are numbered in order of first appearance
    expect(approx[0]).toBe(0);
    let max = -1;
    for (const l of approx) {
      expect(l).toBeLessThanOrEqual(max + 1);
      max = Math.max(max, l);
    }
  });

  it('rejects bad arguments and honours an abort', async () => {
    const be = getBackend(backendsUnderTest()[0]);
    await expect(microClusters(x, n, d, 0, { backend: be })).rejects.toThrow(RangeError);
    await expect(microClusters(x, n, d, 5, { backend: be, iterations: -1 })).rejects.toThrow(RangeError);
    await expect(microClusters(x, n + 1, d, 5, { backend: be })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
    const ac = new AbortController();
    ac.abort();
    await expect(microClusters(x, n, d, 5, { backend: be, signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});

describe('clusterImages: clustering auto / exact / approximate', () => {
  let tmp = '';
  let testDir = '';
  beforeAll(async () => {
    tmp = mkdtempSync(path.join(tmpdir(), 'ac-micro-'));
    testDir = (await generateSample(path.join(tmp, 'sample'), { perClass: 4, trainNormals: 0, seed: 3 })).testDir;
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('approximate: Z over the micro-clusters, every image labelled through its micro-cluster, listed in approximations', async () => {
    const base = { k: 4, features: { cacheDir: path.join(tmp, 'cache'), threads: 2, projectDim: false }, weighting: 'uniform' } as const;
    const exact = await clusterImages(testDir, base);
    expect(exact.microClusters).toBeUndefined();
    expect(exact.approximations.some((a) => a.includes('micro-clusters'))).toBe(false);
    // 'auto' below the threshold is exact; above it, approximate
    const autoLow = await clusterImages(testDir, { ...base, resources: { clustering: 'auto' } });
    expect(arr(autoLow.labels)).toEqual(arr(exact.labels));
    const r = await clusterImages(testDir, { ...base, resources: { approxAbove: 5, microClusters: 8 } });
    expect(r.linkageFrom).toBe('micro-clusters');
    const mc = r.microClusters!;
    expect(mc.m).toBeLessThanOrEqual(8);
    expect(r.Z.length).toBe(4 * (mc.m - 1));
    expect(mc.assign.length).toBe(r.n);
    expect(r.labels.length).toBe(r.n);
    expect(arr(r.labels)).toEqual(arr(labelsOf(getBackend(r.backend.name).cutK(r.Z, mc.m, 4), mc.assign)));
    expect(r.approximations.some((a) => a.startsWith('ward approximated') && a.includes(`${mc.m} deterministic k-means micro-clusters`))).toBe(true);
    // forcing it gives the same; forcing exact ignores the threshold
    const forced = await clusterImages(testDir, { ...base, resources: { clustering: 'approximate', microClusters: 8 } });
    expect(arr(forced.labels)).toEqual(arr(r.labels));
    const noApprox = await clusterImages(testDir, { ...base, resources: { clustering: 'exact', approxAbove: 5, microClusters: 8 } });
    expect(arr(noApprox.labels)).toEqual(arr(exact.labels));
    // automatic K on the micro-clusters
    const auto = await clusterImages(testDir, { ...base, k: 'auto', resources: { clustering: 'approximate', microClusters: 8 } });
    expect(auto.kAuto?.chosen).toBe(auto.k);
    expect(auto.approximations.some((a) => a.includes('automatic K scored on the micro-cluster centroids'))).toBe(true);
  });

  it('CLI: --clustering approximate --micro-clusters M, recorded in result.json and the report; bad values are usage errors', async () => {
    const out = path.join(tmp, 'cli-out');
    const io = () => {
      const o = { out: '', err: '' };
      return { o, io: { stdout: { write: (s: string) => (o.out += s) }, stderr: { write: (s: string) => (o.err += s), isTTY: false } } };
    };
    const a = io();
    const code = await main([testDir, '--k', '3', '--clustering', 'approximate', '--micro-clusters', '6', '--cache', path.join(tmp, 'cache'),
      '--weighting', 'uniform', '-q', '--out', out], a.io);
    expect(code, a.o.err).toBe(EXIT.OK);
    const j = JSON.parse(readFileSync(path.join(out, 'result.json'), 'utf8')) as ResultJson;
    expect(j.linkageFrom).toBe('micro-clusters');
    expect(j.approximations.some((s) => s.startsWith('ward approximated'))).toBe(true);
    expect(j.options.clustering).toBe('approximate');
    expect(j.labels.length).toBe(j.n);
    // the report cannot draw a per-image dendrogram from a Z over micro-clusters: it says so instead
    expect(readFileSync(path.join(out, 'report.html'), 'utf8')).toContain('over micro-clusters: approximate ward, not drawn');
    for (const bad of [['--clustering', 'fast'], ['--micro-clusters', '1'], ['--approx-above', '-3']]) {
      const b = io();
      expect(await main([testDir, ...bad], b.io), bad.join(' ')).toBe(EXIT.USAGE);
    }
  });

  it('rejects bad options before any work', async () => {
    await expect(clusterImages(testDir, { resources: { clustering: 'fast' as never } })).rejects.toThrow(/clustering: expected one of auto, exact, approximate/);
    await expect(clusterImages(testDir, { linkage: 'average', resources: { clustering: 'approximate' } })).rejects.toThrow(/needs linkage 'ward'/);
    await expect(clusterImages(testDir, { resources: { microClusters: 1 } })).rejects.toThrow(/microClusters: expected an integer ≥ 2/);
    await expect(clusterImages(testDir, { resources: { approxAbove: -1 } })).rejects.toThrow(/approxAbove/);
    await expect(clusterImages(testDir, { k: 9, weighting: 'uniform', features: { cacheDir: path.join(tmp, 'cache'), projectDim: false }, resources: { clustering: 'approximate', microClusters: 8 } }))
      .rejects.toMatchObject({ code: 'ERR_K_OUT_OF_RANGE' });
  });
});
