/**
 * @file Clustering quality against ground-truth classes: NMI (arithmetic-mean normalisation, scikit-learn's
 * default), adjusted Rand index, and F1 = micro-F1 after an optimal one-to-one matching of clusters to classes
 * (Hungarian algorithm; equals clustering accuracy). Checked against scikit-learn in `test/pipeline/metrics.test.ts`.
 * @module pipeline/metrics
 */
import { KernelError } from '../errors.js';

/** The three scores of {@link evaluate}. */
export interface Metrics {
  /** Normalised mutual information, arithmetic mean of the entropies as normaliser, in [0, 1]. */
  nmi: number;
  /** Adjusted Rand index, in [−0.5, 1]. */
  ari: number;
  /** Micro-F1 after Hungarian matching of clusters to classes (= clustering accuracy), in [0, 1]. */
  f1: number;
}

/** A label vector: predicted clusters or true classes; any values that compare with `===` after `String()`-free keying. */
export type Labels = ArrayLike<number> | readonly (string | number)[];

/**
 * Encodes arbitrary labels as dense 0-based integers in order of first appearance.
 * @returns `codes` (length n) and the number of distinct values `k`
 */
export function encodeLabels(labels: Labels): { codes: Int32Array; k: number; values: (string | number)[] } {
  const map = new Map<string | number, number>();
  const codes = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i] as string | number;
    let c = map.get(v);
    if (c === undefined) {
      c = map.size;
      map.set(v, c);
    }
    codes[i] = c;
  }
  return { codes, k: map.size, values: [...map.keys()] };
}

/**
 * Contingency table of two encodings: `rows × cols`, row-major, counts.
 */
function contingency(a: Int32Array, ka: number, b: Int32Array, kb: number): Float64Array {
  const t = new Float64Array(ka * kb);
  for (let i = 0; i < a.length; i++) t[a[i]! * kb + b[i]!]! += 1;
  return t;
}

/** Entropy (natural log) of a count vector summing to n. */
function entropy(counts: ArrayLike<number>, n: number): number {
  let h = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c > 0) h -= (c / n) * Math.log(c / n);
  }
  return h;
}

/**
 * Normalised mutual information with arithmetic-mean normalisation, as scikit-learn's
 * `normalized_mutual_info_score(truth, labels)`. Both partitions trivial (one cluster each, or identical
 * one-cluster labellings) give 1, as in scikit-learn.
 */
export function nmi(labels: Labels, truth: Labels): number {
  checkPair(labels, truth);
  const a = encodeLabels(labels);
  const b = encodeLabels(truth);
  const n = labels.length;
  // scikit-learn's limit case: neither labelling splits the data (zero entropies) — a perfect match.
  if (a.k === 1 && b.k === 1) return 1;
  const t = contingency(a.codes, a.k, b.codes, b.k);
  const ra = new Float64Array(a.k);
  const cb = new Float64Array(b.k);
  for (let i = 0; i < a.k; i++) for (let j = 0; j < b.k; j++) {
    ra[i]! += t[i * b.k + j]!;
    cb[j]! += t[i * b.k + j]!;
  }
  let mi = 0;
  for (let i = 0; i < a.k; i++) for (let j = 0; j < b.k; j++) {
    const nij = t[i * b.k + j]!;
    if (nij > 0) mi += (nij / n) * Math.log((nij * n) / (ra[i]! * cb[j]!));
  }
  const ha = entropy(ra, n);
  const hb = entropy(cb, n);
  // sklearn: if either labelling is a single cluster (and not both), MI = 0 → NMI 0.
  if (mi === 0) return 0;
  const norm = (ha + hb) / 2;
  // sklearn clips the denominator at machine epsilon
  const v = mi / Math.max(norm, Number.EPSILON);
  return Math.min(Math.max(v, 0), 1);
}

/**
 * Adjusted Rand index (Hubert & Arabie), as scikit-learn's `adjusted_rand_score`. Equal trivial partitions give 1.
 */
export function ari(labels: Labels, truth: Labels): number {
  checkPair(labels, truth);
  const a = encodeLabels(labels);
  const b = encodeLabels(truth);
  const n = labels.length;
  const t = contingency(a.codes, a.k, b.codes, b.k);
  const ra = new Float64Array(a.k);
  const cb = new Float64Array(b.k);
  let sumSq = 0;
  for (let i = 0; i < a.k; i++) for (let j = 0; j < b.k; j++) {
    const nij = t[i * b.k + j]!;
    ra[i]! += nij;
    cb[j]! += nij;
    sumSq += nij * nij;
  }
  let sa = 0;
  let sb = 0;
  for (const v of ra) sa += v * v;
  for (const v of cb) sb += v * v;
  // scikit-learn's pair confusion matrix (ordered pairs), then its closed form of the ARI.
  const tp = sumSq - n;
  const fp = sa - sumSq; // same cluster, different class
  const fn = sb - sumSq; // same class, different cluster
  const tn = n * n - fp - fn - sumSq;
  if (fn === 0 && fp === 0) return 1;
  return (2 * (tp * tn - fn * fp)) / ((tp + fn) * (fn + tn) + (tp + fp) * (fp + tn));
}

