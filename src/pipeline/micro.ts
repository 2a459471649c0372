/**
 * @file Approximate Ward for large image sets (100k images on one machine; docs/performance.md): the n embeddings are
 * first summarised by m ≪ n **micro-clusters** (k-means, deterministic), then **size-weighted Ward** runs exactly
 * on the m centroids (`KernelBackend.wardFromVectors` with `sizes`), and every image takes its micro-cluster's
 * label. Exact Ward on the embeddings costs O(n²·d) time (≈1 h at n = 100 000); this costs O(n·m·d·iterations)
 * for the k-means (matrix-product distances) plus O(m²·d) for the Ward, with O((n + m)·d) memory and no n² matrix.
 *
 * Why size-weighted Ward on centroids is the right reduction: Ward's merge cost between clusters A and B depends
 * only on their sizes and centroids, Δ(A, B) = |A||B|/(|A|+|B|)·‖c_A − c_B‖². If every micro-cluster were a
 * cluster of the exact Ward tree, Ward on the weighted centroids would reproduce the exact tree above them. The
 * approximation is only in the micro-clusters themselves (k-means cells instead of Ward's own small clusters);
 * `benches/ward-approx.mjs` measures the agreement with exact Ward (README "Clustering 100k images").
 *
 * Determinism: no random seed. The initial centres are the rows at evenly spaced indices (stride n/m, in input
 * order, i.e. the sorted file list); Lloyd iterations reassign every row to its nearest centre and recompute the
 * centres (f64 sums in index order). The distances come from the backend's f32 `cdist` kernel, but each row's
 * nearest centre is **confirmed in f64** among every centre within a rounding margin of the f32 minimum (ties: the
 * lowest index), so the assignment does not depend on the backend's summation order: the three backends give the
 * same micro-clusters (tested), hence the same labels.
 * @module pipeline/micro
 */
import type { KernelBackend } from '../../bindings/backend.js';
import { KernelError } from '../errors.js';
import { throwIfAborted } from './context.js';

/** Above this many images, `clusterImages` (with `clustering: 'auto'`) uses approximate Ward. */
export const DEFAULT_APPROX_ABOVE = 20_000;
/**
 * Default number of micro-clusters: exact size-weighted Ward on 10 000 centroids takes about a minute on 2 cores
 * (d = 256), and the agreement with exact Ward stays high (README "Clustering 100k images").
 */
export const DEFAULT_MICRO_CLUSTERS = 10_000;
/**
 * Default maximum number of Lloyd iterations (each one n·m·d multiply-adds); stops earlier once no row moves. 2 and 5
 * give the same agreement with exact Ward on the generated mixture of `benches/ward-approx.mjs` (and no trend on real
 * patch embeddings) at 3 instead of 6 assignment passes.
 */
export const DEFAULT_MICRO_ITERATIONS = 2;
/** How the clustering stage runs: exact Ward (or another linkage), approximate Ward above a size, or decided by size. */
export type ClusteringMode = 'auto' | 'exact' | 'approximate';
/** Runtime list of {@link ClusteringMode}s. */
export const CLUSTERING_MODES = ['auto', 'exact', 'approximate'] as const;

/** Options of {@link microClusters}. */
export interface MicroClusterOptions {
  backend: KernelBackend;
  /** Maximum Lloyd iterations (0 = the evenly spaced rows themselves, with every row assigned once). @default {@link DEFAULT_MICRO_ITERATIONS} */
  iterations?: number;
  signal?: AbortSignal;
  /** Called after each assignment pass with (pass, passes at most, rows that changed micro-cluster). */
  onProgress?: (pass: number, passes: number, moved: number) => void;
}

/** Micro-clusters of n rows. */
export interface MicroClusters {
  /** Number of (non-empty) micro-clusters. */
  m: number;
  /** Their centroids, `m × d` (f32 of the f64 means). */
  centroids: Float32Array;
  /** Rows in each, length m (all ≥ 1). */
  sizes: Uint32Array;
  /** Micro-cluster of each row, length n, values in 0..m−1. */
  assign: Int32Array;
  /** Assignment passes run (iterations + 1 unless it converged earlier). */
  passes: number;
  /** Rows that changed micro-cluster in the last pass (0: converged). */
  moved: number;
}

