/**
 * @file The pure-TS backend: the reference implementation of every kernel and the oracle the native and wasm
 * backends are tested against. Straightforward f64 arithmetic, no tricks: distances are Σ(a−b)², linkage
 * replicates SciPy's algorithms and tie-breaking exactly.
 *
 * Like every backend, it re-checks its inputs and throws a `KernelError` with the documented code rather than
 * crash or return garbage (the public API in `src/kernels.ts` has already validated them).
 * @module bindings/reference
 */
import type { GroupedNNArgs, KernelBackend, LinkageMethod } from '../backend.js';
import { isSelfJoin } from '../selfjoin.js';
import { KernelError } from '../errors.js';
import { pdistRef, cdistRef } from './distance.js';
import { groupedNNRef, groupedNNSelfRef } from './grouped.js';
import { softmaxWeightsRef } from './weights.js';
import { weightedMeanRef, maxPoolRef } from './pooling.js';
import { linearMapRef } from './linear.js';
import { linkageRef, wardFromVectorsRef } from './linkage/index.js';
import { cutKRef, cutHeightRef } from './fcluster.js';
import {
  ARG_KINDS,
  expectFlag,
  expectGroupedArgs,
  expectString,
  expectTypedArray,
  expectCondensed,
  expectCount,
  expectFinite,
  expectGroupedMode,
  expectLength,
  expectLinkageMatrix,
  expectLinkageMethod,
  expectNonEmpty,
  expectOffsets,
  expectBagWeights,
} from '../validate.js';

export { pdistRef, cdistRef, sqDist } from './distance.js';
export { groupedNNRef, groupedNNSelfRef } from './grouped.js';
export { softmaxWeightsRef } from './weights.js';
export { weightedMeanRef, maxPoolRef } from './pooling.js';
export { linearMapRef } from './linear.js';
export { linkageRef, primitiveLinkage, mstSingleLinkage, nnChainLinkage, genericLinkage, wardFromVectorsRef } from './linkage/index.js';
export { cutKRef, cutHeightRef, maxDists, scipyLabelOrder, scipyNumbering, maxclustThreshold } from './fcluster.js';
export { condensedIndex, numObs } from './condensed.js';

function rows(name: string, x: Float32Array, n: number, d: number): void {
  expectTypedArray('js', name, x, ARG_KINDS[name]);
  expectCount(`${name} rows`, n, 0);
  expectCount('d', d, 0);
  expectNonEmpty(`${name} (rows)`, n);
  expectNonEmpty('d (dimension)', d);
  expectLength(name, x, n * d, `${n} rows × d=${d}`);
  expectFinite(name, x);
}

/** `sizes` of size-weighted Ward: a Uint32Array of `n` values ≥ 1 (the kernel's checks and codes). */
function checkWardSizes(sizes: Uint32Array, n: number): void {
  expectTypedArray('js', 'sizes', sizes);
  expectLength('sizes', sizes, n, `one cluster size per row, n = ${n}`);
  const i = sizes.indexOf(0);
  if (i >= 0) throw new KernelError('ERR_INVALID_ARGUMENT', `sizes[${i}]: expected an integer ≥ 1 (a cluster of that many observations), got 0`);
}

function checkPdist(x: Float32Array, n: number, d: number): void {
  rows('x', x, n, d);
}
function checkCdist(q: Float32Array, nq: number, b: Float32Array, nb: number, d: number): void {
  rows('queries', q, nq, d);
  rows('base', b, nb, d);
}

function checkGrouped(a: GroupedNNArgs): void {
  expectGroupedArgs('groupedNN', a, true); // missing arrays, a non-string mode: ERR_INVALID_ARGUMENT as on native and wasm
  expectGroupedMode(a.mode);
  rows('queries', a.queries, a.nq, a.d);
  expectCount('d', a.d, 1);
  if (a.base.length % a.d !== 0) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `base: expected a multiple of d=${a.d} values, got ${a.base.length}`);
  }
  const nb = a.base.length / a.d;
  expectNonEmpty('base (rows)', nb);
  expectFinite('base', a.base);
  const ng = expectOffsets('groupOffsets', a.groupOffsets, nb);
  if (a.mode === 'mean-excluding-own') {
    if (!a.queryGroups) {
      throw new KernelError('ERR_INVALID_ARGUMENT', "queryGroups: required for mode 'mean-excluding-own' (length nq; -1 = none)");
    }
    expectLength('queryGroups', a.queryGroups, a.nq, 'one group index per query row');
    for (let i = 0; i < a.nq; i++) {
      const g = a.queryGroups[i]!;
      if (g < -1 || g >= ng) {
        throw new KernelError('ERR_INVALID_ARGUMENT', `queryGroups: value at index ${i} is ${g}; expected -1 or a group index in [0, ${ng})`);
      }
    }
  }
}

