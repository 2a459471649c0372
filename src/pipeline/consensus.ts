/**
 * @file Consensus clustering: several clusterings of the same images (one per weighting / normalisation, each cut
 * at a few K) vote on which images belong together. The co-association distance of images i and j is the share of
 * the clusterings that separate them; an average-linkage tree over it, cut at K, is the consensus. No single
 * weighting wins on every kind of image set (docs/quality.md): the vote keeps what most of them agree on.
 * Deterministic: every step is (ties resolved as SciPy resolves them).
 * @module pipeline/consensus
 */
import type { KernelBackend, LinkageMethod } from '../../bindings/backend.js';
import { KernelError } from '../errors.js';

/**
 * Condensed co-association distances (`n(n−1)/2`, SciPy's order): for each pair, the share of `partitions` that put
 * the two images in different clusters.
 * @throws {KernelError} `ERR_EMPTY` without partitions, `ERR_SHAPE_MISMATCH` when a partition is not of length n
 */
export function coAssociationDistances(partitions: readonly Int32Array[], n: number): Float64Array {
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
  const inv = 1 / partitions.length;
  for (let o = 0; o < y.length; o++) y[o]! *= inv;
  return y;
}

/**
 * The consensus of several clusterings: `method` linkage (default average) on the co-association distances.
 * @returns SciPy's linkage matrix Z of the consensus tree and its cut into `k` clusters
 */
export async function consensusClusters(partitions: readonly Int32Array[], n: number, k: number, be: KernelBackend,
  method: LinkageMethod = 'average'): Promise<{ Z: Float64Array; labels: Int32Array }> {
  const y = coAssociationDistances(partitions, n);
  if (n === 1) return { Z: new Float64Array(0), labels: new Int32Array(1) };
  const Z = await be.linkageAsync(y, n, method);
  return { Z, labels: be.cutK(Z, n, k) };
}
