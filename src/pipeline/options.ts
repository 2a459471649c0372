/**
 * @file The options of `clusterImages`: their groups, every default in one place ({@link CLUSTER_DEFAULTS}), the
 * one validation ({@link resolveClusterOptions}) and the effective options a result carries
 * ({@link EffectiveOptions}, JSON-ready through {@link serialiseOptions}).
 *
 * Kinds of mistake and their errors (`src/errors.ts`): an options object of the wrong shape (not an object, an
 * unknown option, an option outside its group) → `TypeError`; an option value that is not accepted (out of its
 * range, not in its list, of the wrong type, in conflict with another option) → {@link OptionError}, a
 * `RangeError` with the option's path and a `code` (`ERR_K_OUT_OF_RANGE` for `k`, `ERR_INVALID_METHOD` for
 * `linkage`, `ERR_INVALID_ARGUMENT` otherwise); `normals` missing for semi-supervised weights → `InputError`.
 * The checks of single options live beside the stage that reads them (`checkTau` in weighting.ts, …); this module
 * runs them all, once, and turns whatever they throw into an {@link OptionError}.
 * @module pipeline/options
 */
import { availableParallelism } from 'node:os';
import type { BackendName, LinkageMethod } from '../../bindings/backend.js';
import type { ErrorCode } from '../../bindings/errors.js';
import { BACKEND_NAMES, LINKAGE_METHODS } from '../../bindings/backend.js';
import { InputError, KernelError, OptionError } from '../errors.js';
import { cacheRoot } from '../models/index.js';
import { BANK_PRECISIONS, coresetSize, DEFAULT_EXACT_WORK_LIMIT, type BankPrecision } from './approx.js';
import { checkAutoKOptions, DEFAULT_AUTO_K_CRITERION, DEFAULT_K_MAX, type AutoKCriterion } from './autok.js';
import { checkEmbeddingNorm, type EmbeddingNorm } from './embedding-norm.js';
import { DEFAULT_LAYER_NORM, DEFAULT_PROJECT_DIM } from './features.js';
import { checkMaxImageBytes, DEFAULT_MAX_IMAGE_BYTES } from './image.js';
import { checkMemoryLimit, defaultMemoryLimit } from './memory.js';
import { checkClusteringMode, checkMicroClusters, DEFAULT_APPROX_ABOVE, DEFAULT_MICRO_CLUSTERS, type ClusteringMode } from './micro.js';
import { resolveMethod, type PresetName, type ResolvedMethod } from './presets.js';
import type { BackboneSpec, ImageInput, Progress } from './types.js';
import { checkTau, DEFAULT_CHUNK_WORK, WEIGHTINGS, type Tau, type Weighting } from './weighting.js';
import { checkWhiten } from './whiten.js';

/** File extensions treated as images when a folder is given (lower case, with the dot). */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp', '.gif', '.avif'] as const;

/** `features`: how the images become patch bags (see `FeatureOptions`, features.ts). */
export interface FeaturesGroup {
  /** @default the embedded default backbone (`{}`) */
  backbone?: BackboneSpec;
  /** Images per inference batch. @default 8 */
  batchSize?: number;
  /** onnxruntime threads. @default number of cores */
  threads?: number;
  /** Cache root for features and the embedded models, or `false` for no feature cache (see `FeatureOptions.cacheDir`). @default `$ANOMALY_CLUSTERING_CACHE`, else `$XDG_CACHE_HOME/anomaly-clustering`, else `~/.cache/anomaly-clustering` */
  cacheDir?: string | false;
  /**
   * Read every image's features (and the normal images') from the feature cache, written by sharded extraction
   * (`extractShard`, CLI `features --shard i/n`; see `pipeline/shard.ts` and docs/sharding.md), instead of running
   * the CNN: the cluster step of a sharded run. An image without an entry fails with `MissingFeaturesError`
   * (`ERR_IO`). @default false
   */
  fromCache?: boolean;
  /** Skip unreadable images (listed in `skipped`) instead of failing. @default false */
  skipBad?: boolean;
  /** Image files over this many bytes are refused before they are read (see `FeatureOptions.maxImageBytes`). @default 256 MiB */
  maxImageBytes?: number;
  /** Per-layer normalisation of the patch features (see `FeatureOptions.layerNorm`). @default 'l2' */
  layerNorm?: 'none' | 'l2';
  /** Projection of the patch features onto their principal subspace (see `FeatureOptions.projectDim`). @default 256 */
  projectDim?: number | false;
  /** Only these extensions when listing a folder (e.g. `['.jpg']`). @default {@link IMAGE_EXTENSIONS} */
  extensions?: readonly string[];
}

