/**
 * @file Patch scores, patch weights and image embeddings: from a {@link FeatureBank} of N bags
 * of M patches, compute per-patch anomaly scores s_im, weights α_i = softmax_m(s_im / τ) and the embedding
 * x_i = Σ_m α_im z_im of each image.
 *
 * - `'unsupervised'`: s_im = mean over the other images j of min_m' d(z_im, z_jm') (grouped nearest-neighbour search,
 *   mode `'mean-excluding-own'`, queries = base = all patches, groups = images). O(N² M² D): the queries are cut into
 *   chunks of whole images so that progress is reported and an `AbortSignal` is honoured between chunks, and the
 *   async kernel keeps the event loop free.
 * - `'semi-supervised'`: s_im = min over all patches z of the normal images of d(z_im, z) (mode `'min'`).
 * - Approximations (approx.ts; each off by default, each with an exact setting; the result lists those in
 *   effect in `approximations`): `references` R random other images per image (unsupervised), `coreset` a greedy
 *   k-center subset of the normal patches (semi-supervised), `bankPrecision: 'f16'` the normal bank stored as
 *   binary16. Their measured price: `benches/approx.mjs`.
 * - `'uniform'`: α = 1/M (mean pooling; scores are all 0).
 * - `'max'`: per-dimension max pooling over the patches instead of a weighted mean. Its "weights" (for the heat
 *   maps only) are the share of the D dimensions in which each patch holds the maximum.
 *
 * τ is absolute (`tau: 0.5`) or scale-free: `tau: {relative: r}` gives each image i its own τ_i = r × σ_i, the
 * standard deviation of its scores (softmax of the within-image z-scores, so every image's weights are equally
 * peaked in units of its own score spread); `{relative: r, spread: 'set'}` one τ = r × the mean over images of σ_i.
 * Default `{relative: 0.5}` ({@link DEFAULT_TAU}).
 * - Before the scores, the weighted modes whiten the patches (`whiten`, default shrinkage
 *   {@link DEFAULT_WHITEN}; whiten.ts): distances become Mahalanobis distances under the set's shrunk patch
 *   covariance, and the embeddings live in the whitened space.
 * @module pipeline/weighting
 */
import type { BackendName, KernelBackend } from '../../bindings/backend.js';
import { resolveBackend, throwIfAborted } from './context.js';
import { KernelError } from '../errors.js';
import { BANK_PRECISIONS, coresetSize, f16ToF32, f32ToF16, F16_CHUNK_VALUES, gatherRows, kCenterGreedyAsync, type BankPrecision } from './approx.js';
import type { BankStore, FeatureBank, PooledFeatures, Progress } from './types.js';
import { argmaxShare } from './aggregate.js';
import { checkWhiten, DEFAULT_WHITEN, fitWhitening, whitenBank } from './whiten.js';
import { bagStore } from './bank-store.js';


/** How patches are weighted into an image embedding. */
export type Weighting = 'unsupervised' | 'semi-supervised' | 'uniform' | 'max';
/** Runtime list of {@link Weighting}s. */
export const WEIGHTINGS = ['unsupervised', 'semi-supervised', 'uniform', 'max'] as const;

/**
 * Softmax temperature: an absolute value (≥ 0; 0 = hard arg-max, `Infinity` = uniform) or relative to the score
 * spread: `spread: 'image'` (the default) τ_i = r × the standard deviation of image i's own scores;
 * `spread: 'set'` one τ = r × the mean over images of that standard deviation.
 */
export type Tau = number | { relative: number; spread?: TauSpread };
/** The unit of a relative τ ({@link Tau}). */
export type TauSpread = 'image' | 'set';

/**
 * Default temperature: τ_i = 0.5 × the within-image standard deviation of image i's scores. Scale-free, so it
 * holds across backbones and feature normalisations. Chosen with `benches/evaluate.mjs` (MVTec bottle and MTD, τ
 * sweep, 3 projection seeds) together with the patch whitening ({@link DEFAULT_WHITEN}): whitened at 0.5σ every
 * row reaches the reference on the shipped seed (at 1σ, 4 of the 6 weighted rows), and over 3 seeds the weighted
 * rows pass 12 of 18 times against 11 unwhitened at 1σ (mean NMI 0.453 vs 0.426). Before that, at r = 1 the
 * per-image spread beat one set-wide τ (= r × mean spread) on five of the six weighted rows.
 */
