/**
 * @file Flat clusters from a linkage matrix Z (inputs trusted; see `validate.ts`).
 *
 * - {@link cutKRef}: apply the first n−k rows of Z (SciPy `cut_tree(Z, n_clusters=k)`), exactly k clusters.
 * - {@link cutHeightRef}: keep a merge when its height *and the heights of all merges below it* are ≤ h, i.e.
 *   the subtree's maximum height is ≤ h (SciPy `fcluster(Z, h, 'distance')`; for a monotone Z this is simply
 *   "merges with height ≤ h").
 *
 * Both return 0-based labels numbered in order of first appearance over the observations.
 * {@link scipyLabelOrder} and {@link maxclustThreshold} let the public `fcluster` reproduce SciPy's own 1-based
 * numbering and its `maxclust` threshold search.
 * @module bindings/reference/fcluster
 */
import type { TableMethods } from '../backend.js';
import { KernelError } from '../errors.js';
import { ARG_KINDS, expectLinkageMatrix, expectTypedArray } from '../validate.js';

/** Union-find with path halving over `m` elements. */
function makeUF(m: number): { find: (x: number) => number; union: (a: number, b: number) => void } {
  const parent = new Int32Array(m);
  for (let i = 0; i < m; i++) parent[i] = i;
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  return { find, union: (a, b) => void (parent[find(a)] = find(b)) };
}

/** Applies the rows of Z for which `keep(row)` is true; returns 0-based labels in order of first appearance. */
function applyRows(z: ArrayLike<number>, n: number, keep: (row: number) => boolean): Int32Array {
  const uf = makeUF(2 * n - 1);
  for (let i = 0; i < n - 1; i++) {
    if (!keep(i)) continue;
    uf.union(z[4 * i]!, n + i);
    uf.union(z[4 * i + 1]!, n + i);
  }
  return firstAppearance(n, (i) => uf.find(i));
}

/** Renumbers `key(i)` for i in 0..n−1 as 0,1,2… in order of first appearance. */
function firstAppearance(n: number, key: (i: number) => number): Int32Array {
  const out = new Int32Array(n);
  const seen = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const k = key(i);
    let l = seen.get(k);
    if (l === undefined) {
      l = seen.size;
      seen.set(k, l);
    }
    out[i] = l;
  }
  return out;
}

/** Exactly `k` clusters (1 ≤ k ≤ n): the first n−k merges of Z applied. 0-based labels, first-appearance order. */
export function cutKRef(z: ArrayLike<number>, n: number, k: number): Int32Array {
  return applyRows(z, n, (i) => i < n - k);
}

/** For each row of Z, the maximum height over its subtree (SciPy `get_max_dist_for_each_cluster`). */
export function maxDists(z: ArrayLike<number>, n: number): Float64Array {
  const md = new Float64Array(Math.max(0, n - 1));
  for (let i = 0; i < n - 1; i++) {
    let m = z[4 * i + 2]!;
    const a = z[4 * i]!;
    const b = z[4 * i + 1]!;
    if (a >= n && md[a - n]! > m) m = md[a - n]!;
    if (b >= n && md[b - n]! > m) m = md[b - n]!;
    md[i] = m;
  }
  return md;
}

/** Clusters whose subtree's maximum merge height is ≤ `height`. 0-based labels, first-appearance order. */
export function cutHeightRef(z: ArrayLike<number>, n: number, height: number): Int32Array {
  const md = maxDists(z, n);
  return applyRows(z, n, (i) => md[i]! <= height);
}

/**
 * The order in which SciPy's `cluster_monocrit` assigns observations (so the order in which it numbers the flat
 * clusters): depth-first from the root; at each node the non-leaf left child, then the non-leaf right child,
 * then the leaf children left before right.
 */
export function scipyLabelOrder(z: ArrayLike<number>, n: number): Int32Array {
  const order = new Int32Array(n);
  if (n === 1) return order;
  let p = 0;
  const stack = new Int32Array(n);
  const visited = new Uint8Array(2 * n - 1);
  let k = 0;
  stack[0] = 2 * n - 2;
  while (k >= 0) {
    const root = stack[k]! - n;
    const l = z[4 * root]!;
    const r = z[4 * root + 1]!;
    if (l >= n && !visited[l]) {
      visited[l] = 1;
      stack[++k] = l;
      continue;
    }
    if (r >= n && !visited[r]) {
      visited[r] = 1;
      stack[++k] = r;
      continue;
    }
    if (l < n) order[p++] = l;
    if (r < n) order[p++] = r;
    k--;
  }
  return order;
}

/**
 * Renumbers a partition (any labels) 1-based as SciPy's `fcluster` does: clusters in the order their first
 * observation appears in {@link scipyLabelOrder}.
 */
export function scipyNumbering(z: ArrayLike<number>, n: number, labels: ArrayLike<number>): Int32Array {
  const order = scipyLabelOrder(z, n);
  const map = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const l = labels[order[i]!]!;
    if (!map.has(l)) map.set(l, map.size + 1);
  }
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = map.get(labels[i]!)!;
  return out;
}

/**
 * SciPy's `maxclust` threshold (`cluster_maxclust_monocrit`): binary search over the rows' subtree-max heights
 * for the smallest one whose cut gives at most `maxClusters` clusters. Only meaningful for maxClusters < n.
 */
export function maxclustThreshold(z: ArrayLike<number>, n: number, maxClusters: number): number {
  const md = maxDists(z, n);
  let lower = -1;
  let upper = n - 1;
  while (upper - lower > 1) {
    const i = (lower + upper) >> 1;
    const thresh = md[i]!;
    let kept = 0;
    for (let r = 0; r < n - 1; r++) if (md[r]! <= thresh) kept++;
    if (n - kept > maxClusters) lower = i;
    else upper = i;
  }
  return md[upper]!;
}

/** The table kernels `cutK` and `cutHeight`: the checks of the Rust kernels, then the references above. */
export const kernels = {
  cutK(z, n, k) {
    expectTypedArray('cutK', 'z', z, ARG_KINDS.z);
    expectLinkageMatrix(z, n);
    if (!Number.isSafeInteger(k) || k < 1 || k > n) {
      throw new KernelError('ERR_K_OUT_OF_RANGE', `k: expected an integer in 1..${n}, got ${k}`);
    }
    return cutKRef(z, n, k);
  },
  cutHeight(z, n, height) {
    expectTypedArray('cutHeight', 'z', z, ARG_KINDS.z);
    expectLinkageMatrix(z, n);
    if (typeof height !== 'number' || Number.isNaN(height)) {
      throw new KernelError('ERR_INVALID_ARGUMENT', `height: expected a number, got ${height}`);
    }
    return cutHeightRef(z, n, height);
  },
} satisfies Partial<TableMethods>;
