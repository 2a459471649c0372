/**
 * @file The public kernel API: distances, grouped nearest-neighbour search, patch weights, pooling,
 * hierarchical clustering and flat clusters, with SciPy's conventions (condensed distance vector, linkage
 * matrix Z, `fcluster`, `cut_tree`).
 *
 * Every function validates its input **before** it reaches a backend and throws:
 * - `TypeError` for a wrong type (e.g. a plain `number[]` or a `Float64Array` where rows as a `Float32Array`
 *   or `number[][]` are required, a non-integer count, a non-boolean flag);
 * - {@link KernelError} with a stable `code` for a wrong value:
 *   `ERR_SHAPE_MISMATCH` (lengths vs dimensions), `ERR_NON_FINITE` (NaN/±Infinity, with the index),
 *   `ERR_EMPTY` (no rows, no bags, d = 0), `ERR_K_OUT_OF_RANGE` (number of clusters outside 1..n),
 *   `ERR_INVALID_METHOD` (unknown method/mode/criterion; the message lists the valid values),
 *   `ERR_INVALID_ARGUMENT` (tau < 0 or NaN, negative weights or a zero-sum bag, bad offsets, negative distances
 *   for ward/centroid/median, an invalid linkage matrix), `ERR_BACKEND_UNAVAILABLE` (a requested backend
 *   cannot load).
 *
 * Data are flat, row-major typed arrays with explicit dimensions; arrays of rows (`number[][]`) are accepted
 * and normalised to `Float32Array`. Options objects come last; `backend` picks `'native' | 'wasm' | 'js'`
 * (default: the first that loads, see `bindings/select.ts`). All backends give the same answers: linkage is
 * computed in f64 and matches SciPy's Z exactly on f64 input; distances agree to float32 rounding.
 * @module kernels
 */
import type { BackendName, GroupedMode, KernelBackend, LinkageMethod } from '../bindings/backend.js';
import { getBackend } from '../bindings/select.js';
import { KernelError } from './errors.js';
import { maxclustThreshold, numObs, scipyNumbering } from '../bindings/reference/index.js';
import {
  expectCondensed,
  expectFinite,
  expectGroupedMode,
  expectLength,
  expectLinkageMatrix,
  expectLinkageMethod,
  expectNonEmpty,
  expectOffsets,
  expectBagWeights,
} from '../bindings/validate.js';

export type { BackendName, GroupedMode, LinkageMethod } from '../bindings/backend.js';
export { BACKEND_NAMES, GROUPED_MODES, LINKAGE_METHODS } from '../bindings/backend.js';

/** Rows of a matrix: a flat row-major `Float32Array` (with `d` given in the options) or an array of rows. */
export type RowsInput = Float32Array | readonly ArrayLike<number>[];
/** A 1-D vector of numbers. */
export type VectorInput = Float32Array | readonly number[];
/** Bag / group boundaries: length nbags+1, starting at 0, strictly increasing, ending at the number of rows. */
export type OffsetsInput = Uint32Array | readonly number[];

/** Flat-cluster criteria of {@link fcluster} (SciPy's names). */
export type FclusterCriterion = 'maxclust' | 'distance';
/** Runtime list of {@link FclusterCriterion}s. */
export const FCLUSTER_CRITERIA = ['maxclust', 'distance'] as const;

/** Common option: which backend runs the kernel. */
export interface BackendOption {
  /** `'native'`, `'wasm'` or `'js'`. @default the first that loads (env `ANOMALY_CLUSTERING_BACKEND` first) */
  backend?: BackendName;
}

/** Options of {@link pdist} and {@link cdist}. */
export interface DistanceOptions extends BackendOption {
  /** Row dimension; required when rows are a flat `Float32Array`, checked against the rows otherwise. */
  d?: number;
  /** Return squared Euclidean distances. @default false */
  squared?: boolean;
}

/** Options of {@link groupedNN}. */
export interface GroupedNNOptions extends BackendOption {
  /** Row dimension; required when rows are a flat `Float32Array`. */
  d?: number;
  /** Reduction over the groups, see {@link GroupedMode}. @default 'per-group' */
  mode?: GroupedMode;
  /** For `'mean-excluding-own'` (required there): the group of each query row, length nq; -1 = exclude none. */
  queryGroups?: Int32Array | readonly number[];
  /** Squared Euclidean distances. @default false */
  squared?: boolean;
}

/** Options of {@link softmaxWeights}. */
export interface SoftmaxOptions extends BackendOption {
  /** Temperature τ ≥ 0: 0 = hard arg-max (ties share), `Infinity` = uniform weights. @default 1 */
  tau?: number;
}

/** Options of {@link weightedMean} and {@link maxPool}. */
export interface PoolOptions extends BackendOption {
  /** Row dimension; required when rows are a flat `Float32Array`. */
  d?: number;
}

/** Options of {@link linkage}. */
export interface LinkageOptions extends BackendOption {
  /** Linkage method (SciPy's names). @default 'ward' (the paper's and sklearn's default) */
  method?: LinkageMethod;
  /**
   * Number of observations. @default inferred from `y.length = n(n−1)/2` (an empty `y` means n = 1)
   */
  n?: number;
}

