#!/usr/bin/env node
// Streamed feature banks (bounded memory, docs/performance.md): `clusterImages` on the MTD images (../shared/data, read in
// place) with the feature bank held in memory vs streamed from disk (a `memoryLimit` under twice the bank), one
// child process per run so each peak RSS is its own. Prints wall time per stage, peak RSS, the bank's size and
// whether both runs gave the same labels. Not a test. Features come from the feature cache when present (run
// `node benches/evaluate.mjs` once to fill it, or expect ≈1.5 min of ResNet-50 inference per run).
//   npx tsc -p . && node benches/stream.mjs [--weightings unsupervised,semi-supervised] [--limit-mb 256]
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = scriptArgs(import.meta.url, {
    weightings: { type: 'string', default: 'unsupervised,semi-supervised' },
    'limit-mb': { type: 'string', default: '256' },
    data: { type: 'string', default: path.resolve(root, '..', 'shared', 'data') },
    cache: { type: 'string', default: path.join(root, '.cache', 'anomaly-clustering') /* cache root: features in <root>/features */ },
    child: { type: 'string' },
});

const sorted = (dir) => readdirSync(dir).filter((f) => f.toLowerCase().endsWith('.jpg')).sort().map((f) => path.join(dir, f));
function mtd() {
  const d = path.join(opt.data, 'mtd');
  const defects = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'].flatMap((c) => sorted(path.join(d, c, 'Imgs')));
  const free = sorted(path.join(d, 'MT_Free', 'Imgs'));
  return { files: [...defects, ...free.slice(0, 191)], normals: free.slice(191, 223) };
}

if (opt.child) {
  const { weighting, memoryLimit } = JSON.parse(opt.child);
  const { clusterImages } = await import(path.join(root, 'dist', 'src', 'pipeline', 'run.js'));
  const { files, normals } = mtd();
  const t0 = performance.now();
  const r = await clusterImages(files, { k: 6, weighting, normals: weighting === 'semi-supervised' ? normals : undefined, features: { cacheDir: opt.cache, threads: 2 }, resources: { memoryLimit: memoryLimit ?? Infinity } });
  process.send({
    wall: performance.now() - t0, timings: r.timings, featureBank: r.featureBank, linkageFrom: r.linkageFrom,
    labels: [...r.labels], approximations: r.approximations, maxRssMiB: process.resourceUsage().maxRSS / 1024, m: r.gridH * r.gridW,
  });
} else {
  const limit = Number(opt['limit-mb']) * 2 ** 20;
  const runOne = (weighting, memoryLimit) => new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ['--child', JSON.stringify({ weighting, memoryLimit }), '--data', opt.data, '--cache', opt.cache]);
    let got;
    child.on('message', (m) => (got = m));
    child.on('exit', (code) => (code === 0 && got ? resolve(got) : reject(new Error(`${weighting}: child exited with ${code}`))));
  });
  const n = mtd().files.length;
  console.log(`stream bench: MTD ${n} images, K=6; streamed run with memoryLimit = ${opt['limit-mb']} MiB (bank streamed above half of it)`);
  console.log('| weighting | bank | features+decode | weights | clustering | total | peak RSS | same labels | approximations |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const weighting of opt.weightings.split(',')) {
    const a = await runOne(weighting, undefined);
    const b = await runOne(weighting, limit);
    const same = a.labels.every((v, i) => v === b.labels[i]);
    for (const r of [a, b]) {
      const s = (x) => `${((x ?? 0) / 1000).toFixed(1)} s`;
      console.log(`| ${weighting} | ${r.featureBank} (${((n * r.m * 256 * 4) / 2 ** 20).toFixed(0)} MiB) | ${s((r.timings.decode ?? 0) + (r.timings.features ?? 0))} | ` +
        `${s(r.timings.weights)} | ${s(r.timings.clustering)} (${r.linkageFrom}) | ${s(r.wall)} | ${r.maxRssMiB.toFixed(0)} MiB | ${r === b ? (same ? 'yes' : 'NO') : ''} | ${r.approximations.join('; ').slice(0, 80)} |`);
    }
  }
}
