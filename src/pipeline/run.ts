/**
 * @file The whole pipeline in one call, as a straight line of stages, each a function of this module:
 * {@link planRun} (options, images, backend, the memory plan) → {@link extractBanks} (patch bags, features.ts) →
 * {@link weighMembers} (per configuration: whiten → score → weigh, weighting.ts) → {@link embedMembers} (embedding-norm.ts) →
 * {@link buildTree} (tree, micro.ts when approximated) → {@link resolveK} (autok.ts) → {@link cutClusters} (consensus.ts).
 * @module pipeline/run
 */
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BackendName, Isa, KernelBackend, LinkageMethod } from '../../bindings/backend.js';
import { getBackend } from '../../bindings/select.js';
import { InputError, OptionError, type InputProblem } from '../errors.js';
import type { FeatureBank, FeatureOptions, ImageInput, Stage } from './types.js';
import { computeWeights, type Weighting, type WeightingResult } from './weighting.js';
import { gib, planMemory, planReferences, type ClusteringPlan, type MemoryPlan } from './memory.js';
import { chooseKAsync, type AutoK } from './autok.js';
import { normaliseEmbeddings, type EmbeddingNorm } from './embedding-norm.js';
import { describeMethod, type MethodConfig, type ResolvedMethod } from './presets.js';
import { consensusClusters } from './consensus.js';
import { approximateWard, labelsOf } from './micro.js';
import { IMAGE_EXTENSIONS, resolveClusterOptions, type ClusterOptions, type EffectiveOptions } from './options.js';
import { throwIfAborted } from './context.js';
import { bagStore } from './bank-store.js';

export { IMAGE_EXTENSIONS, type ClusterOptions, type EffectiveOptions } from './options.js';

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
   * `resources.memoryLimit`) or `'micro-clusters'` (approximate Ward, see `resources.clustering`).
   */
  linkageFrom: ClusteringPlan | 'micro-clusters';
  /**
   * With approximate Ward: the micro-clusters (the leaves of `Z`), the micro-cluster of each image (`assign`,
   * length n) and the images in each (`sizes`, length m).
   */
  microClusters?: { m: number; assign: Int32Array; sizes: Uint32Array };
  /** Where the patch bank was during the run: `'memory'`, or `'disk'` (streamed, over half of `resources.memoryLimit`). */
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
  /** The options in effect, every default filled in (JSON: `serialiseOptions`). */
  options: EffectiveOptions;
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
    throw new OptionError('k', `k: expected an integer in 1..${n} (the number of images), got ${k}`, 'ERR_K_OUT_OF_RANGE');
  }
}

/**
 * Clusters images by anomaly type: the stages of this module in a straight line.
 * @param input a folder (searched recursively; sorted paths) or a list of paths / `{name, data}`
 * @param options see {@link ClusterOptions}, all optional (`clusterImages(dir)` works); without `k` (or with `k: 'auto'`) K is chosen automatically (`result.kAuto`)
 * @returns see {@link ClusterResult}
 * @throws {InputError} missing folder, no images, normals missing or empty
 * @throws {OptionError} `ERR_K_OUT_OF_RANGE` (k ∉ 1..n) and every option value not accepted; {KernelError} `ERR_IMAGE` (a bad image without `skipBad`), `ERR_MODEL`,
 *   `ERR_BACKEND_UNAVAILABLE`, `ERR_ABORTED`, `ERR_INVALID_METHOD`, `ERR_MEMORY_LIMIT` (a non-Ward
 *   linkage whose condensed matrix exceeds `resources.memoryLimit`, thrown before any work)
 * @throws {TypeError} / {RangeError} for malformed options (see `pipeline/options.ts`)
 */