/**
 * `weights`: how the patches are scored and weighted (see `WeightingOptions`, weighting.ts). `tau` and `whiten`
 * select a single configuration like `weighting` does (see `preset`).
 */
export interface WeightsGroup {
  /** Softmax temperature, absolute or `{relative: r}` (per-image spread; `spread: 'set'` for one set-wide τ). @default the preset's (`{relative: 0.5}`) */
  tau?: Tau;
  /**
   * Whitening of the patches before the weighted modes' nearest-patch search: the shrinkage α > 0 of the set's
   * patch covariance (Mahalanobis distances; see `pipeline/whiten.ts`), or `false` for plain Euclidean distances.
   * Ignored by `'uniform'` and `'max'`. @default the preset's
   */
  whiten?: number | false;
  /**
   * Unsupervised weighting against R reference images per image (see `WeightingOptions.references`), or
   * `'exact'` (all N−1), or `'auto'`: exact while the estimated work N²·M²·D ≤ `exactWorkLimit` and the bank is
   * in memory, else `DEFAULT_AUTO_REFERENCES` references; the switch is announced in the progress output and
   * listed in `result.approximations`. @default 'auto'
   */
  references?: number | 'exact' | 'auto';
  /** Multiply-adds above which `references: 'auto'` approximates. @default `DEFAULT_EXACT_WORK_LIMIT` (1e13 ≈ 5 CPU-minutes on AVX2) */
  exactWorkLimit?: number;
  /** Semi-supervised: coreset of the normal patches, a fraction in (0, 1] or a count (see `WeightingOptions.coreset`). @default exact (none) */
  coreset?: number;
  /** Semi-supervised: storage of the normal patch bank (see `WeightingOptions.bankPrecision`). @default 'f32' */
  bankPrecision?: BankPrecision;
  /** Work per grouped-NN call (see `WeightingOptions.chunkWork`). @default 2e9 */
  chunkWork?: number;
}

/** `resources`: where and within what the run computes. */
export interface ResourcesGroup {
  /** Kernel backend. @default the first that loads (native, wasm, js) */
  backend?: BackendName;
  /**
   * Memory budget of the run in bytes (`Infinity` = no limit); see `pipeline/memory.ts` and docs/performance.md.
   * When the n(n−1)/2 condensed distance matrix (8 B per pair on native, 16 on wasm, 20 on js) would exceed it,
   * `'ward'` switches to Ward on the embeddings (`wardFromVectors`, O(n·d) memory, same Z up to rounding) and any
   * other linkage throws `ERR_MEMORY_LIMIT` before any work starts.
   * The same budget bounds the **feature bank** (`n·m·d·4` bytes, e.g. 800 KB per image with the default
   * backbone): while it takes at most half of `memoryLimit` it is held in memory, above that it is streamed from
   * disk (the feature-cache entries, or a spill file; `result.featureBank = 'disk'`). A streamed bank cannot give
   * exact unsupervised weights: `weights.references: 'auto'` then uses `DEFAULT_AUTO_REFERENCES` references, and
   * `'exact'` throws `ERR_MEMORY_LIMIT` before any image is read; likewise when the semi-supervised normal bank
   * alone exceeds half the budget.
   * @default 75 % of `os.freemem()` at the call
   */
  memoryLimit?: number;
  /**
   * Exact or approximate clustering (see `pipeline/micro.ts`): `'approximate'` summarises the embeddings by
   * `microClusters` deterministic k-means micro-clusters, runs exact size-weighted Ward on their centroids and
   * gives every image its micro-cluster's label (Ward only; `result.Z` is then over the micro-clusters, see
   * `result.microClusters`); `'exact'` never approximates; `'auto'` approximates Ward above `approxAbove` images.
   * An approximation in effect is listed in `result.approximations`. @default 'auto'
   */
  clustering?: ClusteringMode;
  /** Images above which `clustering: 'auto'` approximates Ward. @default `DEFAULT_APPROX_ABOVE` (20 000) */
  approxAbove?: number;
  /** Micro-clusters of approximate Ward (an integer ≥ 2). @default `DEFAULT_MICRO_CLUSTERS` (10 000) */
  microClusters?: number;
}

