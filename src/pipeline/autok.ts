/**
 * @file Automatic choice of the number of clusters K from the dendrogram and the image embeddings.
 *
 * Every candidate K in `2..kMax` (kMax clamped to n−1) gets a score under one criterion and the best one wins:
 * - `'height-gap'`: the relative gap between the merge heights around the cut. Cutting Z into K clusters keeps
 *   the first n−K merges; the cut lies between `lo = Z[n−K−1].height` (last merge kept) and `hi = Z[n−K].height`
 *   (first merge undone). Score `(hi − lo) / hi` ∈ [0, 1] (0 when `hi = 0`): a long stretch of the dendrogram with
 *   no merge, relative to its height. Free (reads Z only); ignores the embeddings.
 * - `'silhouette'`: the mean silhouette (Rousseeuw 1987) of the cut, Euclidean distances between the embeddings
 *   (the `pdist` kernel, or the `distances` given); a singleton's silhouette is 0 (scikit-learn's convention).
 *   O(n²) memory for the condensed matrix (row blocks through `cdist` when that would exceed `maxDistanceBytes`)
 *   and O(n²) time per candidate.
 * - `'calinski-harabasz'`: between-cluster over within-cluster dispersion, each divided by its degrees of freedom,
 *   `(B / (K−1)) / (W / (n−K))` (Caliński & Harabasz 1974), on the embeddings. O(n·d) per candidate.
 * - `'gap-statistic'`: Tibshirani, Walther & Hastie (2001): `Gap(K) = mean_b log W*_bK − log W_K` with W the
 *   pooled within-cluster sum of squares and W* that of `references` data sets drawn uniformly (seeded PRNG) in the
 *   box of the principal-component scores of the embeddings (their reference "b") and clustered with the same
 *   linkage; K is the smallest candidate with `Gap(K) ≥ Gap(K+1) − s(K+1)` (the "1-SE" rule; the arg-max of Gap
 *   when none qualifies). The costliest: a PCA (O(min(n, d)³)) and `references` extra linkages.
 *
 * Ties go to the smaller K. All criteria are deterministic. Degenerate inputs have a documented answer instead of
 * an error: with n ≤ 2 there is no candidate (silhouette needs 2 ≤ K ≤ n−1) and K = 1; when every merge height is
 * 0 (all embeddings identical) no K is better than another and K = 1, with every candidate scored 0.
 *
 * The default criterion, `'height-gap'`, was picked by `benches/autok.mjs` on MVTec bottle, MTD (with and without
 * normals) and the synthetic sample, each with unsupervised and max weighting (README, "Automatic number of
 * clusters"): closest to the true K on average, the best mean F1 of the resulting labels (mean ARI 0.33, the gap
 * statistic's 0.34), exact on MVTec with the paper's unsupervised weighting, free, and it needs no distance matrix
 * (so it also suits the `'vectors'` plan of very large sets). Silhouette and Caliński–Harabasz under-split (K = 2 on
 * most real sets); the gap statistic over-splits the weakly structured MTD embeddings (K = 17–20 on three of four
 * MTD rows) and costs seconds on 583 images.
 * @module pipeline/autok
 */
import type { BackendName, KernelBackend, LinkageMethod } from '../../bindings/backend.js';
import { LINKAGE_METHODS } from '../../bindings/backend.js';
import { resolveBackend } from './context.js';
import { KernelError } from '../errors.js';
import { mulberry32 } from '../random.js';

/** The criteria of {@link chooseK}. */
export const AUTO_K_CRITERIA = ['height-gap', 'silhouette', 'calinski-harabasz', 'gap-statistic'] as const;
/** A criterion of {@link chooseK} (see the module documentation). */
export type AutoKCriterion = (typeof AUTO_K_CRITERIA)[number];
/** The criterion used when none is given (chosen from `benches/autok.mjs`; see README). */
export const DEFAULT_AUTO_K_CRITERION: AutoKCriterion = 'height-gap';
/** Largest candidate K when `kMax` is not given (then clamped to n−1). */
export const DEFAULT_K_MAX = 20;

