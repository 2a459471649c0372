/**
 * @file Public entry point of anomaly-clustering: re-exports only.
 * @module anomaly-clustering
 */
// Kernels (validated; SciPy layouts) and the error contract.
export * from './kernels.js';
export * from './errors.js';
export type { BackendName, Isa, LinkageMethod, GroupedMode, KernelBackend } from '../bindings/backend.js';
export { getBackend, availableBackends, loadErrors } from '../bindings/select.js';
// Pipeline: images → patch bags → weights → embeddings → clusters.
export type { ImageInput, Stage, Progress, BackboneSpec, FeatureOptions, FeatureBank, BankPlan } from './pipeline/types.js';
export type { BagStore } from './pipeline/bank-store.js';
export { extractFeatures, IMAGENET_MEAN, IMAGENET_STD } from './pipeline/features.js';
export { loadImage, decodeImage, DEFAULT_FIT, FITS, type Fit } from './pipeline/image.js';
export { DEFAULT_BACKBONE, EMBEDDED_BACKBONES, prepareModel } from './models/index.js';
export { computeWeights, patchScores, WEIGHTINGS, DEFAULT_TAU } from './pipeline/weighting.js';
export type { Tau, TauSpread, Weighting } from './pipeline/weighting.js';
export {
  f32ToF16, f16ToF32, kCenterGreedy, kCenterGreedyAsync, coresetSize, autoReferences, BANK_PRECISIONS, DEFAULT_CORESET_DIM, DEFAULT_AUTO_REFERENCES,
  DEFAULT_EXACT_WORK_LIMIT,
} from './pipeline/approx.js';
export type { BankPrecision, KCenterOptions, KCenterResult, AutoReferences } from './pipeline/approx.js';
export { clusterImages, listImages, InputError } from './pipeline/run.js';
export { approximateWard, microClusters, labelsOf, CLUSTERING_MODES, DEFAULT_APPROX_ABOVE, DEFAULT_MICRO_CLUSTERS, DEFAULT_MICRO_ITERATIONS } from './pipeline/micro.js';
export type { ApproximateWard, ClusteringMode, MicroClusters, MicroClusterOptions } from './pipeline/micro.js';
export { extractShard, readCachedBank, parseShard, shardRange, shardOf, featureRequestKey, MissingFeaturesError, SHARD_MANIFEST_FORMAT } from './pipeline/shard.js';
export type { Shard, ShardOptions, ShardResult, ShardManifest, CachedBankOptions, FeatureRequest } from './pipeline/shard.js';
export { normaliseEmbeddings, checkEmbeddingNorm, EMBEDDING_NORMS, DEFAULT_EMBEDDING_NORM } from './pipeline/embedding-norm.js';
export type { EmbeddingNorm } from './pipeline/embedding-norm.js';
export { fitWhitening, whitenBank, checkWhiten, DEFAULT_WHITEN, WHITEN_SAMPLE } from './pipeline/whiten.js';
export type { Whitening } from './pipeline/whiten.js';
export { checkBankPlan } from './pipeline/memory.js';
export type { ClusterOptions, ClusterResult } from './pipeline/run.js';
export { chooseK, chooseKAsync, checkAutoKOptions, AUTO_K_CRITERIA, DEFAULT_AUTO_K_CRITERION, DEFAULT_K_MAX } from './pipeline/autok.js';
export type { AutoK, AutoKCriterion, AutoKInput, AutoKOptions, KCandidate } from './pipeline/autok.js';
export { evaluate, hungarian } from './pipeline/metrics.js';
export type { Metrics } from './pipeline/metrics.js';
export { renderReport, writeReport } from './report/index.js';
export { generateSample } from './sample/index.js';
