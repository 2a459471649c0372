import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { availableBackends, getBackend } from '../../bindings/select.js';
import { checkWhiten, fitWhitening, whitenBank, WHITEN_SAMPLE } from '../../src/pipeline/whiten.js';
import { computeWeights, patchScores } from '../../src/pipeline/weighting.js';
import { DiskBags } from '../../src/pipeline/bank-store.js';
import type { FeatureBank } from '../../src/pipeline/types.js';
import { mulberry32 as rng } from '../../src/random.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'ac-whiten-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** n bags of m patches: x = A·z, z uniform in [−1, 1)^d, A a fixed random mixing (strongly correlated dims). */
function correlatedBank(n: number, m: number, d: number, seed: number): FeatureBank {
  const r = rng(seed);
  const a = Float64Array.from({ length: d * d }, (_, i) => (i % (d + 1) === 0 ? 2 : 0) + (r() - 0.5));
  const data = new Float32Array(n * m * d);
  const z = new Float64Array(d);
  for (let row = 0; row < n * m; row++) {
    for (let k = 0; k < d; k++) z[k] = r() * 2 - 1;
    for (let j = 0; j < d; j++) {
      let s = 0.3; // a common offset: whitening must not care
      for (let k = 0; k < d; k++) s += a[j * d + k]! * z[k]!;
      data[row * d + j] = s;
    }
  }
  const side = Math.sqrt(m);
  return { n, m, d, gridH: side, gridW: side, data, files: Array.from({ length: n }, (_, i) => `img${i}.png`), skipped: [], timings: {} };
}

/** Covariance (f64) of the rows of `x` (`· × d`). */
function covariance(x: Float32Array, d: number): Float64Array {
  const rows = x.length / d;
  const mu = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let k = 0; k < d; k++) mu[k]! += x[r * d + k]! / rows;
  const c = new Float64Array(d * d);
  for (let r = 0; r < rows; r++) {
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) c[a * d + b]! += ((x[r * d + a]! - mu[a]!) * (x[r * d + b]! - mu[b]!)) / rows;
  }
  return c;
}

/** Solves `C·v = b` (C symmetric positive definite, f64) by Gaussian elimination. */
function solve(c: Float64Array, b: Float64Array, d: number): Float64Array {
  const a = Float64Array.from(c);
  const v = Float64Array.from(b);
  for (let i = 0; i < d; i++) {
    for (let r = i + 1; r < d; r++) {
      const f = a[r * d + i]! / a[i * d + i]!;
      for (let k = i; k < d; k++) a[r * d + k]! -= f * a[i * d + k]!;
      v[r]! -= f * v[i]!;
    }
  }
  for (let i = d - 1; i >= 0; i--) {
    let s = v[i]!;
    for (let k = i + 1; k < d; k++) s -= a[i * d + k]! * v[k]!;
    v[i] = s / a[i * d + i]!;
  }
  return v;
}

const arr = (x: ArrayLike<number>) => Array.from(x);

describe('checkWhiten', () => {
  it('accepts false and a finite shrinkage > 0, rejects the rest', () => {
    expect(checkWhiten(false)).toBe(false);
    expect(checkWhiten(0.25)).toBe(0.25);
    for (const bad of [0, -1, NaN, Infinity, '1', true, null]) expect(() => checkWhiten(bad)).toThrow(RangeError);
  });
});

