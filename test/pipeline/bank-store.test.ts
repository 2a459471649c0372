/**
 * Streamed feature banks (bounded memory): a bank over `streamAbove` bytes (in `clusterImages`: over half
 * of `memoryLimit`) is read from disk chunk by chunk — from the feature-cache entries, or a spill file when the
 * cache is off — and every weighting gives **bit-identical** scores, weights and embeddings to the in-memory bank.
 * What a streamed bank cannot do (exact unsupervised weights; a normal bank over the budget) fails with
 * `ERR_MEMORY_LIMIT` before any image is read.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KernelError } from '../../src/errors.js';
import { DiskBags } from '../../src/pipeline/bank-store.js';
import { extractFeatures } from '../../src/pipeline/features.js';
import { clusterImages } from '../../src/pipeline/run.js';
import type { FeatureBank } from '../../src/pipeline/types.js';
import { computeWeights, type Weighting } from '../../src/pipeline/weighting.js';
import { generateSample, type Sample } from '../../src/sample/index.js';
import { arr, randomRows } from '../helpers.js';

let tmp: string;
let sample: Sample;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ac-stream-'));
  sample = await generateSample(path.join(tmp, 'sample'), { perClass: 3, trainNormals: 4, seed: 11, size: 96 });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('DiskBags', () => {
  it('reads back what was stored, in compacted order, from spill and foreign files; cleans up on close', () => {
    const dir = mkdtempSync(path.join(tmp, 'bags-'));
    const [m, d] = [3, 5];
    const rows = randomRows(4 * m, d, 1);
    const bag = (i: number) => rows.subarray(i * m * d, (i + 1) * m * d);
    // bag 2 lives in a "cache file" at byte offset 12
    const foreign = path.join(dir, 'entry.bin');
    const bytes = new Uint8Array(12 + m * d * 4);
    bytes.set(new Uint8Array(bag(2).slice().buffer), 12);
    writeFileSync(foreign, bytes);
    const s = new DiskBags(4, m, d, dir);
    s.addRows(0, bag(0));
    s.addRows(3, bag(3));
    s.addLocation(2, { file: foreign, offset: 12 });
    s.addRows(1, bag(1));
    expect(readdirSync(dir).filter((f) => f.endsWith('.f32'))).toHaveLength(1);
    expect(arr(s.read(0, 4))).toEqual(arr(rows));
    s.compact([3, 2, 0]);
    expect(s.n).toBe(3);
    const out = new Float32Array(2 * m * d + 7);
    expect(arr(s.read(1, 3, out).subarray(0, 2 * m * d))).toEqual([...arr(bag(2)), ...arr(bag(0))]);
    expect(() => s.read(2, 4)).toThrow(RangeError);
    expect(() => s.read(0, 2, new Float32Array(1))).toThrow(RangeError);
    rmSync(foreign);
    expect(() => s.read(1, 2)).toThrow(expect.objectContaining({ code: 'ERR_IO' }));
    s.close();
    s.close();
    expect(readdirSync(dir).filter((f) => f.endsWith('.f32'))).toHaveLength(0);
    expect(() => s.read(0, 1)).toThrow(expect.objectContaining({ code: 'ERR_IO' }));
  });

  it('a spill folder that cannot be written gives ERR_IO', () => {
    const s = new DiskBags(1, 1, 1, path.join(tmp, 'no', 'such', 'dir'));
    expect(() => s.addRows(0, new Float32Array(1))).toThrow(expect.objectContaining({ code: 'ERR_IO' }));
    s.close();
  });
});

describe('extractFeatures with streamAbove', () => {
  let mem: FeatureBank;
  beforeAll(async () => {
    mem = await extractFeatures([...listTest()], { cacheDir: path.join(tmp, 'cache'), threads: 2 });
  });

  it('streams from the cache entries (cache on) or a spill file (cache off), with the same bags', async () => {
    const plans: unknown[] = [];
    const viaCache = await extractFeatures([...listTest()], {
      cacheDir: path.join(tmp, 'cache'), threads: 2, streamAbove: 0, onPlan: (p) => plans.push(p),
    });
    expect(plans).toEqual([{ n: mem.n, m: mem.m, d: mem.d, gridH: mem.gridH, gridW: mem.gridW, bytes: mem.n * mem.m * mem.d * 4, streamed: true }]);
    expect(viaCache.data.length).toBe(0);
    expect(arr(viaCache.store!.read(0, viaCache.n))).toEqual(arr(mem.data));
    viaCache.store!.close();

    const spillDir = mkdtempSync(path.join(tmp, 'spill-'));
    const before = new Set(readdirSync(tmpdir()));
    const noCache = await extractFeatures([...listTest()], { cacheDir: false, threads: 2, streamAbove: 1 });
    const spills = readdirSync(tmpdir()).filter((f) => !before.has(f) && f.startsWith('anomaly-clustering-bank-'));
    expect(spills).toHaveLength(1);
    expect(arr(noCache.store!.read(0, noCache.n))).toEqual(arr(mem.data));
    noCache.store!.close();
    expect(existsSync(path.join(tmpdir(), spills[0]!))).toBe(false);
    rmSync(spillDir, { recursive: true, force: true });
    // Under the threshold it stays in memory.
    const small = await extractFeatures([...listTest()], { cacheDir: path.join(tmp, 'cache'), threads: 2, streamAbove: mem.data.byteLength });
    expect(small.store).toBeUndefined();
    expect(arr(small.data)).toEqual(arr(mem.data));
  });

  it('onPlan runs before any image is read: its error wins over bad images', async () => {
    const junk = [{ name: 'junk.png', data: new Uint8Array([1, 2, 3]) }];
    const stop = new Error('stop here');
    await expect(extractFeatures(junk, { cacheDir: false, onPlan: () => { throw stop; } })).rejects.toBe(stop);
    await expect(extractFeatures(junk, { cacheDir: false })).rejects.toMatchObject({ code: 'ERR_IMAGE' });
    await expect(extractFeatures(junk, { streamAbove: -1 })).rejects.toBeInstanceOf(RangeError);
  });

  it('every weighting gives bit-identical scores, weights and embeddings on the streamed bank', async () => {
    const streamed = await extractFeatures([...listTest()], { cacheDir: path.join(tmp, 'cache'), threads: 2, streamAbove: 0 });
    const normals = await extractFeatures(listNormals(), { cacheDir: path.join(tmp, 'cache'), threads: 2 });
    try {
      const cases: [Weighting, object][] = [
        ['uniform', {}], ['max', {}], ['semi-supervised', { normals }], ['semi-supervised', { normals, bankPrecision: 'f16' }],
        ['unsupervised', { references: 3 }], ['unsupervised', { references: 100 }],
      ];
      for (const [weighting, extra] of cases) {
        const a = await computeWeights(mem, { weighting, ...extra, backend: 'native' });
        const b = await computeWeights(streamed, { weighting, ...extra, backend: 'native' });
        const what = `${weighting} ${JSON.stringify(extra, (k, v) => (k === 'normals' ? undefined : v))}`;
        if (weighting === 'unsupervised' && (extra as { references: number }).references >= mem.n - 1) {
          // In memory that is the exact path; streamed, every other image is read per image as a reference: the
          // same mean up to summation order.
          for (let i = 0; i < a.scores.length; i++) expect(Math.abs(b.scores[i]! - a.scores[i]!), what).toBeLessThan(1e-6 * Math.max(1, Math.abs(a.scores[i]!)));
          continue;
        }
        expect(arr(b.scores), what).toEqual(arr(a.scores));
        expect(arr(b.weights), what).toEqual(arr(a.weights));
        expect(arr(b.embeddings), what).toEqual(arr(a.embeddings));
      }
      await expect(computeWeights(streamed, { weighting: 'unsupervised' })).rejects.toMatchObject({ code: 'ERR_MEMORY_LIMIT' });
    } finally {
      streamed.store!.close();
    }
  });
});

describe('clusterImages over half the memory limit', () => {
  it('streams the bank, approximates the unsupervised weights and says so; same clusters as in memory', async () => {
    const base = { k: 5, features: { cacheDir: path.join(tmp, 'cache'), threads: 2 } } as const;
    const a = await clusterImages(sample.testDir, { ...base, weights: { references: 'exact' } });
    const events: string[] = [];
    const b = await clusterImages(sample.testDir, { ...base, onProgress: (p) => p.message && events.push(p.message), resources: { memoryLimit: 1 } });
    expect(a.featureBank).toBe('memory');
    expect(b.featureBank).toBe('disk');
    expect(b.linkageFrom).toBe('vectors');
    expect(b.approximations[0]).toMatch(/feature bank streamed from disk .* against 14 reference images per image \(all of them\)/);
    expect(events.some((m) => /streamed from disk/.test(m))).toBe(true);
    expect(arr(b.labels)).toEqual(arr(a.labels));
    for (let i = 0; i < a.scores.length; i++) expect(Math.abs(b.scores[i]! - a.scores[i]!)).toBeLessThan(1e-5 * Math.max(1, a.scores[i]!));
  });

  it('uniform and max pooling use the unprojected pooled features whether the bags stream or not: same embeddings', async () => {
    // 15 images: bank 12 MB (streamed under a 4 MB limit), pooled vectors 0.23 MB (within a quarter of it)
    for (const weighting of ['uniform', 'max'] as const) {
      for (const cacheDir of [path.join(tmp, 'cache'), false] as const) {
        const base = { k: 5, weighting, features: { cacheDir, threads: 2 } } as const;
        const a = await clusterImages(sample.testDir, base);
        const b = await clusterImages(sample.testDir, { ...base, resources: { memoryLimit: 4e6 } });
        expect([a.featureBank, a.d, b.featureBank, b.d]).toEqual(['memory', 1536, 'disk', 1536]);
        expect(arr(b.embeddings)).toEqual(arr(a.embeddings));
        expect(arr(b.labels)).toEqual(arr(a.labels));
        expect(b.approximations).toEqual([]);
      }
    }
    // over a quarter of the limit: the projected bags are pooled, and the result says so
    const c = await clusterImages(sample.testDir, { k: 5, weighting: 'max', features: { cacheDir: false, threads: 2 }, resources: { memoryLimit: 1e5 } });
    expect([c.featureBank, c.d]).toEqual(['disk', 256]);
    expect(c.approximations).toEqual([expect.stringMatching(/^max pooling of the 256-dim projected patches: the unprojected pooled vectors \(15 × 3856 floats\) exceed a quarter of the memory limit/)]);
  });

  it("references 'exact' on a bank that must stream, or normals over the budget: ERR_MEMORY_LIMIT before any image is read", async () => {
    const junk = Array.from({ length: 3 }, (_, i) => ({ name: `x${i}.png`, data: new Uint8Array([1, 2, 3]) }));
    const err = await clusterImages(junk, { k: 2, features: { cacheDir: false }, weights: { references: 'exact' }, resources: { memoryLimit: 1000 } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).code).toBe('ERR_MEMORY_LIMIT');
    expect((err as Error).message).toMatch(/3 images × 784 patches × 256 dims = 0\.00 GiB, more than half the memory limit/);
    const semi = await clusterImages(junk, { k: 2, weighting: 'semi-supervised', normals: junk, features: { cacheDir: false }, resources: { memoryLimit: 1000 } })
      .catch((e: unknown) => e);
    expect((semi as KernelError).code).toBe('ERR_MEMORY_LIMIT');
    expect((semi as Error).message).toMatch(/normal bank is searched whole/);
    // With room for the bank, the same junk gets as far as the images.
    const later = await clusterImages(junk, { k: 2, features: { cacheDir: false }, weights: { references: 'exact' } }).catch((e: unknown) => e);
    expect((later as KernelError).code).toBe('ERR_IMAGE');
  });
});

function listTest(): string[] {
  return sample.files.map((f) => f.file);
}
function listNormals(): string[] {
  return readdirSync(sample.normalsDir!).sort().map((f) => path.join(sample.normalsDir!, f));
}
