#!/usr/bin/env node
// Scale benchmark (large image sets, docs/scale.md): the kernel pipeline on synthetic, clustered patch bags for
// N = 10k, 50k, 100k images, with bounded memory. Not a test: it prints a table. Run after `npm run bootstrap`
// (or `npx tsc -p .` plus the native build):
//   node benches/scale.mjs [--sizes 10000,50000,100000] [--m 49] [--d 256] [--refs 8] [--classes 10]
//                          [--chunk 1000] [--cluster-max 100000] [--backend native] [--seed 1]
//                          [--clustering auto|exact|approximate] [--approx-above 20000] [--micro-clusters 10000]
//
// `SCALE_DUMP=prefix` also writes each size's N × D embeddings to `prefix-N×D.f32` (to time the clustering alone).
//
// Data: K anomaly types. Image i has M patches of D dims: "normal" patches are one of 64 shared normal prototypes
// plus uniform noise, and 3 patches (random positions) are its type's anomaly prototype plus noise. The
// generating type is the ground truth of the NMI.
//
// Stages (each size runs in its own child process, so its peak RSS is its own):
// - generate: the patch bank is never held whole. Images are generated deterministically per chunk of
//   `--chunk` images (seeded per image), twice: once for the scores, once for the pooling. Its time is the sum.
// - weights: approximate unsupervised scores (weighting.ts `references`, here with one shared random set of R
//   reference images so it can stream): each chunk's patches against the R·M reference patches, grouped
//   nearest-neighbour kernel, mode 'mean-excluding-own' (an image never scores against itself); then
//   τ = 1 × mean within-image std of the scores (the library's default relative τ).
// - pooling: softmax weights and weighted mean per chunk → N × D embeddings (the only O(N·D) array).
// - clustering: the library's default embedding normalisation (l2-center-l2), then exact `wardFromVectors` (Ward
//   on the embeddings, O(N·D) memory, no N² matrix, O(N²·D) time) or, with `--clustering auto` above
//   `--approx-above` images (the library's default switch) or `approximate`, approximate Ward (src/pipeline/micro.ts:
//   deterministic k-means into `--micro-clusters` micro-clusters, exact size-weighted Ward on their centroids, each
//   image labelled by its micro-cluster); then a cut into K. Skipped above `--cluster-max`.
// Peak RSS: `process.resourceUsage().maxRSS` at the end of each stage (monotone, so it is the peak so far), and
// the RSS growth of the stage.
import { rng } from './rng.mjs';
import { fork } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { getBackend } from '../dist/bindings/select.js';
import { nmi } from '../dist/src/pipeline/metrics.js';
import { approximateWard, labelsOf, DEFAULT_APPROX_ABOVE, DEFAULT_MICRO_CLUSTERS } from '../dist/src/pipeline/micro.js';
import { normaliseEmbeddings } from '../dist/src/pipeline/embedding-norm.js';
import { scriptArgs } from './args.mjs';

const args = process.argv.slice(2);
scriptArgs(import.meta.url, Object.fromEntries(['m', 'd', 'refs', 'classes', 'chunk', 'cluster-max', 'backend', 'seed', 'sizes', 'one', 'clustering', 'approx-above', 'micro-clusters'].map((k) => [k, { type: 'string' }])));
const opt = (name, dflt) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : dflt;
};
const M = Number(opt('m', 49));
const D = Number(opt('d', 256));
const R = Number(opt('refs', 8));
const K = Number(opt('classes', 10));
const CHUNK = Number(opt('chunk', 1000));
const CLUSTER_MAX = Number(opt('cluster-max', 100000));
const BACKEND = opt('backend', 'native');
const SEED = Number(opt('seed', 1));
const SIZES = opt('sizes', '10000,50000,100000').split(',').map(Number);
const CLUSTERING = opt('clustering', 'auto');
const APPROX_ABOVE = Number(opt('approx-above', DEFAULT_APPROX_ABOVE));
const MICRO = Number(opt('micro-clusters', DEFAULT_MICRO_CLUSTERS));
const ANOMALOUS = 3;
const NORMAL_PROTOS = 64;

/** xorshift32 → [0, 1). */

function prototypes(count, seed, scale) {
  const r = rng(seed);
  return Float32Array.from({ length: count * D }, () => (r() * 2 - 1) * scale);
}

/** Class of each image (deterministic). */
function classOf(i) {
  return rng(SEED * 7919 + i * 2654435761)() * K | 0;
}

