/**
 * @file `anomaly-clustering/stages`: the stages of `clusterImages` (src/pipeline/run.ts) and the knobs of each,
 * for callers that run a stage on its own (e.g. weights of a bank they extracted, K of a tree they built) or
 * study one (benches/). Re-exports only; less stable than the main entry point.
 * @module anomaly-clustering/stages
 */
// The run as stages, and its plan.
export { planRun, extractBanks, weighMembers, embedMembers, buildTree, resolveK, cutClusters, displayName, listImageInputs } from './pipeline/run.js';
export type { RunPlan, Banks, Weighed, Embedded, Tree } from './pipeline/run.js';
export { resolveClusterOptions } from './pipeline/options.js';
export { planMemory, planReferences, planClustering, checkBankPlan, condensedBytes, defaultMemoryLimit, CONDENSED_BYTES_PER_PAIR, BANK_MEMORY_SHARE, POOLED_MEMORY_SHARE } from './pipeline/memory.js';
export type { MemoryPlan, ClusteringPlan } from './pipeline/memory.js';
// Features.
export { IMAGENET_MEAN, IMAGENET_STD, DEFAULT_LAYER_NORM, DEFAULT_PROJECT_DIM } from './pipeline/features.js';
export { loadImage, decodeImage, DEFAULT_FIT, FITS, DEFAULT_MAX_IMAGE_BYTES } from './pipeline/image.js';
export { DEFAULT_BACKBONE } from './models/index.js';
export { MemoryBags, DiskBags, StreamedBags, bagStore, withBags } from './pipeline/bank-store.js';
export type { BankStore, MapChunksOptions } from './pipeline/types.js';
export { fitWhitening, whitenBank, checkWhiten, DEFAULT_WHITEN, WHITEN_SAMPLE } from './pipeline/whiten.js';
export type { Whitening } from './pipeline/whiten.js';
export { readCachedBank, parseShard, shardRange, shardOf, featureRequestKey, SHARD_MANIFEST_FORMAT } from './pipeline/shard.js';
export type { ShardManifest, CachedBankOptions, FeatureRequest } from './pipeline/shard.js';
// Weights: whiten → score → weigh, and their approximations.
export {
  computeWeights, whitenPatches, scorePatches, weighPatches, poolPatches, patchScores, referenceImages, checkTau, DEFAULT_TAU,
  DEFAULT_CHUNK_WORK, DEFAULT_SELF_JOIN_WORK,
} from './pipeline/weighting.js';
export type { WeightingOptions, WeightingResult } from './pipeline/weighting.js';
export {
  f32ToF16, f16ToF32, kCenterGreedy, kCenterGreedyAsync, coresetSize, autoReferences, BANK_PRECISIONS, DEFAULT_CORESET_DIM, DEFAULT_AUTO_REFERENCES,
  DEFAULT_EXACT_WORK_LIMIT,
} from './pipeline/approx.js';
export type { KCenterOptions, KCenterResult, AutoReferences } from './pipeline/approx.js';
// Embeddings, clustering, K.
export { normaliseEmbeddings, checkEmbeddingNorm, EMBEDDING_NORMS, DEFAULT_EMBEDDING_NORM } from './pipeline/embedding-norm.js';
export { approximateWard, microClusters, labelsOf, CLUSTERING_MODES, DEFAULT_APPROX_ABOVE, DEFAULT_MICRO_CLUSTERS, DEFAULT_MICRO_ITERATIONS } from './pipeline/micro.js';
export type { ApproximateWard, MicroClusters, MicroClusterOptions } from './pipeline/micro.js';
export { consensusClusters } from './pipeline/consensus.js';
export { chooseK, chooseKAsync, checkAutoKOptions, AUTO_K_CRITERIA, DEFAULT_AUTO_K_CRITERION, DEFAULT_K_MAX } from './pipeline/autok.js';
export type { AutoKInput, AutoKOptions } from './pipeline/autok.js';
export { PRESETS, PAPER_METHOD, resolveMethod, describeMethod } from './pipeline/presets.js';
export { hungarian } from './pipeline/metrics.js';
// The kernel-facing helpers every stage shares.
export { resolveBackend, throwIfAborted, abortError } from './pipeline/context.js';