/** Options of `clusterImages`, all optional. Defaults: {@link CLUSTER_DEFAULTS}. */
export interface ClusterOptions {
  /**
   * Number of clusters, 1 ≤ k ≤ number of images, or `'auto'` (the same as leaving it out): K is chosen from the
   * dendrogram and the embeddings by `autoK.criterion` (see `pipeline/autok.ts`) and reported in `result.kAuto`.
   * @default 'auto'
   */
  k?: number | 'auto';
  /** How K is chosen when `k` is `'auto'`. @default `{criterion: DEFAULT_AUTO_K_CRITERION, kMax: DEFAULT_K_MAX}` (kMax clamped to n−1) */
  autoK?: { criterion?: AutoKCriterion; kMax?: number };
  /** @default 'ward' */
  linkage?: LinkageMethod;
  /**
   * The method preset: `'default'` (a consensus of uniform, max and unsupervised clusterings chosen by the dev-set
   * protocol, docs/quality.md) or `'paper'` (the published method). Giving `weighting`, `embeddingNorm`,
   * `weights.tau` or `weights.whiten` runs that single configuration instead (see `pipeline/presets.ts`).
   * @default 'default'
   */
  preset?: PresetName;
  /** Run one weighting instead of the preset's (fields not given: the paper's). @default the preset's */
  weighting?: Weighting;
  /** Normal images (a folder or a list) for `'semi-supervised'`; ignored otherwise. */
  normals?: string | ImageInput[];
  /**
   * How the image embeddings are normalised before they are compared: `'l2-center-l2'` (unit length, minus the
   * set's mean, unit length again), `'center-l2'` or `'none'`. See `pipeline/embedding-norm.ts`. @default the preset's
   */
  embeddingNorm?: EmbeddingNorm;
  features?: FeaturesGroup;
  weights?: WeightsGroup;
  resources?: ResourcesGroup;
  onProgress?: (p: Progress) => void;
  /** Told about problems that do not stop the run (e.g. a bad feature-cache entry recomputed). @default `process.emitWarning` */
  onWarning?: (message: string) => void;
  signal?: AbortSignal;
}

/**
 * The options in effect: every default filled in (the method as resolved from the preset), no callbacks.
 * `result.options` of `clusterImages`.
 */
export interface EffectiveOptions {
  k: number | 'auto';
  autoK: { criterion: AutoKCriterion; kMax: number };
  linkage: LinkageMethod;
  /** The preset and its configuration(s) (`preset: 'custom'` when fields were given explicitly). */
  method: ResolvedMethod;
  normals?: string | ImageInput[];
  features: Required<Omit<FeaturesGroup, 'extensions'>> & { extensions: readonly string[] };
  weights: { references: number | 'exact' | 'auto'; exactWorkLimit: number; coreset?: number; bankPrecision: BankPrecision; chunkWork: number };
  resources: { backend?: BackendName; memoryLimit: number; clustering: ClusteringMode; approxAbove: number; microClusters: number };
}

