/**
 * @file The patch post-processing spec of a batch (plain data: posted to the inference worker). Kept apart from
 * `batch-features.ts` so that the public type declarations do not pull in the ONNX protobuf types.
 * @module pipeline/patch-spec
 */
import type { LayerNorm } from './aggregate.js';

/** How to turn the two maps of a batch into patch rows (plain data: it is posted to the worker). */
export interface PatchSpec {
  /** Output names of the finer (stride 8) and coarser (stride 16) maps. */
  fine: string;
  coarse: string;
  layerNorm: LayerNorm;
  /**
   * The projection `x ↦ x·P` (`P` is `dRaw × dOut`, row-major; see `pca.ts`), or absent for the raw rows.
   * `key` identifies the matrix (memoised onnxruntime sessions).
   */
  projection?: { matrix: Float32Array; dOut: number; key: string };
  /**
   * With a projection: also return each image's unprojected pooled features (`poolBag`: mean, max, arg-max share),
   * `2·dRaw + m` values per image, after the `n × m × d` rows.
   */
  pooled?: boolean;
  /**
   * Name of a model output that already holds the aggregated, per-layer normalised patch rows (`[n, m, dRaw]`, see
   * {@link appendAggregation}): the JS aggregation is skipped and only this output is fetched.
   */
  patches?: string;
}
