/**
 * @file Worker-thread entry of the CNN inference (`src/pipeline/inference.ts` starts it). onnxruntime-node's
 * `InferenceSession.create` and `run` are synchronous native calls on the calling thread (1.30: `run` is a
 * `setImmediate` around the blocking call), so running them here keeps the main event loop free while a batch is
 * inferred (measured 0.2–1 s stalls per batch on the main thread before).
 *
 * Protocol (structured clone; buffers transferred where noted):
 * - `workerData`: {@link InferenceWorkerData} — the model bytes (already rewritten to output the two layers) and
 *   the session options; the worker answers `{type: 'ready', protocol, inputNames}` or `{type: 'error', message}`
 *   (`stale: true` when the client speaks another protocol version).
 * - `{type: 'run', id, inputName, data, dims, fetch?}` → `{type: 'result', id, outputs: {name: {data, dims}}}`
 *   (the outputs `fetch`, default every graph output; buffers transferred) or `{type: 'error', id, message}`; with `post` (a `PatchSpec`) the result
 *   is `{type: 'result', id, features}`: the batch's patch embeddings (`batch-features.ts`), computed here too.
 * - `{type: 'cancel', id}`: drops request `id` if it has not started (→ `{type: 'cancelled', id}`); a running one
 *   completes and is answered as usual (the client ignores the answer).
 * - `{type: 'release'}`: after the queued requests, releases the session and closes the port; the worker exits.
 * @module pipeline/inference-worker
 */
import { parentPort, workerData } from 'node:worker_threads';
import { batchFeatures, fetchesFor } from './batch-features.js';
import type { PatchSpec } from './patch-spec.js';

/** Version of the message protocol; the client (`inference.ts`) passes the one it speaks. */
export const INFERENCE_PROTOCOL = 2;
/** Marks the client's `workerData` (this module does nothing in any other worker that imports it). */
const KIND = 'anomaly-clustering/inference';

/** What the client passes as `workerData`. */
export interface InferenceWorkerData {
  kind: typeof KIND;
  protocol: number;
  /** ONNX model bytes. */
  model: Uint8Array;
  /** onnxruntime session options. */
  options: Record<string, unknown>;
}

type Ort = typeof import('onnxruntime-node');

async function main(): Promise<void> {
  const port = parentPort;
  const wd = workerData as InferenceWorkerData | undefined;
  if (!port || wd?.kind !== KIND) return; // imported, not started by the client
  if (wd.protocol !== INFERENCE_PROTOCOL) {
    port.postMessage({ type: 'error', stale: true, message: `inference worker protocol ${INFERENCE_PROTOCOL}, client expects ${wd.protocol}` });
    port.close();
    return;
  }
  let session: import('onnxruntime-node').InferenceSession;
  let ort: Ort;
  try {
    const m = await import('onnxruntime-node');
    ort = ((m as unknown as { default?: Ort }).default ?? m) as Ort;
    session = await ort.InferenceSession.create(wd.model, wd.options);
  } catch (e) {
    port.postMessage({ type: 'error', message: (e as Error)?.message ?? String(e) });
    port.close();
    return;
  }
  port.postMessage({ type: 'ready', protocol: INFERENCE_PROTOCOL, inputNames: [...session.inputNames] });

  type RunMsg = { type: 'run'; id: number; inputName: string; data: Float32Array; dims: number[]; post?: PatchSpec; fetch?: string[] };
  // Requests wait in this queue and start from a setImmediate, so that a `cancel` that arrived while the previous
  // batch ran (the thread is blocked inside onnxruntime then) is seen before the next batch starts.
  const queue: RunMsg[] = [];
  let busy = false;
  let releasing = false;
  const pump = (): void => {
    if (busy) return;
    const msg = queue.shift();
    if (!msg) {
      if (releasing) void session.release().catch(() => undefined).finally(() => port.close());
      return;
    }
    busy = true;
    runOne(msg).finally(() => {
      busy = false;
      setImmediate(pump);
    });
  };
  const runOne = async ({ id, inputName, data, dims, post, fetch }: RunMsg): Promise<void> => {
    try {
      const feeds = { [inputName]: new ort.Tensor('float32', data, dims) };
      const names = post ? fetchesFor(post) : fetch;
      const out = await (names ? session.run(feeds, names) : session.run(feeds)); // as on the main thread
      if (post) {
        const features = await batchFeatures(
          Object.fromEntries(Object.entries(out).map(([k, t]) => [k, { data: t.data as Float32Array, dims: [...(t.dims as readonly number[])] }])),
          post,
        );
        port.postMessage({ type: 'result', id, features }, [features.buffer as ArrayBuffer]);
        return;
      }
      const outputs: Record<string, { data: Float32Array; dims: number[] }> = {};
      const transfer: ArrayBuffer[] = [];
      for (const [name, t] of Object.entries(out)) {
        // Copied in this thread: onnxruntime's output buffers are not guaranteed to be transferable.
        const copy = (t.data as Float32Array).slice();
        outputs[name] = { data: copy, dims: [...(t.dims as readonly number[])] };
        transfer.push(copy.buffer);
      }
      port.postMessage({ type: 'result', id, outputs }, transfer);
    } catch (e) {
      port.postMessage({ type: 'error', id, message: (e as Error)?.message ?? String(e) });
    }
  };
  port.on('message', (msg: RunMsg | { type: 'cancel'; id: number } | { type: 'release' }) => {
    if (msg.type === 'run') {
      queue.push(msg);
      setImmediate(pump);
    } else if (msg.type === 'cancel') {
      const k = queue.findIndex((q) => q.id === msg.id);
      if (k >= 0) {
        queue.splice(k, 1);
        port.postMessage({ type: 'cancelled', id: msg.id });
      }
    } else if (msg.type === 'release') {
      releasing = true;
      setImmediate(pump);
    }
  });
}

void main();
