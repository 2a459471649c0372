/**
 * @file Shared test helpers: seeded PRNG, label comparison up to permutation, closeness checks, and the list
 * of backends under test (in CI all three must load, or the suite fails loudly).
 * @module test/helpers
 */
import type { BackendName } from '../bindings/backend.js';
import { availableBackends, loadErrors } from '../bindings/select.js';
import { mulberry32 as rng } from '../src/random.js';
export { rng };


/** Standard normal sample from a uniform generator (Box–Muller). */
export function gauss(r: () => number): number {
  let u = 0;
  while (u === 0) u = r();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** `n*d` standard-normal f32 values. */
export function randomRows(n: number, d: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) x[i] = gauss(r) * scale;
  return x;
}

/** Random condensed f64 matrix of `n` points whose n(n−1)/2 values are all distinct (uniform in [1, 2)). */
export function distinctCondensed(n: number, seed: number): Float64Array {
  const r = rng(seed);
  const m = (n * (n - 1)) / 2;
  const y = new Float64Array(m);
  const seen = new Set<number>();
  for (let i = 0; i < m; i++) {
    let v: number;
    do v = 1 + r(); while (seen.has(v));
    seen.add(v);
    y[i] = v;
  }
  return y;
}

/** Condensed Euclidean f64 distances of `n` random points in `d` dims (generic, so distinct in practice). */
export function euclideanCondensed(n: number, d: number, seed: number): Float64Array {
  const r = rng(seed);
  const x: number[][] = [];
  for (let i = 0; i < n; i++) x.push(Array.from({ length: d }, () => gauss(r)));
  const y = new Float64Array((n * (n - 1)) / 2);
  let p = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += (x[i]![k]! - x[j]![k]!) ** 2;
      y[p++] = Math.sqrt(s);
    }
  }
  return y;
}

/** True when two labelings define the same partition (equal up to a renaming of the labels). */
export function isIsomorphic(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  const ab = new Map<number, number>();
  const ba = new Map<number, number>();
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    const fx = ab.get(x);
    const fy = ba.get(y);
    if (fx === undefined && fy === undefined) {
      ab.set(x, y);
      ba.set(y, x);
    } else if (fx !== y || fy !== x) return false;
  }
  return true;
}

/** Largest |a[i] − b[i]| (Infinity on a length mismatch; NaN anywhere counts as Infinity). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Index of the first i with |a[i] − b[i]| > atol + rtol·|b[i]|, or -1 (also -1 for an exact match). */
export function firstNotClose(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol = 0): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) return i;
  }
  return -1;
}

/** Converts a typed array to a plain array (readable vitest diffs). */
export function arr(a: ArrayLike<number>): number[] {
  return Array.from(a);
}

/**
 * The backends the conformance suites run on: those `availableBackends()` returns. In CI (`process.env.CI`)
 * all three ('native', 'wasm', 'js') must load, otherwise this throws with every load error, so a missing
 * build fails the suite loudly instead of silently passing. `AC_TEST_BACKENDS=js,wasm` narrows the list
 * (for local work; the CI check still requires all three to load).
 */
export function backendsUnderTest(): BackendName[] {
  const only = process.env.AC_TEST_BACKENDS?.split(',').map((s) => s.trim()).filter(Boolean);
  const names = availableBackends().filter((b) => !only || only.includes(b));
  if (process.env.CI) {
    const missing = (['native', 'wasm', 'js'] as const).filter((b) => !names.includes(b));
    if (missing.length > 0) {
      const why = loadErrors()
        .map((e) => `${e.backend}: ${e.error.message}`)
        .join('; ');
      throw new Error(`CI requires all backends; missing ${missing.join(', ')} (${why})`);
    }
  }
  return names;
}

/** Backends that did not load, with the reason (for `describe.skip` titles). */
export function skippedBackends(): { backend: BackendName; reason: string }[] {
  const names = availableBackends();
  return loadErrors()
    .filter((e) => !names.includes(e.backend))
    .map((e) => ({ backend: e.backend, reason: e.error.message }));
}

/** Condensed Euclidean distances of the f32 rows `x` (`n × d`), computed in f64: the reference the kernels agree with. */
export function condensedF64(x: Float32Array, n: number, d: number): Float64Array {
  const y = new Float64Array((n * (n - 1)) / 2);
  let p = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += (x[i * d + k]! - x[j * d + k]!) ** 2;
      y[p++] = Math.sqrt(s);
    }
  }
  return y;
}

/** What `f` throws; fails the test when it returns. */
export function caught(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}
