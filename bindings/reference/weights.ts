/**
 * @file Reference patch weights: softmax of `scores / tau` within each bag, max-subtracted, in f64.
 * `tau = 0` → hard arg-max (tied maxima share the weight equally); `tau = Infinity` → uniform.
 * @module bindings/reference/weights
 */
import type { TableMethods } from '../backend.js';
import { KernelError } from '../errors.js';
import { ARG_KINDS, expectFinite, expectNonEmpty, expectOffsets, expectTypedArray } from '../validate.js';

/** Softmax weights per bag; inputs trusted (finite scores, non-empty bags, tau ≥ 0). */
export function softmaxWeightsRef(scores: Float32Array, offsets: ArrayLike<number>, tau: number): Float32Array {
  const out = new Float32Array(scores.length);
  for (let b = 0; b + 1 < offsets.length; b++) {
    const lo = offsets[b]!;
    const hi = offsets[b + 1]!;
    const m = hi - lo;
    if (m <= 0) continue;
    if (tau === Infinity) {
      for (let i = lo; i < hi; i++) out[i] = 1 / m;
      continue;
    }
    let max = -Infinity;
    for (let i = lo; i < hi; i++) if (scores[i]! > max) max = scores[i]!;
    if (tau === 0) {
      let c = 0;
      for (let i = lo; i < hi; i++) if (scores[i] === max) c++;
      for (let i = lo; i < hi; i++) out[i] = scores[i] === max ? 1 / c : 0;
      continue;
    }
    const e = new Float64Array(m);
    let sum = 0;
    for (let i = lo; i < hi; i++) {
      const v = Math.exp((scores[i]! - max) / tau);
      e[i - lo] = v;
      sum += v;
    }
    for (let i = lo; i < hi; i++) out[i] = e[i - lo]! / sum;
  }
  return out;
}

/** The table kernel `softmaxWeights`: the checks of the Rust kernel, then the reference above. */
export const kernels = {
  softmaxWeights(scores, bagOffsets, tau) {
    expectTypedArray('softmaxWeights', 'scores', scores, ARG_KINDS.scores);
    expectTypedArray('softmaxWeights', 'bagOffsets', bagOffsets, ARG_KINDS.bagOffsets);
    expectNonEmpty('scores', scores.length);
    expectFinite('scores', scores);
    expectOffsets('bagOffsets', bagOffsets, scores.length);
    if (typeof tau !== 'number' || Number.isNaN(tau) || tau < 0) {
      throw new KernelError('ERR_INVALID_ARGUMENT', `tau: expected a number ≥ 0 (0 = arg-max, Infinity = uniform), got ${tau}`);
    }
    return softmaxWeightsRef(scores, bagOffsets, tau);
  },
} satisfies Partial<TableMethods>;
