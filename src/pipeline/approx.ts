/**
 * @file Approximate patch weighting (large image sets; the cost model in docs/performance.md): the knobs that trade
 * exactness for time or memory, each with a setting that gives back the exact result.
 *
 * - **f16 banks** ({@link f32ToF16}, {@link f16ToF32}): a look-up bank (the normal images of the semi-supervised
 *   scores, or their coreset) stored as IEEE binary16 (`Uint16Array`, round-to-nearest-even) and expanded to f32
 *   one chunk at a time for the kernel: half the memory of the bank. Relative rounding error ≤ 2⁻¹¹ per value.
 * - **Coreset of the normal bank** ({@link kCenterGreedy}): greedy k-center (farthest-point) selection of a
 *   subset of the normal patches (PatchCore's coreset). The semi-supervised score of a patch is then its distance
 *   to the nearest coreset patch, which over-estimates the exact score by at most the coverage radius of the
 *   coreset. The selection runs on a seeded Gaussian projection of the patches (`dim`, default
 *   {@link DEFAULT_CORESET_DIM}); the scores always use the full patches.
 * - **Reference subsets** of the unsupervised scores (`WeightingOptions.references`, in weighting.ts) and the
 *   automatic choice between exact and R references ({@link autoReferences}).
 *
 * The measured effect of each knob on NMI/ARI/F1 and time is in `benches/approx.mjs` (README "Approximations").
 * @module pipeline/approx
 */
import type { KernelBackend } from '../../bindings/backend.js';
import { KernelError } from '../errors.js';
import { gaussianProjection } from './aggregate.js';
import { mulberry32 as mulberry } from '../random.js';
import { throwIfAborted } from './context.js';

// ---------------------------------------------------------------------------------------------------------------
// f16

/** Storage precision of a look-up patch bank. */
export type BankPrecision = 'f32' | 'f16';
/** Runtime list of {@link BankPrecision}s. */
export const BANK_PRECISIONS = ['f32', 'f16'] as const;

const convF32 = new Float32Array(1);
const convU32 = new Uint32Array(convF32.buffer);

/** binary32 bits → binary16 bits, round to nearest, ties to even (NaN stays NaN, overflow → ±Infinity). */
function halfBits(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const fexp = f & 0x7f800000;
  if (fexp >= 0x47800000) {
    // |x| ≥ 65536, Infinity or NaN
    if (fexp === 0x7f800000 && (f & 0x7fffff) !== 0) return sign | 0x7e00;
    return sign | 0x7c00;
  }
  if (fexp <= 0x38000000) {
    // |x| < 2⁻¹⁴: a binary16 subnormal or zero
    if (fexp < 0x33000000) return sign; // < 2⁻²⁵: rounds to ±0
    const e = fexp >>> 23;
    let sig = 0x800000 + (f & 0x7fffff);
    const lost = sig & ((1 << (113 - e)) - 1); // bits shifted out below
    sig >>>= 113 - e;
    // round half to even: add half an ulp unless exactly a tie with an even result
    if ((sig & 0x3fff) !== 0x1000 || lost !== 0) sig += 0x1000;
    return sign | (sig >>> 13); // a carry into the exponent gives the smallest normal: correct
  }
  const hexp = (fexp - 0x38000000) >>> 13;
  let sig = f & 0x7fffff;
  if ((sig & 0x3fff) !== 0x1000) sig += 0x1000;
  return sign | (hexp + (sig >>> 13)); // a carry increments the exponent (up to Infinity): correct
}

/**
 * Converts f32 values to IEEE binary16 bit patterns, rounding to nearest, ties to even (as numpy's
 * `astype(float16)`): overflow (|x| ≥ 65520) gives ±Infinity, |x| < 2⁻²⁵ gives ±0, NaN stays NaN.
 * @param x values
 * @param out destination (length ≥ `x.length`), allocated when omitted
 */
export function f32ToF16(x: Float32Array, out: Uint16Array = new Uint16Array(x.length)): Uint16Array {
  if (out.length < x.length) throw new RangeError(`out: expected length ≥ ${x.length}, got ${out.length}`);
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < x.length; i++) out[i] = halfBits(bits[i]!);
  return out;
}

/** binary16 value of every bit pattern (256 KiB, built on first use). */
let halfTable: Float32Array | undefined;
function table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  halfTable = t;
  return t;
}

/**
 * Expands binary16 bit patterns to f32 (exact).
 * @param h bit patterns
 * @param out destination (length ≥ `h.length`), allocated when omitted
 */
