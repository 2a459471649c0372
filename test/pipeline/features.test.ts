/**
 * Feature extraction: aggregation semantics (torch AvgPool2d(3,1,1) / F.interpolate bilinear), a tiny synthetic
 * ONNX model (scope-named layers as in a torchvision export), the embedded default backbone on real files,
 * batching, the feature cache (incl. reading it from Python), skipBad, progress, abort, and ERR_MODEL cases.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import onnxProto from 'onnx-proto';
import { extractFeatures, openBackbone, strideOf } from '../../src/pipeline/features.js';
import { aggregatePatches, aggregatePatchesReference, avgPool3x3, bilinearTaps, gaussianProjection, postprocessPatches } from '../../src/pipeline/aggregate.js';
import { aggregationKey, AGGREGATION } from '../../src/pipeline/features.js';
import { decodeNpy, encodeNpy } from '../../src/pipeline/cache.js';
import { DEFAULT_BACKBONE, prepareModel } from '../../src/models/index.js';
import { KernelError } from '../../src/errors.js';

const { onnx } = onnxProto;
const DATA = path.resolve(__dirname, '../../../shared/data');
const hasData = existsSync(DATA);
let tmp: string;
let tiny: string;

function mtd(cls: string, k: number): string[] {
  const d = path.join(DATA, 'mtd', cls, 'Imgs');
  return readdirSync(d).filter((f) => f.endsWith('.jpg')).sort().slice(0, k).map((f) => path.join(d, f));
}
const bottle = (cls: string, k: number) => Array.from({ length: k }, (_, i) => path.join(DATA, 'mvtec-bottle/test', cls, `${String(i).padStart(3, '0')}.png`));

/** Bitwise equality of float arrays (vitest's toEqual walks big typed arrays element by element: far too slow). */
function sameFloats(a: Float32Array, b: Float32Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

async function codeOf(p: Promise<unknown>): Promise<KernelError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(KernelError);
  return e as KernelError;
}

/** A torchvision-export-like tiny model: /layer2/* (stride 8, 4 ch) and /layer3/* (stride 16, 5 ch), 1×1 convs of ones. */
function tinyModel(): Uint8Array {
  const ones = (n: number) => ({ dataType: 1, rawData: new Uint8Array(new Float32Array(n).fill(1).buffer) });
  const conv = (name: string, x: string, w: string, out: string, stride: number) =>
    ({ name, opType: 'Conv', input: [x, w], output: [out], attribute: [{ name: 'strides', type: 7, ints: [stride, stride] }, { name: 'kernel_shape', type: 7, ints: [1, 1] }] });
  const graph = {
    name: 'tiny',
    node: [
      conv('/layer2/conv/Conv', 'x', 'w2', '/layer2/conv/Conv_output_0', 8),
      { name: '/layer2/relu/Relu', opType: 'Relu', input: ['/layer2/conv/Conv_output_0'], output: ['/layer2/relu/Relu_output_0'] },
      conv('/layer3/conv/Conv', '/layer2/relu/Relu_output_0', 'w3', '/layer3/conv/Conv_output_0', 2),
      { name: '/fc/Gap', opType: 'GlobalAveragePool', input: ['/layer3/conv/Conv_output_0'], output: ['y'] },
    ],
    initializer: [{ name: 'w2', dims: [4, 3, 1, 1], ...ones(12) }, { name: 'w3', dims: [5, 4, 1, 1], ...ones(20) }],
    input: [{ name: 'x', type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 3 }, { dimValue: 32 }, { dimValue: 32 }] } } } }],
    output: [{ name: 'y', type: { tensorType: { elemType: 1 } } }],
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 7, opsetImport: [{ domain: '', version: 13 }], graph } as never)).finish();
}

beforeAll(async () => {
  await prepareModel(); // the converted default backbone (bootstrap does the same; a cache hit when already there)
  tmp = mkdtempSync(path.join(tmpdir(), 'ac-features-'));
  tiny = path.join(tmp, 'tiny.onnx');
  writeFileSync(tiny, tinyModel());
});

