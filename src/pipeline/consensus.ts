/**
 * @file Consensus clustering: several clusterings of the same images (one per weighting / normalisation, each cut
 * at a few K) vote on which images belong together. The co-association distance of images i and j is the share of
 * the clusterings that separate them; an average-linkage tree over it, cut at K, is the consensus. No single
 * weighting wins on every kind of image set (docs/quality.md): the vote keeps what most of them agree on.
 * Deterministic: every step is (ties resolved as SciPy resolves them).
 *
 * The average linkage here keeps, for each pair of clusters, the exact integer count of separating votes summed over
 * their image pairs, and compares count / (size·size) ratios: co-association distances are full of exact ties, and
 * the usual floating-point update (SciPy's, and the kernels', which match it bit for bit) can then break the
 * reducibility the nearest-neighbour chain relies on: measured on MTD (583 images, 5 clusterings) it produced a
 * merge of 595 images and an infinite height.
 * @module pipeline/consensus
 */
import type { KernelBackend } from '../../bindings/backend.js';
import { KernelError } from '../errors.js';
import { condensedIndex } from '../../bindings/reference/condensed.js';
import { sortAndLabel } from '../../bindings/reference/linkage/union-find.js';

/**
 * Separating-vote counts (condensed `n(n−1)/2`, SciPy's order; integers): for each pair, how many of `partitions`
 * put the two images in different clusters.
 * @throws {KernelError} `ERR_EMPTY` without partitions, `ERR_SHAPE_MISMATCH` when a partition is not of length n
 */
export function separatingCounts(partitions: readonly Int32Array[], n: number): Float64Array {
  if (partitions.length === 0) throw new KernelError('ERR_EMPTY', 'consensus: expected at least one partition, got 0');
  for (const [p, labels] of partitions.entries()) {
    if (labels.length !== n) throw new KernelError('ERR_SHAPE_MISMATCH', `consensus: partition ${p} has ${labels.length} labels, expected ${n}`);
  }
  const y = new Float64Array((n * (n - 1)) / 2);
  for (const labels of partitions) {
    let o = 0;
    for (let i = 0; i < n; i++) {
      const li = labels[i]!;
      for (let j = i + 1; j < n; j++, o++) if (labels[j] !== li) y[o]! += 1;
    }
  }
  return y;
}

/**
 * Condensed co-association distances: {@link separatingCounts} as shares of the partitions.
 * @throws {KernelError} as `separatingCounts`
 */
export function coAssociationDistances(partitions: readonly Int32Array[], n: number): Float64Array {
  const y = separatingCounts(partitions, n);
  const inv = 1 / partitions.length;
  for (let o = 0; o < y.length; o++) y[o]! *= inv;
  return y;
}

/**
 * Average linkage (UPGMA) of `n ≥ 2` points from integer pair counts, exactly: S(a, b) = the sum of the counts
 * over the pairs of clusters a and b (integer, exact in double precision below 2^53), distance = S / (|a|·|b|·p).
 * Nearest-neighbour chain with SciPy's tie rule (the previous chain element wins, else the lowest index);
 * merges stably sorted by height and relabelled as SciPy does.
 */
export function averageLinkageFromCounts(counts: Float64Array, n: number, p: number): Float64Array {
  const z = new Float64Array(4 * (n - 1));
  const S = Float64Array.from(counts);
  const size = new Int32Array(n).fill(1);
  const chain = new Int32Array(n);
  const dist = (a: number, b: number) => S[condensedIndex(n, a, b)]! / (size[a]! * size[b]!);
  let len = 0;
  for (let k = 0; k < n - 1; k++) {
    if (len === 0) {
      for (let i = 0; i < n; i++) if (size[i]! > 0) { chain[len++] = i; break; }
    }
    let x = 0;
    let y = 0;
    let best: number;
    for (;;) {
      x = chain[len - 1]!;
      if (len > 1) {
        y = chain[len - 2]!;
        best = dist(x, y);
      } else {
        best = Infinity;
      }
      for (let i = 0; i < n; i++) {
        if (size[i] === 0 || i === x) continue;
        const d = dist(x, i);
        if (d < best) {
          best = d;
          y = i;
        }
      }
      if (len > 1 && y === chain[len - 2]) break;
      chain[len++] = y;
    }
    len -= 2;
    if (x > y) [x, y] = [y, x];
    const nx = size[x]!;
    const ny = size[y]!;
    z[4 * k] = x;
    z[4 * k + 1] = y;
    z[4 * k + 2] = best / p;
    z[4 * k + 3] = nx + ny;
    // y becomes the union: its sums with every other cluster are the two sums added (exact)
    for (let i = 0; i < n; i++) {
      if (size[i] === 0 || i === x || i === y) continue;
      S[condensedIndex(n, i, y)] = S[condensedIndex(n, i, x)]! + S[condensedIndex(n, i, y)]!;
    }
    size[x] = 0;
    size[y] = nx + ny;
  }
  return sortAndLabel(z, n);
}

/**
 * The consensus of several clusterings: exact average linkage on the co-association distances
 * ({@link averageLinkageFromCounts}), cut into `k` clusters by the backend.
 * @returns SciPy's linkage matrix Z of the consensus tree and its cut into `k` clusters
 */
export async function consensusClusters(partitions: readonly Int32Array[], n: number, k: number, be: KernelBackend): Promise<{ Z: Float64Array; labels: Int32Array }> {
  const counts = separatingCounts(partitions, n);
  if (n === 1) return { Z: new Float64Array(0), labels: new Int32Array(1) };
  const Z = averageLinkageFromCounts(counts, n, partitions.length);
  return { Z, labels: be.cutK(Z, n, k) };
}
