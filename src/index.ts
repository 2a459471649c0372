/**
 * @file Public entry point of anomaly-clustering: the task API (cluster a folder of images, and what that needs),
 * the validated kernels and the errors. Re-exports only. The stages of the pipeline and their knobs are the
 * `anomaly-clustering/stages` subpath (src/stages.ts).
 * @module anomaly-clustering
 */
// Kernels (validated; SciPy layouts) and the error contract.
export * from './kernels.js';
export { KernelError, OptionError, InputError, ERROR_CODES, type ErrorCode, type InputProblem } from './errors.js';
export type { BackendName, Isa, LinkageMethod, GroupedMode, KernelBackend } from '../bindings/backend.js';
export { getBackend, availableBackends, loadErrors } from '../bindings/select.js';
// The task: images → clusters, with its options (groups, defaults, effective options) and result.
export { clusterImages, listImages } from './pipeline/run.js';
export type { ClusterResult } from './pipeline/run.js';
export { CLUSTER_DEFAULTS, IMAGE_EXTENSIONS, serialiseOptions } from './pipeline/options.js';
export type { ClusterOptions, EffectiveOptions, FeaturesGroup, WeightsGroup, ResourcesGroup } from './pipeline/options.js';
export { WEIGHTINGS, type Tau, type TauSpread, type Weighting } from './pipeline/weighting.js';
export { PRESET_NAMES, type PresetName, type ResolvedMethod, type MethodConfig } from './pipeline/presets.js';
export { AUTO_K_CRITERIA, type AutoK, type AutoKCriterion, type KCandidate } from './pipeline/autok.js';
export type { EmbeddingNorm } from './pipeline/embedding-norm.js';
export type { ClusteringMode } from './pipeline/micro.js';
export type { BankPrecision } from './pipeline/approx.js';
// Images and features, a model, a sharded extraction.
export type { ImageInput, Stage, Progress, BackboneSpec, FeatureOptions, FeatureBank, BankPlan, BagStore } from './pipeline/types.js';
export { extractFeatures } from './pipeline/features.js';
export type { Fit } from './pipeline/image.js';
export { EMBEDDED_BACKBONES, prepareModel } from './models/index.js';
export { extractShard, MissingFeaturesError } from './pipeline/shard.js';
export type { Shard, ShardOptions, ShardResult } from './pipeline/shard.js';
// Scoring a clustering against known classes, the HTML report, a synthetic sample.
export { evaluate } from './pipeline/metrics.js';
export type { Metrics } from './pipeline/metrics.js';
export { renderReport, writeReport } from './report/index.js';
export { generateSample } from './sample/index.js';