export function f16ToF32(h: Uint16Array, out: Float32Array = new Float32Array(h.length)): Float32Array {
  if (out.length < h.length) throw new RangeError(`out: expected length ≥ ${h.length}, got ${out.length}`);
  const t = table();
  for (let i = 0; i < h.length; i++) out[i] = t[h[i]!]!;
  return out;
}

/** The f32 value nearest to `v` that binary16 represents (round trip through {@link f32ToF16}). */
export function roundToF16(v: number): number {
  convF32[0] = v;
  return table()[halfBits(convU32[0]!)]!;
}

/** Default rows of an f16 bank expanded to f32 per kernel call: 2²² values (16 MiB) / d. */
export const F16_CHUNK_VALUES = 1 << 22;

// ---------------------------------------------------------------------------------------------------------------
// Coreset

/**
 * Default dimension of the Gaussian projection on which the coreset is selected (PatchCore projects to 128).
 * Chosen from `benches/approx.mjs`: see README "Approximations".
 */
export const DEFAULT_CORESET_DIM = 64;

/**
 * Validates a coreset size (a fraction in (0, 1] or a count > 1) and resolves it to a number of rows.
 * `1` means 100 %; a count must be an integer; the result is clamped to `total` and is at least 1.
 * @throws {RangeError} for NaN, ≤ 0, Infinity or a non-integer count > 1
 */
export function coresetSize(coreset: number, total: number): number {
  if (typeof coreset !== 'number' || !Number.isFinite(coreset) || coreset <= 0 || (coreset > 1 && !Number.isSafeInteger(coreset))) {
    throw new RangeError(`coreset: expected a fraction in (0, 1] or an integer count > 1, got ${coreset}`);
  }
  const k = coreset <= 1 ? Math.ceil(coreset * total) : coreset;
  return Math.max(1, Math.min(total, k));
}

/** Options of {@link kCenterGreedy}. */
export interface KCenterOptions {
  /** Seed of the first centre and of the projection. @default 0 */
  seed?: number;
  /**
   * Select on a seeded Gaussian projection to this many dims (≥ d or `false`: on the rows themselves).
   * @default {@link DEFAULT_CORESET_DIM}
   */
  dim?: number | false;
  /** Backend for the projection (cdist) and the centre-to-centre distances of the pruning test. @default plain JS */
  backend?: KernelBackend;
  signal?: AbortSignal;
  /** Called every few hundred centres with (selected so far, k). */
  onProgress?: (done: number, k: number) => void;
}

/** Result of {@link kCenterGreedy}. */
export interface KCenterResult {
  /** Indices of the selected rows, in the order they were selected (the first is the seeded random start). */
  indices: Uint32Array;
  /** Coverage radius: max over rows of the distance to the nearest selected row (in the selection space). */
  radius: number;
}

/**
 * Greedy k-center (farthest-point, Gonzalez) selection of `k` of the `n` rows: start from a seeded random row,
 * then repeatedly add the row farthest from the selected ones. A 2-approximation of the optimal coverage radius.
 *
 * Exact greedy, accelerated with the triangle inequality: every row remembers its nearest centre `a` and distance
 * r; a new centre c can only come closer if ‖c − a‖ < 2r, so whole clusters whose centre is farther than twice
 * their radius from c are skipped (most of them after the first few hundred centres). Distances are computed in
 * f64 in JS; with a `backend`, the projection and the pruning distances come from its cdist kernel, so the
 * selection is deterministic for a given seed and backend (backends may differ in the last bits of the projection).
 * @param x rows, `n*d`
 * @throws {RangeError} k ∉ 1..n; {@link KernelError} `ERR_ABORTED`
 */
export function kCenterGreedy(x: Float32Array, n: number, d: number, k: number, options: KCenterOptions = {}): KCenterResult {
  const it = kCenterSteps(x, n, d, k, options);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
  }
}

/**
 * {@link kCenterGreedy} that yields to the event loop every 64 centres (so a long selection neither blocks timers
 * and I/O nor misses an abort). Same result.
 */
