// A fixed, seeded kernel workload shared by the concurrency / determinism tests (main thread, worker threads and
// child processes run the same code and compare the bytes of the results).
// Exports: data(seed) → inputs, runWorkload(backend, seeds) → { [seed]: { pdist, grouped, gmean, Z, labels } as hex SHA-256 + raw bytes }.
import { createHash } from 'node:crypto';

export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Inputs for one seed: 60 rows × 24 dims in 6 groups (+ a condensed f64 matrix of 40 points). */
export function data(seed) {
  const r = rng(seed);
  const n = 60, d = 24, ng = 6;
  const x = new Float32Array(n * d);
  for (let i = 0; i < x.length; i++) x[i] = (r() - 0.5) * 4 + (i % d === 0 ? Math.floor(i / d / 10) : 0);
  const offsets = new Uint32Array(ng + 1);
  for (let g = 0; g <= ng; g++) offsets[g] = g * (n / ng);
  const groups = new Int32Array(n).map((_, i) => Math.floor(i / (n / ng)));
  const m = 40;
  const y = new Float64Array((m * (m - 1)) / 2);
  for (let i = 0; i < y.length; i++) y[i] = 1 + r();
  return { x, n, d, offsets, groups, y, m };
}

const hex = (a) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');

/** Runs pdist / groupedNN (per-group and mean-excluding-own) / linkage (every method) / cutK on each seed's data. */
export async function runWorkload(b, seeds) {
  const out = {};
  for (const seed of seeds) {
    const { x, n, d, offsets, groups, y, m } = data(seed);
    const pd = await b.pdistAsync(x, n, d, false);
    const grouped = await b.groupedNNAsync({ queries: x, nq: n, base: x, groupOffsets: offsets, d, mode: 'per-group' });
    const gmean = await b.groupedNNAsync({ queries: x, nq: n, base: x, groupOffsets: offsets, d, mode: 'mean-excluding-own', queryGroups: groups });
    const Zs = [];
    for (const method of ['single', 'complete', 'average', 'weighted', 'ward', 'centroid', 'median']) Zs.push(await b.linkageAsync(y, m, method));
    const Zw = await b.linkageAsync(pd, n, 'ward');
    const labels = b.cutK(Zw, n, 4);
    out[seed] = {
      pdist: hex(pd), grouped: hex(grouped), gmean: hex(gmean), Z: Zs.map(hex).join(','), Zw: hex(Zw), labels: Array.from(labels).join(''),
    };
  }
  return out;
}
