/**
 * @file Single linkage via Prim's minimum spanning tree, O(n²) time, O(n) extra memory: SciPy's
 * `mst_single_linkage`, including its tie-breaking (the first unmerged point with the strictly smallest
 * distance wins), followed by the stable sort + union-find relabelling.
 * @module bindings/reference/linkage/mst
 */
import { condensedIndex } from '../condensed.js';
import { sortAndLabel } from './union-find.js';
import { degenerateLinkage } from './methods.js';

/** Single-linkage Z of the condensed f64 matrix `y` of `n ≥ 2` points. */
export function mstSingleLinkage(y: Float64Array, n: number): Float64Array {
  const z = new Float64Array(4 * (n - 1));
  const merged = new Uint8Array(n);
  const d = new Float64Array(n).fill(Infinity);
  let x = 0;
  let yy = 0;
  for (let k = 0; k < n - 1; k++) {
    let currentMin = Infinity;
    merged[x] = 1;
    for (let i = 0; i < n; i++) {
      if (merged[i] === 1) continue;
      const dist = y[condensedIndex(n, x, i)]!;
      if (d[i]! > dist) d[i] = dist;
      if (d[i]! < currentMin) {
        yy = i;
        currentMin = d[i]!;
      }
    }
    if (!(currentMin < Infinity)) throw degenerateLinkage('single', k);
    z[4 * k] = x;
    z[4 * k + 1] = yy;
    z[4 * k + 2] = currentMin;
    x = yy;
  }
  return sortAndLabel(z, n);
}
