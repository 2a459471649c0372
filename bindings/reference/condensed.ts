/**
 * @file SciPy's condensed distance layout: for `n` points, the upper triangle row by row, length n(n−1)/2.
 * @module bindings/reference/condensed
 */

/** Index of the pair (i, j), i ≠ j, both < n, in a condensed vector of `n` points (symmetric: order does not matter). */
export function condensedIndex(n: number, i: number, j: number): number {
  if (i > j) {
    const t = i;
    i = j;
    j = t;
  }
  return n * i - (i * (i + 1)) / 2 + (j - i - 1);
}

/** The number of points whose condensed vector has `len` entries, or -1 when `len` is not triangular. `len = 0` gives 1. */
export function numObs(len: number): number {
  if (!Number.isSafeInteger(len) || len < 0) return -1;
  const n = Math.round((1 + Math.sqrt(1 + 8 * len)) / 2);
  return (n * (n - 1)) / 2 === len ? n : -1;
}