/** Options of {@link chooseK}. */
export interface AutoKOptions {
  /** @default {@link DEFAULT_AUTO_K_CRITERION} */
  criterion?: AutoKCriterion;
  /** Largest candidate K, an integer ≥ 2; clamped to n−1. @default {@link DEFAULT_K_MAX} */
  kMax?: number;
  /** `'gap-statistic'`: number of uniform reference data sets. @default 10 */
  references?: number;
  /** `'gap-statistic'`: seed of the reference data. @default 0 */
  seed?: number;
  /** `'gap-statistic'`: linkage used to cluster the reference data (use the one that made Z). @default 'ward' */
  linkage?: LinkageMethod;
  /**
   * `'silhouette'`: above this many bytes of condensed distances (4 per pair), the distances are computed in row
   * blocks of ≤ 64 MiB through `cdist` instead of one `pdist` (same scores, O(n) memory per row). @default 512 MiB
   */
  maxDistanceBytes?: number;
  /** Kernel backend (a name or a loaded backend). @default the first that loads */
  backend?: BackendName | KernelBackend;
}

/** What {@link chooseK} looked at. */
export interface AutoKInput {
  /** n rows of d values, row-major (the image embeddings). */
  embeddings: Float32Array;
  n: number;
  d: number;
  /** SciPy linkage matrix of the embeddings, `(n−1) × 4`. */
  Z: Float64Array;
  /** Condensed Euclidean distances of the embeddings, when already computed (saves a `pdist` for `'silhouette'`). */
  distances?: Float32Array | Float64Array;
}

/** One scored candidate. */
export interface KCandidate {
  k: number;
  /** The criterion's value at this K (higher is better, except that `'gap-statistic'` uses the 1-SE rule). */
  score: number;
  /** `'gap-statistic'` only: the standard error s(K) of the reference term. */
  se?: number;
}

/** The choice made by {@link chooseK}. */
export interface AutoK {
  criterion: AutoKCriterion;
  /** The chosen number of clusters (1 when there is no candidate or no structure, see the module doc). */
  chosen: number;
  /** The largest candidate after clamping (`min(kMax, n−1)`). */
  kMax: number;
  /** Every candidate K = 2..kMax in increasing order, with its score. */
  candidates: KCandidate[];
}

/**
 * Checks the options of {@link chooseK} that do not depend on the data.
 * @throws {RangeError} unknown criterion, kMax not an integer ≥ 2, references not an integer ≥ 1, bad linkage
 */
export function checkAutoKOptions(options: AutoKOptions | undefined): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object') throw new TypeError(`autoK options: expected an object, got ${options}`);
  const { criterion, kMax, references, linkage, seed, maxDistanceBytes } = options;
  if (criterion !== undefined && !(AUTO_K_CRITERIA as readonly string[]).includes(criterion)) {
    throw new RangeError(`criterion: expected one of ${AUTO_K_CRITERIA.join(', ')}, got ${JSON.stringify(criterion)}`);
  }
  if (kMax !== undefined && (typeof kMax !== 'number' || !Number.isSafeInteger(kMax) || kMax < 2)) {
    throw new RangeError(`kMax: expected an integer ≥ 2 (the largest candidate K), got ${typeof kMax === 'number' ? kMax : JSON.stringify(kMax)}`);
  }
  if (references !== undefined && (typeof references !== 'number' || !Number.isSafeInteger(references) || references < 1)) {
    throw new RangeError(`references: expected an integer ≥ 1, got ${JSON.stringify(references)}`);
  }
  if (seed !== undefined && (typeof seed !== 'number' || !Number.isSafeInteger(seed))) {
    throw new RangeError(`seed: expected an integer, got ${JSON.stringify(seed)}`);
  }
  if (linkage !== undefined && !(LINKAGE_METHODS as readonly string[]).includes(linkage)) {
    throw new RangeError(`linkage: expected one of ${LINKAGE_METHODS.join(', ')}, got ${JSON.stringify(linkage)}`);
  }
  if (maxDistanceBytes !== undefined && (typeof maxDistanceBytes !== 'number' || Number.isNaN(maxDistanceBytes) || maxDistanceBytes < 0)) {
    throw new RangeError(`maxDistanceBytes: expected a number ≥ 0, got ${maxDistanceBytes}`);
  }
}