describe.each(availableBackends())('whitening on %s', (name) => {
  const be = getBackend(name);
  const d = 6;
  const bank = correlatedBank(12, 16, d, 5); // 192 patches: all of them are the sample

  it('with a tiny shrinkage the whitened patches have identity covariance', async () => {
    const w = (await fitWhitening(bank, 1e-9, be))!;
    expect(w.sampled).toBe(192);
    expect(w.d).toBe(d);
    for (let i = 0; i < d; i++) for (let j = i + 1; j < d; j++) expect(w.matrix[i * d + j]).toBe(0); // lower triangular
    const wb = await whitenBank(bank, w, be);
    const c = covariance(wb.data, d);
    for (let a = 0; a < d; a++) for (let b = 0; b < d; b++) expect(c[a * d + b]).toBeCloseTo(a === b ? 1 : 0, 3);
    // the raw covariance was far from it
    const raw = covariance(bank.data, d);
    expect(Math.max(...[1, 2, 3].map((k) => Math.abs(raw[k]!)))).toBeGreaterThan(0.05);
  });

  it('Euclidean distances of whitened patches are Mahalanobis distances under the shrunk covariance', async () => {
    const alpha = 1;
    const w = (await fitWhitening(bank, alpha, be))!;
    const wb = await whitenBank(bank, w, be);
    const c = covariance(bank.data, d);
    let tr = 0;
    for (let k = 0; k < d; k++) tr += c[k * d + k]!;
    for (let k = 0; k < d; k++) c[k * d + k]! += (alpha * tr) / d;
    for (const [p, q] of [[0, 1], [5, 100], [17, 191]] as const) {
      const diff = Float64Array.from({ length: d }, (_, k) => bank.data[p * d + k]! - bank.data[q * d + k]!);
      const maha = diff.reduce((s, v, k) => s + v * solve(c, diff, d)[k]!, 0);
      let e = 0;
      for (let k = 0; k < d; k++) e += (wb.data[p * d + k]! - wb.data[q * d + k]!) ** 2;
      expect(e).toBeCloseTo(maha, 4);
    }
  });

  it('copies by default, overwrites with inPlace, and matches the js backend', async () => {
    const copy = Float32Array.from(bank.data);
    const w = (await fitWhitening(bank, 1, be))!;
    const wb = await whitenBank(bank, w, be);
    expect(arr(bank.data)).toEqual(arr(copy)); // untouched
    const ref = await whitenBank(bank, (await fitWhitening(bank, 1, getBackend('js')))!, getBackend('js'));
    for (let i = 0; i < ref.data.length; i++) expect(wb.data[i]).toBeCloseTo(ref.data[i]!, 4);
    const own = { ...bank, data: Float32Array.from(bank.data) };
    const wi = await whitenBank(own, w, be, { inPlace: true });
    expect(wi.data).toBe(own.data);
    expect(arr(wi.data)).toEqual(arr(wb.data));
  });

  it('a streamed bank gets its own spill file; the original files are not touched', async () => {
    const dir = mkdtempSync(path.join(tmp, `stream-${name}-`));
    const store = new DiskBags(bank.n, bank.m, d, dir);
    for (let i = 0; i < bank.n; i++) store.addRows(i, bank.data.subarray(i * bank.m * d, (i + 1) * bank.m * d));
    const streamed: FeatureBank = { ...bank, data: new Float32Array(0), store };
    const w = (await fitWhitening(streamed, 1, be))!;
    expect(arr(w.matrix)).toEqual(arr((await fitWhitening(bank, 1, be))!.matrix)); // same sample, same fit
    const ws = await whitenBank(streamed, w, be, { spillDir: dir });
    expect(ws.store).toBeDefined();
    expect(ws.store).not.toBe(store);
    const mem = await whitenBank(bank, w, be);
    expect(arr(ws.store!.read(0, bank.n))).toEqual(arr(mem.data));
    expect(arr(store.read(0, bank.n))).toEqual(arr(bank.data)); // the original bags are unchanged
    expect(readdirSync(dir).length).toBe(2);
    ws.store!.close();
    expect(readdirSync(dir).length).toBe(1);
    store.close();
  });

  it('identical patches: nothing to whiten (null)', async () => {
    const flat = { ...bank, data: new Float32Array(bank.data.length).fill(0.5) };
    expect(await fitWhitening(flat, 1, be)).toBeNull();
  });

  it('samples at most WHITEN_SAMPLE patches, evenly', async () => {
    const big = { ...correlatedBank(1, 4, 2, 1), n: 1 };
    expect((await fitWhitening(big, 1, be))!.sampled).toBe(4);
    // a bank with more patches than the sample: the count is capped (data content does not matter here)
    const m = 256 * 2 + 4;
    const n = Math.ceil((WHITEN_SAMPLE * 1.5) / m);
    const r = rng(3);
    const huge: FeatureBank = { n, m, d: 2, gridH: 1, gridW: m, data: Float32Array.from({ length: n * m * 2 }, () => r()), files: [], skipped: [], timings: {} };
    const w = (await fitWhitening(huge, 1, be))!;
    expect(w.sampled).toBeLessThanOrEqual(WHITEN_SAMPLE);
    expect(w.sampled).toBeGreaterThan(WHITEN_SAMPLE / 2);
  });
});

