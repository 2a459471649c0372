/**
 * @file The whole pipeline in one call: images → patch embeddings (features.ts) → patch weights and image
 * embeddings (weighting.ts) → Euclidean distances → agglomerative linkage → K flat clusters.
 * @module pipeline/run
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BackendName, Isa, LinkageMethod } from '../../bindings/backend.js';
import { BACKEND_NAMES, LINKAGE_METHODS } from '../../bindings/backend.js';
import { getBackend } from '../../bindings/select.js';
import { KernelError } from '../errors.js';
import { checkMaxImageBytes } from './image.js';
import type { BackboneSpec, BankPlan, FeatureBank, ImageInput, Progress, Stage } from './types.js';
import { computeWeights, checkTau, DEFAULT_TAU, WEIGHTINGS, type Tau, type Weighting, type WeightingResult } from './weighting.js';
import { checkWhiten } from './whiten.js';
import { autoReferences, DEFAULT_AUTO_REFERENCES, DEFAULT_EXACT_WORK_LIMIT, type BankPrecision } from './approx.js';
import { bankMemoryLimit, checkBankPlan, checkMemoryLimit, defaultMemoryLimit, gib, planClustering, POOLED_MEMORY_SHARE, type ClusteringPlan } from './memory.js';
import { checkAutoKOptions, chooseKAsync, DEFAULT_AUTO_K_CRITERION, type AutoK, type AutoKCriterion } from './autok.js';
import { checkEmbeddingNorm, normaliseEmbeddings, type EmbeddingNorm } from './embedding-norm.js';
import { describeMethod, resolveMethod, type MethodConfig, type PresetName, type ResolvedMethod } from './presets.js';
import { consensusClusters } from './consensus.js';
import { approximateWard, checkClusteringMode, checkMicroClusters, DEFAULT_APPROX_ABOVE, DEFAULT_MICRO_CLUSTERS, labelsOf, type ClusteringMode } from './micro.js';

/** File extensions treated as images when a folder is given (lower case, with the dot). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.gif', '.avif'] as const;

/** What was wrong with the images given (see {@link InputError}). */
export type InputProblem = 'not-found' | 'no-images' | 'normals-not-found' | 'normals-empty' | 'normals-required';

/**
 * A problem with the images given rather than with a value: the folder does not exist, holds no images, or the
 * normal images are missing. `code` is `ERR_INVALID_ARGUMENT` (not found / required) or `ERR_EMPTY` (no images).
 */
export class InputError extends KernelError {
  readonly problem: InputProblem;
  readonly path: string | undefined;
  constructor(problem: InputProblem, message: string, where?: string) {
    super(problem === 'no-images' || problem === 'normals-empty' ? 'ERR_EMPTY' : 'ERR_INVALID_ARGUMENT', message);
    this.name = 'InputError';
    this.problem = problem;
    this.path = where;
  }
}