function checkInput(input: AutoKInput): void {
  if (input === null || typeof input !== 'object') throw new TypeError('chooseK: expected {embeddings, n, d, Z}');
  const { embeddings, n, d, Z, distances } = input;
  if (!(embeddings instanceof Float32Array)) throw new TypeError('embeddings: expected a Float32Array of n*d values');
  if (!(Z instanceof Float64Array)) throw new TypeError('Z: expected a Float64Array ((n−1) × 4 linkage matrix)');
  if (!Number.isSafeInteger(n) || n < 1) throw new KernelError('ERR_EMPTY', `n: expected an integer ≥ 1, got ${n}`);
  if (!Number.isSafeInteger(d) || d < 1) throw new KernelError('ERR_EMPTY', `d: expected an integer ≥ 1, got ${d}`);
  if (embeddings.length !== n * d) throw new KernelError('ERR_SHAPE_MISMATCH', `embeddings: expected length ${n * d} (n*d), got ${embeddings.length}`);
  if (Z.length !== (n - 1) * 4) throw new KernelError('ERR_SHAPE_MISMATCH', `Z: expected length ${(n - 1) * 4} ((n−1)*4), got ${Z.length}`);
  if (distances !== undefined && distances.length !== (n * (n - 1)) / 2) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `distances: expected length ${(n * (n - 1)) / 2} (n(n−1)/2), got ${distances.length}`);
  }
}

/** The largest candidate K: `min(kMax, n−1)`. */
export function clampKMax(n: number, kMax = DEFAULT_K_MAX): number {
  return Math.max(1, Math.min(kMax, n - 1));
}

/** Index of the best score (ties → the first, i.e. the smallest K); −1 for none. */
function argmax(scores: number[]): number {
  let best = -1;
  for (let i = 0; i < scores.length; i++) if (best < 0 || scores[i]! > scores[best]!) best = i;
  return best;
}

/** `'height-gap'` scores for K = 2..kMax. */
export function heightGapScores(Z: Float64Array, n: number, kMax: number): number[] {
  const out: number[] = [];
  for (let k = 2; k <= kMax; k++) {
    const lo = Z[(n - k - 1) * 4 + 2]!;
    const hi = Z[(n - k) * 4 + 2]!;
    out.push(hi > 0 ? (hi - lo) / hi : 0);
  }
  return out;
}

/** Pooled within-cluster sum of squares of `labels` (k clusters) over rows `x` (n × d), in f64. */
export function withinSS(x: Float32Array, n: number, d: number, labels: Int32Array, k: number): number {
  const sum = new Float64Array(k * d);
  const cnt = new Float64Array(k);
  let sq = 0;
  for (let i = 0; i < n; i++) {
    const c = labels[i]!;
    cnt[c]! += 1;
    for (let j = 0; j < d; j++) {
      const v = x[i * d + j]!;
      sum[c * d + j]! += v;
      sq += v * v;
    }
  }
  // Σ‖x‖² − Σ_c ‖Σ_{i∈c} x_i‖² / n_c
  let between = 0;
  for (let c = 0; c < k; c++) {
    if (cnt[c] === 0) continue;
    let s = 0;
    for (let j = 0; j < d; j++) s += sum[c * d + j]! * sum[c * d + j]!;
    between += s / cnt[c]!;
  }
  return Math.max(0, sq - between);
}

