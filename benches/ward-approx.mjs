#!/usr/bin/env node
// Approximate Ward (micro-clusters + size-weighted Ward, src/pipeline/micro.ts) against exact Ward from the vectors,
// docs/scale.md "Clustering 100 000 images". Not a test: prints a table of the agreement (ARI between the two flat clusterings at each K),
// the NMI of both against the ground truth when there is one, and the time of each. Run after `npx tsc -p .`:
//
//   node benches/ward-approx.mjs [--data mixture|bags|patches] [--n 20000] [--d 256] [--m 1000,2000,5000,10000]
//                                [--k 5,10,20] [--iterations 2 (the default; a list compares)] [--backend native] [--folder <images>] [--scales c,s,p]
//                                [--baseline 0.01]
//
// `--baseline r` also runs exact Ward on the embeddings plus Gaussian noise of r × their RMS norm (then
// re-normalised) and prints its ARI against exact Ward: how stable exact Ward's own partition is, the ceiling an
// approximation can be judged against.
//
// Data (`--data`):
// - `mixture` (default): a generated two-level Gaussian mixture: K = 10 classes of unequal sizes (∝ 1..10), each
//   made of 8 sub-modes, d = 256: class centres N(0, 0.2²), sub-modes at N(0, 0.2²) around them, points N(0, 0.6²)
//   around their sub-mode (`--scales` sets the three spreads), then the library's default embedding normalisation (l2-center-l2). Truth: the class.
// - `bags`: the image embeddings of `benches/scale.mjs` (weighted pooling of generated patch bags), read from the
//   raw f32 file that `SCALE_DUMP=prefix node benches/scale.mjs --sizes N` writes (`--input prefix-N×256.f32`),
//   then l2-center-l2. Truth: none (agreement only).
// - `patches`: real-ish embeddings: the CNN patch embeddings (default backbone, 256-dim projection) of the images
//   under `--folder` (default the MTD set), an even stride of them to n rows, then l2-center-l2. Truth: the image's
//   folder (weak: most patches of a defect image are normal surface).
import { rng } from './rng.mjs';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { getBackend } from '../dist/bindings/select.js';
import { ari, nmi } from '../dist/src/pipeline/metrics.js';
import { approximateWard, labelsOf, DEFAULT_MICRO_ITERATIONS } from '../dist/src/pipeline/micro.js';
import { normaliseEmbeddings } from '../dist/src/pipeline/embedding-norm.js';
import { scriptArgs } from './args.mjs';

const args = process.argv.slice(2);
scriptArgs(import.meta.url, Object.fromEntries(['data', 'n', 'd', 'm', 'k', 'iterations', 'backend', 'folder', 'input', 'scales', 'baseline'].map((k) => [k, { type: 'string' }])));
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const DATA = opt('data', 'mixture');
const N = Number(opt('n', 20000));
const D = Number(opt('d', 256));
const MS = opt('m', '1000,2000,5000,10000').split(',').map(Number);
const KS = opt('k', '5,10,20').split(',').map(Number);
const ITERS = opt('iterations', String(DEFAULT_MICRO_ITERATIONS)).split(',').map(Number);
const [CSCALE, SSCALE, NSCALE] = opt('scales', '0.2,0.2,0.6').split(',').map(Number);
const be = getBackend(opt('backend', 'native'));

/** xorshift32 → [0, 1). */
function gauss(r) {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

function mixture(n, d) {
  const r = rng(17);
  const K = 10;
  const SUB = 8;
  const centre = Float64Array.from({ length: K * d }, () => CSCALE * gauss(r));
  const sub = Float64Array.from({ length: K * SUB * d }, (_, i) => centre[Math.floor(i / (SUB * d)) * d + (i % d)] + SSCALE * gauss(r));
  const weightSum = (K * (K + 1)) / 2;
  const x = new Float32Array(n * d);
  const truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    // class c with probability ∝ c + 1 (deterministic per i)
    let u = r() * weightSum;
    let c = 0;
    while (u >= c + 1) { u -= c + 1; c++; }
    const s = c * SUB + Math.floor(r() * SUB);
    truth[i] = c;
    for (let t = 0; t < d; t++) x[i * d + t] = sub[s * d + t] + NSCALE * gauss(r);
  }
  return { x, truth };
}