describe('aggregation (torch semantics)', () => {
  it('avgPool3x3 = AvgPool2d(3,1,1), count_include_pad → always /9', () => {
    const src = Float32Array.from([1, 2, 3, 4, 5, 6]); // 2×3
    const out = new Float32Array(6);
    avgPool3x3(src, 0, 2, 3, out, new Float32Array(6));
    const naive = (y: number, x: number) => {
      let s = 0;
      for (let dy = -1; dy <= 1; dy++) for (let dx = -1; dx <= 1; dx++) {
        const yy = y + dy, xx = x + dx;
        if (yy >= 0 && yy < 2 && xx >= 0 && xx < 3) s += src[yy * 3 + xx]!;
      }
      return s / 9;
    };
    for (let y = 0; y < 2; y++) for (let x = 0; x < 3; x++) expect(out[y * 3 + x]).toBeCloseTo(naive(y, x), 6);
  });

  it('bilinear taps = F.interpolate(align_corners=False): [[1,2],[3,4]] → 4×4', () => {
    const t = bilinearTaps(2, 4);
    const src = [1, 2, 3, 4];
    const at = (y: number, x: number) => {
      const r0 = src[t.i0[y]! * 2 + t.i0[x]!]! * (1 - t.t[x]!) + src[t.i0[y]! * 2 + t.i1[x]!]! * t.t[x]!;
      const r1 = src[t.i1[y]! * 2 + t.i0[x]!]! * (1 - t.t[x]!) + src[t.i1[y]! * 2 + t.i1[x]!]! * t.t[x]!;
      return r0 * (1 - t.t[y]!) + r1 * t.t[y]!;
    };
    const torch = [[1, 1.25, 1.75, 2], [1.5, 1.75, 2.25, 2.5], [2.5, 2.75, 3.25, 3.5], [3, 3.25, 3.75, 4]];
    for (let y = 0; y < 4; y++) for (let x = 0; x < 4; x++) expect(at(y, x)).toBeCloseTo(torch[y]![x]!, 6);
  });

  it('aggregatePatches: image-major, patch-major, fine channels then coarse', () => {
    const fine = { data: new Float32Array(2 * 1 * 4 * 4).fill(9), n: 2, c: 1, h: 4, w: 4 };
    const coarse = { data: new Float32Array(2 * 2 * 2 * 2).fill(9), n: 2, c: 2, h: 2, w: 2 };
    const out = new Float32Array(2 * 16 * 3);
    aggregatePatches(fine, coarse, out);
    // fine: corner 4, edge 6, interior 9 (9·k/9); coarse 2×2: every cell sees 4 → 4, upsampled constant
    expect(Array.from(out.subarray(0, 3))).toEqual([4, 4, 4].map(Math.fround));
    expect(out[(1 * 4 + 1) * 3]).toBeCloseTo(9, 5);
    expect(out[(0 * 4 + 1) * 3]).toBeCloseTo(6, 5);
    expect(out[16 * 3 + (3 * 4 + 3) * 3 + 2]).toBeCloseTo(4, 5);
  });

  it('fast channel-last aggregation = per-channel reference (random maps, odd sizes, 35→17 like InceptionV3)', () => {
    let seed = 42;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 4 - 1;
    for (const [c1, h1, c2, h2] of [[3, 7, 5, 4], [17, 35, 9, 17], [1, 1, 2, 1], [4, 2, 3, 1]] as const) {
      const fine = { data: Float32Array.from({ length: 2 * c1 * h1 * h1 }, rnd), n: 2, c: c1, h: h1, w: h1 };
      const coarse = { data: Float32Array.from({ length: 2 * c2 * h2 * h2 }, rnd), n: 2, c: c2, h: h2, w: h2 };
      const a = new Float32Array(2 * h1 * h1 * (c1 + c2) + 3);
      const b = new Float32Array(a.length);
      aggregatePatches(fine, coarse, a, 3);
      aggregatePatchesReference(fine, coarse, b, 3);
      let maxDiff = 0;
      for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
      expect(maxDiff).toBeLessThan(1e-5);
    }
  });

  it('strideOf rounds to the nearest power of two (InceptionV3 valid padding)', () => {
    expect([strideOf(224, 28), strideOf(224, 14), strideOf(299, 35), strideOf(299, 17)]).toEqual([8, 16, 8, 16]);
  });
});