/** Options of {@link clusterImages}. */
export interface ClusterOptions {
  /**
   * Number of clusters, 1 ≤ k ≤ number of images, or `'auto'` (the same as leaving it out): K is chosen from the
   * dendrogram and the embeddings by `autoK.criterion` (see `pipeline/autok.ts`) and reported in `result.kAuto`.
   * @default 'auto'
   */
  k?: number | 'auto';
  /** How K is chosen when `k` is `'auto'` or not given. @default `{criterion: DEFAULT_AUTO_K_CRITERION, kMax: 20}` (kMax clamped to n−1) */
  autoK?: { criterion?: AutoKCriterion; kMax?: number };
  /**
   * The method preset: `'default'` (a consensus of uniform, max and unsupervised clusterings chosen by the dev-set
   * protocol, docs/quality.md) or `'paper'` (the published method). Giving `weighting`, `tau`, `whiten` or
   * `embeddingNorm` runs that single configuration instead (see `pipeline/presets.ts`). @default 'default'
   */
  preset?: PresetName;
  /** Run one weighting instead of the preset's (fields not given: the paper's). @default the preset's */
  weighting?: Weighting;
  /** Softmax temperature, absolute or `{relative: r}` (per-image spread; `spread: 'set'` for one set-wide τ). @default {relative: 0.5} */
  tau?: Tau;
  /**
   * Whitening of the patches before the weighted modes' nearest-patch search: the shrinkage α > 0 of the set's
   * patch covariance (Mahalanobis distances; see `pipeline/whiten.ts`), or `false` for plain Euclidean distances.
   * Ignored by `'uniform'` and `'max'`. @default 1
   */
  whiten?: number | false;
  /** Normal images (a folder or a list) for `'semi-supervised'`; ignored otherwise. */
  normals?: string | ImageInput[];
  /**
   * How the image embeddings are normalised before they are compared: `'l2-center-l2'` (unit length, minus the
   * set's mean, unit length again: images are grouped by the direction of their departure from the average, not
   * its size), `'center-l2'` (the same without the first scaling) or `'none'` (the weighted averages as they are).
   * See `pipeline/embedding-norm.ts`. @default 'l2-center-l2'
   */
  embeddingNorm?: EmbeddingNorm;
  /** @default 'ward' */
  linkage?: LinkageMethod;
  /**
   * Exact or approximate clustering (see `pipeline/micro.ts`): `'approximate'` summarises the embeddings by
   * `microClusters` deterministic k-means micro-clusters, runs exact size-weighted Ward on their centroids and
   * gives every image its micro-cluster's label (Ward only; `result.Z` is then over the micro-clusters, see
   * `result.microClusters`); `'exact'` never approximates; `'auto'` approximates Ward above `approxAbove` images.
   * An approximation in effect is listed in `result.approximations`. @default 'auto'
   */
  clustering?: ClusteringMode;
  /** Images above which `clustering: 'auto'` approximates Ward. @default {@link DEFAULT_APPROX_ABOVE} (20 000) */
  approxAbove?: number;
  /** Micro-clusters of approximate Ward (an integer ≥ 2). @default {@link DEFAULT_MICRO_CLUSTERS} (10 000) */
  microClusters?: number;
  /** @default the embedded default backbone */
  backbone?: BackboneSpec;
  /** Kernel backend. @default the first that loads (native, wasm, js) */
  backend?: BackendName;
  /** Only these extensions when listing a folder (e.g. `['.jpg']`). @default {@link IMAGE_EXTENSIONS} */
  extensions?: readonly string[];
  /** Images per inference batch. @default 8 */
  batchSize?: number;
  /** onnxruntime threads. @default number of cores */
  threads?: number;
  /** Cache root for features and the embedded models, or `false` for no feature cache (see `FeatureOptions.cacheDir`). @default `$ANOMALY_CLUSTERING_CACHE`, else `$XDG_CACHE_HOME/anomaly-clustering`, else `~/.cache/anomaly-clustering` */
  cacheDir?: string | false;
  /**
   * Read every image's features (and the normal images') from the feature cache, written by sharded extraction
   * (`extractShard`, CLI `features --shard i/n`; see `pipeline/shard.ts`), instead of running the CNN: the cluster
   * step of a sharded run. An image without an entry fails with `MissingFeaturesError` (`ERR_IO`). @default false
   */
  fromCache?: boolean;
  /** Skip unreadable images (listed in `skipped`) instead of failing. @default false */
  skipBad?: boolean;
  /** Image files over this many bytes are refused before they are read (see `FeatureOptions.maxImageBytes`). @default 256 MiB */
  maxImageBytes?: number;
  /** Told about problems that do not stop the run (e.g. a bad feature-cache entry recomputed). @default `process.emitWarning` */
  onWarning?: (message: string) => void;
  /** Per-layer normalisation of the patch features (see `FeatureOptions.layerNorm`). @default 'l2' */
  layerNorm?: 'none' | 'l2';
  /** Random projection of the patch features (see `FeatureOptions.projectDim`). @default 256 */
  projectDim?: number | false;
  /**
   * Unsupervised weighting against R reference images per image (see `WeightingOptions.references`), or
   * `'exact'` (all N−1), or `'auto'`: exact while the estimated work N²·M²·D ≤ `exactWorkLimit`, else
   * {@link DEFAULT_AUTO_REFERENCES} references; the switch is announced in the progress output and listed in
   * `result.approximations`. @default 'auto'
   */
  references?: number | 'exact' | 'auto';
  /** Multiply-adds above which `references: 'auto'` approximates. @default {@link DEFAULT_EXACT_WORK_LIMIT} (1e13 ≈ 5 CPU-minutes on AVX2) */
  exactWorkLimit?: number;
  /** Semi-supervised: coreset of the normal patches, a fraction in (0, 1] or a count (see `WeightingOptions.coreset`). @default exact */
  coreset?: number;
  /** Semi-supervised: storage of the normal patch bank (see `WeightingOptions.bankPrecision`). @default 'f32' */
  bankPrecision?: BankPrecision;
  /** Work per grouped-NN call (see `WeightingOptions.chunkWork`). @default 2e9 */
  chunkWork?: number;
  /**
   * Memory budget of the clustering stage in bytes (`Infinity` = no limit). When the n(n−1)/2 condensed distance
   * matrix (8 B per pair on native, 16 on wasm, 20 on js; see `pipeline/memory.ts`) would exceed it, `'ward'`
   * switches to Ward on the embeddings (`wardFromVectors`, O(n·d) memory, same Z up to rounding) and any other
   * linkage throws `ERR_MEMORY_LIMIT` before any work starts.
   * The same budget bounds the **feature bank** (`n·m·d·4` bytes, e.g. 800 KB per image with the default
   * backbone): while it takes at most half of `memoryLimit` it is held in memory, above that it is streamed from
   * disk (the feature-cache entries, or a spill file; `result.featureBank = 'disk'`). A streamed bank cannot give
   * exact unsupervised weights (every image against every other): `references: 'auto'` then uses
   * {@link DEFAULT_AUTO_REFERENCES} references, and `references: 'exact'` throws `ERR_MEMORY_LIMIT` before any
   * image is read; likewise when the semi-supervised normal bank alone exceeds half the budget.
   * @default 75 % of `os.freemem()` at the call
   */
  memoryLimit?: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** Output of {@link clusterImages}. */
export interface ClusterResult {
  /** Image names (paths or given names), in the order of every per-image array below. */
  files: string[];
  /** Cluster of each image, 0-based, numbered in order of first appearance. Length n. */
  labels: Int32Array;
  k: number;
  n: number;
  /** Image embeddings as they were clustered (after `embeddingNorm`), size `n*d`. */
  embeddings: Float32Array;
  /** The normalisation applied to the embeddings before the distances. */
  embeddingNorm: EmbeddingNorm;
  d: number;
  /** Per-image patch-weight maps, each `gridH × gridW` row-major, summing to 1. */
  weights: Float32Array[];
  gridH: number;
  gridW: number;
  /** Per-patch scores, size `n*gridH*gridW` (zeros for uniform / max). */
  scores: Float32Array;
  /**
   * SciPy linkage matrix, `(n−1) × 4` row-major `[a, b, height, size]`; with approximate Ward (`linkageFrom:
   * 'micro-clusters'`) it is over the `microClusters.m` micro-clusters, `(m−1) × 4`.
   */
  Z: Float64Array;
  /**
   * How Z was computed: `'condensed'` (`pdist` + `linkage`), `'vectors'` (Ward on the embeddings, see
   * `memoryLimit`) or `'micro-clusters'` (approximate Ward, see `clustering`).
   */
  linkageFrom: ClusteringPlan | 'micro-clusters';
  /**
   * With approximate Ward: the micro-clusters (the leaves of `Z`), the micro-cluster of each image (`assign`,
   * length n) and the images in each (`sizes`, length m).
   */
  microClusters?: { m: number; assign: Int32Array; sizes: Uint32Array };
  /** Where the patch bank was during the run: `'memory'`, or `'disk'` (streamed, over half of `memoryLimit`). */
  featureBank: 'memory' | 'disk';
  weighting: Weighting;
  /** The absolute τ used. */
  tau: number;
  /** The patch whitening applied (shrinkage, patches sampled for the covariance), or `false`. */
  whitened: { shrinkage: number; sampled: number } | false;
  linkage: LinkageMethod;
  /** Wall time per stage in ms, plus `total`. */
  timings: Partial<Record<Stage, number>> & { total: number };
  backend: { name: BackendName; isa: Isa; threads: number };
  /** Images skipped with `skipBad` and why (clustered and normal images). */
  skipped: { file: string; error: string }[];
  /** Number of normal images used (semi-supervised), else 0. */
  normals: number;
  /** The approximations of the patch scores and of the clustering in effect, one sentence each; empty = exact. */
  approximations: string[];
  /** Present when K was chosen automatically (`k` not given or `'auto'`): the criterion, the chosen K (= `k`) and every candidate's score. */
  kAuto?: AutoK;
  /**
   * The effective method: the preset, its configuration(s) and, for a consensus, each member's own clusters (cut at
   * K). `weighting`, `tau`, `whitened`, `embeddingNorm`, `embeddings`, `weights` and `scores` above are those of the
   * first weighted member (the primary); `Z` and `labels` are the consensus's.
   */
  method: ResolvedMethod & { memberLabels?: Int32Array[] };
}

/**
 * Image files under a folder, recursively, sorted by relative path (code-point order, `/` separators), hidden
 * files and folders skipped. Deterministic across platforms and runs. A name that is not valid UTF-8 is shown
 * with its bad bytes as `\xNN` (see {@link listImageInputs}, which also gives the raw path to read it).
 * @throws {InputError} `not-found` when `dir` is not an existing folder
 */
export function listImages(dir: string, extensions: readonly string[] = IMAGE_EXTENSIONS, problem: InputProblem = 'not-found'): string[] {
  return listImageInputs(dir, extensions, problem).map((f) => (typeof f === 'string' ? f : f.name));
}

/** UTF-8 bytes as text, each byte that is not part of a valid sequence written `\xNN`. */
export function displayName(b: Uint8Array): string {
  const dec = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  try {
    return dec.decode(b); // the usual case: valid UTF-8
  } catch { /* some bytes are not: escape those */ }
  let out = '';
  let i = 0;
  while (i < b.length) {
    const c = b[i]!;
    const len = c < 0x80 ? 1 : c >= 0xc2 && c < 0xe0 ? 2 : c >= 0xe0 && c < 0xf0 ? 3 : c >= 0xf0 && c < 0xf5 ? 4 : 0;
    if (len > 0 && i + len <= b.length) {
      try {
        out += dec.decode(b.subarray(i, i + len));
        i += len;
        continue;
      } catch { /* invalid sequence */ }
    }
    out += `\\x${c.toString(16).padStart(2, '0')}`;
    i++;
  }
  return out;
}

/**
 * {@link listImages} as pipeline inputs: plain paths, except files whose path is not valid UTF-8, given as
 * `{name, path}` with the display name and the raw `Buffer` path (so they can still be read).
 */
export function listImageInputs(dir: string, extensions: readonly string[] = IMAGE_EXTENSIONS, problem: InputProblem = 'not-found'): ImageInput[] {
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw new InputError(problem, `folder not found: ${dir}`, dir);
  }
  if (!st.isDirectory()) throw new InputError(problem, `not a folder: ${dir}`, dir);
  const exts = new Set(extensions.map((e) => (e.startsWith('.') ? e : `.${e}`).toLowerCase()));
  const out: { rel: string; raw?: Buffer }[] = [];
  const root = Buffer.from(dir);
  const sep = Buffer.from('/');
  // Names are read as bytes: a name that is not valid UTF-8 would otherwise come back with U+FFFD and not be found.
  const walk = (rel: Buffer | undefined, relText: string, exact: boolean) => {
    const here = rel ? Buffer.concat([root, sep, rel]) : root;
    const entries = readdirSync(here, { withFileTypes: true, encoding: 'buffer' });
    for (const e of entries) {
      const nb = e.name as unknown as Buffer;
      if (nb[0] === 0x2e) continue; // '.'
      const text = displayName(nb);
      const ok = exact && Buffer.from(text).equals(nb);
      const r = rel ? Buffer.concat([rel, sep, nb]) : nb;
      const rText = relText ? `${relText}/${text}` : text;
      if (e.isDirectory()) walk(r, rText, ok);
      // anything else with an image extension (also a FIFO, socket or device) is listed: reading it names the problem
      else if (exts.has(path.extname(text).toLowerCase())) out.push(ok ? { rel: rText } : { rel: rText, raw: r });
    }
  };
  walk(undefined, '', true);
  out.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));
  return out.map((f) => (f.raw ? { name: path.join(dir, f.rel), path: Buffer.concat([root, sep, f.raw]) } : path.join(dir, f.rel)));
}