function checkBags(name: string, data: ArrayLike<number>, offsets: Uint32Array, d: number): number {
  expectTypedArray('js', name, data, ARG_KINDS[name]);
  expectTypedArray('js', 'bagOffsets', offsets, ARG_KINDS.bagOffsets);
  expectCount('d', d, 0);
  expectNonEmpty('d (dimension)', d);
  if (data.length % d !== 0) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `${name}: expected a multiple of d=${d} values, got ${data.length}`);
  }
  const nrows = data.length / d;
  expectNonEmpty(`${name} (rows)`, nrows);
  expectFinite(name, data);
  return expectOffsets('bagOffsets', offsets, nrows);
}

function checkLinearMap(x: Float32Array, n: number, dIn: number, w: Float32Array, dOut: number): void {
  expectTypedArray('linearMap', 'x', x, ARG_KINDS.x);
  expectTypedArray('linearMap', 'w', w, ARG_KINDS.w);
  expectCount('n', n, 0);
  expectCount('dIn', dIn, 0);
  expectCount('dOut', dOut, 0);
  expectNonEmpty('dIn (input dimension)', dIn);
  expectNonEmpty('dOut (output dimension)', dOut);
  expectLength('x', x, n * dIn, `${n} rows × dIn=${dIn}`);
  expectLength('w', w, dOut * dIn, `dOut=${dOut} rows × dIn=${dIn}`);
  expectFinite('x', x);
  expectFinite('w', w);
}

function checkSoftmax(scores: Float32Array, offsets: Uint32Array, tau: number): void {
  expectTypedArray('softmaxWeights', 'scores', scores, ARG_KINDS.scores);
  expectTypedArray('softmaxWeights', 'bagOffsets', offsets, ARG_KINDS.bagOffsets);
  expectNonEmpty('scores', scores.length);
  expectFinite('scores', scores);
  expectOffsets('bagOffsets', offsets, scores.length);
  if (typeof tau !== 'number' || Number.isNaN(tau) || tau < 0) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `tau: expected a number ≥ 0 (0 = arg-max, Infinity = uniform), got ${tau}`);
  }
}

function checkWeightedMean(r: Float32Array, offsets: Uint32Array, d: number, w: Float32Array): void {
  checkBags('rows', r, offsets, d);
  expectTypedArray('weightedMean', 'weights', w, ARG_KINDS.weights);
  expectLength('weights', w, r.length / d, 'one weight per row');
  expectFinite('weights', w);
  expectBagWeights(w, offsets);
}

function checkLinkage(y: Float64Array | Float32Array, n: number, method: LinkageMethod): void {
  expectTypedArray('linkage', 'y', y, ARG_KINDS.y);
  expectString('linkage', 'method', method);
  expectLinkageMethod(method);
  expectCondensed(y, n, method);
}

function checkCutK(z: Float64Array, n: number, k: number): void {
  expectTypedArray('cutK', 'z', z, ARG_KINDS.z);
  expectLinkageMatrix(z, n);
  if (!Number.isSafeInteger(k) || k < 1 || k > n) {
    throw new KernelError('ERR_K_OUT_OF_RANGE', `k: expected an integer in 1..${n}, got ${k}`);
  }
}

function checkCutHeight(z: Float64Array, n: number, h: number): void {
  expectTypedArray('cutHeight', 'z', z, ARG_KINDS.z);
  expectLinkageMatrix(z, n);
  if (typeof h !== 'number' || Number.isNaN(h)) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `height: expected a number, got ${h}`);
  }
}