export const DEFAULT_TAU: Tau = { relative: 0.5 };

/** Options of {@link computeWeights}. */
export interface WeightingOptions {
  /** @default 'unsupervised' */
  weighting?: Weighting;
  /** @default {@link DEFAULT_TAU} (`{relative: 0.5}`: τ_i = 0.5 × image i's own score spread) */
  tau?: Tau;
  /**
   * Whitening of the patches before the scores of the weighted modes (whiten.ts): the shrinkage α > 0 of the
   * set's patch covariance, or `false` for raw Euclidean distances. Fitted on the bank being weighted and applied
   * to `normals` too; the embeddings are then whitened as well. No effect on `'uniform'` and `'max'`.
   * @default {@link DEFAULT_WHITEN} (1)
   */
  whiten?: number | false;
  /**
   * Let the whitening overwrite `bank.data` (and `normals.data`) instead of copying the bank: saves a bank's
   * worth of memory when the caller has no further use for the raw patches (`clusterImages`). @default false
   */
  whitenInPlace?: boolean;
  /**
   * Approximate unsupervised scores: compare each image with this many other images instead of all N−1 (cost
   * N·R·M²·D instead of N²·M²·D), evenly spaced over the others ({@link referenceImages}; no seed).
   * `'exact'` (or `undefined`, or ≥ N−1) = all of them; the same meaning as `ClusterOptions.weights.references`,
   * whose `'auto'` `clusterImages` resolves to one of these before the weights (memory.ts `planReferences`).
   * @default 'exact'
   */
  references?: number | 'exact';
  /** Seed of the coreset selection's first centre (the reference images take none). @default 0 */
  seed?: number;
  /**
   * Approximate semi-supervised scores: distances to a greedy k-center coreset of the normal patches instead of
   * all of them (approx.ts `kCenterGreedy`). A fraction in (0, 1] of the normal patches or a count > 1;
   * `1` (or a count ≥ all patches) = exact, without any selection. Cost of the scores × the fraction, plus the
   * selection. @default undefined (exact)
   */
  coreset?: number;
  /** Dimension of the projection the coreset is selected on (`false` = the patches themselves). @default 64 (approx.ts `DEFAULT_CORESET_DIM`) */
  coresetDim?: number | false;
  /**
   * Storage of the semi-supervised look-up bank (the normal patches, or their coreset): `'f16'` keeps it as
   * binary16 (half the memory) and expands 2²² values at a time to f32 for the kernel. No effect on the
   * unsupervised scores (their bank is also the query set). @default 'f32'
   */
  bankPrecision?: BankPrecision;
  /** Patch bank of normal images, required for `'semi-supervised'` (same `d`). */
  normals?: FeatureBank;
  /** Kernel backend, by name or as an object. @default the first that loads ({@link getBackend}) */
  backend?: BackendName | KernelBackend;
  /**
   * Target work per kernel call in multiply-adds (query rows × base rows × d); the queries are cut into chunks
   * of whole images of about this size. Smaller = more frequent progress and abort checks. @default 2e9
   */
  chunkWork?: number;
  /**
   * Exact unsupervised scores run as one symmetric self-join call (each image pair once: half the work) while
   * N²·M²·D ≤ this many multiply-adds; above it, per-image chunks of `chunkWork` (finer progress and abort).
   * `0` disables the self-join. @default 2e12 (≈ 10–20 s of kernel time on 2 cores)
   */
  selfJoinWork?: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** Default of {@link WeightingOptions.chunkWork}. */
export const DEFAULT_CHUNK_WORK = 2e9;

/** Default of {@link WeightingOptions.selfJoinWork}. */
export const DEFAULT_SELF_JOIN_WORK = 2e12;

/** Output of {@link computeWeights}. */
export interface WeightingResult {
  weighting: Weighting;
  /**
   * The absolute τ used (after resolving a relative one; with the per-image spread, the mean of the images' τ_i =
   * r × {@link scoreSpread}); `Infinity` for `'uniform'`, `NaN` for `'max'`.
   */
  tau: number;
  /** Mean over images of the within-image standard deviation of the scores (the unit of a relative τ). */
  scoreSpread: number;
  n: number;
  m: number;
  /** Dimension of the embeddings: the bank's, or the unprojected one for uniform / max with `bank.pooled`. */
  d: number;
  gridH: number;
  gridW: number;
  /** Per-patch anomaly scores, size `n*m` (zeros for `'uniform'` and `'max'`). */
  scores: Float32Array;
  /** Per-patch weights, size `n*m`, each image's M weights sum to 1. */
  weights: Float32Array;
  /** `weights` of image i as a `gridH × gridW` row-major map (views into `weights`). */
  maps: Float32Array[];
  /** Image embeddings, size `n*d`. */
  embeddings: Float32Array;
  /** The approximations in effect, one sentence each (empty when the scores are exact). */
  approximations: string[];
  /**
   * The patch whitening applied (`WeightingOptions.whiten`): its shrinkage and the patches its covariance was
   * estimated on; `false` when off, for `'uniform'` / `'max'`, or when all sampled patches were identical.
   */
  whitened: { shrinkage: number; sampled: number } | false;
}

/** `[0, m, 2m, …, n·m]`. */
export function bagOffsets(n: number, m: number): Uint32Array {
  const o = new Uint32Array(n + 1);
  for (let i = 0; i <= n; i++) o[i] = i * m;
  return o;
}

/** Throws unless `bank` is a consistent {@link FeatureBank}. */
export function checkBank(name: string, bank: FeatureBank): void {
  if (bank == null || typeof bank !== 'object' || !(bank.data instanceof Float32Array)) {
    throw new TypeError(`${name}: expected a FeatureBank with Float32Array data`);
  }
  for (const k of ['n', 'm', 'd', 'gridH', 'gridW'] as const) {
    if (!Number.isSafeInteger(bank[k]) || bank[k] < 0) throw new RangeError(`${name}.${k}: expected an integer ≥ 0, got ${bank[k]}`);
  }
  if (bank.n < 1) throw new KernelError('ERR_EMPTY', `${name}: expected at least one image, got 0`);
  if (bank.m < 1 || bank.d < 1) throw new KernelError('ERR_EMPTY', `${name}: expected m ≥ 1 patches of d ≥ 1 dims, got m=${bank.m}, d=${bank.d}`);
  if (bank.gridH * bank.gridW !== bank.m) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `${name}: expected m = gridH×gridW = ${bank.gridH * bank.gridW}, got m=${bank.m}`);
  }
  // the bags: `data` of n·m·d floats in memory, or a `store` of n bags of m × d
  const mismatch = bagStore(bank).mismatch(bank.n, bank.m, bank.d);
  if (mismatch) throw new KernelError('ERR_SHAPE_MISMATCH', `${name}.${mismatch}`);
}


