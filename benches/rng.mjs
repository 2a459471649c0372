// The benchmarks' deterministic generator (xorshift32, uniform in [0, 1)): the same data on every run and machine.
/** @param {number} seed @returns {() => number} */
export function rng(seed) {
  let s = (seed >>> 0) || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}
