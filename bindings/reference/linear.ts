/**
 * @file Reference linear map of rows: `out = x · wᵀ` (f64 accumulation, rounded once to f32).
 * @module bindings/reference/linear
 */
import type { TableMethods } from '../backend.js';
import { KernelError } from '../errors.js';
import { ARG_KINDS, expectCount, expectFinite, expectLength, expectNonEmpty, expectTypedArray } from '../validate.js';

/** `n` rows of `x` (`n × dIn`) through the `dOut × dIn` matrix `w` → `n × dOut`; inputs trusted. */
export function linearMapRef(x: Float32Array, n: number, dIn: number, w: Float32Array, dOut: number): Float32Array {
  const out = new Float32Array(n * dOut);
  for (let i = 0; i < n; i++) {
    const xo = i * dIn;
    for (let j = 0; j < dOut; j++) {
      const wo = j * dIn;
      let s = 0;
      for (let k = 0; k < dIn; k++) s += x[xo + k]! * w[wo + k]!;
      out[i * dOut + j] = s;
    }
  }
  return out;
}

/** The table kernel `linearMap`: the checks of the Rust kernel, the reference above, then its overflow check. */
export const kernels = {
  linearMap(x, n, dIn, w, dOut) {
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
    const out = linearMapRef(x, n, dIn, w, dOut);
    // A result of finite inputs that overflowed f32 is ERR_INVALID_ARGUMENT, as the Rust kernel reports it.
    for (let i = 0; i < out.length; i++) {
      if (!Number.isFinite(out[i]!)) {
        throw new KernelError('ERR_INVALID_ARGUMENT', `linearMap: result ${i} overflows f32 (inputs too large for this map)`);
      }
    }
    return out;
  },
} satisfies Partial<TableMethods>;