async function patches(n, folder) {
  const { extractFeatures } = await import('../dist/src/pipeline/features.js');
  const { listImages } = await import('../dist/src/pipeline/run.js');
  const files = listImages(folder);
  const bank = await extractFeatures(files, { threads: 2 });
  const rows = bank.n * bank.m;
  const stride = rows / n;
  const x = new Float32Array(n * bank.d);
  const truth = new Int32Array(n);
  const classes = new Map();
  for (let i = 0; i < n; i++) {
    const r = Math.floor(i * stride);
    x.set(bank.data.subarray(r * bank.d, (r + 1) * bank.d), i * bank.d);
    const cls = path.relative(folder, bank.files[Math.floor(r / bank.m)]).split(path.sep)[0];
    if (!classes.has(cls)) classes.set(cls, classes.size);
    truth[i] = classes.get(cls);
  }
  console.log(`patches: ${bank.n} images × ${bank.m} patches of ${folder}, every ${stride.toFixed(2)}-th patch`);
  return { x, truth, d: bank.d };
}

let x;
let truth = null;
let d = D;
if (DATA === 'mixture') ({ x, truth } = mixture(N, D));
else if (DATA === 'bags') {
  const buf = readFileSync(opt('input'));
  x = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4).slice(0, N * D);
} else if (DATA === 'patches') ({ x, truth, d } = await patches(N, opt('folder', path.resolve('../shared/data/mtd'))));
else throw new Error(`--data: expected mixture, bags or patches, got ${DATA}`);
const n = x.length / d;
x = normaliseEmbeddings(x, n, d, 'l2-center-l2');
console.log(`approximate vs exact ward: data ${DATA}, n=${n}, d=${d}; backend ${be.name} (${be.isa}, ${be.threads} threads); ` +
  `k-means ≤ ${ITERS.join(' or ')} iterations; K = ${KS.join(', ')}`);

let t = performance.now();
const Zx = await be.wardFromVectorsAsync(x, n, d);
const exactS = (performance.now() - t) / 1000;
const exact = new Map(KS.map((k) => [k, be.cutK(Zx, n, k)]));
const q = (labels) => (truth ? nmi(labels, truth).toFixed(3) : '  -  ');
console.log(`exact ward: ${exactS.toFixed(1)} s; NMI vs truth ${KS.map((k) => `K=${k} ${q(exact.get(k))}`).join(', ')}`);
if (opt('baseline')) {
  const r = Number(opt('baseline'));
  const nr = rng(99);
  const y = Float32Array.from(x, (v) => v + (r / Math.sqrt(d)) * gauss(nr));
  const Zy = await be.wardFromVectorsAsync(normaliseEmbeddings(y, n, d, 'l2-center-l2'), n, d);
  console.log(`exact ward on the embeddings + ${r} relative noise: ARI vs exact ${KS.map((k) => `K=${k} ${ari(be.cutK(Zy, n, k), exact.get(k)).toFixed(3)}`).join(', ')}`);
}
console.log('\n|     m | iterations | k-means s | ward s | total s | passes | ' + KS.map((k) => `ARI K=${k}`).join(' | ') + ' | ' + KS.map((k) => `NMI K=${k}`).join(' | ') + ' |');
console.log('|---:|---:|---:|---:|---:|---:|' + KS.map(() => '---:').join('|') + '|' + KS.map(() => '---:').join('|') + '|');
for (const m of MS) for (const ITER of ITERS) {
  if (m >= n) continue;
  t = performance.now();
  let tw = 0;
  const aw = await approximateWard(x, n, d, m, { backend: be, iterations: ITER, onProgress: () => { tw = performance.now(); } });
  const total = (performance.now() - t) / 1000;
  const kmS = (tw - t) / 1000;
  const cells = KS.map((k) => labelsOf(be.cutK(aw.Z, aw.m, k), aw.assign));
  console.log(`| ${String(aw.m).padStart(5)} | ${ITER} | ${kmS.toFixed(1)} | ${(total - kmS).toFixed(1)} | ${total.toFixed(1)} | ${aw.passes}${aw.moved ? '' : '✓'} | ` +
    cells.map((l, i) => ari(l, exact.get(KS[i])).toFixed(3)).join(' | ') + ' | ' + cells.map((l) => q(l)).join(' | ') + ' |');
}
console.log('\nARI: agreement of the approximate flat clusters with exact ward\'s at the same K (1 = identical partitions);');
console.log('passes: k-means assignment passes (✓ converged); ward s: size-weighted ward on the m centroids.');
