/**
 * @file Issue 7 — concurrency: many simultaneous async kernel calls agree with serial calls; worker threads (each
 * loading its own native addon and wasm module) agree with the main thread; the event loop stays responsive
 * during a long `linkageAsync`, a `clusterImages` run and `extractFeatures` (inference in a worker thread; max
 * `setInterval` lag is printed); an `AbortSignal` stops `clusterImages` / `extractFeatures` promptly with
 * `ERR_ABORTED` (latency printed), and the CLI exits 130.
 * @module test/reliability/concurrency
 */
import { writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import * as ac from '../../src/index.js';
import { clearSessions, extractFeatures, openBackbone } from '../../src/pipeline/features.js';
import { KernelError } from '../../src/errors.js';
import { EXIT, main } from '../../src/cli/main.js';
import type { Stage } from '../../src/pipeline/types.js';
import { getBackend } from '../../bindings/select.js';
import { backendsUnderTest, randomRows } from '../helpers.js';
import { CHILDREN, ensureDist, tempDir, texturedPng } from './helpers.js';
// @ts-expect-error plain ESM shared with the children (no types)
import { runWorkload } from './children/workload.mjs';

const BACKENDS = backendsUnderTest();
const bytes = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** Measures the largest gap between `setInterval(…, 2)` ticks while `work` runs. */
async function maxLag<T>(work: () => Promise<T>): Promise<{ value: T; lag: number; ms: number }> {
  let last = performance.now();
  let lag = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    lag = Math.max(lag, now - last);
    last = now;
  }, 2);
  const t0 = performance.now();
  try {
    const value = await work();
    const now = performance.now();
    lag = Math.max(lag, now - last);
    return { value, lag, ms: now - t0 };
  } finally {
    clearInterval(timer);
  }
}

describe.each(BACKENDS)('50 concurrent async calls on %s', (backend) => {
  it('give the same bytes as serial sync calls on different data', async () => {
    const jobs = Array.from({ length: 50 }, (_, i) => {
      const n = 20 + (i % 7) * 5;
      const d = 8 + (i % 5);
      const x = randomRows(n, d, 100 + i);
      const groups = [0, Math.floor(n / 3), Math.floor((2 * n) / 3), n];
      const kind = i % 3;
      return { kind, x, n, d, groups };
    });
    const serial = jobs.map((j) =>
      j.kind === 0
        ? ac.pdist(j.x, { d: j.d, backend })
        : j.kind === 1
          ? ac.groupedNN(j.x, j.x, j.groups, { d: j.d, mode: 'per-group', backend })
          : ac.linkage(ac.pdist(j.x, { d: j.d, backend: 'js' }), { method: 'average', backend }).Z,
    );
    const y = jobs.map((j) => (j.kind === 2 ? ac.pdist(j.x, { d: j.d, backend: 'js' }) : undefined));
    const concurrent = await Promise.all(
      jobs.map(async (j, i) =>
        j.kind === 0
          ? ac.pdistAsync(j.x, { d: j.d, backend })
          : j.kind === 1
            ? ac.groupedNNAsync(j.x, j.x, j.groups, { d: j.d, mode: 'per-group', backend })
            : (await ac.linkageAsync(y[i]!, { method: 'average', backend })).Z,
      ),
    );
    for (let i = 0; i < jobs.length; i++) {
      expect(bytes(concurrent[i]!).equals(bytes(serial[i]!)), `job ${i} (kind ${jobs[i]!.kind})`).toBe(true);
    }
  });
});

