#!/usr/bin/env node
/**
 * @file The evaluation protocol of ALGORITHM.md §5 on the shared data (../shared/data, read in place):
 * MVTec AD bottle (test split, 'good' kept as a class, K=4; semi-supervised normals = the 83 train/good images),
 * MTD 392 defects + 191 MT_Free (K=6) and defects only (K=5) (semi-supervised normals = other MT_Free images,
 * disjoint from the clustered ones). Weightings: uniform, max, unsupervised, semi-supervised, at the default τ and
 * across a τ sweep (the patch scores are computed once per set; only the softmax changes with τ).
 * Prints NMI/ARI/F1 next to the reference numbers of ALGORITHM.md §6, plus per-stage timings.
 *
 *   npx tsc -p tsconfig.json && nice node benches/evaluate.mjs [--sets mvtec,mtd6,mtd5] [--references auto|R]
 *        [--mtd-normals 192] [--taus 0.25,0.5,1,2,4] [--backend native] [--json out.json] [--seeds 0,1,2]
 *        [--layer-norm l2|none] [--project-dim 256|0] [--project-seed 0]   (feature post-processing; default = the library's)
 *        [--model x.onnx|embedded-id --layers a,b [--mean r,g,b --std r,g,b]]   (another backbone / layers)
 *        [--fit crop|stretch|pad] [--input-size 224]   (preprocessing geometry; default = the library's)
 *        [--tau-spread image|set]   (unit of the relative τ: each image's score std, or their mean; default = the library's)
 *        [--embedding-norm l2-center-l2|center-l2|none]   (normalisation of the image embeddings before Ward; default = the library's)
 *        [--precision fp32|int8]   (int8: the quantised fast mode of the default backbone)
 *        [--whiten 1|none]   (shrinkage of the patch whitening of the weighted modes, or none; default = the library's)
 *
 * `--references auto` (default) applies the library's rule to the unsupervised scores: exact up to 1e13
 * multiply-adds (MVTec), else 32 random reference images per image (the MTD sets; exact there is O(N²M²D),
 * ≈1.6e14 multiply-adds for 583 images). `--references R` uses R references on the MTD sets (MVTec stays exact);
 * the effect of 32 (or R) references on MVTec is measured and printed. `--seeds 0,1,2` runs everything once per
 * random-projection seed and prints mean ± sd per row (single rows move by up to ±0.1 NMI with the seed).
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { extractFeatures, DEFAULT_LAYER_NORM, DEFAULT_PROJECT_DIM } = await dist('src/pipeline/features.js');
const { patchScores, computeWeights, bagOffsets, meanWithinStd, perImageStandardised, checkTau, DEFAULT_TAU } = await dist('src/pipeline/weighting.js');
const { evaluate } = await dist('src/pipeline/metrics.js');
const { getBackend } = await dist('bindings/select.js');
const { autoReferences, DEFAULT_AUTO_REFERENCES } = await dist('src/pipeline/approx.js');
const { normaliseEmbeddings, checkEmbeddingNorm, DEFAULT_EMBEDDING_NORM } = await dist('src/pipeline/embedding-norm.js');
const { fitWhitening, whitenBank, checkWhiten, DEFAULT_WHITEN } = await dist('src/pipeline/whiten.js');

const { values: opt } = scriptArgs(import.meta.url, {
    sets: { type: 'string', default: 'mvtec,mtd6,mtd5' },
    references: { type: 'string', default: 'auto' },
    'mtd-normals': { type: 'string', default: '192' },
    seeds: { type: 'string' },
    taus: { type: 'string', default: '0.25,0.5,1,2,4,8,16' },
    backend: { type: 'string' },
    data: { type: 'string', default: path.resolve(root, '..', 'shared', 'data') },
    cache: { type: 'string', default: path.join(root, '.cache', 'anomaly-clustering', 'features') },
    json: { type: 'string' },
    'layer-norm': { type: 'string' },
    'project-dim': { type: 'string' },
    'project-seed': { type: 'string' },
    model: { type: 'string' },
    fit: { type: 'string' },
    'tau-spread': { type: 'string' },
    'embedding-norm': { type: 'string' },
    whiten: { type: 'string' },
    'input-size': { type: 'string' },
    layers: { type: 'string' },
    mean: { type: 'string' },
    std: { type: 'string' },
    precision: { type: 'string' },
});
const DATA = opt.data;
const R = opt.references === 'auto' ? 'auto' : Number(opt.references);
if (R !== 'auto' && !(Number.isInteger(R) && R >= 1)) throw new RangeError(`--references: expected 'auto' or an integer ≥ 1, got ${opt.references}`);
const MTD_NORMALS = Number(opt['mtd-normals']);
const TAUS = opt.taus.split(',').map(Number);
const TAU_SPREAD = opt['tau-spread'] ?? checkTau(DEFAULT_TAU).spread;
const be = getBackend(opt.backend);
const EMB_NORM = checkEmbeddingNorm(opt['embedding-norm'] ?? DEFAULT_EMBEDDING_NORM);
const WHITEN = opt.whiten === undefined ? DEFAULT_WHITEN : opt.whiten === 'none' ? false : checkWhiten(Number(opt.whiten));
const featOpts = {
  ...(opt['layer-norm'] ? { layerNorm: opt['layer-norm'] } : {}),
  ...(opt['project-seed'] !== undefined ? { projectSeed: Number(opt['project-seed']) } : {}),
  ...(opt['project-dim'] !== undefined ? { projectDim: Number(opt['project-dim']) > 0 ? Number(opt['project-dim']) : false } : {}),
  ...(opt.model || opt.fit || opt['input-size'] || opt.layers || opt.precision ? {
    backbone: {
      ...(opt.model ? { model: opt.model.endsWith('.onnx') ? path.resolve(opt.model) : opt.model } : {}),
      ...(opt.fit ? { fit: opt.fit } : {}),
      ...(opt['input-size'] ? { inputSize: Number(opt['input-size']) } : {}),
      ...(opt.layers ? { layers: opt.layers.split(',') } : {}),
      ...(opt.mean ? { mean: opt.mean.split(',').map(Number) } : {}),
      ...(opt.std ? { std: opt.std.split(',').map(Number) } : {}),
      ...(opt.precision ? { precision: opt.precision } : {}),
    },
  } : {}),
};
const featTag = JSON.stringify({ ...(featOpts.backbone ? { backbone: featOpts.backbone } : {}), layerNorm: featOpts.layerNorm ?? DEFAULT_LAYER_NORM, projectDim: featOpts.projectDim ?? DEFAULT_PROJECT_DIM, ...(featOpts.projectSeed ? { projectSeed: featOpts.projectSeed } : {}) });
const log = (s) => process.stderr.write(`${s}\n`);
const secs = (ms) => (Number.isFinite(ms) ? `${(ms / 1000).toFixed(1)} s` : 'cached');

const REF = {
  mvtec: { uniform: [0.429, 0.230, 0.590], max: [0.503, 0.359, 0.687], unsupervised: [0.585, 0.473, 0.747], 'semi-supervised': [0.674, 0.580, 0.807] },
  mtd6: { uniform: [0.108, 0.048, 0.283], max: [0.179, 0.104, 0.389], unsupervised: [0.225, 0.100, 0.348], 'semi-supervised': [0.274, 0.199, 0.401] },
  mtd5: { uniform: [0.157, 0.089, 0.372], max: [0.205, 0.115, 0.408], unsupervised: [0.275, 0.155, 0.474], 'semi-supervised': [0.329, 0.300, 0.510] },
};
if (opt.seeds) await acrossSeeds(opt.seeds.split(',').map(Number));

const sorted = (dir, ext) => readdirSync(dir).filter((f) => ext.some((e) => f.toLowerCase().endsWith(e))).sort().map((f) => path.join(dir, f));

function mvtec() {
  const t = path.join(DATA, 'mvtec-bottle', 'test');
  const classes = readdirSync(t).sort();
  const files = classes.flatMap((c) => sorted(path.join(t, c), ['.png']));
  return { name: 'mvtec', title: 'MVTec bottle (83, K=4)', files, truth: files.map((f) => path.basename(path.dirname(f))),
    normals: sorted(path.join(DATA, 'mvtec-bottle', 'train', 'good'), ['.png']) };
}
function mtd(withNormals) {
  const d = path.join(DATA, 'mtd');
  const defects = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'].flatMap((c) => sorted(path.join(d, c, 'Imgs'), ['.jpg']));
  const free = sorted(path.join(d, 'MT_Free', 'Imgs'), ['.jpg']);
  const files = withNormals ? [...defects, ...free.slice(0, 191)] : defects;
  return { name: withNormals ? 'mtd6' : 'mtd5', title: withNormals ? 'MTD 392+191 (K=6)' : 'MTD defects (392, K=5)', files,
    truth: files.map((f) => path.basename(path.dirname(path.dirname(f)))), normals: free.slice(191, 191 + MTD_NORMALS) };
}

const bankCache = new Map();
async function bank(files, label, pooled = true) {
  const key = files.join('\n');
  if (bankCache.has(key)) return bankCache.get(key);
  const t = performance.now();
  // pooled: the unprojected mean / max for uniform and max pooling, as clusterImages keeps them
  const b = await extractFeatures(files, { cacheDir: opt.cache, threads: 2, pooled, ...featOpts });
  log(`  features ${label}: ${b.n} images, M=${b.m}, D=${b.d} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  bankCache.set(key, b);
  return b;
}

/** Ward clustering of embeddings into k and the metrics. */
async function clusterEval(emb, n, d, k, truth) {
  const t = performance.now();
  const y = await be.pdistAsync(normaliseEmbeddings(emb, n, d, EMB_NORM), n, d, false);
  const Z = await be.linkageAsync(y, n, 'ward');
  const labels = be.cutK(Z, n, k);
  return { ...evaluate(labels, truth), clusterMs: performance.now() - t };
}

