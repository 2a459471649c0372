/**
 * @file Reference Euclidean distances. Each distance is Σ(a−b)² accumulated in f64 straight from the
 * coordinates (no ‖a‖²+‖b‖²−2a·b expansion), then square-rooted unless `squared`, then stored as f32. This is
 * the most accurate form; the SIMD backends are compared against it with a tolerance relative to the norms.
 * @module bindings/reference/distance
 */
import type { TableMethods } from '../backend.js';
import { expectFlag } from '../validate.js';
import { expectRows } from './checks.js';

/** Squared Euclidean distance between row `i` of `a` and row `j` of `b` (both of dimension `d`), in f64. */
export function sqDist(a: Float32Array, i: number, b: Float32Array, j: number, d: number): number {
  let s = 0;
  const oa = i * d;
  const ob = j * d;
  for (let k = 0; k < d; k++) {
    const t = a[oa + k]! - b[ob + k]!;
    s += t * t;
  }
  return s;
}

/** Condensed pairwise distances of `n` rows of `x` (`n*d`): SciPy layout, length n(n−1)/2. Inputs are trusted. */
export function pdistRef(x: Float32Array, n: number, d: number, squared: boolean): Float32Array {
  const out = new Float32Array((n * (n - 1)) / 2);
  let p = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const s = sqDist(x, i, x, j, d);
      out[p++] = squared ? s : Math.sqrt(s);
    }
  }
  return out;
}

/** Distances between `nq` rows of `q` and `nb` rows of `b`: `nq × nb`, row-major. Inputs are trusted. */
export function cdistRef(q: Float32Array, nq: number, b: Float32Array, nb: number, d: number, squared: boolean): Float32Array {
  const out = new Float32Array(nq * nb);
  for (let i = 0; i < nq; i++) {
    for (let j = 0; j < nb; j++) {
      const s = sqDist(q, i, b, j, d);
      out[i * nb + j] = squared ? s : Math.sqrt(s);
    }
  }
  return out;
}

/** The table kernels `pdist` and `cdist`: the checks of the Rust kernels, then the reference above. */
export const kernels = {
  pdist(x, n, d, squared) {
    expectRows('x', x, n, d);
    expectFlag('pdist', 'squared', squared);
    return pdistRef(x, n, d, squared);
  },
  cdist(q, nq, b, nb, d, squared) {
    expectRows('queries', q, nq, d);
    expectRows('base', b, nb, d);
    expectFlag('cdist', 'squared', squared);
    return cdistRef(q, nq, b, nb, d, squared);
  },
} satisfies Partial<TableMethods>;