describe('custom ONNX model (torchvision-like scope names)', () => {
  it("resolves 'layer2'/'layer3' scopes; border patches damped by /9", async () => {
    const img = await sharp({ create: { width: 40, height: 40, channels: 3, background: { r: 51, g: 102, b: 153 } } }).png().toBuffer();
    const bank = await extractFeatures([{ name: 'solid.png', data: img }], {
      backbone: { model: tiny, layers: ['layer2', 'layer3'], inputSize: 32, resize: 32, mean: [0, 0, 0], std: [1, 1, 1] },
      cacheDir: false, threads: 1, layerNorm: 'none',
    });
    expect([bank.n, bank.m, bank.d, bank.gridH, bank.gridW]).toEqual([1, 16, 9, 4, 4]);
    const s = (51 + 102 + 153) / 255; // layer2 channel = r+g+b; layer3 = 4·that
    const at = (y: number, x: number, c: number) => bank.data[(y * 4 + x) * 9 + c]!;
    expect(at(1, 1, 0)).toBeCloseTo(s, 5);
    expect(at(0, 0, 3)).toBeCloseTo((4 / 9) * s, 5);
    expect(at(0, 2, 1)).toBeCloseTo((6 / 9) * s, 5);
    expect(at(2, 2, 4)).toBeCloseTo((4 / 9) * 4 * s, 5);
    expect(at(3, 0, 8)).toBeCloseTo((4 / 9) * 4 * s, 5);
  });

  it('exact tensor names work too, in either order', async () => {
    const img = await sharp({ create: { width: 32, height: 32, channels: 3, background: '#808080' } }).png().toBuffer();
    const bank = await extractFeatures([{ name: 'g.png', data: img }], {
      backbone: { model: tiny, layers: ['/layer3/conv/Conv_output_0', '/layer2/relu/Relu_output_0'], inputSize: 32, resize: 32 },
      cacheDir: false, threads: 1,
    });
    expect([bank.gridH, bank.d]).toEqual([4, 9]);
  });

  it('unknown layer → ERR_MODEL listing candidates', async () => {
    const e = await codeOf(extractFeatures(['x.png'], { backbone: { model: tiny, layers: ['layer2', 'layer9'], inputSize: 32 }, cacheDir: false }));
    expect(e.code).toBe('ERR_MODEL');
    expect(e.message).toContain('"layer9"');
    expect(e.message).toContain('layer3');
    expect(e.message).toContain('/layer2/relu/Relu_output_0');
  });

  it('missing model path / not ONNX / no layers → ERR_MODEL naming the path', async () => {
    const missing = path.join(tmp, 'missing.onnx');
    let e = await codeOf(extractFeatures(['x.png'], { backbone: { model: missing, layers: ['a', 'b'] } }));
    expect([e.code, e.message.includes(missing)]).toEqual(['ERR_MODEL', true]);
    const text = path.join(tmp, 'model.onnx');
    writeFileSync(text, 'definitely not protobuf\n'.repeat(10));
    e = await codeOf(extractFeatures(['x.png'], { backbone: { model: text, layers: ['a', 'b'] } }));
    expect(e.code).toBe('ERR_MODEL');
    expect(e.message).toContain(text);
    expect(e.message).toMatch(/not an ONNX model/);
    e = await codeOf(extractFeatures(['x.png'], { backbone: { model: tiny } }));
    expect(e.code).toBe('ERR_MODEL');
    expect(e.message).toMatch(/layers is required/);
  });
});

describe('embedded default backbone', () => {
  it('has stride-8/16 layers of the converted ResNet-50 (conv3 and conv4 stage ends)', async () => {
    const bs = await openBackbone({}, 2);
    expect(bs.backbone.id).toBe(DEFAULT_BACKBONE.id);
    expect(strideOf(224, bs.fineShape[1])).toBe(8);
    expect(strideOf(224, bs.coarseShape[1])).toBe(16);
  });

  it('layers at the wrong strides → ERR_MODEL with the shapes found', async () => {
    const e = await codeOf(extractFeatures(['x.png'], { backbone: { layers: ['activation_9', 'activation_21'] }, cacheDir: false }));
    expect(e.code).toBe('ERR_MODEL');
    expect(e.message).toMatch(/strides 8 and 16/);
    expect(e.message).toContain('[256,56,56]');
    expect(e.message).toContain('stride ≈ 4.0');
  });

  it('unknown layer of the default model lists its layer names', async () => {
    const e = await codeOf(extractFeatures(['x.png'], { backbone: { layers: ['activation_21', 'block_99'] }, cacheDir: false }));
    expect(e.code).toBe('ERR_MODEL');
    expect(e.message).toContain('activation_39');
  });

  it('the converted file used as a custom model path gives the same features', async () => {
    const img = await sharp({ create: { width: 300, height: 260, channels: 3, background: { r: 10, g: 120, b: 240 } } }).jpeg().toBuffer();
    const input = [{ name: 'c.jpg', data: new Uint8Array(img) }];
    const a = await extractFeatures(input, { cacheDir: false, threads: 2 });
    const b = await extractFeatures(input, {
      backbone: { model: (await prepareModel()).path, layers: [...DEFAULT_BACKBONE.layers], mean: DEFAULT_BACKBONE.mean, std: DEFAULT_BACKBONE.std }, cacheDir: false, threads: 2,
    });
    expect(sameFloats(b.data, a.data)).toBe(true);
  });
});

