/**
 * @file Ward linkage straight from the observation vectors (`ac_kernels::linkage::ward_from_vectors`): the
 * nearest-neighbour chain on cluster centroids, `O(n·d)` memory instead of the n(n−1)/2 condensed matrix,
 * `O(n²·d)` time. The Ward distance between clusters A and B is `sqrt(2|A||B|/(|A|+|B|)) · ‖c_A − c_B‖₂`, exactly
 * what SciPy's Lance–Williams `ward` update computes from Euclidean distances, so Z equals
 * `linkage(pdist(x), 'ward')` up to rounding.
 *
 * This is a line-by-line port of the Rust kernel, down to the order of the floating-point operations (f64
 * centroids, squared distance summed in 4 interleaved accumulators, the same tie-breaking: the previous chain
 * element wins a tie, then the lowest slot; merged cluster in the higher slot), so all three backends return the
 * **same Z bit for bit**.
 * @module bindings/reference/linkage/ward-vectors
 */
import { sortAndLabel } from './union-find.js';

/** Squared Euclidean distance of rows `a` and `b` of `c` (f64), with the Rust kernel's summation order. */
function sqdist(c: Float64Array, a: number, b: number, d: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  const full = d - (d % 4);
  let t = 0;
  for (; t < full; t += 4) {
    const u0 = c[a + t]! - c[b + t]!;
    const u1 = c[a + t + 1]! - c[b + t + 1]!;
    const u2 = c[a + t + 2]! - c[b + t + 2]!;
    const u3 = c[a + t + 3]! - c[b + t + 3]!;
    s0 += u0 * u0;
    s1 += u1 * u1;
    s2 += u2 * u2;
    s3 += u3 * u3;
  }
  let s = s0 + s1 + (s2 + s3);
  for (; t < d; t++) {
    const u = c[a + t]! - c[b + t]!;
    s += u * u;
  }
  return s;
}

/**
 * Ward Z of the `n ≥ 1` rows of `x` (`n*d`, row-major); inputs trusted (validated by the caller).
 * @param sizes row i is the centroid of `sizes[i]` observations (size-weighted Ward); absent = all 1
 * @returns `(n−1) × 4` SciPy linkage matrix (empty for n = 1; column 3 counts rows)
 */
export function wardFromVectorsRef(x: ArrayLike<number>, n: number, d: number, sizes?: ArrayLike<number>): Float64Array {
  if (n < 2) return new Float64Array(0);
  const c = Float64Array.from(x);
  const size = sizes ? Float64Array.from(sizes) : new Float64Array(n).fill(1);
  const chain = new Int32Array(n);
  const z = new Float64Array(4 * (n - 1));
  const wardSq = (p: number, q: number): number => {
    const np = size[p]!;
    const nq = size[q]!;
    return ((2 * np * nq) / (np + nq)) * sqdist(c, p * d, q * d, d);
  };
  let len = 0;
  for (let k = 0; k < n - 1; k++) {
    if (len === 0) {
      len = 1;
      let first = 0;
      while (first < n && size[first] === 0) first++;
      chain[0] = first;
    }
    let a: number;
    let b: number;
    let best: number;
    for (;;) {
      const tip = chain[len - 1]!;
      best = Infinity;
      let y = -1;
      for (let i = 0; i < n; i++) {
        if (i === tip || size[i] === 0) continue;
        const v = wardSq(tip, i);
        if (v < best) {
          best = v;
          y = i;
        }
      }
      if (len > 1) {
        const prev = chain[len - 2]!;
        const pv = wardSq(tip, prev);
        // The previous chain element wins ties (and NaN), as in SciPy's NN-chain.
        if (!(best < pv)) {
          best = pv;
          y = prev;
        }
        if (y === prev) {
          a = tip;
          b = y;
          break;
        }
      }
      chain[len++] = y;
    }
    len -= 2;
    if (a > b) [a, b] = [b, a];
    const na = size[a]!;
    const nb = size[b]!;
    z[4 * k] = a;
    z[4 * k + 1] = b;
    z[4 * k + 2] = Math.sqrt(best);
    z[4 * k + 3] = na + nb;
    const s = na + nb;
    for (let t = 0; t < d; t++) c[b * d + t] = (na * c[a * d + t]! + nb * c[b * d + t]!) / s;
    size[a] = 0;
    size[b] = s;
  }
  return sortAndLabel(z, n);
}
