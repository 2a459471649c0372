#!/usr/bin/env node
/**
 * @file The selection protocol over every dev set (docs/quality.md): each set × each configuration → NMI/ARI/F1,
 * the mean over sets, the rule for a default, and leave-one-set-out selection.
 *
 * Sets (../shared/data, read in place; K = the true number of classes):
 *   mvtec     MVTec AD bottle test split, 'good' kept as a class (83, K=4); normals: train/good (83)
 *   mtd6      MTD 392 defects + 191 MT_Free (583, K=6); normals: 192 other MT_Free images
 *   mtd5      MTD defects only (392, K=5); same normals
 *   leather6  Leather, 6 × 40 with non_defective kept as a class (240, K=6); no normals
 *   leather5  Leather defects only (200, K=5); normals: the 40 non_defective images
 *   sample    the generated sample of src/sample (seed 7, 10 per class, K=5); normals: its train/good (10)
 * Configurations: uniform and max pooling; unsupervised and semi-supervised weighting with and without the patch
 * whitening at τ ∈ {0.25, 0.5, 1, 2}·σ; each with the embeddings as they are ('none') or 'l2-center-l2'; and
 * consensus clusterings over several of them (pipeline/consensus.ts). The unsupervised scores follow the library's
 * rule (exact up to 1e13 multiply-adds, else 32 evenly spaced reference images per image).
 *
 *   npx tsc -p tsconfig.json && nice node benches/evaluate.mjs [--sets mvtec,mtd6,mtd5,leather6,leather5,sample]
 *        [--backend native] [--json out.json] [--all]   (--all: print every configuration, not only the summary ones)
 *        [--precision fp32|int8]   (int8: the opt-in fast backbone; its features and scores are cached apart)
 *        [--semi-sets mvtec,leather5,sample]   (sets that also get the semi-supervised rows; on MTD they cost ≈1.7e13 multiply-adds)
 *
 * Patch scores are cached in benches/out/ (git-ignored) keyed by the bank's bytes; features in the feature cache.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => import(path.join(root, 'dist', p));
const { extractFeatures } = await dist('src/pipeline/features.js');
const { patchScores, computeWeights, bagOffsets, perImageStandardised } = await dist('src/pipeline/weighting.js');
const { evaluate } = await dist('src/pipeline/metrics.js');
const { getBackend } = await dist('bindings/select.js');
const { autoReferences } = await dist('src/pipeline/approx.js');
const { normaliseEmbeddings } = await dist('src/pipeline/embedding-norm.js');
const { fitWhitening, whitenBank } = await dist('src/pipeline/whiten.js');
const { consensusClusters } = await dist('src/pipeline/consensus.js');
const { generateSample } = await dist('src/sample/index.js');
const { PRESETS } = await dist('src/pipeline/presets.js');

const { values: opt } = scriptArgs(import.meta.url, {
  sets: { type: 'string', default: 'mvtec,mtd6,mtd5,leather6,leather5,sample' },
  backend: { type: 'string' },
  data: { type: 'string', default: path.resolve(root, '..', 'shared', 'data') },
  cache: { type: 'string', default: path.join(root, '.cache', 'anomaly-clustering') /* cache root: features in <root>/features */ },
  json: { type: 'string' },
  all: { type: 'boolean', default: false },
  'semi-sets': { type: 'string', default: 'mvtec,leather5,sample' },
  precision: { type: 'string', default: 'fp32' /* 'int8': the opt-in fast backbone (docs/performance.md) */ },
});
if (!['fp32', 'int8'].includes(opt.precision)) throw new RangeError(`--precision: expected fp32 or int8, got ${opt.precision}`);
const backbone = { precision: opt.precision };
const SEMI_SETS = new Set(opt['semi-sets'].split(','));
const DATA = opt.data;
const be = getBackend(opt.backend);
const TAUS = [0.25, 0.5, 1, 2];
const log = (s) => process.stderr.write(`${s}\n`);
const N2 = ['none', 'l2-center-l2'];
const u = (t, r, norm) => `unsup/${t}/${r}|${norm}`;
/** Consensus designs, each fixed in advance (docs/quality.md); the library's default preset is one of them. */
const DESIGNS = {
  'uniform+max+unsup raw/whitened (4)': ['uniform|none', 'max|none', u('raw', 0.5, 'none'), u('wh', 0.5, 'none')],
  'the same ×2 norms (8)': N2.flatMap((n) => [`uniform|${n}`, `max|${n}`, u('raw', 0.5, n), u('wh', 0.5, n)]),
  'all 20 members': [...['uniform', 'max'].flatMap((w) => N2.map((n) => `${w}|${n}`)), ...['raw', 'wh'].flatMap((t) => TAUS.flatMap((r) => N2.map((n) => u(t, r, n))))],
  'unsupervised: all τ, norms, whitening (16)': ['raw', 'wh'].flatMap((t) => TAUS.flatMap((r) => N2.map((n) => u(t, r, n)))),
  'unsupervised τ0.5 ×whitening ×norm (4)': ['raw', 'wh'].flatMap((t) => N2.map((n) => u(t, 0.5, n))),
  'unsupervised τ0.5,1 ×whitening ×norm (8)': ['raw', 'wh'].flatMap((t) => [0.5, 1].flatMap((r) => N2.map((n) => u(t, r, n)))),
  'max + unsupervised τ0.5, ×whitening ×norm (6)': [...N2.map((n) => `max|${n}`), ...['raw', 'wh'].flatMap((t) => N2.map((n) => u(t, 0.5, n)))],
  'pool ×norms + unsupervised τ0.5,1 ×whitening ×norms (12)': [...['uniform', 'max'].flatMap((w) => N2.map((n) => `${w}|${n}`)), ...['raw', 'wh'].flatMap((t) => [0.5, 1].flatMap((r) => N2.map((n) => u(t, r, n))))],
};
const sorted = (dir, ext) => readdirSync(dir).filter((f) => ext.some((e) => f.toLowerCase().endsWith(e))).sort().map((f) => path.join(dir, f));