describe.skipIf(!hasData)('real files (../shared/data)', () => {
  it('MTD + MVTec: shapes, order, batch independence', async () => {
    const files = [...mtd('MT_Blowhole', 2), ...mtd('MT_Free', 2), ...bottle('good', 2)];
    const a = await extractFeatures(files, { batchSize: 4, cacheDir: false, threads: 2 });
    expect([a.n, a.m, a.d, a.gridH, a.gridW]).toEqual([6, 784, 256, 28, 28]); // defaults: per-layer L2 + projection to 256
    expect(a.files).toEqual(files);
    expect(a.data.length).toBe(6 * 784 * 256);
    expect(a.data.every(Number.isFinite)).toBe(true);
    const b = await extractFeatures(files, { batchSize: 1, cacheDir: false, threads: 1 });
    let maxDiff = 0;
    for (let i = 0; i < a.data.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.data[i]! - b.data[i]!));
    expect(maxDiff).toBeLessThan(1e-3);
    // the projection is the set's principal subspace: no seed, the same images and options give the same bytes
    expect(a.projection).toMatchObject({ dIn: 1536, dOut: 256, images: 6, patches: 6 * 784 });
    expect(a.projection!.explained).toBeGreaterThan(0.5);
    const c = await extractFeatures(files, { batchSize: 4, cacheDir: false, threads: 2 });
    expect(c.projection!.key).toBe(a.projection!.key);
    expect(sameFloats(c.data, a.data)).toBe(true);
  });

  it('feature cache: hit on re-run, corrupt entry recomputed, readable by numpy', async () => {
    const cacheDir = path.join(tmp, 'fcache');
    const files = [...mtd('MT_Crack', 2), ...bottle('contamination', 1)];
    const a = await extractFeatures(files, { cacheDir, threads: 2 });
    // two configurations: the set's projection basis and the bags projected with it (cacheDir is the root: <root>/features)
    const cfgDirs = readdirSync(path.join(cacheDir, 'features'));
    expect(cfgDirs).toHaveLength(2);
    const cfgDir = cfgDirs.find((k) => !readFileSync(path.join(cacheDir, 'features', k, 'config.json'), 'utf8').includes('PCA basis'));
    const dir = path.join(cacheDir, 'features', cfgDir!);
    const npys = readdirSync(dir).filter((f) => f.endsWith('.npy'));
    expect(npys).toHaveLength(3);
    const cfg = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8'));
    expect(cfg).toMatchObject({ format: 'anomaly-clustering/features@2', gridH: 28, gridW: 28, d: 256, backbone: { id: DEFAULT_BACKBONE.id }, preprocess: { fit: 'stretch' } });
    const b = await extractFeatures(files, { cacheDir, threads: 2 });
    expect(b.timings.features).toBe(0);
    expect(sameFloats(b.data, a.data)).toBe(true);
    writeFileSync(path.join(dir, npys[0]!), 'corrupt');
    const c = await extractFeatures(files, { cacheDir, threads: 2 });
    expect(c.timings.features).toBeGreaterThan(0);
    expect(sameFloats(c.data, a.data)).toBe(true);
    const py = '/usr/bin/python3';
    let numpy = false;
    try { execFileSync(py, ['-c', 'import numpy'], { stdio: 'ignore' }); numpy = true; } catch { /* no numpy */ }
    if (numpy) {
      const out = execFileSync(py, ['-c', `import numpy as np,sys; x=np.load(sys.argv[1]); print(x.dtype, x.shape, float(x[0,0,0]))`, path.join(dir, npys[1]!)], { encoding: 'utf8' });
      expect(out).toMatch(/^float32 \(28, 28, 256\)/);
    } else {
      console.warn('numpy not available: skipped the Python read of the cache');
    }
  });

  it('skipBad lists bad files; without it the first bad file rejects with ERR_IMAGE', async () => {
    const bad = path.join(tmp, 'broken.jpg');
    writeFileSync(bad, 'not a jpeg');
    const files = [mtd('MT_Fray', 1)[0]!, bad, mtd('MT_Uneven', 1)[0]!];
    const r = await extractFeatures(files, { skipBad: true, cacheDir: false, threads: 2 });
    expect(r.n).toBe(2);
    expect(r.files).toEqual([files[0], files[2]]);
    expect(r.skipped).toHaveLength(1);
    expect(r.skipped[0]!.file).toBe(bad);
    expect(r.skipped[0]!.error).toContain('broken.jpg');
    // the same bag as extracting that image alone, projected with the same basis
    const one = await extractFeatures([files[2]!], { cacheDir: false, threads: 2, projection: r.projection });
    expect(sameFloats(r.data.subarray(784 * r.d), one.data)).toBe(true);
    const e = await codeOf(extractFeatures(files, { cacheDir: false }));
    expect(e.code).toBe('ERR_IMAGE');
    expect(e.message).toContain('broken.jpg');
  });

  it('progress events for decode and features reach the total', async () => {
    const files = mtd('MT_Break', 5);
    const events: { stage: string; done: number; total: number }[] = [];
    await extractFeatures(files, { batchSize: 2, cacheDir: false, threads: 2, onProgress: (p) => events.push(p) });
    const last = (s: string) => events.filter((e) => e.stage === s).at(-1);
    expect(last('decode')).toMatchObject({ done: 5, total: 5 });
    expect(last('features')).toMatchObject({ done: 5, total: 5 });
  });

  it('abort → ERR_ABORTED (before start and mid-way)', async () => {
    const files = mtd('MT_Free', 12);
    const pre = new AbortController();
    pre.abort();
    expect((await codeOf(extractFeatures(files, { signal: pre.signal, cacheDir: false }))).code).toBe('ERR_ABORTED');
    const mid = new AbortController();
    const p = extractFeatures(files, {
      batchSize: 2, cacheDir: false, threads: 2, signal: mid.signal,
      onProgress: (e) => { if (e.stage === 'features') mid.abort('test'); },
    });
    expect((await codeOf(p)).code).toBe('ERR_ABORTED');
  });
});