/** Validates a τ option and returns it in normal form. */
export function checkTau(tau: Tau): Tau {
  if (typeof tau === 'number') {
    if (Number.isNaN(tau) || tau < 0) throw new RangeError(`tau: expected a number ≥ 0 (0 = arg-max, Infinity = uniform), got ${tau}`);
    return tau;
  }
  if (tau && typeof tau === 'object' && typeof tau.relative === 'number') {
    if (Number.isNaN(tau.relative) || tau.relative < 0) {
      throw new RangeError(`tau.relative: expected a number ≥ 0, got ${tau.relative}`);
    }
    const spread = tau.spread ?? 'image';
    if (spread !== 'image' && spread !== 'set') throw new RangeError(`tau.spread: expected 'image' or 'set', got ${JSON.stringify(tau.spread)}`);
    return { relative: tau.relative, spread };
  }
  throw new TypeError(`tau: expected a number or {relative: number}, got ${JSON.stringify(tau)}`);
}

/**
 * Scores divided by their bag's (population) standard deviation, so that a softmax at τ = r weighs image i as one at
 * τ_i = r·σ_i. A bag whose scores are all equal (σ = 0) becomes all zeros (uniform weights at any τ > 0).
 * @param scores size `n*m`
 */
export function perImageStandardised(scores: Float32Array, n: number, m: number): Float32Array {
  const out = new Float32Array(n * m);
  for (let i = 0; i < n; i++) {
    const x = scores.subarray(i * m, (i + 1) * m);
    const sd = meanWithinStd(x, 1, m);
    if (sd > 0 && Number.isFinite(sd)) for (let k = 0; k < m; k++) out[i * m + k] = x[k]! / sd;
  }
  return out;
}

/**
 * Mean over bags of the (population) standard deviation of the scores within the bag.
 * @param scores size `n*m`
 */
