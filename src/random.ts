/**
 * @file The library's one seeded PRNG, so that every random choice (reference images, coreset start, gap-statistic
 * reference sets, the synthetic sample) is reproducible across runs and platforms.
 * @module random
 */

/**
 * mulberry32: a 32-bit state PRNG, small, fast and deterministic.
 * @param seed any number (its low 32 bits are used)
 * @returns a function giving uniform numbers in [0, 1)
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
