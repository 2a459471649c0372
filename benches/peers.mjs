#!/usr/bin/env node
// Peer comparison (docs/performance.md): ours (native, wasm, js) against numpy/OpenBLAS, scipy, scikit-learn, fastcluster
// (the system python3's packages, when present: this script installs nothing) and ml-hclust, on the same seeded
// data, in one run. Each measurement runs in its own process so its peak RSS is its own.
//   node benches/peers.mjs [--quick]
// Correctness is checked on the benchmarked outputs: grouped scores against numpy's, Z against SciPy's.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getBackend } from '../dist/bindings/select.js';
import { readNpy, writeNpy } from './npy.mjs';
import { scriptArgs } from './args.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const quick = scriptArgs(import.meta.url, { quick: { type: 'boolean', default: false } }).values.quick;
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ac-peers-'));
const PY = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
let havePy = true;
try { execFileSync(PY, ['-c', 'import numpy, scipy, sklearn']); } catch { havePy = false; console.log('python3 numpy/scipy/sklearn not found: peers skipped'); }

function rand(len, seed) {
  let s = seed >>> 0;
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    a[i] = ((t ^ (t >>> 14)) >>> 0) / 4294967296 * 2 - 1;
  }
  return a;
}
let jobId = 0;
function runJob(cmd, args, job) {
  const f = path.join(work, `job${jobId++}.json`);
  fs.writeFileSync(f, JSON.stringify({ ...job, out: work }));
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE; delete env.OPENBLAS_L2_SIZE; // see env notes: they slow a current numpy
  const out = execFileSync(cmd, [...args, f], { env, maxBuffer: 1 << 24, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
  return JSON.parse(out.trim().split('\n').pop());
}
const ours = (job) => runJob(process.execPath, [path.join(here, 'peer-worker.mjs')], job);
const py = (job) => (havePy ? runJob(PY, [path.join(here, 'peers.py')], job) : undefined);
const rows = [];
const fmt = (s) => (s === undefined ? '' : s >= 1 ? `${s.toFixed(2)} s` : `${(s * 1000).toFixed(1)} ms`);
function row(op, size, r) { rows.push({ op, size, ...r }); console.error(op, size, JSON.stringify(r)); }

const native = getBackend('native');
console.log(`node ${process.version}; ${os.cpus()[0]?.model}; ${os.cpus().length} cores; native isa=${native.isa} threads=${native.threads}`);

// sgemm reference
const sg = py({ op: 'sgemm', n: 2000, d: 1024 });
if (sg) row('numpy sgemm (OpenBLAS)', '2000x1024 @ 1024x2000', { peer: fmt(sg.seconds), 'GFLOP/s': sg.gflops.toFixed(1), blas: JSON.stringify(sg.blas) });

// grouped nearest neighbour (unsupervised patch scores)
{
  const [nbags, m, d] = quick ? [20, 784, 256] : [100, 784, 1024];
  const nq = quick ? 784 : 784 * 4;
  const x = rand(nbags * m * d, 11);
  const xf = path.join(work, 'bank.npy');
  writeNpy(xf, x, [nbags * m, d]);
  const flops = (q) => 2 * q * (nbags - 1) * m * d;
  const r = {};
  const nat = ours({ op: 'grouped', backend: 'native', x: xf, nbags, m, nq });
  r.native = fmt(nat.seconds); r['native GFLOP/s'] = (flops(nq) / nat.seconds / 1e9).toFixed(1);
  r['native MB'] = nat.peak_mb.toFixed(0);
  const wq = quick ? 64 : 196;
  const w = ours({ op: 'grouped', backend: 'wasm', x: xf, nbags, m, nq: wq });
  r['wasm (extrap.)'] = fmt((w.seconds * nq) / wq); r['wasm GFLOP/s'] = (flops(wq) / w.seconds / 1e9).toFixed(1);
  const jq = quick ? 8 : 16;
  const j = ours({ op: 'grouped', backend: 'js', x: xf, nbags, m, nq: jq });
  r['js (extrap.)'] = fmt((j.seconds * nq) / jq); r['js GFLOP/s'] = (flops(jq) / j.seconds / 1e9).toFixed(2);
  const p = py({ op: 'grouped', x: xf, nbags, m, nq });
  if (p) {
    r['numpy chunked'] = fmt(p.seconds); r['numpy GFLOP/s'] = p.gflops.toFixed(1); r['numpy MB'] = p.peak_mb.toFixed(0);
    r['ours/numpy speed-up'] = `${(p.seconds / nat.seconds).toFixed(2)}x`;
    if (sg) r['native % of sgemm'] = `${((100 * flops(nq)) / nat.seconds / 1e9 / sg.gflops).toFixed(0)}%`;
    const a = readNpy(path.join(work, 'grouped-native.npy')).data, b = readNpy(path.join(work, 'grouped.npy')).data;
    let md = 0; for (let i = 0; i < a.length; i++) md = Math.max(md, Math.abs(a[i] - b[i]) / (1e-6 + Math.abs(b[i])));
    r['max rel diff vs numpy'] = md.toExponential(1);
    if (md > 1e-3) throw new Error(`grouped scores disagree with numpy: ${md}`);
  }
  row('groupedNN mean-excl-own', `${nbags} bags x ${m} x d=${d}, ${nq} queries`, r);
}

// The full unsupervised problem (queries = base = every patch): the symmetric self-join multiplies each pair of
// images once. GFLOP/s use the standard count, 2·M²·D per ordered pair of distinct images, for both sides.
{
  const [nbags, m, d] = quick ? [8, 784, 256] : [30, 784, 1024];
  const x = rand(nbags * m * d, 23);
  const xf = path.join(work, 'bank-full.npy');
  writeNpy(xf, x, [nbags * m, d]);
  const flops = 2 * nbags * (nbags - 1) * m * m * d;
  const r = {};
  const nat = ours({ op: 'grouped-full', backend: 'native', x: xf, nbags, m });
  r.native = fmt(nat.seconds); r['native GFLOP/s'] = (flops / nat.seconds / 1e9).toFixed(1);
  r['native MB'] = nat.peak_mb.toFixed(0);
  const p = py({ op: 'grouped', x: xf, nbags, m, full: true });
  if (p) {
    r['numpy chunked'] = fmt(p.seconds); r['numpy GFLOP/s'] = (flops / p.seconds / 1e9).toFixed(1); r['numpy MB'] = p.peak_mb.toFixed(0);
    r['ours/numpy speed-up'] = `${(p.seconds / nat.seconds).toFixed(2)}x`;
    if (sg) r['native % of sgemm'] = `${((100 * flops) / nat.seconds / 1e9 / sg.gflops).toFixed(0)}% (counted flops)`;
    const a = readNpy(path.join(work, 'grouped-full-native.npy')).data, b = readNpy(path.join(work, 'grouped.npy')).data;
    let md = 0; for (let i = 0; i < a.length; i++) md = Math.max(md, Math.abs(a[i] - b[i]) / (1e-6 + Math.abs(b[i])));
    r['max rel diff vs numpy'] = md.toExponential(1);
    if (md > 1e-3) throw new Error(`full grouped scores disagree with numpy: ${md}`);
  }
  row('groupedNN self-join (full scores)', `${nbags} bags x ${m} x d=${d}, all ${nbags * m} queries`, r);
}

// cdist / pdist
for (const d of quick ? [512] : [512, 1536]) {
  const n = quick ? 2000 : 5000;
  const nq = quick ? 500 : 1000;
  const x = rand(n * d, 13 + d);
  const xf = path.join(work, `x${d}.npy`);
  writeNpy(xf, x, [n, d]);
  const r = {};
  const nat = ours({ op: 'cdist', backend: 'native', x: xf, nq });
  const w = ours({ op: 'cdist', backend: 'wasm', x: xf, nq: nq / 10 });
  const j = ours({ op: 'cdist', backend: 'js', x: xf, nq: nq / 100 });
  r.native = fmt(nat.seconds); r['native GFLOP/s'] = ((2 * nq * n * d) / nat.seconds / 1e9).toFixed(1);
  r['wasm (extrap.)'] = fmt(w.seconds * 10); r['js (extrap.)'] = fmt(j.seconds * 100);
  r['native/js'] = `${((j.seconds * 100) / nat.seconds).toFixed(0)}x`;
  r['wasm/native'] = `${((w.seconds * 10) / nat.seconds).toFixed(1)}x slower`;
  const p = py({ op: 'cdist', x: xf, nq, scipy: true });
  if (p) {
    r['sklearn euclidean_distances'] = fmt(p.sklearn_seconds); r['scipy cdist'] = fmt(p.scipy_seconds);
    r['ours vs sklearn'] = `${(p.sklearn_seconds / nat.seconds).toFixed(2)}x`; r['ours vs scipy'] = `${(p.scipy_seconds / nat.seconds).toFixed(1)}x`;
  }
  row('cdist', `${nq}x${n} d=${d}`, r);
  if (d === 512) {
    const r2 = {};
    const pn = ours({ op: 'pdist', backend: 'native', x: xf });
    r2.native = fmt(pn.seconds); r2['native MB'] = pn.peak_mb.toFixed(0);
    r2['native GFLOP/s'] = ((n * (n - 1) * d) / pn.seconds / 1e9).toFixed(1);
    const pp = py({ op: 'pdist', x: xf });
    if (pp) {
      r2['scipy pdist'] = fmt(pp.scipy_seconds); r2['sklearn euclidean_distances (square)'] = fmt(pp.sklearn_seconds);
      r2['ours vs scipy'] = `${(pp.scipy_seconds / pn.seconds).toFixed(1)}x`; r2['ours vs sklearn'] = `${(pp.sklearn_seconds / pn.seconds).toFixed(2)}x`;
      r2['peer MB'] = pp.peak_mb.toFixed(0);
    }
    row('pdist', `n=${n} d=${d}`, r2);
  }
}

// linkage on n points (condensed f32 for ours = half SciPy's f64 memory)
{
  const n = quick ? 3000 : 20000, d = 32;
  const x = rand(n * d, 17);
  const y = native.pdist(x, n, d, false);
  const yf = path.join(work, 'y.npy');
  writeNpy(yf, y, [y.length]);
  for (const method of ['ward', 'average', 'complete']) {
    const r = {};
    const nat = ours({ op: 'linkage', backend: 'native', y: yf, n, method });
    r.native = fmt(nat.seconds); r['native MB'] = nat.peak_mb.toFixed(0);
    const p = py({ op: 'linkage', y: yf, method });
    if (p) {
      r.scipy = fmt(p.scipy_seconds); r['scipy MB'] = p.peak_mb.toFixed(0);
      if (p.fastcluster_seconds !== undefined) r.fastcluster = fmt(p.fastcluster_seconds);
      r['ours vs scipy'] = `${(p.scipy_seconds / nat.seconds).toFixed(2)}x`;
      const za = readNpy(path.join(work, 'Z-native.npy')).data, zb = readNpy(path.join(work, 'Z-scipy.npy')).data;
      let md = 0; for (let i = 2; i < za.length; i += 4) md = Math.max(md, Math.abs(za[i] - zb[i]) / (1e-9 + Math.abs(zb[i])));
      r['max rel diff of heights vs scipy'] = md.toExponential(1);
      if (md > 1e-4) throw new Error(`${method} heights disagree with scipy: ${md}`);
    }
    row(`linkage ${method}`, `n=${n}`, r);
  }
}
// JS peer: ml-hclust
{
  const n = quick ? 500 : 2000, d = 32;
  const x = rand(n * d, 19);
  const xf = path.join(work, 'xh.npy');
  writeNpy(xf, x, [n, d]);
  const y = native.pdist(x, n, d, false);
  const yf = path.join(work, 'yh.npy');
  writeNpy(yf, y, [y.length]);
  const r = {};
  for (const b of ['native', 'wasm', 'js']) r[b] = fmt(ours({ op: 'linkage', backend: b, y: yf, n, method: 'ward' }).seconds);
  const h = ours({ op: 'mlhclust', backend: 'js', x: xf, method: 'ward' });
  r['ml-hclust agnes'] = fmt(h.seconds);
  row('linkage ward (JS peer)', `n=${n}`, r);
}
console.table(rows);
fs.rmSync(work, { recursive: true, force: true });
