/**
 * @file Types shared by the pipeline stages: images → patch bags (features.ts) → weights → embeddings →
 * clusters (run.ts). The contract between the feature extractor and the rest.
 * @module pipeline/types
 */

import type { ProjectionBasis } from './pca.js';

/**
 * An image given to the pipeline: a file path, encoded bytes with a name to report, or a name to report and a path
 * to read (a `Buffer` path reads a file whose name is not valid UTF-8; `listImages` folders yield these).
 */
export type ImageInput = string | { name: string; data: Uint8Array } | { name: string; path: string | Uint8Array };

/** Pipeline stage names used in progress events and timings. */
export type Stage = 'model' | 'decode' | 'features' | 'weights' | 'clustering' | 'report';

/** A progress event. */
export interface Progress {
  stage: Stage;
  /** Units done so far in this stage (images, or patches, or merges; bytes of the download for `'model'`). */
  done: number;
  /** Total units of this stage. */
  total: number;
  /** Optional human-readable detail. */
  message?: string;
}

/** Which CNN and which two layers give the patch embeddings. */
export interface BackboneSpec {
  /** `'default'` (the embedded ImageNet ResNet-50, `'keras:resnet50'`), another embedded id (`'nsfwjs:mobilenet_v2'`, …) or a path to an `.onnx` file. @default 'default' */
  model?: string;
  /** The two feature layers (stride 8 and stride 16), e.g. `['layer2','layer3']` for torchvision WideResNet-50. */
  layers?: [string, string];
  /** Network input size (side of the square input). @default 224 */
  inputSize?: number;
  /** Shorter side after resize, before the centre crop (`fit: 'crop'` only). @default 256 (for a 224 input; scaled by inputSize/224) */
  resize?: number;
  /**
   * How images are brought to the square input: `'stretch'` (the whole image, aspect ratio not kept), centre `'crop'`
   * (shorter side to `resize`, then `inputSize²` from the centre) or `'pad'` (see `Preprocess.fit` in image.ts).
   * Part of the feature-cache key. @default 'stretch' (`DEFAULT_FIT`)
   */
  fit?: 'crop' | 'stretch' | 'pad';
  /** Per-channel normalisation applied to [0,1] RGB: (x − mean) / std. @default the backbone's own */
  mean?: [number, number, number];
  /** See `mean`. */
  std?: [number, number, number];
  /**
   * `'int8'`: the opt-in fast mode — the backbone statically quantised to int8 (models/quantize.ts; weights per
   * channel, activations with the shipped calibration ranges), ≈2.5× faster inference on x86 with a measured
   * quality price (docs/performance.md). Only for a backbone and layers with a shipped calibration (the default).
   * Part of the feature-cache key. @default 'fp32'
   */
  precision?: 'fp32' | 'int8';
}

