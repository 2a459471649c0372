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
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { KernelError } from '../../src/errors.js';
import { bagStore, DiskBags, MemoryBags, STREAM_CHUNK_BYTES, streamChunk, withBags } from '../../src/pipeline/bank-store.js';
import { extractFeatures } from '../../src/pipeline/features.js';
import { clusterImages } from '../../src/pipeline/run.js';
import type { BagStore, FeatureBank } from '../../src/pipeline/types.js';
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

describe('BankStore: one interface over in-memory and streamed banks', () => {
  const [n, m, d] = [5, 2, 3];
  const rows = randomRows(n * m, d, 2);
  const len = m * d;
  const memBank = (): FeatureBank => ({ n, m, d, gridH: 1, gridW: m, data: rows.slice(), files: [], skipped: [], timings: {} });
  const diskBank = (dir: string): FeatureBank => {
    const store = new DiskBags(n, m, d, dir);
    for (let i = 0; i < n; i++) store.addRows(i, rows.subarray(i * len, (i + 1) * len));
    return { ...memBank(), data: new Float32Array(0), store };
  };
  const spills = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.f32')).length;

  it('bagStore: MemoryBags in memory, the DiskBags itself when streamed, any other store read as streamed', () => {
    const dir = mkdtempSync(path.join(tmp, 'iface-'));
    const mb = memBank();
    const ms = bagStore(mb);
    expect(ms).toBeInstanceOf(MemoryBags);
    expect([ms.streamed, ms.n, ms.m, ms.d]).toEqual([false, n, m, d]);
    expect(ms.resident()).toBe(mb.data);
    const db = diskBank(dir);
    const ds = bagStore(db);
    expect(ds).toBe(db.store);
    expect([ds.streamed, ds.n, ds.m, ds.d]).toEqual([true, n, m, d]);
    expect(ds.resident()).toBeUndefined();
    // a caller's own store (only read and close): streamed, read through it, closed through it
    const own = new MemoryBags(rows, n, m, d);
    const foreign: BagStore = { n, m, d, read: (i0, i1, out) => own.read(i0, i1, out), close: vi.fn() };
    const fb: FeatureBank = { ...mb, data: new Float32Array(0), store: foreign };
    const fs = bagStore(fb);
    expect([fs.streamed, fs.n, fs.m, fs.d]).toEqual([true, n, m, d]);
    expect(arr(fs.view(1, 3))).toEqual(arr(rows.subarray(len, 3 * len)));
    expect(withBags(fb, fs).store).toBe(foreign);
    fs.close();
    expect(foreign.close).toHaveBeenCalledTimes(1);
    // a MemoryBags set as a bank's store is a store like any other: read as streamed
    expect(bagStore({ ...mb, data: new Float32Array(0), store: own }).streamed).toBe(true);
    ds.close();
    expect(spills(dir)).toBe(0);
  });

  it('view: a view of data in memory (no copy), a copy into out, a new array streamed', () => {
    const dir = mkdtempSync(path.join(tmp, 'iface-'));
    const mb = memBank();
    const ms = bagStore(mb);
    const ds = bagStore(diskBank(dir));
    const want = arr(rows.subarray(len, 3 * len));
    const v = ms.view(1, 3);
    expect(v.buffer).toBe(mb.data.buffer);
    expect(arr(v)).toEqual(want);
    const out = new Float32Array(2 * len + 4);
    expect(ms.view(1, 3, out)).toBe(out);
    expect(arr(out.subarray(0, 2 * len))).toEqual(want);
    const r = ds.view(1, 3);
    expect(arr(r)).toEqual(want);
    const out2 = new Float32Array(2 * len);
    expect(ds.view(1, 3, out2)).toBe(out2);
    expect(arr(out2)).toEqual(want);
    ds.close();
  });

  it('chunk and forChunks: one call over data in memory; streamed at most STREAM_CHUNK_BYTES through one buffer', () => {
    const dir = mkdtempSync(path.join(tmp, 'iface-'));
    const mb = memBank();
    const ms = bagStore(mb);
    const ds = bagStore(diskBank(dir));
    expect(ms.chunk(7)).toEqual({ images: 7, buffer: undefined });
    const c = ds.chunk(7);
    expect(c.images).toBe(7);
    expect(c.buffer!.length).toBe(n * len); // at most n bags
    expect(ds.chunk(2).buffer!.length).toBe(2 * len);
    const seen: [Float32Array, number, number][] = [];
    ms.forChunks((r, i0, i1) => seen.push([r, i0, i1]));
    expect(seen).toHaveLength(1);
    expect(seen[0]![0]).toBe(mb.data);
    expect(seen[0]!.slice(1)).toEqual([0, n]);
    const got: number[] = [];
    ds.forChunks((r, i0, i1) => { expect([i0, i1]).toEqual([0, n]); got.push(...r); });
    expect(got).toEqual(arr(rows));
    ds.close();
    // bags of 32 MiB: two per chunk, read into one reused buffer (a store that only counts its reads)
    const big = { n: 3, m: 1, d: 2 ** 23 };
    expect(streamChunk(big)).toBe(Math.floor(STREAM_CHUNK_BYTES / (big.d * 4)));
    const reads: number[][] = [];
    const lazy: BagStore = { ...big, read: (i0, i1, out) => { reads.push([i0, i1]); return out ?? new Float32Array((i1 - i0) * big.d); }, close: () => {} };
    const ls = bagStore({ ...memBank(), ...big, gridW: 1, data: new Float32Array(0), store: lazy });
    expect(ls.chunk(5).images).toBe(2);
    const calls: [number, number, number, ArrayBufferLike][] = [];
    ls.forChunks((r, i0, i1) => calls.push([r.length, i0, i1, r.buffer]));
    expect(reads).toEqual([[0, 2], [2, 3]]);
    expect(calls.map((x) => x.slice(0, 3))).toEqual([[2 * big.d, 0, 2], [big.d, 2, 3]]);
    expect(calls[0]![3]).toBe(calls[1]![3]);
  });

  it('mapChunks: a store of the same kind (in memory: a new array or in place; streamed: a new spill file)', async () => {
    const dir = mkdtempSync(path.join(tmp, 'iface-'));
    const double = async (r: Float32Array) => r.map((v) => 2 * v);
    const twice = arr(rows.map((v) => 2 * v));
    const mb = memBank();
    const ms = bagStore(mb);
    let chunks = 0;
    const mm = await ms.mapChunks(double, { beforeChunk: () => chunks++ });
    expect(chunks).toBe(1);
    expect(mm).toBeInstanceOf(MemoryBags);
    expect(mm.resident()).not.toBe(mb.data);
    expect(arr(mm.resident()!)).toEqual(twice);
    expect(arr(mb.data)).toEqual(arr(rows)); // untouched
    const inPlace = await ms.mapChunks(double, { inPlace: true });
    expect(inPlace.resident()).toBe(mb.data);
    expect(arr(mb.data)).toEqual(twice);
    expect(withBags(mb, mm)).toEqual({ ...mb, data: mm.resident(), store: undefined });

    const db = diskBank(dir);
    const ds = bagStore(db);
    const md = await ds.mapChunks(double, { inPlace: true, spillDir: dir });
    expect(md).toBeInstanceOf(DiskBags);
    expect(md).not.toBe(ds);
    expect(md.streamed).toBe(true);
    expect(arr(md.read(0, n))).toEqual(twice);
    expect(arr(ds.read(0, n))).toEqual(arr(rows)); // the original bags are not written, even with inPlace
    expect(spills(dir)).toBe(2);
    const wb = withBags(db, md);
    expect(wb.store).toBe(md);
    expect(wb.data.length).toBe(0);
    md.close();
    expect(spills(dir)).toBe(1);
    // what beforeChunk throws ends the map, and the new spill file is gone
    const stop = new Error('stop');
    await expect(ds.mapChunks(double, { spillDir: dir, beforeChunk: () => { throw stop; } })).rejects.toBe(stop);
    await expect(ds.mapChunks(async () => { throw stop; }, { spillDir: dir })).rejects.toBe(stop);
    expect(spills(dir)).toBe(1);
    ds.close();
    expect(spills(dir)).toBe(0);
  });

  it('mismatch: names data (in memory) or store (streamed) when the bags are not n × m × d', () => {
    const dir = mkdtempSync(path.join(tmp, 'iface-'));
    const ms = bagStore(memBank());
    expect(ms.mismatch(n, m, d)).toBeUndefined();
    expect(ms.mismatch(n + 1, m, d)).toBe(`data: expected length n*m*d = ${(n + 1) * m * d}, got ${n * m * d}`);
    const ds = bagStore(diskBank(dir));
    expect(ds.mismatch(n, m, d)).toBeUndefined();
    expect(ds.mismatch(n, m, d + 1)).toBe(`store: expected a bag store of n=${n} bags of m=${m} × d=${d + 1}`);
    const unreadable = bagStore({ ...memBank(), store: { n, m, d } as unknown as BagStore });
    expect(unreadable.mismatch(n, m, d)).toBe(`store: expected a bag store of n=${n} bags of m=${m} × d=${d}`);
    ds.close();
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
