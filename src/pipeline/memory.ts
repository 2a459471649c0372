/**
 * @file The memory plan of a run (docs/performance.md): decided once, up front, by {@link planMemory}: the
 * default budget, the choice between the condensed matrix and Ward on the vectors ({@link planClustering}),
 * approximate Ward, whether the feature bank is streamed from disk, the cap of the unprojected pooled features, the
 * feature-bank checks once its shape is known ({@link checkBankPlan}) and the reference images of the unsupervised
 * scores ({@link planReferences}). Pure arithmetic, checked before any work starts.
 *
 * What the condensed path holds at its peak, per pair of images (n(n−1)/2 pairs), measured from the code:
 * - `native`: the f32 `pdist` output in JS (4 B) + the addon's f32 working copy that the linkage updates in place
 *   (4 B) = **8 B**;
 * - `wasm`: the f32 output in JS (4 B) + its copy in linear memory (4 B) + the f64 matrix the kernel widens it to
 *   (8 B) = **16 B**, of which 12 B live in the 32-bit linear memory (at most 4 GiB: about n = 26 000);
 * - `js`: the f32 output (4 B) + an f64 copy (8 B) + the f64 working matrix of the NN-chain (8 B) = **20 B**.
 *
 * Ward on the vectors (`wardFromVectors`) holds `n·d` f64 centroids plus an f32 copy of the embeddings (12 B per
 * value) and a 32-float f32 head per row for its nearest-neighbour screen: e.g. 320 MB for n = 100 000, d = 256,
 * where the condensed path would need 40 GB (native).
 * @module pipeline/memory
 */
import { freemem } from 'node:os';
import type { BackendName, LinkageMethod } from '../../bindings/backend.js';
import { KernelError } from '../errors.js';
import type { BankPlan } from './types.js';
import type { Weighting } from './weighting.js';
import { autoReferences, DEFAULT_AUTO_REFERENCES } from './approx.js';

/** Peak bytes per pair of observations of `pdist` + `linkage` on each backend (see the module doc). */
export const CONDENSED_BYTES_PER_PAIR: Readonly<Record<BackendName, number>> = { native: 8, wasm: 16, js: 20 };
/** Of {@link CONDENSED_BYTES_PER_PAIR}, the bytes per pair inside the wasm module's 32-bit linear memory. */
const WASM_LINEAR_BYTES_PER_PAIR = 12;
/** Usable wasm32 linear memory (4 GiB less a margin for the module's own data). */
const WASM_MAX_LINEAR = 4 * 2 ** 30 - 64 * 2 ** 20;
/** Share of the currently available memory that the default budget takes. */
export const DEFAULT_MEMORY_SHARE = 0.75;

/**
 * The default `memoryLimit`: {@link DEFAULT_MEMORY_SHARE} (75 %) of `os.freemem()` at the time of the call (on
 * Linux: `MemAvailable`, i.e. free memory plus reclaimable caches), the rest being left for the feature bank,
 * the embeddings and V8.
 */
export function defaultMemoryLimit(): number {
  return Math.floor(DEFAULT_MEMORY_SHARE * freemem());
}

/** Peak bytes of `pdist` + `linkage` for `n` observations on `backend` (0 for n ≤ 1). */
export function condensedBytes(n: number, backend: BackendName): number {
  return n < 2 ? 0 : ((n * (n - 1)) / 2) * CONDENSED_BYTES_PER_PAIR[backend];
}

/** Checks a `memoryLimit` option: a number > 0 (bytes; `Infinity` = no limit) or undefined (the default). */
export function checkMemoryLimit(v: unknown): void {
  if (v !== undefined && (typeof v !== 'number' || Number.isNaN(v) || v <= 0)) {
    throw new RangeError(`memoryLimit: expected a number of bytes > 0 (Infinity = no limit), got ${String(v)}`);
  }
}

