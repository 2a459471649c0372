/**
 * @file One inferred batch → its images' patch embeddings (aggregation + per-layer normalisation + projection),
 * shared by the inference worker (where it normally runs, off the main thread: about 0.1–0.4 s of JS per image)
 * and the main-thread fallback, so both give the same bytes.
 * @module pipeline/batch-features
 */
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { aggregatePatches, poolBag, postprocessPatches, type FeatureMap, type LayerNorm } from './aggregate.js';

const { onnx } = onnxProto;

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
}

/** A model output, as the inference engines return it. */
export interface NamedOutput {
  data: Float32Array;
  dims: number[];
}

function asMap(name: string, t: NamedOutput | undefined): FeatureMap {
  if (!t || t.dims.length !== 4) throw new Error(`output ${name}: expected a 4-D NCHW feature map, got ${t ? `[${t.dims.join(',')}]` : 'none'}`);
  return { data: t.data, n: t.dims[0]!, c: t.dims[1]!, h: t.dims[2]!, w: t.dims[3]! };
}

const projectors = new Map<string, Promise<ort.InferenceSession>>();
/**
 * An onnxruntime session computing `Y = X · P` (MLAS sgemm, one thread: the result of a row does not depend on
 * the batch or the machine's thread count) for a projection matrix `P` (`dRaw × dOut`), memoised. ≈50× faster
 * than the same product in JS, which cost ≈0.7 s per ResNet-50 image (90% of feature extraction).
 */
function projector(P: Float32Array, dRaw: number, dOut: number, key: string): Promise<ort.InferenceSession> {
  let s = projectors.get(key);
  if (!s) {
    const model = onnx.ModelProto.create({
      irVersion: 7,
      opsetImport: [{ domain: '', version: 13 }],
      producerName: 'anomaly-clustering',
      graph: {
        name: 'projection',
        node: [{ name: 'project', opType: 'MatMul', input: ['x', 'P'], output: ['y'] }],
        initializer: [{ name: 'P', dims: [dRaw, dOut], dataType: 1, rawData: new Uint8Array(P.buffer, P.byteOffset, P.byteLength) }],
        input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'R' }, { dimValue: dRaw }] } } } }],
        output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
      },
    } as never);
    s = ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), { intraOpNumThreads: 1, interOpNumThreads: 1, logSeverityLevel: 3 });
    projectors.set(key, s);
    // one basis per clustered set: keep the few most recent sessions only
    if (projectors.size > 4) projectors.delete(projectors.keys().next().value!);
  }
  return s;
}

/**
 * The patch rows of every image of a batch: `n × m × d` (m = fine h·w, d = projected or raw dimension):
 * aggregation and per-layer normalisation in JS, the projection (if any) as one sgemm in onnxruntime. With a
 * projection and `spec.pooled`, followed by `n × (2·dRaw + m)` unprojected pooled values (see `poolBag`).
 * @throws {Error} when an output is missing or not 4-D
 */
export async function batchFeatures(outputs: Record<string, NamedOutput>, spec: PatchSpec): Promise<Float32Array> {
  const fine = asMap(spec.fine, outputs[spec.fine]);
  const coarse = asMap(spec.coarse, outputs[spec.coarse]);
  const m = fine.h * fine.w;
  const dRaw = fine.c + coarse.c;
  const proj = spec.projection;
  if (proj && proj.matrix.length !== dRaw * proj.dOut) throw new Error(`projection: expected a ${dRaw}×${proj.dOut} matrix, got ${proj.matrix.length} values`);
  const fsz = fine.c * m, csz = coarse.c * coarse.h * coarse.w;
  const raw = new Float32Array(fine.n * m * dRaw);
  for (let k = 0; k < fine.n; k++) {
    const rows = raw.subarray(k * m * dRaw, (k + 1) * m * dRaw);
    aggregatePatches({ ...fine, n: 1, data: fine.data.subarray(k * fsz, (k + 1) * fsz) },
      { ...coarse, n: 1, data: coarse.data.subarray(k * csz, (k + 1) * csz) }, rows, 0);
    postprocessPatches(rows, m, fine.c, coarse.c, spec.layerNorm, undefined, rows, 0);
  }
  if (!proj) return raw;
  const session = await projector(proj.matrix, dRaw, proj.dOut, proj.key);
  const y = (await session.run({ x: new ort.Tensor('float32', raw, [fine.n * m, dRaw]) })).y!;
  const rows = fine.n * m * proj.dOut;
  if (!spec.pooled) return (y.data as Float32Array).slice();
  const per = 2 * dRaw + m;
  const out = new Float32Array(rows + fine.n * per);
  out.set((y.data as Float32Array).subarray(0, rows));
  for (let k = 0; k < fine.n; k++) poolBag(raw.subarray(k * m * dRaw, (k + 1) * m * dRaw), m, dRaw, out, rows + k * per);
  return out;
}