describe('worker threads', () => {
  beforeAll(() => ensureDist(), 180_000);
  it('each worker loads the native addon and the wasm module and gets the main thread\'s bytes', async () => {
    const seeds = [1, 2, 3];
    const backends = BACKENDS;
    const mainResults: Record<string, unknown> = {};
    for (const b of backends) mainResults[b] = await runWorkload(getBackend(b), seeds);
    const workers = Array.from({ length: 3 }, () =>
      new Promise<Record<string, { isa: string; results: unknown }>>((resolve, reject) => {
        const w = new Worker(path.join(CHILDREN, 'kernel-worker.mjs'), { workerData: { backends, seeds } });
        w.once('message', (m) => {
          resolve(m as never);
          void w.terminate();
        });
        w.once('error', reject);
        w.once('exit', (code) => code !== 0 && code !== 1 && reject(new Error(`worker exited with ${code}`)));
      }),
    );
    const got = await Promise.all(workers);
    for (const [i, r] of got.entries()) {
      for (const b of backends) {
        expect(r[b]!.isa, `worker ${i} ${b}`).toBe(getBackend(b).isa);
        expect(r[b]!.results, `worker ${i} ${b}`).toEqual(mainResults[b]);
      }
    }
  }, 60_000);
});

describe('event loop stays responsive', () => {
  it.runIf(BACKENDS.includes('native'))('during a big native linkageAsync (n = 4000) and pdistAsync', async () => {
    const n = 4000;
    const x = randomRows(n, 32, 9);
    const { value: y, lag: lagP, ms: msP } = await maxLag(() => ac.pdistAsync(x, { d: 32, backend: 'native' }));
    const { lag: lagL, ms: msL } = await maxLag(() => ac.linkageAsync(y, { method: 'ward', backend: 'native' }));
    console.log(`event-loop lag: pdistAsync n=${n}: max ${lagP.toFixed(1)} ms over ${msP.toFixed(0)} ms; linkageAsync ward n=${n}: max ${lagL.toFixed(1)} ms over ${msL.toFixed(0)} ms`);
    // pdistAsync hands the work to the pool at once. linkageAsync first validates y (O(n²), in JS) and the addon
    // copies it, both on the main thread, so part of its time is lag by design: bound it to half the call.
    expect(lagP).toBeLessThan(100);
    expect(lagL).toBeLessThan(Math.max(100, 0.5 * msL));
  }, 60_000);
});