/** How the clustering stage runs: on the condensed matrix (`pdist` + `linkage`), or Ward on the vectors. */
export type ClusteringPlan = 'condensed' | 'vectors';

const fmt = (b: number): string => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(1)} GiB` : `${(b / 2 ** 20).toFixed(1)} MiB`);

/**
 * Chooses the clustering algorithm for `n` images before any work starts: the exact condensed path when it fits
 * in `memoryLimit` bytes (and, on wasm, in the 4 GiB linear memory), else Ward on the vectors for `'ward'`.
 * @throws {KernelError} `ERR_MEMORY_LIMIT` for another linkage whose condensed matrix does not fit
 */
export function planClustering(n: number, linkage: LinkageMethod, backend: BackendName, memoryLimit: number): ClusteringPlan {
  const need = condensedBytes(n, backend);
  const wasmTooBig = backend === 'wasm' && (n * (n - 1)) / 2 * WASM_LINEAR_BYTES_PER_PAIR > WASM_MAX_LINEAR;
  if (need <= memoryLimit && !wasmTooBig) return 'condensed';
  if (linkage === 'ward') return 'vectors';
  const why = wasmTooBig && need <= memoryLimit ? `more than the wasm backend's 4 GiB linear memory` : `more than memoryLimit = ${fmt(memoryLimit)}`;
  throw new KernelError(
    'ERR_MEMORY_LIMIT',
    `clustering: '${linkage}' linkage of ${n} images needs the n(n−1)/2 condensed distance matrix, about ${fmt(need)} on the ` +
      `${backend} backend, ${why}; use linkage 'ward' (computed from the embeddings in O(n·d) memory), fewer images, ` +
      `the native backend, or a larger memoryLimit`,
  );
}

/** Share of the memory limit a feature bank may take in memory; above it the bank is streamed from disk. */
export const BANK_MEMORY_SHARE = 0.5;

/** Bytes of feature bank held in memory under `memoryLimit` ({@link BANK_MEMORY_SHARE} of it). */
export function bankMemoryLimit(memoryLimit: number): number {
  return BANK_MEMORY_SHARE * memoryLimit;
}

/**
 * Share of the memory limit the unprojected pooled vectors of uniform / max pooling may take (`(2·D + M)·4` bytes
 * per image, `FeatureOptions.pooled`); above it those two poolings use the projected bags and say so.
 */
export const POOLED_MEMORY_SHARE = 0.25;

/** Bytes as GiB with 2 decimals (the memory-limit messages). */
export const gib = (b: number): string => `${(b / 2 ** 30).toFixed(2)} GiB`;

/**
 * The memory checks of `clusterImages` once the bank's shape is known, before any image is read.
 * @throws {KernelError} `ERR_MEMORY_LIMIT`: exact unsupervised weights on a bank that must be streamed, or a
 *   semi-supervised normal bank over half the budget
 */
export function checkBankPlan(p: BankPlan, memoryLimit: number, weighting: Weighting, references: number | 'exact' | 'auto' | undefined, normals: number): void {
  if (p.streamed && weighting === 'unsupervised' && references === 'exact') {
    throw new KernelError(
      'ERR_MEMORY_LIMIT',
      `unsupervised weights: references 'exact' compares every image with every other and needs the whole feature bank in ` +
        `memory: ${p.n} images × ${p.m} patches × ${p.d} dims = ${gib(p.bytes)}, more than half the memory limit ` +
        `(${gib(memoryLimit)}); use references 'auto' or a number (R reference images per image), or a larger memory limit`,
    );
  }
  const normalBytes = normals * p.m * p.d * 4;
  if (weighting === 'semi-supervised' && normalBytes > bankMemoryLimit(memoryLimit)) {
    throw new KernelError(
      'ERR_MEMORY_LIMIT',
      `semi-supervised weights: the normal bank is searched whole and must fit in memory: ${normals} normal images × ${p.m} ` +
        `patches × ${p.d} dims = ${gib(normalBytes)}, more than half the memory limit (${gib(memoryLimit)}); use fewer normal ` +
        'images or a larger memory limit',
    );
  }
}