/** `'calinski-harabasz'` scores of the given cuts (one label vector per K = 2..). */
export function calinskiHarabaszScores(x: Float32Array, n: number, d: number, cuts: Int32Array[]): number[] {
  // total SS about the grand mean = within SS of the one-cluster partition; computed centred for accuracy
  const mean = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j]! += x[i * d + j]!;
  for (let j = 0; j < d; j++) mean[j]! /= n;
  const xc = new Float32Array(n * d);
  let total = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) {
    const v = x[i * d + j]! - mean[j]!;
    xc[i * d + j] = v;
    total += v * v;
  }
  return cuts.map((labels, idx) => {
    const k = idx + 2;
    if (total <= 0 || k >= n) return 0;
    // W floored at a tiny fraction of T: perfectly tight clusters give a large finite score, not Infinity
    const w = Math.max(withinSS(xc, n, d, labels, k), 1e-12 * total);
    return ((total - w) / (k - 1)) / (w / (n - k));
  });
}

/**
 * Mean silhouette of each cut. `rows(i0, i1)` returns the distances of rows i0..i1−1 to all n rows
 * ((i1−i0) × n, row-major); one pass over the pairs serves every cut.
 */
function silhouetteFromRows(n: number, cuts: Int32Array[], rowBlock: number, rows: (i0: number, i1: number) => ArrayLike<number>): number[] {
  const ks = cuts.map((_, i) => i + 2);
  const sizes = cuts.map((lab, i) => {
    const s = new Float64Array(ks[i]!);
    for (let j = 0; j < n; j++) s[lab[j]!]! += 1;
    return s;
  });
  const totals = new Float64Array(cuts.length);
  for (let i0 = 0; i0 < n; i0 += rowBlock) {
    const i1 = Math.min(n, i0 + rowBlock);
    const D = rows(i0, i1);
    for (let c = 0; c < cuts.length; c++) {
      const lab = cuts[c]!;
      const k = ks[c]!;
      const size = sizes[c]!;
      const acc = new Float64Array(k);
      for (let i = i0; i < i1; i++) {
        acc.fill(0);
        const off = (i - i0) * n;
        for (let j = 0; j < n; j++) acc[lab[j]!]! += D[off + j]!;
        const own = lab[i]!;
        if (size[own]! <= 1) continue; // singleton: s = 0
        const a = acc[own]! / (size[own]! - 1);
        let b = Infinity;
        for (let q = 0; q < k; q++) if (q !== own && size[q]! > 0) b = Math.min(b, acc[q]! / size[q]!);
        const m = Math.max(a, b);
        if (m > 0) totals[c]! += (b - a) / m;
      }
    }
  }
  return [...totals].map((t) => t / n);
}

/** Mean silhouette of each cut from a condensed distance vector (SciPy layout). */
export function silhouetteScores(y: ArrayLike<number>, n: number, cuts: Int32Array[]): number[] {
  const block = Math.max(1, Math.min(n, Math.floor((1 << 22) / Math.max(1, n))));
  const buf = new Float64Array(block * n);
  return silhouetteFromRows(n, cuts, block, (i0, i1) => {
    for (let i = i0; i < i1; i++) {
      const off = (i - i0) * n;
      buf[off + i] = 0;
      // column i of rows a < i, then row i itself (SciPy condensed index n·a − a(a+1)/2 + (b − a − 1))
      for (let a = 0; a < i; a++) buf[off + a] = y[n * a - (a * (a + 1)) / 2 + (i - a - 1)]!;
      const start = n * i - (i * (i + 1)) / 2 - i - 1;
      for (let b = i + 1; b < n; b++) buf[off + b] = y[start + b]!;
    }
    return buf;
  });
}


/**
 * Eigen-decomposition of a symmetric `m × m` matrix `a` (row-major, overwritten) by cyclic Jacobi rotations.
 * @returns the eigenvalues (diagonal) and the eigenvectors as the columns of `v` (`m × m`, row-major)
 */