/** Options of {@link extractFeatures} (features.ts). */
export interface FeatureOptions {
  backbone?: BackboneSpec;
  /** Images per inference batch. @default 8 */
  batchSize?: number;
  /** onnxruntime intra-op threads (capped at 4 × cores, at most 256). @default number of cores */
  threads?: number;
  /**
   * Cache root for features (`<cacheDir>/features`) and embedded models (`<cacheDir>/models`), or `false` for no
   * feature cache (models then stay in the default root). @default `$ANOMALY_CLUSTERING_CACHE`, else
   * `$XDG_CACHE_HOME/anomaly-clustering`, else `~/.cache/anomaly-clustering` (never the working directory)
   */
  cacheDir?: string | false;
  /**
   * Per-layer normalisation before concatenation: `'l2'` scales each layer's part of every patch to unit norm
   * (the 576-channel stride-16 layer and the 192-channel stride-8 layer then weigh the same in distances);
   * `'none'` keeps the raw pooled activations. Part of the feature-cache key. @default 'l2'
   */
  layerNorm?: 'none' | 'l2';
  /**
   * Project the D-dim patch embeddings to this many dims: onto the top principal subspace of the patch covariance
   * of evenly spaced images of the set (`pca.ts`; deterministic, no seed); `false` (or ≥ D) keeps D. Cuts the
   * O(N²M²D) unsupervised scores 6× (1536 → 256) and the cache size. Part of the feature-cache key. @default 256
   */
  projectDim?: number | false;
  /**
   * Project with this basis instead of fitting one (e.g. the normal images of a semi-supervised run take the
   * clustered set's `FeatureBank.projection`, so both banks live in the same space). Overrides `projectDim`.
   */
  projection?: ProjectionBasis;
  /**
   * With a projection (`projectDim` < D): also keep each image's **unprojected** mean,
   * per-dimension max and arg-max shares (`FeatureBank.pooled`), so that uniform and max pooling are computed in
   * the full D dimensions (they need no nearest-patch search, so the projection would only add noise to them).
   * Costs `(2·D + M)·4` bytes per image (15 KB with the default backbone, held in memory also when the bags are
   * streamed), cached next to the bags.
   * A number is a byte cap: they are kept only when `n·(2·D + M)·4` is at most that (else `pooled` is absent).
   * `clusterImages` asks for it with `weighting: 'uniform' | 'max'`, capped at a quarter of `memoryLimit`.
   * @default false
   */
  pooled?: boolean | number;
  /** Skip unreadable images and report them in `skipped` instead of failing. @default false */
  skipBad?: boolean;
  /**
   * Image files larger than this many bytes are refused (`ERR_IMAGE`, or skipped with `skipBad`) before they are
   * read; only regular files are read at all (no devices, FIFOs or directories). `Infinity` = no cap.
   * @default 256 MiB (`DEFAULT_MAX_IMAGE_BYTES`)
   */
  maxImageBytes?: number;
  /**
   * Told about problems that do not stop the run, e.g. a bad feature-cache entry (checksum mismatch, NaN/Inf,
   * truncated) that was dropped and is recomputed. @default `process.emitWarning`
   */
  onWarning?: (message: string) => void;
  /**
   * Bank size in bytes (`n·m·d·4`) above which the bags are **streamed from disk** instead of held in memory:
   * the returned bank then has an empty `data` and a `store` that reads bags on demand (from the feature-cache
   * entries, or a spill file when the cache is off or not writable). `0` always streams. @default Infinity
   */
  streamAbove?: number;
  /**
   * Called once the bank's shape is known (the backbone is open) and before any image is read; throwing from it
   * stops the extraction with that error (`clusterImages` uses it for its memory checks).
   */
  onPlan?: (plan: BankPlan) => void;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** The shape of a feature bank about to be extracted (see `FeatureOptions.onPlan`). */
export interface BankPlan {
  n: number;
  m: number;
  d: number;
  gridH: number;
  gridW: number;
  /** `n·m·d·4`: the bank held in memory. */
  bytes: number;
  /** Whether the bank will be streamed from disk (`bytes > streamAbove`). */
  streamed: boolean;
}

/** Unprojected pooled features of each image of a bank (see `FeatureOptions.pooled`). */
export interface PooledFeatures {
  /** The unprojected dimension D. */
  d: number;
  /** Mean of each bag, `n × d`. */
  mean: Float32Array;
  /** Per-dimension maximum of each bag, `n × d`. */
  max: Float32Array;
  /** Share of the d dimensions in which each patch attains its bag's maximum (ties share), `n × m`. */
  maxShare: Float32Array;
}

/**
 * Read access to the bags of a {@link FeatureBank}: what a bank streamed from disk holds in `FeatureBank.store`
 * (`DiskBags`, bank-store.ts). The stages use the fuller {@link BankStore}.
 */
export interface BagStore {
  /** Bags per image: `m` patches × `d` dims. */
  readonly m: number;
  readonly d: number;
  /** Number of bags. */
  readonly n: number;
  /**
   * Copies bags `[i0, i1)` (image-major, `(i1−i0)·m·d` floats) into `out` (allocated if omitted) and returns it.
   * @throws {KernelError} `ERR_IO` if a file can no longer be read
   */
  read(i0: number, i1: number, out?: Float32Array): Float32Array;
  /** Releases the store (a disk store deletes its spill file, if any). The store cannot be read afterwards. Idempotent. */
  close(): void;
}

/** Options of {@link BankStore.mapChunks}. */
export interface MapChunksOptions {
  /** In memory: overwrite the bags instead of writing a new array (no effect on a streamed store). @default false */
  inPlace?: boolean;
  /** Streamed: the folder of the new spill file (default the OS temp dir; no effect in memory). */
  spillDir?: string;
  /** Called before each chunk is read, e.g. an abort check (what it throws ends the map). */
  beforeChunk?: () => void;
}

/**
 * The bags of a {@link FeatureBank} as the stages read and map them, whether held in memory or streamed from disk:
 * `MemoryBags` over `data` or a streamed store such as `DiskBags` (bank-store.ts). `bagStore(bank)` gives the
 * store of any bank, `withBags(bank, store)` a bank of a store's bags.
 */
export interface BankStore extends BagStore {
  /** Whether the bags are read on demand (from disk, chunk by chunk) rather than held in memory as one array. */
  readonly streamed: boolean;
  /**
   * Bags `[i0, i1)`: copied into `out` when it is given (and returned); else a view without copying (in memory) or
   * a new array (streamed).
   * @throws {KernelError} `ERR_IO` if a file can no longer be read
   */
  view(i0: number, i1: number, out?: Float32Array): Float32Array;
  /** All bags as the one array that holds them (no copy) when they are in memory; `undefined` when streamed. */
  resident(): Float32Array | undefined;
  /**
   * The most images a stage may take per chunk when it wants `want`: `want` in memory, at most about
   * `STREAM_CHUNK_BYTES` of bags when streamed; and a buffer of that many bags (at most `n`) to read them into with
   * {@link BankStore.view} (streamed), or none (in memory: views).
   */
  chunk(want: number): { images: number; buffer: Float32Array | undefined };
  /**
   * `f(bagsOfChunk, i0, i1)` over all bags: in memory in one call over the whole array, streamed in chunks of about
   * `STREAM_CHUNK_BYTES` read into one reused buffer (valid only during the call).
   * @throws {KernelError} `ERR_IO` from a streamed read
   */
  forChunks(f: (rows: Float32Array, i0: number, i1: number) => void): void;
  /**
   * A store of the same kind with the bags mapped chunk by chunk (`streamChunk` images at a time in both kinds):
   * `f(bagsOfChunk, i0, i1)` returns the mapped `(i1−i0)·m·d` floats. In memory a new array, or the store's own one
   * overwritten with `inPlace`; streamed a new spill file in `spillDir` (the caller closes the new store; the
   * original files are never written). `beforeChunk` runs before each chunk is read (e.g. an abort check).
   * @throws {KernelError} `ERR_IO` from streamed reads or spill writes; whatever `f` or `beforeChunk` throws
   */
  mapChunks(
    f: (rows: Float32Array, i0: number, i1: number) => Promise<Float32Array>,
    opts?: MapChunksOptions,
  ): Promise<BankStore>;
  /** The `data` and `store` fields of a bank of these bags: `{data, store: undefined}` in memory, `{data: empty, store}` streamed. */
  bankFields(): Pick<FeatureBank, 'data' | 'store'>;
  /**
   * Why these bags are not `n` bags of `m × d` (`'data: …'` or `'store: …'`, after the bank's name in an error), or
   * `undefined` when they are.
   */
  mismatch(n: number, m: number, d: number): string | undefined;
}

/** Patch embeddings of N images: one bag of M patches × D dims each, stored contiguously. */
export interface FeatureBank {
  /** Number of images (bags). */
  n: number;
  /** Patches per image (= gridH × gridW). */
  m: number;
  /** Dimension of a patch embedding. */
  d: number;
  gridH: number;
  gridW: number;
  /** Size `n*m*d`, image-major, then patch (row-major over the grid), then dimension; empty if `store` is set. */
  data: Float32Array;
  /**
   * Set when the bank is streamed from disk (`FeatureOptions.streamAbove`): reads bags on demand; `data` is then
   * empty. Call `store.close()` when done with the bank (it deletes the spill file, if any).
   */
  store?: BagStore;
  /** The backbone's dimension D when the bags were projected to `d` < D (`FeatureOptions.projectDim`), else absent. */
  projectedFrom?: number;
  /** The projection basis the bags were projected with (fitted on this set, or given), when projected. */
  projection?: ProjectionBasis;
  /** The unprojected pooled features, when asked for with `FeatureOptions.pooled` (and the bank is projected). */
  pooled?: PooledFeatures;
  /** The name of each image (path or given name), in bag order. */
  files: string[];
  /**
   * With the feature cache on: the folder of the bags' entries, that of the pooled entries (if kept), and each
   * image's content hash (its entry `<dir>/<sha256>.npy`), in bag order. Used by sharded extraction (shard.ts).
   */
  cache?: { dir: string; pooledDir?: string; sha256: string[] };
  /** Images skipped with `skipBad` and why. */
  skipped: { file: string; error: string }[];
  /** Time spent per stage in ms. */
  timings: Partial<Record<Stage, number>>;
}
