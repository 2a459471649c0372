#!/usr/bin/env node
// wasm (SIMD128, one thread) vs native on ONE thread, kernel by kernel ("wasm within 3× of native
// single-thread"). The native addon's pool is sized by ANOMALY_CLUSTERING_THREADS when it loads, so this script
// re-runs itself with ANOMALY_CLUSTERING_THREADS=1. Each kernel's outputs are compared across the two backends (a
// fast wrong kernel cannot pass). Not a test: it prints a table. Run after `npm run bootstrap`:
//   node benches/wasm-vs-native.mjs [--quick]
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { scriptArgs } from './args.mjs';
import { bestTime } from './timing.mjs';

const quick = scriptArgs(import.meta.url, { quick: { type: 'boolean', default: false } }).values.quick;
if (process.env.ANOMALY_CLUSTERING_THREADS !== '1') {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit', env: { ...process.env, ANOMALY_CLUSTERING_THREADS: '1' },
  });
  process.exit(r.status ?? 1);
}

const { getBackend } = await import('../dist/bindings/select.js');
const native = getBackend('native');
const wasm = getBackend('wasm');
if (native.threads !== 1) throw new Error(`native pool has ${native.threads} threads, expected 1`);

function randn(len, seed) {
  let s = seed >>> 0 || 1;
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}
const time = (fn, minMs = 400) => bestTime(fn, minMs);
function maxRelDiff(a, b) {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]) / (1 + Math.abs(b[i])));
  return m;
}

const rows = [];
function bench(op, size, flops, run, tol = 1e-4) {
  const n = time(() => run(native));
  const w = time(() => run(wasm));
  const diff = maxRelDiff(w.out, n.out);
  if (!(diff <= tol)) throw new Error(`${op}: wasm and native disagree (max rel diff ${diff})`);
  const g = (ms) => (flops ? (flops / ms / 1e6).toFixed(1) : '');
  rows.push({
    op, size, 'native 1t': `${n.ms.toFixed(1)} ms`, 'wasm 1t': `${w.ms.toFixed(1)} ms`, 'wasm/native': `${(w.ms / n.ms).toFixed(2)}x`,
    'native GFLOP/s': g(n.ms), 'wasm GFLOP/s': g(w.ms), 'max rel diff': diff.toExponential(1),
  });
}

const s = quick ? 0.5 : 1;
{
  const [nq, nb, d] = [Math.round(500 * s), 2000, 512];
  const q = randn(nq * d, 1), b = randn(nb * d, 2);
  bench('cdist', `${nq}x${nb} d=${d}`, 2 * nq * nb * d, (be) => be.cdist(q, nq, b, nb, d, false));
}
{
  const [n, d] = [Math.round(2000 * s), 512];
  const x = randn(n * d, 3);
  bench('pdist', `n=${n} d=${d}`, n * (n - 1) * d, (be) => be.pdist(x, n, d, false));
}
{
  const [nbags, m, d] = [quick ? 4 : 8, 784, 256];
  const base = randn(nbags * m * d, 4);
  const groupOffsets = new Uint32Array(nbags + 1).map((_, i) => i * m);
  const queryGroups = new Int32Array(nbags * m).map((_, i) => Math.floor(i / m));
  const nq = 2 * m;
  bench('groupedNN mean-excl-own', `${nq} queries vs ${nbags}×${m}, d=${d}`, 2 * nq * (nbags - 1) * m * d, (be) =>
    be.groupedNN({ queries: base.subarray(0, nq * d), nq, base, groupOffsets, d, mode: 'mean-excluding-own', queryGroups: queryGroups.subarray(0, nq) }));
  bench('groupedNN self-join', `${nbags}×${m}, d=${d}`, nbags * (nbags - 1) * m * m * d, (be) =>
    be.groupedNN({ queries: base, nq: nbags * m, base, groupOffsets, d, mode: 'mean-excluding-own', queryGroups, selfJoin: true }));
}
{
  const [nbags, m, d] = [200, 784, 256];
  const x = randn(nbags * m * d, 5);
  const offsets = new Uint32Array(nbags + 1).map((_, i) => i * m);
  const w = native.softmaxWeights(randn(nbags * m, 6), offsets, 0.5);
  bench('weightedMean', `${nbags} bags × ${m} × d=${d}`, 2 * nbags * m * d, (be) => be.weightedMean(x, offsets, d, w));
}
{
  const [n, d] = [Math.round(3000 * s), 64];
  const y = native.pdist(randn(n * d, 7), n, d, false);
  bench('linkage ward (condensed)', `n=${n}`, 0, (be) => be.linkage(y, n, 'ward'), 1e-6);
}
{
  const [n, d] = [Math.round(4000 * s), 256];
  const x = randn(n * d, 8);
  bench('wardFromVectors', `n=${n} d=${d}`, 0, (be) => be.wardFromVectors(x, n, d), 0);
}
console.log(`node ${process.version}, ${os.cpus()[0]?.model}; native ${native.isa} ${native.threads} thread, wasm ${wasm.isa} 1 thread`);
console.table(rows);