/** Every default of {@link ClusterOptions}; a function where the value depends on the machine or the environment. */
export const CLUSTER_DEFAULTS = {
  k: 'auto',
  autoK: { criterion: DEFAULT_AUTO_K_CRITERION, kMax: DEFAULT_K_MAX },
  linkage: 'ward',
  preset: 'default',
  features: {
    backbone: {}, batchSize: 8, threads: (): number => availableParallelism(), cacheDir: (): string => cacheRoot(), fromCache: false,
    skipBad: false, maxImageBytes: DEFAULT_MAX_IMAGE_BYTES, layerNorm: DEFAULT_LAYER_NORM, projectDim: DEFAULT_PROJECT_DIM, extensions: IMAGE_EXTENSIONS,
  },
  weights: { references: 'auto', exactWorkLimit: DEFAULT_EXACT_WORK_LIMIT, bankPrecision: 'f32', chunkWork: DEFAULT_CHUNK_WORK },
  resources: { memoryLimit: (): number => defaultMemoryLimit(), clustering: 'auto', approxAbove: DEFAULT_APPROX_ABOVE, microClusters: DEFAULT_MICRO_CLUSTERS },
} as const;

const GROUP_KEYS = {
  features: ['backbone', 'batchSize', 'threads', 'cacheDir', 'fromCache', 'skipBad', 'maxImageBytes', 'layerNorm', 'projectDim', 'extensions'],
  weights: ['tau', 'whiten', 'references', 'exactWorkLimit', 'coreset', 'bankPrecision', 'chunkWork'],
  resources: ['backend', 'memoryLimit', 'clustering', 'approxAbove', 'microClusters'],
} as const;
const TOP_KEYS = ['k', 'autoK', 'linkage', 'preset', 'weighting', 'normals', 'embeddingNorm', 'features', 'weights', 'resources', 'onProgress', 'onWarning', 'signal'];

/** Unknown keys of an options object: a `TypeError` naming the group a misplaced key belongs to. */
function checkKeys(o: object, where: string, known: readonly string[]): void {
  for (const key of Object.keys(o)) {
    if (known.includes(key) || (o as Record<string, unknown>)[key] === undefined) continue;
    const group = (Object.keys(GROUP_KEYS) as (keyof typeof GROUP_KEYS)[]).find((g) => (GROUP_KEYS[g] as readonly string[]).includes(key));
    throw new TypeError(`${where}${key}: unknown option${group ? ` here; it belongs to the '${group}' group (${group}: {${key}})` : ''}; expected one of ${known.join(', ')}`);
  }
}

function group<T extends object>(o: unknown, name: keyof typeof GROUP_KEYS): T {
  if (o === undefined) return {} as T;
  if (o === null || typeof o !== 'object') throw new TypeError(`${name}: expected an object of ${name} options, got ${String(o)}`);
  checkKeys(o, `${name}.`, GROUP_KEYS[name]);
  return o as T;
}

/** An {@link OptionError} unless `v` is absent or an integer ≥ `min`. */
function checkInteger(path: string, name: string, v: unknown, min: number): void {
  if (v !== undefined && (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min)) refuse(path, `${name}: expected an integer ≥ ${min}, got ${String(v)}`);
}

/**
 * Runs the check of one option and turns what it throws (a `RangeError`, a `TypeError` or a coded `KernelError`,
 * as the stage's own check says it) into an {@link OptionError} with the same message, keeping the code.
 */
function option<T>(path: string | ((message: string) => string), check: () => T): T {
  try {
    return check();
  } catch (e) {
    if (e instanceof OptionError) throw e;
    if (!(e instanceof KernelError || e instanceof RangeError || e instanceof TypeError)) throw e;
    const where = typeof path === 'string' ? path : path(e.message);
    throw new OptionError(where, e.message, e instanceof KernelError ? e.code : 'ERR_INVALID_ARGUMENT', { cause: e });
  }
}

/** An {@link OptionError} for an option whose value is not in its list (or not a valid value of it). */
function refuse(path: string, message: string, code?: ErrorCode): never {
  throw new OptionError(path, message, code);
}