/**
 * Minimum-cost assignment (Hungarian algorithm, Jonker–Volgenant style shortest augmenting paths with
 * potentials, O(r² c)) on a rectangular `rows × cols` cost matrix. Every row is assigned when rows ≤ cols;
 * otherwise the problem is solved on the transpose and every column is assigned.
 * @param cost row-major, size `rows*cols`, finite
 * @returns `rowToCol` (length rows, −1 for an unassigned row) and the total cost
 */
export function hungarian(cost: ArrayLike<number>, rows: number, cols: number): { rowToCol: Int32Array; cost: number } {
  if (cost.length !== rows * cols) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `hungarian: expected cost of length ${rows * cols} (rows*cols), got ${cost.length}`);
  }
  if (rows > cols) {
    const tr = new Float64Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) tr[j * rows + i] = cost[i * cols + j]!;
    const sub = hungarian(tr, cols, rows);
    const rowToCol = new Int32Array(rows).fill(-1);
    for (let j = 0; j < cols; j++) {
      const i = sub.rowToCol[j]!;
      if (i >= 0) rowToCol[i] = j;
    }
    return { rowToCol, cost: sub.cost };
  }
  // rows ≤ cols. 1-based arrays as in the classic e-maxx formulation.
  const INF = Number.POSITIVE_INFINITY;
  const u = new Float64Array(rows + 1);
  const v = new Float64Array(cols + 1);
  const p = new Int32Array(cols + 1); // p[j] = row assigned to column j (1-based), 0 = none
  const way = new Int32Array(cols + 1);
  const minv = new Float64Array(cols + 1);
  const used = new Uint8Array(cols + 1);
  for (let i = 1; i <= rows; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(INF);
    used.fill(0);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = INF;
      let j1 = 0;
      for (let j = 1; j <= cols; j++) {
        if (used[j]) continue;
        const cur = cost[(i0 - 1) * cols + (j - 1)]! - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= cols; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else {
          minv[j]! -= delta;
        }
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const rowToCol = new Int32Array(rows).fill(-1);
  let total = 0;
  for (let j = 1; j <= cols; j++) {
    if (p[j]! > 0) {
      rowToCol[p[j]! - 1] = j - 1;
      total += cost[(p[j]! - 1) * cols + (j - 1)]!;
    }
  }
  return { rowToCol, cost: total };
}

/**
 * Clustering accuracy = micro-F1 after the best one-to-one matching of clusters to classes (Hungarian on the
 * contingency table). With more clusters than classes (or fewer) the unmatched ones count as wrong.
 * @returns also the matching: `clusterToClass[c]` is the class value cluster c maps to, or `null`.
 */
export function matchedF1(labels: Labels, truth: Labels): { f1: number; clusterToClass: (string | number | null)[] } {
  checkPair(labels, truth);
  const a = encodeLabels(labels);
  const b = encodeLabels(truth);
  const t = contingency(a.codes, a.k, b.codes, b.k);
  const negated = new Float64Array(t.length);
  for (let i = 0; i < t.length; i++) negated[i] = -t[i]!;
  const { rowToCol, cost } = hungarian(negated, a.k, b.k);
  const clusterToClass: (string | number | null)[] = new Array(a.k).fill(null);
  // report it keyed by the original cluster values' order of first appearance
  for (let i = 0; i < a.k; i++) clusterToClass[i] = rowToCol[i]! >= 0 ? b.values[rowToCol[i]!]! : null;
  return { f1: labels.length === 0 ? 0 : -cost / labels.length, clusterToClass };
}

/**
 * Scores a flat clustering against the true classes.
 * @param labels predicted cluster of each item (length n), any integers or strings
 * @param truth true class of each item (length n), strings or numbers
 * @returns `{nmi, ari, f1}` (see {@link Metrics})
 * @throws {KernelError} `ERR_SHAPE_MISMATCH` when the lengths differ, `ERR_EMPTY` when n = 0
 */
export function evaluate(labels: Labels, truth: Labels): Metrics {
  checkPair(labels, truth);
  return { nmi: nmi(labels, truth), ari: ari(labels, truth), f1: matchedF1(labels, truth).f1 };
}

function checkPair(labels: Labels, truth: Labels): void {
  if (labels == null || typeof labels.length !== 'number') throw new TypeError('labels: expected an array');
  if (truth == null || typeof truth.length !== 'number') throw new TypeError('truth: expected an array');
  if (labels.length !== truth.length) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `labels and truth must have the same length: got ${labels.length} and ${truth.length}`);
  }
  if (labels.length === 0) throw new KernelError('ERR_EMPTY', 'labels: expected at least one item, got 0');
}
