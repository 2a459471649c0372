import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { clusterImages, listImages, type ClusterOptions } from '../../src/pipeline/run.js';
import { InputError } from '../../src/errors.js';
import { evaluate } from '../../src/pipeline/metrics.js';
import { normaliseEmbeddings } from '../../src/pipeline/embedding-norm.js';
import { PAPER_METHOD, PRESETS } from '../../src/pipeline/presets.js';
import { getBackend } from '../../bindings/select.js';
import { generateSample, renderSampleImage, type Sample } from '../../src/sample/index.js';
import type { Progress } from '../../src/pipeline/types.js';

let tmp: string;
let sample: Sample;
let cacheDir: string;
const small: Partial<ClusterOptions> = { features: { threads: 2 } };

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'ac-run-'));
  cacheDir = path.join(tmp, 'cache');
  sample = await generateSample(path.join(tmp, 'sample'), { perClass: 3, trainNormals: 4, seed: 11 });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const truthOf = (files: string[]) => files.map((f) => path.basename(path.dirname(f)));

describe('sample generator', () => {
  it('writes the MVTec-like layout deterministically', async () => {
    expect(sample.classes).toEqual(['good', 'scratch', 'spot', 'crack', 'contamination']);
    expect(sample.files.length).toBe(15);
    expect(listImages(sample.normalsDir!).length).toBe(4);
    const a = renderSampleImage('crack', 42, 64);
    const b = renderSampleImage('crack', 42, 64);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
    expect(Buffer.from(renderSampleImage('crack', 43, 64).data).equals(Buffer.from(a.data))).toBe(false);
    expect(() => renderSampleImage('dent' as never, 1, 64)).toThrow(RangeError);
  });
});

describe('listImages', () => {
  it('lists image files recursively, sorted, skipping hidden entries and other extensions', () => {
    const d = path.join(tmp, 'list');
    mkdirSync(path.join(d, 'b', 'c'), { recursive: true });
    mkdirSync(path.join(d, '.hidden'), { recursive: true });
    for (const f of ['b/c/z.PNG', 'b/a.jpg', 'a.png', '.hidden/x.png', '.dot.png', 'notes.txt']) writeFileSync(path.join(d, f), '');
    expect(listImages(d).map((f) => path.relative(d, f).split(path.sep).join('/'))).toEqual(['a.png', 'b/a.jpg', 'b/c/z.PNG']);
    expect(listImages(d, ['jpg']).map((f) => path.basename(f))).toEqual(['a.jpg']);
  });
  it('throws InputError not-found for a missing folder or a file', () => {
    expect(() => listImages(path.join(tmp, 'nope'))).toThrow(InputError);
    try { listImages(path.join(tmp, 'nope')); } catch (e) { expect((e as InputError).problem).toBe('not-found'); }
  });
});

