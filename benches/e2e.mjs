#!/usr/bin/env node
// End to end on MTD (issue 5): `clusterImages` on the 583 MTD images (392 defects + 191 MT_Free, K = 6) from the
// image files, with the default backbone and no feature cache (so decoding and inference are timed too), and the
// time and share of each stage. Not a test: it prints a table. Run after `npm run bootstrap`:
//   node benches/e2e.mjs [--references exact|auto|R] [--cache]   (default: exact, no cache)
// `--cache` uses the feature cache (features then cost ~nothing: the weights and clustering alone).
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = scriptArgs(import.meta.url, {
    references: { type: 'string', default: 'exact' },
    cache: { type: 'boolean', default: false },
    data: { type: 'string', default: path.resolve(root, '..', 'shared', 'data') },
});
const { clusterImages } = await import(path.join(root, 'dist', 'src', 'pipeline', 'run.js'));
const { evaluate } = await import(path.join(root, 'dist', 'src', 'pipeline', 'metrics.js'));

const sorted = (dir) => readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.jpg')).sort().map((f) => path.join(dir, f));
const d = path.join(opt.data, 'mtd');
const defects = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'].flatMap((c) => sorted(path.join(d, c, 'Imgs')));
const files = [...defects, ...sorted(path.join(d, 'MT_Free', 'Imgs')).slice(0, 191)];
const truth = files.map((f) => path.basename(path.dirname(path.dirname(f))));
const references = opt.references === 'exact' || opt.references === 'auto' ? opt.references : Number(opt.references);

let last = '';
const t0 = performance.now();
const r = await clusterImages(files, {
  k: 6, references, cacheDir: opt.cache ? path.join(root, '.cache', 'anomaly-clustering') /* cache root: features in <root>/features */ : false,
  onProgress: (p) => {
    const line = `${p.stage}${p.message ? ` (${p.message})` : ''}`;
    if (line !== last) process.stderr.write(`  ${((performance.now() - t0) / 1000).toFixed(1)} s: ${line}\n`);
    last = line;
  },
});
const wall = performance.now() - t0;
const m = evaluate(r.labels, truth);
console.log(`e2e MTD: ${r.n} images, K=6, references ${opt.references}, cache ${opt.cache ? 'on' : 'off'}; backend ${r.backend.name} ` +
  `(${r.backend.isa}, ${r.backend.threads} threads), ${os.cpus().length} cores, node ${process.version}`);
console.log('| stage | time | share |');
console.log('|---|---|---|');
for (const s of ['decode', 'features', 'weights', 'clustering']) {
  const ms = r.timings[s] ?? 0;
  console.log(`| ${s} | ${(ms / 1000).toFixed(1)} s | ${((100 * ms) / wall).toFixed(1)} % |`);
}
console.log(`| total (wall) | ${(wall / 1000).toFixed(1)} s | 100 % |`);
console.log(`NMI/ARI/F1 ${m.nmi.toFixed(3)}/${m.ari.toFixed(3)}/${m.f1.toFixed(3)}; approximations: ${r.approximations.join('; ') || 'none (exact)'}`);
