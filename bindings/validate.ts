/**
 * @file The kernel-facing argument checks, shared by the public API (`src/kernels.ts`) and the three backends
 * (native and wasm adapters, pure-TS reference). Each check throws a {@link KernelError} with the documented code,
 * so that a backend never crashes on bad input and every backend reports the same code for the same mistake.
 *
 * Two layers:
 * - **guards**, run by every backend before anything dereferences an argument: a missing array
 *   (`null`/`undefined`), something that is not a typed array, a typed array whose buffer was detached
 *   (transferred), or a non-string method / mode is the same `ERR_INVALID_ARGUMENT` on every backend, instead of
 *   a `TypeError` in an adapter (`ERR_INTERNAL`) or a trap in wasm-bindgen's marshalling;
 * - **value checks** (lengths, finiteness, offsets, condensed matrices, linkage matrices), run by the public API
 *   and by the js reference; the Rust kernels make the same checks with the same codes.
 * @module bindings/validate
 */
import { KernelError } from './errors.js';
import { LINKAGE_METHODS, GROUPED_MODES } from './backend.js';
import type { LinkageMethod, GroupedMode } from './backend.js';

// ---------------------------------------------------------------------------------------------------------------
// Guards (types, before anything is dereferenced)

/** Whether `buf` has been detached (`ArrayBuffer.prototype.detached` is Node ≥ 22; a view on it throws before). */
function isDetached(buf: ArrayBufferLike): boolean {
  const flag = (buf as { detached?: unknown }).detached;
  if (typeof flag === 'boolean') return flag;
  if (typeof SharedArrayBuffer !== 'undefined' && buf instanceof SharedArrayBuffer) return false;
  try {
    new Uint8Array(buf as ArrayBuffer, 0, 0);
    return false;
  } catch {
    return true;
  }
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return 'a plain Array';
  return typeof v === 'object' ? Object.prototype.toString.call(v) : typeof v;
}

/**
 * `ERR_INVALID_ARGUMENT` unless `v` is a typed array (not a `DataView`) on a live (not detached) buffer.
 * @param fn the kernel, for the message
 * @param name the argument, for the message
 * @param kinds when given, `v` must be an instance of one of them (the wasm glue would otherwise convert another
 *   kind silently, or throw a `TypeError` for a BigInt array)
 */
export function expectTypedArray(fn: string, name: string, v: unknown, kinds?: readonly (abstract new (...a: never[]) => unknown)[]): void {
  if (!ArrayBuffer.isView(v) || v instanceof DataView) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${fn}: ${name} must be a typed array, got ${describe(v)}`);
  }
  if (kinds && !kinds.some((k) => v instanceof k)) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${fn}: ${name} must be a ${kinds.map((k) => k.name).join(' or ')}, got ${describe(v)}`);
  }
  if (isDetached(v.buffer)) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${fn}: ${name} is a ${v.constructor.name} whose buffer was detached (transferred)`);
  }
}

type Kind = abstract new (...a: never[]) => unknown;
/**
 * The typed-array kind each named kernel argument must be, **on every backend** (the js reference used to take
 * any kind — a Float64Array `x` was computed — where native and wasm refused it).
 */
export const ARG_KINDS: Readonly<Record<string, readonly Kind[]>> = {
  x: [Float32Array], q: [Float32Array], b: [Float32Array], queries: [Float32Array], base: [Float32Array], rows: [Float32Array],
  scores: [Float32Array], weights: [Float32Array], w: [Float32Array],
  bagOffsets: [Uint32Array], groupOffsets: [Uint32Array], queryGroups: [Int32Array],
  y: [Float64Array, Float32Array], z: [Float64Array],
};

/** `ERR_INVALID_ARGUMENT` unless `v` is a boolean or undefined (`squared: 'yes'` is refused by every backend). */
export function expectFlag(fn: string, name: string, v: unknown): void {
  if (v !== undefined && typeof v !== 'boolean') {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${fn}: ${name} must be a boolean, got ${typeof v === 'string' ? JSON.stringify(v) : describe(v)}`);
  }
}

/**
 * `ERR_INVALID_ARGUMENT` for a `queryGroups` entry that is neither −1 nor a group index in `[0, ngroups)` (the
 * native and wasm kernels would silently exclude nothing for it). O(nq); lengths are checked by the kernels.
 */
export function expectQueryGroupRange(queryGroups: Int32Array | null | undefined, ngroups: number): void {
  if (!queryGroups) return;
  for (let i = 0; i < queryGroups.length; i++) {
    const g = queryGroups[i]!;
    if (g !== -1 && (g < 0 || g >= ngroups)) {
      throw new KernelError('ERR_INVALID_ARGUMENT', `queryGroups: value at index ${i} is ${g}; expected -1 or a group index in [0, ${ngroups})`);
    }
  }
}

/** {@link expectTypedArray} for an optional array: `null` and `undefined` pass. */
export function expectOptionalTypedArray(fn: string, name: string, v: unknown): void {
  if (v !== null && v !== undefined) expectTypedArray(fn, name, v);
}