/** Softmax weights at τ = tauRel × the spread of the scores (per image, or the set's mean: `--tau-spread`). */
function weightsFromScores(b, scores, tauRel) {
  const offsets = bagOffsets(b.n, b.m);
  let spread = meanWithinStd(scores, b.n, b.m);
  if (TAU_SPREAD === 'image') {
    scores = perImageStandardised(scores, b.n, b.m);
    spread = 1;
  }
  const w = be.softmaxWeights(scores, offsets, tauRel * spread);
  return be.weightedMean(b.data, offsets, b.d, w);
}

/** Patch scores are the expensive part: kept in benches/out/ (git-ignored) so that a τ sweep can be rerun. */
async function cachedScores(tag, b, compute) {
  const dir = path.join(root, 'benches', 'out');
  mkdirSync(dir, { recursive: true });
  const h = createHash('sha256').update(tag).update(featTag).update(b.files.join('\n')).update(`${b.m}x${b.d}`).update(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength)).digest('hex').slice(0, 16);
  const file = path.join(dir, `scores-${h}.f32`);
  if (existsSync(file) && !process.env.AC_BENCH_FRESH) {
    const buf = readFileSync(file);
    return { scores: new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4), ms: NaN };
  }
  const t = performance.now();
  const scores = await compute();
  const ms = performance.now() - t;
  writeFileSync(file, Buffer.from(scores.buffer, scores.byteOffset, scores.byteLength));
  return { scores, ms };
}

