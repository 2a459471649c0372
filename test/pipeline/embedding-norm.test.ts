import { describe, expect, it } from 'vitest';
import { checkEmbeddingNorm, normaliseEmbeddings } from '../../src/pipeline/embedding-norm.js';
import { getBackend } from '../../bindings/select.js';
import { evaluate } from '../../src/pipeline/metrics.js';

/** Deterministic pseudo-random numbers in [0, 1). */
function rand(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return s / 2 ** 32;
  };
}

const norm = (x: Float32Array, i: number, d: number) => Math.hypot(...x.subarray(i * d, (i + 1) * d));

describe('normaliseEmbeddings', () => {
  it("'center-l2' subtracts the column means and scales each row to unit length", () => {
    const x = new Float32Array([1, 2, 3, 4, 5, 6, 10, 2, 0]);
    const y = normaliseEmbeddings(x, 3, 3, 'center-l2');
    const mean = [5, 3, 3];
    for (let i = 0; i < 3; i++) {
      const c = [0, 1, 2].map((k) => x[i * 3 + k]! - mean[k]!);
      const l = Math.hypot(...c);
      for (let k = 0; k < 3; k++) expect(y[i * 3 + k]).toBeCloseTo(c[k]! / l, 6);
      expect(norm(y, i, 3)).toBeCloseTo(1, 6);
    }
    expect(x).toEqual(new Float32Array([1, 2, 3, 4, 5, 6, 10, 2, 0])); // input untouched
  });

  it("'l2-center-l2' (the default) scales the rows to unit length first, then centres and scales again", () => {
    const x = new Float32Array([3, 4, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0]); // lengths 5, 0, 1, 2
    const y = normaliseEmbeddings(x, 4, 3, 'l2-center-l2');
    expect(normaliseEmbeddings(x, 4, 3)).toEqual(y);
    const unit = [[0.6, 0.8, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0]]; // the all-zero row stays zero before centring
    const mean = [0, 1, 2].map((k) => unit.reduce((s, r) => s + r[k]!, 0) / 4);
    for (let i = 0; i < 4; i++) {
      const c = unit[i]!.map((v, k) => v - mean[k]!);
      const l = Math.hypot(...c);
      for (let k = 0; k < 3; k++) expect(y[i * 3 + k]).toBeCloseTo(c[k]! / l, 6);
    }
    // unlike 'center-l2', it ignores each image's own scale
    const scaled = x.map((v, j) => v * [7, 1, 0.01, 300][Math.floor(j / 3)]!);
    const ys = normaliseEmbeddings(scaled, 4, 3, 'l2-center-l2');
    for (let j = 0; j < 12; j++) expect(ys[j]).toBeCloseTo(y[j]!, 5);
    expect(normaliseEmbeddings(scaled, 4, 3, 'center-l2')).not.toEqual(normaliseEmbeddings(x, 4, 3, 'center-l2'));
  });

  it("'none' returns the input itself; a row equal to the mean becomes zeros", () => {
    const x = new Float32Array([1, 1, 3, 3, 2, 2]);
    expect(normaliseEmbeddings(x, 3, 2, 'none')).toBe(x);
    const y = normaliseEmbeddings(x, 3, 2, 'center-l2');
    expect([...y.subarray(4)]).toEqual([0, 0]);
    expect(y[0]).toBeCloseTo(-Math.SQRT1_2, 6);
    expect([...normaliseEmbeddings(new Float32Array([5, 7]), 1, 2)]).toEqual([0, 0]); // one image: all mean
    expect([...normaliseEmbeddings(new Float32Array([5, 7]), 1, 2, 'center-l2')]).toEqual([0, 0]);
  });

  it("'center-l2' is invariant to a common offset and both to scaling of the whole set", () => {
    const r = rand(3);
    const n = 20, d = 16;
    const x = Float32Array.from({ length: n * d }, () => r() * 2 - 1);
    const shifted = x.map((v, j) => v + 3 + (j % d) * 0.25);
    const scaled = x.map((v) => v * 1000);
    const a = normaliseEmbeddings(x, n, d, 'center-l2');
    const b = normaliseEmbeddings(shifted, n, d, 'center-l2');
    const c = normaliseEmbeddings(scaled, n, d, 'center-l2');
    const a2 = normaliseEmbeddings(x, n, d, 'l2-center-l2');
    const c2 = normaliseEmbeddings(scaled, n, d, 'l2-center-l2');
    for (let j = 0; j < n * d; j++) expect(c2[j]).toBeCloseTo(a2[j]!, 6);
    for (let j = 0; j < n * d; j++) {
      expect(b[j]).toBeCloseTo(a[j]!, 5);
      expect(c[j]).toBeCloseTo(a[j]!, 6);
    }
  });

  it('groups by the direction of the departure from the average, not by its size (Ward)', async () => {
    // 200 near-normal images around m, 15 of defect type A (m + s·u) and 15 of type B (m + s·v), s from 2 to 30:
    // on the raw vectors Ward splits strong from faint defects; centred and normalised it recovers the types.
    const be = getBackend('js');
    const r = rand(9);
    const d = 8, m = [2, 1, 0.5, 3, 1, 1, 2, 0.2];
    const u = [1, 0, 0, 0, 0, 0, 0, 0], v = [0, 1, 0, 0, 0, 0, 0, 0];
    const rows: number[][] = [];
    const truth: string[] = [];
    for (let i = 0; i < 200; i++) { rows.push(m.map((x) => x + (r() - 0.5) * 0.02)); truth.push('good'); }
    for (const [t, dir] of [['A', u], ['B', v]] as const) {
      for (let i = 0; i < 15; i++) {
        const s = 2 * 15 ** (i / 14);
        rows.push(m.map((x, k) => x + s * dir[k]! + (r() - 0.5) * 0.02));
        truth.push(t);
      }
    }
    const n = rows.length;
    const x = Float32Array.from(rows.flat());
    const cluster = (e: Float32Array) => be.cutK(be.linkage(be.pdist(e, n, d, false), n, 'ward'), n, 3);
    const raw = evaluate(cluster(x), truth).nmi;
    expect(raw).toBeLessThan(0.8);
    expect(evaluate(cluster(normaliseEmbeddings(x, n, d, 'center-l2')), truth).nmi).toBeGreaterThan(0.95);
    expect(evaluate(cluster(normaliseEmbeddings(x, n, d)), truth).nmi).toBeGreaterThan(0.95);
  });

  it("'l2-center-l2' also ignores a per-image gain that 'center-l2' does not (Ward)", async () => {
    // 3 types × 30 images, each m + 0.3·e_t, times a per-image gain g in [0.3, 3] (exposure, contrast): the gain
    // moves images along m, which centring alone keeps; scaling to unit length first removes it.
    const be = getBackend('js');
    const r = rand(17);
    const d = 6, m = [1, 1, 1, 1, 0.5, 0.5];
    const rows: number[][] = [];
    const truth: string[] = [];
    for (let t = 0; t < 3; t++) {
      for (let i = 0; i < 30; i++) {
        const g = 0.3 * 10 ** r();
        rows.push(m.map((x, k) => g * (x + (k === t ? 0.3 : 0) + (r() - 0.5) * 0.02)));
        truth.push(`T${t}`);
      }
    }
    const n = rows.length;
    const x = Float32Array.from(rows.flat());
    const cluster = (e: Float32Array) => be.cutK(be.linkage(be.pdist(e, n, d, false), n, 'ward'), n, 3);
    expect(evaluate(cluster(x), truth).nmi).toBeLessThan(0.5);
    expect(evaluate(cluster(normaliseEmbeddings(x, n, d, 'center-l2')), truth).nmi).toBeLessThan(0.5);
    expect(evaluate(cluster(normaliseEmbeddings(x, n, d, 'l2-center-l2')), truth).nmi).toBeGreaterThan(0.95);
  });

  it('rejects bad arguments with RangeError', () => {
    expect(() => checkEmbeddingNorm('l2')).toThrow(RangeError);
    expect(checkEmbeddingNorm('l2-center-l2')).toBe('l2-center-l2');
    expect(() => normaliseEmbeddings(new Float32Array([1, Infinity]), 1, 2, 'l2-center-l2')).toThrow(/not finite/);
    expect(() => normaliseEmbeddings(new Float32Array(5), 2, 3)).toThrow(/n·d/);
    expect(() => normaliseEmbeddings(new Float32Array([1, NaN]), 1, 2)).toThrow(/not finite/);
    expect(() => normaliseEmbeddings(new Float32Array(4), 2, 2, 'cosine' as never)).toThrow(RangeError);
    expect(normaliseEmbeddings(new Float32Array(0), 0, 4).length).toBe(0);
  });
});