describe('feature post-processing (layerNorm, projectDim)', () => {
  it('per-layer L2: each layer part of each patch has unit norm (zero parts stay zero)', () => {
    const src = new Float32Array([3, 4, 1, 2, 2, /* patch 2 */ 0, 0, 0, 0, 5]);
    const out = new Float32Array(10);
    postprocessPatches(src, 2, 2, 3, 'l2', undefined, out, 0);
    expect([...out].map((x) => +x.toFixed(6))).toEqual([0.6, 0.8, 1 / 3, 2 / 3, 2 / 3, 0, 0, 0, 0, 1].map((x) => +x.toFixed(6)));
  });

  it('gaussian projection: deterministic per seed, N(0,1/k) scale, x·P', () => {
    const a = gaussianProjection(300, 64, 0), b = gaussianProjection(300, 64, 0), c = gaussianProjection(300, 64, 1);
    expect(Buffer.compare(Buffer.from(a.buffer), Buffer.from(b.buffer))).toBe(0);
    expect(Buffer.compare(Buffer.from(a.buffer), Buffer.from(c.buffer))).not.toBe(0);
    let m = 0, v = 0;
    for (const x of a) { m += x; v += x * x; }
    expect(Math.abs(m / a.length)).toBeLessThan(0.01);
    expect(v / a.length * 64).toBeCloseTo(1, 1);
    const P = gaussianProjection(3, 2, 5);
    const out = new Float32Array(2);
    postprocessPatches(new Float32Array([1, 0, 2]), 1, 1, 2, 'none', { matrix: P, dOut: 2 }, out, 0);
    expect(out[0]).toBeCloseTo(P[0]! + 2 * P[4]!, 6);
    expect(out[1]).toBeCloseTo(P[1]! + 2 * P[5]!, 6);
  });

  it('the options change the cache key; none/false keeps the raw key', () => {
    expect(aggregationKey('none', 768)).toBe(AGGREGATION);
    const basis = (k: string) => ({ matrix: new Float32Array(768 * 256), dIn: 768, dOut: 256, key: k, images: 1, patches: 2, explained: 1 });
    const keys = new Set([aggregationKey('l2', 768), aggregationKey('l2', 768, basis('a')), aggregationKey('none', 768, basis('a')), aggregationKey('l2', 768, basis('b')), AGGREGATION]);
    expect(keys.size).toBe(5);
  });

  it('extractFeatures applies them (tiny model) and validates them', async () => {
    const img = await sharp({ create: { width: 32, height: 32, channels: 3, background: { r: 51, g: 102, b: 153 } } }).png().toBuffer();
    const opts = { backbone: { model: tiny, layers: ['layer2', 'layer3'] as [string, string], inputSize: 32, resize: 32, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] }, cacheDir: false as const, threads: 1 };
    const raw = await extractFeatures([{ name: 's.png', data: img }], { ...opts, layerNorm: 'none' });
    const l2 = await extractFeatures([{ name: 's.png', data: img }], { ...opts, layerNorm: 'l2' });
    const pj = await extractFeatures([{ name: 's.png', data: img }], { ...opts, layerNorm: 'l2', projectDim: 3 });
    expect([raw.d, l2.d, pj.d]).toEqual([9, 9, 3]);
    const row = (b: typeof raw, p: number) => b.data.subarray(p * b.d, (p + 1) * b.d);
    for (const p of [0, 5]) {
      const r = row(raw, p), n = row(l2, p);
      const nf = Math.hypot(...r.subarray(0, 4)), nc = Math.hypot(...r.subarray(4));
      for (let c = 0; c < 9; c++) expect(n[c]).toBeCloseTo(r[c]! / (c < 4 ? nf : nc), 5);
      const P = pj.projection!.matrix;
      expect(pj.projection).toMatchObject({ dIn: 9, dOut: 3, images: 1, patches: pj.m });
      for (let j = 0; j < 3; j++) {
        let acc = 0;
        for (let c = 0; c < 9; c++) acc += n[c]! * P[c * 3 + j]!;
        expect(row(pj, p)[j]).toBeCloseTo(acc, 5);
      }
    }
    await expect(extractFeatures(['x.png'], { ...opts, layerNorm: 'l1' as never })).rejects.toThrow(RangeError);
    await expect(extractFeatures(['x.png'], { ...opts, projectDim: 0 })).rejects.toThrow(RangeError);
    await expect(extractFeatures(['x.png'], { ...opts, projectSeed: 1 } as never)).rejects.toThrow(/projectSeed/);
    await expect(extractFeatures(['x.png'], { ...opts, projection: { ...pj.projection!, dIn: 8 } })).rejects.toThrow(RangeError);
  });
});