export function symmetricEigen(a: Float64Array, m: number): { values: Float64Array; v: Float64Array } {
  const v = new Float64Array(m * m);
  for (let i = 0; i < m; i++) v[i * m + i] = 1;
  for (let sweep = 0; sweep < 60; sweep++) {
    let off = 0;
    let diag = 0;
    for (let p = 0; p < m; p++) {
      diag += a[p * m + p]! ** 2;
      for (let q = p + 1; q < m; q++) off += a[p * m + q]! ** 2;
    }
    if (off <= 1e-24 * diag || off === 0) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = a[p * m + q]!;
        if (apq === 0) continue;
        const theta = (a[q * m + q]! - a[p * m + p]!) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < m; k++) { // columns p, q
          const akp = a[k * m + p]!;
          const akq = a[k * m + q]!;
          a[k * m + p] = c * akp - sn * akq;
          a[k * m + q] = sn * akp + c * akq;
        }
        for (let k = 0; k < m; k++) { // rows p, q
          const apk = a[p * m + k]!;
          const aqk = a[q * m + k]!;
          a[p * m + k] = c * apk - sn * aqk;
          a[q * m + k] = sn * apk + c * aqk;
        }
        for (let k = 0; k < m; k++) {
          const vkp = v[k * m + p]!;
          const vkq = v[k * m + q]!;
          v[k * m + p] = c * vkp - sn * vkq;
          v[k * m + q] = sn * vkp + c * vkq;
        }
      }
    }
  }
  const values = new Float64Array(m);
  for (let i = 0; i < m; i++) values[i] = a[i * m + i]!;
  return { values, v };
}

/**
 * Principal-component scores of the rows of `x` (n × d), centred: `n × r` (row-major) with r the number of
 * non-negligible components. Through the `n × n` Gram matrix when n ≤ d, else the `d × d` scatter matrix:
 * O(min(n, d)³) for the eigen-decomposition.
 */
export function pcaScores(x: Float32Array, n: number, d: number): { scores: Float64Array; r: number } {
  const xc = new Float64Array(n * d);
  for (let j = 0; j < d; j++) {
    let m = 0;
    for (let i = 0; i < n; i++) m += x[i * d + j]!;
    m /= n;
    for (let i = 0; i < n; i++) xc[i * d + j] = x[i * d + j]! - m;
  }
  const gram = n <= d;
  const m = gram ? n : d;
  const a = new Float64Array(m * m);
  if (gram) {
    for (let i = 0; i < n; i++) for (let k = i; k < n; k++) {
      let s = 0;
      for (let j = 0; j < d; j++) s += xc[i * d + j]! * xc[k * d + j]!;
      a[i * n + k] = s;
      a[k * n + i] = s;
    }
  } else {
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) {
      const v = xc[i * d + j]!;
      if (v === 0) continue;
      for (let k = j; k < d; k++) a[j * d + k]! += v * xc[i * d + k]!;
    }
    for (let j = 0; j < d; j++) for (let k = j + 1; k < d; k++) a[k * d + j] = a[j * d + k]!;
  }
  const { values, v } = symmetricEigen(a, m);
  const top = Math.max(0, ...values);
  const keep = [...values.keys()].filter((i) => values[i]! > 1e-10 * top);
  const r = keep.length;
  const scores = new Float64Array(n * r);
  keep.forEach((c, col) => {
    if (gram) {
      // Gram = U S² Uᵀ: scores = U S
      const sv = Math.sqrt(values[c]!);
      for (let i = 0; i < n; i++) scores[i * r + col] = v[i * m + c]! * sv;
    } else {
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < d; j++) s += xc[i * d + j]! * v[j * m + c]!;
        scores[i * r + col] = s;
      }
    }
  });
  return { scores, r };
}

