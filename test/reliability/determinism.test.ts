/**
 * @file Issue 7 — determinism: the same input and options give identical labels and Z
 * - across repeated runs (every backend, kernels and `clusterImages`);
 * - across native thread counts (`ANOMALY_CLUSTERING_THREADS=1` vs `2`, child processes): bit-identical distances,
 *   grouped-NN scores, Z, labels, embeddings and patch scores;
 * - across the three backends: Z bit-identical on f64 input (all seven methods) and the same flat clusters; the
 *   f32 kernels agree to float32 rounding; `clusterImages` with uniform weighting gives the same labels and the same
 *   merge structure on every backend (and unsupervised on native vs wasm).
 * @module test/reliability/determinism
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import * as ac from '../../src/index.js';
import type { ClusterResult } from '../../src/pipeline/run.js';
import { getBackend } from '../../bindings/select.js';
import { backendsUnderTest, firstNotClose } from '../helpers.js';
import { CHILDREN, ensureDist, lastJson, runNode, tempDir, texturedPng } from './helpers.js';
// @ts-expect-error plain ESM shared with the children (no types)
import { data, runWorkload } from './children/workload.mjs';

const BACKENDS = backendsUnderTest();
const SEEDS = [1, 2, 3];

let tmp: string;
let imgDir: string;
let cacheDir: string;
beforeAll(async () => {
  tmp = tempDir('ac-det-');
  imgDir = path.join(tmp, 'imgs');
  cacheDir = path.join(tmp, 'cache');
  mkdirSync(imgDir, { recursive: true });
  // Three visually distinct families, two images each.
  for (let i = 0; i < 6; i++) writeFileSync(path.join(imgDir, `f${i % 3}-${i}.png`), await texturedPng(60 + 6 * i, 52, (i % 3) * 17 + 1 + (i >> 1)));
}, 60_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe.each(BACKENDS)('repeat runs on %s', (backend) => {
  it('the kernel workload gives identical bytes three times', async () => {
    const b = getBackend(backend);
    const a = await runWorkload(b, SEEDS);
    expect(await runWorkload(b, SEEDS)).toEqual(a);
    expect(await runWorkload(b, SEEDS)).toEqual(a);
  });
  it('clusterImages (uniform) gives identical labels, Z and embeddings twice', async () => {
    const opts = { k: 3, weighting: 'uniform' as const, resources: { backend }, features: { cacheDir, threads: 1 } };
    const r1 = await ac.clusterImages(imgDir, opts);
    const r2 = await ac.clusterImages(imgDir, opts);
    expect([...r2.labels]).toEqual([...r1.labels]);
    expect([...r2.Z]).toEqual([...r1.Z]);
    expect(Buffer.from(r2.embeddings.buffer).equals(Buffer.from(r1.embeddings.buffer))).toBe(true);
  }, 60_000);
});

describe('across backends', () => {
  it('Z on f64 input is bit-identical for every method, and cutK gives the same labels', async () => {
    const all = await Promise.all(BACKENDS.map(async (b) => [b, await runWorkload(getBackend(b), SEEDS)] as const));
    const [b0, w0] = all[0]!;
    for (const [b, w] of all.slice(1)) {
      for (const s of SEEDS) {
        expect(w[s].Z, `${b} vs ${b0} seed ${s}: Z of the 7 methods`).toBe(w0[s].Z);
        expect(w[s].labels, `${b} vs ${b0} seed ${s}: cutK labels of ward on its own pdist`).toBe(w0[s].labels);
      }
    }
  });
  it('f32 kernels agree to float32 rounding', () => {
    const { x, n, d, offsets, groups } = data(7);
    const ref = getBackend('js');
    for (const b of BACKENDS) {
      const be = getBackend(b);
      expect(firstNotClose(be.pdist(x, n, d, false), ref.pdist(x, n, d, false), 1e-5, 1e-5), `${b} pdist`).toBe(-1);
      const g = (bb: typeof be) => bb.groupedNN({ queries: x, nq: n, base: x, groupOffsets: offsets, d, mode: 'mean-excluding-own', queryGroups: groups });
      expect(firstNotClose(g(be), g(ref), 1e-5, 1e-5), `${b} groupedNN`).toBe(-1);
    }
  });

  const sameClustering = (a: ClusterResult, b: ClusterResult, what: string) => {
    expect([...b.labels], what).toEqual([...a.labels]);
    expect(b.Z.length).toBe(a.Z.length);
    for (let i = 0; i < a.Z.length; i += 4) {
      expect([b.Z[i], b.Z[i + 1], b.Z[i + 3]], `${what}: merge ${i / 4}`).toEqual([a.Z[i], a.Z[i + 1], a.Z[i + 3]]);
      expect(Math.abs(b.Z[i + 2]! - a.Z[i + 2]!), `${what}: height ${i / 4}`).toBeLessThanOrEqual(1e-5 * Math.abs(a.Z[i + 2]!) + 1e-6);
    }
  };

  it('clusterImages with uniform weighting: same labels and merges on every backend', async () => {
    const rs: ClusterResult[] = [];
    for (const backend of BACKENDS) rs.push(await ac.clusterImages(imgDir, { k: 3, weighting: 'uniform', features: { cacheDir, threads: 1 }, resources: { backend } }));
    for (let i = 1; i < rs.length; i++) sameClustering(rs[0]!, rs[i]!, `${BACKENDS[i]} vs ${BACKENDS[0]}`);
    const exact = rs.every((r) => Buffer.from(r.Z.buffer).equals(Buffer.from(rs[0]!.Z.buffer)));
    console.log(`clusterImages uniform across ${BACKENDS.join('/')}: labels identical; Z ${exact ? 'bit-identical' : 'same merges, heights within 1e-5'}`);
  }, 60_000);

  it.runIf(BACKENDS.includes('native') && BACKENDS.includes('wasm'))('clusterImages unsupervised: native and wasm agree', async () => {
    const n = await ac.clusterImages(imgDir, { k: 3, features: { cacheDir, threads: 1 }, resources: { backend: 'native' } });
    const w = await ac.clusterImages(imgDir, { k: 3, features: { cacheDir, threads: 1 }, resources: { backend: 'wasm' } });
    sameClustering(n, w, 'wasm vs native');
  }, 60_000);
});

describe.runIf(BACKENDS.includes('native'))('across native thread counts (child processes)', () => {
  beforeAll(() => ensureDist(), 180_000);
  it('ANOMALY_CLUSTERING_THREADS=1 and =2 give bit-identical kernels and clusterImages (unsupervised)', async () => {
    // Warm the feature cache so both children only differ in the kernels' threading.
    await ac.clusterImages(imgDir, { k: 3, weighting: 'uniform', features: { cacheDir, threads: 1 }, resources: { backend: 'native' } });
    const run = (threads: string) =>
      runNode(path.join(CHILDREN, 'determinism.mjs'), [imgDir, cacheDir, 'unsupervised', 'native'], {
        env: { ANOMALY_CLUSTERING_THREADS: threads },
        timeoutMs: 60_000,
      });
    const [r1, r2] = await Promise.all([run('1'), run('2')]);
    for (const r of [r1, r2]) expect(r.code, r.stderr).toBe(0);
    const a = lastJson<{ threads: number; workload: unknown; cluster: unknown }>(r1.stdout);
    const b = lastJson<{ threads: number; workload: unknown; cluster: unknown }>(r2.stdout);
    expect([a.threads, b.threads]).toEqual([1, 2]);
    expect(b.workload).toEqual(a.workload);
    expect(b.cluster).toEqual(a.cluster);
  }, 90_000);
});