export function meanWithinStd(scores: Float32Array, n: number, m: number): number {
  let acc = 0;
  for (let i = 0; i < n; i++) {
    let s = 0;
    let s2 = 0;
    for (let j = i * m; j < (i + 1) * m; j++) s += scores[j]!;
    const mean = s / m;
    for (let j = i * m; j < (i + 1) * m; j++) s2 += (scores[j]! - mean) ** 2;
    acc += Math.sqrt(s2 / m);
  }
  return acc / n;
}

/**
 * Per-patch anomaly scores. Unsupervised needs n ≥ 2 (with one image every score is 0).
 * @returns scores, size `bank.n * bank.m`
 * @throws {KernelError} `ERR_ABORTED` when `signal` fires; `ERR_INVALID_ARGUMENT` for semi-supervised without normals
 */
export async function patchScores(
  bank: FeatureBank,
  mode: 'unsupervised' | 'semi-supervised',
  options: Pick<WeightingOptions, ScoreOption> = {},
): Promise<Float32Array> {
  return (await scorePatches(bank, mode, options)).scores;
}

type ScoreOption = 'normals' | 'backend' | 'chunkWork' | 'selfJoinWork' | 'onProgress' | 'signal' | 'references' | 'seed' | 'coreset' | 'coresetDim' | 'bankPrecision';

/** Throws a RangeError for a malformed approximation knob (whether or not the weighting uses it). */
function checkApproxOptions(o: Pick<WeightingOptions, ScoreOption>): void {
  if (o.references !== undefined && o.references !== 'exact' && (!Number.isSafeInteger(o.references) || o.references < 1)) {
    throw new RangeError(`references: expected an integer ≥ 1, got ${o.references}`);
  }
  if (o.coreset !== undefined) coresetSize(o.coreset, 1);
  if (o.coresetDim !== undefined && o.coresetDim !== false && (!Number.isSafeInteger(o.coresetDim) || o.coresetDim < 1)) {
    throw new RangeError(`coresetDim: expected an integer ≥ 1 or false, got ${o.coresetDim}`);
  }
  if (o.bankPrecision !== undefined && !(BANK_PRECISIONS as readonly string[]).includes(o.bankPrecision)) {
    throw new RangeError(`bankPrecision: expected one of ${BANK_PRECISIONS.join(', ')}, got ${JSON.stringify(o.bankPrecision)}`);
  }
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw new RangeError(`seed: expected an integer, got ${o.seed}`);
  if (o.selfJoinWork !== undefined && !(typeof o.selfJoinWork === 'number' && o.selfJoinWork >= 0)) {
    throw new RangeError(`selfJoinWork: expected a number ≥ 0, got ${o.selfJoinWork}`);
  }
}