/** A hierarchical clustering: SciPy's linkage matrix and the number of observations. */
export interface Linkage {
  /** `(n−1) × 4` row-major: `[a, b, height, size]`, a < b, the cluster made at row i has id n+i. */
  Z: Float64Array;
  /** Number of observations. */
  n: number;
}

/** A linkage, or a bare Z (`Float64Array` of length (n−1)·4, n inferred). */
export type LinkageInput = Linkage | Float64Array;

/** Options of {@link cutTree}: exactly one of `nClusters` or `height`. */
export type CutTreeOptions = ({ nClusters: number; height?: undefined } | { height: number; nClusters?: undefined }) &
  BackendOption;

/** Options of {@link fcluster}. */
export interface FclusterOptions extends BackendOption {
  /** `'maxclust'`: `t` is the maximum number of clusters; `'distance'`: `t` is the cophenetic distance threshold. @default 'maxclust' */
  criterion?: FclusterCriterion;
}

// ---------------------------------------------------------------------------------------------------------
// Normalisation and validation helpers (throw before anything reaches a backend).

interface Rows {
  data: Float32Array;
  n: number;
  d: number;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'Array';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  return typeof v;
}

function expectDim(name: string, d: unknown): number {
  if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
    throw new TypeError(`${name}: expected a non-negative integer, got ${typeof d === 'number' ? d : describe(d)}`);
  }
  expectNonEmpty(`${name} (dimension)`, d);
  return d;
}

function expectBool(name: string, v: unknown, dflt: boolean): boolean {
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw new TypeError(`${name}: expected a boolean, got ${describe(v)}`);
  return v;
}

function expectObject(name: string, v: unknown): void {
  if (v !== undefined && (v === null || typeof v !== 'object')) {
    throw new TypeError(`${name}: expected an options object, got ${describe(v)}`);
  }
}

/** Normalises rows (`Float32Array` + d, or `number[][]`) and checks shape, emptiness and finiteness. */
function toRows(name: string, x: unknown, d: unknown): Rows {
  if (x instanceof Float32Array) {
    if (d === undefined) throw new TypeError(`${name}: a flat Float32Array needs options.d (the row dimension)`);
    const dd = expectDim('d', d);
    if (x.length % dd !== 0) {
      throw new KernelError('ERR_SHAPE_MISMATCH', `${name}: expected a multiple of d=${dd} values (n rows × d), got ${x.length}`);
    }
    const n = x.length / dd;
    expectNonEmpty(`${name} (rows)`, n);
    expectFinite(name, x);
    return { data: x, n, d: dd };
  }
  if (!Array.isArray(x)) {
    throw new TypeError(`${name}: expected a Float32Array (flat, row-major) or an array of rows (number[][]), got ${describe(x)}`);
  }
  const n = x.length;
  expectNonEmpty(`${name} (rows)`, n);
  const first: unknown = x[0];
  if (typeof first === 'number') {
    throw new TypeError(`${name}: got a flat number[]; pass a Float32Array with options.d, or an array of rows (number[][])`);
  }
  const rowLen = (r: unknown, i: number): number => {
    if (Array.isArray(r) || (ArrayBuffer.isView(r) && !(r instanceof DataView))) return (r as ArrayLike<number>).length;
    throw new TypeError(`${name}[${i}]: expected a row (number[] or typed array), got ${describe(r)}`);
  };
  const dd = rowLen(first, 0);
  if (d !== undefined && expectDim('d', d) !== dd) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `${name}: options.d is ${d} but rows have ${dd} values`);
  }
  expectNonEmpty(`${name} (row dimension)`, dd);
  const data = new Float32Array(n * dd);
  for (let i = 0; i < n; i++) {
    const r = x[i] as ArrayLike<number>;
    const len = rowLen(r, i);
    if (len !== dd) throw new KernelError('ERR_SHAPE_MISMATCH', `${name}[${i}]: expected ${dd} values like row 0, got ${len}`);
    for (let k = 0; k < dd; k++) {
      const v = r[k];
      if (typeof v !== 'number') throw new TypeError(`${name}[${i}][${k}]: expected a number, got ${describe(v)}`);
      if (!Number.isFinite(v)) {
        throw new KernelError('ERR_NON_FINITE', `${name}: value at index ${i * dd + k} (row ${i}, column ${k}) is ${v}; all values must be finite`);
      }
      data[i * dd + k] = v;
    }
  }
  return { data, n, d: dd };
}

function toVector(name: string, v: unknown): Float32Array {
  if (v instanceof Float32Array) return v;
  if (Array.isArray(v)) {
    const out = new Float32Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const e: unknown = v[i];
      if (typeof e !== 'number') throw new TypeError(`${name}[${i}]: expected a number, got ${describe(e)}`);
      out[i] = e;
      if (!Number.isFinite(e)) {
        throw new KernelError('ERR_NON_FINITE', `${name}: value at index ${i} is ${e}; all values must be finite`);
      }
    }
    return out;
  }
  throw new TypeError(`${name}: expected a Float32Array or number[], got ${describe(v)}`);
}

