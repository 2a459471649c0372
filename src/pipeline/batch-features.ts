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

export type { PatchSpec } from './patch-spec.js';
import type { PatchSpec } from './patch-spec.js';

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
  let raw: Float32Array, n: number, m: number, dRaw: number;
  const done = spec.patches ? outputs[spec.patches] : undefined;
  if (done) {
    if (done.dims.length !== 3) throw new Error(`output ${spec.patches}: expected [n, m, d] patch rows, got [${done.dims.join(',')}]`);
    [n, m, dRaw] = done.dims as [number, number, number];
    raw = done.data;
  } else {
    const fine = asMap(spec.fine, outputs[spec.fine]);
    const coarse = asMap(spec.coarse, outputs[spec.coarse]);
    n = fine.n;
    m = fine.h * fine.w;
    dRaw = fine.c + coarse.c;
    const fsz = fine.c * m, csz = coarse.c * coarse.h * coarse.w;
    raw = new Float32Array(fine.n * m * dRaw);
    for (let k = 0; k < fine.n; k++) {
      const rows = raw.subarray(k * m * dRaw, (k + 1) * m * dRaw);
      aggregatePatches({ ...fine, n: 1, data: fine.data.subarray(k * fsz, (k + 1) * fsz) },
        { ...coarse, n: 1, data: coarse.data.subarray(k * csz, (k + 1) * csz) }, rows, 0);
      postprocessPatches(rows, m, fine.c, coarse.c, spec.layerNorm, undefined, rows, 0);
    }
  }
  const proj = spec.projection;
  if (proj && proj.matrix.length !== dRaw * proj.dOut) throw new Error(`projection: expected a ${dRaw}×${proj.dOut} matrix, got ${proj.matrix.length} values`);
  if (!proj) return done ? raw.slice() : raw;
  const session = await projector(proj.matrix, dRaw, proj.dOut, proj.key);
  const y = (await session.run({ x: new ort.Tensor('float32', raw, [n * m, dRaw]) })).y!;
  const rows = n * m * proj.dOut;
  if (!spec.pooled) return (y.data as Float32Array).slice();
  const per = 2 * dRaw + m;
  const out = new Float32Array(rows + n * per);
  out.set((y.data as Float32Array).subarray(0, rows));
  for (let k = 0; k < n; k++) poolBag(raw.subarray(k * m * dRaw, (k + 1) * m * dRaw), m, dRaw, out, rows + k * per);
  return out;
}

/** The outputs {@link appendAggregation} adds, by per-layer normalisation. */
export const PATCH_OUTPUTS: Record<LayerNorm, string> = { none: 'anomaly_clustering/patches', l2: 'anomaly_clustering/patches_l2' };

/** The outputs to fetch for a {@link PatchSpec}: the in-graph patch rows if there are any, else the two maps. */
export function fetchesFor(spec: PatchSpec): string[] {
  return spec.patches ? [spec.patches] : [spec.fine, spec.coarse];
}

/**
 * Appends the aggregation of `aggregate.ts` to a backbone graph whose two maps are `fine` (stride 8) and `coarse`
 * (stride 16), so that onnxruntime computes it with the network (multi-threaded, vectorised; the JS aggregation
 * and normalisation cost as much as the fp32 inference itself): AvgPool 3×3 / stride 1 / pad 1 with the padding
 * counted (÷9), Resize of the coarse map to the fine grid (linear, half_pixel = torch bilinear
 * align_corners=false), per-layer L2 (ReduceL2 over the channels; a zero vector stays zero) or none, Concat
 * (fine first), → `[n, m, d]` rows (row-major over the fine grid), as outputs {@link PATCH_OUTPUTS}.
 * The same values as the JS path up to float rounding (≈1e-7 relative).
 * @returns false (nothing appended) for a model older than opset 11 (no Resize `sizes` input)
 */
export function appendAggregation(model: onnxProto.onnx.ModelProto, fine: string, coarse: string): boolean {
  const opset = Number((model.opsetImport ?? []).find((o) => (o.domain ?? '') === '')?.version ?? 0);
  if (opset < 11) return false;
  const g = model.graph!;
  const P = 'anomaly_clustering/agg';
  const INT = 2, INTS = 7, STRING = 3, FLOAT = 1, T_INT64 = 7, T_FLOAT = 1;
  const i64 = (name: string, v: number[]) => {
    const b = new BigInt64Array(v.map((x) => BigInt(x)));
    g.initializer!.push({ name: `${P}/${name}`, dims: [v.length], dataType: T_INT64, rawData: new Uint8Array(b.buffer) });
    return `${P}/${name}`;
  };
  const node = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []) => {
    g.node!.push({ name: `${P}/${output}`, opType, input, output: [`${P}/${output}`], attribute });
    return `${P}/${output}`;
  };
  g.initializer ??= [];
  g.node ??= [];
  const eps = `${P}/eps`;
  g.initializer.push({ name: eps, dims: [], dataType: T_FLOAT, rawData: new Uint8Array(new Float32Array([1e-30]).buffer) });
  const pool = (x: string, tag: string) => node('AveragePool', [x], `${tag}_pool`, [
    { name: 'kernel_shape', type: INTS, ints: [3, 3] }, { name: 'strides', type: INTS, ints: [1, 1] },
    { name: 'pads', type: INTS, ints: [1, 1, 1, 1] }, { name: 'count_include_pad', type: INT, i: 1 }]);
  const f = pool(fine, 'fine');
  const c = pool(coarse, 'coarse');
  const sizes = node('Concat', [
    node('Slice', [node('Shape', [coarse], 'coarse_shape'), i64('s0', [0]), i64('s2', [2])], 'nc'),
    node('Slice', [node('Shape', [fine], 'fine_shape'), i64('s2b', [2]), i64('s4', [4])], 'hw'),
  ], 'sizes', [{ name: 'axis', type: INT, i: 0 }]);
  const up = node('Resize', [c, '', '', sizes], 'coarse_up', [
    { name: 'mode', type: STRING, s: new TextEncoder().encode('linear') },
    { name: 'coordinate_transformation_mode', type: STRING, s: new TextEncoder().encode('half_pixel') }]);
  const l2 = (x: string, tag: string) => {
    const norm = opset >= 18
      ? node('ReduceL2', [x, i64(`${tag}_axes`, [1])], `${tag}_norm`, [{ name: 'keepdims', type: INT, i: 1 }])
      : node('ReduceL2', [x], `${tag}_norm`, [{ name: 'axes', type: INTS, ints: [1] }, { name: 'keepdims', type: INT, i: 1 }]);
    return node('Div', [x, node('Max', [norm, eps], `${tag}_norm_eps`)], `${tag}_l2`);
  };
  const shape = i64('rows_shape', [0, 0, -1]);
  const rows = (a: string, b: string, tag: string) => {
    const cat = node('Concat', [a, b], `${tag}_cat`, [{ name: 'axis', type: INT, i: 1 }]);
    const r = node('Reshape', [cat, shape], `${tag}_flat`);
    return node('Transpose', [r], `${tag}_rows`, [{ name: 'perm', type: INTS, ints: [0, 2, 1] }]);
  };
  const outs: [string, string][] = [[rows(f, up, 'none'), PATCH_OUTPUTS.none], [rows(l2(f, 'fine'), l2(up, 'coarse'), 'l2'), PATCH_OUTPUTS.l2]];
  for (const [from, to] of outs) {
    g.node.push({ name: `${P}/${to}/id`, opType: 'Identity', input: [from], output: [to] });
    g.output!.push({ name: to, type: { tensorType: { elemType: FLOAT } } });
  }
  return true;
}