/** `ERR_INVALID_ARGUMENT` when a result of finite inputs overflowed f32 (as the Rust kernel reports it). */
function expectNoOverflow(out: Float32Array): void {
  for (let i = 0; i < out.length; i++) {
    if (!Number.isFinite(out[i]!)) {
      throw new KernelError('ERR_INVALID_ARGUMENT', `linearMap: result ${i} overflows f32 (inputs too large for this map)`);
    }
  }
}

/** Runs `f` inside a promise (so a thrown `KernelError` becomes a rejection). */
function later<T>(f: () => T): Promise<T> {
  return new Promise((resolve) => resolve(f()));
}

/** The pure-TS backend: reference implementation of every kernel and the test oracle. */
export function createJsBackend(): KernelBackend {
  const pdist = (x: Float32Array, n: number, d: number, squared: boolean): Float32Array => {
    checkPdist(x, n, d);
    expectFlag('pdist', 'squared', squared);
    return pdistRef(x, n, d, squared);
  };
  const cdist = (q: Float32Array, nq: number, b: Float32Array, nb: number, d: number, squared: boolean): Float32Array => {
    checkCdist(q, nq, b, nb, d);
    expectFlag('cdist', 'squared', squared);
    return cdistRef(q, nq, b, nb, d, squared);
  };
  const groupedNN = (a: GroupedNNArgs): Float32Array => {
    checkGrouped(a);
    if (a.selfJoin && isSelfJoin(a)) return groupedNNSelfRef(a.base, a.groupOffsets, a.d, a.mode, a.squared ?? false);
    return groupedNNRef(a.queries, a.nq, a.base, a.groupOffsets, a.d, a.mode, a.queryGroups, a.squared ?? false);
  };
  const linkage = (y: Float64Array | Float32Array, n: number, method: LinkageMethod): Float64Array => {
    checkLinkage(y, n, method);
    return linkageRef(y, n, method);
  };
  const wardFromVectors = (x: Float32Array, n: number, d: number, sizes?: Uint32Array): Float64Array => {
    checkPdist(x, n, d);
    if (sizes !== undefined) checkWardSizes(sizes, n);
    return wardFromVectorsRef(x, n, d, sizes);
  };
  const linearMap = (x: Float32Array, n: number, dIn: number, w: Float32Array, dOut: number): Float32Array => {
    checkLinearMap(x, n, dIn, w, dOut);
    const out = linearMapRef(x, n, dIn, w, dOut);
    expectNoOverflow(out);
    return out;
  };
  return {
    name: 'js',
    isa: 'js',
    threads: 1,
    pdist,
    pdistAsync: (x, n, d, squared) => later(() => pdist(x, n, d, squared)),
    cdist,
    cdistAsync: (q, nq, b, nb, d, squared) => later(() => cdist(q, nq, b, nb, d, squared)),
    groupedNN,
    groupedNNAsync: (a) => later(() => groupedNN(a)),
    softmaxWeights(scores, bagOffsets, tau) {
      checkSoftmax(scores, bagOffsets, tau);
      return softmaxWeightsRef(scores, bagOffsets, tau);
    },
    weightedMean(r, bagOffsets, d, weights) {
      checkWeightedMean(r, bagOffsets, d, weights);
      return weightedMeanRef(r, bagOffsets, d, weights);
    },
    maxPool(r, bagOffsets, d) {
      checkBags('rows', r, bagOffsets, d);
      return maxPoolRef(r, bagOffsets, d);
    },
    linearMap,
    linearMapAsync: (x, n, dIn, w, dOut) => later(() => linearMap(x, n, dIn, w, dOut)),
    linkage,
    linkageAsync: (y, n, method) => later(() => linkage(y, n, method)),
    wardFromVectors,
    wardFromVectorsAsync: (x, n, d, sizes) => later(() => wardFromVectors(x, n, d, sizes)),
    cutK(z, n, k) {
      checkCutK(z, n, k);
      return cutKRef(z, n, k);
    },
    cutHeight(z, n, height) {
      checkCutHeight(z, n, height);
      return cutHeightRef(z, n, height);
    },
  };
}