function toIntArray<T extends Uint32Array | Int32Array>(
  name: string,
  v: unknown,
  ctor: { new (n: number): T; name: string },
  min: number,
): T {
  if (v instanceof ctor) return v;
  if (!Array.isArray(v)) throw new TypeError(`${name}: expected a ${ctor.name} or number[], got ${describe(v)}`);
  const out = new ctor(v.length);
  for (let i = 0; i < v.length; i++) {
    const e: unknown = v[i];
    if (typeof e !== 'number') throw new TypeError(`${name}[${i}]: expected a number, got ${describe(e)}`);
    if (!Number.isSafeInteger(e) || e < min || e > 0xffffffff) {
      throw new KernelError('ERR_INVALID_ARGUMENT', `${name}: value at index ${i} is ${e}; expected an integer ≥ ${min}`);
    }
    out[i] = e;
  }
  return out;
}

function toOffsets(name: string, v: unknown, nrows: number): Uint32Array {
  const o = toIntArray(name, v, Uint32Array, 0);
  expectOffsets(name, o, nrows);
  return o;
}

function toCondensed(y: unknown): Float64Array | Float32Array {
  if (y instanceof Float64Array || y instanceof Float32Array) return y;
  if (Array.isArray(y)) {
    const out = new Float64Array(y.length);
    for (let i = 0; i < y.length; i++) {
      const e: unknown = y[i];
      if (typeof e !== 'number') throw new TypeError(`y[${i}]: expected a number, got ${describe(e)}`);
      out[i] = e;
    }
    return out;
  }
  throw new TypeError(`y: expected a condensed distance vector (Float64Array, Float32Array or number[]), got ${describe(y)}`);
}

function inferN(len: number, n: unknown): number {
  if (n !== undefined) {
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
      throw new TypeError(`n: expected a non-negative integer, got ${typeof n === 'number' ? n : describe(n)}`);
    }
    expectNonEmpty('n (number of observations)', n);
    return n;
  }
  const m = numObs(len);
  if (m < 0) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `y: expected a condensed length n(n-1)/2 (0, 1, 3, 6, 10, …), got ${len}`);
  }
  return m;
}

function toLinkage(l: unknown): Linkage {
  let z: unknown;
  let n: unknown;
  if (l instanceof Float64Array) {
    z = l;
    if (l.length % 4 !== 0) throw new KernelError('ERR_SHAPE_MISMATCH', `Z: expected (n-1)*4 values, got ${l.length}`);
    n = l.length / 4 + 1;
  } else if (l !== null && typeof l === 'object' && 'Z' in l && 'n' in l) {
    z = (l as Linkage).Z;
    n = (l as Linkage).n;
  } else {
    throw new TypeError(`linkage: expected { Z: Float64Array, n } or a Float64Array Z, got ${describe(l)}`);
  }
  if (!(z instanceof Float64Array)) throw new TypeError(`Z: expected a Float64Array, got ${describe(z)}`);
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) {
    throw new TypeError(`n: expected a non-negative integer, got ${typeof n === 'number' ? n : describe(n)}`);
  }
  expectLinkageMatrix(z, n);
  return { Z: z, n };
}

// ---------------------------------------------------------------------------------------------------------
// Distances

interface PdistPlan {
  b: KernelBackend;
  x: Rows;
  squared: boolean;
}
function planPdist(x: RowsInput, options: DistanceOptions | undefined): PdistPlan {
  expectObject('options', options);
  const { d, squared, backend } = options ?? {};
  const rows = toRows('x', x, d);
  return { b: getBackend(backend), x: rows, squared: expectBool('squared', squared, false) };
}

/**
 * Condensed pairwise Euclidean distances (SciPy `pdist` layout: upper triangle, row-major).
 * @param x rows: `Float32Array` of size `n*d` (with `options.d`) or `number[][]` (n rows of d values)
 * @param options `d`, `squared` (@default false), `backend`
 * @returns `Float32Array` of length n(n−1)/2; entry for i < j at `n*i − i(i+1)/2 + (j−i−1)`
 * @throws {TypeError} x is not a Float32Array or array of rows; `d` missing for a flat array
 * @throws {KernelError} `ERR_SHAPE_MISMATCH` (length not a multiple of d, ragged rows), `ERR_NON_FINITE`,
 *   `ERR_EMPTY` (no rows or d = 0), `ERR_BACKEND_UNAVAILABLE`
 */
export function pdist(x: RowsInput, options?: DistanceOptions): Float32Array {
  const p = planPdist(x, options);
  return p.b.pdist(p.x.data, p.x.n, p.x.d, p.squared);
}

/** Asynchronous {@link pdist} (native: on the libuv thread pool). Validation errors reject the promise. */
export async function pdistAsync(x: RowsInput, options?: DistanceOptions): Promise<Float32Array> {
  const p = planPdist(x, options);
  return p.b.pdistAsync(p.x.data, p.x.n, p.x.d, p.squared);
}