// ---- the sets
function mvtec() {
  const t = path.join(DATA, 'mvtec-bottle', 'test');
  const files = readdirSync(t).sort().flatMap((c) => sorted(path.join(t, c), ['.png']));
  return { name: 'mvtec', kind: 'object', files, truth: files.map((f) => path.basename(path.dirname(f))), normals: sorted(path.join(DATA, 'mvtec-bottle', 'train', 'good'), ['.png']) };
}
function mtd(withFree) {
  const d = path.join(DATA, 'mtd');
  const defects = ['MT_Blowhole', 'MT_Break', 'MT_Crack', 'MT_Fray', 'MT_Uneven'].flatMap((c) => sorted(path.join(d, c, 'Imgs'), ['.jpg']));
  const free = sorted(path.join(d, 'MT_Free', 'Imgs'), ['.jpg']);
  const files = withFree ? [...defects, ...free.slice(0, 191)] : defects;
  return { name: withFree ? 'mtd6' : 'mtd5', kind: 'texture', files, truth: files.map((f) => path.basename(path.dirname(path.dirname(f)))), normals: free.slice(191, 383) };
}
function leather(withNormal) {
  const d = path.join(DATA, 'leather');
  const classes = readdirSync(d).filter((c) => !c.startsWith('.') && c !== 'README.md').sort().filter((c) => withNormal || c !== 'non_defective');
  const files = classes.flatMap((c) => sorted(path.join(d, c), ['.jpg', '.jpeg', '.png']));
  return { name: withNormal ? 'leather6' : 'leather5', kind: 'texture', files, truth: files.map((f) => path.basename(path.dirname(f))),
    normals: withNormal ? undefined : sorted(path.join(d, 'non_defective'), ['.jpg', '.jpeg', '.png']) };
}
let sampleTmp;
async function sample() {
  sampleTmp = mkdtempSync(path.join(tmpdir(), 'ac-eval-'));
  const s = await generateSample(sampleTmp, { seed: 7, perClass: 10, trainNormals: 10 });
  return { name: 'sample', kind: 'generated', files: s.files.map((f) => f.file), truth: s.files.map((f) => f.cls), normals: sorted(s.normalsDir, ['.png']) };
}
const SETS = { mvtec, mtd6: () => mtd(true), mtd5: () => mtd(false), leather6: () => leather(true), leather5: () => leather(false), sample };