const rows = [];
const semiDone = [];
const sweeps = [];
const notes = [];
const defaultRel = DEFAULT_TAU.relative;
for (const setName of opt.sets.split(',')) {
  const set = setName === 'mvtec' ? mvtec() : mtd(setName === 'mtd6');
  const k = new Set(set.truth).size;
  log(`\n== ${set.title}: ${set.files.length} images, K=${k}, ${set.normals.length} normals for semi-supervised`);
  const b0 = await bank(set.files, set.name);
  const featMs = (b0.timings.decode ?? 0) + (b0.timings.features ?? 0);
  const add = (method, m, weightsMs, extra = '') => {
    rows.push({ set: set.name, title: set.title, method, ...m, weightsMs, featMs, extra });
    log(`  ${method.padEnd(16)} NMI ${m.nmi.toFixed(3)} ARI ${m.ari.toFixed(3)} F1 ${m.f1.toFixed(3)}  weights ${Number.isFinite(weightsMs) ? (weightsMs / 1000).toFixed(1) + ' s' : 'cached'} ${extra}`);
  };
  for (const method of ['uniform', 'max']) {
    const t = performance.now();
    const w = await computeWeights(b0, { weighting: method, backend: be });
    const ms = performance.now() - t;
    add(method, await clusterEval(w.embeddings, b0.n, w.d, k, set.truth), ms);
  }
  // the weighted modes search (and pool) whitened patches, as computeWeights does (--whiten; none = raw)
  const wt = performance.now();
  const wh = WHITEN === false ? null : await fitWhitening(b0, WHITEN, be);
  const b = wh ? await whitenBank(b0, wh, be) : b0;
  if (wh) log(`  whitened the patches (α = ${WHITEN}, covariance of ${wh.sampled} patches) in ${secs(performance.now() - wt)}`);
  for (const method of ['unsupervised', 'semi-supervised']) {
    let scores;
    let ms;
    let extra = '';
    if (method === 'unsupervised') {
      // 'auto': the library's rule (exact up to DEFAULT_EXACT_WORK_LIMIT multiply-adds, else 32 references)
      const refs = R === 'auto' ? autoReferences(b.n, b.m, b.d).references : set.name === 'mvtec' || R >= b.n - 1 ? undefined : R;
      extra = refs ? `(${refs} random reference images per image)` : '(exact)';
      ({ scores, ms } = await cachedScores(`unsup:${refs ?? 'exact'}`, b, () => patchScores(b, 'unsupervised', { backend: be, references: refs,
        onProgress: (p) => p.done === p.total || p.done % (b.m * 50) === 0 ? log(`    ${p.done / b.m}/${p.total / b.m} images`) : undefined })));
      const rNote = R === 'auto' ? DEFAULT_AUTO_REFERENCES : R;
      if (set.name === 'mvtec' && refs === undefined && rNote < b.n - 1) {
        // measured effect of the approximation
        const { scores: approx, ms: ams } = await cachedScores(`unsup:${rNote}`, b, () => patchScores(b, 'unsupervised', { backend: be, references: rNote }));
        const m = await clusterEval(weightsFromScores(b, approx, defaultRel), b.n, b.d, k, set.truth);
        notes.push(`MVTec unsupervised with ${rNote} random references per image (instead of all 82): NMI ${m.nmi.toFixed(3)} ARI ${m.ari.toFixed(3)} F1 ${m.f1.toFixed(3)} in ${secs(ams)} (exact: ${secs(ms)})`);
      }
    } else {
      const nb0 = await bank(set.normals, `${set.name} normals`, false);
      // whitened by this set's whitening (so semi-supervised scores are reused across sets only unwhitened)
      const nb = wh ? await whitenBank(nb0, wh, be) : nb0;
      // semi-supervised scores of an image do not depend on the rest of the set: reuse them for a subset (MTD K=5)
      const prev = semiDone.find((x) => x.normals === nb && x.files.length >= b.n && b.files.every((f, i) => x.files[i] === f));
      if (prev) ({ scores, ms } = { scores: prev.scores.subarray(0, b.n * b.m), ms: prev.ms * (b.n / prev.files.length) });
      else ({ scores, ms } = await cachedScores(`semi:${nb.files.join('|')}`, b, () => patchScores(b, 'semi-supervised', { backend: be, normals: nb })));
      semiDone.push({ normals: nb, files: b.files, scores, ms });
      extra = `(${nb.n} normal images${prev ? '; scores reused from the larger set' : ''})`;
    }
    const sweep = [];
    for (const tau of [...new Set([defaultRel, ...TAUS])].sort((a, c) => a - c)) {
      const m = await clusterEval(weightsFromScores(b, scores, tau), b.n, b.d, k, set.truth);
      sweep.push({ tau, ...m });
      if (tau === defaultRel) add(method, m, ms, extra);
    }
    const best = sweep.reduce((a, c) => (c.nmi > a.nmi ? c : a));
    sweeps.push({ set: set.name, method, sweep, best });
    log(`    τ sweep (relative): ${sweep.map((s) => `${s.tau}: ${s.nmi.toFixed(3)}`).join('  ')}`);
  }
}