interface CdistPlan {
  b: KernelBackend;
  q: Rows;
  base: Rows;
  squared: boolean;
}
function planCdist(q: RowsInput, base: RowsInput, options: DistanceOptions | undefined): CdistPlan {
  expectObject('options', options);
  const { d, squared, backend } = options ?? {};
  const qr = toRows('queries', q, d);
  const br = toRows('base', base, d ?? qr.d);
  if (qr.d !== br.d) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `base: rows have ${br.d} values but queries have ${qr.d}`);
  }
  return { b: getBackend(backend), q: qr, base: br, squared: expectBool('squared', squared, false) };
}

/**
 * Euclidean distances between every query row and every base row.
 * @param q query rows (`Float32Array` of size `nq*d` or `number[][]`)
 * @param base base rows (`Float32Array` of size `nb*d` or `number[][]`)
 * @param options `d`, `squared` (@default false), `backend`
 * @returns `Float32Array` `nq × nb`, row-major
 * @throws {TypeError} wrong input types
 * @throws {KernelError} `ERR_SHAPE_MISMATCH` (lengths vs d, different dimensions), `ERR_NON_FINITE`,
 *   `ERR_EMPTY`, `ERR_BACKEND_UNAVAILABLE`
 */
export function cdist(q: RowsInput, base: RowsInput, options?: DistanceOptions): Float32Array {
  const p = planCdist(q, base, options);
  return p.b.cdist(p.q.data, p.q.n, p.base.data, p.base.n, p.q.d, p.squared);
}

/** Asynchronous {@link cdist}. Validation errors reject the promise. */
export async function cdistAsync(q: RowsInput, base: RowsInput, options?: DistanceOptions): Promise<Float32Array> {
  const p = planCdist(q, base, options);
  return p.b.cdistAsync(p.q.data, p.q.n, p.base.data, p.base.n, p.q.d, p.squared);
}

// ---------------------------------------------------------------------------------------------------------
// Grouped nearest neighbours

function planGrouped(queries: RowsInput, base: RowsInput, groupOffsets: OffsetsInput, options: GroupedNNOptions | undefined) {
  expectObject('options', options);
  const { d, mode = 'per-group', queryGroups, squared, backend } = options ?? {};
  expectGroupedMode(mode);
  const q = toRows('queries', queries, d);
  // The same input twice (e.g. one number[][]) is converted once, so that the self-join below is recognised.
  const b = base === queries ? q : toRows('base', base, d ?? q.d);
  if (q.d !== b.d) throw new KernelError('ERR_SHAPE_MISMATCH', `base: rows have ${b.d} values but queries have ${q.d}`);
  const offsets = toOffsets('groupOffsets', groupOffsets, b.n);
  const ng = offsets.length - 1;
  let qg: Int32Array | undefined;
  if (mode === 'mean-excluding-own') {
    if (queryGroups === undefined) {
      throw new KernelError('ERR_INVALID_ARGUMENT', "queryGroups: required for mode 'mean-excluding-own' (length nq; -1 = none)");
    }
    qg = toIntArray('queryGroups', queryGroups, Int32Array, -1);
    expectLength('queryGroups', qg, q.n, 'one group index per query row');
    for (let i = 0; i < qg.length; i++) {
      if (qg[i]! < -1 || qg[i]! >= ng) {
        throw new KernelError('ERR_INVALID_ARGUMENT', `queryGroups: value at index ${i} is ${qg[i]}; expected -1 or a group index in [0, ${ng})`);
      }
    }
  }
  // The unsupervised layout (queries = base, each row's own group = its group): the backends may then multiply
  // each pair of groups once (see GroupedNNArgs.selfJoin).
  const sameRows = q.data.buffer === b.data.buffer && q.data.byteOffset === b.data.byteOffset && q.data.length === b.data.length;
  let selfJoin = sameRows;
  if (selfJoin && qg) {
    for (let g = 0; g < ng && selfJoin; g++) {
      for (let r = offsets[g]!; r < offsets[g + 1]!; r++) {
        if (qg[r] !== g) {
          selfJoin = false;
          break;
        }
      }
    }
  }
  return {
    be: getBackend(backend),
    args: {
      queries: q.data,
      nq: q.n,
      base: b.data,
      groupOffsets: offsets,
      d: q.d,
      mode,
      queryGroups: qg,
      squared: expectBool('squared', squared, false),
      ...(selfJoin ? { selfJoin: true } : {}),
    },
  };
}