export async function clusterImages(input: string | ImageInput[], options: ClusterOptions = {}): Promise<ClusterResult> {
  const t0 = performance.now();
  const run = planRun(input, options);
  const banks = await extractBanks(run);
  try {
    const tw = performance.now();
    const weighed = await weighMembers(run, banks);
    const tc = performance.now();
    const embedded = embedMembers(run, weighed, banks.bank.n);
    const tree = await buildTree(run, embedded);
    const chosen = await resolveK(run, embedded, tree);
    const { labels, Z, k, kAuto, memberLabels, microClusters, approximations } = await cutClusters(run, embedded, tree, chosen);
    const tEnd = performance.now();
    const { bank } = banks;
    const { members } = run.method;
    const primary = members[run.primary]!;
    const w = weighed.runs[run.primary]!.w;
    const be = run.backend;
    return {
      files: bank.files, labels, k, n: bank.n, embeddings: embedded.primary, embeddingNorm: primary.embeddingNorm, d: embedded.d,
      weights: w.maps, gridH: w.gridH, gridW: w.gridW, method: { ...run.method, ...(memberLabels ? { memberLabels } : {}) },
      scores: w.scores, Z, linkageFrom: microClusters ? 'micro-clusters' : run.memory.linkageFrom, weighting: primary.weighting, tau: w.tau,
      whitened: w.whitened, linkage: run.options.linkage,
      timings: { ...banks.timings, total: tEnd - t0, weights: tc - tw, clustering: tEnd - tc },
      backend: { name: be.name, isa: be.isa, threads: be.threads }, skipped: banks.skipped, normals: banks.normals?.n ?? 0,
      approximations: [
        ...(weighed.referencesMessage ? [weighed.referencesMessage] : []), ...new Set(weighed.runs.flatMap((r) => r.w.approximations)),
        ...approximations, ...pooledApproximation(run, bank),
      ],
      featureBank: bagStore(bank).streamed ? 'disk' : 'memory',
      ...(kAuto ? { kAuto } : {}),
      ...(microClusters ? { microClusters } : {}),
      options: run.options,
    };
  } finally {
    bagStore(banks.bank).close();
  }
}

/** What {@link planRun} decides before any work: the effective options, the images, the backend and the memory plan. */
export interface RunPlan {
  options: EffectiveOptions;
  method: ResolvedMethod;
  /** The configuration whose weights, scores and embeddings are reported: the first weighted one, else the first. */
  primary: number;
  inputs: ImageInput[];
  normalInputs: ImageInput[] | undefined;
  backend: KernelBackend;
  memory: MemoryPlan;
  onProgress: ClusterOptions['onProgress'];
  onWarning: ClusterOptions['onWarning'];
  signal: AbortSignal | undefined;
}

/** Whether a member of the method uses weighting `w`. */
const uses = (run: RunPlan, w: Weighting): boolean => run.method.members.some((m) => m.weighting === w);

/**
 * Stage 1: the options validated once (defaults filled), the images listed, the backend loaded and the one
 * memory plan decided (pipeline/memory.ts), all before any image is read.
 */
export function planRun(input: string | ImageInput[], options: ClusterOptions): RunPlan {
  const eff = resolveClusterOptions(options);
  const { method } = eff;
  const { members } = method;
  const primary = Math.max(0, members.findIndex((m) => m.weighting === 'unsupervised' || m.weighting === 'semi-supervised'));
  const { extensions } = eff.features;
  const inputs = resolveInputs(input, extensions, false);
  if (eff.k !== 'auto') checkK(eff.k, inputs.length);
  const semi = members.some((m) => m.weighting === 'semi-supervised');
  const normalInputs = semi ? resolveInputs(eff.normals!, extensions, true) : undefined;
  const backend = getBackend(eff.resources.backend);
  const memory = planMemory(inputs.length, {
    ...eff.resources, linkage: eff.linkage, backend: backend.name, weighting: members[primary]!.weighting, references: eff.weights.references,
    normals: normalInputs?.length ?? 0, pools: members.some((m) => m.weighting === 'uniform' || m.weighting === 'max'),
  });
  throwIfAborted(options.signal, 'clustering');
  return {
    options: eff, method, primary, inputs, normalInputs, backend, memory,
    onProgress: options.onProgress, onWarning: options.onWarning, signal: options.signal,
  };
}

/** The patch bags of the images (and of the normal images), with the extraction's timings and skipped images. */
export interface Banks {
  bank: FeatureBank;
  normals: FeatureBank | undefined;
  timings: { decode: number; features: number };
  skipped: { file: string; error: string }[];
}

/**
 * Stage 2: patch bags of the images, through the CNN (features.ts) or from the feature cache (`fromCache`,
 * shard.ts), in memory or streamed from disk as the memory plan says; then the normal images' bags, projected
 * onto the clustered set's basis (both banks in one space).
 */
