#!/usr/bin/env node
// One of our operations in a fresh process, so its peak memory (maxRSS) is its own. Used by peers.mjs.
// argv[2]: JSON job {op, backend, x|y (npy path), n, d, nq, nbags, m, method, out}
import fs from 'node:fs';
import path from 'node:path';
import { getBackend } from '../dist/bindings/select.js';
import * as K from '../dist/src/kernels.js';
import { readNpy, writeNpy } from './npy.mjs';

const job = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const be = getBackend(job.backend);
const res = { op: job.op, backend: be.name, isa: be.isa, threads: be.threads };
const t = () => Number(process.hrtime.bigint()) / 1e9;
if (job.op === 'grouped') {
  const { data: x, shape } = readNpy(job.x);
  const d = shape[1];
  const offsets = new Uint32Array(job.nbags + 1).map((_, i) => i * job.m);
  const groups = new Int32Array(job.nq).map((_, i) => Math.floor(i / job.m));
  const args = { queries: x.subarray(0, job.nq * d), nq: job.nq, base: x, groupOffsets: offsets, d, mode: 'mean-excluding-own', queryGroups: groups };
  const t0 = t();
  const out = await be.groupedNNAsync(args);
  res.seconds = t() - t0;
  writeNpy(path.join(job.out, `grouped-${be.name}.npy`), out, [out.length]);
} else if (job.op === 'grouped-full') {
  // The real unsupervised layout through the public API: queries = base = every patch, own group = its image.
  // K.groupedNN recognises it and the backend runs the symmetric self-join.
  const { data: x, shape } = readNpy(job.x);
  const d = shape[1];
  const nq = shape[0];
  const offsets = new Uint32Array(job.nbags + 1).map((_, i) => i * job.m);
  const groups = new Int32Array(nq).map((_, i) => Math.floor(i / job.m));
  const t0 = t();
  const out = await K.groupedNNAsync(x, x, offsets, { d, mode: 'mean-excluding-own', queryGroups: groups, backend: be.name });
  res.seconds = t() - t0;
  writeNpy(path.join(job.out, `grouped-full-${be.name}.npy`), out, [out.length]);
} else if (job.op === 'cdist') {
  const { data: x, shape } = readNpy(job.x);
  const [n, d] = shape;
  const t0 = t();
  await be.cdistAsync(x.subarray(0, job.nq * d), job.nq, x, n, d, false);
  res.seconds = t() - t0;
} else if (job.op === 'pdist') {
  const { data: x, shape } = readNpy(job.x);
  const t0 = t();
  await be.pdistAsync(x, shape[0], shape[1], false);
  res.seconds = t() - t0;
} else if (job.op === 'linkage') {
  const { data: y } = readNpy(job.y); // f32 condensed: half of SciPy's f64 memory
  const t0 = t();
  const z = await be.linkageAsync(y, job.n, job.method);
  res.seconds = t() - t0;
  writeNpy(path.join(job.out, `Z-${be.name}.npy`), z, [job.n - 1, 4]);
} else if (job.op === 'mlhclust') {
  const { agnes } = await import('ml-hclust');
  const { data: x, shape } = readNpy(job.x);
  const rows = Array.from({ length: shape[0] }, (_, i) => Array.from(x.subarray(i * shape[1], (i + 1) * shape[1])));
  const t0 = t();
  agnes(rows, { method: job.method });
  res.seconds = t() - t0;
}
res.peak_mb = process.resourceUsage().maxRSS / 1024;
console.log(JSON.stringify(res));
