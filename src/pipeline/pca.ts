/**
 * @file The projection of the patch features to fewer dimensions: the top principal subspace of the set's own
 * patch covariance, estimated on an evenly spaced sample of its images. Deterministic: the basis is a function of
 * the sampled images' features alone (no random matrix, no seed), computed with a fixed sequence of single-precision
 * products (onnxruntime's MLAS sgemm, which does not split the inner dimension across threads) and double-precision
 * orthonormalisation, so the same images give the same basis on every run.
 *
 * Why a projection at all: the unsupervised scores cost O(N²·M²·D); 1536 → 256 dimensions cuts them 6×. Why PCA
 * rather than a random matrix: a random projection's distortion moved single quality rows by up to ±0.1 NMI with its
 * seed (docs/quality.md); the principal subspace keeps the directions along which the set's patches actually differ.
 * @module pipeline/pca
 */
import { createHash } from 'node:crypto';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** Images sampled (evenly spaced over the input order) to estimate the patch covariance. */
export const PCA_SAMPLE_IMAGES = 24;
/** Subspace-iteration steps after the starting block. */
export const PCA_ITERATIONS = 8;

/** A fitted projection: rows are mapped as `x ↦ x·P`. */
export interface ProjectionBasis {
  /** `dIn × dOut`, row-major, orthonormal columns spanning the top principal subspace. */
  matrix: Float32Array;
  dIn: number;
  dOut: number;
  /** First 16 hex digits of the SHA-256 of the matrix bytes (part of the feature-cache key). */
  key: string;
  /** Images and patches the covariance was estimated on. */
  images: number;
  patches: number;
  /** Share of the sampled patches' total variance that the subspace keeps. */
  explained: number;
}

/** Indices of `s` images evenly spaced over `n` (all of them when `n ≤ s`), ascending. */
export function pcaSample(n: number, s = PCA_SAMPLE_IMAGES): number[] {
  if (n <= s) return Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: s }, (_, k) => Math.floor(((k + 0.5) * n) / s));
}

type Kind = 'gram' | 'matmul';
const sessions = new Map<Kind, Promise<ort.InferenceSession>>();
/** `gram`: xᵀ·x for x (R × D); `matmul`: a·b. One onnxruntime session each, memoised. */
function session(kind: Kind): Promise<ort.InferenceSession> {
  let s = sessions.get(kind);
  if (!s) {
    const f32 = (name: string, dims: (string | number)[]) => ({
      name, type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
    });
    const graph = kind === 'gram'
      ? { node: [{ name: 'g', opType: 'Gemm', input: ['x', 'x'], output: ['y'], attribute: [{ name: 'transA', type: 2, i: 1 }] }], input: [f32('x', ['R', 'D'])] }
      : { node: [{ name: 'm', opType: 'MatMul', input: ['a', 'b'], output: ['y'] }], input: [f32('a', ['R', 'K']), f32('b', ['K', 'C'])] };
    const model = onnx.ModelProto.create({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      producerName: 'anomaly-clustering',
      graph: { name: kind, ...graph, output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }] },
    } as never);
    s = ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
    sessions.set(kind, s);
  }
  return s;
}

/** Accumulates the covariance of rows of dimension `d` given in chunks (sums in double precision). */
export class CovarianceAccumulator {
  private readonly xtx: Float64Array;
  private readonly sum: Float64Array;
  rows = 0;
  constructor(readonly d: number) {
    this.xtx = new Float64Array(d * d);
    this.sum = new Float64Array(d);
  }

  /** Adds `count` rows (`count × d`, row-major). */
  async add(x: Float32Array, count: number): Promise<void> {
    const { d } = this;
    if (count === 0) return;
    if (x.length < count * d) throw new RangeError(`covariance: expected ${count}×${d} values, got ${x.length}`);
    // in blocks of rows: onnxruntime runs on this thread, so a block is ≈ 50 ms of work between event-loop turns
    const gram = await session('gram');
    const block = Math.max(1, Math.floor(2e8 / (d * d)));
    for (let r0 = 0; r0 < count; r0 += block) {
      const r1 = Math.min(count, r0 + block);
      const g = (await gram.run({ x: new ort.Tensor('float32', x.subarray(r0 * d, r1 * d), [r1 - r0, d]) })).y!.data as Float32Array;
      for (let i = 0; i < d * d; i++) this.xtx[i]! += g[i]!;
      await new Promise((resolve) => setImmediate(resolve));
    }
    for (let r = 0; r < count; r++) {
      const o = r * d;
      for (let j = 0; j < d; j++) this.sum[j]! += x[o + j]!;
    }
    this.rows += count;
  }

  /** The covariance matrix (`d × d`, divided by rows − 1). */
  covariance(): Float64Array {
    const { d, rows } = this;
    if (rows < 2) throw new RangeError(`covariance: expected at least 2 rows, got ${rows}`);
    const c = new Float64Array(d * d);
    for (let i = 0; i < d; i++) {
      for (let j = 0; j < d; j++) c[i * d + j] = (this.xtx[i * d + j]! - (this.sum[i]! * this.sum[j]!) / rows) / (rows - 1);
    }
    return c;
  }
}

/**
 * Orthonormalises the `k` columns of `q` (`d × k`, column-major: column j at `j·d`) in place, by modified
 * Gram–Schmidt applied twice. A column that vanishes (rank deficiency) is replaced by the first unit vector e_i
 * that is not in the span of the previous columns.
 */
export function orthonormalise(q: Float64Array, d: number, k: number): void {
  orthonormaliseColumns(q, d, k, 0, k, { nextUnit: 0 });
}

