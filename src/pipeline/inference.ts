/**
 * @file Where the CNN runs: an onnxruntime-node session in a `worker_threads` worker (`inference-worker.ts`), so
 * that the main event loop stays free during inference, or — when the compiled worker is not available — on the
 * main thread as before.
 *
 * Why a worker: in onnxruntime-node (1.30) `InferenceSession.create` loads the model and `session.run` executes
 * the whole batch **synchronously** on the calling thread (`run` only defers the blocking call with
 * `setImmediate`), which stalled the event loop for 0.3–4.8 s per batch (measured, 2 shared cores).
 *
 * The worker is the compiled `inference-worker.js` next to this module (`dist/src/pipeline/`); when this module
 * runs from its TypeScript source (vitest), the compiled copy under `<root>/dist/` is used (`npx tsc -p .`), since
 * plain `node` cannot load `.ts` in a worker. Without either (or with `ANOMALY_CLUSTERING_INFERENCE_WORKER=0`),
 * inference runs on the main thread. Results are the same bytes either way: the same session options and inputs
 * reach the same onnxruntime build.
 *
 * Cancellation: {@link InferenceEngine.run} takes the caller's `AbortSignal`. An abort rejects the caller's
 * requests at once with `ERR_ABORTED` (the main thread never waits for the batch) and cancels those the worker has
 * not started; the batch running in the worker finishes there (onnxruntime's `run` cannot be interrupted, and
 * terminating the thread inside it aborts the process) and its result — buffers and all — is dropped. Other
 * callers of the same session are not affected.
 * @module pipeline/inference
 */
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { batchFeatures, fetchesFor } from './batch-features.js';
import type { PatchSpec } from './patch-spec.js';
import { abortError, throwIfAborted } from './context.js';

/** Environment variable: `0` runs inference on the main thread (no worker). */
export const INFERENCE_WORKER_ENV = 'ANOMALY_CLUSTERING_INFERENCE_WORKER';
/** Must equal `INFERENCE_PROTOCOL` in `inference-worker.ts` (checked at start: a stale `dist/` is not used). */
const PROTOCOL = 2;
/** Marks our `workerData`, so that the worker module does nothing when imported in some other worker. */
const KIND = 'anomaly-clustering/inference';

type Ort = typeof import('onnxruntime-node');
let ortPromise: Promise<Ort> | undefined;
function getOrt(): Promise<Ort> {
  ortPromise ??= import('onnxruntime-node').then((m) => ((m as unknown as { default?: Ort }).default ?? m) as Ort);
  return ortPromise;
}

/** One output tensor. */
export interface RawOutput {
  data: Float32Array;
  dims: number[];
}

/** An open onnxruntime session, wherever it runs. */
export interface InferenceEngine {
  /** `'worker'` (off the main thread) or `'main'`. */
  readonly where: 'worker' | 'main';
  /** The session's input names. */
  readonly inputNames: readonly string[];
  /**
   * Runs the model on one float32 input; resolves to the outputs `fetch` (default: every graph output) by name. The
   * caller may reuse `input` as soon as this returns (the worker gets a copy). @throws {KernelError} `ERR_ABORTED`
   * when `signal` aborts while the request waits or runs
   */
  run(inputName: string, input: Float32Array, dims: number[], signal?: AbortSignal, fetch?: string[]): Promise<Record<string, RawOutput>>;
  /**
   * {@link run}, then the batch's patch embeddings (`batchFeatures`, `n × m × d`), computed where the model runs
   * (in the worker: the aggregation and projection are JS too, 0.1–0.4 s per image).
   */
  runFeatures(inputName: string, input: Float32Array, dims: number[], spec: PatchSpec, signal?: AbortSignal): Promise<Float32Array>;
  /** Frees the session (and ends the worker). */
  release(): Promise<void>;
}

/** The modules the worker runs, by base name (a compiled copy older than its source is stale). */
const WORKER_MODULES = ['inference-worker', 'batch-features', 'aggregate'];

/**
 * The compiled worker file to start, or `undefined` when there is none (see the module doc). From the TypeScript
 * sources, the `dist/` copy is used only if it is at least as new as the sources of the modules it runs, so that
 * a test never runs stale aggregation code in the worker (it falls back to the main thread instead).
 */