/** Validates a micro-cluster count: an integer ≥ 2. */
export function checkMicroClusters(m: unknown): void {
  if (typeof m !== 'number' || !Number.isSafeInteger(m) || m < 2) throw new RangeError(`microClusters: expected an integer ≥ 2, got ${String(m)}`);
}

/** Validates a clustering mode. */
export function checkClusteringMode(c: unknown): void {
  if (!(CLUSTERING_MODES as readonly unknown[]).includes(c)) {
    throw new RangeError(`clustering: expected one of ${CLUSTERING_MODES.join(', ')}, got ${JSON.stringify(c)}`);
  }
}

/** Exact f64 squared distance of row `i` of `x` (f32) and centre `j` of `c` (f64). */
function sq64(x: Float32Array, i: number, c: Float64Array, j: number, d: number): number {
  let s = 0;
  const a = i * d;
  const b = j * d;
  for (let t = 0; t < d; t++) {
    const u = x[a + t]! - c[b + t]!;
    s += u * u;
  }
  return s;
}

/**
 * Deterministic k-means of the `n` rows of `x` (`n × d`) into at most `m` micro-clusters (see the module doc):
 * evenly spaced initial rows, then Lloyd iterations until no row moves or `iterations` are done. Micro-clusters
 * left empty are dropped (so `result.m ≤ m`), the others keep their order.
 * @throws {RangeError} m < 1 or iterations < 0; {@link KernelError} `ERR_ABORTED`
 */