/** Columns `from..to` of {@link orthonormalise} (against all previous ones); `state` carries the unit-vector cursor. */
function orthonormaliseColumns(q: Float64Array, d: number, k: number, from: number, to: number, state: { nextUnit: number }): void {
  for (let j = from; j < to; j++) {
    const cj = q.subarray(j * d, (j + 1) * d);
    for (let attempt = 0; ; attempt++) {
      const before = norm(cj);
      for (let pass = 0; pass < 2; pass++) {
        for (let i = 0; i < j; i++) {
          const ci = q.subarray(i * d, (i + 1) * d);
          let dot = 0;
          for (let t = 0; t < d; t++) dot += ci[t]! * cj[t]!;
          for (let t = 0; t < d; t++) cj[t]! -= dot * ci[t]!;
        }
      }
      const nrm = norm(cj);
      if (nrm > 1e-9 * Math.max(before, 1e-300) && nrm > 0) {
        for (let t = 0; t < d; t++) cj[t]! /= nrm;
        break;
      }
      if (state.nextUnit >= d || attempt > d) throw new RangeError(`orthonormalise: cannot find ${k} independent directions in ${d} dimensions`);
      cj.fill(0);
      cj[state.nextUnit++] = 1;
    }
  }
}

/** {@link orthonormalise}, yielding to the event loop every few columns (≈ 10⁸ flops per call at d = 1536, k = 256). */
async function orthonormaliseAsync(q: Float64Array, d: number, k: number): Promise<void> {
  const state = { nextUnit: 0 };
  const step = Math.max(1, Math.floor(4e6 / Math.max(1, d * k)));
  for (let j = 0; j < k; j += step) {
    orthonormaliseColumns(q, d, k, j, Math.min(k, j + step), state);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

function norm(v: Float64Array): number {
  let s = 0;
  for (let t = 0; t < v.length; t++) s += v[t]! * v[t]!;
  return Math.sqrt(s);
}

/**
 * The top-`k` principal subspace of a covariance matrix `c` (`d × d`, symmetric) by subspace iteration: start from
 * the columns of `c` with the largest variances (ties: lower index), then `iterations` steps of Q ← orth(C·Q).
 * @returns the basis `d × k` row-major (for `x·P`) and the share of the trace it keeps
 */
export async function principalSubspace(c: Float64Array, d: number, k: number, iterations = PCA_ITERATIONS): Promise<{ matrix: Float32Array; explained: number }> {
  if (!Number.isSafeInteger(k) || k < 1 || k > d) throw new RangeError(`principal subspace: expected 1 ≤ k ≤ ${d}, got ${k}`);
  const c32 = Float32Array.from(c);
  const order = Array.from({ length: d }, (_, i) => i).sort((a, b) => c[b * d + b]! - c[a * d + a]! || a - b);
  let q = new Float64Array(d * k); // column-major
  for (let j = 0; j < k; j++) {
    const src = order[j]!;
    for (let t = 0; t < d; t++) q[j * d + t] = c[t * d + src]!;
  }
  await orthonormaliseAsync(q, d, k);
  const mm = await session('matmul');
  const cT = new ort.Tensor('float32', c32, [d, d]);
  let cq: Float32Array = new Float32Array(d * k);
  for (let it = 0; it <= iterations; it++) {
    // Q as row-major d × k for the product
    const qr = new Float32Array(d * k);
    for (let j = 0; j < k; j++) for (let t = 0; t < d; t++) qr[t * k + j] = q[j * d + t]!;
    cq = (await mm.run({ a: cT, b: new ort.Tensor('float32', qr, [d, k]) })).y!.data as Float32Array;
    if (it === iterations) break;
    const next = new Float64Array(d * k);
    for (let t = 0; t < d; t++) for (let j = 0; j < k; j++) next[j * d + t] = cq[t * k + j]!;
    await orthonormaliseAsync(next, d, k);
    q = next;
  }
  let kept = 0;
  let total = 0;
  for (let t = 0; t < d; t++) total += c[t * d + t]!;
  for (let j = 0; j < k; j++) for (let t = 0; t < d; t++) kept += q[j * d + t]! * cq[t * k + j]!;
  const matrix = new Float32Array(d * k);
  for (let j = 0; j < k; j++) for (let t = 0; t < d; t++) matrix[t * k + j] = q[j * d + t]!;
  return { matrix, explained: total > 0 ? kept / total : 0 };
}

/** Wraps a fitted matrix as a {@link ProjectionBasis} (computes its key). */
export function projectionBasis(matrix: Float32Array, dIn: number, dOut: number, images: number, patches: number, explained: number): ProjectionBasis {
  if (matrix.length !== dIn * dOut) throw new RangeError(`projection: expected ${dIn}×${dOut} values, got ${matrix.length}`);
  const key = createHash('sha256').update(new Uint8Array(matrix.buffer, matrix.byteOffset, matrix.byteLength)).digest('hex').slice(0, 16);
  return { matrix, dIn, dOut, key, images, patches, explained };
}

/** Checks a user-given basis against the backbone's raw dimension. */
export function checkProjectionBasis(p: ProjectionBasis, dRaw: number): void {
  if (p == null || typeof p !== 'object' || !(p.matrix instanceof Float32Array)) throw new TypeError('projection: expected a ProjectionBasis (FeatureBank.projection of another extraction)');
  if (p.dIn !== dRaw || p.matrix.length !== p.dIn * p.dOut || !(p.dOut >= 1)) {
    throw new RangeError(`projection: expected a ${dRaw}-row basis (the backbone's dimension), got ${p.dIn}×${p.dOut} with ${p.matrix.length} values`);
  }
}
