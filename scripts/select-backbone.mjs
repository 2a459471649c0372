#!/usr/bin/env node
/**
 * Chooses the default backbone by measured clustering quality on the shared data (../shared/data).
 *
 * One fixed pipeline for every candidate: extractFeatures (the library, features written to a feature cache)
 * → fixed random projection of D to 128 (seed 0) for the nearest-patch search only → unsupervised scores
 * s_im = mean over reference images j of min_m' ‖z_im − z_jm'‖ (all other images on MVTec bottle; 16 random
 * other images per image on MTD, to keep it affordable) → α = softmax(s/τ) per image with τ = t · (mean over
 * images of the within-image std of s), t ∈ {0.25, 0.5, 1, 2, 4} → weighted mean of the FULL-D patches → Ward →
 * K clusters → NMI/ARI. Mean pooling (t = ∞) and max pooling as baselines.
 *
 * The scoring runs in Python (numpy/scipy/sklearn; the helper is embedded below and fed to python3 on stdin; it reads the
 * feature cache's .npy files directly, which also exercises the cache format) because the kernel backends were not ready when this was written.
 *
 *   npx tsc -p tsconfig.json && nice node scripts/select-backbone.mjs [--only mvtec|mtd] [--cand a,b]
 * Needs /usr/bin/python3 with numpy, scipy, scikit-learn. Writes a JSON + markdown table to out/select-backbone.*
 */
