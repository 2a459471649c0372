// Timing for the kernel benchmarks: the best of repeated calls.

/**
 * Calls `fn` until `minMs` of calls have run (at least once) and returns the fastest call's time and the last
 * output (so a benchmark can check what it timed).
 * @template T
 * @param {() => T} fn
 * @param {number} minMs
 * @returns {{ms: number, out: T}}
 */
export function bestTime(fn, minMs) {
  let best = Infinity;
  let total = 0;
  let out;
  do {
    const t0 = performance.now();
    out = fn();
    const ms = performance.now() - t0;
    best = Math.min(best, ms);
    total += ms;
  } while (total < minMs);
  return { ms: best, out };
}
