#!/usr/bin/env node
/**
 * @file Automatic K on the shared data: for each set and weighting, the image embeddings are clustered with Ward
 * and every criterion of `chooseK` (pipeline/autok.ts) picks K in 2..kMax; the table gives the chosen K and the
 * NMI / ARI / F1 of the resulting labels against the truth, next to the scores at the true K.
 *
 * Sets: MVTec bottle test (4 classes incl. good; unsupervised exact), MTD 392 defects + 191 MT_Free (K=6) and
 * defects only (K=5) (unsupervised with R random references per image, default 32 as `references: 'auto'` there), and the synthetic sample of
 * `src/sample` (seed 7, 10 per class, K=5; unsupervised exact). Each set also with the cheap `max` weighting.
 * Features come from the feature cache (.cache/anomaly-clustering/features of the repository) and the unsupervised patch scores from
 * benches/out/ (the same keys as benches/evaluate.mjs), so a rerun takes seconds.
 *
 *   npx tsc -p . && nice node benches/autok.mjs [--sets mvtec,mtd6,mtd5,sample] [--weightings unsupervised,max]
 *        [--references 32] [--k-max 20] [--json out.json]
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { extractFeatures, DEFAULT_LAYER_NORM, DEFAULT_PROJECT_DIM } = await dist('src/pipeline/features.js');
const { patchScores, computeWeights, bagOffsets, perImageStandardised, DEFAULT_TAU } = await dist('src/pipeline/weighting.js');
const { normaliseEmbeddings, DEFAULT_EMBEDDING_NORM } = await dist('src/pipeline/embedding-norm.js');
const { fitWhitening, whitenBank, DEFAULT_WHITEN } = await dist('src/pipeline/whiten.js');
const { evaluate } = await dist('src/pipeline/metrics.js');
const { chooseK, AUTO_K_CRITERIA, DEFAULT_AUTO_K_CRITERION } = await dist('src/pipeline/autok.js');
const { generateSample } = await dist('src/sample/index.js');
const { getBackend } = await dist('bindings/select.js');

const { values: opt } = scriptArgs(import.meta.url, {
    sets: { type: 'string', default: 'mvtec,mtd6,mtd5,sample' },
    weightings: { type: 'string', default: 'unsupervised,max' },
    references: { type: 'string', default: '32' },
    'k-max': { type: 'string', default: '20' },
    backend: { type: 'string' },
    data: { type: 'string', default: path.resolve(root, '..', 'shared', 'data') },
    cache: { type: 'string', default: path.join(root, '.cache', 'anomaly-clustering') /* cache root: features in <root>/features */ },
    json: { type: 'string' },
});
const DATA = opt.data;
const R = Number(opt.references);
const K_MAX = Number(opt['k-max']);
const be = getBackend(opt.backend);
const featTag = JSON.stringify({ layerNorm: DEFAULT_LAYER_NORM, projectDim: DEFAULT_PROJECT_DIM });
const log = (s) => process.stderr.write(`${s}\n`);

const sorted = (dir, ext) => readdirSync(dir).filter((f) => ext.some((e) => f.toLowerCase().endsWith(e))).sort().map((f) => path.join(dir, f));
const classOf = (f) => path.basename(path.dirname(f));

function mvtec() {
  const t = path.join(DATA, 'mvtec-bottle', 'test');
  const files = readdirSync(t).sort().flatMap((c) => sorted(path.join(t, c), ['.png']));
  return { name: 'mvtec', title: 'MVTec bottle (83, K=4)', files, truth: files.map(classOf), exact: true };
}
function mtd(withNormals) {
  const d = path.join(DATA, 'mtd');
  const defects = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'].flatMap((c) => sorted(path.join(d, c, 'Imgs'), ['.jpg']));
  const free = sorted(path.join(d, 'MT_Free', 'Imgs'), ['.jpg']);
  const files = withNormals ? [...defects, ...free.slice(0, 191)] : defects;
  return { name: withNormals ? 'mtd6' : 'mtd5', title: withNormals ? 'MTD 392+191 (K=6)' : 'MTD defects (392, K=5)', files,
    truth: files.map((f) => path.basename(path.dirname(path.dirname(f)))), exact: false };
}
let sampleTmp;
async function sample() {
  sampleTmp = mkdtempSync(path.join(tmpdir(), 'ac-autok-'));
  const s = await generateSample(sampleTmp, { seed: 7, perClass: 10, trainNormals: 0 });
  return { name: 'sample', title: 'synthetic sample (50, K=5)', files: s.files.map((f) => f.file), truth: s.files.map((f) => f.cls), exact: true };
}

/** Unsupervised patch scores, shared with benches/evaluate.mjs through benches/out/ (same key). */
async function cachedScores(tag, b, compute) {
  const dir = path.join(root, 'benches', 'out');
  mkdirSync(dir, { recursive: true });
  const h = createHash('sha256').update(tag).update(featTag).update(b.files.join('\n')).update(`${b.m}x${b.d}`).update(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength)).digest('hex').slice(0, 16);
  const file = path.join(dir, `scores-${h}.f32`);
  if (existsSync(file)) {
    const buf = readFileSync(file);
    return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  }
  log(`    computing ${tag} patch scores (not cached)…`);
  const scores = await compute();
  writeFileSync(file, Buffer.from(scores.buffer, scores.byteOffset, scores.byteLength));
  return scores;
}