// ---- the table
const f3 = (x) => x.toFixed(3);
const out = [];
out.push(`Backbone: default (embedded), features ${featTag} (d=${rows.length ? bankCache.values().next().value.d : '?'}), backend ${be.name}/${be.isa} (${be.threads} threads); τ = ${defaultRel}·σ (default; σ per ${TAU_SPREAD === 'image' ? 'image' : 'set (mean within-image std)'}); patch whitening: ${WHITEN === false ? 'none' : `α = ${WHITEN}`}; embeddings: ${EMB_NORM}; Ward.`);
out.push('');
out.push('| set | method | NMI / ARI / F1 (ours, default τ) | best τ (NMI/ARI/F1) | reference §6 | weights time | features time |');
out.push('|---|---|---|---|---|---|---|');
for (const r of rows) {
  const ref = REF[r.set]?.[r.method];
  const sw = sweeps.find((s) => s.set === r.set && s.method === r.method);
  out.push(`| ${r.title} | ${r.method} ${r.extra} | ${f3(r.nmi)} / ${f3(r.ari)} / ${f3(r.f1)} | ${sw ? `${sw.best.tau}σ: ${f3(sw.best.nmi)} / ${f3(sw.best.ari)} / ${f3(sw.best.f1)}` : '–'} | ${ref ? ref.map(f3).join(' / ') : '–'} | ${secs(r.weightsMs)} | ${secs(r.featMs)} |`);
}
{
  // like for like: the reference's numbers are each row's best τ
  const passes = (m, ref) => m.nmi >= ref[0] && m.ari >= ref[1] && m.f1 >= ref[2];
  const withRef = rows.filter((r) => REF[r.set]?.[r.method]);
  const atDefault = withRef.filter((r) => passes(r, REF[r.set][r.method])).length;
  const atSomeTau = withRef.filter((r) => {
    const sw = sweeps.find((x) => x.set === r.set && x.method === r.method);
    return (sw ? sw.sweep : [r]).some((m) => passes(m, REF[r.set][r.method]));
  }).length;
  out.push('', `Rows at or above the reference on all three metrics: ${atDefault}/${withRef.length} at the default τ; ${atSomeTau}/${withRef.length} at some τ of the sweep (the reference's own numbers are each row's best τ).`);
}
out.push('');
out.push('τ sweep (NMI at τ = r·σ):');
out.push('');
out.push(`| set | method | ${sweeps[0]?.sweep.map((s) => `${s.tau}σ`).join(' | ')} |`);
out.push(`|---|---|${sweeps[0]?.sweep.map(() => '---').join('|')}|`);
for (const s of sweeps) out.push(`| ${s.set} | ${s.method} | ${s.sweep.map((x) => f3(x.nmi)).join(' | ')} |`);
if (notes.length) out.push('', ...notes);
process.stdout.write(`${out.join('\n')}\n`);
if (opt.json) writeFileSync(opt.json, JSON.stringify({ rows, sweeps, notes }, null, 1));

