/**
 * @file Sharded feature extraction (past one machine; docs/sharding.md): the CNN features, the part that outgrows one
 * machine, are computed by `n` independent workers, each on its **shard** of the sorted image list, into a shared
 * feature cache (`cache.ts`, the `.npy` entries are the exchange format); one **cluster** step then reads every
 * image's features from the cache and runs the rest of the pipeline without ever running the CNN.
 *
 * - Partition ({@link shardRange}): shard `i` of `n` (0-based, `0 ≤ i < n`) is the contiguous range
 *   `[⌊i·N/n⌋, ⌊(i+1)·N/n⌋)` of the N images of {@link listImages} (recursive, sorted by relative path): every
 *   worker computes the same partition from the folder alone, each image belongs to exactly one shard.
 * - {@link extractShard} extracts its range with the usual feature options into the cache (also the unprojected
 *   pooled vectors that uniform / max pooling use) and writes a **manifest**
 *   `<cache>/shards/<request>/<i>-of-<n>-<list hash>.json`: the cache folders of the entries, the bag shape, and the name,
 *   content hash and outcome of each of its images. `<request>` is {@link featureRequestKey}, a hash of every
 *   option that determines the features (backbone and its checksum, layers, preprocessing, layer norm,
 *   projection), computable without opening the model.
 * - {@link readCachedBank} (`clusterImages(…, {fromCache: true})`, CLI `cluster`) finds the manifests of the same
 *   request, hashes each image file and takes its entry (held in memory, or streamed from the entries like any
 *   large bank); an image without an entry fails with {@link MissingFeaturesError} naming it and its shard (or,
 *   if a shard recorded it as unreadable, is skipped with `skipBad` / fails with `ERR_IMAGE` as in one process).
 *
 * Same labels as one process: the entries are what one process computes for the same images (a per-image
 * computation: the seeded projection does not depend on the set), and the cluster step then runs the same code
 * on the same bank. A projection **fitted on the set** (e.g. PCA) breaks that premise: see `docs/sharding.md`
 * for how the basis then becomes an explicit artifact of the exchange.
 * @module pipeline/shard
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { KernelError } from '../errors.js';
import { bagStore, DiskBags } from './bank-store.js';
import { FeatureCache, sha256Hex, type FeatureConfig } from './cache.js';
import { DEFAULT_LAYER_NORM, extractFeatures, fitProjectionBasis, resolveBackbone } from './features.js';
import { cacheRoot } from '../models/index.js';
import type { ProjectionBasis } from './pca.js';
import { imageName, readImageBytes } from './image.js';
import type { FeatureBank, FeatureOptions, ImageInput, PooledFeatures } from './types.js';
import { throwIfAborted } from './context.js';

/** Manifest format tag. */
export const SHARD_MANIFEST_FORMAT = 'anomaly-clustering/shard@1';

/** Shard `index` of `count` (0-based). */
export interface Shard {
  index: number;
  count: number;
}

/**
 * Parses `"i/n"` (0 ≤ i < n, integers; e.g. `JOB_COMPLETION_INDEX/n`).
 * @throws {RangeError} for anything else
 */
export function parseShard(s: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(s);
  const shard = m ? { index: Number(m[1]), count: Number(m[2]) } : undefined;
  if (!shard) throw new RangeError(`shard: expected i/n with integers 0 ≤ i < n (e.g. 0/4), got ${JSON.stringify(s)}`);
  checkShard(shard);
  return shard;
}

/** @throws {RangeError} unless `index` and `count` are integers with 0 ≤ index < count. */
export function checkShard(s: Shard): void {
  if (s == null || typeof s !== 'object' || !Number.isSafeInteger(s.count) || s.count < 1 || !Number.isSafeInteger(s.index) || s.index < 0 || s.index >= s.count) {
    throw new RangeError(`shard: expected {index, count} with integers 0 ≤ index < count, got ${JSON.stringify(s)}`);
  }
}

/** The images `[start, end)` of shard `s` among `total`: contiguous, sizes differ by at most one, all covered once. */
export function shardRange(total: number, s: Shard): [number, number] {
  checkShard(s);
  return [Math.floor((s.index * total) / s.count), Math.floor(((s.index + 1) * total) / s.count)];
}