let tmp: string;
let imgDir: string;
let smallDir: string;
/** Feature cache of imgDir, filled by the first (lag) test: later runs skip inference unless they disable it. */
let warmCache: string;
beforeAll(async () => {
  tmp = tempDir('ac-conc-');
  imgDir = path.join(tmp, 'imgs');
  smallDir = path.join(tmp, 'small');
  warmCache = path.join(tmp, 'cache');
  const { mkdirSync } = await import('node:fs');
  mkdirSync(imgDir, { recursive: true });
  mkdirSync(smallDir, { recursive: true });
  for (let i = 0; i < 6; i++) writeFileSync(path.join(imgDir, `i${i}.png`), await texturedPng(64 + 4 * i, 56, i + 3));
  for (let i = 0; i < 3; i++) writeFileSync(path.join(smallDir, `s${i}.png`), await texturedPng(50 + 4 * i, 50, i + 20));
}, 60_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('clusterImages: responsiveness and cancellation', () => {
  const backend = BACKENDS.includes('native') ? 'native' : BACKENDS[0]!;
  it(`event loop during clusterImages (${backend}, unsupervised, 6 images, no cache): lag per stage`, async () => {
    let stage = 'start';
    const lagBy: Record<string, number> = {};
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      lagBy[stage] = Math.max(lagBy[stage] ?? 0, now - last);
      last = now;
    }, 2);
    const t0 = performance.now();
    let r;
    try {
      r = await ac.clusterImages(imgDir, { k: 2, onProgress: (p) => {
          const now = performance.now();
          lagBy[stage] = Math.max(lagBy[stage] ?? 0, now - last); // the gap up to this event belongs to the stage that ran
          last = now;
          stage = p.stage;
        }, features: { cacheDir: warmCache, threads: 1 }, resources: { backend } });
    } finally {
      clearInterval(timer);
    }
    const round = (o: Record<string, number | undefined>) => JSON.stringify(Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v ?? 0)])));
    console.log(`event-loop max lag per stage during clusterImages (${backend}, 6 images): ${round(lagBy)} ms; total ${Math.round(performance.now() - t0)} ms; timings ${round(r.timings)}`);
    expect(r.n).toBe(6);
    // The kernel stages hand their work to the thread pool (native): generous bound for 2 shared cores.
    if (backend === 'native') {
      expect(lagBy.weights ?? 0).toBeLessThan(1000);
      expect(lagBy.clustering ?? 0).toBeLessThan(1000);
    }
  }, 60_000);

  // onnxruntime-node's InferenceSession.run executes the whole batch synchronously on its calling thread (inside a
  // setImmediate), and the aggregation + projection of the maps is JS (0.1–0.4 s per image): on the main thread that
  // blocked the event loop for 0.3–4.8 s per batch, and an abort waited for the batch. Both now run in a worker
  // thread (src/pipeline/inference.ts); decoding stays concurrent on the libuv pool.
  describe('feature extraction runs off the main thread', () => {
    beforeAll(() => ensureDist(), 180_000); // vitest runs the sources: the worker is the compiled dist/ file
    let files: string[];
    beforeAll(async () => {
      files = (await import('node:fs')).readdirSync(imgDir).sort().map((f) => path.join(imgDir, f));
    });

    it('event loop stays responsive during extractFeatures (6 images, 2 batches, no cache): max lag < 250 ms', async () => {
      const t0 = performance.now();
      const bs = await openBackbone({}, 1); // memoised: the one-time model parsing is measured separately below
      const openMs = performance.now() - t0;
      expect(bs.engine.where).toBe('worker');
      const { value: bank, lag, ms } = await maxLag(() => extractFeatures(files, { threads: 1, batchSize: 3, cacheDir: false }));
      console.log(`event-loop lag during extractFeatures (6 images, batch 3, inference in a ${bs.engine.where} thread): max ${lag.toFixed(1)} ms over ${ms.toFixed(0)} ms (session open: ${openMs.toFixed(0)} ms)`);
      expect(bank.n).toBe(6);
      expect(lag).toBeLessThan(250);
    }, 60_000);

    it('features are the same bytes with the worker and on the main thread', async () => {
      const viaWorker = await extractFeatures(files.slice(0, 3), { threads: 1, cacheDir: false });
      const prev = process.env.ANOMALY_CLUSTERING_INFERENCE_WORKER;
      process.env.ANOMALY_CLUSTERING_INFERENCE_WORKER = '0';
      try {
        // threads: 2 is another memo key, so a fresh session, opened in-process (onnxruntime's CPU kernels give the
        // same bytes for any intra-op thread count).
        expect((await openBackbone({}, 2)).engine.where).toBe('main');
        const onMain = await extractFeatures(files.slice(0, 3), { threads: 2, cacheDir: false });
        expect(onMain.n).toBe(3);
        expect(bytes(onMain.data).equals(bytes(viaWorker.data))).toBe(true);
      } finally {
        if (prev === undefined) delete process.env.ANOMALY_CLUSTERING_INFERENCE_WORKER;
        else process.env.ANOMALY_CLUSTERING_INFERENCE_WORKER = prev;
        await clearSessions(); // later tests get worker sessions again
      }
    }, 60_000);

    it('an abort while a batch is being inferred rejects within 250 ms; the session stays usable (same bytes next run)', async () => {
      const ref = await extractFeatures(files, { threads: 1, batchSize: 6, cacheDir: false });
      const c = new AbortController();
      let abortedAt = 0;
      const p = extractFeatures(files, {
        threads: 1, batchSize: 6, cacheDir: false, signal: c.signal,
        onProgress: (e) => {
          // The last image of the only batch is decoded: the batch goes to the worker now; abort 30 ms into it.
          if (e.stage === 'decode' && e.done === e.total && !abortedAt) {
            setTimeout(() => {
              abortedAt = performance.now();
              c.abort(new Error('test abort during inference'));
            }, 30);
          }
        },
      });
      const err = await p.then(() => undefined, (e: unknown) => e);
      const latency = performance.now() - abortedAt;
      console.log(`abort latency during inference (batch in the worker dropped): ${latency.toFixed(1)} ms`);
      expect(abortedAt, 'aborted before the run ended').toBeGreaterThan(0);
      expect((err as KernelError)?.code).toBe('ERR_ABORTED');
      expect(latency).toBeLessThan(250);
      const again = await extractFeatures(files, { threads: 1, batchSize: 6, cacheDir: false });
      expect(bytes(again.data).equals(bytes(ref.data))).toBe(true);
    }, 60_000);
  });

  const stages: Stage[] = ['decode', 'features', 'weights', 'clustering'];
  it.each(stages)(`abort during the %s stage rejects with ERR_ABORTED promptly (${backend})`, async (stage) => {
    const ac2 = new AbortController();
    let abortedAt = 0;
    // decode/features: 3 images without a cache (real decoding and inference); weights/clustering: 6 cached images.
    const early = stage === 'decode' || stage === 'features';
    const p = ac.clusterImages(early ? smallDir : imgDir, { k: 2, signal: ac2.signal, onProgress: (e) => {
        if (e.stage === stage && abortedAt === 0) {
          abortedAt = performance.now();
          ac2.abort(new Error(`test abort in ${stage}`));
        }
      }, features: { cacheDir: early ? false : warmCache, threads: 1 }, resources: { backend } });
    let err: unknown;
    try {
      await p;
    } catch (e) {
      err = e;
    }
    const latency = performance.now() - abortedAt;
    console.log(`abort latency (${backend}, abort at first '${stage}' progress event): ${latency.toFixed(1)} ms`);
    expect(abortedAt, 'the stage was reached').toBeGreaterThan(0);
    expect(err).toBeInstanceOf(KernelError);
    expect((err as KernelError).code).toBe('ERR_ABORTED');
    // decode / features: nothing heavy runs on the main thread any more (decoding on the libuv pool, inference and
    // aggregation in the worker), so the abort is seen at once; the bound leaves room for 2 shared cores.
    expect(latency).toBeLessThan(early ? 1000 : 2000);
  }, 60_000);

  it('an already-aborted signal rejects before any work', async () => {
    const c = new AbortController();
    c.abort();
    const t0 = performance.now();
    await expect(ac.clusterImages(imgDir, { k: 2, signal: c.signal, features: { cacheDir: warmCache }, resources: { backend } })).rejects.toMatchObject({ code: 'ERR_ABORTED' });
    expect(performance.now() - t0).toBeLessThan(1000);
  });

  it('abort at a random time during a run: ERR_ABORTED or a complete result, never a hang', async () => {
    for (const delay of [5, 150]) {
      const c = new AbortController();
      setTimeout(() => c.abort(), delay);
      const t0 = performance.now();
      try {
        const r = await ac.clusterImages(smallDir, { k: 2, signal: c.signal, features: { cacheDir: false, threads: 1 }, resources: { backend } });
        expect(r.n).toBe(3);
      } catch (e) {
        expect((e as KernelError).code).toBe('ERR_ABORTED');
        // Inference runs in a worker: an abort no longer waits for the running batch (it was up to seconds).
        const latency = performance.now() - t0 - delay;
        console.log(`abort latency (abort ${delay} ms after the start): ${latency.toFixed(0)} ms`);
        expect(latency).toBeLessThan(1000);
      }
    }
  }, 60_000);

  it('the CLI exits 130 when its signal aborts', async () => {
    const c = new AbortController();
    let err = '';
    // Cached features: the run is in its weights stage (hundreds of ms) when the signal fires.
    const p = main([imgDir, '--k', '2', '--cache', warmCache, '--backend', backend, '--out', path.join(tmp, 'out'), '--threads', '1'], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => ((err += s), true), isTTY: false },
      signal: c.signal,
    });
    setTimeout(() => c.abort(new Error('SIGINT')), 30);
    const t0 = performance.now();
    expect(await p).toBe(EXIT.INTERRUPTED);
    expect(performance.now() - t0).toBeLessThan(10_000);
    expect(err).toMatch(/abort/i);
  }, 60_000);
});