/**
 * `--seeds 0,1,2`: the whole evaluation once per projection seed (each in a child process, `--project-seed s`),
 * then mean ± standard deviation over the seeds of every row, the number of seeds at or above the reference on all
 * three metrics, and each seed's NMI. The random projection alone moves single rows by up to ±0.1 NMI, so this is
 * the table to compare defaults with.
 */
async function acrossSeeds(seeds) {
  const { spawnSync } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  if (opt['project-seed'] !== undefined) throw new Error('--seeds and --project-seed exclude each other');
  if (!seeds.length || seeds.some((s) => !Number.isInteger(s) || s < 0)) throw new RangeError(`--seeds: expected integers ≥ 0, got ${opt.seeds}`);
  const argv = [];
  for (let i = 2; i < process.argv.length; i++) {
    const a = process.argv[i];
    if (a === '--seeds' || a === '--json') i++;
    else if (!a.startsWith('--seeds=') && !a.startsWith('--json=')) argv.push(a);
  }
  const tmp = mkdtempSync(path.join(tmpdir(), 'ac-eval-'));
  const runs = [];
  for (const s of seeds) {
    const out = path.join(tmp, `seed${s}.json`);
    process.stderr.write(`\n######## projection seed ${s}\n`);
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), ...argv, '--project-seed', String(s), '--json', out], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) throw new Error(`seed ${s}: evaluation failed (exit ${r.status})`);
    runs.push({ seed: s, ...JSON.parse(readFileSync(out, 'utf8')) });
  }
  rmSync(tmp, { recursive: true, force: true });
  const f3 = (x) => x.toFixed(3);
  const stat = (xs) => {
    const m = xs.reduce((a, c) => a + c, 0) / xs.length;
    return { mean: m, sd: Math.sqrt(xs.reduce((a, c) => a + (c - m) ** 2, 0) / Math.max(1, xs.length - 1)) };
  };
  const out = [`Mean ± sd over projection seeds ${seeds.join(', ')} (defaults otherwise as in a single run; τ = the default).`, '',
    '| set | method | NMI | ARI | F1 | seeds ≥ reference (all three) | reference §6 | NMI per seed |', '|---|---|---|---|---|---|---|---|'];
  const summary = [];
  for (const r0 of runs[0].rows) {
    const same = runs.map((r) => r.rows.find((x) => x.set === r0.set && x.method === r0.method));
    const ref = REF[r0.set]?.[r0.method];
    const st = Object.fromEntries(['nmi', 'ari', 'f1'].map((k) => [k, stat(same.map((x) => x[k]))]));
    const pass = ref ? same.filter((x) => x.nmi >= ref[0] && x.ari >= ref[1] && x.f1 >= ref[2]).length : NaN;
    summary.push({ set: r0.set, method: r0.method, ...st, pass, seeds: same.map((x) => ({ nmi: x.nmi, ari: x.ari, f1: x.f1 })) });
    out.push(`| ${r0.title} | ${r0.method} | ${['nmi', 'ari', 'f1'].map((k) => `${f3(st[k].mean)} ± ${f3(st[k].sd)}`).join(' | ')} | ${pass}/${seeds.length} | ${ref ? ref.map(f3).join(' / ') : '–'} | ${same.map((x) => f3(x.nmi)).join(', ')} |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
  if (opt.json) writeFileSync(opt.json, JSON.stringify({ seeds, summary, runs }, null, 1));
  process.exit(0);
}