/** Patch scores are the expensive part: kept in benches/out/ keyed by the bank's bytes. */
async function cachedScores(tag, b, compute) {
  const dir = path.join(root, 'benches', 'out');
  mkdirSync(dir, { recursive: true });
  const h = createHash('sha256').update(tag).update(`${b.n}x${b.m}x${b.d}`).update(new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength)).digest('hex').slice(0, 20);
  const file = path.join(dir, `scores-${h}.f32`);
  if (existsSync(file)) {
    const buf = readFileSync(file);
    return { scores: new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)), ms: NaN };
  }
  const t = performance.now();
  const scores = await compute();
  const ms = performance.now() - t;
  writeFileSync(file, Buffer.from(scores.buffer, scores.byteOffset, scores.byteLength));
  return { scores, ms };
}

/** Softmax weights at τ = r·σ (σ = each image's score spread, the library's default) → weighted means. */
function weightedEmbeddings(b, scores, r) {
  const offsets = bagOffsets(b.n, b.m);
  const w = be.softmaxWeights(perImageStandardised(scores, b.n, b.m), offsets, r);
  return be.weightedMean(b.data, offsets, b.d, w);
}

/** Ward tree of (normalised) embeddings, cut at k. */
async function wardLabels(emb, n, d, k, norm) {
  const y = await be.pdistAsync(normaliseEmbeddings(emb, n, d, norm), n, d, false);
  const Z = await be.linkageAsync(y, n, 'ward');
  return { Z, labels: be.cutK(Z, n, k) };
}

// ---- per set: members (embeddings) → configurations (labels) → metrics
const results = []; // {set, config, nmi, ari, f1}
const timing = [];
for (const name of opt.sets.split(',')) {
  if (!SETS[name]) throw new RangeError(`--sets: unknown set ${name} (expected ${Object.keys(SETS).join(', ')})`);
  const set = await SETS[name]();
  const k = new Set(set.truth).size;
  const n = set.files.length;
  log(`\n== ${set.name}: ${n} images, K=${k}${set.normals ? `, ${set.normals.length} normals` : ''}`);
  const tf = performance.now();
  const b0 = await extractFeatures(set.files, { backbone, cacheDir: opt.cache, threads: 2, pooled: true });
  const nb0 = set.normals ? await extractFeatures(set.normals, { backbone, cacheDir: opt.cache, threads: 2, projection: b0.projection }) : undefined;
  log(`  features: M=${b0.m}, D=${b0.d} (from ${b0.projectedFrom}; PCA keeps ${(100 * b0.projection.explained).toFixed(1)} % of the sampled variance) in ${((performance.now() - tf) / 1000).toFixed(1)} s`);
  const members = new Map(); // name → {emb, d}
  for (const w of ['uniform', 'max']) {
    const r = await computeWeights(b0, { weighting: w, backend: be });
    members.set(w, { emb: r.embeddings, d: r.d });
  }
  const refs = autoReferences(b0.n, b0.m, b0.d).references;
  for (const wh of [false, 1]) {
    const tw = performance.now();
    const whitening = wh === false ? null : await fitWhitening(b0, wh, be);
    const b = whitening ? await whitenBank(b0, whitening, be) : b0;
    const nb = nb0 && whitening ? await whitenBank(nb0, whitening, be) : nb0;
    const tag = wh === false ? 'raw' : 'wh';
    const un = await cachedScores(`unsup:${refs ?? 'exact'}`, b, () => patchScores(b, 'unsupervised', { backend: be, references: refs }));
    const se = nb && SEMI_SETS.has(set.name) ? await cachedScores(`semi:${nb.n}:${createHash('sha256').update(new Uint8Array(nb.data.buffer, nb.data.byteOffset, nb.data.byteLength)).digest('hex').slice(0, 12)}`, b,
      () => patchScores(b, 'semi-supervised', { backend: be, normals: nb })) : undefined;
    timing.push({ set: set.name, whiten: tag, unsupMs: un.ms, semiMs: se?.ms, refs: refs ?? 'exact' });
    log(`  scores (${tag}): unsupervised ${Number.isFinite(un.ms) ? `${(un.ms / 1000).toFixed(1)} s` : 'cached'} (${refs ? `${refs} references` : 'exact'})${se ? `, semi-supervised ${Number.isFinite(se.ms) ? `${(se.ms / 1000).toFixed(1)} s` : 'cached'}` : ''} (${((performance.now() - tw) / 1000).toFixed(1)} s)`);
    for (const r of TAUS) {
      members.set(`unsup/${tag}/${r}`, { emb: weightedEmbeddings(b, un.scores, r), d: b.d });
      if (se) members.set(`semi/${tag}/${r}`, { emb: weightedEmbeddings(b, se.scores, r), d: b.d });
    }
  }
  // every member × normalisation
  const labelsOf = new Map();
  for (const [mName, { emb, d }] of members) {
    for (const norm of ['none', 'l2-center-l2']) {
      const cfg = `${mName}|${norm}`;
      const { Z, labels } = await wardLabels(emb, n, d, k, norm);
      labelsOf.set(cfg, labels);
      results.push({ set: set.name, config: cfg, ...evaluate(labels, set.truth) });
      // members cut at K−1 and K+1 for the multi-K consensus variants
      for (const kk of [k - 1, k + 1]) if (kk >= 2 && kk < n) labelsOf.set(`${cfg}@${kk}`, be.cutK(Z, n, kk));
    }
  }
  // consensus designs (fixed in advance: not searched over member subsets, which overfits the sets it is chosen on)
  for (const [cName, list] of Object.entries(DESIGNS)) {
    if (!list.every((c) => labelsOf.has(c))) continue;
    for (const spread of [0, 1]) {
      const parts = list.flatMap((c) => (spread ? [c, `${c}@${k - 1}`, `${c}@${k + 1}`] : [c])).filter((c) => labelsOf.has(c)).map((c) => labelsOf.get(c));
      const { labels } = await consensusClusters(parts, n, k, be);
      results.push({ set: set.name, config: `consensus:${cName}${spread ? ' K±1' : ''}`, ...evaluate(labels, set.truth) });
    }
  }
  const best = results.filter((r) => r.set === set.name).reduce((a, c) => (c.nmi > a.nmi ? c : a));
  log(`  best: ${best.config} NMI ${best.nmi.toFixed(3)}; uniform|none ${get(set.name, 'uniform|none').nmi.toFixed(3)}, max|none ${get(set.name, 'max|none').nmi.toFixed(3)}, paper ${get(set.name, 'unsup/raw/0.5|none').nmi.toFixed(3)}`);
}
if (sampleTmp) rmSync(sampleTmp, { recursive: true, force: true });