export async function kCenterGreedyAsync(x: Float32Array, n: number, d: number, k: number, options: KCenterOptions = {}): Promise<KCenterResult> {
  const it = kCenterSteps(x, n, d, k, options);
  for (;;) {
    const r = it.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/** The selection as a generator that pauses every 64 centres. */
function* kCenterSteps(x: Float32Array, n: number, d: number, k: number, options: KCenterOptions): Generator<void, KCenterResult, void> {
  const { seed = 0, dim = DEFAULT_CORESET_DIM, signal, onProgress } = options;
  if (!Number.isSafeInteger(k) || k < 1 || k > n) throw new RangeError(`k: expected an integer in 1..${n}, got ${k}`);
  if (dim !== false && (!Number.isSafeInteger(dim) || dim < 1)) throw new RangeError(`coresetDim: expected an integer ≥ 1 or false, got ${dim}`);
  let p = d;
  let y = x;
  if (dim !== false && dim < d) {
    p = dim;
    y = project(x, n, d, dim, seed, options.backend);
  }
  const rand = mulberry(seed * 0x9e3779b1 + 0x2545f491);
  const first = Math.min(n - 1, Math.floor(rand() * n));
  const centres = new Uint32Array(k);
  const cRows = new Float32Array(k * p); // centre rows, contiguous (for the backend's cdist)
  const assign = new Int32Array(n);
  const minD = new Float64Array(n);
  const members: number[][] = [];
  const radius: number[] = [];
  const far: number[] = [];
  const dist = (a: number, b: number): number => {
    let s = 0;
    const ra = a * p;
    const rb = b * p;
    for (let t = 0; t < p; t++) {
      const u = y[ra + t]! - y[rb + t]!;
      s += u * u;
    }
    return Math.sqrt(s);
  };
  const refresh = (j: number) => {
    let r = -1;
    let f = -1;
    for (const q of members[j]!) if (minD[q]! > r) { r = minD[q]!; f = q; }
    radius[j] = r;
    far[j] = f;
  };
  const addCentre = (j: number, c: number) => {
    centres[j] = c;
    cRows.set(y.subarray(c * p, (c + 1) * p), j * p);
  };
  addCentre(0, first);
  const all: number[] = new Array(n);
  for (let q = 0; q < n; q++) {
    minD[q] = dist(q, first);
    all[q] = q;
  }
  members.push(all);
  refresh(0);
  const cc = new Float64Array(k); // ‖new centre − centre j‖
  // A margin on the prune test so that f32 rounding of the backend's distances never prunes a real improvement.
  const slack = (v: number) => v * (1 + 1e-5) + 1e-12;
  for (let j = 1; j < k; j++) {
    if ((j & 63) === 0) {
      yield;
      throwIfAborted(signal, 'coreset');
    }
    let best = 0;
    for (let g = 1; g < j; g++) if (radius[g]! > radius[best]!) best = g;
    if (radius[best]! <= 0) {
      // every row coincides with a centre: fill with the remaining rows in index order (deterministic)
      const chosen = new Uint8Array(n);
      for (let g = 0; g < j; g++) chosen[centres[g]!] = 1;
      for (let q = 0, g = j; g < k; q++) if (!chosen[q]) addCentre(g++, q);
      break;
    }
    const c = far[best]!;
    addCentre(j, c);
    if (options.backend && j >= 64) {
      const dd = options.backend.cdist(cRows.subarray(j * p, (j + 1) * p), 1, cRows.subarray(0, j * p), j, p, false);
      for (let g = 0; g < j; g++) cc[g] = dd[g]!;
    } else {
      for (let g = 0; g < j; g++) cc[g] = dist(c, centres[g]!);
    }
    const mine: number[] = [];
    for (let g = 0; g < j; g++) {
      if (cc[g]! >= slack(2 * radius[g]!)) continue; // no row of cluster g can come closer to c
      const keep: number[] = [];
      let moved = false;
      for (const q of members[g]!) {
        if (cc[g]! < slack(2 * minD[q]!)) {
          const v = q === c ? 0 : dist(q, c);
          if (v < minD[q]!) {
            minD[q] = v;
            assign[q] = j;
            mine.push(q);
            moved = true;
            continue;
          }
        }
        keep.push(q);
      }
      if (moved) {
        members[g] = keep;
        refresh(g);
      }
    }
    members.push(mine);
    refresh(j);
    if (onProgress && (j & 255) === 0) onProgress(j, k);
  }
  let r = 0;
  for (let g = 0; g < members.length; g++) r = Math.max(r, radius[g]!);
  onProgress?.(k, k);
  return { indices: centres, radius: Math.max(0, r) };
}

/**
 * Rows `x` (`n × d`) times the seeded Gaussian projection `d × dim` (aggregate.ts). With a backend, the product
 * comes from its cdist kernel in blocks of rows: x·p = (‖x‖² + ‖p‖² − ‖x − p‖²) / 2 for every column p of the
 * projection (f32 rounding of the difference, ≈1e-6 here, is irrelevant to the selection); ≈20× faster than the
 * plain JS loop.
 */
function project(x: Float32Array, n: number, d: number, dim: number, seed: number, be?: KernelBackend): Float32Array {
  const P = gaussianProjection(d, dim, seed + 0x51);
  const out = new Float32Array(n * dim);
  if (be) {
    const cols = new Float32Array(dim * d); // Pᵀ: the columns of P as rows
    const cn = new Float64Array(dim);
    for (let t = 0; t < d; t++) for (let u = 0; u < dim; u++) cols[u * d + t] = P[t * dim + u]!;
    for (let u = 0; u < dim; u++) for (let t = 0; t < d; t++) cn[u]! += cols[u * d + t]! ** 2;
    const block = Math.max(1, Math.floor((1 << 22) / Math.max(d, dim)));
    for (let q0 = 0; q0 < n; q0 += block) {
      const q1 = Math.min(n, q0 + block);
      const sq = be.cdist(x.subarray(q0 * d, q1 * d), q1 - q0, cols, dim, d, true);
      for (let q = q0; q < q1; q++) {
        let xn = 0;
        for (let t = q * d; t < (q + 1) * d; t++) xn += x[t]! * x[t]!;
        const o = (q - q0) * dim;
        for (let u = 0; u < dim; u++) out[q * dim + u] = (xn + cn[u]! - sq[o + u]!) / 2;
      }
    }
    return out;
  }
  const acc = new Float64Array(dim);
  for (let q = 0; q < n; q++) {
    acc.fill(0);
    const r = q * d;
    for (let t = 0; t < d; t++) {
      const v = x[r + t]!;
      if (v === 0) continue;
      const pk = t * dim;
      for (let u = 0; u < dim; u++) acc[u]! += v * P[pk + u]!;
    }
    for (let u = 0; u < dim; u++) out[q * dim + u] = acc[u]!;
  }
  return out;
}

/** Copies rows `idx` of `x` (`· × d`) into a new array (in the order given). */
export function gatherRows(x: Float32Array, d: number, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * d);
  for (let i = 0; i < idx.length; i++) out.set(x.subarray(idx[i]! * d, (idx[i]! + 1) * d), i * d);
  return out;
}


// ---------------------------------------------------------------------------------------------------------------
// Automatic switch exact → R references

/**
 * Work (multiply-adds) above which {@link autoReferences} switches the unsupervised scores to R references:
 * 1e13 ≈ 5 CPU-minutes at the 3.5·10¹⁰ multiply-adds per CPU-second measured for the grouped NN search on AVX2
 * (MVTec bottle, 83 images × 784 patches × 256 dims = 1.08·10¹² in 31 CPU-s, `benches/approx.mjs`), i.e. ≈2.5 min
 * wall on 2 idle cores. With M = 784 and D = 256 that is N ≤ 252 exact. A fixed work budget rather than a timed
 * calibration run, so the decision is reproducible across runs and machines.
 */
export const DEFAULT_EXACT_WORK_LIMIT = 1e13;
/**
 * References per image when the automatic switch applies. On MVTec bottle R = 32 (of 82) stays within 0.02 of the
 * exact NMI/ARI/F1 with the smallest spread between seeds of the R tried (4, 8, 16, 32; benches/approx.mjs), at
 * 1/2.8 of the exact cost there; the cost of R references grows as N·R instead of N².
 */
export const DEFAULT_AUTO_REFERENCES = 32;

/** Decision of {@link autoReferences}. */
export interface AutoReferences {
  /** References per image, or `undefined` for exact. */
  references: number | undefined;
  /** Estimated multiply-adds of the exact scores, N²·M²·D. */
  exactWork: number;
  /** Human-readable reason (for progress output and `ClusterResult.approximations`); empty when exact. */
  message: string;
}

/**
 * Exact or R references for the unsupervised scores of `n` images of `m` patches of `d` dims: exact when the
 * estimated work N²·M²·D is at most `workLimit` (or when R ≥ N−1), else `references` reference images per image (evenly spaced, see `referenceImages`).
 * @param workLimit see {@link DEFAULT_EXACT_WORK_LIMIT}
 * @param references see {@link DEFAULT_AUTO_REFERENCES}
 */
export function autoReferences(n: number, m: number, d: number, workLimit = DEFAULT_EXACT_WORK_LIMIT,
  references = DEFAULT_AUTO_REFERENCES): AutoReferences {
  const exactWork = n * n * m * m * d;
  if (exactWork <= workLimit || references >= n - 1) return { references: undefined, exactWork, message: '' };
  const ratio = (n - 1) / references;
  return {
    references,
    exactWork,
    message: `unsupervised weights approximated: ${references} reference images per image instead of all ${n - 1} ` +
      `(exact would be ${exactWork.toExponential(1)} multiply-adds > ${workLimit.toExponential(0)}; ≈${ratio.toFixed(1)}× less work; ` +
      'pass references: \'exact\' to force exact)',
  };
}