/** The option a method's resolution complains about, from its message (`tau: …` → `weights.tau`). */
function methodOption(message: string): string {
  const key = /^(\w+)/.exec(message)?.[1] ?? 'preset';
  return key === 'tau' || key === 'whiten' ? `weights.${key}` : key;
}

/**
 * Validates the options of `clusterImages` (everything that does not depend on the images) and fills in the
 * defaults: the one check of the run, before any work.
 * @throws {TypeError} an options object of the wrong shape; {OptionError} an option value not accepted;
 *   {InputError} normals missing: see the module doc
 */
export function resolveClusterOptions(options: ClusterOptions): EffectiveOptions {
  if (options == null || typeof options !== 'object') throw new TypeError('options: expected an object (e.g. {k: 5}, or {} to choose K automatically)');
  checkKeys(options, '', TOP_KEYS);
  const features = group<FeaturesGroup>(options.features, 'features');
  const weights = group<WeightsGroup>(options.weights, 'weights');
  const resources = group<ResourcesGroup>(options.resources, 'resources');
  const D = CLUSTER_DEFAULTS;
  const { k = D.k, linkage = D.linkage } = options;
  const method = option(methodOption, () =>
    resolveMethod({ preset: options.preset, weighting: options.weighting, tau: weights.tau, whiten: weights.whiten, embeddingNorm: options.embeddingNorm }));
  if (k !== 'auto' && (typeof k !== 'number' || !Number.isSafeInteger(k) || k < 1)) {
    refuse('k', `k: expected an integer ≥ 1 or 'auto', got ${typeof k === 'string' ? JSON.stringify(k) : k}`, 'ERR_K_OUT_OF_RANGE');
  }
  option('autoK', () => checkAutoKOptions(options.autoK));
  if (options.weighting !== undefined && !(WEIGHTINGS as readonly string[]).includes(options.weighting)) {
    refuse('weighting', `weighting: expected one of ${WEIGHTINGS.join(', ')}, got ${JSON.stringify(options.weighting)}`);
  }
  if (!(LINKAGE_METHODS as readonly string[]).includes(linkage)) {
    refuse('linkage', `linkage: expected one of ${LINKAGE_METHODS.join(', ')}, got ${JSON.stringify(linkage)}`, 'ERR_INVALID_METHOD');
  }
  const { backend } = resources;
  if (backend !== undefined && !(BACKEND_NAMES as readonly string[]).includes(backend)) {
    refuse('resources.backend', `backend: expected one of ${BACKEND_NAMES.join(', ')}, got ${JSON.stringify(backend)}`);
  }
  if (weights.tau !== undefined) option('weights.tau', () => checkTau(weights.tau!));
  if (weights.whiten !== undefined) option('weights.whiten', () => checkWhiten(weights.whiten!));
  if (options.embeddingNorm !== undefined) option('embeddingNorm', () => checkEmbeddingNorm(options.embeddingNorm!));
  option('resources.memoryLimit', () => checkMemoryLimit(resources.memoryLimit));
  if (features.maxImageBytes !== undefined) option('features.maxImageBytes', () => checkMaxImageBytes(features.maxImageBytes!));
  checkInteger('features.batchSize', 'batchSize', features.batchSize, 1);
  checkInteger('features.threads', 'threads', features.threads, 1);
  const { clustering = D.resources.clustering, approxAbove = D.resources.approxAbove, microClusters = D.resources.microClusters } = resources;
  if (resources.clustering !== undefined) option('resources.clustering', () => checkClusteringMode(resources.clustering!));
  if (clustering === 'approximate' && linkage !== 'ward') {
    refuse('resources.clustering', `clustering 'approximate' is approximate Ward: it needs linkage 'ward', got ${JSON.stringify(linkage)}`);
  }
  if (resources.microClusters !== undefined) option('resources.microClusters', () => checkMicroClusters(resources.microClusters!));
  if (typeof approxAbove !== 'number' || Number.isNaN(approxAbove) || approxAbove < 0) {
    refuse('resources.approxAbove', `approxAbove: expected a number of images ≥ 0, got ${String(approxAbove)}`);
  }
  const { references = D.weights.references, exactWorkLimit = D.weights.exactWorkLimit, bankPrecision = D.weights.bankPrecision, chunkWork = D.weights.chunkWork } = weights;
  if (references !== 'exact' && references !== 'auto' && (typeof references !== 'number' || !Number.isSafeInteger(references) || references < 1)) {
    refuse('weights.references', `references: expected an integer ≥ 1, 'exact' or 'auto', got ${JSON.stringify(references)}`);
  }
  if (typeof exactWorkLimit !== 'number' || Number.isNaN(exactWorkLimit) || exactWorkLimit < 0) {
    refuse('weights.exactWorkLimit', `exactWorkLimit: expected a number ≥ 0 (multiply-adds), got ${exactWorkLimit}`);
  }
  if (weights.coreset !== undefined) option('weights.coreset', () => void coresetSize(weights.coreset!, 1));
  if (!(BANK_PRECISIONS as readonly string[]).includes(bankPrecision)) {
    refuse('weights.bankPrecision', `bankPrecision: expected one of ${BANK_PRECISIONS.join(', ')}, got ${JSON.stringify(bankPrecision)}`);
  }
  if (method.members.some((m) => m.weighting === 'semi-supervised') && options.normals === undefined) {
    throw new InputError('normals-required', "normals: weighting 'semi-supervised' needs normal images (a folder or a list)");
  }
  const F = D.features;
  return {
    k, linkage, method,
    autoK: { criterion: options.autoK?.criterion ?? D.autoK.criterion, kMax: options.autoK?.kMax ?? D.autoK.kMax },
    ...(options.normals !== undefined ? { normals: options.normals } : {}),
    features: {
      backbone: features.backbone ?? F.backbone, batchSize: features.batchSize ?? F.batchSize, threads: features.threads ?? F.threads(),
      cacheDir: features.cacheDir ?? F.cacheDir(), fromCache: features.fromCache ?? F.fromCache, skipBad: features.skipBad ?? F.skipBad,
      maxImageBytes: features.maxImageBytes ?? F.maxImageBytes, layerNorm: features.layerNorm ?? F.layerNorm,
      projectDim: features.projectDim ?? F.projectDim, extensions: features.extensions ?? F.extensions,
    },
    weights: { references, exactWorkLimit, ...(weights.coreset !== undefined ? { coreset: weights.coreset } : {}), bankPrecision, chunkWork },
    resources: { ...(backend !== undefined ? { backend } : {}), memoryLimit: resources.memoryLimit ?? D.resources.memoryLimit(), clustering, approxAbove, microClusters },
  };
}

/**
 * The effective options as JSON (what the CLI writes to `result.json`): `Infinity` as `'inf'`, a τ of `Infinity`
 * as `'inf'`, image lists as their names; no `null`s.
 */
export function serialiseOptions(o: EffectiveOptions): Record<string, unknown> {
  const inf = (v: number): number | 'inf' => (Number.isFinite(v) ? v : 'inf');
  const { method, normals, features, resources } = o;
  return {
    k: o.k, autoK: o.autoK, linkage: o.linkage,
    method: { ...method, members: method.members.map((m) => ({ ...m, tau: typeof m.tau === 'number' ? inf(m.tau) : m.tau })) },
    ...(normals !== undefined ? { normals: typeof normals === 'string' ? normals : normals.map((x) => (typeof x === 'string' ? x : x.name)) } : {}),
    features: { ...features, maxImageBytes: inf(features.maxImageBytes), extensions: [...features.extensions] },
    weights: { ...o.weights, exactWorkLimit: inf(o.weights.exactWorkLimit) },
    resources: { ...resources, memoryLimit: inf(resources.memoryLimit), approxAbove: inf(resources.approxAbove) },
  };
}
