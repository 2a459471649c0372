#!/usr/bin/env node
// End to end (issues 5, 17): `clusterImages` from the image files with the default backbone and no feature cache
// (so decoding and inference are timed too), against the same method in the Python stack (benches/e2e_peer.py:
// onnxruntime + numpy nearest-patch search + fastcluster Ward on the same ONNX file, layers, images, projection,
// whitening, reference images and temperature), in the same run. Per set: the time of each stage, images/s and
// NMI of both. Not a test: it prints tables. Run after `npm run bootstrap`:
//   node benches/e2e.mjs [--sets mtd,bottle] [--n N] [--references auto|exact|R] [--no-peer] [--fast] [--cache]
// Sets: mtd = the 583 MTD images (392 defects + 191 MT_Free, K = 6); bottle = MVTec bottle test (83, K = 4).
// `--n N` keeps N images of each set (evenly spaced over the sorted list, so every class stays; quick runs).
// `--references` as ClusterOptions.weights.references (default auto, the library's default; the peer gets the R it chose).
// `--fast` also runs ours with the int8 backbone (`backbone: {precision: 'int8'}`, CLI --fast), as a third column.
// `--cache` uses the feature cache for ours (features then cost ~nothing; the peer always computes them).
// The peer's Python packages come from scripts/bench-deps.sh (a venv under target/, created on first use).
// Our decode and features overlap (pipelined), so our stage times add up to more than the wall time.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = scriptArgs(import.meta.url, {
  sets: { type: 'string', default: 'mtd,bottle' },
  n: { type: 'string' },
  references: { type: 'string', default: 'auto' },
  peer: { type: 'boolean', default: true },
  'no-peer': { type: 'boolean', default: false },
  cache: { type: 'boolean', default: false },
  fast: { type: 'boolean', default: false },
  data: { type: 'string', default: path.resolve(root, '..', 'shared', 'data') },
});
const dist = (p) => import(path.join(root, 'dist', 'src', p));
const { clusterImages } = await dist('pipeline/run.js');
const { evaluate } = await dist('pipeline/metrics.js');
const { resolveBackbone, DEFAULT_PROJECT_DIM, DEFAULT_LAYER_NORM, openBackbone, clearSessions } = await dist('pipeline/features.js');
const { autoReferences } = await dist('pipeline/approx.js');
const { DEFAULT_WHITEN } = await dist('pipeline/whiten.js');
const { DEFAULT_TAU } = await dist('pipeline/weighting.js');

const byExt = (dir, ext) => readdirSync(dir).filter((f) => f.toLowerCase().endsWith(ext)).sort().map((f) => path.join(dir, f));
const SETS = {
  mtd: () => {
    const d = path.join(opt.data, 'mtd');
    const defects = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'].flatMap((c) => byExt(path.join(d, c, 'Imgs'), '.jpg'));
    const files = [...defects, ...byExt(path.join(d, 'MT_Free', 'Imgs'), '.jpg').slice(0, 191)];
    return { title: 'MTD', k: 6, files, truth: files.map((f) => path.basename(path.dirname(path.dirname(f)))) };
  },
  bottle: () => {
    const t = path.join(opt.data, 'mvtec-bottle', 'test');
    const files = ['broken_large', 'broken_small', 'contamination', 'good'].flatMap((c) => byExt(path.join(t, c), '.png'));
    return { title: 'MVTec bottle test', k: 4, files, truth: files.map((f) => path.basename(path.dirname(f))) };
  },
};
const sets = opt.sets.split(',').map((s) => {
  if (!SETS[s]) { process.stderr.write(`unknown set ${s} (mtd, bottle)\n`); process.exit(2); }
  return [s, SETS[s]()];
});
const runPeer = opt.peer && !opt['no-peer'];
const threads = os.availableParallelism();
const tau = DEFAULT_TAU;
if (typeof tau !== 'object' || (tau.spread ?? 'image') !== 'image') throw new Error('e2e_peer.py implements a per-image relative τ only');

