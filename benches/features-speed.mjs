#!/usr/bin/env node
// Feature extraction before/after (docs/performance.md §2), interleaved in one run so that the shared machine's load hits every
// variant alike: `extractFeatures` (cache off, defaults: batch 8, threads = cores) from the image files, per set:
//   before  the JS aggregation (ANOMALY_CLUSTERING_JS_AGGREGATION=1), fp32: the pipeline before the in-graph aggregation
//   after   the aggregation in the onnxruntime graph, fp32 (the default now; same features up to float rounding)
//   fast    after + the int8-quantised backbone (`backbone: {precision: 'int8'}`, CLI --fast)
// Each variant runs `--reps` times (after one warm-up pass of each); the table gives images/s (total images / total
// time) and the speed-up over `before`. Sets: mtd (MTD defects + MT_Free as in the e2e bench), bottle (MVTec bottle
// test, 900×900 PNG). `--n N` keeps N images per set, evenly spaced.
//   npx tsc -p tsconfig.json && nice node benches/features-speed.mjs [--sets mtd,bottle] [--n 64] [--reps 2]
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = scriptArgs(import.meta.url, {
  sets: { type: 'string', default: 'mtd,bottle' },
  n: { type: 'string', default: '64' },
  reps: { type: 'string', default: '2' },
  variants: { type: 'string', default: 'before,after,fast' },
  data: { type: 'string', default: path.resolve(root, '..', 'shared', 'data') },
});
const { extractFeatures, JS_AGGREGATION_ENV } = await import(path.join(root, 'dist', 'src', 'pipeline', 'features.js'));
const byExt = (dir, ext) => readdirSync(dir).filter((f) => f.toLowerCase().endsWith(ext)).sort().map((f) => path.join(dir, f));
const SETS = {
  mtd: () => {
    const d = path.join(opt.data, 'mtd');
    return [...['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'].flatMap((c) => byExt(path.join(d, c, 'Imgs'), '.jpg')),
      ...byExt(path.join(d, 'MT_Free', 'Imgs'), '.jpg').slice(0, 191)];
  },
  bottle: () => ['broken_large', 'broken_small', 'contamination', 'good'].flatMap((c) => byExt(path.join(opt.data, 'mvtec-bottle', 'test', c), '.png')),
};
const VARIANTS = {
  before: { js: '1', options: {} },
  after: { js: '0', options: {} },
  fast: { js: '0', options: { backbone: { precision: 'int8' } } },
};
const variants = opt.variants.split(',');
const reps = Number(opt.reps);
const keep = setInterval(() => undefined, 1000); // the inference workers are unref'd
const rows = [];
for (const s of opt.sets.split(',')) {
  const all = SETS[s]();
  const n = Math.min(all.length, Number(opt.n));
  const files = Array.from({ length: n }, (_, i) => all[Math.floor((i * all.length) / n)]);
  const ms = Object.fromEntries(variants.map((v) => [v, 0]));
  for (let r = 0; r <= reps; r++) {
    for (const v of variants) {
      process.env[JS_AGGREGATION_ENV] = VARIANTS[v].js;
      const t0 = performance.now();
      await extractFeatures(r === 0 ? files.slice(0, 8) : files, { cacheDir: false, ...VARIANTS[v].options });
      if (r > 0) ms[v] += performance.now() - t0;
    }
  }
  const ips = (v) => (reps * n) / (ms[v] / 1000);
  rows.push(`| ${s} (${n} images) | ${variants.map((v) => `${ips(v).toFixed(1)}${v === 'before' ? '' : ` (${(ips(v) / ips('before')).toFixed(2)}×)`}`).join(' | ')} |`);
}
clearInterval(keep);
console.log(`features: images/s, ${reps} interleaved passes; ${os.cpus().length} cores, load avg ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}, node ${process.version}`);
console.log(`| set | ${variants.join(' | ')} |`);
console.log(`|---|${variants.map(() => '---|').join('')}`);
for (const r of rows) console.log(r);
process.exit(0);