/** Patches of images [i0, i1) into `out` ((i1−i0)·M·D), deterministic per image. */
function generate(i0, i1, normalP, anomalyP, out) {
  for (let i = i0; i < i1; i++) {
    const r = rng((SEED * 0x85ebca6b) ^ (i * 0xc2b2ae35 + 17));
    const c = classOf(i);
    const anomalous = new Set();
    while (anomalous.size < ANOMALOUS) anomalous.add((r() * M) | 0);
    for (let p = 0; p < M; p++) {
      const row = ((i - i0) * M + p) * D;
      const src = anomalous.has(p) ? anomalyP : normalP;
      const q = anomalous.has(p) ? c : (r() * NORMAL_PROTOS) | 0;
      for (let k = 0; k < D; k++) out[row + k] = src[q * D + k] + (r() - 0.5) * 0.5;
    }
  }
}

async function runOne(N) {
  const be = getBackend(BACKEND);
  const normalP = prototypes(NORMAL_PROTOS, SEED + 1, 1);
  const anomalyP = prototypes(K, SEED + 2, 1);
  const stages = {};
  const mark = (name, t0, rss0) => {
    const prev = stages[name] ?? { ms: 0, rssGrowth: 0 };
    stages[name] = {
      ms: prev.ms + performance.now() - t0,
      rssGrowth: Math.max(prev.rssGrowth, process.memoryUsage().rss - rss0),
      peakRss: process.resourceUsage().maxRSS * 1024,
    };
  };
  const chunkBuf = new Float32Array(CHUNK * M * D);

  // References: R random images (a fixed set, so the scores can stream).
  let t = performance.now();
  let rss = process.memoryUsage().rss;
  const refIds = [];
  const rr = rng(SEED * 31 + N);
  while (refIds.length < Math.min(R, N)) {
    const j = (rr() * N) | 0;
    if (!refIds.includes(j)) refIds.push(j);
  }
  const base = new Float32Array(refIds.length * M * D);
  for (let g = 0; g < refIds.length; g++) generate(refIds[g], refIds[g] + 1, normalP, anomalyP, base.subarray(g * M * D, (g + 1) * M * D));
  mark('generate', t, rss);
  const groupOffsets = Uint32Array.from({ length: refIds.length + 1 }, (_, g) => g * M);
  const refIndex = new Map(refIds.map((id, g) => [id, g]));

  // Pass 1: scores.
  const scores = new Float32Array(N * M);
  for (let i0 = 0; i0 < N; i0 += CHUNK) {
    const i1 = Math.min(N, i0 + CHUNK);
    const nq = (i1 - i0) * M;
    const q = chunkBuf.subarray(0, nq * D);
    t = performance.now();
    rss = process.memoryUsage().rss;
    generate(i0, i1, normalP, anomalyP, q);
    mark('generate', t, rss);
    t = performance.now();
    rss = process.memoryUsage().rss;
    const queryGroups = new Int32Array(nq);
    for (let i = i0; i < i1; i++) queryGroups.fill(refIndex.get(i) ?? -1, (i - i0) * M, (i - i0 + 1) * M);
    const s = await be.groupedNNAsync({ queries: q, nq, base, groupOffsets, d: D, mode: 'mean-excluding-own', queryGroups });
    scores.set(s, i0 * M);
    mark('weights', t, rss);
  }
  t = performance.now();
  rss = process.memoryUsage().rss;
  let spread = 0;
  for (let i = 0; i < N; i++) {
    let s = 0;
    let s2 = 0;
    for (let p = i * M; p < (i + 1) * M; p++) s += scores[p];
    const mean = s / M;
    for (let p = i * M; p < (i + 1) * M; p++) s2 += (scores[p] - mean) ** 2;
    spread += Math.sqrt(s2 / M);
  }
  const tau = spread / N;
  mark('weights', t, rss);

  // Pass 2: pooling.
  const embeddings = new Float32Array(N * D);
  for (let i0 = 0; i0 < N; i0 += CHUNK) {
    const i1 = Math.min(N, i0 + CHUNK);
    const nb = i1 - i0;
    const q = chunkBuf.subarray(0, nb * M * D);
    t = performance.now();
    rss = process.memoryUsage().rss;
    generate(i0, i1, normalP, anomalyP, q);
    mark('generate', t, rss);
    t = performance.now();
    rss = process.memoryUsage().rss;
    const offsets = Uint32Array.from({ length: nb + 1 }, (_, b) => b * M);
    const w = be.softmaxWeights(scores.subarray(i0 * M, i1 * M), offsets, tau);
    embeddings.set(be.weightedMean(q, offsets, D, w), i0 * D);
    mark('pooling', t, rss);
  }

  // Clustering.
  if (process.env.SCALE_DUMP) {
    // Debug aid: the N × D embeddings as raw f32, to time the clustering alone.
    (await import('node:fs')).writeFileSync(`${process.env.SCALE_DUMP}-${N}x${D}.f32`, embeddings);
  }
  const truth = Int32Array.from({ length: N }, (_, i) => classOf(i));
  let quality = null;
  let how = 'skipped';
  if (N <= CLUSTER_MAX) {
    t = performance.now();
    rss = process.memoryUsage().rss;
    const cpu0 = process.cpuUsage();
    const x = normaliseEmbeddings(embeddings, N, D, 'l2-center-l2');
    let labels;
    if (CLUSTERING === 'approximate' || (CLUSTERING === 'auto' && N > APPROX_ABOVE && MICRO < N)) {
      let tk = 0;
      const aw = await approximateWard(x, N, D, MICRO, { backend: be, onProgress: () => { tk = performance.now(); } });
      labels = labelsOf(be.cutK(aw.Z, aw.m, K), aw.assign);
      how = `approx m=${aw.m} (k-means ${((tk - t) / 1000).toFixed(1)} s, ${aw.passes} passes; weighted ward ${((performance.now() - tk) / 1000).toFixed(1)} s)`;
    } else {
      labels = be.cutK(await be.wardFromVectorsAsync(x, N, D), N, K);
      how = 'exact';
    }
    mark('clustering', t, rss);
    const cpu = process.cpuUsage(cpu0);
    how += `, ${((cpu.user + cpu.system) / 1e6).toFixed(0)} CPU-s`;
    quality = nmi(labels, truth);
  }
  return { N, stages, nmi: quality, how, tau, isa: be.isa, threads: be.threads };
}

