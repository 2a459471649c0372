/**
 * @file One inferred batch → its images' patch embeddings (aggregation + per-layer normalisation + projection),
 * shared by the inference worker (where it normally runs, off the main thread: about 0.1–0.4 s of JS per image)
 * and the main-thread fallback, so both give the same bytes.
 * @module pipeline/batch-features
 */
import { aggregatePatches, gaussianProjection, postprocessPatches, type FeatureMap, type LayerNorm } from './aggregate.js';

/** How to turn the two maps of a batch into patch rows (plain data: it is posted to the worker). */
export interface PatchSpec {
  /** Output names of the finer (stride 8) and coarser (stride 16) maps. */
  fine: string;
  coarse: string;
  layerNorm: LayerNorm;
  /** Projection dimension (`false`, or ≥ the raw dimension: no projection). */
  projectDim: number | false;
  projectSeed: number;
}

/** A model output, as the inference engines return it. */
export interface NamedOutput {
  data: Float32Array;
  dims: number[];
}

const projections = new Map<string, Float32Array>();
/** The projection matrix of {@link PatchSpec} for raw dimension `dRaw` (memoised), or undefined. */
export function projectionFor(spec: PatchSpec, dRaw: number): { matrix: Float32Array; dOut: number } | undefined {
  const { projectDim, projectSeed } = spec;
  if (projectDim === false || projectDim >= dRaw) return undefined;
  const key = `${dRaw}/${projectDim}/${projectSeed}`;
  let matrix = projections.get(key);
  if (!matrix) {
    matrix = gaussianProjection(dRaw, projectDim, projectSeed);
    projections.set(key, matrix);
  }
  return { matrix, dOut: projectDim };
}

function asMap(name: string, t: NamedOutput | undefined): FeatureMap {
  if (!t || t.dims.length !== 4) throw new Error(`output ${name}: expected a 4-D NCHW feature map, got ${t ? `[${t.dims.join(',')}]` : 'none'}`);
  return { data: t.data, n: t.dims[0]!, c: t.dims[1]!, h: t.dims[2]!, w: t.dims[3]! };
}

/**
 * The patch rows of every image of a batch: `n × m × d` (m = fine h·w, d = projected or raw dimension).
 * @throws {Error} when an output is missing or not 4-D
 */
export function batchFeatures(outputs: Record<string, NamedOutput>, spec: PatchSpec): Float32Array {
  const fine = asMap(spec.fine, outputs[spec.fine]);
  const coarse = asMap(spec.coarse, outputs[spec.coarse]);
  const m = fine.h * fine.w;
  const dRaw = fine.c + coarse.c;
  const proj = projectionFor(spec, dRaw);
  const d = proj ? proj.dOut : dRaw;
  const fsz = fine.c * m, csz = coarse.c * coarse.h * coarse.w;
  const raw = new Float32Array(m * dRaw);
  const out = new Float32Array(fine.n * m * d);
  for (let k = 0; k < fine.n; k++) {
    aggregatePatches({ ...fine, n: 1, data: fine.data.subarray(k * fsz, (k + 1) * fsz) },
      { ...coarse, n: 1, data: coarse.data.subarray(k * csz, (k + 1) * csz) }, raw, 0);
    postprocessPatches(raw, m, fine.c, coarse.c, spec.layerNorm, proj, out, k * m * d);
  }
  return out;
}
