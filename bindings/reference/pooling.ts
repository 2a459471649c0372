/**
 * @file Reference bag pooling: weighted mean (f64 accumulation, divided by the bag's weight sum) and
 * per-dimension max.
 * @module bindings/reference/pooling
 */
import type { TableMethods } from '../backend.js';
import { ARG_KINDS, expectBagWeights, expectFinite, expectLength, expectTypedArray } from '../validate.js';
import { expectBags } from './checks.js';

/** Weighted mean of each bag's rows → `nbags × d`; inputs trusted (each bag's weight sum > 0). */
export function weightedMeanRef(rows: Float32Array, offsets: ArrayLike<number>, d: number, weights: Float32Array): Float32Array {
  const nb = offsets.length - 1;
  const out = new Float32Array(nb * d);
  const acc = new Float64Array(d);
  for (let b = 0; b < nb; b++) {
    acc.fill(0);
    let ws = 0;
    for (let r = offsets[b]!; r < offsets[b + 1]!; r++) {
      const w = weights[r]!;
      ws += w;
      if (w === 0) continue;
      const o = r * d;
      for (let k = 0; k < d; k++) acc[k] += w * rows[o + k]!;
    }
    for (let k = 0; k < d; k++) out[b * d + k] = acc[k]! / ws;
  }
  return out;
}

/** Per-dimension max of each bag's rows → `nbags × d`; inputs trusted (non-empty bags). */
export function maxPoolRef(rows: Float32Array, offsets: ArrayLike<number>, d: number): Float32Array {
  const nb = offsets.length - 1;
  const out = new Float32Array(nb * d);
  for (let b = 0; b < nb; b++) {
    const lo = offsets[b]!;
    const hi = offsets[b + 1]!;
    for (let k = 0; k < d; k++) {
      let m = -Infinity;
      for (let r = lo; r < hi; r++) {
        const v = rows[r * d + k]!;
        if (v > m) m = v;
      }
      out[b * d + k] = m;
    }
  }
  return out;
}

/** The table kernels `weightedMean` and `maxPool`: the checks of the Rust kernels, then the references above. */
export const kernels = {
  weightedMean(rows, bagOffsets, d, weights) {
    expectBags('rows', rows, bagOffsets, d);
    expectTypedArray('weightedMean', 'weights', weights, ARG_KINDS.weights);
    expectLength('weights', weights, rows.length / d, 'one weight per row');
    expectFinite('weights', weights);
    expectBagWeights(weights, bagOffsets);
    return weightedMeanRef(rows, bagOffsets, d, weights);
  },
  maxPool(rows, bagOffsets, d) {
    expectBags('rows', rows, bagOffsets, d);
    return maxPoolRef(rows, bagOffsets, d);
  },
} satisfies Partial<TableMethods>;