describe('computeWeights whitens the weighted modes', () => {
  const be = getBackend(availableBackends()[0]!);
  const bank = correlatedBank(6, 9, 5, 11);

  it('unsupervised: the scores are those of the whitened bank; whiten: false keeps the raw ones', async () => {
    const w = await computeWeights(bank, { weighting: 'unsupervised', backend: be });
    expect(w.whitened).toEqual({ shrinkage: 1, sampled: 54 });
    const wb = await whitenBank(bank, (await fitWhitening(bank, 1, be))!, be);
    const expected = await patchScores(wb, 'unsupervised', { backend: be });
    for (let i = 0; i < expected.length; i++) expect(w.scores[i]).toBeCloseTo(expected[i]!, 4);
    // the embeddings are the weighted means of the whitened patches
    const emb = be.weightedMean(wb.data, Uint32Array.from({ length: 7 }, (_, i) => i * 9), 5, w.weights);
    for (let i = 0; i < emb.length; i++) expect(w.embeddings[i]).toBeCloseTo(emb[i]!, 4);
    const raw = await computeWeights(bank, { weighting: 'unsupervised', backend: be, whiten: false });
    expect(raw.whitened).toBe(false);
    expect(arr(raw.scores)).toEqual(arr(await patchScores(bank, 'unsupervised', { backend: be })));
    expect(arr(bank.data)).toEqual(arr(correlatedBank(6, 9, 5, 11).data)); // not in place by default
  });

  it('semi-supervised: the normals go through the same whitening', async () => {
    const normals = correlatedBank(3, 9, 5, 12);
    const w = await computeWeights(bank, { weighting: 'semi-supervised', normals, backend: be, whiten: 0.5 });
    const wh = (await fitWhitening(bank, 0.5, be))!;
    const expected = await patchScores(await whitenBank(bank, wh, be), 'semi-supervised', { backend: be, normals: await whitenBank(normals, wh, be) });
    for (let i = 0; i < expected.length; i++) expect(w.scores[i]).toBeCloseTo(expected[i]!, 4);
    expect(w.whitened).toEqual({ shrinkage: 0.5, sampled: 54 });
  });

  it('uniform and max are not whitened; a bad whiten option fails before any work', async () => {
    expect((await computeWeights(bank, { weighting: 'uniform', backend: be })).whitened).toBe(false);
    expect((await computeWeights(bank, { weighting: 'max', backend: be })).whitened).toBe(false);
    await expect(computeWeights(bank, { weighting: 'unsupervised', backend: be, whiten: 0 })).rejects.toThrow(RangeError);
    await expect(computeWeights(bank, { weighting: 'semi-supervised', backend: be })).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' });
  });

  it('inPlace overwrites the bank; an aborted signal stops the whitening', async () => {
    const own = correlatedBank(6, 9, 5, 11);
    const before = Float32Array.from(own.data);
    await computeWeights(own, { weighting: 'unsupervised', backend: be, whitenInPlace: true });
    expect(arr(own.data)).not.toEqual(arr(before));
    const ac = new AbortController();
    ac.abort();
    await expect(whitenBank(bank, (await fitWhitening(bank, 1, be))!, be, { signal: ac.signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(existsSync(tmp)).toBe(true);
  });
});
