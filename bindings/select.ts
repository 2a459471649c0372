/**
 * @file Backend selection: native `.node` addon first, then the WebAssembly module, then the pure-TS reference.
 * Override with `ANOMALY_CLUSTERING_BACKEND=native|wasm|js` or an explicit preference. Every load failure is kept
 * (with its `cause`) and can be listed with {@link loadErrors}.
 * @module bindings/select
 */
import type { BackendName, KernelBackend } from './backend.js';
import { BACKEND_NAMES } from './backend.js';
import { loadNativeBackend } from './native.js';
import { loadWasmBackend } from './wasm.js';
import { createJsBackend } from './reference/index.js';
import { KernelError } from './errors.js';
import { availableParallelism } from 'node:os';

/** Most threads `ANOMALY_CLUSTERING_THREADS` (and `threads` options) may ask for: 4 × cores, at most 256. */
export function maxThreads(): number {
  return Math.min(256, 4 * availableParallelism());
}

/**
 * Validates `ANOMALY_CLUSTERING_THREADS` (the native kernels' rayon pool, read by the addon when it loads):
 * unset/empty → undefined (the addon uses the core count); an integer ≥ 1 → that, **capped** at {@link maxThreads}
 * (the capped value is written back to the environment so the addon sees it); anything else throws.
 * @throws {KernelError} `ERR_INVALID_ARGUMENT` for `0`, `-3`, `abc`, `1.5`…
 */
export function threadsFromEnv(env: Record<string, string | undefined> = process.env): number | undefined {
  const raw = env.ANOMALY_CLUSTERING_THREADS;
  if (raw === undefined || raw.trim() === '') return undefined;
  const t = raw.trim();
  const v = /^\+?\d+$/.test(t) ? Number(t) : NaN;
  if (!Number.isSafeInteger(v) || v < 1) {
    throw new KernelError('ERR_INVALID_ARGUMENT', `ANOMALY_CLUSTERING_THREADS: expected an integer ≥ 1 (threads of the native kernels), got ${JSON.stringify(raw)}`);
  }
  const cap = maxThreads();
  if (v > cap) env.ANOMALY_CLUSTERING_THREADS = String(cap);
  return Math.min(v, cap);
}

const cache = new Map<BackendName, KernelBackend>();
const failures = new Map<BackendName, Error>();
let warned = false;

/**
 * Warns once per process (`process.emitWarning`, code `ANOMALY_CLUSTERING_FALLBACK`) when the automatic choice
 * falls back from native to wasm or js, naming why each faster backend did not load (a bundled or wrongly
 * installed build otherwise runs 2–15× slower without a word). Silence it with `ANOMALY_CLUSTERING_BACKEND=wasm|js`.
 */
function warnFallback(chosen: BackendName): void {
  if (warned || chosen === 'native') return;
  warned = true;
  const why = BACKEND_NAMES.slice(0, BACKEND_NAMES.indexOf(chosen))
    .map((n) => `${n}: ${(failures.get(n)?.message ?? 'not loaded').replace(/\s*\n\s*(?:- )?/g, ' ').trim()}`).join('; ');
  process.emitWarning(
    `anomaly-clustering: using the ${chosen} backend (slower) because ${why}. Install the platform package ` +
    `(npm install --include=optional) or set ANOMALY_CLUSTERING_BACKEND=${chosen} to choose it explicitly.`,
    { type: 'Warning', code: 'ANOMALY_CLUSTERING_FALLBACK' },
  );
}

function tryLoad(name: BackendName): KernelBackend | undefined {
  const hit = cache.get(name);
  if (hit) return hit;
  if (failures.has(name)) return undefined;
  try {
    const b = name === 'native' ? loadNativeBackend() : name === 'wasm' ? loadWasmBackend() : createJsBackend();
    cache.set(name, b);
    return b;
  } catch (e) {
    failures.set(name, e instanceof Error ? e : new Error(String(e)));
    return undefined;
  }
}

/**
 * The kernel backend to use.
 * @param pref a backend name to require, or `undefined` for the first that loads (env override first).
 * @returns the loaded backend (memoised)
 * @throws {KernelError} `ERR_BACKEND_UNAVAILABLE` when the requested backend cannot load (its load error is the `cause`)
 * @throws {TypeError} for an unknown backend name
 * @throws {KernelError} `ERR_INVALID_ARGUMENT` for a bad `ANOMALY_CLUSTERING_THREADS` (see {@link threadsFromEnv})
 */
export function getBackend(pref?: BackendName): KernelBackend {
  if (!cache.has('native') && !failures.has('native')) threadsFromEnv(); // before the addon reads it
  const env = process.env.ANOMALY_CLUSTERING_BACKEND;
  const want = pref ?? (env && env !== 'auto' ? (env as BackendName) : undefined);
  if (want !== undefined) {
    if (!(BACKEND_NAMES as readonly string[]).includes(want)) {
      throw new TypeError(`backend: expected one of ${BACKEND_NAMES.join(', ')}, got ${JSON.stringify(want)}`);
    }
    const b = tryLoad(want);
    if (!b) {
      throw new KernelError('ERR_BACKEND_UNAVAILABLE', `backend ${want} could not be loaded: ${failures.get(want)?.message}`, {
        cause: failures.get(want),
      });
    }
    return b;
  }
  for (const name of BACKEND_NAMES) {
    const b = tryLoad(name);
    if (b) {
      warnFallback(name);
      return b;
    }
  }
  /* c8 ignore next */
  throw new KernelError('ERR_BACKEND_UNAVAILABLE', 'no backend could be loaded', { cause: [...failures.values()][0] });
}

/** Names of the backends that load on this machine, in order of preference. */
export function availableBackends(): BackendName[] {
  return BACKEND_NAMES.filter((n) => tryLoad(n) !== undefined);
}

/** The load failure of each backend that did not load (tried so far). */
export function loadErrors(): { backend: BackendName; error: Error }[] {
  for (const n of BACKEND_NAMES) tryLoad(n);
  return [...failures.entries()].map(([backend, error]) => ({ backend, error }));
}