/**
 * Grouped nearest-neighbour search: for each query row q and each group g of the base (e.g. one image's
 * patches), `dmin[q][g]` = distance from q to its nearest row of g, then reduced per `mode`:
 * `'per-group'` → the `nq × ngroups` matrix; `'min'` → min over groups (semi-supervised scores);
 * `'mean-excluding-own'` → mean over groups other than `queryGroups[q]` (unsupervised scores; 0 when there
 * is no other group).
 * @param queries query rows (`Float32Array` `nq*d` or `number[][]`)
 * @param base base rows, groups stored one after another (`Float32Array` `nb*d` or `number[][]`)
 * @param groupOffsets group boundaries in rows: length ngroups+1, `[0, …, nb]`, strictly increasing
 * @param options `d`, `mode` (@default 'per-group'), `queryGroups`, `squared` (@default false), `backend`
 * @returns `Float32Array` of length `nq*ngroups` (`'per-group'`) or `nq`
 * @throws {TypeError} wrong input types
 * @throws {KernelError} `ERR_INVALID_METHOD` (unknown mode), `ERR_SHAPE_MISMATCH`, `ERR_NON_FINITE`,
 *   `ERR_EMPTY`, `ERR_INVALID_ARGUMENT` (bad offsets, empty group, missing/out-of-range queryGroups)
 */
export function groupedNN(queries: RowsInput, base: RowsInput, groupOffsets: OffsetsInput, options?: GroupedNNOptions): Float32Array {
  const p = planGrouped(queries, base, groupOffsets, options);
  return p.be.groupedNN(p.args);
}

/** Asynchronous {@link groupedNN} (native: on the libuv thread pool). Validation errors reject the promise. */
export async function groupedNNAsync(
  queries: RowsInput,
  base: RowsInput,
  groupOffsets: OffsetsInput,
  options?: GroupedNNOptions,
): Promise<Float32Array> {
  const p = planGrouped(queries, base, groupOffsets, options);
  return p.be.groupedNNAsync(p.args);
}

// ---------------------------------------------------------------------------------------------------------
// Weights and pooling

/**
 * Patch weights: softmax of `scores / tau` within each bag, max-subtracted.
 * @param scores one score per row (`Float32Array` or `number[]`)
 * @param bagOffsets bag boundaries: length nbags+1, `[0, …, scores.length]`, strictly increasing
 * @param options `tau` (@default 1; 0 = arg-max with ties sharing, `Infinity` = uniform), `backend`
 * @returns `Float32Array` of `scores.length` weights, each bag summing to 1
 * @throws {TypeError} wrong input types (tau not a number)
 * @throws {KernelError} `ERR_NON_FINITE`, `ERR_EMPTY`, `ERR_INVALID_ARGUMENT` (tau < 0 or NaN, bad offsets)
 */
export function softmaxWeights(scores: VectorInput, bagOffsets: OffsetsInput, options?: SoftmaxOptions): Float32Array {
  expectObject('options', options);
  const { tau = 1, backend } = options ?? {};
  if (typeof tau !== 'number') throw new TypeError(`tau: expected a number, got ${describe(tau)}`);
  if (Number.isNaN(tau) || tau < 0) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `tau: expected a number ≥ 0 (0 = arg-max, Infinity = uniform), got ${tau}`);
  }
  const s = toVector('scores', scores);
  expectNonEmpty('scores', s.length);
  expectFinite('scores', s);
  const o = toOffsets('bagOffsets', bagOffsets, s.length);
  return getBackend(backend).softmaxWeights(s, o, tau);
}

/**
 * Weighted mean of each bag's rows: `x_b = Σ w_r·row_r / Σ w_r` over the rows of bag b.
 * @param rows rows of all bags, one after another (`Float32Array` `nrows*d` or `number[][]`)
 * @param bagOffsets bag boundaries: length nbags+1, `[0, …, nrows]`, strictly increasing
 * @param weights one weight ≥ 0 per row (`Float32Array` or `number[]`), each bag's sum > 0
 * @param options `d`, `backend`
 * @returns `Float32Array` `nbags × d`
 * @throws {TypeError} wrong input types
 * @throws {KernelError} `ERR_SHAPE_MISMATCH` (weights length ≠ nrows), `ERR_NON_FINITE`, `ERR_EMPTY`,
 *   `ERR_INVALID_ARGUMENT` (negative weight, a bag with weight sum 0, bad offsets)
 */
export function weightedMean(rows: RowsInput, bagOffsets: OffsetsInput, weights: VectorInput, options?: PoolOptions): Float32Array {
  expectObject('options', options);
  const { d, backend } = options ?? {};
  const r = toRows('rows', rows, d);
  const o = toOffsets('bagOffsets', bagOffsets, r.n);
  const w = toVector('weights', weights);
  expectLength('weights', w, r.n, 'one weight per row');
  expectFinite('weights', w);
  expectBagWeights(w, o);
  return getBackend(backend).weightedMean(r.data, o, r.d, w);
}

/**
 * Per-dimension max over each bag's rows (the max-pooling baseline).
 * @param rows rows of all bags (`Float32Array` `nrows*d` or `number[][]`)
 * @param bagOffsets bag boundaries: length nbags+1, `[0, …, nrows]`, strictly increasing
 * @param options `d`, `backend`
 * @returns `Float32Array` `nbags × d`
 * @throws {TypeError} wrong input types
 * @throws {KernelError} `ERR_SHAPE_MISMATCH`, `ERR_NON_FINITE`, `ERR_EMPTY`, `ERR_INVALID_ARGUMENT` (bad offsets)
 */
