/**
 * @file Nearest-neighbour chain, O(n²): SciPy's `nn_chain` for the reducible methods (complete, average,
 * weighted, ward), with its tie-breaking: the previous chain element is preferred as the minimum (so the chain
 * cannot cycle), otherwise the first cluster with a strictly smaller distance wins. The merges are then stably
 * sorted by height and relabelled with union-find.
 * @module bindings/reference/linkage/nn-chain
 */
import type { LinkageMethod } from '../../backend.js';
import { condensedIndex } from '../condensed.js';
import { degenerateLinkage, UPDATES } from './methods.js';
import { sortAndLabel } from './union-find.js';

/** Z of the condensed f64 matrix `y` of `n ≥ 2` points for a reducible method. */
export function nnChainLinkage(y: Float64Array, n: number, method: LinkageMethod): Float64Array {
  const z = new Float64Array(4 * (n - 1));
  const D = Float64Array.from(y);
  const size = new Int32Array(n).fill(1);
  const update = UPDATES[method];
  const chain = new Int32Array(n);
  let chainLength = 0;
  let x = 0;
  let yy = 0;
  for (let k = 0; k < n - 1; k++) {
    if (chainLength === 0) {
      chainLength = 1;
      for (let i = 0; i < n; i++) {
        if (size[i]! > 0) {
          chain[0] = i;
          break;
        }
      }
    }
    let currentMin: number;
    for (;;) {
      x = chain[chainLength - 1]!;
      if (chainLength > 1) {
        yy = chain[chainLength - 2]!;
        currentMin = D[condensedIndex(n, x, yy)]!;
      } else {
        currentMin = Infinity;
      }
      for (let i = 0; i < n; i++) {
        if (size[i] === 0 || x === i) continue;
        const dist = D[condensedIndex(n, x, i)]!;
        if (dist < currentMin) {
          currentMin = dist;
          yy = i;
        }
      }
      if (chainLength > 1 && yy === chain[chainLength - 2]) break;
      // Finite distances always give a candidate; NaN/∞ intermediate ones (overflow, non-Euclidean input) may not.
      if ((chainLength === 1 && !(currentMin < Infinity)) || chainLength >= n) throw degenerateLinkage(method, k);
      chain[chainLength++] = yy;
    }
    chainLength -= 2;
    if (x > yy) {
      const t = x;
      x = yy;
      yy = t;
    }
    const nx = size[x]!;
    const ny = size[yy]!;
    z[4 * k] = x;
    z[4 * k + 1] = yy;
    z[4 * k + 2] = currentMin;
    z[4 * k + 3] = nx + ny;
    size[x] = 0;
    size[yy] = nx + ny;
    for (let i = 0; i < n; i++) {
      const ni = size[i]!;
      if (ni === 0 || i === yy) continue;
      D[condensedIndex(n, i, yy)] = update(D[condensedIndex(n, i, x)]!, D[condensedIndex(n, i, yy)]!, currentMin, nx, ny, ni);
    }
  }
  return sortAndLabel(z, n);
}
