#!/usr/bin/env node
/**
 * Feature-extraction throughput on 100 MTD images (../shared/data/mtd), each stage separately:
 *   decode      read + sharp decode/orient/resize/crop + HWC u8 → NCHW f32 (concurrency = batch size)
 *   inference   onnxruntime-node, the default backbone's two layers (tensors pre-decoded)
 *   aggregate   3×3 avg-pool + bilinear upsample + concat (JS, one image at a time)
 *   end-to-end  extractFeatures (cache off): the pipelined whole
 * for batch sizes 1/8/32 and onnxruntime intra-op threads 1/2. Prints a table (images/second) with the load
 * average, since this machine is shared.
 *
 *   npx tsc -p tsconfig.json && node scripts/prepare-model.mjs && nice node benches/features.bench.mjs [--n 100]
 */
import { readdirSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
import { scriptArgs } from './args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const imp = (p) => import(pathToFileURL(path.join(root, 'dist/src', p)).href);
const { decodeImage, readImageBytes, toNCHW } = await imp('pipeline/image.js');
const { openBackbone, extractFeatures, clearSessions } = await imp('pipeline/features.js');
const { aggregatePatches } = await imp('pipeline/aggregate.js');

const { values } = scriptArgs(import.meta.url, { n: { type: 'string', default: '100' } });
const N = Number(values.n);
const mtd = path.resolve(root, '../shared/data/mtd');
const files = [];
for (const cls of readdirSync(mtd).filter((c) => c.startsWith('MT_')).sort()) {
  const d = path.join(mtd, cls, 'Imgs');
  files.push(...readdirSync(d).filter((f) => f.endsWith('.jpg')).sort().slice(0, 20).map((f) => path.join(d, f)));
}
const imgs = files.slice(0, N);
const S = 224;
const rows = [];
const ips = (n, ms) => +(n / (ms / 1000)).toFixed(1);

// decode
for (const bs of [1, 8, 32]) {
  const t0 = performance.now();
  for (let i = 0; i < imgs.length; i += bs) {
    const batch = imgs.slice(i, i + bs);
    const out = new Float32Array(batch.length * 3 * S * S);
    const raws = await Promise.all(batch.map(async (f) => decodeImage(await readImageBytes(f), f, { inputSize: S, resize: 256 })));
    raws.forEach((r, k) => toNCHW(r, out, k * 3 * S * S));
  }
  rows.push({ stage: 'decode', batch: bs, threads: '-', 'images/s': ips(imgs.length, performance.now() - t0) });
}

// pre-decoded tensors for inference
const tensors = [];
for (const f of imgs) {
  const t = new Float32Array(3 * S * S);
  toNCHW(await decodeImage(await readImageBytes(f), f), t, 0);
  tensors.push(t);
}
let maps;
for (const threads of [1, 2]) {
  const bs0 = await openBackbone({}, threads);
  for (const bs of [1, 8, 32]) {
    const batches = [];
    for (let i = 0; i < tensors.length; i += bs) {
      const k = Math.min(bs, tensors.length - i);
      const x = new Float32Array(k * 3 * S * S);
      for (let j = 0; j < k; j++) x.set(tensors[i + j], j * 3 * S * S);
      batches.push([x, k]);
    }
    await bs0.run(batches[0][0], batches[0][1]); // warm-up
    const t0 = performance.now();
    for (const [x, k] of batches) maps = await bs0.run(x, k);
    rows.push({ stage: 'inference', batch: bs, threads, 'images/s': ips(tensors.length, performance.now() - t0) });
  }
}

// aggregation (last inference batch's maps, image by image)
{
  const { fine, coarse } = maps;
  const m = fine.h * fine.w, d = fine.c + coarse.c;
  const out = new Float32Array(m * d);
  const fsz = fine.c * m, csz = coarse.c * coarse.h * coarse.w;
  let count = 0;
  const t0 = performance.now();
  while (count < imgs.length) {
    for (let k = 0; k < fine.n && count < imgs.length; k++, count++) {
      aggregatePatches({ ...fine, n: 1, data: fine.data.subarray(k * fsz, (k + 1) * fsz) }, { ...coarse, n: 1, data: coarse.data.subarray(k * csz, (k + 1) * csz) }, out);
    }
  }
  rows.push({ stage: `aggregate (M=${m}, D=${d})`, batch: '-', threads: 1, 'images/s': ips(count, performance.now() - t0) });
}

// end to end
for (const threads of [1, 2]) {
  for (const bs of [1, 8, 32]) {
    const t0 = performance.now();
    const bank = await extractFeatures(imgs, { batchSize: bs, threads, cacheDir: false });
    rows.push({ stage: 'end-to-end', batch: bs, threads, 'images/s': ips(bank.n, performance.now() - t0) });
  }
}
await clearSessions();
console.log(`features bench: ${imgs.length} MTD images, node ${process.version}, ${cpus().length} cores, load avg ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
console.table(rows);