/** The member name of a library configuration (pipeline/presets.ts) in this script's naming. */
function memberName(m) {
  if (m.weighting === 'uniform' || m.weighting === 'max') return `${m.weighting}|${m.embeddingNorm}`;
  return `${m.weighting === 'unsupervised' ? 'unsup' : 'semi'}/${m.whiten === false ? 'raw' : 'wh'}/${m.tau.relative}|${m.embeddingNorm}`;
}

function get(set, config) {
  return results.find((r) => r.set === set && r.config === config) ?? { nmi: NaN, ari: NaN, f1: NaN };
}

// ---- summary: per set, the mean, and the protocol
const setNames = [...new Set(results.map((r) => r.set))];
const configs = [...new Set(results.map((r) => r.config))];
const complete = (c) => setNames.every((s) => Number.isFinite(get(s, c).nmi));
const unsupFamily = configs.filter((c) => !c.includes('semi/') && complete(c)); // needs no normals: candidates for the default
// the candidates of the selection: the single presets of the table below (paper, uniform, max, the previous default)
// and the consensus designs, all fixed in advance (a search over single configurations or member subsets overfits)
const candidates = unsupFamily.filter((c) => c.startsWith('consensus:') || ['unsup/raw/0.5|none', 'uniform|none', 'max|none', 'unsup/wh/0.5|l2-center-l2'].includes(c));
const mean = (c, sets = setNames, key = 'nmi') => sets.reduce((a, s) => a + get(s, c)[key], 0) / sets.length;
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : '–');
const named = {
  'paper (unsupervised, no whitening, embeddings as they are)': 'unsup/raw/0.5|none',
  'uniform': 'uniform|none',
  'max': 'max|none',
  'previous default (whiten 1, l2-center-l2, τ 0.5σ)': 'unsup/wh/0.5|l2-center-l2',
};
{
  // the library's default preset, as a design of this script (its members and K spread)
  const members = PRESETS.default.members.map(memberName);
  const id = Object.entries(DESIGNS).find(([, l]) => l.length === members.length && l.every((c) => members.includes(c)))?.[0];
  if (id) named['**default** (consensus, pipeline/presets.ts)'] = `consensus:${id}${PRESETS.default.kSpread ? ' K±1' : ''}`;
}
const out = [];
out.push(`Backend ${be.name}/${be.isa}; features: default backbone, PCA projection to 256; Ward; K = true K. NMI / ARI / F1.`, '');
out.push(`| configuration | ${setNames.join(' | ')} | mean NMI |`, `|---|${setNames.map(() => '---').join('|')}|---|`);
const row = (label, c) => `| ${label} | ${setNames.map((s) => { const r = get(s, c); return `${f3(r.nmi)} / ${f3(r.ari)} / ${f3(r.f1)}`; }).join(' | ')} | ${f3(mean(c))} |`;
for (const [label, c] of Object.entries(named)) out.push(row(label, c));
const ranked = [...unsupFamily].sort((a, c) => mean(c) - mean(a));
out.push('', `Top unsupervised configurations by mean NMI over ${setNames.join(', ')}:`, '');
out.push(`| configuration | ${setNames.join(' | ')} | mean NMI | worst Δ vs paper |`, `|---|${setNames.map(() => '---').join('|')}|---|---|`);
const paper = named['paper (unsupervised, no whitening, embeddings as they are)'];
const worstVsPaper = (c) => Math.min(...setNames.map((s) => get(s, c).nmi - get(s, paper).nmi));
for (const c of (opt.all ? ranked : ranked.slice(0, 15))) out.push(`| ${c} | ${setNames.map((s) => f3(get(s, c).nmi)).join(' | ')} | ${f3(mean(c))} | ${f3(worstVsPaper(c))} |`);