/** Cuts of Z into K = 2..kMax clusters. */
function cutsOf(be: KernelBackend, Z: Float64Array, n: number, kMax: number): Int32Array[] {
  const out: Int32Array[] = [];
  for (let k = 2; k <= kMax; k++) out.push(be.cutK(Z, n, k));
  return out;
}

/** `'gap-statistic'`: Gap(K) and s(K) for K = 2..kMax+1 (one extra, for the 1-SE rule at kMax). */
function gapStatistic(be: KernelBackend, x: Float32Array, n: number, d: number, Z: Float64Array, kMax: number,
  B: number, seed: number, linkage: LinkageMethod): { gap: number[]; se: number[] } {
  const kTop = Math.min(kMax + 1, n);
  const logW = (data: Float32Array, z: Float64Array, dim = d) => {
    const out: number[] = [];
    for (let k = 2; k <= kTop; k++) out.push(Math.log(Math.max(withinSS(data, n, dim, be.cutK(z, n, k), k), 1e-300)));
    return out;
  };
  const obs = logW(x, Z);
  // Tibshirani's reference (b): uniform in the box of the principal-component scores. Within-cluster sums of
  // squares and Euclidean linkages are rotation-invariant, so the reference stays in PC coordinates (r ≤ n−1 dims).
  const { scores: pcs, r } = pcaScores(x, n, d);
  const lo = new Float64Array(r).fill(Infinity);
  const hi = new Float64Array(r).fill(-Infinity);
  for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) {
    lo[j] = Math.min(lo[j]!, pcs[i * r + j]!);
    hi[j] = Math.max(hi[j]!, pcs[i * r + j]!);
  }
  const rand = mulberry32(seed);
  const refs: number[][] = [];
  for (let b = 0; b < B; b++) {
    const ref = new Float32Array(n * r);
    for (let i = 0; i < n; i++) for (let j = 0; j < r; j++) ref[i * r + j] = lo[j]! + rand() * (hi[j]! - lo[j]!);
    const z = linkage === 'ward' ? be.wardFromVectors(ref, n, r) : be.linkage(be.pdist(ref, n, r, false), n, linkage);
    refs.push(logW(ref, z, r));
  }
  const gap: number[] = [];
  const se: number[] = [];
  for (let i = 0; i < obs.length; i++) {
    let m = 0;
    for (const r of refs) m += r[i]!;
    m /= B;
    let v = 0;
    for (const r of refs) v += (r[i]! - m) ** 2;
    gap.push(m - obs[i]!);
    se.push(Math.sqrt(v / B) * Math.sqrt(1 + 1 / B));
  }
  return { gap, se };
}

function decide(criterion: AutoKCriterion, candidates: KCandidate[], next?: KCandidate): number {
  if (candidates.length === 0) return 1;
  if (criterion === 'gap-statistic') {
    // 1-SE rule: the smallest K with Gap(K) ≥ Gap(K+1) − s(K+1)
    for (let i = 0; i < candidates.length; i++) {
      const nx = candidates[i + 1] ?? next;
      if (nx && candidates[i]!.score >= nx.score - (nx.se ?? 0)) return candidates[i]!.k;
    }
  }
  return candidates[argmax(candidates.map((c) => c.score))]!.k;
}

