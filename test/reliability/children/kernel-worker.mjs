// worker_threads body: loads the library from dist/ (so its own copy of the native addon and of the wasm module),
// runs the reliability suite's fixed kernel workload (see workload.mjs) on the requested backends and posts the
// results back (as plain arrays of bytes, compared bitwise by the parent).
import { parentPort, workerData } from 'node:worker_threads';
import { getBackend } from '../../../dist/bindings/select.js';
import { runWorkload } from './workload.mjs';

const out = {};
for (const name of workerData.backends) {
  const b = getBackend(name);
  out[name] = { isa: b.isa, results: await runWorkload(b, workerData.seeds) };
}
parentPort.postMessage(out);
