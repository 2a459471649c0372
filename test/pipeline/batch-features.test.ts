/**
 * Feature-extraction speed paths (docs/performance.md §2): the aggregation appended to the onnxruntime graph must give the JS
 * aggregation's features (up to float rounding), and the int8 fast mode (models/quantize.ts): BatchNorm folding is
 * exact, the QDQ model is close to the float one, and bad uses fail clearly.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import sharp from 'sharp';
import { clearSessions, extractFeatures, JS_AGGREGATION_ENV } from '../../src/pipeline/features.js';
import { accumulateRanges, calibrationModel, calibrationTensors, foldBatchNorm, quantizeModel, uint8Params } from '../../src/models/quantize.js';
import { findCalibration, int8Key } from '../../src/models/int8.js';
import { prepareModel, DEFAULT_BACKBONE } from '../../src/models/index.js';
import { KernelError } from '../../src/errors.js';

const { onnx } = onnxProto;
const DATA = path.resolve(__dirname, '../../../shared/data');
const hasData = existsSync(DATA);

/** Relative L2 difference of two arrays. */
function relDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  let n = 0, d = 0;
  for (let i = 0; i < a.length; i++) {
    n += (a[i]! - b[i]!) ** 2;
    d += a[i]! ** 2;
  }
  return Math.sqrt(n / d);
}

/** Deterministic pseudo-random floats in [-1, 1). */
function noise(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

const f32 = (name: string, dims: number[], data: Float32Array) => ({ name, dims, dataType: 1, rawData: new Uint8Array(data.buffer.slice(0)) });

/**
 * x [N,3,8,8] → Conv3x3 → BN → Relu (a) → Conv1x1 → BN (b) ; a + b → Relu (out). Random weights, a BN with
 * non-trivial statistics, a residual Add: the patterns of ResNet-50.
 */
function convNet(): onnxProto.onnx.ModelProto {
  const bn = (p: string, c: number, seed: number) => [
    f32(`${p}/s`, [c], noise(c, seed).map((v) => 1 + 0.5 * v)), f32(`${p}/b`, [c], noise(c, seed + 1)),
    f32(`${p}/m`, [c], noise(c, seed + 2).map((v) => 0.3 * v)), f32(`${p}/v`, [c], noise(c, seed + 3).map((v) => 1 + 0.9 * v)),
  ];
  const graph = {
    name: 'convnet',
    node: [
      { name: 'c1', opType: 'Conv', input: ['x', 'w1', 'b1'], output: ['c1'], attribute: [{ name: 'pads', type: 7, ints: [1, 1, 1, 1] }] },
      { name: 'bn1', opType: 'BatchNormalization', input: ['c1', 'bn1/s', 'bn1/b', 'bn1/m', 'bn1/v'], output: ['n1'] },
      { name: 'r1', opType: 'Relu', input: ['n1'], output: ['a'] },
      { name: 'c2', opType: 'Conv', input: ['a', 'w2'], output: ['c2'] },
      { name: 'bn2', opType: 'BatchNormalization', input: ['c2', 'bn2/s', 'bn2/b', 'bn2/m', 'bn2/v'], output: ['b'] },
      { name: 'add', opType: 'Add', input: ['a', 'b'], output: ['sum'] },
      { name: 'r2', opType: 'Relu', input: ['sum'], output: ['out'] },
    ],
    initializer: [
      f32('w1', [6, 3, 3, 3], noise(162, 1).map((v) => 0.4 * v)), f32('b1', [6], noise(6, 2)),
      f32('w2', [6, 6, 1, 1], noise(36, 3).map((v) => 0.5 * v)), ...bn('bn1', 6, 10), ...bn('bn2', 6, 20),
    ],
    input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: 8 }, { dimValue: 8 }] } } } }],
    output: [{ name: 'out', type: { tensorType: { elemType: 1 } } }],
  };
  return onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: 13 }], graph } as never);
}

async function runModel(bytes: Uint8Array, x: Float32Array, n: number, outputs: string[]): Promise<Record<string, Float32Array>> {
  const s = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, logSeverityLevel: 3 });
  const out = await s.run({ x: new ort.Tensor('float32', x, [n, 3, 8, 8]) }, outputs);
  await s.release();
  return Object.fromEntries(outputs.map((k) => [k, out[k]!.data as Float32Array]));
}

afterEach(async () => {
  delete process.env[JS_AGGREGATION_ENV];
  await clearSessions();
});