/** The scoring stage: {@link patchScores} plus a description of the approximations used. */
export async function scorePatches(
  bank: FeatureBank,
  mode: 'unsupervised' | 'semi-supervised',
  options: Pick<WeightingOptions, ScoreOption>,
): Promise<{ scores: Float32Array; approximations: string[] }> {
  const { normals, chunkWork = DEFAULT_CHUNK_WORK, onProgress, signal, seed = 0, coreset, bankPrecision = 'f32', selfJoinWork = DEFAULT_SELF_JOIN_WORK } = options;
  checkApproxOptions(options);
  const references = options.references === 'exact' ? undefined : options.references;
  const approximations: string[] = [];
  const be = resolveBackend(options.backend);
  const { n, m, d } = bank;
  const total = n * m;
  const store = bagStore(bank);
  let base: Float32Array;
  let groupOffsets: Uint32Array;
  let groupedMode: 'mean-excluding-own' | 'min';
  if (mode === 'unsupervised') {
    if (n < 2) return { scores: new Float32Array(total), approximations };
    if (references !== undefined && references < n - 1) {
      approximations.push(`unsupervised scores against ${references} reference images per image (of ${n - 1}, evenly spaced)`);
      return { scores: await subsetScores(bank, references, be, onProgress, signal), approximations };
    }
    const all = store.resident();
    if (!all) {
      // R ≥ n−1 on a streamed bank: every other image as a reference, read per image (exact up to summation order).
      if (references !== undefined) return { scores: await subsetScores(bank, n - 1, be, onProgress, signal), approximations };
      throw new KernelError(
        'ERR_MEMORY_LIMIT',
        `unsupervised weights: exact scores compare every image with every other and need the whole feature bank in ` +
          `memory (${(n * m * d * 4 / 2 ** 30).toFixed(1)} GiB), but this bank is streamed from disk; use references: R ` +
          `(R reference images per image) or a larger memory limit`,
      );
    }
    base = all;
    groupOffsets = bagOffsets(n, m);
    groupedMode = 'mean-excluding-own';
    if (n * n * m * m * d <= selfJoinWork) {
      // One symmetric self-join call: each image pair's M×M tile once, reduced both ways (half the multiply-adds
      // of the per-image loop below, same scores); progress only at its start and end, hence the work bound.
      throwIfAborted(signal, 'weights');
      onProgress?.({ stage: 'weights', done: 0, total, message: 'unsupervised patch scores (symmetric self-join)' });
      const queryGroups = new Int32Array(total);
      for (let i = 0; i < n; i++) queryGroups.fill(i, i * m, (i + 1) * m);
      const scores = await be.groupedNNAsync({ queries: base, nq: total, base, groupOffsets, d, mode: groupedMode, queryGroups, selfJoin: true });
      throwIfAborted(signal, 'weights');
      onProgress?.({ stage: 'weights', done: total, total, message: 'unsupervised patch scores (symmetric self-join)' });
      return { scores, approximations };
    }
  } else {
    if (!normals) {
      throw new KernelError('ERR_INVALID_ARGUMENT', "normals: required for weighting 'semi-supervised' (a FeatureBank of normal images)");
    }
    checkBank('normals', normals);
    if (normals.d !== d) {
      throw new KernelError('ERR_SHAPE_MISMATCH', `normals: expected patches of d=${d} dims (as the clustered images), got d=${normals.d}`);
    }
    base = bagStore(normals).view(0, normals.n); // the normal bank is searched whole
    let rows = normals.n * normals.m;
    if (coreset !== undefined && coresetSize(coreset, rows) < rows) {
      const k = coresetSize(coreset, rows);
      const tc = performance.now();
      onProgress?.({ stage: 'weights', done: 0, total, message: `coreset: selecting ${k} of ${rows} normal patches` });
      const sel = await kCenterGreedyAsync(base, rows, d, k, {
        seed, dim: options.coresetDim, backend: be, signal,
        onProgress: onProgress && ((j, kk) => onProgress({ stage: 'weights', done: 0, total, message: `coreset: ${j}/${kk} normal patches selected` })),
      });
      base = gatherRows(base, d, sel.indices);
      approximations.push(`semi-supervised scores against a greedy k-center coreset of ${k} of the ${rows} normal patches ` +
        `(${((100 * k) / rows).toPrecision(3)} %, selected in ${((performance.now() - tc) / 1000).toFixed(1)} s)`);
      rows = k;
    }
    if (bankPrecision === 'f16') {
      approximations.push(`normal patch bank stored as f16 (${rows} × ${d})`);
      const scores = await minScoresF16(bank, f32ToF16(base), rows, be, chunkWork, onProgress, signal);
      return { scores, approximations };
    }
    groupOffsets = new Uint32Array([0, rows]);
    groupedMode = 'min';
  }
  const nb = base.length / d;
  const { images: imagesPerChunk, buffer: qbuf } = store.chunk(Math.max(1, Math.floor(chunkWork / Math.max(1, m * nb * d))));
  const out = new Float32Array(total);
  onProgress?.({ stage: 'weights', done: 0, total, message: `${mode} patch scores` });
  for (let i0 = 0; i0 < n; i0 += imagesPerChunk) {
    throwIfAborted(signal, 'weights');
    const i1 = Math.min(n, i0 + imagesPerChunk);
    const nq = (i1 - i0) * m;
    const queries = store.view(i0, i1, qbuf?.subarray(0, nq * d));
    let queryGroups: Int32Array | undefined;
    if (groupedMode === 'mean-excluding-own') {
      queryGroups = new Int32Array(nq);
      for (let i = i0; i < i1; i++) queryGroups.fill(i, (i - i0) * m, (i - i0 + 1) * m);
    }
    const s = await be.groupedNNAsync({ queries, nq, base, groupOffsets, d, mode: groupedMode, queryGroups });
    out.set(s, i0 * m);
    onProgress?.({ stage: 'weights', done: i1 * m, total, message: `${mode} patch scores` });
  }
  throwIfAborted(signal, 'weights');
  return { scores: out, approximations };
}

