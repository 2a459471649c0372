/**
 * @file Reference linear map of rows: `out = x · wᵀ` (f64 accumulation, rounded once to f32).
 * @module bindings/reference/linear
 */

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