/** The memory plan of a run ({@link planMemory}). */
export interface MemoryPlan {
  /** The budget in bytes (`resources.memoryLimit`). */
  memoryLimit: number;
  /** Whether Ward is approximated by micro-clusters for `n` images (`resources.clustering`, `approxAbove`, `microClusters`). */
  approximate: (n: number) => boolean;
  /** How the tree is computed, decided for the number of images given (before any is read). */
  linkageFrom: ClusteringPlan;
  /** Bank bytes above which the feature bank is streamed from disk (`FeatureOptions.streamAbove`). */
  streamAbove: number;
  /** The byte cap of the unprojected pooled features (`FeatureOptions.pooled`), `false` when no member pools. */
  pooled: number | false;
  /** The checks once the bank's shape is known, before any image is read (`FeatureOptions.onPlan`). */
  onBank: (p: BankPlan) => void;
}

/**
 * The one memory plan of a run, before any work.
 * @param n images given
 * @param o the effective options that bear on memory, and the primary weighting (see `clusterImages`)
 * @throws {KernelError} `ERR_MEMORY_LIMIT` for a non-Ward linkage whose condensed matrix does not fit
 */
export function planMemory(n: number, o: {
  linkage: LinkageMethod; backend: BackendName; memoryLimit: number; clustering: 'auto' | 'exact' | 'approximate'; approxAbove: number;
  microClusters: number; weighting: Weighting; references: number | 'exact' | 'auto'; normals: number; pools: boolean;
}): MemoryPlan {
  const { linkage, clustering, approxAbove, microClusters, memoryLimit } = o;
  const approximate = (k: number) => linkage === 'ward' && k > 2 && (clustering === 'approximate' || (clustering === 'auto' && k > approxAbove && microClusters < k));
  // the n² matrix must fit, else Ward runs on the vectors and other linkages fail here
  const linkageFrom = approximate(n) ? 'vectors' : planClustering(n, linkage, o.backend, memoryLimit);
  return {
    memoryLimit, approximate, linkageFrom,
    // stream the bank if it is over half the budget, and refuse what a streamed or oversized bank cannot do
    streamAbove: bankMemoryLimit(memoryLimit),
    // uniform / max pooling need no nearest-patch search: from the unprojected features, within a quarter of the budget
    pooled: o.pools ? POOLED_MEMORY_SHARE * memoryLimit : false,
    onBank: (p) => checkBankPlan(p, memoryLimit, o.weighting, o.references, o.normals),
  };
}

/**
 * The reference images of the unsupervised scores (`weights.references`) for the bank as extracted: a number as
 * given, `'exact'` as all, `'auto'` by the work estimate ({@link autoReferences}), and at most
 * {@link DEFAULT_AUTO_REFERENCES} when the bank is streamed from disk.
 * @returns `references` for `WeightingOptions` (`undefined`: exact) and the sentence announcing an automatic switch ('' if none)
 */
export function planReferences(
  bank: { n: number; m: number; d: number; streamed: boolean }, references: number | 'exact' | 'auto', exactWorkLimit: number,
): { references: number | undefined; message: string } {
  if (references !== 'auto') return { references: typeof references === 'number' ? references : undefined, message: '' };
  const auto = autoReferences(bank.n, bank.m, bank.d, exactWorkLimit);
  if (!bank.streamed || auto.references !== undefined) return { references: auto.references, message: auto.message };
  const refs = Math.min(DEFAULT_AUTO_REFERENCES, bank.n - 1);
  return {
    references: refs,
    message: `feature bank streamed from disk (${gib(bank.n * bank.m * bank.d * 4)} > half the memory limit): unsupervised ` +
      `weights against ${refs} reference images per image${refs < bank.n - 1 ? ` instead of all ${bank.n - 1}` : ' (all of them)'}`,
  };
}