export async function microClusters(x: Float32Array, n: number, d: number, m: number, options: MicroClusterOptions): Promise<MicroClusters> {
  const { backend: be, iterations = DEFAULT_MICRO_ITERATIONS, signal, onProgress } = options;
  if (!Number.isSafeInteger(m) || m < 1) throw new RangeError(`m: expected an integer ≥ 1, got ${m}`);
  if (!Number.isSafeInteger(iterations) || iterations < 0) throw new RangeError(`iterations: expected an integer ≥ 0, got ${iterations}`);
  if (x.length !== n * d) throw new KernelError('ERR_SHAPE_MISMATCH', `x: expected ${n} × ${d} values, got ${x.length}`);
  m = Math.min(m, n);
  // Initial centres: rows ⌊(j + ½)·n/m⌋, evenly spread over the input order.
  let c = new Float64Array(m * d);
  for (let j = 0; j < m; j++) {
    const r = Math.min(n - 1, Math.floor(((j + 0.5) * n) / m));
    for (let t = 0; t < d; t++) c[j * d + t] = x[r * d + t]!;
  }
  const rowNorm = new Float64Array(n);
  const zero = new Float64Array(d);
  for (let i = 0; i < n; i++) rowNorm[i] = sq64(x, i, zero, 0, d);
  const assign = new Int32Array(n).fill(-1);
  const c32 = new Float32Array(m * d);
  const cNorm = new Float64Array(m);
  // Rows per cdist call: about 16 M distances (64 MB of f32) at a time.
  const block = Math.max(1, Math.min(n, Math.floor((1 << 24) / m)));
  let passes = 0;
  let moved = n;
  for (let pass = 0; pass <= iterations; pass++) {
    for (let j = 0; j < m * d; j++) c32[j] = c[j]!;
    let cMax = 0;
    for (let j = 0; j < m; j++) {
      let s = 0;
      for (let t = j * d; t < (j + 1) * d; t++) s += c[t]! * c[t]!;
      cNorm[j] = s;
      cMax = Math.max(cMax, s);
    }
    moved = 0;
    for (let i0 = 0; i0 < n; i0 += block) {
      throwIfAborted(signal, 'micro-clusters');
      const i1 = Math.min(n, i0 + block);
      const dist = await be.cdistAsync(x.subarray(i0 * d, i1 * d), i1 - i0, c32, m, d, true);
      for (let i = i0; i < i1; i++) {
        const row = (i - i0) * m;
        let best = Infinity;
        let arg = 0;
        for (let j = 0; j < m; j++) {
          const v = dist[row + j]!;
          if (v < best) { best = v; arg = j; }
        }
        // Every centre whose f32 distance is within the rounding margin of the minimum is a candidate: the exact
        // f64 minimum decides (lowest index on ties). Margin: (d + 16)·2⁻²³·(‖x‖² + max‖c‖²), twice the worst-case
        // f32 error of ‖x‖² + ‖c‖² − 2x·c summed in any order (γ_d ≈ d·2⁻²⁴ of Σ|x_t c_t| ≤ (‖x‖² + ‖c‖²)/2 for
        // the dot product, less for the norms and for direct differences), with room for the f32 centres.
        const tol = (d + 16) * 2 ** -23 * (rowNorm[i]! + cMax);
        let second = false;
        for (let j = 0; j < m && !second; j++) second = j !== arg && dist[row + j]! <= best + tol;
        if (second) {
          let bestExact = Infinity;
          for (let j = 0; j < m; j++) {
            if (dist[row + j]! <= best + tol) {
              const e = sq64(x, i, c, j, d);
              if (e < bestExact) { bestExact = e; arg = j; }
            }
          }
        }
        if (assign[i] !== arg) { assign[i] = arg; moved++; }
      }
      // Let timers and I/O run between blocks.
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    passes++;
    onProgress?.(passes, iterations + 1, moved);
    if (moved === 0 || pass === iterations) break;
    // Update: f64 means of the members, in row order; an empty micro-cluster keeps its centre.
    const sum = new Float64Array(m * d);
    const count = new Float64Array(m);
    for (let i = 0; i < n; i++) {
      const j = assign[i]!;
      count[j]!++;
      const o = j * d;
      const r = i * d;
      for (let t = 0; t < d; t++) sum[o + t]! += x[r + t]!;
    }
    for (let j = 0; j < m; j++) {
      if (count[j] === 0) { for (let t = j * d; t < (j + 1) * d; t++) sum[t] = c[t]!; continue; }
      for (let t = j * d; t < (j + 1) * d; t++) sum[t]! /= count[j]!;
    }
    c = sum;
  }
  // Final centroids are the means of the final assignment; empty micro-clusters dropped, order kept.
  const count = new Uint32Array(m);
  for (let i = 0; i < n; i++) count[assign[i]!]!++;
  const remap = new Int32Array(m).fill(-1);
  let k = 0;
  for (let j = 0; j < m; j++) if (count[j]! > 0) remap[j] = k++;
  const sum = new Float64Array(k * d);
  const sizes = new Uint32Array(k);
  for (let i = 0; i < n; i++) {
    const j = remap[assign[i]!]!;
    assign[i] = j;
    sizes[j]!++;
    const o = j * d;
    const r = i * d;
    for (let t = 0; t < d; t++) sum[o + t]! += x[r + t]!;
  }
  const centroids = new Float32Array(k * d);
  for (let j = 0; j < k; j++) for (let t = j * d; t < (j + 1) * d; t++) centroids[t] = sum[t]! / sizes[j]!;
  return { m: k, centroids, sizes, assign, passes, moved };
}

/** Result of {@link approximateWard}. */
export interface ApproximateWard extends MicroClusters {
  /** Size-weighted Ward linkage of the m micro-cluster centroids, `(m−1) × 4` (SciPy layout over m leaves). */
  Z: Float64Array;
}

/**
 * Approximate Ward linkage of `n` rows: {@link microClusters} into at most `m`, then size-weighted Ward on their
 * centroids. Cut `Z` (over `result.m` leaves) and map through `assign` ({@link labelsOf}) for per-row labels.
 */
export async function approximateWard(x: Float32Array, n: number, d: number, m: number, options: MicroClusterOptions): Promise<ApproximateWard> {
  const mc = await microClusters(x, n, d, m, options);
  throwIfAborted(options.signal, 'approximate ward');
  const Z = mc.m > 1 ? await options.backend.wardFromVectorsAsync(mc.centroids, mc.m, d, mc.sizes) : new Float64Array(0);
  return { ...mc, Z };
}

/**
 * Per-row labels from per-micro-cluster labels: row i gets `microLabels[assign[i]]`, renumbered 0, 1, … in order
 * of first appearance over the rows (the convention of every label array of the library).
 */
export function labelsOf(microLabels: Int32Array, assign: Int32Array): Int32Array {
  const out = new Int32Array(assign.length);
  const renum = new Map<number, number>();
  for (let i = 0; i < assign.length; i++) {
    const l = microLabels[assign[i]!]!;
    let r = renum.get(l);
    if (r === undefined) { r = renum.size; renum.set(l, r); }
    out[i] = r;
  }
  return out;
}