describe('unprojected pooled features (FeatureOptions.pooled)', () => {
  it('keep the full-dimension mean, max and arg-max shares of a projected bank; cached; used by uniform / max pooling', async () => {
    const imgs = await Promise.all([1, 2, 3].map(async (seed) => {
      let s = seed;
      const px = Buffer.alloc(32 * 32 * 3);
      for (let i = 0; i < px.length; i++) { s = (s * 1103515245 + 12345) >>> 0; px[i] = s >>> 24; }
      return { name: `r${seed}.png`, data: await sharp(px, { raw: { width: 32, height: 32, channels: 3 } }).png().toBuffer() };
    }));
    const cacheDir = path.join(tmp, 'pooled-cache');
    const opts = { backbone: { model: tiny, layers: ['layer2', 'layer3'] as [string, string], inputSize: 32, resize: 32, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] }, threads: 1, layerNorm: 'l2' as const };
    const full = await extractFeatures(imgs, { ...opts, cacheDir: false });
    expect(full.pooled).toBeUndefined(); // nothing to add without a projection
    expect(full.projectedFrom).toBeUndefined();
    // the main cache entries first, without the pooled ones: asking for them later recomputes those images
    const plain = await extractFeatures(imgs, { ...opts, projectDim: 3, cacheDir });
    expect(plain.pooled).toBeUndefined();
    const pj = await extractFeatures(imgs, { ...opts, projectDim: 3, cacheDir, pooled: true });
    expect(pj.projectedFrom).toBe(9);
    expect(sameFloats(pj.data, plain.data)).toBe(true);
    const { n, m } = pj;
    const p = pj.pooled!;
    expect(p.d).toBe(9);
    for (let i = 0; i < n; i++) {
      for (let k = 0; k < 9; k++) {
        let sum = 0, mx = -Infinity;
        for (let q = 0; q < m; q++) { const v = full.data[(i * m + q) * 9 + k]!; sum += v; mx = Math.max(mx, v); }
        expect(p.mean[i * 9 + k]).toBeCloseTo(sum / m, 6);
        expect(p.max[i * 9 + k]).toBe(mx);
      }
      expect(p.maxShare.subarray(i * m, (i + 1) * m).reduce((a, x) => a + x, 0)).toBeCloseTo(1, 5);
    }
    // a second run is served from the cache: same bytes; an entry altered on disk (no valid checksum) is dropped,
    // reported and recomputed, never used
    const again = await extractFeatures(imgs, { ...opts, projectDim: 3, cacheDir, pooled: true });
    expect(sameFloats(again.pooled!.mean, p.mean) && sameFloats(again.pooled!.max, p.max) && sameFloats(again.pooled!.maxShare, p.maxShare)).toBe(true);
    const side = readdirSync(path.join(cacheDir, 'features')).map((k) => path.join(cacheDir, 'features', k)).find((k) => readFileSync(path.join(k, 'config.json'), 'utf8').includes('unprojected'))!;
    const entries = readdirSync(side).filter((f) => f.endsWith('.npy'));
    expect(entries.length).toBe(3);
    const per = 2 * 9 + m;
    for (const f of entries) writeFileSync(path.join(side, f), encodeNpy(new Float32Array(per).fill(0.5), [1, 1, per]));
    const warnings: string[] = [];
    const altered = await extractFeatures(imgs, { ...opts, projectDim: 3, cacheDir, pooled: true, onWarning: (w) => warnings.push(w) });
    expect(sameFloats(altered.pooled!.mean, p.mean) && sameFloats(altered.pooled!.max, p.max)).toBe(true);
    expect(warnings.length).toBe(3);
    expect(warnings[0]).toMatch(/feature cache: dropped the bad entry .*\.npy \(.*\); recomputing it/);
    // uniform and max pooling take them (full dimension); the weighted modes pool the projected bags
    const { computeWeights } = await import('../../src/pipeline/weighting.js');
    const u = await computeWeights(pj, { weighting: 'uniform', backend: 'js' });
    const x = await computeWeights(pj, { weighting: 'max', backend: 'js' });
    expect([u.d, x.d]).toEqual([9, 9]);
    expect(sameFloats(u.embeddings, p.mean) && sameFloats(x.embeddings, p.max) && sameFloats(x.weights, p.maxShare)).toBe(true);
    const w = await computeWeights(pj, { weighting: 'unsupervised', backend: 'js' });
    expect(w.d).toBe(3);
    // a byte cap: kept when n·(2·D + M)·4 fits, absent otherwise; bad values rejected
    const per4 = 3 * (2 * 9 + m) * 4;
    expect((await extractFeatures(imgs, { ...opts, projectDim: 3, cacheDir, pooled: per4 })).pooled).toBeDefined();
    expect((await extractFeatures(imgs, { ...opts, projectDim: 3, cacheDir, pooled: per4 - 1 })).pooled).toBeUndefined();
    await expect(extractFeatures(imgs, { ...opts, projectDim: 3, pooled: -1 })).rejects.toThrow(RangeError);
    await expect(extractFeatures(imgs, { ...opts, projectDim: 3, pooled: 'yes' as never })).rejects.toThrow(RangeError);
    const bad = { ...pj, pooled: { ...p, mean: p.mean.subarray(1) } };
    await expect(computeWeights(bad, { weighting: 'uniform', backend: 'js' })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
  });
});

describe('npy codec', () => {
  it('round-trips and pads the header to 64 bytes', () => {
    const a = Float32Array.from({ length: 24 }, (_, i) => i / 3);
    const b = encodeNpy(a, [2, 3, 4]);
    expect((10 + (b[8]! | (b[9]! << 8))) % 64).toBe(0);
    const r = decodeNpy(b)!;
    expect(r.shape).toEqual([2, 3, 4]);
    expect(r.data).toEqual(a);
    expect(decodeNpy(new Uint8Array([1, 2, 3]))).toBeUndefined();
  });
});