/**
 * Semi-supervised scores against a bank of `rows` normal patches stored as binary16: the bank is expanded to f32
 * {@link F16_CHUNK_VALUES} values at a time and each score is the minimum over the chunks.
 */
async function minScoresF16(
  bank: FeatureBank, base16: Uint16Array, rows: number, be: KernelBackend, chunkWork: number,
  onProgress: WeightingOptions['onProgress'], signal: AbortSignal | undefined,
): Promise<Float32Array> {
  const { n, m, d } = bank;
  const total = n * m;
  const store = bagStore(bank);
  const rowsPerChunk = Math.max(1, Math.min(rows, Math.floor(F16_CHUNK_VALUES / d)));
  const nChunks = Math.ceil(rows / rowsPerChunk);
  const buf = new Float32Array(rowsPerChunk * d);
  const out = new Float32Array(total).fill(Infinity);
  const message = `semi-supervised patch scores (f16 bank, ${nChunks} chunk${nChunks > 1 ? 's' : ''})`;
  onProgress?.({ stage: 'weights', done: 0, total, message });
  for (let c = 0; c < nChunks; c++) {
    const r0 = c * rowsPerChunk;
    const r1 = Math.min(rows, r0 + rowsPerChunk);
    const base = buf.subarray(0, (r1 - r0) * d);
    f16ToF32(base16.subarray(r0 * d, r1 * d), base);
    const groupOffsets = new Uint32Array([0, r1 - r0]);
    const { images: imagesPerChunk } = store.chunk(Math.max(1, Math.floor(chunkWork / Math.max(1, m * (r1 - r0) * d))));
    for (let i0 = 0; i0 < n; i0 += imagesPerChunk) {
      throwIfAborted(signal, 'weights');
      const i1 = Math.min(n, i0 + imagesPerChunk);
      const s = await be.groupedNNAsync({ queries: store.view(i0, i1), nq: (i1 - i0) * m, base, groupOffsets, d, mode: 'min' });
      for (let q = 0, o = i0 * m; q < s.length; q++, o++) if (s[q]! < out[o]!) out[o] = s[q]!;
      onProgress?.({ stage: 'weights', done: Math.round(((c + i1 / n) / nChunks) * total), total, message });
    }
  }
  throwIfAborted(signal, 'weights');
  return out;
}

/**
 * The `r` reference images of image `i` of `n` (into `out[0..r)`): evenly spaced over the other images taken in
 * cyclic order after `i` (offsets ⌊(t + ½)(n − 1)/r⌋ + 1, t < r). Deterministic, no seed; every image is the
 * reference of exactly as many images as any other (±1), and neighbours in the input order get different ones.
 */
export function referenceImages(n: number, i: number, r: number, out: Int32Array = new Int32Array(r)): Int32Array {
  if (!(Number.isSafeInteger(r) && r >= 1 && r <= n - 1)) throw new RangeError(`references: expected 1 ≤ r ≤ ${n - 1}, got ${r}`);
  for (let t = 0; t < r; t++) out[t] = (i + 1 + Math.floor(((t + 0.5) * (n - 1)) / r)) % n;
  return out;
}

/** Unsupervised scores against `r` other images per image ({@link referenceImages}; one kernel call per image). */
async function subsetScores(
  bank: FeatureBank, r: number, be: KernelBackend, onProgress: WeightingOptions['onProgress'], signal: AbortSignal | undefined,
): Promise<Float32Array> {
  const { n, m, d } = bank;
  const total = n * m;
  const store = bagStore(bank);
  const out = new Float32Array(total);
  const base = new Float32Array(r * m * d);
  const { buffer: query } = store.chunk(1);
  const groupOffsets = bagOffsets(r, m);
  const queryGroups = new Int32Array(m).fill(-1); // the image itself is never among its references
  const others = new Int32Array(n - 1);
  onProgress?.({ stage: 'weights', done: 0, total, message: `unsupervised patch scores (${r} references per image)` });
  for (let i = 0; i < n; i++) {
    throwIfAborted(signal, 'weights');
    referenceImages(n, i, r, others);
    for (let t = 0; t < r; t++) store.view(others[t]!, others[t]! + 1, base.subarray(t * m * d, (t + 1) * m * d));
    const s = await be.groupedNNAsync({
      queries: store.view(i, i + 1, query), nq: m, base, groupOffsets, d, mode: 'mean-excluding-own', queryGroups,
    });
    out.set(s, i * m);
    onProgress?.({ stage: 'weights', done: (i + 1) * m, total, message: `unsupervised patch scores (${r} references per image)` });
  }
  return out;
}