export function maxPool(rows: RowsInput, bagOffsets: OffsetsInput, options?: PoolOptions): Float32Array {
  expectObject('options', options);
  const { d, backend } = options ?? {};
  const r = toRows('rows', rows, d);
  const o = toOffsets('bagOffsets', bagOffsets, r.n);
  return getBackend(backend).maxPool(r.data, o, r.d);
}

// ---------------------------------------------------------------------------------------------------------
// Hierarchical clustering

function planLinkage(y: Float64Array | Float32Array | readonly number[], options: LinkageOptions | undefined) {
  expectObject('options', options);
  const { method = 'ward', n, backend } = options ?? {};
  expectLinkageMethod(method);
  const yy = toCondensed(y);
  const nn = inferN(yy.length, n);
  expectCondensed(yy, nn, method);
  return { b: getBackend(backend), y: yy, n: nn, method };
}

/**
 * Agglomerative hierarchical clustering of a condensed distance matrix, SciPy's `linkage(y, method)`:
 * single → MST, complete/average/weighted/ward → NN-chain, centroid/median → generic algorithm, all in f64.
 * On f64 input Z is identical to SciPy's, ties included.
 * @param y condensed distances (length n(n−1)/2), e.g. from {@link pdist}
 * @param options `method` (@default 'ward'), `n` (@default inferred), `backend`
 * @returns `{ Z, n }`: Z is `(n−1) × 4` row-major `[a, b, height, size]` (a < b; cluster of row i has id n+i)
 * @throws {TypeError} y is not a float array / number[]
 * @throws {KernelError} `ERR_INVALID_METHOD` (lists the seven methods), `ERR_SHAPE_MISMATCH` (length is not
 *   n(n−1)/2), `ERR_NON_FINITE`, `ERR_EMPTY` (n = 0), `ERR_INVALID_ARGUMENT` (negative distance with
 *   ward/centroid/median)
 */
export function linkage(y: Float64Array | Float32Array | readonly number[], options?: LinkageOptions): Linkage {
  const p = planLinkage(y, options);
  return { Z: p.b.linkage(p.y, p.n, p.method), n: p.n };
}

/** Asynchronous {@link linkage} (native: on the libuv thread pool). Validation errors reject the promise. */
export async function linkageAsync(y: Float64Array | Float32Array | readonly number[], options?: LinkageOptions): Promise<Linkage> {
  const p = planLinkage(y, options);
  return { Z: await p.b.linkageAsync(p.y, p.n, p.method), n: p.n };
}

/** Options of {@link wardFromVectors}. */
export interface WardFromVectorsOptions extends BackendOption {
  /** Row dimension; required when rows are a flat `Float32Array`, checked against the rows otherwise. */
  d?: number;
  /**
   * Size-weighted Ward: row i is the centroid of a cluster of `sizes[i]` observations (integers ≥ 1, one per
   * row), e.g. micro-clusters of a large set. The distance between clusters of a and b observations is then
   * `sqrt(2ab/(a+b))·‖c_a − c_b‖`. Column 3 of Z still counts rows. @default all 1
   */
  sizes?: Uint32Array | readonly number[];
}

function planWardFromVectors(x: RowsInput, options: WardFromVectorsOptions | undefined) {
  expectObject('options', options);
  const { d, backend, sizes } = options ?? {};
  const rows = toRows('x', x, d);
  let s: Uint32Array | undefined;
  if (sizes !== undefined) {
    if (!(sizes instanceof Uint32Array) && !Array.isArray(sizes)) throw new TypeError('sizes: expected a Uint32Array or an array of integers');
    if (sizes.length !== rows.n) throw new KernelError('ERR_SHAPE_MISMATCH', `sizes: expected length ${rows.n} (one per row), got ${sizes.length}`);
    for (let i = 0; i < sizes.length; i++) {
      const v = sizes[i]!;
      if (!Number.isSafeInteger(v) || v < 1 || v > 0xffffffff) {
        throw new KernelError('ERR_INVALID_ARGUMENT', `sizes[${i}]: expected an integer in 1..${0xffffffff}, got ${v}`);
      }
    }
    s = sizes instanceof Uint32Array ? sizes : Uint32Array.from(sizes);
  }
  return { b: getBackend(backend), x: rows, sizes: s };
}

/**
 * Ward linkage straight from the observations, without the n(n−1)/2 condensed matrix: the nearest-neighbour
 * chain on cluster centroids (f64), `O(n·d)` memory and `O(n²·d)` time (native: each scan split over the thread
 * pool). Use it when `pdist` + {@link linkage} would not fit in memory (100 000 rows: a 20 GB f32 condensed
 * matrix, versus 100 MB of centroids at d = 128).
 *
 * Same Z as `linkage(pdist(x), {method: 'ward'})` up to floating-point rounding: Ward's distance between
 * clusters A and B is `sqrt(2|A||B|/(|A|+|B|))·‖c_A − c_B‖`, which is what SciPy's Lance–Williams recurrence
 * computes from Euclidean distances, so the heights agree to about 1e-12 relative against an f64 condensed
 * matrix (about 1e-7 against `pdist`'s f32 distances), and the merges agree except between merges whose heights
 * tie up to that rounding. Ties are broken like SciPy's NN-chain (previous chain element, then the lowest
 * index); the three backends return the same Z bit for bit.
 * @param x rows: `Float32Array` of size `n*d` (with `options.d`) or `number[][]`
 * @param options `d`, `backend`, `sizes` (size-weighted Ward on cluster centroids)
 * @returns `{ Z, n }`, the same shape as {@link linkage}'s
 * @throws {TypeError} x is not a Float32Array or array of rows; `d` missing for a flat array
 * @throws {KernelError} `ERR_SHAPE_MISMATCH`, `ERR_NON_FINITE`, `ERR_EMPTY` (no rows or d = 0),
 *   `ERR_BACKEND_UNAVAILABLE`
 */