let py;
if (runPeer) {
  py = execFileSync('bash', [path.join(root, 'scripts', 'bench-deps.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').pop();
  py = path.resolve(root, py);
}
let headerDone = false;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'ac-e2e-'));
// clearSessions waits for the (unref'd) inference worker to exit: keep the event loop alive meanwhile.
const release = async () => { const keep = setInterval(() => undefined, 1000); try { await clearSessions(); } finally { clearInterval(keep); } };
const fmt = (s) => (s >= 10 ? s.toFixed(1) : s.toFixed(2));
const out = [];
for (const [name, set] of sets) {
  let { files, truth } = set;
  if (opt.n) {
    const n = Math.min(files.length, Number(opt.n));
    const idx = Array.from({ length: n }, (_, i) => Math.floor((i * files.length) / n));
    files = idx.map((i) => files[i]); truth = idx.map((i) => truth[i]);
  }
  const k = Math.min(set.k, new Set(truth).size);
  const refOpt = opt.references === 'exact' || opt.references === 'auto' ? opt.references : Number(opt.references);
  // ours (a fresh session: model loading is counted, as for the peer)
  const runOurs = async (tag, backbone) => {
    await release();
    const t0 = performance.now();
    const r = await clusterImages(files, {
      k, weights: { references: refOpt },
      features: { cacheDir: opt.cache ? path.join(root, '.cache', 'anomaly-clustering') /* cache root */ : false, backbone },
      onProgress: (() => { let last = ''; return (p) => {
        const line = `${p.stage}${p.message ? ` (${p.message})` : ''}`;
        if (line !== last) process.stderr.write(`  [${name} ${tag}] ${((performance.now() - t0) / 1000).toFixed(1)} s: ${line}\n`);
        last = line;
      }; })(),
    });
    const wall = (performance.now() - t0) / 1000;
    return { r, wall, t: Object.fromEntries(['decode', 'features', 'weights', 'clustering'].map((s) => [s, (r.timings[s] ?? 0) / 1000])), m: evaluate(r.labels, truth) };
  };
  const ours = await runOurs('ours', undefined);
  const r = ours.r;
  const fast = opt.fast ? await runOurs('ours --fast', { precision: 'int8' }) : undefined;
  // the same configuration for the peer
  const bs = await openBackbone({}, threads);
  const bb = resolveBackbone({});
  const dRaw = bs.fineShape[0] + bs.coarseShape[0];
  const m = bs.fineShape[1] * bs.fineShape[2];
  const d = DEFAULT_PROJECT_DIM < dRaw ? DEFAULT_PROJECT_DIM : dRaw;
  const R = refOpt === 'exact' ? undefined : refOpt === 'auto' ? autoReferences(files.length, m, d).references : refOpt;
  let peer;
  if (runPeer) {
    if (bb.fit !== 'stretch') throw new Error(`e2e_peer.py implements fit 'stretch' only, the default is ${bb.fit}`);
    const job = {
      files, k, model: bb.modelPath, layers: [bs.fine, bs.coarse], inputSize: bb.inputSize, mean: bb.mean, std: bb.std,
      batchSize: 8, threads, layerNorm: DEFAULT_LAYER_NORM, dRaw, projectDim: d < dRaw ? d : 0, projectSeed: 0,
      references: R ?? null, seed: 0, whiten: DEFAULT_WHITEN, tauRelative: tau.relative,
    };
    const jf = path.join(tmp, `${name}.json`);
    writeFileSync(jf, JSON.stringify(job));
    process.stderr.write(`  [${name} peer] running ${path.relative(root, py)} benches/e2e_peer.py …\n`);
    const p0 = performance.now();
    const res = JSON.parse(execFileSync(py, [path.join(root, 'benches', 'e2e_peer.py'), jf], { encoding: 'utf8', maxBuffer: 1 << 26 }).trim().split('\n').pop());
    const pwall = (performance.now() - p0) / 1000;
    peer = { wall: pwall, t: res.timings, m: evaluate(Int32Array.from(res.labels), truth), versions: res.versions };
  }
  out.push({ name, title: set.title, n: files.length, k, R, ours, peer, fast, backend: r.backend });
  if (!headerDone) {
    headerDone = true;
    console.log(`e2e: ${os.cpus().length} cores (load avg ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}), node ${process.version}, ` +
      `backend ${out[0].backend.name} (${out[0].backend.isa}, ${out[0].backend.threads} threads); feature cache ${opt.cache ? 'on' : 'off'}`);
    if (out[0].peer) console.log(`peer: Python ${Object.entries(out[0].peer.versions).map(([a, b]) => `${a} ${b}`).join(', ')}`);
  }
  print(out.at(-1)); // each set's table as soon as it is done
}
rmSync(tmp, { recursive: true, force: true });
await release();

function print(o) {
  console.log(`\n${o.title}: ${o.n} images, K=${o.k}, references ${o.R ?? 'exact'}`);
  const cols = [['ours', o.ours], ...(o.peer ? [['Python peer', o.peer]] : []), ...(o.fast ? [['ours --fast (int8)', o.fast]] : [])];
  const ratio = (a, b) => (a >= 0.05 ? `${(b / a).toFixed(2)}×` : '—');
  console.log(`| stage | ${cols.map(([c]) => c).join(' | ')} |${o.peer ? ' peer / ours |' : ''}${o.peer && o.fast ? ' peer / fast |' : ''}`);
  console.log(`|---|${cols.map(() => '---|').join('')}${o.peer ? '---|' : ''}${o.peer && o.fast ? '---|' : ''}`);
  const line = (label, get, fmtv) => console.log(`| ${label} | ${cols.map(([, c]) => fmtv(get(c))).join(' | ')} |` +
    `${o.peer ? ` ${ratio(get(o.ours), get(o.peer))} |` : ''}${o.peer && o.fast ? ` ${ratio(get(o.fast), get(o.peer))} |` : ''}`);
  for (const s of ['decode', 'features', 'weights', 'clustering']) line(s, (c) => c.t[s], (v) => `${fmt(v)} s`);
  if (o.peer) console.log(`| (peer: model load) | ${cols.map(([c, v]) => (c === 'Python peer' ? `${fmt(v.t.load)} s` : '(in features)')).join(' | ')} |`);
  line('total (wall)', (c) => c.wall, (v) => `${fmt(v)} s`);
  console.log(`| images/s | ${cols.map(([, c]) => (o.n / c.wall).toFixed(2)).join(' | ')} |`);
  const q = (m) => `${m.nmi.toFixed(3)}/${m.ari.toFixed(3)}/${m.f1.toFixed(3)}`;
  console.log(`| NMI/ARI/F1 | ${cols.map(([, c]) => q(c.m)).join(' | ')} |`);
}
