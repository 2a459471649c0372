#!/usr/bin/env node
/**
 * @file The price of each approximation of the patch weights (docs/method.md "Cost", docs/scale.md): speed-up and change of
 * NMI/ARI/F1 against the exact setting, on the shared data (read in place, features from the cache of
 * benches/evaluate.mjs), Ward, default τ.
 *
 * - `refs`: unsupervised scores against R random reference images per image (MVTec bottle, 83 images: exact = 82),
 *   a few seeds per R (the spread shows the noise of the approximation itself).
 * - `dim`: the feature projection (`projectDim` 64, 128, 256 vs 768 = no projection), exact unsupervised scores.
 * - `f16`: the semi-supervised normal bank stored as f16 (MVTec: 83 train/good images = 65 072 patches).
 * - `coreset`: greedy k-center coreset of the normal bank (1 %, 5 %, 10 %, 100 %), and the projection the
 *   selection runs on (`--coreset-dims`).
 * - `mtd` (optional, slow): semi-supervised on MTD 392+191 (K=6) with `--mtd-normals` normals, coreset vs exact.
 *
 *   npx tsc -p tsconfig.json && nice node benches/approx.mjs [--parts refs,dim,f16,coreset] [--seeds 3]
 *        [--refs 4,8,16,32] [--dims 64,128,256,768] [--coresets 0.01,0.05,0.1,1] [--coreset-dims 32,64,128,0]
 *        [--mtd-normals 192] [--backend native] [--json out.json]
 */
import { readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { extractFeatures, DEFAULT_PROJECT_DIM } = await dist('src/pipeline/features.js');
const { patchScores, bagOffsets, meanWithinStd, DEFAULT_TAU } = await dist('src/pipeline/weighting.js');
const { kCenterGreedy, DEFAULT_CORESET_DIM } = await dist('src/pipeline/approx.js');
const { evaluate } = await dist('src/pipeline/metrics.js');
const { getBackend } = await dist('bindings/select.js');

const { values: opt } = scriptArgs(import.meta.url, {
    parts: { type: 'string', default: 'refs,dim,f16,coreset' },
    seeds: { type: 'string', default: '3' },
    refs: { type: 'string', default: '4,8,16,32' },
    dims: { type: 'string', default: '64,128,256,768' },
    coresets: { type: 'string', default: '0.01,0.05,0.1,1' },
    'coreset-dims': { type: 'string', default: '32,64,128,0' },
    'mtd-normals': { type: 'string', default: '192' },
    backend: { type: 'string' },
    data: { type: 'string', default: path.resolve(root, '..', 'shared', 'data') },
    cache: { type: 'string', default: path.join(root, '.cache', 'anomaly-clustering') /* cache root: features in <root>/features */ },
    json: { type: 'string' },
});
const parts = new Set(opt.parts.split(','));
const SEEDS = Number(opt.seeds);
const nums = (s) => s.split(',').map(Number);
const be = getBackend(opt.backend);
const log = (s) => process.stderr.write(`${s}\n`);
const tauRel = DEFAULT_TAU.relative;
const sorted = (dir, ext) => readdirSync(dir).filter((f) => ext.some((e) => f.toLowerCase().endsWith(e))).sort().map((f) => path.join(dir, f));

function mvtec() {
  const t = path.join(opt.data, 'mvtec-bottle', 'test');
  const files = readdirSync(t).sort().flatMap((c) => sorted(path.join(t, c), ['.png']));
  return { files, truth: files.map((f) => path.basename(path.dirname(f))), normals: sorted(path.join(opt.data, 'mvtec-bottle', 'train', 'good'), ['.png']) };
}
function mtd6() {
  const d = path.join(opt.data, 'mtd');
  const defects = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'].flatMap((c) => sorted(path.join(d, c, 'Imgs'), ['.jpg']));
  const free = sorted(path.join(d, 'MT_Free', 'Imgs'), ['.jpg']);
  const files = [...defects, ...free.slice(0, 191)];
  return { files, truth: files.map((f) => path.basename(path.dirname(path.dirname(f)))), normals: free.slice(191, 191 + Number(opt['mtd-normals'])) };
}

const banks = new Map();
async function bank(files, projectDim = DEFAULT_PROJECT_DIM) {
  const key = `${projectDim}\n${files.join('\n')}`;
  if (!banks.has(key)) {
    const t = performance.now();
    const b = await extractFeatures(files, { cacheDir: opt.cache, threads: 2, projectDim: projectDim >= 768 ? false : projectDim });
    log(`  features: ${b.n} images, M=${b.m}, D=${b.d} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    banks.set(key, b);
  }
  return banks.get(key);
}

async function metrics(b, scores, truth) {
  const k = new Set(truth).size;
  const offsets = bagOffsets(b.n, b.m);
  const w = be.softmaxWeights(scores, offsets, tauRel * meanWithinStd(scores, b.n, b.m));
  const emb = be.weightedMean(b.data, offsets, b.d, w);
  const Z = await be.linkageAsync(await be.pdistAsync(emb, b.n, b.d, false), b.n, 'ward');
  return evaluate(be.cutK(Z, b.n, k), truth);
}

/** Mean relative error of scores against the exact ones: Σ|s − s*| / Σ s*. */
function relErr(s, ref) {
  let a = 0;
  let r = 0;
  for (let i = 0; i < s.length; i++) {
    a += Math.abs(s[i] - ref[i]);
    r += Math.abs(ref[i]);
  }
  return a / r;
}

/**
 * [value, ms]: the process CPU time (user + system, all threads) of `f`, in ms. Robust to other processes on a
 * shared machine (wall time is also recorded in `wall`), and for the 2-thread kernels ≈ 2 × the wall time of an
 * idle machine.
 */
const wall = [];
async function timed(f) {
  const t = performance.now();
  const c = process.cpuUsage();
  const v = await f();
  const u = process.cpuUsage(c);
  wall.push(performance.now() - t);
  return [v, (u.user + u.system) / 1000];
}

const f3 = (x) => x.toFixed(3);
const sgn = (x) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(3)}`;
const mean = (xs) => xs.reduce((a, x) => a + x, 0) / xs.length;
const sd = (xs) => Math.sqrt(mean(xs.map((x) => (x - mean(xs)) ** 2)));
const tables = [];
const json = {};
function table(title, header, rows) {
  tables.push(`### ${title}`, '', `| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`), '');
  log(tables.slice(-rows.length - 4).join('\n'));
}
/** Cells: metrics (mean ± sd over runs when several) and their change vs exact. */
function cells(ms, ex) {
  const one = (key) => {
    const xs = ms.map((m) => m[key]);
    const v = mean(xs);
    return `${f3(v)}${xs.length > 1 ? ` ±${sd(xs).toFixed(3)}` : ''} (${sgn(v - ex[key])})`;
  };
  return ['nmi', 'ari', 'f1'].map(one);
}

log(`backend ${be.name}/${be.isa}, ${be.threads} threads; τ = ${tauRel}·σ; Ward`);
const mv = mvtec();
const b256 = await bank(mv.files);
let exactUnsup;
if (parts.has('refs') || parts.has('dim')) {
  log('\n== MVTec unsupervised, exact');
  const [s, ms] = await timed(() => patchScores(b256, 'unsupervised', { backend: be }));
  exactUnsup = { s, ms, m: await metrics(b256, s, mv.truth) };
  const work = b256.n ** 2 * b256.m ** 2 * b256.d;
  log(`  exact: ${(ms / 1000).toFixed(1)} s CPU (${(wall.at(-1) / 1000).toFixed(1)} s wall), ${work.toExponential(2)} multiply-adds = ${(work / (ms / 1000)).toExponential(2)} /s per CPU-second`);
  json.exactUnsup = { ms, work, rate: work / (ms / 1000), ...exactUnsup.m };
}

if (parts.has('refs')) {
  log('\n== MVTec unsupervised, R references');
  const ex = exactUnsup;
  const rows = [[`exact (${b256.n - 1})`, f3(ex.m.nmi), f3(ex.m.ari), f3(ex.m.f1), '0', `${(ex.ms / 1000).toFixed(1)} s`, '1.0×']];
  json.refs = [];
  for (const R of nums(opt.refs)) {
    const ms = [];
    const errs = [];
    const times = [];
    for (let seed = 0; seed < SEEDS; seed++) {
      const [s, t] = await timed(() => patchScores(b256, 'unsupervised', { backend: be, references: R, seed }));
      ms.push(await metrics(b256, s, mv.truth));
      errs.push(relErr(s, ex.s));
      times.push(t);
      log(`  R=${R} seed ${seed}: NMI ${f3(ms.at(-1).nmi)} err ${errs.at(-1).toFixed(4)} ${(t / 1000).toFixed(1)} s`);
    }
    json.refs.push({ R, ms, errs, times });
    rows.push([`R = ${R}`, ...cells(ms, ex.m), mean(errs).toFixed(4), `${(mean(times) / 1000).toFixed(1)} s`, `${(ex.ms / mean(times)).toFixed(1)}×`]);
  }
  table(`MVTec bottle (83 images, K=4), unsupervised: R random reference images per image (${SEEDS} seeds: mean ±sd, change vs exact)`,
    ['references', 'NMI', 'ARI', 'F1', 'score rel. error', 'weights CPU', 'speed-up'], rows);
}

if (parts.has('dim')) {
  log('\n== MVTec unsupervised, projectDim');
  const runs = [];
  for (const dim of nums(opt.dims)) {
    const b = dim === DEFAULT_PROJECT_DIM ? b256 : await bank(mv.files, dim);
    const [s, ms] = dim === DEFAULT_PROJECT_DIM ? [exactUnsup.s, exactUnsup.ms] : await timed(() => patchScores(b, 'unsupervised', { backend: be }));
    runs.push({ dim: b.d, ms, m: await metrics(b, s, mv.truth) });
    log(`  D=${b.d}: NMI ${f3(runs.at(-1).m.nmi)} ${(ms / 1000).toFixed(1)} s`);
  }
  const full = runs.find((r) => r.dim >= 768) ?? runs.at(-1);
  json.dims = runs;
  table('MVTec bottle, unsupervised exact, feature projection (`projectDim`; change vs 768 = no projection)',
    ['D', 'NMI', 'ARI', 'F1', 'weights CPU', 'speed-up vs 768'],
    runs.map((r) => [`${r.dim}${r.dim === DEFAULT_PROJECT_DIM ? ' (default)' : ''}`, ...cells([r.m], full.m), `${(r.ms / 1000).toFixed(1)} s`, `${(full.ms / r.ms).toFixed(1)}×`]));
}

let exactSemi;
const nb = parts.has('f16') || parts.has('coreset') ? await bank(mv.normals) : undefined;
if (nb) {
  log(`\n== MVTec semi-supervised, exact (${nb.n} normals, ${nb.n * nb.m} patches)`);
  const [s, ms] = await timed(() => patchScores(b256, 'semi-supervised', { backend: be, normals: nb }));
  exactSemi = { s, ms, m: await metrics(b256, s, mv.truth) };
  log(`  exact: NMI ${f3(exactSemi.m.nmi)} ${(ms / 1000).toFixed(1)} s`);
}

if (parts.has('f16')) {
  const [s, ms] = await timed(() => patchScores(b256, 'semi-supervised', { backend: be, normals: nb, bankPrecision: 'f16' }));
  let maxRel = 0;
  for (let i = 0; i < s.length; i++) maxRel = Math.max(maxRel, Math.abs(s[i] - exactSemi.s[i]) / Math.max(1e-6, exactSemi.s[i]));
  const m = await metrics(b256, s, mv.truth);
  const mb = (x) => `${(x / 2 ** 20).toFixed(1)} MiB`;
  json.f16 = { ms, maxRel, meanRel: relErr(s, exactSemi.s), ...m };
  table(`MVTec bottle, semi-supervised, normal bank (${nb.n * nb.m} × ${nb.d}) precision`,
    ['bank', 'NMI', 'ARI', 'F1', 'score error (mean / max rel.)', 'bank memory', 'weights CPU'],
    [['f32', ...cells([exactSemi.m], exactSemi.m), '0', mb(nb.data.byteLength), `${(exactSemi.ms / 1000).toFixed(1)} s`],
      ['f16', ...cells([m], exactSemi.m), `${relErr(s, exactSemi.s).toExponential(1)} / ${maxRel.toExponential(1)}`, mb(nb.data.byteLength / 2), `${(ms / 1000).toFixed(1)} s`]]);
}

if (parts.has('coreset')) {
  log('\n== MVTec semi-supervised, coreset');
  const P = nb.n * nb.m;
  const rows = [];
  json.coreset = [];
  for (const frac of nums(opt.coresets)) {
    if (frac >= 1) {
      rows.push(['100 % (exact)', P, ...cells([exactSemi.m], exactSemi.m), '0', '–', `${(exactSemi.ms / 1000).toFixed(1)} s`, '1.0×']);
      continue;
    }
    const ms = [];
    const errs = [];
    const times = [];
    const sel = [];
    for (let seed = 0; seed < SEEDS; seed++) {
      const [s, t] = await timed(() => patchScores(b256, 'semi-supervised', { backend: be, normals: nb, coreset: frac, seed }));
      // time of the selection alone (same call as inside patchScores)
      const [, ts] = await timed(() => kCenterGreedy(nb.data, P, nb.d, Math.ceil(frac * P), { seed, backend: be }));
      ms.push(await metrics(b256, s, mv.truth));
      errs.push(relErr(s, exactSemi.s));
      times.push(t);
      sel.push(ts);
      log(`  ${frac * 100} % seed ${seed}: NMI ${f3(ms.at(-1).nmi)} err ${errs.at(-1).toFixed(4)} ${(t / 1000).toFixed(1)} s (selection ${(ts / 1000).toFixed(1)} s)`);
    }
    json.coreset.push({ frac, ms, errs, times, sel });
    rows.push([`${frac * 100} %`, Math.ceil(frac * P), ...cells(ms, exactSemi.m), mean(errs).toFixed(4), `${(mean(sel) / 1000).toFixed(1)} s`,
      `${(mean(times) / 1000).toFixed(1)} s`, `${(exactSemi.ms / mean(times)).toFixed(1)}×`]);
  }
  table(`MVTec bottle, semi-supervised: greedy k-center coreset of the ${P} normal patches (selected on a ${DEFAULT_CORESET_DIM}-dim projection; ${SEEDS} seeds)`,
    ['coreset', 'patches', 'NMI', 'ARI', 'F1', 'score rel. error', 'selection CPU', 'weights CPU (incl. selection)', 'speed-up'], rows);

  const drows = [];
  const frac = 0.05;
  for (const dim of nums(opt['coreset-dims'])) {
    const ms = [];
    const errs = [];
    const times = [];
    for (let seed = 0; seed < SEEDS; seed++) {
      const [s, t] = await timed(() => patchScores(b256, 'semi-supervised', { backend: be, normals: nb, coreset: frac, seed, coresetDim: dim > 0 ? dim : false }));
      ms.push(await metrics(b256, s, mv.truth));
      errs.push(relErr(s, exactSemi.s));
      times.push(t);
    }
    drows.push([dim > 0 ? `${dim}${dim === DEFAULT_CORESET_DIM ? ' (default)' : ''}` : `${nb.d} (no projection)`, ...cells(ms, exactSemi.m), mean(errs).toFixed(4), `${(mean(times) / 1000).toFixed(1)} s`]);
    log(`  dim ${dim}: ${drows.at(-1).join(' ')}`);
  }
  table(`MVTec bottle, semi-supervised, 5 % coreset: dimension of the projection the selection runs on (${SEEDS} seeds)`,
    ['selection dim', 'NMI', 'ARI', 'F1', 'score rel. error', 'weights CPU (incl. selection)'], drows);
}

if (parts.has('mtd')) {
  const set = mtd6();
  log(`\n== MTD 392+191 (K=6), semi-supervised, ${set.normals.length} normals`);
  const b = await bank(set.files);
  const nbm = await bank(set.normals);
  const [s, ms] = await timed(() => patchScores(b, 'semi-supervised', { backend: be, normals: nbm }));
  const ex = await metrics(b, s, set.truth);
  const rows = [['100 % (exact)', ...cells([ex], ex), '0', `${(ms / 1000).toFixed(1)} s`, '1.0×']];
  for (const frac of nums(opt.coresets).filter((f) => f < 1 && f <= 0.1)) {
    const [sc, t] = await timed(() => patchScores(b, 'semi-supervised', { backend: be, normals: nbm, coreset: frac }));
    rows.push([`${frac * 100} %`, ...cells([await metrics(b, sc, set.truth)], ex), relErr(sc, s).toFixed(4), `${(t / 1000).toFixed(1)} s`, `${(ms / t).toFixed(1)}×`]);
    log(`  ${rows.at(-1).join(' ')}`);
  }
  table(`MTD 392+191 (K=6), semi-supervised, coreset of the ${nbm.n * nbm.m} patches of ${nbm.n} normals (seed 0)`,
    ['coreset', 'NMI', 'ARI', 'F1', 'score rel. error', 'weights CPU', 'speed-up'], rows);
}

process.stdout.write(`Times are process CPU seconds (all threads; ≈ 2 × wall time on an idle 2-core machine).\nBackend ${be.name}/${be.isa} (${be.threads} threads); features: default (l2, projectDim ${DEFAULT_PROJECT_DIM}) unless stated; τ = ${tauRel}·σ; Ward.\n\n${tables.join('\n')}\n`);
if (opt.json) writeFileSync(opt.json, JSON.stringify(json, null, 1));