import { parseArgs } from 'node:util';
import { readdirSync, readFileSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { extractFeatures } = await import(pathToFileURL(path.join(root, 'dist/src/pipeline/features.js')).href);
const data = path.resolve(root, '../shared/data');

const { values } = parseArgs({ options: { only: { type: 'string' }, cand: { type: 'string' }, threads: { type: 'string' } } });

export const CANDIDATES = {
  'mnv2-b6b13': { model: 'nsfwjs:mobilenet_v2', layers: ['block_6_expand_relu', 'block_13_expand_relu'] },
  'mnv2-b5b12add': { model: 'nsfwjs:mobilenet_v2', layers: ['block_5_add', 'block_12_add'] },
  'mnv2x1.4-e6e13': { model: 'nsfwjs:mobilenet_v2_mid', layers: ['MobilenetV2/expanded_conv_6/expand/Relu6', 'MobilenetV2/expanded_conv_13/expand/Relu6'] },
  'mnv2x1.4-e5e12add': { model: 'nsfwjs:mobilenet_v2_mid', layers: ['MobilenetV2/expanded_conv_5/add', 'MobilenetV2/expanded_conv_12/add'] },
  'inception-m2m7': { model: 'nsfwjs:inception_v3', layers: ['mixed2', 'mixed7'] },
};

function listSet(name) {
  const out = [];
  if (name === 'mvtec') {
    const d = path.join(data, 'mvtec-bottle/test');
    for (const cls of readdirSync(d).sort()) for (const f of readdirSync(path.join(d, cls)).sort()) if (f.endsWith('.png')) out.push({ file: path.join(d, cls, f), label: cls });
    return { name: 'MVTec bottle', files: out, k: 4, refs: 0 };
  }
  const d = path.join(data, 'mtd');
  for (const cls of readdirSync(d).filter((c) => c.startsWith('MT_')).sort()) {
    let fs = readdirSync(path.join(d, cls, 'Imgs')).filter((f) => f.endsWith('.jpg')).sort();
    if (cls === 'MT_Free') fs = fs.slice(0, 191); // the first 191 normals by name
    for (const f of fs) out.push({ file: path.join(d, cls, 'Imgs', f), label: cls });
  }
  return { name: 'MTD 392+191', files: out, k: 6, refs: 16 };
}


/** The scoring helper (Python, numpy/scipy/sklearn), fed on stdin. Reads the feature cache's .npy files. */
const PY = String.raw`
import json, sys, time
import numpy as np
from scipy.cluster.hierarchy import linkage, fcluster
from sklearn.metrics import normalized_mutual_info_score as nmi, adjusted_rand_score as ari
man = json.load(open(sys.argv[1]))
rng = np.random.default_rng(man['seed'])
X = np.stack([np.load(f"{man['dir']}/{it['sha']}.npy") for it in man['items']])
N, H, W, D = X.shape; M = H * W
X = X.reshape(N, M, D)
labels = [it['label'] for it in man['items']]
P = (rng.standard_normal((D, man['dproj'])) / np.sqrt(man['dproj'])).astype(np.float32)
Z = np.ascontiguousarray(X @ P)
sq = (Z * Z).sum(-1)
S = np.zeros((N, M), np.float32)
for i in range(N):
    others = np.array([j for j in range(N) if j != i])
    refs = others if man['refs'] == 0 or man['refs'] >= len(others) else rng.choice(others, man['refs'], replace=False)
    acc = np.zeros(M, np.float64)
    for c in range(0, len(refs), 8):
        r = refs[c:c + 8]
        B = Z[r].reshape(-1, Z.shape[2])
        d2 = sq[i][:, None] + sq[r].reshape(-1)[None, :] - 2.0 * (Z[i] @ B.T)
        acc += np.sqrt(np.maximum(d2.reshape(M, len(r), M).min(-1), 0)).sum(-1)
    S[i] = acc / len(refs)
sigma = float(S.std(axis=1).mean())
def evaluate(E):
    lab = fcluster(linkage(E.astype(np.float64), 'ward'), man['k'], 'maxclust')
    return nmi(labels, lab), ari(labels, lab)
out = {'n': N, 'm': M, 'd': D, 'sigma': sigma, 'nmi': {}, 'ari': {}}
embs = {'uniform': X.mean(1), 'max': X.max(1)}
for t in [0.25, 0.5, 1, 2, 4]:
    s = S / (t * sigma)
    w = np.exp(s - s.max(1, keepdims=True)); w /= w.sum(1, keepdims=True)
    embs['t%g' % t] = np.einsum('nm,nmd->nd', w, X)
for k, E in embs.items():
    out['nmi'][k], out['ari'][k] = evaluate(E)
ts = [k for k in out['nmi'] if k.startswith('t')]
out['bestT'] = max(ts, key=lambda k: out['nmi'][k])
print(json.dumps(out))
`;

const cacheDir = process.env.SELECT_CACHE ?? '/tmp/ac-select-cache';
const outDir = path.join(root, 'out');
mkdirSync(outDir, { recursive: true });
const sets = values.only ? [values.only] : ['mvtec', 'mtd'];
const cands = values.cand ? values.cand.split(',') : Object.keys(CANDIDATES);
const threads = Number(values.threads ?? 2);
const results = existsSync(path.join(outDir, 'select-backbone.json')) ? JSON.parse(readFileSync(path.join(outDir, 'select-backbone.json'), 'utf8')) : {};

for (const setName of sets) {
  const set = listSet(setName);
  for (const c of cands) {
    const spec = CANDIDATES[c];
    const t0 = performance.now();
    for (let i = 0; i < set.files.length; i += 64) {
      await extractFeatures(set.files.slice(i, i + 64).map((f) => f.file), { backbone: { model: spec.model, layers: spec.layers }, cacheDir, threads, batchSize: 8 });
    }
    const tFeat = (performance.now() - t0) / 1000;
    const featDir = path.join(cacheDir, 'features'); // cacheDir is the cache root
    const cfgDir = readdirSync(featDir).map((k) => path.join(featDir, k)).find((k) => {
      const cfg = JSON.parse(readFileSync(path.join(k, 'config.json'), 'utf8'));
      return cfg.backbone.id === spec.model && cfg.backbone.layers.join() === spec.layers.join();
    });
    const manifest = {
      dir: cfgDir, k: set.k, refs: set.refs, dproj: 128, seed: 0,
      items: set.files.map((f) => ({ sha: createHash('sha256').update(readFileSync(f.file)).digest('hex'), label: f.label })),
    };
    const mf = `/tmp/ac-select-${setName}-${c}.json`;
    writeFileSync(mf, JSON.stringify(manifest));
    const t1 = performance.now();
    const r = JSON.parse(execFileSync('/usr/bin/python3', ['-', mf], { input: PY, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['pipe', 'pipe', 'inherit'] }));
    r.featureSeconds = tFeat;
    r.scoreSeconds = (performance.now() - t1) / 1000;
    (results[setName] ??= {})[c] = r;
    console.error(`${setName} ${c}: d=${r.d} m=${r.m} NMI uniform ${r.nmi.uniform.toFixed(3)} max ${r.nmi.max.toFixed(3)} unsup(t=1) ${r.nmi['t1'].toFixed(3)} best ${r.bestT} ${r.nmi[r.bestT].toFixed(3)} (${tFeat.toFixed(0)}+${r.scoreSeconds.toFixed(0)} s)`);
    writeFileSync(path.join(outDir, 'select-backbone.json'), JSON.stringify(results, null, 1));
  }
}

// Markdown table
const lines = ['| candidate | D | MVTec NMI uniform / max / unsup τ=1σ / best τ | MTD NMI uniform / max / unsup τ=1σ / best τ |', '|---|---|---|---|'];
for (const c of Object.keys(CANDIDATES)) {
  const cell = (r) => (r ? `${r.nmi.uniform.toFixed(3)} / ${r.nmi.max.toFixed(3)} / **${r.nmi.t1.toFixed(3)}** / ${r.nmi[r.bestT].toFixed(3)} (${r.bestT})` : '–');
  const r0 = results.mvtec?.[c] ?? results.mtd?.[c];
  lines.push(`| ${c} (${CANDIDATES[c].layers.join(', ')}) | ${r0?.d ?? '?'} | ${cell(results.mvtec?.[c])} | ${cell(results.mtd?.[c])} |`);
}
writeFileSync(path.join(outDir, 'select-backbone.md'), lines.join('\n') + '\n');
console.log(lines.join('\n'));