export async function extractBanks(run: RunPlan): Promise<Banks> {
  const { options: o, memory, onProgress, signal } = run;
  const f = o.features;
  const { extractFeatures } = await import('./features.js');
  const { readCachedBank } = await import('./shard.js');
  const read = f.fromCache ? readCachedBank : extractFeatures;
  const featureOptions: FeatureOptions = {
    backbone: f.backbone, batchSize: f.batchSize, threads: f.threads, cacheDir: f.cacheDir, skipBad: f.skipBad, signal,
    layerNorm: f.layerNorm, projectDim: f.projectDim, maxImageBytes: f.maxImageBytes, onWarning: run.onWarning,
  };
  const bank = await read(run.inputs, { ...featureOptions, pooled: memory.pooled, onProgress, onPlan: memory.onBank, streamAbove: memory.streamAbove });
  try {
    const timings = { decode: bank.timings.decode ?? 0, features: bank.timings.features ?? 0 };
    const skipped = [...bank.skipped];
    if (bank.n === 0) throw new InputError('no-images', 'input: every image was unreadable (all skipped)');
    if (o.k !== 'auto') checkK(o.k, bank.n);
    let normals: FeatureBank | undefined;
    if (run.normalInputs) {
      normals = await read(run.normalInputs, {
        ...featureOptions, ...(bank.projection ? { projection: bank.projection } : {}),
        onProgress: onProgress && ((p) => onProgress({ ...p, message: p.message ? `normal images: ${p.message}` : 'normal images' })),
      });
      timings.decode += normals.timings.decode ?? 0;
      timings.features += normals.timings.features ?? 0;
      skipped.push(...normals.skipped);
      if (normals.n === 0) throw new InputError('normals-empty', 'normals: every normal image was unreadable (all skipped)');
    }
    return { bank, normals, timings, skipped };
  } catch (e) {
    bagStore(bank).close();
    throw e;
  }
}

/** The weights of every member of the method, and the sentence of an automatic switch to reference images. */
export interface Weighed {
  runs: { member: MethodConfig; w: WeightingResult }[];
  referencesMessage: string;
}

/**
 * Stage 3: every member's weights, once per (weighting, τ, whitening): members that differ only in the
 * embedding normalisation share them; each is whiten → score → weigh (`computeWeights`, weighting.ts). The last
 * group may whiten the bank and the normals in place (not read again).
 */
export async function weighMembers(run: RunPlan, banks: Banks): Promise<Weighed> {
  const { bank, normals } = banks;
  const { members } = run.method;
  const { onProgress, signal } = run;
  const o = run.options.weights;
  let references = typeof o.references === 'number' ? o.references : undefined;
  let referencesMessage = '';
  if (uses(run, 'unsupervised')) {
    ({ references, message: referencesMessage } = planReferences({ ...bank, streamed: bagStore(bank).streamed }, o.references, o.exactWorkLimit));
    if (referencesMessage) onProgress?.({ stage: 'weights', done: 0, total: bank.n * bank.m, message: referencesMessage });
  }
  const groupKey = (m: MethodConfig) => JSON.stringify(m.weighting === 'uniform' || m.weighting === 'max' ? [m.weighting] : [m.weighting, m.tau, m.whiten]);
  const groups = [...new Set(members.map(groupKey))];
  const weightsOf = new Map<string, WeightingResult>();
  for (const [g, key] of groups.entries()) {
    const member = members.find((m) => groupKey(m) === key)!;
    const tag = groups.length > 1 ? `${describeMethod({ ...member, embeddingNorm: 'none' })} (${g + 1}/${groups.length}): ` : '';
    weightsOf.set(key, await computeWeights(bank, {
      weighting: member.weighting, tau: member.tau, whiten: member.whiten, normals, backend: run.backend, chunkWork: o.chunkWork, references,
      coreset: o.coreset, bankPrecision: o.bankPrecision, signal, whitenInPlace: g === groups.length - 1,
      onProgress: onProgress && (tag ? (p) => onProgress({ ...p, message: `${tag}${p.message ?? ''}` }) : onProgress),
    }));
    throwIfAborted(signal, 'clustering');
  }
  return { runs: members.map((member) => ({ member, w: weightsOf.get(groupKey(member))! })), referencesMessage };
}

/** Every member's image embeddings as they are compared. */
export interface Embedded {
  n: number;
  /** Dimension of the primary member's embeddings. */
  d: number;
  /** Each member's normalised embeddings, `n × d` (in member order). */
  members: { embeddings: Float32Array; d: number }[];
  /** The primary member's. */
  primary: Float32Array;
}

/** Stage 4: each member's embeddings normalised by its `embeddingNorm` (embedding-norm.ts). */
export function embedMembers(run: RunPlan, weighed: Weighed, n: number): Embedded {
  const members = weighed.runs.map((r) => ({ embeddings: normaliseEmbeddings(r.w.embeddings, n, r.w.d, r.member.embeddingNorm), d: r.w.d }));
  return { n, d: weighed.runs[run.primary]!.w.d, members, primary: members[run.primary]!.embeddings };
}