/**
 * Scores, weights and embeddings of every image of a bank: {@link whitenPatches} → {@link scorePatches} →
 * {@link weighPatches} for the weighted modes, {@link poolPatches} for `'uniform'` and `'max'`.
 * @param bank patch bags, `n × m × d`
 * @param options see {@link WeightingOptions}
 * @returns see {@link WeightingResult}
 * @throws {TypeError} / {RangeError} for a malformed option or bank
 * @throws {KernelError} `ERR_INVALID_ARGUMENT` (semi-supervised without normals), `ERR_SHAPE_MISMATCH`, `ERR_ABORTED`
 */
export async function computeWeights(bank: FeatureBank, options: WeightingOptions = {}): Promise<WeightingResult> {
  const { weighting = 'unsupervised', tau: tauOpt = DEFAULT_TAU, onProgress, signal } = options;
  if (!(WEIGHTINGS as readonly string[]).includes(weighting)) {
    throw new RangeError(`weighting: expected one of ${WEIGHTINGS.join(', ')}, got ${JSON.stringify(weighting)}`);
  }
  const tau = checkTau(tauOpt);
  const whiten = checkWhiten(options.whiten ?? DEFAULT_WHITEN);
  checkApproxOptions(options);
  checkBank('bank', bank);
  throwIfAborted(signal, 'weights');
  const be = resolveBackend(options.backend);
  const { n, m, gridH, gridW } = bank;
  let w: Omit<WeightingResult, 'maps' | 'n' | 'm' | 'gridH' | 'gridW' | 'weighting'>;
  if (weighting === 'uniform' || weighting === 'max') {
    w = poolPatches(bank, weighting, be);
    onProgress?.({ stage: 'weights', done: n * m, total: n * m, message: weighting });
  } else {
    const white = await whitenPatches(bank, options.normals, weighting, whiten, be, { inPlace: options.whitenInPlace === true, signal, onProgress });
    try {
      const { scores, approximations } = await scorePatches(white.bank, weighting, { ...options, normals: white.normals, backend: be });
      w = { ...weighPatches(white.bank, scores, tau, be), scores, approximations, whitened: white.whitened };
    } finally {
      white.release();
    }
  }
  const maps: Float32Array[] = [];
  for (let i = 0; i < n; i++) maps.push(w.weights.subarray(i * m, (i + 1) * m));
  return { weighting, tau: w.tau, scoreSpread: w.scoreSpread, n, m, d: w.d, gridH, gridW, scores: w.scores, weights: w.weights, maps, embeddings: w.embeddings, approximations: w.approximations, whitened: w.whitened };
}

/**
 * The whitening stage of the weighted modes: fits the whitening on `bank` (whiten.ts) and applies it to the bank
 * and the normals; a bank and normals unchanged when `whiten` is `false` or the sampled patches are identical
 * (and for semi-supervised weights without normals: the scores report that, before any work).
 * `release()` closes the whitened copies streamed to disk.
 */
export async function whitenPatches(
  bank: FeatureBank, normals: FeatureBank | undefined, weighting: 'unsupervised' | 'semi-supervised', whiten: number | false, be: KernelBackend,
  opts: { inPlace: boolean; signal?: AbortSignal; onProgress?: (p: Progress) => void },
): Promise<{ bank: FeatureBank; normals: FeatureBank | undefined; whitened: WeightingResult['whitened']; release: () => void }> {
  const owned: BankStore[] = [];
  const release = () => { for (const s of owned) s.close(); };
  const { n, m, d } = bank;
  let wb = bank;
  let whitened: WeightingResult['whitened'] = false;
  try {
    if (whiten !== false && (weighting !== 'semi-supervised' || normals)) {
      opts.onProgress?.({ stage: 'weights', done: 0, total: n * m, message: 'whitening the patches' });
      const wh = await fitWhitening(bank, whiten, be);
      if (wh) {
        const opt = { inPlace: opts.inPlace, signal: opts.signal };
        wb = await whitenBank(bank, wh, be, opt);
        owned.push(bagStore(wb));
        if (normals) {
          checkBank('normals', normals);
          if (normals.d !== d) throw new KernelError('ERR_SHAPE_MISMATCH', `normals: expected d=${d} like the bank, got ${normals.d}`);
          normals = await whitenBank(normals, wh, be, opt);
          owned.push(bagStore(normals));
        }
        whitened = { shrinkage: wh.shrinkage, sampled: wh.sampled };
      }
    }
  } catch (e) {
    release();
    throw e;
  }
  return { bank: wb, normals, whitened, release };
}

