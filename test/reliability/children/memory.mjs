// Leak check (run with --expose-gc): warm up, then `iters` loops of every native / wasm / js kernel (sync and async,
// success and error paths) plus a small clusterImages every 10th loop; prints RSS after gc at warm-up end, halfway
// and the end as one JSON line.
// Usage: node --expose-gc memory.mjs <imageDir> <cacheDir> [iters=200]
import { clusterImages, availableBackends } from '../../../dist/src/index.js';
import { getBackend } from '../../../dist/bindings/select.js';
import { data } from './workload.mjs';

const [dir, cacheDir, itersArg = '200'] = process.argv.slice(2);
const iters = Number(itersArg);
const backends = availableBackends().map((b) => getBackend(b));
const { x, n, d, offsets, groups, y, m } = data(5);
const bigX = new Float32Array(300 * 64).map((_, i) => Math.sin(i * 0.37));

async function once(i) {
  for (const b of backends) {
    const fast = b.name !== 'js' || i % 10 === 0; // the js backend is slow: fewer heavy calls
    b.pdist(x, n, d, false);
    await b.pdistAsync(fast ? bigX : x, fast ? 300 : n, fast ? 64 : d, true);
    b.cdist(x, n, x, n, d, false);
    await b.cdistAsync(x.subarray(0, 10 * d), 10, x, n, d, false);
    b.groupedNN({ queries: x, nq: n, base: x, groupOffsets: offsets, d, mode: 'per-group' });
    await b.groupedNNAsync({ queries: x, nq: n, base: x, groupOffsets: offsets, d, mode: 'mean-excluding-own', queryGroups: groups, selfJoin: true });
    await b.groupedNNAsync({ queries: x, nq: n, base: x, groupOffsets: offsets, d, mode: 'min' });
    const w = b.softmaxWeights(x.subarray(0, n), offsets, 0.5);
    b.weightedMean(x, offsets, d, w);
    b.maxPool(x, offsets, d);
    const Z = b.linkage(y, m, i % 2 ? 'ward' : 'centroid');
    await b.linkageAsync(new Float32Array(y), m, 'average');
    b.cutK(Z, m, 3);
    b.cutHeight(Z, m, 1.5);
    // Error paths allocate messages and (native) napi error objects.
    for (const f of [() => b.pdist(x, n + 1, d, false), () => b.linkage(y, m + 1, 'ward'), () => b.cutK(Z, m, 0)]) {
      try { f(); } catch { /* expected */ }
    }
    try { await b.pdistAsync(x, n, d + 1, false); } catch { /* expected */ }
  }
  if (i % 10 === 0) await clusterImages(dir, { k: 2, weighting: 'uniform', features: { cacheDir, threads: 1 }, resources: { backend: backends[0].name } });
}

const rss = () => {
  globalThis.gc();
  globalThis.gc();
  return process.memoryUsage();
};
const t0 = performance.now();
for (let i = 0; i < 30; i++) await once(i);
const warm = rss();
// RSS after gc every iters/10 loops; the least-squares slope is robust to allocator noise.
const samples = [];
for (let i = 0; i < iters; i++) {
  await once(i);
  if ((i + 1) % (iters / 10) === 0) samples.push([i + 1, rss().rss]);
}
const end = rss();
const mean = (a) => a.reduce((s, v) => s + v, 0) / a.length;
const mx = mean(samples.map((p) => p[0])), my = mean(samples.map((p) => p[1]));
const slope = samples.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / samples.reduce((s, [x]) => s + (x - mx) ** 2, 0);
const MB = (v) => Math.round((v / 2 ** 20) * 100) / 100;
console.log(JSON.stringify({
  backends: backends.map((b) => b.name), iters, ms: Math.round(performance.now() - t0),
  rssWarm: MB(warm.rss), rssEnd: MB(end.rss), rssSamples: samples.map((p) => MB(p[1])),
  heapWarm: MB(warm.heapUsed), heapEnd: MB(end.heapUsed),
  externalWarm: MB(warm.external + warm.arrayBuffers), externalEnd: MB(end.external + end.arrayBuffers),
  growth: MB(end.rss - warm.rss), slopePer100: MB(slope * 100),
}));