function resolveInputs(input: string | ImageInput[], extensions: readonly string[] | undefined, normals: boolean): ImageInput[] {
  const what = normals ? 'normals' : 'input';
  if (typeof input === 'string') {
    const list = listImageInputs(input, extensions, normals ? 'normals-not-found' : 'not-found');
    if (list.length === 0) {
      throw new InputError(normals ? 'normals-empty' : 'no-images', `${what}: no images (${(extensions ?? IMAGE_EXTENSIONS).join(' ')}) found under ${input}`, input);
    }
    return list;
  }
  if (!Array.isArray(input)) throw new TypeError(`${what}: expected a folder path or an array of paths / {name, data}, got ${typeof input}`);
  if (input.length === 0) throw new InputError(normals ? 'normals-empty' : 'no-images', `${what}: expected at least one image, got an empty list`);
  return input;
}

function checkK(k: number, n: number): void {
  if (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1 || k > n) {
    throw new KernelError('ERR_K_OUT_OF_RANGE', `k: expected an integer in 1..${n} (the number of images), got ${k}`);
  }
}

/**
 * Validates the options that do not depend on the images (fail before any work).
 * @throws {TypeError} / {RangeError} / {KernelError}
 */
export function checkClusterOptions(options: ClusterOptions): void {
  if (options == null || typeof options !== 'object') throw new TypeError('options: expected an object (e.g. {k: 5}, or {} to choose K automatically)');
  const { k = 'auto', weighting = 'unsupervised', linkage = 'ward', backend, tau = DEFAULT_TAU } = options;
  const method = resolveMethod(options);
  if (k !== 'auto' && (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1)) {
    throw new KernelError('ERR_K_OUT_OF_RANGE', `k: expected an integer ≥ 1 or 'auto', got ${typeof k === 'string' ? JSON.stringify(k) : k}`);
  }
  checkAutoKOptions(options.autoK);
  if (!(WEIGHTINGS as readonly string[]).includes(weighting)) {
    throw new RangeError(`weighting: expected one of ${WEIGHTINGS.join(', ')}, got ${JSON.stringify(weighting)}`);
  }
  if (!(LINKAGE_METHODS as readonly string[]).includes(linkage)) {
    throw new KernelError('ERR_INVALID_METHOD', `linkage: expected one of ${LINKAGE_METHODS.join(', ')}, got ${JSON.stringify(linkage)}`);
  }
  if (backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(backend)) {
    throw new TypeError(`backend: expected one of ${BACKEND_NAMES.join(', ')}, got ${JSON.stringify(backend)}`);
  }
  checkTau(tau);
  if (options.whiten !== undefined) checkWhiten(options.whiten);
  if (options.embeddingNorm !== undefined) checkEmbeddingNorm(options.embeddingNorm);
  checkMemoryLimit(options.memoryLimit);
  if (options.maxImageBytes !== undefined) checkMaxImageBytes(options.maxImageBytes);
  if (options.clustering !== undefined) checkClusteringMode(options.clustering);
  if (options.clustering === 'approximate' && linkage !== 'ward') {
    throw new RangeError(`clustering 'approximate' is approximate Ward: it needs linkage 'ward', got ${JSON.stringify(linkage)}`);
  }
  if (options.microClusters !== undefined) checkMicroClusters(options.microClusters);
  const above = options.approxAbove;
  if (above !== undefined && (typeof above !== 'number' || Number.isNaN(above) || above < 0)) {
    throw new RangeError(`approxAbove: expected a number of images ≥ 0, got ${String(above)}`);
  }
  const { references: refs, exactWorkLimit: lim } = options;
  if (refs !== undefined && refs !== 'exact' && refs !== 'auto' && (typeof refs !== 'number' || !Number.isSafeInteger(refs) || refs < 1)) {
    throw new RangeError(`references: expected an integer ≥ 1, 'exact' or 'auto', got ${JSON.stringify(refs)}`);
  }
  if (lim !== undefined && (typeof lim !== 'number' || Number.isNaN(lim) || lim < 0)) {
    throw new RangeError(`exactWorkLimit: expected a number ≥ 0 (multiply-adds), got ${lim}`);
  }
  if (method.members.some((m) => m.weighting === 'semi-supervised') && options.normals === undefined) {
    throw new InputError('normals-required', "normals: weighting 'semi-supervised' needs normal images (a folder or a list)");
  }
}

function aborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new KernelError('ERR_ABORTED', 'clustering: aborted', { cause: signal.reason });
}

/**
 * Clusters images by anomaly type.
 * @param input a folder (searched recursively; sorted paths) or a list of paths / `{name, data}`
 * @param options see {@link ClusterOptions}, all optional (`clusterImages(dir)` works); without `k` (or with `k: 'auto'`) K is chosen automatically (`result.kAuto`)
 * @returns see {@link ClusterResult}
 * @throws {InputError} missing folder, no images, normals missing or empty
 * @throws {KernelError} `ERR_K_OUT_OF_RANGE` (k ∉ 1..n), `ERR_IMAGE` (a bad image without `skipBad`), `ERR_MODEL`,
 *   `ERR_BACKEND_UNAVAILABLE`, `ERR_ABORTED`, `ERR_INVALID_METHOD`, `ERR_MEMORY_LIMIT` (a non-Ward
 *   linkage whose condensed matrix exceeds `memoryLimit`, thrown before any work)
 * @throws {TypeError} / {RangeError} for malformed options
 */
export async function clusterImages(input: string | ImageInput[], options: ClusterOptions = {}): Promise<ClusterResult> {
  const t0 = performance.now();
  checkClusterOptions(options);
  const {
    k: kOpt = 'auto', linkage = 'ward', backbone, extensions,
    batchSize, threads, cacheDir, skipBad = false, chunkWork, references, onProgress, signal, layerNorm, projectDim,
  } = options;
  const method = resolveMethod(options);
  const { members } = method;
  // the primary member: the first weighted one (its weights, scores and embeddings are reported), else the first
  const primary = Math.max(0, members.findIndex((m) => m.weighting === 'unsupervised' || m.weighting === 'semi-supervised'));
  const weighting = members[primary]!.weighting;
  const embeddingNorm = members[primary]!.embeddingNorm;
  const uses = (w: Weighting) => members.some((m) => m.weighting === w);
  const inputs = resolveInputs(input, extensions, false);
  if (kOpt !== 'auto') checkK(kOpt, inputs.length);
  const normalInputs = uses('semi-supervised') ? resolveInputs(options.normals!, extensions, true) : undefined;
  const be = getBackend(options.backend);
  const memoryLimit = options.memoryLimit ?? defaultMemoryLimit();
  const { clustering = 'auto', approxAbove = DEFAULT_APPROX_ABOVE, microClusters: mOpt = DEFAULT_MICRO_CLUSTERS } = options;
  const approximate = (n: number) => linkage === 'ward' && n > 2 && (clustering === 'approximate' || (clustering === 'auto' && n > approxAbove && mOpt < n));
  // Before any work: the n² matrix must fit, else Ward runs on the vectors and other linkages fail here.
  const linkageFrom = approximate(inputs.length) ? 'vectors' : planClustering(inputs.length, linkage, be.name, memoryLimit);
  aborted(signal);

  const { extractFeatures } = await import('./features.js');
  const featureOptions = { backbone, batchSize, threads, cacheDir, skipBad, signal, layerNorm, projectDim, maxImageBytes: options.maxImageBytes, onWarning: options.onWarning };
  // Once the backbone fixes m and d (before any image is read): stream the bank if it is over half the budget,
  // and refuse what a streamed or oversized bank cannot do.
  const onPlan = (p: BankPlan) => checkBankPlan(p, memoryLimit, weighting, references, normalInputs?.length ?? 0);
  // uniform / max pooling need no nearest-patch search: take them from the unprojected features (FeatureOptions.pooled),
  // within a quarter of the memory budget
  const pooled = uses('uniform') || uses('max');
  const bankOptions = { ...featureOptions, pooled: pooled ? POOLED_MEMORY_SHARE * memoryLimit : false, onProgress, onPlan, streamAbove: bankMemoryLimit(memoryLimit) };
  const { readCachedBank } = await import('./shard.js');
  const bank: FeatureBank = options.fromCache ? await readCachedBank(inputs, bankOptions) : await extractFeatures(inputs, bankOptions);
  try {
    return await clusterBank(bank);
  } finally {
    bank.store?.close();
  }

  async function clusterBank(bank: FeatureBank): Promise<ClusterResult> {
    const timings: Partial<Record<Stage, number>> & { total: number } = {
      decode: bank.timings.decode ?? 0, features: bank.timings.features ?? 0, total: 0,
    };
    const skipped = [...bank.skipped];
    if (bank.n === 0) throw new InputError('no-images', 'input: every image was unreadable (all skipped)');
    if (kOpt !== 'auto') checkK(kOpt, bank.n);
    let normals: FeatureBank | undefined;
    if (normalInputs) {
      // the normal images are projected onto the clustered set's basis: both banks in one space
      normals = await (options.fromCache ? readCachedBank : extractFeatures)(normalInputs, {
        ...featureOptions, ...(bank.projection ? { projection: bank.projection } : {}),
        onProgress: onProgress && ((p) => onProgress({ ...p, message: p.message ? `normal images: ${p.message}` : 'normal images' })),
      });
      timings.decode! += normals.timings.decode ?? 0;
      timings.features! += normals.timings.features ?? 0;
      skipped.push(...normals.skipped);
      if (normals.n === 0) throw new InputError('normals-empty', 'normals: every normal image was unreadable (all skipped)');
    }

    const tw = performance.now();
    let refs: number | undefined = typeof references === 'number' ? references : undefined;
    let autoMessage = '';
    if (uses('unsupervised') && (references === undefined || references === 'auto')) {
      const auto = autoReferences(bank.n, bank.m, bank.d, options.exactWorkLimit ?? DEFAULT_EXACT_WORK_LIMIT);
      refs = auto.references;
      autoMessage = auto.message;
      if (bank.store && refs === undefined) {
        refs = Math.min(DEFAULT_AUTO_REFERENCES, bank.n - 1);
        autoMessage = `feature bank streamed from disk (${gib(bank.n * bank.m * bank.d * 4)} > half the memory limit): unsupervised ` +
          `weights against ${refs} reference images per image${refs < bank.n - 1 ? ` instead of all ${bank.n - 1}` : ' (all of them)'}`;
      }
      if (autoMessage) onProgress?.({ stage: 'weights', done: 0, total: bank.n * bank.m, message: autoMessage });
    }
    const { coreset, bankPrecision } = options;
    // every member's weights, once per (weighting, τ, whitening): members that differ only in the embedding
    // normalisation share them; the last group may whiten the bank and the normals in place (not read again)
    const groupKey = (m: MethodConfig) => JSON.stringify(m.weighting === 'uniform' || m.weighting === 'max' ? [m.weighting] : [m.weighting, m.tau, m.whiten]);
    const groups = [...new Set(members.map(groupKey))];
    const weightsOf = new Map<string, WeightingResult>();
    for (const [g, key] of groups.entries()) {
      const member = members.find((m) => groupKey(m) === key)!;
      const tag = groups.length > 1 ? `${describeMethod({ ...member, embeddingNorm: 'none' })} (${g + 1}/${groups.length}): ` : '';
      weightsOf.set(key, await computeWeights(bank, {
        weighting: member.weighting, tau: member.tau, whiten: member.whiten, normals, backend: be, chunkWork, references: refs, coreset,
        bankPrecision, signal, whitenInPlace: g === groups.length - 1,
        onProgress: onProgress && (tag ? (p) => onProgress({ ...p, message: `${tag}${p.message ?? ''}` }) : onProgress),
      }));
      aborted(signal);
    }
    const runs = members.map((member) => ({ member, w: weightsOf.get(groupKey(member))! }));
    timings.weights = performance.now() - tw;
    const w = runs[primary]!.w;

    const tc = performance.now();
    const n = bank.n;
    const normalised = runs.map((r) => normaliseEmbeddings(r.w.embeddings, n, r.w.d, r.member.embeddingNorm));
    const embeddings = normalised[primary]!;
    // a consensus needs the n² co-association matrix: over the memory limit, the primary member alone
    const consensus = members.length > 1 && linkageFrom === 'condensed' && n > 1 && !approximate(n);
    const approximations: string[] = [];
    if (members.length > 1 && !consensus && n > 1) {
      approximations.push(`consensus of ${members.length} configurations skipped (its n² co-association matrix exceeds memoryLimit, or Ward is approximated): ${describeMethod(members[primary]!)} alone`);
    }
    onProgress?.({ stage: 'clustering', done: 0, total: 3, message: 'distances' });
    let Z: Float64Array;
    let labels: Int32Array;
    let kAuto: AutoK | undefined;
    let memberLabels: Int32Array[] | undefined;
    let k = kOpt === 'auto' ? 1 : kOpt;
    /** The tree of one member's embeddings (and the condensed distances, when computed). */
    const tree = async (emb: Float32Array, d: number): Promise<{ Z: Float64Array; y?: Float32Array }> => {
      if (linkageFrom === 'vectors') {
        onProgress?.({ stage: 'clustering', done: 1, total: 3, message: 'ward linkage on the embeddings (condensed matrix over memoryLimit)' });
        return { Z: await be.wardFromVectorsAsync(emb, n, d) };
      }
      const y = await be.pdistAsync(emb, n, d, false);
      onProgress?.({ stage: 'clustering', done: 1, total: 3, message: `${linkage} linkage` });
      aborted(signal);
      return { Z: await be.linkageAsync(y, n, linkage), y };
    };
    let micro: ClusterResult['microClusters'];
    let microMessage = '';
    if (approximate(n)) {
      // Approximate Ward: k-means micro-clusters, exact size-weighted Ward on their centroids (pipeline/micro.ts).
      onProgress?.({ stage: 'clustering', done: 0, total: 3, message: `micro-clusters (up to ${Math.min(mOpt, n)} of ${n} images)` });
      const aw = await approximateWard(embeddings, n, w.d, mOpt, {
        backend: be, signal,
        onProgress: (pass, passes, moved) => onProgress?.({ stage: 'clustering', done: 0, total: 3, message: `micro-clusters: pass ${pass}/${passes}, ${moved} images moved` }),
      });
      onProgress?.({ stage: 'clustering', done: 1, total: 3, message: `size-weighted ward linkage of ${aw.m} micro-clusters` });
      if (kOpt === 'auto') {
        kAuto = await chooseKAsync({ embeddings: aw.centroids, n: aw.m, d: w.d, Z: aw.Z }, {
          criterion: options.autoK?.criterion, kMax: options.autoK?.kMax, backend: be, linkage, maxDistanceBytes: 0,
        });
        k = kAuto.chosen;
      } else if (k > aw.m) {
        throw new KernelError('ERR_K_OUT_OF_RANGE', `k: ${k} clusters asked for, but approximate ward has only ${aw.m} micro-clusters; use a larger microClusters or clustering: 'exact'`);
      }
      onProgress?.({ stage: 'clustering', done: 2, total: 3, message: kAuto ? `cut into ${k} (automatic K on the micro-clusters, ${kAuto.criterion})` : `cut into ${k}` });
      labels = labelsOf(be.cutK(aw.Z, aw.m, k), aw.assign);
      Z = aw.Z;
      micro = { m: aw.m, assign: aw.assign, sizes: aw.sizes };
      microMessage = `ward approximated: exact size-weighted ward on ${aw.m} deterministic k-means micro-clusters of the ${n} images ` +
        `(${aw.passes} assignment passes${aw.moved ? `, ${aw.moved} images still moving` : ', converged'}), each image labelled by its micro-cluster` +
        `${kAuto ? '; automatic K scored on the micro-cluster centroids' : ''}; Z is over the micro-clusters (pass clustering: 'exact' for exact ward)`;
      onProgress?.({ stage: 'clustering', done: 2, total: 3, message: microMessage });
    } else if (n === 1) {
      if (kOpt === 'auto') kAuto = { criterion: options.autoK?.criterion ?? DEFAULT_AUTO_K_CRITERION, chosen: 1, kMax: 1, candidates: [] };
      Z = new Float64Array(0);
      labels = new Int32Array(1);
    } else {
      const main = await tree(embeddings, w.d);
      if (kOpt === 'auto') {
        // K from the primary member's tree; the condensed matrix is reused by the silhouette criterion (with the
        // 'vectors' plan it computes in row blocks)
        kAuto = await chooseKAsync({ embeddings, n, d: w.d, Z: main.Z, distances: main.y }, {
          criterion: options.autoK?.criterion, kMax: options.autoK?.kMax, backend: be, linkage,
          ...(linkageFrom === 'vectors' ? { maxDistanceBytes: 0 } : {}),
        });
        k = kAuto.chosen;
      }
      onProgress?.({ stage: 'clustering', done: 2, total: 3, message: kAuto ? `cut into ${k} (automatic K, ${kAuto.criterion})` : `cut into ${k}` });
      if (consensus) {
        const partitions: Int32Array[] = [];
        memberLabels = [];
        for (const [i, r] of runs.entries()) {
          const Zi = i === primary ? main.Z : (await tree(normalised[i]!, r.w.d)).Z;
          memberLabels.push(be.cutK(Zi, n, k));
          for (let kk = Math.max(1, k - method.kSpread); kk <= Math.min(n, k + method.kSpread); kk++) partitions.push(kk === k ? memberLabels[i]! : be.cutK(Zi, n, kk));
        }
        onProgress?.({ stage: 'clustering', done: 2, total: 3, message: `consensus of ${members.length} clusterings` });
        ({ Z, labels } = await consensusClusters(partitions, n, k, be));
      } else {
        Z = main.Z;
        labels = be.cutK(Z, n, k);
      }
    }
    onProgress?.({ stage: 'clustering', done: 3, total: 3 });
    timings.clustering = performance.now() - tc;
    timings.total = performance.now() - t0;

    return {
      files: bank.files, labels, k, n, embeddings, embeddingNorm, d: w.d, weights: w.maps, gridH: w.gridH, gridW: w.gridW,
      method: { ...method, ...(memberLabels ? { memberLabels } : {}) },
      scores: w.scores, Z, linkageFrom: micro ? 'micro-clusters' : linkageFrom, weighting, tau: w.tau, whitened: w.whitened, linkage, timings,
      backend: { name: be.name, isa: be.isa, threads: be.threads }, skipped, normals: normals?.n ?? 0,
      approximations: [
        ...(autoMessage ? [autoMessage] : []), ...new Set(runs.flatMap((r) => r.w.approximations)), ...approximations, ...(microMessage ? [microMessage] : []),
        ...(pooled && bank.projectedFrom && !bank.pooled
          ? [`${members.filter((m) => m.weighting === 'uniform' || m.weighting === 'max').map((m) => m.weighting).join(' and ')} pooling of the ${bank.d}-dim projected patches: the unprojected pooled vectors (${bank.n} × ${2 * bank.projectedFrom + bank.m} floats) `
            + `exceed a quarter of the memory limit (${gib(memoryLimit)})`] : []),
      ],
      featureBank: bank.store ? 'disk' : 'memory',
      ...(kAuto ? { kAuto } : {}),
      ...(micro ? { microClusters: micro } : {}),
    };
  }
}
