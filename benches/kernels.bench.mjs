#!/usr/bin/env node
// Kernel benchmark: native vs wasm vs js on realistic sizes, with GFLOP/s for the distance work and the
// ratios native/js and native/wasm. Not a test: it prints figures. Run after `npm run bootstrap`:
//   node benches/kernels.bench.mjs [--quick]
// Slow backends run on a slice of the queries (the per-query cost is uniform), and the slice is printed:
// GFLOP/s is exact for what ran; times for the full size are extrapolated and marked with '~'.
import os from 'node:os';
import { availableBackends, getBackend, loadErrors } from '../dist/bindings/select.js';
import { scriptArgs } from './args.mjs';
import { bestTime } from './timing.mjs';

const quick = scriptArgs(import.meta.url, { quick: { type: 'boolean', default: false } }).values.quick;
const backends = availableBackends().map((n) => getBackend(n));
for (const { backend, error } of loadErrors()) console.log(`backend ${backend} unavailable: ${error.message}`);

function rng(seed) {
  let s = BigInt(seed);
  return () => {
    s = (s + 0x9e3779b97f4a7c15n) & 0xffffffffffffffffn;
    let z = s;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & 0xffffffffffffffffn;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & 0xffffffffffffffffn;
    return Number((z ^ (z >> 31n)) >> 11n) / 2 ** 53;
  };
}
function randn(len, seed) {
  const r = rng(seed);
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = r() * 2 - 1;
  return a;
}
const time = (fn, minMs = 300) => bestTime(fn, minMs);
const rows = [];
function report(op, size, name, ms, flops, fraction = 1) {
  const full = ms / fraction;
  rows.push({
    op, size, backend: name,
    'time': `${fraction < 1 ? '~' : ''}${full >= 1000 ? (full / 1000).toFixed(2) + ' s' : full.toFixed(1) + ' ms'}`,
    'GFLOP/s': flops ? (flops / (ms * 1e6)).toFixed(flops / (ms * 1e6) < 1 ? 2 : 1) : '',
    ran: fraction < 1 ? `${(fraction * 100).toFixed(1)}% of queries` : 'all',
    _full: full,
  });
}
function maxRelDiff(a, b) {
  let m = 0;
  for (let i = 0; i < Math.min(a.length, b.length); i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return m;
}

const budget = { native: 1, wasm: 0.1, js: 0.01 }; // query fraction for the heavy kernels

// 1. cdist
{
  const [nq, nb, d] = quick ? [1000, 1000, 512] : [5000, 5000, 1536];
  const q = randn(nq * d, 1), b = randn(nb * d, 2);
  const flops = 2 * nq * nb * d;
  let ref;
  for (const be of backends) {
    const f = Math.min(1, budget[be.name] * (quick ? 4 : 1));
    const sq = Math.max(1, Math.floor(nq * f));
    const { ms, out } = time(() => be.cdist(q.subarray(0, sq * d), sq, b, nb, d, false));
    report('cdist', `${nq}x${nb} d=${d}`, be.name, ms, 2 * sq * nb * d, sq / nq);
    if (!ref) ref = out; else if (maxRelDiff(out, ref.subarray(0, out.length)) > 1e-3) throw new Error(`cdist ${be.name} disagrees`);
  }
  void flops;
}
// 2. pdist
{
  const [n, d] = quick ? [1000, 512] : [5000, 1536];
  const x = randn(n * d, 3);
  let ref;
  for (const be of backends) {
    if (be.name === 'js' && !quick) {
      const m = 1000; const { ms } = time(() => be.pdist(x.subarray(0, m * d), m, d, false));
      report('pdist', `n=${n} d=${d}`, be.name, ms, m * (m - 1) * d, (m * (m - 1)) / (n * (n - 1)));
      continue;
    }
    const { ms, out } = time(() => be.pdist(x, n, d, false));
    report('pdist', `n=${n} d=${d}`, be.name, ms, n * (n - 1) * d);
    if (!ref) ref = out; else if (maxRelDiff(out, ref) > 1e-3) throw new Error(`pdist ${be.name} disagrees`);
  }
}
// 3. grouped nearest neighbour (unsupervised patch scores)
{
  const [nbags, m, d] = quick ? [20, 196, 256] : [100, 784, 1024];
  const nrows = nbags * m;
  const base = randn(nrows * d, 4);
  const offsets = new Uint32Array(nbags + 1).map((_, i) => i * m);
  const groups = new Int32Array(nrows).map((_, i) => Math.floor(i / m));
  const flopsPerQuery = 2 * (nrows - m) * d;
  let ref;
  for (const be of backends) {
    const frac = quick ? Math.min(1, budget[be.name] * 10) : budget[be.name] * (be.name === 'native' ? 0.2 : 0.1);
    const nq = Math.max(1, Math.floor(nrows * frac));
    const args = { queries: base.subarray(0, nq * d), nq, base, groupOffsets: offsets, d, mode: 'mean-excluding-own', queryGroups: groups.subarray(0, nq) };
    const { ms, out } = time(() => be.groupedNN(args), 1);
    report('groupedNN mean-excl-own', `${nbags} bags x ${m} x d=${d}`, be.name, ms, flopsPerQuery * nq, nq / nrows);
    if (!ref) ref = out; else if (maxRelDiff(out, ref.subarray(0, out.length)) > 1e-3) throw new Error(`groupedNN ${be.name} disagrees`);
  }
}
// 4. softmax + weighted mean (cheap; per bag)
{
  const [nbags, m, d] = [quick ? 50 : 500, 784, 256];
  const rowsF = randn(nbags * m * d, 5);
  const scores = randn(nbags * m, 6);
  const offsets = new Uint32Array(nbags + 1).map((_, i) => i * m);
  for (const be of backends) {
    const w = time(() => be.softmaxWeights(scores, offsets, 0.5));
    report('softmaxWeights', `${nbags} bags x ${m}`, be.name, w.ms, 0);
    const wm = time(() => be.weightedMean(rowsF, offsets, d, w.out));
    report('weightedMean', `${nbags} bags x ${m} x d=${d}`, be.name, wm.ms, 2 * nbags * m * d);
  }
}
// 5. linkage
for (const n of quick ? [2000] : [5000, 20000]) {
  const d = 64;
  const x = randn(n * d, 7);
  const y = getBackend(backends[0].name).pdist(x, n, d, false);
  let refZ;
  for (const method of ['ward', 'average', 'complete', 'single']) {
    for (const be of backends) {
      if (n > 5000 && be.name !== 'native' && method !== 'ward') continue;
      const { ms, out } = time(() => be.linkage(y, n, method), 1);
      report(`linkage ${method}`, `n=${n}`, be.name, ms, 0);
      if (method === 'ward') {
        if (!refZ) refZ = out;
        else if (maxRelDiff(out.filter((_, i) => i % 4 === 2), refZ.filter((_, i) => i % 4 === 2)) > 1e-4) throw new Error(`ward ${be.name} heights disagree`);
      }
    }
    refZ = method === 'ward' ? refZ : undefined;
  }
}

const byKey = new Map();
for (const r of rows) {
  const k = `${r.op}|${r.size}`;
  if (!byKey.has(k)) byKey.set(k, {});
  byKey.get(k)[r.backend] = r._full;
}
for (const r of rows) {
  const t = byKey.get(`${r.op}|${r.size}`);
  r['native/js'] = t.native && t.js ? (t.js / t.native).toFixed(1) + 'x' : '';
  r['native/wasm'] = t.native && t.wasm ? (t.wasm / t.native).toFixed(1) + 'x' : '';
  delete r._full;
}
console.log(`node ${process.version}, ${os.cpus()[0]?.model}, ${os.cpus().length} cores; isa: ${backends.map((b) => `${b.name}=${b.isa}/${b.threads}t`).join(' ')}`);
console.table(rows);