describe('int8 quantisation (models/quantize.ts)', () => {
  it('folding BatchNorm into the convolutions keeps the outputs (and drops the BN nodes)', async () => {
    const m = convNet();
    const x = noise(4 * 3 * 64, 7);
    const ref = await runModel(calibrationModel(m, ['out', 'a']), x, 4, ['out', 'a']);
    const folded = foldBatchNorm(m, ['out', 'a']);
    expect(folded.graph!.node!.map((n) => n.opType)).not.toContain('BatchNormalization');
    const got = await runModel(onnx.ModelProto.encode(folded).finish(), x, 4, ['out', 'a']);
    expect(relDiff(ref.out!, got.out!)).toBeLessThan(1e-5);
    expect(relDiff(ref.a!, got.a!)).toBeLessThan(1e-5);
  });

  it('the QDQ model (calibrated on its own inputs) is within a few % of the float model; ReLUs are fused', async () => {
    const folded = foldBatchNorm(convNet(), ['out']);
    const tensors = calibrationTensors(folded);
    // the Conv input, the fused Relu outputs (not the Conv outputs they replace), the Add inputs
    expect(tensors).toEqual(expect.arrayContaining(['x', 'a', 'b', 'out']));
    expect(tensors).not.toContain('n1');
    const x = noise(8 * 3 * 64, 3);
    const cal = await runModel(calibrationModel(folded, tensors), x, 8, tensors);
    const ranges = accumulateRanges({}, cal);
    expect(ranges.a![0]).toBeGreaterThanOrEqual(0); // a Relu output
    const q = quantizeModel(folded, ranges);
    const qm = onnx.ModelProto.decode(q);
    const ops = qm.graph!.node!.map((n) => n.opType);
    expect(ops).toContain('QuantizeLinear');
    expect(ops).not.toContain('Relu');
    expect(qm.graph!.initializer!.some((t) => t.dataType === 3)).toBe(true); // int8 weights
    const xt = noise(2 * 3 * 64, 99).map((v) => 0.9 * v); // inside the calibrated range
    const ref = await runModel(onnx.ModelProto.encode(folded).finish(), xt, 2, ['out']);
    const got = await runModel(q, xt, 2, ['out']);
    const e = relDiff(ref.out!, got.out!);
    expect(e).toBeGreaterThan(0); // really quantised
    expect(e).toBeLessThan(0.05);
  });

  it('uint8 parameters contain 0 and map it exactly; a missing range is ERR_MODEL', () => {
    expect(uint8Params([0, 2.55])).toEqual({ scale: Math.fround(0.01), zero: 0 });
    const p = uint8Params([-1, 3]);
    expect(p.zero).toBe(Math.round(1 / p.scale));
    expect(uint8Params([0, 0]).scale).toBe(1);
    const folded = foldBatchNorm(convNet(), ['out']);
    expect(() => quantizeModel(folded, {})).toThrow(KernelError);
    try { quantizeModel(folded, {}); } catch (e) { expect((e as KernelError).code).toBe('ERR_MODEL'); }
  });
});

describe('precision: int8 on the default backbone', () => {
  it('ships a calibration for the default layers; other layers / models are ERR_MODEL; a bad value is a RangeError', async () => {
    const p = await prepareModel();
    expect(findCalibration(p.sha256, DEFAULT_BACKBONE.layers)).toBeDefined();
    expect(int8Key(p.sha256, [...DEFAULT_BACKBONE.layers].reverse())).toMatch(/^int8:/);
    const img = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#808080' } }).png().toBuffer();
    const e = await extractFeatures([{ name: 'g.png', data: img }], { cacheDir: false, backbone: { precision: 'int8', layers: ['activation_10', 'activation_39'] } })
      .then(() => undefined, (x: unknown) => x);
    expect(e).toBeInstanceOf(KernelError);
    expect((e as KernelError).code).toBe('ERR_MODEL');
    expect((e as KernelError).message).toContain("precision 'int8' needs a shipped calibration");
    await expect(extractFeatures([{ name: 'g.png', data: img }], { cacheDir: false, backbone: { precision: 'int4' as never } })).rejects.toThrow(RangeError);
  });

  it.runIf(hasData)('int8 features are close to the fp32 ones (MTD + bottle) and cached under their own key', async () => {
    const d = path.join(DATA, 'mtd', 'MT_Crack', 'Imgs');
    const files = [...readdirSync(d).filter((f) => f.endsWith('.jpg')).sort().slice(0, 2).map((f) => path.join(d, f)),
      path.join(DATA, 'mvtec-bottle', 'test', 'good', '000.png')];
    const fp = await extractFeatures(files, { cacheDir: false });
    // the same projection basis for both (each set fits its own otherwise)
    const q = await extractFeatures(files, { cacheDir: false, backbone: { precision: 'int8' }, projection: fp.projection });
    const e = relDiff(fp.data, q.data);
    expect(e).toBeGreaterThan(1e-4);
    expect(e).toBeLessThan(0.15);
  });
});

describe('aggregation in the onnxruntime graph', () => {
  it.runIf(hasData)('gives the JS aggregation\'s features (l2/none, projected or not, pooled vectors) on real images', async () => {
    const d = path.join(DATA, 'mtd', 'MT_Blowhole', 'Imgs');
    const files = [...readdirSync(d).filter((f) => f.endsWith('.jpg')).sort().slice(0, 2).map((f) => path.join(d, f)),
      path.join(DATA, 'mvtec-bottle', 'test', 'broken_large', '000.png')];
    for (const o of [{}, { layerNorm: 'none' as const, projectDim: false as const }, { pooled: true }]) {
      process.env[JS_AGGREGATION_ENV] = '1';
      const js = await extractFeatures(files, { cacheDir: false, ...o });
      process.env[JS_AGGREGATION_ENV] = '0';
      // projected with the JS path's basis (a basis fitted on 1e-7-different features differs more than that)
      const graph = await extractFeatures(files, { cacheDir: false, ...o, ...(js.projection ? { projection: js.projection } : {}) });
      expect([graph.n, graph.m, graph.d]).toEqual([js.n, js.m, js.d]);
      expect(relDiff(js.data, graph.data)).toBeLessThan(1e-5);
      if (js.pooled) {
        expect(relDiff(js.pooled.mean, graph.pooled!.mean)).toBeLessThan(1e-5);
        expect(relDiff(js.pooled.max, graph.pooled!.max)).toBeLessThan(1e-5);
      }
    }
  });
});