// leave-one-set-out: pick on the other sets (best mean NMI among candidates within 0.02 of the paper on each of
// them), score on the one left out
const eligible = (c, sets) => sets.every((s) => get(s, c).nmi >= get(s, paper).nmi - 0.02);
const loso = [];
for (const held of setNames) {
  const train = setNames.filter((s) => s !== held);
  const pool = candidates.filter((c) => eligible(c, train));
  const pick = (pool.length ? pool : candidates).reduce((a, c) => (mean(c, train) > mean(a, train) ? c : a));
  loso.push({ held, pick, ...get(held, pick), paper: get(held, paper).nmi });
}
out.push('', 'Leave-one-set-out (chosen on the other sets among the presets and consensus designs: best mean NMI among those within 0.02 NMI of the paper on each; scored on the set left out):', '');
out.push('| set left out | chosen | NMI / ARI / F1 on it | paper NMI on it |', '|---|---|---|---|');
for (const l of loso) out.push(`| ${l.held} | ${l.pick} | ${f3(l.nmi)} / ${f3(l.ari)} / ${f3(l.f1)} | ${f3(l.paper)} |`);
out.push(`| mean | | ${f3(loso.reduce((a, l) => a + l.nmi, 0) / loso.length)} | ${f3(loso.reduce((a, l) => a + l.paper, 0) / loso.length)} |`);
const semiConfigs = configs.filter((c) => c.startsWith('semi/'));
if (semiConfigs.length) {
  const semiSets = setNames.filter((s) => semiConfigs.some((c) => Number.isFinite(get(s, c).nmi)));
  out.push('', `Semi-supervised (sets with normals: ${semiSets.join(', ')}):`, '');
  out.push(`| configuration | ${semiSets.join(' | ')} | mean NMI |`, `|---|${semiSets.map(() => '---').join('|')}|---|`);
  for (const c of semiConfigs.sort((a, c2) => mean(c2, semiSets) - mean(a, semiSets)).slice(0, opt.all ? undefined : 6)) {
    out.push(`| ${c} | ${semiSets.map((s) => f3(get(s, c).nmi)).join(' | ')} | ${f3(mean(c, semiSets))} |`);
  }
}
process.stdout.write(`${out.join('\n')}\n`);
if (opt.json) writeFileSync(opt.json, JSON.stringify({ results, timing, loso }, null, 1));