/**
 * The weighing stage: softmax weights of the scores at τ (per image for a relative τ with the image spread) and
 * the weighted mean of every bag.
 */
export function weighPatches(
  bank: FeatureBank, scores: Float32Array, tau: Tau, be: KernelBackend,
): { tau: number; scoreSpread: number; d: number; weights: Float32Array; embeddings: Float32Array } {
  const { n, m, d } = bank;
  const offsets = bagOffsets(n, m);
  const spread = meanWithinStd(scores, n, m);
  const tauAbs = typeof tau === 'number' ? tau : tau.relative * spread;
  const weights = typeof tau === 'object' && tau.spread === 'image'
    ? be.softmaxWeights(perImageStandardised(scores, n, m), offsets, tau.relative)
    : be.softmaxWeights(scores, offsets, tauAbs);
  return { tau: tauAbs, scoreSpread: spread, d, weights, embeddings: pool(bank, be, weights) };
}

/**
 * `'uniform'` (mean) and `'max'` pooling: no scores; from the unprojected pooled features when the bank kept
 * them (`bank.pooled`), else from the bags.
 */
export function poolPatches(
  bank: FeatureBank, weighting: 'uniform' | 'max', be: KernelBackend,
): Omit<WeightingResult, 'maps' | 'n' | 'm' | 'gridH' | 'gridW' | 'weighting'> {
  const { n, m, d } = bank;
  const scores = new Float32Array(n * m);
  const none = { scores, scoreSpread: 0, approximations: [], whitened: false as const };
  const full = bank.pooled;
  if (full) {
    // the unprojected mean / max kept by the extraction (FeatureOptions.pooled): no projection noise
    checkPooled(full, n, m);
    return {
      ...none, d: full.d, tau: weighting === 'uniform' ? Infinity : NaN,
      weights: weighting === 'uniform' ? new Float32Array(n * m).fill(1 / m) : full.maxShare.slice(),
      embeddings: (weighting === 'uniform' ? full.mean : full.max).slice(),
    };
  }
  if (weighting === 'uniform') {
    const weights = new Float32Array(n * m).fill(1 / m);
    return { ...none, d, tau: Infinity, weights, embeddings: pool(bank, be, weights) };
  }
  const embeddings = new Float32Array(n * d);
  const weights = new Float32Array(n * m);
  bagStore(bank).forChunks((rows, i0, i1) => {
    const mx = be.maxPool(rows, bagOffsets(i1 - i0, m), d);
    embeddings.set(mx, i0 * d);
    weights.set(argmaxShare(rows, i1 - i0, m, d, mx), i0 * m);
  });
  return { ...none, d, tau: NaN, weights, embeddings };
}

/** A bank's {@link PooledFeatures} must match its n and m. @throws {KernelError} `ERR_SHAPE_MISMATCH` */
function checkPooled(p: PooledFeatures, n: number, m: number): void {
  if (!Number.isSafeInteger(p.d) || p.d < 1 || p.mean.length !== n * p.d || p.max.length !== n * p.d || p.maxShare.length !== n * m) {
    throw new KernelError('ERR_SHAPE_MISMATCH', `bank.pooled: expected mean and max of n·d = ${n}·${p.d} and maxShare of n·m = ${n}·${m} values, `
      + `got ${p.mean.length}, ${p.max.length} and ${p.maxShare.length}`);
  }
}

/** Weighted mean of every bag (`weights`: `n·m`), chunk by chunk for a streamed bank (same values either way). */
function pool(bank: FeatureBank, be: KernelBackend, weights: Float32Array): Float32Array {
  const { n, m, d } = bank;
  const out = new Float32Array(n * d);
  bagStore(bank).forChunks((rows, i0, i1) => {
    out.set(be.weightedMean(rows, bagOffsets(i1 - i0, m), d, weights.subarray(i0 * m, i1 * m)), i0 * d);
  });
  return out;
}