export function inferenceWorkerFile(here: string = import.meta.url): string | undefined {
  const local = fileURLToPath(new URL('./inference-worker.js', here));
  if (existsSync(local)) return local;
  if (!here.endsWith('.ts')) return undefined;
  const dist = new URL('../../dist/src/pipeline/', here);
  const file = fileURLToPath(new URL('inference-worker.js', dist));
  try {
    for (const m of WORKER_MODULES) {
      if (statSync(fileURLToPath(new URL(`${m}.js`, dist))).mtimeMs < statSync(fileURLToPath(new URL(`./${m}.ts`, here))).mtimeMs) {
        warnFallback(`${file} is older than src/pipeline/${m}.ts`);
        return undefined;
      }
    }
  } catch {
    return undefined; // not compiled
  }
  return file;
}

/** Thrown when a worker cannot start (stale or broken compiled file, not the model): fall back to the main thread. */
class WorkerUnavailableError extends Error {}

let warnedFallback = false;
function warnFallback(why: string): void {
  if (warnedFallback) return;
  warnedFallback = true;
  process.emitWarning(`${why}; running inference on the main thread (rebuild with \`npx tsc -p .\`)`, 'AnomalyClusteringWarning');
}

/**
 * Opens a session on `model` (ONNX bytes) with onnxruntime `options`, in a worker when possible.
 * @throws {Error} onnxruntime's error when the model cannot be loaded (the caller words it)
 */
export async function createInference(
  model: Uint8Array,
  options: Record<string, unknown>,
  env: Record<string, string | undefined> = process.env,
): Promise<InferenceEngine> {
  const file = env[INFERENCE_WORKER_ENV] === '0' ? undefined : inferenceWorkerFile();
  if (file) {
    try {
      return await WorkerInference.start(file, model, options);
    } catch (e) {
      if (!(e instanceof WorkerUnavailableError)) throw e;
      warnFallback(e.message);
    }
  }
  return createInline(model, options);
}

async function createInline(model: Uint8Array, options: Record<string, unknown>): Promise<InferenceEngine> {
  const ort = await getOrt();
  const session = await ort.InferenceSession.create(model, options);
  const run = async (inputName: string, input: Float32Array, dims: number[], signal?: AbortSignal, fetch?: string[]) => {
    throwIfAborted(signal, 'inference');
    const feeds = { [inputName]: new ort.Tensor('float32', input, dims) };
    const out = await (fetch ? session.run(feeds, fetch) : session.run(feeds));
    const res: Record<string, RawOutput> = {};
    for (const [name, t] of Object.entries(out)) res[name] = { data: t.data as Float32Array, dims: [...(t.dims as readonly number[])] };
    return res;
  };
  return {
    where: 'main',
    inputNames: [...session.inputNames],
    run,
    runFeatures: async (inputName, input, dims, spec, signal) => batchFeatures(await run(inputName, input, dims, signal, fetchesFor(spec)), spec),
    release: () => session.release(),
  };
}


interface Pending {
  worker: Worker;
  resolve: (v: Record<string, RawOutput> | Float32Array) => void;
  reject: (e: unknown) => void;
  done: () => void;
}

type FromWorker =
  | { type: 'ready'; protocol: number; inputNames: string[] }
  | { type: 'result'; id: number; outputs?: Record<string, RawOutput>; features?: Float32Array }
  | { type: 'cancelled'; id: number }
  | { type: 'error'; id?: number; message: string; stale?: boolean };

/**
 * A session in a worker thread. Requests are answered in order; an aborted request is rejected at once and
 * cancelled in the worker if it has not started (a running one finishes there, its result is dropped: a worker
 * cannot be terminated inside onnxruntime's native `run` without aborting the process, see {@link release}).
 */
class WorkerInference implements InferenceEngine {
  readonly where = 'worker' as const;
  inputNames: readonly string[] = [];
  private worker: Worker | undefined;
  private starting: Promise<Worker> | undefined;
  private nextId = 1;
  /** Requests whose promise is still open. */
  private readonly pending = new Map<number, Pending>();
  /** Requests posted to a worker and not answered yet (cancelled ones included): the worker is ref'd meanwhile. */
  private readonly busy = new Map<Worker, number>();

  private constructor(
    private readonly file: string,
    private readonly model: Uint8Array,
    private readonly options: Record<string, unknown>,
  ) {}