/** The image embeddings as clusterImages compares them (default τ, pooling and embeddingNorm), and their dimension. */
async function embeddings(set, b0, weighting) {
  let b = b0;
  const norm = (emb, d) => ({ emb: normaliseEmbeddings(emb, b.n, d, DEFAULT_EMBEDDING_NORM), d });
  if (weighting !== 'unsupervised') {
    const w = await computeWeights(b, { weighting, backend: be });
    return { ...norm(w.embeddings, w.d), note: weighting };
  }
  // the default patch whitening (as computeWeights does for the weighted modes)
  const wh = await fitWhitening(b0, DEFAULT_WHITEN, be);
  if (wh) b = await whitenBank(b0, wh, be);
  const refs = set.exact || R >= b.n - 1 ? undefined : R;
  // the synthetic sample lives in a temporary folder: its paths change per run, so its scores are not cached
  const compute = () => patchScores(b, 'unsupervised', { backend: be, references: refs });
  const scores = set.name === 'sample' ? await compute() : await cachedScores(`unsup:${refs ?? 'exact'}`, b, compute);
  const offsets = bagOffsets(b.n, b.m);
  // the default τ: relative to each image's own score spread
  const w = be.softmaxWeights(perImageStandardised(scores, b.n, b.m), offsets, DEFAULT_TAU.relative);
  return { ...norm(be.weightedMean(b.data, offsets, b.d, w), b.d), note: refs ? `unsupervised R=${refs}` : 'unsupervised exact' };
}

const rows = [];
const f3 = (x) => x.toFixed(3);
for (const name of opt.sets.split(',')) {
  const set = name === 'mvtec' ? mvtec() : name === 'sample' ? await sample() : mtd(name === 'mtd6');
  const kTrue = new Set(set.truth).size;
  log(`\n== ${set.title}: ${set.files.length} images`);
  const b = await extractFeatures(set.files, { cacheDir: set.name === 'sample' ? false : opt.cache, threads: 2, pooled: true });
  for (const weighting of opt.weightings.split(',')) {
    const { emb, d, note } = await embeddings(set, b, weighting);
    const y = be.pdist(emb, b.n, d, false);
    const Z = be.linkage(y, b.n, 'ward');
    const atTrue = evaluate(be.cutK(Z, b.n, kTrue), set.truth);
    for (const criterion of AUTO_K_CRITERIA) {
      const t = performance.now();
      const r = chooseK({ embeddings: emb, n: b.n, d, Z, distances: criterion === 'silhouette' ? undefined : y }, { criterion, kMax: K_MAX, backend: be });
      const ms = performance.now() - t;
      const m = evaluate(be.cutK(Z, b.n, r.chosen), set.truth);
      const top = [...r.candidates].sort((a, c) => c.score - a.score || a.k - c.k).slice(0, 3).map((c) => `${c.k}:${c.score.toPrecision(3)}`).join(' ');
      rows.push({ set: set.name, title: set.title, weighting: note, kTrue, criterion, chosen: r.chosen, ...m, atTrue, ms, top });
      log(`  ${note.padEnd(20)} ${criterion.padEnd(18)} K=${String(r.chosen).padStart(2)} (true ${kTrue})  NMI ${f3(m.nmi)} ARI ${f3(m.ari)} F1 ${f3(m.f1)}  ${ms.toFixed(0)} ms  top ${top}`);
    }
  }
}
if (sampleTmp) rmSync(sampleTmp, { recursive: true, force: true });

const out = [];
out.push(`Ward on the image embeddings, candidates K = 2..${K_MAX}, backend ${be.name}/${be.isa}; default criterion '${DEFAULT_AUTO_K_CRITERION}'.`);
out.push('');
out.push('| set | weighting | criterion | chosen K (true) | NMI / ARI / F1 at chosen K | at true K | top 3 (K:score) |');
out.push('|---|---|---|---|---|---|---|');
for (const r of rows) {
  out.push(`| ${r.title} | ${r.weighting} | ${r.criterion} | ${r.chosen} (${r.kTrue}) | ${f3(r.nmi)} / ${f3(r.ari)} / ${f3(r.f1)} | ${f3(r.atTrue.nmi)} / ${f3(r.atTrue.ari)} / ${f3(r.atTrue.f1)} | ${r.top} |`);
}
out.push('');
out.push('Summary over all set × weighting rows:');
out.push('');
out.push('| criterion | exact K | mean \\|K − K_true\\| | mean NMI | mean ARI | mean F1 | mean time |');
out.push('|---|---|---|---|---|---|---|');
for (const c of AUTO_K_CRITERIA) {
  const rs = rows.filter((r) => r.criterion === c);
  const mean = (f) => rs.reduce((s, r) => s + f(r), 0) / rs.length;
  out.push(`| ${c} | ${rs.filter((r) => r.chosen === r.kTrue).length}/${rs.length} | ${mean((r) => Math.abs(r.chosen - r.kTrue)).toFixed(1)} | ${f3(mean((r) => r.nmi))} | ${f3(mean((r) => r.ari))} | ${f3(mean((r) => r.f1))} | ${mean((r) => r.ms).toFixed(0)} ms |`);
}
const rt = rows.filter((r) => r.criterion === AUTO_K_CRITERIA[0]);
out.push(`| (true K) | – | 0 | ${f3(rt.reduce((s, r) => s + r.atTrue.nmi, 0) / rt.length)} | ${f3(rt.reduce((s, r) => s + r.atTrue.ari, 0) / rt.length)} | ${f3(rt.reduce((s, r) => s + r.atTrue.f1, 0) / rt.length)} | – |`);
process.stdout.write(`${out.join('\n')}\n`);
if (opt.json) writeFileSync(opt.json, JSON.stringify(rows, null, 1));