/** The tree of the primary member: exact (with the condensed distances when computed), approximate, or none (n = 1). */
export type Tree =
  | { kind: 'exact'; Z: Float64Array; y?: Float32Array }
  | { kind: 'micro'; Z: Float64Array; micro: Awaited<ReturnType<typeof approximateWard>> }
  | { kind: 'single' };

/** The tree of one member's embeddings (and the condensed distances, when computed), as the memory plan says. */
async function treeOf(run: RunPlan, emb: Float32Array, n: number, d: number): Promise<{ Z: Float64Array; y?: Float32Array }> {
  const be = run.backend;
  const { onProgress } = run;
  if (run.memory.linkageFrom === 'vectors') {
    onProgress?.({ stage: 'clustering', done: 1, total: 3, message: 'ward linkage on the embeddings (condensed matrix over memoryLimit)' });
    return { Z: await be.wardFromVectorsAsync(emb, n, d) };
  }
  const y = await be.pdistAsync(emb, n, d, false);
  onProgress?.({ stage: 'clustering', done: 1, total: 3, message: `${run.options.linkage} linkage` });
  throwIfAborted(run.signal, 'clustering');
  return { Z: await be.linkageAsync(y, n, run.options.linkage), y };
}

/**
 * Stage 5: the primary member's tree: `pdist` + `linkage`, or Ward on the vectors (over the memory limit), or
 * approximate Ward on k-means micro-clusters (micro.ts) as the memory plan says.
 */
export async function buildTree(run: RunPlan, emb: Embedded): Promise<Tree> {
  const { n, d } = emb;
  const { onProgress } = run;
  onProgress?.({ stage: 'clustering', done: 0, total: 3, message: 'distances' });
  if (run.memory.approximate(n)) {
    const mOpt = run.options.resources.microClusters;
    onProgress?.({ stage: 'clustering', done: 0, total: 3, message: `micro-clusters (up to ${Math.min(mOpt, n)} of ${n} images)` });
    const aw = await approximateWard(emb.primary, n, d, mOpt, {
      backend: run.backend, signal: run.signal,
      onProgress: (pass, passes, moved) => onProgress?.({ stage: 'clustering', done: 0, total: 3, message: `micro-clusters: pass ${pass}/${passes}, ${moved} images moved` }),
    });
    onProgress?.({ stage: 'clustering', done: 1, total: 3, message: `size-weighted ward linkage of ${aw.m} micro-clusters` });
    return { kind: 'micro', Z: aw.Z, micro: aw };
  }
  if (n === 1) return { kind: 'single' };
  return { kind: 'exact', ...(await treeOf(run, emb.primary, n, d)) };
}

/**
 * Stage 6: K, as given or chosen from the tree by `autoK.criterion` (autok.ts; on the micro-cluster centroids
 * when Ward is approximated; the condensed matrix, when computed, reused by the silhouette criterion).
 * @throws {OptionError} `ERR_K_OUT_OF_RANGE` when k exceeds the micro-clusters of approximate Ward
 */
export async function resolveK(run: RunPlan, emb: Embedded, tree: Tree): Promise<{ k: number; kAuto?: AutoK }> {
  const o = run.options;
  const be = run.backend;
  const criterion = o.autoK.criterion;
  const kMax = o.autoK.kMax;
  if (tree.kind === 'micro') {
    const aw = tree.micro;
    if (o.k === 'auto') {
      const kAuto = await chooseKAsync({ embeddings: aw.centroids, n: aw.m, d: emb.d, Z: aw.Z }, { criterion, kMax, backend: be, linkage: o.linkage, maxDistanceBytes: 0 });
      return { k: kAuto.chosen, kAuto };
    }
    if (o.k > aw.m) {
      throw new OptionError('k', `k: ${o.k} clusters asked for, but approximate ward has only ${aw.m} micro-clusters; use a larger microClusters or clustering: 'exact'`, 'ERR_K_OUT_OF_RANGE');
    }
    return { k: o.k };
  }
  if (o.k !== 'auto') return { k: o.k };
  if (tree.kind === 'single') return { k: 1, kAuto: { criterion, chosen: 1, kMax: 1, candidates: [] } };
  const kAuto = await chooseKAsync({ embeddings: emb.primary, n: emb.n, d: emb.d, Z: tree.Z, distances: tree.y }, {
    criterion, kMax, backend: be, linkage: o.linkage, ...(run.memory.linkageFrom === 'vectors' ? { maxDistanceBytes: 0 } : {}),
  });
  return { k: kAuto.chosen, kAuto };
}

