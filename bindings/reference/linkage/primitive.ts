/**
 * @file The slow, obviously-correct O(n³) oracle (SciPy's original `linkage`): at each step scan the whole
 * matrix for the lexicographically smallest pair (x, y), x < y, at the minimum distance, merge y into x's slot…
 * precisely: drop x, replace y by the new cluster. Kept public so the fast algorithms can be tested against it.
 * @module bindings/reference/linkage/primitive
 */
import type { LinkageMethod } from '../../backend.js';
import { condensedIndex } from '../condensed.js';
import { UPDATES } from './methods.js';

/** Z of the condensed f64 matrix `y` of `n ≥ 1` points, rows in merge order. */
export function primitiveLinkage(y: ArrayLike<number>, n: number, method: LinkageMethod): Float64Array {
  const z = new Float64Array(4 * Math.max(0, n - 1));
  const D = Float64Array.from(y);
  const idMap = new Int32Array(n);
  for (let i = 0; i < n; i++) idMap[i] = i;
  const update = UPDATES[method];
  const sizeOf = (id: number): number => (id < n ? 1 : z[4 * (id - n) + 3]!);
  for (let k = 0; k < n - 1; k++) {
    let currentMin = Infinity;
    let x = 0;
    let yy = 0;
    for (let i = 0; i < n - 1; i++) {
      if (idMap[i] === -1) continue;
      for (let j = i + 1; j < n; j++) {
        if (idMap[j] === -1) continue;
        const v = D[condensedIndex(n, i, j)]!;
        if (v < currentMin) {
          currentMin = v;
          x = i;
          yy = j;
        }
      }
    }
    const idX = idMap[x]!;
    const idY = idMap[yy]!;
    const nx = sizeOf(idX);
    const ny = sizeOf(idY);
    z[4 * k] = Math.min(idX, idY);
    z[4 * k + 1] = Math.max(idX, idY);
    z[4 * k + 2] = currentMin;
    z[4 * k + 3] = nx + ny;
    idMap[x] = -1;
    idMap[yy] = n + k;
    for (let i = 0; i < n; i++) {
      const idI = idMap[i]!;
      if (idI === -1 || idI === n + k) continue;
      D[condensedIndex(n, i, yy)] = update(D[condensedIndex(n, i, x)]!, D[condensedIndex(n, i, yy)]!, currentMin, nx, ny, sizeOf(idI));
    }
  }
  return z;
}