const fmtB = (b) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : `${(b / 2 ** 20).toFixed(0)} MiB`);

if (args[0] === '--one') {
  const r = await runOne(Number(args[1]));
  process.send?.(r);
} else {
  const be = getBackend(BACKEND);
  console.log(
    `scale bench: M=${M} patches × D=${D}, K=${K} types, R=${R} references, chunks of ${CHUNK} images; backend ${be.name} ` +
      `(${be.isa}, ${be.threads} threads), ${os.cpus().length} cores, ${fmtB(os.totalmem())} RAM, node ${process.version}`,
  );
  const rows = [];
  for (const N of SIZES) {
    const child = fork(fileURLToPath(import.meta.url), ['--one', String(N), ...args], { stdio: 'inherit' });
    const r = await new Promise((resolve, reject) => {
      let got = null;
      child.on('message', (m) => (got = m));
      child.on('exit', (code) => (code === 0 && got ? resolve(got) : reject(new Error(`N=${N}: child exited with ${code}`))));
    });
    rows.push(r);
    const cells = ['generate', 'weights', 'pooling', 'clustering'].map((s) => {
      const st = r.stages[s];
      return st ? `${(st.ms / 1000).toFixed(1).padStart(7)} s ${fmtB(st.peakRss).padStart(9)}` : '    skipped         ';
    });
    const total = Object.values(r.stages).reduce((a, st) => a + st.ms, 0) / 1000;
    const peak = Math.max(...Object.values(r.stages).map((st) => st.peakRss));
    console.log(`N=${String(N).padStart(6)} | ${cells.join(' | ')} | total ${total.toFixed(1)} s, peak ${fmtB(peak)} | clustering ${r.how} | NMI ${r.nmi === null ? '  -  ' : r.nmi.toFixed(3)}`);
  }
  console.log('\nstage columns: wall time, peak RSS of the process at the end of the stage (maxRSS)');
  console.log('growth ratio (time, peak RSS) between consecutive sizes:');
  for (let i = 1; i < rows.length; i++) {
    const [a, b] = [rows[i - 1], rows[i]];
    const parts = ['generate', 'weights', 'pooling', 'clustering']
      .filter((s) => a.stages[s] && b.stages[s])
      .map((s) => `${s} ×${(b.stages[s].ms / a.stages[s].ms).toFixed(2)} time, ×${(b.stages[s].peakRss / a.stages[s].peakRss).toFixed(2)} RSS`);
    console.log(`  ${a.N} → ${b.N} (×${(b.N / a.N).toFixed(1)} images): ${parts.join('; ')}`);
  }
}