/** The shard (index) of image `i` among `total` split into `count` ({@link shardRange}'s inverse). */
export function shardOf(i: number, total: number, count: number): number {
  let s = Math.min(count - 1, Math.floor((i * count) / total));
  while (s > 0 && shardRange(total, { index: s, count })[0] > i) s--;
  while (shardRange(total, { index: s, count })[1] <= i) s++;
  return s;
}

/** The feature options that determine the features (the rest only change speed). */
export type FeatureRequest = Pick<FeatureOptions, 'backbone' | 'layerNorm'>;

/**
 * A 16-hex-digit key of everything that determines the features: the resolved backbone (embedded id or model
 * file name, the model's SHA-256, layers, input size, resize, fit, mean, std), the layer norm and the projection.
 * Computed without running the model (a custom model file is hashed). Workers and the cluster step must agree on it.
 */
export async function featureRequestKey(o: FeatureRequest, basis: ProjectionBasis | undefined): Promise<string> {
  const bb = await resolveBackbone(o.backbone);
  const sha = bb.modelSha256 || sha256Hex(readFileSync(bb.modelPath));
  const id = bb.id === bb.modelPath ? path.basename(bb.modelPath) : bb.id;
  const request = {
    format: SHARD_MANIFEST_FORMAT,
    backbone: { id, sha256: sha, layers: bb.layers, inputSize: bb.inputSize, resize: bb.resize, fit: bb.fit, mean: bb.mean, std: bb.std },
    layerNorm: o.layerNorm ?? DEFAULT_LAYER_NORM,
    // The projection: the basis fitted on the whole list (pca.ts), by its key (the hash of its bytes).
    projection: basis ? { kind: 'pca', dim: basis.dOut, basis: basis.key } : false,
  };
  return sha256Hex(JSON.stringify(request)).slice(0, 16);
}

/** One shard's manifest (`<cache>/shards/<request>/<i>-of-<n>-<hash of the whole image list>.json`). */
export interface ShardManifest {
  format: typeof SHARD_MANIFEST_FORMAT;
  request: string;
  shard: Shard;
  /** Images in the whole (unsharded) list. */
  total: number;
  /** Folder of the bag entries, relative to the cache root (`<configKey>`). */
  bags: string;
  /** Folder of the unprojected pooled entries (uniform / max pooling), relative to the cache root, if any. */
  pooled: string | null;
  gridH: number;
  gridW: number;
  d: number;
  /** The unprojected dimension when the bags are projected. */
  projectedFrom: number | null;
  /** This shard's images: name (as listed) and content hash; `error` when it was unreadable (skipped). */
  images: { name: string; sha256?: string; error?: string }[];
}

/** Options of {@link extractShard}: the feature options (a cache is required) and the shard. */
export interface ShardOptions extends Omit<FeatureOptions, 'streamAbove' | 'onPlan' | 'pooled'> {
  shard: Shard;
}

/** What {@link extractShard} did. */
export interface ShardResult {
  shard: Shard;
  /** Images in the whole list, and this shard's range of it. */
  total: number;
  range: [number, number];
  /** Images extracted (or already cached), and those skipped as unreadable (`skipBad`). */
  extracted: number;
  skipped: { file: string; error: string }[];
  /** The manifest written. */
  manifest: string;
  timings: FeatureBank['timings'];
}

/**
 * Extracts shard `options.shard` of the images (see the module doc) into the feature cache and writes its
 * manifest. The bags are streamed to the cache as they are computed (nothing is held for the whole shard).
 * @param input the folder (listed like `clusterImages` does) or the full, ordered list of every shard's images
 * @throws {RangeError} bad shard; {@link KernelError} `ERR_INVALID_ARGUMENT` without a cache, `ERR_IO` if the
 *   cache cannot be written; as `extractFeatures` otherwise
 */