/** `ERR_INVALID_ARGUMENT` unless `v` is a string (an unknown string is each backend's `ERR_INVALID_METHOD`). */
export function expectString(fn: string, name: string, v: unknown): void {
  if (typeof v !== 'string') {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${fn}: ${name} must be a string, got ${describe(v)}`);
  }
}

/** `ERR_INVALID_ARGUMENT` unless `v` is a number (NaN and ±Infinity included: the kernels judge the value). */
export function expectNumber(fn: string, name: string, v: unknown): void {
  if (typeof v !== 'number') {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${fn}: ${name} must be a number, got ${describe(v)}`);
  }
}

/** `ERR_INVALID_ARGUMENT` unless `a` is an object (the {@link GroupedNNArgs} of `groupedNN`). */
export function expectObject(fn: string, name: string, a: unknown): void {
  if (a === null || typeof a !== 'object') {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${fn}: ${name} must be an object, got ${describe(a)}`);
  }
}

/**
 * Checks the arrays, mode, counts and argument object of a grouped nearest-neighbour call (`queryGroups` is
 * optional).
 * @param a the call's `GroupedNNArgs` (typed `unknown`: this runs before anything is trusted)
 * @param exactKinds require Float32Array / Uint32Array / Int32Array (see {@link expectTypedArray})
 */
export function expectGroupedArgs(fn: string, a: unknown, exactKinds = false): void {
  expectObject(fn, 'args', a);
  const r = a as Record<string, unknown>;
  expectTypedArray(fn, 'queries', r.queries, exactKinds ? [Float32Array] : undefined);
  expectTypedArray(fn, 'base', r.base, exactKinds ? [Float32Array] : undefined);
  expectTypedArray(fn, 'groupOffsets', r.groupOffsets, exactKinds ? [Uint32Array] : undefined);
  if (r.queryGroups !== null && r.queryGroups !== undefined) {
    expectTypedArray(fn, 'queryGroups', r.queryGroups, exactKinds ? [Int32Array] : undefined);
  }
  expectString(fn, 'mode', r.mode);
  expectFlag(fn, 'squared', r.squared);
  if (exactKinds && r.mode === 'mean-excluding-own') {
    expectQueryGroupRange(r.queryGroups as Int32Array | undefined, (r.groupOffsets as Uint32Array).length - 1);
  }
  // The adapters' self-join check does arithmetic on them (a BigInt would throw a TypeError there).
  expectNumber(fn, 'nq', r.nq);
  expectNumber(fn, 'd', r.d);
}

// ---------------------------------------------------------------------------------------------------------------
// Value checks

/** `ERR_SHAPE_MISMATCH` unless `arr.length === expected`. */
export function expectLength(name: string, arr: ArrayLike<number>, expected: number, what: string): void {
  if (arr.length !== expected) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `${name}: expected length ${expected} (${what}), got ${arr.length}`);
  }
}

/**
 * `ERR_INVALID_ARGUMENT` unless every weight is ≥ 0 and every bag (rows `offsets[b]..offsets[b+1]`) has a positive
 * sum: what a weighted mean needs. Lengths and finiteness are checked before.
 */
export function expectBagWeights(w: ArrayLike<number>, offsets: ArrayLike<number>): void {
  for (let i = 0; i < w.length; i++) {
    if (w[i]! < 0) throw new KernelError('ERR_INVALID_ARGUMENT', `weights: value at index ${i} is ${w[i]}; weights must be ≥ 0`);
  }
  for (let b = 0; b + 1 < offsets.length; b++) {
    let s = 0;
    for (let i = offsets[b]!; i < offsets[b + 1]!; i++) s += w[i]!;
    if (!(s > 0)) throw new KernelError('ERR_INVALID_ARGUMENT', `weights: bag ${b} has weight sum ${s}; each bag needs a positive sum`);
  }
}

/** `ERR_NON_FINITE` naming the first NaN/±Infinity index. */
export function expectFinite(name: string, arr: ArrayLike<number>): void {
  for (let i = 0; i < arr.length; i++) {
    const v = arr[i]!;
    if (!Number.isFinite(v)) {
      throw new KernelError('ERR_NON_FINITE', `${name}: value at index ${i} is ${v}; all values must be finite`);
    }
  }
}

/** `ERR_INVALID_ARGUMENT` unless `v` is a safe integer ≥ `min`. */
export function expectCount(name: string, v: number, min = 0): void {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${name}: expected an integer ≥ ${min}, got ${String(v)}`);
  }
}

/** `ERR_EMPTY` when `count` is 0. */
export function expectNonEmpty(name: string, count: number): void {
  if (count === 0) throw new KernelError('ERR_EMPTY', `${name}: must not be empty`);
}

/** `ERR_INVALID_METHOD` unless `m` is one of {@link LINKAGE_METHODS}. */
export function expectLinkageMethod(m: unknown): asserts m is LinkageMethod {
  if (typeof m !== 'string' || !(LINKAGE_METHODS as readonly string[]).includes(m)) {
    throw new KernelError(
      'ERR_INVALID_METHOD',
      `method: expected one of ${LINKAGE_METHODS.join(', ')}, got ${JSON.stringify(m)}`,
    );
  }
}