describe('clusterImages', () => {
  it('returns labels, embeddings, weight maps, Z, timings and the backend', async () => {
    const events: Progress[] = [];
    const r = await clusterImages(sample.testDir, { k: 5, weighting: 'max', onProgress: (p) => events.push(p), features: { cacheDir, threads: 2 } });
    expect(r.files).toEqual(sample.files.map((f) => f.file));
    expect(r.n).toBe(15);
    expect(r.labels).toBeInstanceOf(Int32Array);
    expect(new Set(r.labels)).toEqual(new Set([0, 1, 2, 3, 4]));
    expect(r.labels[0]).toBe(0); // numbered in order of first appearance
    expect(r.embeddings.length).toBe(15 * r.d);
    expect(r.d).toBe(1536); // max pooling of the unprojected ResNet-50 features (no nearest-patch search to pay for)
    expect(r.weights.length).toBe(15);
    for (const w of r.weights) {
      expect(w.length).toBe(r.gridH * r.gridW);
      expect(w.reduce((a, x) => a + x, 0)).toBeCloseTo(1, 4);
    }
    expect(r.Z.length).toBe(14 * 4);
    expect(r.Z[13 * 4 + 3]).toBe(15);
    for (const s of ['decode', 'features', 'weights', 'clustering', 'total'] as const) expect(r.timings[s]).toBeGreaterThanOrEqual(0);
    // stages are wall-clock intervals inside the run (decode overlaps features, but none can exceed the whole)
    for (const s of ['decode', 'features', 'weights', 'clustering'] as const) expect(r.timings[s]!).toBeLessThanOrEqual(r.timings.total + 1);
    expect(['native', 'wasm', 'js']).toContain(r.backend.name);
    expect(new Set(events.map((e) => e.stage))).toEqual(new Set(['decode', 'features', 'weights', 'clustering']));
    expect(evaluate(r.labels, truthOf(r.files)).nmi).toBeGreaterThan(0.6);
  });

  it('is deterministic, and accepts buffers as well as paths', async () => {
    const a = await clusterImages(sample.testDir, { k: 5, weighting: 'uniform', features: { cacheDir, threads: 2 } });
    const b = await clusterImages(sample.testDir, { k: 5, weighting: 'uniform', features: { cacheDir: false, threads: 2 } });
    expect([...b.labels]).toEqual([...a.labels]);
    const bufs = a.files.map((f) => ({ name: path.basename(f), data: new Uint8Array(readFileSync(f)) }));
    const c = await clusterImages(bufs, { k: 5, weighting: 'uniform', features: { cacheDir: false, threads: 2 } });
    expect(c.files).toEqual(a.files.map((f) => path.basename(f)));
    expect([...c.labels]).toEqual([...a.labels]);
    for (let i = 0; i < a.embeddings.length; i += 97) expect(c.embeddings[i]).toBeCloseTo(a.embeddings[i]!, 5);
  });

  it('unsupervised and semi-supervised weighting cluster the sample well', async () => {
    // the default preset: a consensus of six configurations; the primary (reported) member is the paper's
    const u = await clusterImages(sample.testDir, { k: 5, ...small, features: { ...small.features, cacheDir } });
    expect(u.method.preset).toBe('default');
    expect(u.method.members).toEqual(PRESETS.default.members);
    expect(u.method.memberLabels).toHaveLength(PRESETS.default.members.length);
    expect(u.weighting).toBe('unsupervised');
    expect(u.d).toBe(256); // weighted pooling of the projected bank the scores were computed on
    expect(u.tau).toBeGreaterThan(0);
    expect(u.whitened).toBe(false);
    expect(u.Z.length).toBe(4 * (u.n - 1));
    expect([...getBackend(u.backend.name).cutK(u.Z, u.n, 5)]).toEqual([...u.labels]); // Z is the consensus tree
    expect(evaluate(u.labels, truthOf(u.files)).nmi).toBeGreaterThan(0.6);
    const again = await clusterImages(sample.testDir, { k: 5, ...small, features: { ...small.features, cacheDir } });
    expect([...again.labels]).toEqual([...u.labels]);
    // one configuration: the paper preset, or explicit fields (whitened here)
    const paper = await clusterImages(sample.testDir, { k: 5, preset: 'paper', ...small, features: { ...small.features, cacheDir } });
    expect(paper.method).toEqual({ preset: 'paper', members: [PAPER_METHOD], kSpread: 0 });
    expect(paper.embeddingNorm).toBe('none');
    expect([...paper.labels]).toEqual([...u.method.memberLabels![2]!]); // the consensus's paper member, cut at K
    const wh = await clusterImages(sample.testDir, { k: 5, ...small, features: { ...small.features, cacheDir }, weights: { whiten: 1 } });
    expect(wh.whitened).toEqual({ shrinkage: 1, sampled: 15 * wh.gridH * wh.gridW }); // every patch of 15 images
    expect(wh.method.preset).toBe('custom');
    const s = await clusterImages(sample.testDir, { k: 5, weighting: 'semi-supervised', normals: sample.normalsDir, ...small, features: { ...small.features, cacheDir } });
    expect(s.normals).toBe(4);
    expect(evaluate(s.labels, truthOf(s.files)).nmi).toBeGreaterThan(0.6);
    // the defect patch dominates: for spots, the weight map's peak lies on a dark pixel area (scores > mean)
    expect(Math.max(...s.scores)).toBeGreaterThan(0);
  });

  it('normalises the embeddings (embeddingNorm; none for a single configuration by default) before clustering them, and returns what it clustered', async () => {
    const def = await clusterImages(sample.testDir, { k: 5, weighting: 'uniform', embeddingNorm: 'l2-center-l2', features: { cacheDir, threads: 2 } });
    const raw = await clusterImages(sample.testDir, { k: 5, weighting: 'uniform', features: { cacheDir, threads: 2 } });
    expect(def.embeddingNorm).toBe('l2-center-l2');
    expect(raw.embeddingNorm).toBe('none');
    for (let i = 0; i < def.n; i++) {
      const row = def.embeddings.subarray(i * def.d, (i + 1) * def.d);
      expect(Math.hypot(...row)).toBeCloseTo(1, 5);
    }
    expect(def.embeddings).toEqual(normaliseEmbeddings(raw.embeddings, raw.n, raw.d, 'l2-center-l2'));
    const c = await clusterImages(sample.testDir, { k: 5, weighting: 'uniform', embeddingNorm: 'center-l2', features: { cacheDir, threads: 2 } });
    expect(c.embeddings).toEqual(normaliseEmbeddings(raw.embeddings, raw.n, raw.d, 'center-l2'));
    expect(c.embeddings).not.toEqual(def.embeddings);
    expect(def.embeddings).not.toEqual(raw.embeddings);
    // Z is the Ward linkage of the returned embeddings
    const be = getBackend(def.backend.name);
    expect(def.Z).toEqual(be.linkage(be.pdist(def.embeddings, def.n, def.d, false), def.n, 'ward'));
    await expect(clusterImages(sample.testDir, { k: 2, embeddingNorm: 'cosine' as never })).rejects.toThrow(RangeError);
    await expect(clusterImages(sample.testDir, { k: 2, weights: { whiten: -1 } })).rejects.toThrow(/whiten: expected a shrinkage > 0/);
  });

  it('rejects bad input with clear errors', async () => {
    const empty = path.join(tmp, 'empty');
    mkdirSync(path.join(empty, 'sub'), { recursive: true });
    await expect(clusterImages(path.join(tmp, 'missing'), { k: 2 })).rejects.toMatchObject({ problem: 'not-found' });
    await expect(clusterImages(empty, { k: 2 })).rejects.toMatchObject({ problem: 'no-images', code: 'ERR_EMPTY' });
    await expect(clusterImages([], { k: 1 })).rejects.toMatchObject({ problem: 'no-images' });
    await expect(clusterImages(sample.testDir, { k: 0 })).rejects.toMatchObject({ code: 'ERR_K_OUT_OF_RANGE' });
    await expect(clusterImages(sample.testDir, { k: 16 })).rejects.toMatchObject({ code: 'ERR_K_OUT_OF_RANGE', message: expect.stringContaining('1..15') });
    await expect(clusterImages(sample.testDir, { k: 2.5 })).rejects.toMatchObject({ code: 'ERR_K_OUT_OF_RANGE' });
    await expect(clusterImages(sample.testDir, { k: 2, weighting: 'semi-supervised' })).rejects.toMatchObject({ problem: 'normals-required' });
    await expect(clusterImages(sample.testDir, { k: 2, weighting: 'semi-supervised', normals: empty })).rejects.toMatchObject({ problem: 'normals-empty' });
    await expect(clusterImages(sample.testDir, { k: 2, weighting: 'semi-supervised', normals: path.join(tmp, 'nope') })).rejects.toMatchObject({ problem: 'normals-not-found' });
    await expect(clusterImages(sample.testDir, { k: 2, weighting: 'fancy' as never })).rejects.toThrow(RangeError);
    await expect(clusterImages(sample.testDir, { k: 2, linkage: 'nearest' as never })).rejects.toMatchObject({ code: 'ERR_INVALID_METHOD' });
    await expect(clusterImages(sample.testDir, { k: 2, weights: { tau: -1 } })).rejects.toThrow(RangeError);
    await expect(clusterImages(sample.testDir, { k: 2, resources: { backend: 'gpu' as never } })).rejects.toThrow(RangeError); // an OptionError, like every bad value
  });

  it('skips unreadable images with skipBad and fails without it', async () => {
    const d = path.join(tmp, 'withbad');
    cpSync(path.join(sample.testDir, 'spot'), path.join(d, 'spot'), { recursive: true });
    cpSync(path.join(sample.testDir, 'crack'), path.join(d, 'crack'), { recursive: true });
    writeFileSync(path.join(d, 'crack', 'broken.png'), 'not a png');
    await expect(clusterImages(d, { k: 2, weighting: 'uniform', features: { cacheDir: false } })).rejects.toMatchObject({ code: 'ERR_IMAGE' });
    const r = await clusterImages(d, { k: 2, weighting: 'uniform', features: { cacheDir: false, skipBad: true } });
    expect(r.n).toBe(6);
    expect(r.skipped.map((s) => path.basename(s.file))).toEqual(['broken.png']);
    expect(r.files.some((f) => f.endsWith('broken.png'))).toBe(false);
    // the unprojected pooled vectors are compacted with the bags: same embeddings as without the bad file
    const clean = await clusterImages(r.files, { k: 2, weighting: 'uniform', features: { cacheDir: false } });
    expect(r.d).toBe(1536);
    expect(r.embeddings).toEqual(clean.embeddings);
  });

  it('k = 1 and a single image work', async () => {
    const one = await clusterImages([sample.files[0]!.file], { k: 1, features: { cacheDir } });
    expect([...one.labels]).toEqual([0]);
    expect(one.Z.length).toBe(0);
    const all = await clusterImages(sample.testDir, { k: 1, weighting: 'uniform', features: { cacheDir } });
    expect(new Set(all.labels)).toEqual(new Set([0]));
  });

  it('honours an AbortSignal', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(clusterImages(sample.testDir, { k: 2, signal: ac.signal, features: { cacheDir } })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    const ac2 = new AbortController();
    const p = clusterImages(sample.testDir, { k: 2, signal: ac2.signal, ...small, onProgress: (e) => { if (e.stage === 'weights' && e.done > 0) ac2.abort(); }, features: { ...small.features, cacheDir }, weights: { chunkWork: 1 } });
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' });
  });
});