/** Shared by {@link chooseK} and {@link chooseKAsync}: everything but the distance matrix. */
function choose(input: AutoKInput, options: AutoKOptions, be: KernelBackend, y: (() => Float32Array | Float64Array) | undefined): AutoK {
  const { embeddings: x, n, d, Z } = input;
  const criterion = options.criterion ?? DEFAULT_AUTO_K_CRITERION;
  const kMax = clampKMax(n, options.kMax);
  let maxH = 0;
  for (let r = 0; r < n - 1; r++) maxH = Math.max(maxH, Math.abs(Z[r * 4 + 2]!));
  const ks: number[] = [];
  for (let k = 2; k <= kMax; k++) ks.push(k);
  if (ks.length === 0) return { criterion, chosen: 1, kMax, candidates: [] };
  if (maxH === 0) return { criterion, chosen: 1, kMax, candidates: ks.map((k) => ({ k, score: 0 })) };

  let scores: number[];
  let se: number[] | undefined;
  let gapNext: KCandidate | undefined;
  switch (criterion) {
    case 'height-gap':
      scores = heightGapScores(Z, n, kMax);
      break;
    case 'calinski-harabasz':
      scores = calinskiHarabaszScores(x, n, d, cutsOf(be, Z, n, kMax));
      break;
    case 'silhouette': {
      const cuts = cutsOf(be, Z, n, kMax);
      if (y) {
        scores = silhouetteScores(y(), n, cuts);
      } else {
        // condensed matrix over budget: distances of row blocks to all rows through cdist
        const block = Math.max(1, Math.min(n, Math.floor((64 * 2 ** 20) / 4 / n)));
        scores = silhouetteFromRows(n, cuts, block, (i0, i1) => be.cdist(x.subarray(i0 * d, i1 * d), i1 - i0, x, n, d, false));
      }
      break;
    }
    case 'gap-statistic': {
      const g = gapStatistic(be, x, n, d, Z, kMax, options.references ?? 10, options.seed ?? 0, options.linkage ?? 'ward');
      scores = g.gap.slice(0, ks.length);
      se = g.se.slice(0, ks.length);
      if (g.gap.length > ks.length) gapNext = { k: kMax + 1, score: g.gap[ks.length]!, se: g.se[ks.length]! };
      break;
    }
  }
  const candidates: KCandidate[] = ks.map((k, i) => (se ? { k, score: scores[i]!, se: se[i]! } : { k, score: scores[i]! }));
  return { criterion, chosen: decide(criterion, candidates, gapNext), kMax, candidates };
}

function distanceBudget(n: number, options: AutoKOptions): boolean {
  return ((n * (n - 1)) / 2) * 4 <= (options.maxDistanceBytes ?? 512 * 2 ** 20);
}

/**
 * Chooses the number of clusters K of a dendrogram (see the module documentation for the criteria).
 * @param input the embeddings (`n × d`), their linkage matrix Z and optionally their condensed distances
 * @param options criterion, kMax, backend, gap-statistic settings
 * @returns the chosen K and every candidate's score
 * @throws {RangeError} bad options (unknown criterion, kMax not an integer ≥ 2, …)
 * @throws {TypeError} / {KernelError} `ERR_SHAPE_MISMATCH` for inputs of the wrong type or size
 * @example
 * const Z = linkage(pdist(x, { d }), { method: 'ward' }).Z;
 * const { chosen, candidates } = chooseK({ embeddings: x, n, d, Z }, { criterion: 'silhouette' });
 */
export function chooseK(input: AutoKInput, options: AutoKOptions = {}): AutoK {
  checkAutoKOptions(options);
  checkInput(input);
  const be = resolveBackend(options.backend);
  const { embeddings: x, n, d, distances } = input;
  const y = distances ? () => distances : distanceBudget(n, options) ? () => be.pdist(x, n, d, false) : undefined;
  return choose(input, options, be, y);
}

/** Asynchronous {@link chooseK}: the distance matrix (silhouette) is computed off the main thread on native. */
export async function chooseKAsync(input: AutoKInput, options: AutoKOptions = {}): Promise<AutoK> {
  checkAutoKOptions(options);
  checkInput(input);
  const be = resolveBackend(options.backend);
  const { embeddings: x, n, d, distances } = input;
  let y = distances;
  if (!y && (options.criterion ?? DEFAULT_AUTO_K_CRITERION) === 'silhouette' && n > 2 && distanceBudget(n, options)) {
    y = await be.pdistAsync(x, n, d, false);
  }
  return choose(input, options, be, y ? () => y! : distanceBudget(n, options) ? () => be.pdist(x, n, d, false) : undefined);
}
