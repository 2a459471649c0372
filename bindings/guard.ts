/**
 * @file Cheap argument checks shared by the three backends (native and wasm adapters, pure-TS reference), run
 * before anything dereferences an argument: a missing array (`null`/`undefined`), something that is not a typed
 * array, a typed array whose buffer was detached (transferred), or a non-string method / mode is the same
 * `ERR_INVALID_ARGUMENT` on every backend, instead of a `TypeError` in an adapter (`ERR_INTERNAL`) or a trap in
 * wasm-bindgen's marshalling. Values (kinds, lengths, contents) are checked by each backend as before.
 * @module bindings/guard
 */
import { KernelError } from '../src/errors.js';

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
