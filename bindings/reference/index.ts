/**
 * @file The pure-TS backend: the reference implementation of every kernel and the oracle the native and wasm
 * backends are tested against. Straightforward f64 arithmetic, no tricks: distances are Σ(a−b)², linkage
 * replicates SciPy's algorithms and tie-breaking exactly.
 *
 * Like every backend, it re-checks its inputs and throws a `KernelError` with the documented code rather than
 * crash or return garbage (the public API in `src/kernels.ts` has already validated them). Each module here
 * exports its table kernels (`kernels`: the checks, then the reference); this one assembles them, adds the
 * `…Async` twins, and writes out the two kernels outside the table, `groupedNN` and `linkage`.
 * @module bindings/reference
 */
import { KERNELS, type AsyncTableMethods, type GroupedNNArgs, type KernelBackend, type LinkageMethod, type TableMethods } from '../backend.js';
import { isSelfJoin } from '../selfjoin.js';
import { KernelError } from '../errors.js';
import { kernels as distance } from './distance.js';
import { groupedNNRef, groupedNNSelfRef } from './grouped.js';
import { kernels as weights } from './weights.js';
import { kernels as pooling } from './pooling.js';
import { kernels as linear } from './linear.js';
import { kernels as linkageKernels, linkageRef } from './linkage/index.js';
import { kernels as fcluster } from './fcluster.js';
import { expectRows } from './checks.js';
import {
  ARG_KINDS,
  expectCount,
  expectCondensed,
  expectFinite,
  expectGroupedArgs,
  expectGroupedMode,
  expectLength,
  expectLinkageMethod,
  expectNonEmpty,
  expectOffsets,
  expectString,
  expectTypedArray,
} from '../validate.js';

export { pdistRef, cdistRef, sqDist } from './distance.js';
export { groupedNNRef, groupedNNSelfRef } from './grouped.js';
export { softmaxWeightsRef } from './weights.js';
export { weightedMeanRef, maxPoolRef } from './pooling.js';
export { linearMapRef } from './linear.js';
export { linkageRef, primitiveLinkage, mstSingleLinkage, nnChainLinkage, genericLinkage, wardFromVectorsRef } from './linkage/index.js';
export { cutKRef, cutHeightRef, maxDists, scipyLabelOrder, scipyNumbering, maxclustThreshold } from './fcluster.js';
export { condensedIndex, numObs } from './condensed.js';

function checkGrouped(a: GroupedNNArgs): void {
  expectGroupedArgs('groupedNN', a, true); // missing arrays, a non-string mode: ERR_INVALID_ARGUMENT as on native and wasm
  expectGroupedMode(a.mode);
  expectRows('queries', a.queries, a.nq, a.d);
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

function checkLinkage(y: Float64Array | Float32Array, n: number, method: LinkageMethod): void {
  expectTypedArray('linkage', 'y', y, ARG_KINDS.y);
  expectString('linkage', 'method', method);
  expectLinkageMethod(method);
  expectCondensed(y, n, method);
}

/** Runs `f` inside a promise (so a thrown `KernelError` becomes a rejection). */
function later<T>(f: () => T): Promise<T> {
  return new Promise((resolve) => resolve(f()));
}

/** The table kernels of every module here: a compile error names one that has no reference. */
const TABLE: TableMethods = { ...distance, ...weights, ...pooling, ...linear, ...linkageKernels, ...fcluster };

/** The pure-TS backend: reference implementation of every kernel and the test oracle. */
export function createJsBackend(): KernelBackend {
  const twins: Record<string, (...args: never[]) => Promise<unknown>> = {};
  for (const [name, decl] of Object.entries(KERNELS)) {
    const f = TABLE[name as keyof TableMethods] as (...args: unknown[]) => unknown;
    if (decl.async) twins[`${name}Async`] = (...args: unknown[]) => later(() => f(...args));
  }
  const groupedNN = (a: GroupedNNArgs): Float32Array => {
    checkGrouped(a);
    if (a.selfJoin && isSelfJoin(a)) return groupedNNSelfRef(a.base, a.groupOffsets, a.d, a.mode, a.squared ?? false);
    return groupedNNRef(a.queries, a.nq, a.base, a.groupOffsets, a.d, a.mode, a.queryGroups, a.squared ?? false);
  };
  const linkage = (y: Float64Array | Float32Array, n: number, method: LinkageMethod): Float64Array => {
    checkLinkage(y, n, method);
    return linkageRef(y, n, method);
  };
  return {
    ...TABLE,
    ...(twins as unknown as AsyncTableMethods),
    name: 'js',
    isa: 'js',
    threads: 1,
    groupedNN,
    groupedNNAsync: (a) => later(() => groupedNN(a)),
    linkage,
    linkageAsync: (y, n, method) => later(() => linkage(y, n, method)),
  };
}