/** Whether the members' clusterings are combined: several members, the n² co-association matrix within the plan. */
const isConsensus = (run: RunPlan, n: number): boolean =>
  run.method.members.length > 1 && run.memory.linkageFrom === 'condensed' && n > 1 && !run.memory.approximate(n);

/** The clusters of a run: labels, Z and K, and what the clustering approximated. */
interface Clusters {
  labels: Int32Array;
  Z: Float64Array;
  k: number;
  kAuto?: AutoK;
  memberLabels?: Int32Array[];
  microClusters?: { m: number; assign: Int32Array; sizes: Uint32Array };
  approximations: string[];
}

/**
 * Stage 7: the tree cut into K clusters; for a consensus, every member's tree cut at K and the K's within
 * `kSpread`, combined by average linkage on their co-association (consensus.ts).
 */
export async function cutClusters(run: RunPlan, emb: Embedded, tree: Tree, chosen: { k: number; kAuto?: AutoK }): Promise<Clusters> {
  const { onProgress } = run;
  const be = run.backend;
  const { n } = emb;
  const { k, kAuto } = chosen;
  const { members } = run.method;
  const consensus = isConsensus(run, n);
  const approximations: string[] = [];
  if (members.length > 1 && !consensus && n > 1) {
    approximations.push(`consensus of ${members.length} configurations skipped (its n² co-association matrix exceeds memoryLimit, or Ward is approximated): ${describeMethod(members[run.primary]!)} alone`);
  }
  const done = (c: Omit<Clusters, 'approximations' | 'k' | 'kAuto'>): Clusters => {
    onProgress?.({ stage: 'clustering', done: 3, total: 3 });
    return { ...c, k, ...(kAuto ? { kAuto } : {}), approximations };
  };
  if (tree.kind === 'micro') {
    const aw = tree.micro;
    onProgress?.({ stage: 'clustering', done: 2, total: 3, message: kAuto ? `cut into ${k} (automatic K on the micro-clusters, ${kAuto.criterion})` : `cut into ${k}` });
    const labels = labelsOf(be.cutK(aw.Z, aw.m, k), aw.assign);
    const message = `ward approximated: exact size-weighted ward on ${aw.m} deterministic k-means micro-clusters of the ${n} images ` +
      `(${aw.passes} assignment passes${aw.moved ? `, ${aw.moved} images still moving` : ', converged'}), each image labelled by its micro-cluster` +
      `${kAuto ? '; automatic K scored on the micro-cluster centroids' : ''}; Z is over the micro-clusters (pass clustering: 'exact' for exact ward)`;
    onProgress?.({ stage: 'clustering', done: 2, total: 3, message });
    approximations.push(message);
    return done({ labels, Z: aw.Z, microClusters: { m: aw.m, assign: aw.assign, sizes: aw.sizes } });
  }
  if (tree.kind === 'single') return done({ labels: new Int32Array(1), Z: new Float64Array(0) });
  onProgress?.({ stage: 'clustering', done: 2, total: 3, message: kAuto ? `cut into ${k} (automatic K, ${kAuto.criterion})` : `cut into ${k}` });
  if (!consensus) return done({ labels: be.cutK(tree.Z, n, k), Z: tree.Z });
  const partitions: Int32Array[] = [];
  const memberLabels: Int32Array[] = [];
  const spread = run.method.kSpread;
  for (const [i, m] of emb.members.entries()) {
    const Zi = i === run.primary ? tree.Z : (await treeOf(run, m.embeddings, n, m.d)).Z;
    memberLabels.push(be.cutK(Zi, n, k));
    for (let kk = Math.max(1, k - spread); kk <= Math.min(n, k + spread); kk++) partitions.push(kk === k ? memberLabels[i]! : be.cutK(Zi, n, kk));
  }
  onProgress?.({ stage: 'clustering', done: 2, total: 3, message: `consensus of ${members.length} clusterings` });
  return done({ ...(await consensusClusters(partitions, n, k, be)), memberLabels });
}

/** The sentence saying that uniform / max pooling used the projected patches (the unprojected ones over their cap), if so. */
function pooledApproximation(run: RunPlan, bank: FeatureBank): string[] {
  if (run.memory.pooled === false || !bank.projectedFrom || bank.pooled) return [];
  const pooling = run.method.members.filter((m) => m.weighting === 'uniform' || m.weighting === 'max').map((m) => m.weighting).join(' and ');
  return [`${pooling} pooling of the ${bank.d}-dim projected patches: the unprojected pooled vectors (${bank.n} × ${2 * bank.projectedFrom + bank.m} floats) `
    + `exceed a quarter of the memory limit (${gib(run.memory.memoryLimit)})`];
}
