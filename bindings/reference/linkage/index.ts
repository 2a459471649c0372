/**
 * @file Linkage dispatch, as in SciPy and kodama: single → MST; complete/average/weighted/ward → NN-chain;
 * centroid/median → generic. All run in f64; Z is SciPy's `(n−1) × 4` matrix. On f64 input the result is
 * bit-identical to `scipy.cluster.hierarchy.linkage(y, method)`, ties included.
 * @module bindings/reference/linkage
 */
import type { LinkageMethod, TableMethods } from '../../backend.js';
import { KernelError } from '../../errors.js';
import { expectLength, expectTypedArray } from '../../validate.js';
import { expectRows } from '../checks.js';
import { mstSingleLinkage } from './mst.js';
import { wardFromVectorsRef } from './ward-vectors.js';
import { nnChainLinkage } from './nn-chain.js';
import { genericLinkage } from './generic.js';

export { primitiveLinkage } from './primitive.js';
export { mstSingleLinkage } from './mst.js';
export { nnChainLinkage } from './nn-chain.js';
export { genericLinkage } from './generic.js';
export { sortAndLabel } from './union-find.js';
export { wardFromVectorsRef } from './ward-vectors.js';
export { UPDATES } from './methods.js';

/** Z of the condensed matrix `y` (any float array, widened to f64) of `n ≥ 1` points; inputs trusted. */
export function linkageRef(y: ArrayLike<number>, n: number, method: LinkageMethod): Float64Array {
  if (n < 2) return new Float64Array(0);
  const y64 = y instanceof Float64Array ? y : Float64Array.from(y);
  switch (method) {
    case 'single':
      return mstSingleLinkage(y64, n);
    case 'complete':
    case 'average':
    case 'weighted':
    case 'ward':
      return nnChainLinkage(y64, n, method);
    default:
      return genericLinkage(y64, n, method);
  }
}

/** The table kernel `wardFromVectors`: the checks of the Rust kernel, then the reference. */
export const kernels = {
  wardFromVectors(x, n, d, sizes) {
    expectRows('x', x, n, d);
    if (sizes !== undefined) {
      // Size-weighted Ward: a Uint32Array of `n` values ≥ 1 (the kernel's checks and codes).
      expectTypedArray('js', 'sizes', sizes);
      expectLength('sizes', sizes, n, `one cluster size per row, n = ${n}`);
      const i = sizes.indexOf(0);
      if (i >= 0) throw new KernelError('ERR_INVALID_ARGUMENT', `sizes[${i}]: expected an integer ≥ 1 (a cluster of that many observations), got 0`);
    }
    return wardFromVectorsRef(x, n, d, sizes);
  },
} satisfies Partial<TableMethods>;