export async function extractShard(inputs: ImageInput[], options: ShardOptions): Promise<ShardResult> {
  checkShard(options.shard);
  const { shard, ...featureOptions } = options;
  const cacheDir = options.cacheDir ?? cacheRoot();
  if (cacheDir === false) throw new KernelError('ERR_INVALID_ARGUMENT', 'shard: the feature cache is the exchange format of the shards: a cache folder is required (not cacheDir: false)');
  const total = inputs.length;
  const [start, end] = shardRange(total, shard);
  // Every shard fits (or reads from the shared cache) the same basis: the one of the whole list, as one process would.
  const basis = featureOptions.projection ?? await fitProjectionBasis(inputs, { ...featureOptions, cacheDir });
  const request = await featureRequestKey(options, basis);
  const dir = path.join(cacheDir, 'shards', request);
  // The list's hash in the name: shards of different folders (e.g. the normal images) sharing a cache never collide.
  const file = path.join(dir, `${shard.index}-of-${shard.count}-${sha256Hex(inputs.map(imageName).join('\n')).slice(0, 8)}.json`);
  const mine = inputs.slice(start, end);
  let bank: FeatureBank | undefined;
  if (mine.length > 0) {
    // streamAbove 0: every bag goes to its cache entry as soon as it is computed; pooled: also the unprojected pooled
    // vectors, so that the cluster step can pool uniform / max like one process does.
    bank = await extractFeatures(mine, { ...featureOptions, cacheDir, streamAbove: 0, pooled: true, ...(basis ? { projection: basis } : {}) });
    bagStore(bank).close();
  }
  const cache = bank?.cache;
  // Cache writes are best-effort in extractFeatures: here every entry must be there.
  const lost = bank && (!cache || cache.sha256.length !== bank.n ? 'all' : cache.sha256.find((h) => !existsSync(path.join(cache.dir, `${h}.npy`))));
  if (lost) throw new KernelError('ERR_IO', `shard ${shard.index}/${shard.count}: the feature cache under ${cacheDir} could not be written (is it writable, with space left?)`);
  const bad = new Map((bank?.skipped ?? []).map((s) => [s.file, s.error]));
  const sha = new Map((bank?.files ?? []).map((f, i) => [f, cache!.sha256[i]!]));
  const manifest: ShardManifest = {
    format: SHARD_MANIFEST_FORMAT, request, shard, total,
    bags: cache ? path.relative(cacheDir, cache.dir) : '', pooled: cache?.pooledDir ? path.relative(cacheDir, cache.pooledDir) : null,
    gridH: bank?.gridH ?? 0, gridW: bank?.gridW ?? 0, d: bank?.d ?? 0, projectedFrom: bank?.projectedFrom ?? null,
    images: mine.map((inp) => {
      const name = imageName(inp);
      const h = sha.get(name);
      return h ? { name, sha256: h } : { name, error: bad.get(name) ?? 'not processed' };
    }),
  };
  try {
    mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(manifest, null, 1)}\n`);
    renameSync(tmp, file);
  } catch (e) {
    throw new KernelError('ERR_IO', `shard ${shard.index}/${shard.count}: cannot write the manifest ${file}: ${(e as Error).message}`, { cause: e });
  }
  return {
    shard, total, range: [start, end], extracted: bank?.n ?? 0, skipped: bank?.skipped ?? [], manifest: file,
    timings: bank?.timings ?? {},
  };
}

/** Images whose features are not in the cache (the cluster step never computes them). Code `ERR_IO`. */
export class MissingFeaturesError extends KernelError {
  /** The images without an entry. */
  readonly missing: string[];
  constructor(message: string, missing: string[]) {
    super('ERR_IO', message);
    this.name = 'MissingFeaturesError';
    this.missing = missing;
  }
}

/** Reads every manifest of a request; an empty list if there is none. */
export function readManifests(cacheDir: string, request: string): ShardManifest[] {
  const dir = path.join(cacheDir, 'shards', request);
  if (!existsSync(dir)) return [];
  const out: ShardManifest[] = [];
  for (const f of readdirSync(dir).filter((f) => /^\d+-of-\d+-[0-9a-f]{8}\.json$/.test(f)).sort()) {
    try {
      const m = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as ShardManifest;
      if (m.format === SHARD_MANIFEST_FORMAT && m.request === request) out.push(m);
    } catch {
      /* a torn or foreign file: ignored (its images are then reported missing) */
    }
  }
  return out;
}

/** Options of {@link readCachedBank}: the feature options the shards used, and the bank options of `extractFeatures`. */
export type CachedBankOptions = Pick<FeatureOptions, 'backbone' | 'layerNorm' | 'projectDim' | 'projection' | 'cacheDir' | 'skipBad' | 'streamAbove' | 'onPlan' | 'pooled' | 'onProgress' | 'signal'>;

/**
 * The feature bank of `inputs` from the shards' cache entries, without running the CNN (the other half of
 * {@link extractShard}; `clusterImages` with `fromCache`). Same result as `extractFeatures` on the same images.
 * @throws {MissingFeaturesError} (`ERR_IO`) when no shard manifest matches the feature options or an image has
 *   no entry (the message names up to 10 and their shards); {@link KernelError} `ERR_IMAGE` for an image a shard
 *   found unreadable (unless `skipBad`), `ERR_ABORTED`
 */
export async function readCachedBank(inputs: ImageInput[], options: CachedBankOptions = {}): Promise<FeatureBank> {
  const { cacheDir = cacheRoot(), skipBad = false, streamAbove = Infinity, onPlan, pooled = false, onProgress, signal } = options;
  if (cacheDir === false) throw new KernelError('ERR_INVALID_ARGUMENT', 'fromCache: the features are read from the feature cache: a cache folder is required (not cacheDir: false)');
  if (!Array.isArray(inputs) || inputs.length === 0) throw new KernelError('ERR_EMPTY', 'inputs: expected at least one image');
  const t0 = performance.now();
  // the basis of the whole list, from the cache (the shards wrote it); never the CNN
  let basis: ProjectionBasis | undefined;
  try {
    basis = options.projection ?? await fitProjectionBasis(inputs, { backbone: options.backbone, layerNorm: options.layerNorm, projectDim: options.projectDim, cacheDir, cachedOnly: true });
  } catch (e) {
    if (!(e instanceof KernelError) || e.code !== 'ERR_IO') throw e;
    throw new MissingFeaturesError(`fromCache: no shard manifest (nor the projection basis the shards write) under ${cacheDir} for these images and feature options: run ` +
      "'anomaly-clustering features <folder> --shard i/n' (or extractShard) with the same cache and feature options first", inputs.map(imageName));
  }
  const request = await featureRequestKey(options, basis);
  const manifests = readManifests(cacheDir, request);
  if (manifests.length === 0) {
    throw new MissingFeaturesError(
      `fromCache: no shard manifest under ${path.join(cacheDir, 'shards', request)} for these feature options: run ` +
        "'anomaly-clustering features <folder> --shard i/n' (or extractShard) with the same cache and feature options first",
      inputs.map(imageName),
    );
  }
  const first = manifests.find((m) => m.bags) ?? manifests[0]!;
  const { gridH, gridW, d } = first;
  const m = gridH * gridW;
  const bags = new FolderCache(path.join(cacheDir, first.bags));
  const pooledDir = first.pooled ? path.join(cacheDir, first.pooled) : undefined;
  const pooledCache = pooledDir ? new FolderCache(pooledDir) : undefined;
  const known = new Map<string, { shard: Shard; error?: string }>();
  for (const mf of manifests) for (const im of mf.images) known.set(im.name, { shard: mf.shard, ...(im.error ? { error: im.error } : {}) });
  const counts = [...new Set(manifests.map((mf) => mf.shard.count))];

  const n = inputs.length;
  const bytes = n * m * d * 4;
  const streamed = bytes > streamAbove;
  onPlan?.({ n, m, d, gridH, gridW, bytes, streamed });
  const store = streamed ? new DiskBags(n, m, d) : undefined;
  const data = streamed ? new Float32Array(0) : new Float32Array(n * m * d);
  const per = first.projectedFrom ? 2 * first.projectedFrom + m : 0;
  const cap = pooled === true ? Infinity : pooled === false ? -1 : pooled;
  const pool: PooledFeatures | undefined = pooledDir && per && n * per * 4 <= cap
    ? { d: first.projectedFrom!, mean: new Float32Array(n * first.projectedFrom!), max: new Float32Array(n * first.projectedFrom!), maxShare: new Float32Array(n * m) }
    : undefined;
  const missing: string[] = [];
  const skipped: { file: string; error: string }[] = [];
  const kept: number[] = [];
  const hashes: string[] = [];
  for (let i = 0; i < n; i++) {
    throwIfAborted(signal, 'fromCache');
    const name = imageName(inputs[i]!);
    const info = known.get(name);
    // An image a shard found unreadable: skipped (skipBad) or an error, as in one process (an entry wins: the
    // manifest may predate a fix of the file).
    const unreadable = (error: string) => {
      if (!skipBad) throw new KernelError('ERR_IMAGE', `${name}: unreadable${info?.error ? ` in shard ${info.shard.index}/${info.shard.count}` : ''} (${error}); pass skipBad to leave it out`);
      skipped.push({ file: name, error });
    };
    let sha: string;
    try {
      sha = sha256Hex(await readImageBytes(inputs[i]!));
    } catch (e) {
      if (!(e instanceof KernelError) || e.code !== 'ERR_IMAGE') throw e;
      unreadable(info?.error ?? e.message);
      continue;
    }
    const w = kept.length;
    let ok = false;
    if (store) {
      const loc = bags.locate(sha, gridH, gridW, d);
      if (loc) store.addLocation(w, loc);
      ok = Boolean(loc);
    } else {
      const bag = bags.get(sha, gridH, gridW, d);
      if (bag) data.set(bag, w * m * d);
      ok = Boolean(bag);
    }
    if (ok && pool) {
      const r = pooledCache!.get(sha, 1, 1, per);
      if (r) {
        pool.mean.set(r.subarray(0, pool.d), w * pool.d);
        pool.max.set(r.subarray(pool.d, 2 * pool.d), w * pool.d);
        pool.maxShare.set(r.subarray(2 * pool.d), w * m);
      } else ok = false;
    }
    if (!ok) {
      if (info?.error) unreadable(info.error);
      else missing.push(name);
      continue;
    }
    kept.push(i);
    hashes.push(sha);
    onProgress?.({ stage: 'decode', done: i + 1, total: n, message: 'reading cached features' });
  }
  if (missing.length > 0) {
    const where = (f: string) => {
      const info = known.get(f);
      if (info) return `shard ${info.shard.index}/${info.shard.count} lists it: the image changed since, or its entry was removed`;
      if (counts.length === 1) return `shard ${shardOf(inputs.findIndex((x) => imageName(x) === f), n, counts[0]!)}/${counts[0]} by the partition of these ${n} images: was it run?`;
      return 'in no shard manifest';
    };
    throw new MissingFeaturesError(
      `fromCache: ${missing.length} of ${n} images have no cached features under ${bags.dir} (the cluster step never runs the CNN): ` +
        `${missing.slice(0, 10).map((f) => `${f} (${where(f)})`).join('; ')}${missing.length > 10 ? `; … and ${missing.length - 10} more` : ''}`,
      missing,
    );
  }
  const w = kept.length;
  store?.compact(kept.map((_, j) => j));
  const files = kept.map((i) => imageName(inputs[i]!));
  const keepPool = pool && w < n
    ? { d: pool.d, mean: pool.mean.slice(0, w * pool.d), max: pool.max.slice(0, w * pool.d), maxShare: pool.maxShare.slice(0, w * m) }
    : pool;
  return {
    n: w, m, d, gridH, gridW, data: store ? data : w === n ? data : data.slice(0, w * m * d), ...(store ? { store } : {}),
    ...(first.projectedFrom ? { projectedFrom: first.projectedFrom } : {}), ...(basis ? { projection: basis } : {}), ...(keepPool ? { pooled: keepPool } : {}),
    files, skipped, timings: { decode: performance.now() - t0, features: 0 },
    cache: { dir: bags.dir, ...(pooledDir ? { pooledDir } : {}), sha256: hashes },
  };
}

/** A {@link FeatureCache} reader of an existing entry folder (named by a manifest) rather than of a configuration. */
class FolderCache extends FeatureCache {
  override readonly dir: string;
  constructor(dir: string) {
    super(path.dirname(dir), {} as FeatureConfig, undefined, path.basename(dir));
    this.dir = dir;
  }
}