  static async start(file: string, model: Uint8Array, options: Record<string, unknown>): Promise<WorkerInference> {
    const w = new WorkerInference(file, model, options);
    await w.ensure();
    return w;
  }

  /** The running worker, or a new one once its session is ready. */
  private ensure(): Promise<Worker> {
    if (this.worker) return Promise.resolve(this.worker);
    this.starting ??= new Promise<Worker>((resolve, reject) => {
      const worker = new Worker(this.file, {
        workerData: { kind: KIND, protocol: PROTOCOL, model: this.model, options: this.options },
      });
      let ready = false;
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          if (m.protocol !== PROTOCOL) {
            reject(new WorkerUnavailableError(`${this.file} speaks inference protocol ${m.protocol}, expected ${PROTOCOL}`));
            void worker.terminate(); // idle: safe to terminate
            return;
          }
          ready = true;
          this.inputNames = m.inputNames;
          this.worker = worker;
          worker.unref(); // idle: never keeps the process alive
          resolve(worker);
          return;
        }
        if (m.id === undefined) {
          if (m.type === 'error') reject(m.stale ? new WorkerUnavailableError(m.message) : new Error(m.message));
          return;
        }
        this.answered(worker);
        const p = this.pending.get(m.id);
        if (!p) return; // aborted: dropped
        this.pending.delete(m.id);
        p.done();
        if (m.type === 'result') p.resolve(m.features ?? m.outputs!);
        else p.reject(new Error(m.type === 'error' ? m.message : 'inference request cancelled'));
      });
      worker.on('error', (e) => {
        // Before `ready` this is the worker's own code failing (e.g. a module missing from dist/), not the model.
        if (!ready) reject(new WorkerUnavailableError(`the inference worker ${this.file} failed to start: ${e.message}`));
        this.fail(worker, e);
      });
      worker.on('exit', (code) => {
        if (!ready) reject(new WorkerUnavailableError(`the inference worker ${this.file} exited (code ${code}) before its session was ready`));
        this.fail(worker, new Error(`the inference worker exited (code ${code})`));
      });
    }).finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** One posted request of `worker` was answered: unref it when none is left. */
  private answered(worker: Worker): void {
    const left = (this.busy.get(worker) ?? 1) - 1;
    if (left > 0) {
      this.busy.set(worker, left);
    } else {
      this.busy.delete(worker);
      worker.unref();
    }
  }

  /** The worker is gone: its open requests reject with `e`. */
  private fail(worker: Worker, e: unknown): void {
    if (this.worker === worker) this.worker = undefined;
    this.busy.delete(worker);
    for (const [id, p] of [...this.pending]) {
      if (p.worker !== worker) continue;
      this.pending.delete(id);
      p.done();
      p.reject(e);
    }
  }

  run(inputName: string, input: Float32Array, dims: number[], signal?: AbortSignal, fetch?: string[]): Promise<Record<string, RawOutput>> {
    return this.request({ inputName, data: input, dims, fetch }, signal) as Promise<Record<string, RawOutput>>;
  }

  runFeatures(inputName: string, input: Float32Array, dims: number[], spec: PatchSpec, signal?: AbortSignal): Promise<Float32Array> {
    return this.request({ inputName, data: input, dims, post: spec }, signal) as Promise<Float32Array>;
  }

  private async request(msg: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, RawOutput> | Float32Array> {
    throwIfAborted(signal, 'inference');
    const worker = await this.ensure();
    throwIfAborted(signal, 'inference');
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!this.pending.delete(id)) return;
        reject(abortError(signal!, 'inference'));
        worker.postMessage({ type: 'cancel', id }); // skipped if it has not started; else its result is dropped
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.pending.set(id, { worker, resolve, reject, done: () => signal?.removeEventListener('abort', onAbort) });
      this.busy.set(worker, (this.busy.get(worker) ?? 0) + 1);
      worker.ref(); // a request in the worker keeps the process alive until it is answered (see release)
      worker.postMessage({ ...msg, type: 'run', id }); // the input is copied (structured clone)
    });
  }

  /**
   * Releases the session after the requests already posted (the worker exits by itself). Never terminates a busy
   * worker: `Worker.terminate()` while onnxruntime's native `run` executes makes the addon throw a C++ exception
   * on its way back into JS, which aborts the whole process (`terminate called after throwing 'Napi::Error'`).
   */
  async release(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage({ type: 'release' });
    await exited;
  }
}
