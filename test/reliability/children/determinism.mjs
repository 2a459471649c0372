// Runs the fixed kernel workload and one clusterImages on the native backend (or the one named in argv[4]) and
// prints hashes of everything (labels, Z, embeddings, scores) as one JSON line. The parent runs it with
// ANOMALY_CLUSTERING_THREADS=1 and =2 and compares.
// Usage: node determinism.mjs <imageDir> <cacheDir> <weighting> [backend]
import { createHash } from 'node:crypto';
import { clusterImages } from '../../../dist/src/index.js';
import { getBackend } from '../../../dist/bindings/select.js';
import { runWorkload } from './workload.mjs';

const [dir, cacheDir, weighting = 'unsupervised', backend = 'native'] = process.argv.slice(2);
const hex = (a) => createHash('sha256').update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength)).digest('hex');
const b = getBackend(backend);
const workload = await runWorkload(b, [1, 2, 3]);
const r = await clusterImages(dir, { k: 3, weighting, features: { cacheDir, threads: 1 }, resources: { backend } });
console.log(JSON.stringify({
  threads: b.threads, isa: b.isa, workload,
  cluster: { labels: Array.from(r.labels).join(''), Z: hex(r.Z), embeddings: hex(r.embeddings), scores: hex(r.scores), tau: r.tau },
}));