export function wardFromVectors(x: RowsInput, options?: WardFromVectorsOptions): Linkage {
  const p = planWardFromVectors(x, options);
  return { Z: p.b.wardFromVectors(p.x.data, p.x.n, p.x.d, p.sizes), n: p.x.n };
}

/** Asynchronous {@link wardFromVectors} (native: on the libuv thread pool). Validation errors reject the promise. */
export async function wardFromVectorsAsync(x: RowsInput, options?: WardFromVectorsOptions): Promise<Linkage> {
  const p = planWardFromVectors(x, options);
  return { Z: await p.b.wardFromVectorsAsync(p.x.data, p.x.n, p.x.d, p.sizes), n: p.x.n };
}

/**
 * Flat clusters with **0-based** labels numbered in order of first appearance over the observations
 * (SciPy `cut_tree` numbering).
 * - `{ nClusters: k }`: exactly k clusters, the first n−k rows of Z applied (SciPy `cut_tree(Z, n_clusters=k)`).
 * - `{ height: h }`: a merge is kept when its subtree's maximum height is ≤ h (SciPy `fcluster(Z, h, 'distance')`;
 *   for a monotone Z, simply the merges with height ≤ h).
 * @param linkage `{ Z, n }` from {@link linkage}, or a bare Z
 * @param options exactly one of `nClusters` / `height`, plus `backend`
 * @returns `Int32Array` of n labels in 0..k−1
 * @throws {TypeError} wrong input types, non-integer nClusters
 * @throws {KernelError} `ERR_K_OUT_OF_RANGE` (nClusters outside 1..n), `ERR_INVALID_ARGUMENT` (neither or both
 *   of nClusters/height, NaN height, invalid Z), `ERR_SHAPE_MISMATCH`, `ERR_NON_FINITE`
 */
export function cutTree(linkage: LinkageInput, options: CutTreeOptions): Int32Array {
  const { Z, n } = toLinkage(linkage);
  if (options === null || typeof options !== 'object') throw new TypeError(`options: expected { nClusters } or { height }, got ${describe(options)}`);
  const { nClusters, height, backend } = options;
  if ((nClusters === undefined) === (height === undefined)) {
    throw new KernelError('ERR_INVALID_ARGUMENT', 'cutTree: give exactly one of options.nClusters or options.height');
  }
  if (nClusters !== undefined) {
    if (typeof nClusters !== 'number' || !Number.isInteger(nClusters)) {
      throw new TypeError(`nClusters: expected an integer, got ${typeof nClusters === 'number' ? nClusters : describe(nClusters)}`);
    }
    if (nClusters < 1 || nClusters > n) {
      throw new KernelError('ERR_K_OUT_OF_RANGE', `nClusters: expected an integer in 1..${n}, got ${nClusters}`);
    }
    return getBackend(backend).cutK(Z, n, nClusters);
  }
  if (typeof height !== 'number') throw new TypeError(`height: expected a number, got ${describe(height)}`);
  if (Number.isNaN(height)) throw new KernelError('ERR_INVALID_ARGUMENT', 'height: expected a number, got NaN');
  return getBackend(backend).cutHeight(Z, n, height);
}

/**
 * Flat clusters with SciPy's **1-based** labels, `scipy.cluster.hierarchy.fcluster(Z, t, criterion)`, including
 * SciPy's cluster numbering (its depth-first tree walk) and its handling of ties.
 * - `'maxclust'`: at most `t` clusters (SciPy's threshold search over the merge heights; with tied heights it
 *   may give fewer than t). `t ≥ n` gives every observation its own cluster, labelled i+1.
 * - `'distance'`: observations whose cophenetic distance is ≤ t share a cluster.
 * @param linkage `{ Z, n }` from {@link linkage}, or a bare Z
 * @param t maximum number of clusters (integer ≥ 1) or distance threshold
 * @param options `criterion` (@default 'maxclust'), `backend`
 * @returns `Int32Array` of n labels in 1..(number of clusters)
 * @throws {TypeError} wrong input types; non-integer t for 'maxclust'
 * @throws {KernelError} `ERR_INVALID_METHOD` (unknown criterion), `ERR_K_OUT_OF_RANGE` (t < 1 for 'maxclust'),
 *   `ERR_INVALID_ARGUMENT` (NaN t, invalid Z), `ERR_SHAPE_MISMATCH`, `ERR_NON_FINITE`
 */