/** `ERR_INVALID_METHOD` unless `m` is one of {@link GROUPED_MODES}. */
export function expectGroupedMode(m: unknown): asserts m is GroupedMode {
  if (typeof m !== 'string' || !(GROUPED_MODES as readonly string[]).includes(m)) {
    throw new KernelError('ERR_INVALID_METHOD', `mode: expected one of ${GROUPED_MODES.join(', ')}, got ${JSON.stringify(m)}`);
  }
}

/**
 * Checks bag/group offsets: length ≥ 1 (ERR_EMPTY when there is no bag), `offsets[0] = 0`, strictly increasing
 * (every bag non-empty), last = `nrows`. All violations but "no bag" are `ERR_INVALID_ARGUMENT`.
 * @returns the number of bags
 */
export function expectOffsets(name: string, offsets: ArrayLike<number>, nrows: number): number {
  if (offsets.length < 2) {
    if (offsets.length === 1 && offsets[0] === 0 && nrows === 0) throw new KernelError('ERR_EMPTY', `${name}: no bag/group`);
    if (offsets.length === 0) throw new KernelError('ERR_EMPTY', `${name}: no bag/group (offsets must have length nbags+1 ≥ 2)`);
  }
  if (offsets[0] !== 0) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${name}: offsets[0] must be 0, got ${offsets[0]}`);
  }
  for (let i = 1; i < offsets.length; i++) {
    const a = offsets[i - 1]!;
    const b = offsets[i]!;
    if (!Number.isSafeInteger(b) || b <= a) {
      throw new KernelError(
        'ERR_INVALID_ARGUMENT',
        `${name}: offsets must be strictly increasing integers (every bag/group non-empty); offsets[${i - 1}]=${a}, offsets[${i}]=${b}`,
      );
    }
  }
  const last = offsets[offsets.length - 1]!;
  if (last !== nrows) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `${name}: last offset must equal the number of rows ${nrows}, got ${last}`);
  }
  return offsets.length - 1;
}

/** Methods whose Lance–Williams update is only meaningful for Euclidean (non-negative) distances. */
export const EUCLIDEAN_METHODS: readonly LinkageMethod[] = ['ward', 'centroid', 'median'];

/** Full check of a condensed matrix for {@link linkage}: length n(n−1)/2, finite, non-negative for ward/centroid/median. */
export function expectCondensed(y: ArrayLike<number>, n: number, method: LinkageMethod): void {
  expectCount('n', n, 0);
  expectNonEmpty('n (number of observations)', n);
  expectLength('y', y, (n * (n - 1)) / 2, `condensed distances of n=${n} points: n(n-1)/2`);
  expectFinite('y', y);
  if (EUCLIDEAN_METHODS.includes(method)) {
    for (let i = 0; i < y.length; i++) {
      if (y[i]! < 0) {
        throw new KernelError(
          'ERR_INVALID_ARGUMENT',
          `y: value at index ${i} is ${y[i]}; method '${method}' needs non-negative (Euclidean) distances`,
        );
      }
    }
  }
}

/**
 * Checks that `z` is a valid SciPy linkage matrix of `n` points: length (n−1)·4, finite, ids integers with
 * `id < n + i` at row i, each id used at most once, non-negative heights, sizes equal to the sum of the children's.
 */
export function expectLinkageMatrix(z: ArrayLike<number>, n: number): void {
  expectCount('n', n, 0);
  expectNonEmpty('n (number of observations)', n);
  expectLength('Z', z, (n - 1) * 4, `(n-1)*4 for n=${n}`);
  expectFinite('Z', z);
  const size = new Float64Array(2 * n - 1);
  const used = new Uint8Array(2 * n - 1);
  for (let i = 0; i < n; i++) size[i] = 1;
  for (let i = 0; i < n - 1; i++) {
    for (let c = 0; c < 2; c++) {
      const id = z[4 * i + c]!;
      if (!Number.isInteger(id) || id < 0 || id >= n + i) {
        throw new KernelError('ERR_INVALID_ARGUMENT', `Z: row ${i} has cluster id ${id}; expected an integer in [0, ${n + i})`);
      }
      if (used[id]) throw new KernelError('ERR_INVALID_ARGUMENT', `Z: cluster id ${id} is merged twice (row ${i})`);
      used[id] = 1;
    }
    const a = z[4 * i]!;
    const b = z[4 * i + 1]!;
    if (a === b) throw new KernelError('ERR_INVALID_ARGUMENT', `Z: row ${i} merges cluster ${a} with itself`);
    if (z[4 * i + 2]! < 0) throw new KernelError('ERR_INVALID_ARGUMENT', `Z: row ${i} has negative height ${z[4 * i + 2]}`);
    const s = size[a]! + size[b]!;
    if (z[4 * i + 3] !== s) {
      throw new KernelError('ERR_INVALID_ARGUMENT', `Z: row ${i} has size ${z[4 * i + 3]}; its children hold ${s} observations`);
    }
    size[n + i] = s;
  }
}
