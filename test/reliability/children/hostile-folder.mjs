// Issue 16 — runs the library on a hostile folder in a child process (so a hang, a crash or runaway memory is
// reported instead of taking the suite down) and prints one JSON line.
// Usage:
//   node --max-old-space-size=N hostile-folder.mjs soak <dir> <cacheDir> <maxImageBytes>
//     clusterImages(skipBad) on every backend, twice (cold, then from the cache), plus readImageBytes of every
//     listed input; prints kept files, skipped files and reasons, max RSS.
//   node hostile-folder.mjs abort <dir>
//     clusterImages without a cache, aborted at the first progress event; prints the error code and when the
//     promise settled. The process must then exit by itself (nothing left holding the event loop).
import { clusterImages, availableBackends } from '../../../dist/src/index.js';
import { listImageInputs } from '../../../dist/src/pipeline/run.js';
import { readImageBytes } from '../../../dist/src/pipeline/image.js';

const [mode, dir, cacheDir, capArg] = process.argv.slice(2);

if (mode === 'soak') {
  const maxImageBytes = Number(capArg);
  const runs = [];
  const warnings = [];
  for (const backend of availableBackends()) {
    for (const pass of ['cold', 'cached']) {
      const t0 = performance.now();
      const r = await clusterImages(dir, { k: 2, weighting: 'uniform', onWarning: (w) => warnings.push(w), features: { skipBad: true, maxImageBytes, cacheDir: `${cacheDir}-${backend}`, threads: 1, batchSize: 2 }, resources: { backend } });
      runs.push({ backend, pass, ms: performance.now() - t0, files: r.files, labels: [...r.labels], skipped: r.skipped });
    }
  }
  const reads = [];
  for (const input of listImageInputs(dir)) {
    try {
      const b = await readImageBytes(input, { maxBytes: maxImageBytes });
      reads.push({ name: typeof input === 'string' ? input : input.name, ok: b.length });
    } catch (e) {
      reads.push({ name: typeof input === 'string' ? input : input.name, code: e.code, message: e.message });
    }
  }
  console.log(JSON.stringify({ runs, reads, warnings, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
} else if (mode === 'abort') {
  const ac = new AbortController();
  let code = 'none';
  try {
    await clusterImages(dir, { k: 2, weighting: 'uniform', signal: ac.signal, onProgress: () => ac.abort(new Error('test abort')), features: { skipBad: true, cacheDir: false, threads: 1, batchSize: 2 } });
  } catch (e) {
    code = e.code ?? String(e);
  }
  console.log(JSON.stringify({ code, settledAt: Date.now() }));
} else {
  throw new Error(`unknown mode ${mode}`);
}