export function fcluster(linkage: LinkageInput, t: number, options?: FclusterOptions): Int32Array {
  const { Z, n } = toLinkage(linkage);
  expectObject('options', options);
  const { criterion = 'maxclust', backend } = options ?? {};
  if (!(FCLUSTER_CRITERIA as readonly string[]).includes(criterion)) {
    throw new KernelError('ERR_INVALID_METHOD', `criterion: expected one of ${FCLUSTER_CRITERIA.join(', ')}, got ${JSON.stringify(criterion)}`);
  }
  if (typeof t !== 'number') throw new TypeError(`t: expected a number, got ${describe(t)}`);
  if (Number.isNaN(t)) throw new KernelError('ERR_INVALID_ARGUMENT', 't: expected a number, got NaN');
  let h: number;
  if (criterion === 'maxclust') {
    if (!Number.isInteger(t) && t !== Infinity) throw new TypeError(`t: expected an integer number of clusters, got ${t}`);
    if (t < 1) throw new KernelError('ERR_K_OUT_OF_RANGE', `t: expected a maximum number of clusters ≥ 1, got ${t}`);
    if (t >= n) {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) out[i] = i + 1;
      return out;
    }
    h = maxclustThreshold(Z, n, t);
  } else {
    h = t;
  }
  const partition = getBackend(backend).cutHeight(Z, n, h);
  return scipyNumbering(Z, n, partition);
}

// ---------------------------------------------------------------------------------------------------------
// Condensed ↔ square

/**
 * Square distance matrix from a condensed vector (SciPy `squareform(y)`), zero diagonal.
 * @param y condensed distances, length n(n−1)/2
 * @returns `Float64Array` `n × n`, row-major (n = (1 + √(1 + 8·len)) / 2)
 * @throws {TypeError} wrong input type
 * @throws {KernelError} `ERR_SHAPE_MISMATCH` (length not triangular)
 */
export function squareform(y: Float64Array | Float32Array | readonly number[]): Float64Array {
  const yy = toCondensed(y);
  const n = inferN(yy.length, undefined);
  const m = new Float64Array(n * n);
  let p = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      m[i * n + j] = yy[p]!;
      m[j * n + i] = yy[p]!;
      p++;
    }
  }
  return m;
}

/**
 * Condensed vector from a square distance matrix (SciPy `squareform(X)`): the upper triangle, row by row.
 * @param m `n × n` as a flat `Float64Array`/`Float32Array` (n = √length) or `number[][]`
 * @param options `checks`: require a symmetric matrix with a zero diagonal (@default true)
 * @returns `Float64Array` of length n(n−1)/2
 * @throws {TypeError} wrong input type
 * @throws {KernelError} `ERR_SHAPE_MISMATCH` (not square), `ERR_EMPTY`, `ERR_INVALID_ARGUMENT` (asymmetric or
 *   non-zero diagonal, when checked)
 */
export function condensed(m: Float64Array | Float32Array | readonly ArrayLike<number>[], options?: { checks?: boolean }): Float64Array {
  expectObject('options', options);
  const checks = expectBool('checks', options?.checks, true);
  let get: (i: number, j: number) => number;
  let n: number;
  if (m instanceof Float64Array || m instanceof Float32Array) {
    n = Math.round(Math.sqrt(m.length));
    if (n * n !== m.length) throw new KernelError('ERR_SHAPE_MISMATCH', `m: expected n×n values, got ${m.length}`);
    get = (i, j) => m[i * n + j]!;
  } else if (Array.isArray(m)) {
    n = m.length;
    for (let i = 0; i < n; i++) {
      const r: unknown = m[i];
      if (!(Array.isArray(r) || ArrayBuffer.isView(r))) throw new TypeError(`m[${i}]: expected a row, got ${describe(r)}`);
      if ((r as ArrayLike<number>).length !== n) {
        throw new KernelError('ERR_SHAPE_MISMATCH', `m[${i}]: expected ${n} values (square matrix), got ${(r as ArrayLike<number>).length}`);
      }
    }
    get = (i, j) => (m[i] as ArrayLike<number>)[j]!;
  } else {
    throw new TypeError(`m: expected a Float64Array, Float32Array or number[][], got ${describe(m)}`);
  }
  expectNonEmpty('m', n);
  const y = new Float64Array((n * (n - 1)) / 2);
  let p = 0;
  for (let i = 0; i < n; i++) {
    if (checks && get(i, i) !== 0) {
      throw new KernelError('ERR_INVALID_ARGUMENT', `m: diagonal entry (${i}, ${i}) is ${get(i, i)}; a distance matrix has a zero diagonal`);
    }
    for (let j = i + 1; j < n; j++) {
      const v = get(i, j);
      if (checks && v !== get(j, i)) {
        throw new KernelError('ERR_INVALID_ARGUMENT', `m: not symmetric at (${i}, ${j}): ${v} vs ${get(j, i)}`);
      }
      y[p++] = v;
    }
  }
  return y;
}
