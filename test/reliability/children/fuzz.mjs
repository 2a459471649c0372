// Fuzzes one backend's boundary: every KernelBackend method of `getBackend(<backend>)` and, for 'native' / 'wasm',
// every raw export of the addon / wasm-bindgen glue, with random shapes, lengths, typed-array kinds (Float64Array
// for Float32Array, Int8Array, BigInt64Array, DataView, plain arrays, undefined, null, strings…), detached buffers,
// SharedArrayBuffer-backed arrays, subarrays at offsets into larger buffers, lying dimensions, NaN/Inf/denormals,
// and async calls whose inputs are detached or overwritten right after the call starts.
//
// Usage: node test/reliability/children/fuzz.mjs <native|wasm|js> <seed> <ms> [maxIters]
// Prints `FUZZ seed=<seed> backend=<b>` first, one JSON summary line last. Exit 0 = no crash and every call either
// returned or threw an Error. A segfault/abort shows as a signal / non-zero exit in the parent; the call being made
// is written (synchronously) to $AC_FUZZ_TRACE before each call so it can be reported, and the run is reproducible
// with the same seed and `maxIters` = the iteration number + 1.
import { closeSync, openSync, writeSync, ftruncateSync } from 'node:fs';
import { getBackend } from '../../../dist/bindings/select.js';
import { loadNativeAddon } from '../../../dist/bindings/native.js';
import { loadWasmExports } from '../../../dist/bindings/wasm.js';
import { KernelError } from '../../../dist/src/errors.js';

const [backendName = 'native', seedArg = '1', msArg = '5000', itersArg] = process.argv.slice(2);
const seed = Number(seedArg) >>> 0;
const ms = Number(msArg);
const maxIters = itersArg ? Number(itersArg) : Infinity;
console.log(`FUZZ seed=${seed} backend=${backendName} ms=${ms}`);

// ---- PRNG (mulberry32)
let st = seed;
const rnd = () => {
  st = (st + 0x6d2b79f5) >>> 0;
  let t = Math.imul(st ^ (st >>> 15), st | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const ri = (lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const pick = (a) => a[Math.floor(rnd() * a.length)];
let verbose = false;
const show = (v) => {
  if (v === undefined || v === null || typeof v !== 'object') return typeof v === 'bigint' ? `${v}n` : typeof v === 'string' && v.length > 40 ? `'${v.slice(0, 10)}…'(${v.length})` : JSON.stringify(v) ?? String(v);
  if (ArrayBuffer.isView(v)) {
    let detached = false;
    try { detached = v.buffer.byteLength === 0 && v.byteLength === 0; } catch { detached = true; }
    return `${v.constructor.name}(${v.length ?? v.byteLength})${detached ? '[detached]' : ''}[${Array.from(v.length !== undefined ? v : [], (e) => (typeof e === 'bigint' ? `${e}n` : e)).slice(0, 40).join(',')}]`;
  }
  return Array.isArray(v) ? `Array(${v.length})` : Object.prototype.toString.call(v);
};
const logged = [];
const L = (label, v) => { if (verbose) logged.push(`${label}=${show(v?.v !== undefined || v?.note ? v.v : v)}`); return v; };
const chance = (p) => rnd() < p;

// ---- Values
const SPECIAL = [NaN, Infinity, -Infinity, -0, 0, 1e-40, -1e-45, 3.4e38, -3.4e38, 1e300, 5e-324, 2 ** 24 + 1];
function fillValues(a) {
  if (a instanceof BigInt64Array || a instanceof BigUint64Array) {
    for (let i = 0; i < a.length; i++) a[i] = BigInt(ri(-5, 5));
    return a;
  }
  const mode = ri(0, 5);
  for (let i = 0; i < a.length; i++) {
    if (mode === 0 && chance(0.2)) a[i] = pick(SPECIAL);
    else if (mode === 1) a[i] = i === 0 ? 0 : a[i - 1] + ri(0, 3); // monotone (offsets-like)
    else if (mode === 2) a[i] = ri(-2, 6);
    else a[i] = (rnd() - 0.5) * 8;
  }
  return a;
}

const CTORS = [Float32Array, Float64Array, Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, BigInt64Array];

/** A typed array of `ctor` with `len` elements, in one of several memory layouts. */
function layout(ctor, len) {
  const how = ri(0, 9);
  if (how === 0) {
    // Detached: transfer its buffer away.
    const a = new ctor(len);
    structuredClone(a.buffer, { transfer: [a.buffer] });
    return { v: a, note: 'detached' };
  }
  if (how === 1) {
    const sab = new SharedArrayBuffer(Math.max(1, len) * ctor.BYTES_PER_ELEMENT);
    return { v: fillValues(new ctor(sab, 0, len)), note: 'shared' };
  }
  if (how === 2) {
    const off = ri(1, 7);
    const big = new ctor(len + off + ri(0, 5));
    return { v: fillValues(big.subarray(off, off + len)), note: `subarray@${off}` };
  }
  if (how === 3 && ctor.BYTES_PER_ELEMENT > 1) {
    // A view at an element-aligned byte offset into a buffer of another type.
    const buf = new ArrayBuffer((len + 3) * ctor.BYTES_PER_ELEMENT);
    return { v: fillValues(new ctor(buf, ctor.BYTES_PER_ELEMENT * 2, len)), note: 'view@offset' };
  }
  if (how === 4 && typeof ArrayBuffer.prototype.resize === 'function') {
    const rab = new ArrayBuffer(len * ctor.BYTES_PER_ELEMENT, { maxByteLength: (len + 16) * ctor.BYTES_PER_ELEMENT });
    return { v: fillValues(new ctor(rab)), note: 'resizable' };
  }
  return { v: fillValues(new ctor(len)), note: 'plain' };
}

/** Something in the place of an array argument that should be `want` of length `len`. */
function arrayArg(want, len) { return L(`${want.name}[${len}]`, arrayArg0(want, len)); }
function arrayArg0(want, len) {
  const r = rnd();
  if (r < 0.6) return layout(want, len); // right kind (maybe odd layout)
  if (r < 0.7) return layout(pick(CTORS), len); // wrong kind
  if (r < 0.75) return { v: Array.from({ length: len }, () => (rnd() - 0.5) * 4), note: 'plain-array' };
  if (r < 0.8) return layout(want, pick([0, 1, len + 1, Math.max(0, len - 1), len * 2]));
  return { v: pick([undefined, null, 0, 3, 'abc', {}, { length: len }, new ArrayBuffer(len * 4), new DataView(new ArrayBuffer(8)), [], Symbol.iterator, () => 1, 2n]), note: 'junk' };
}

/** A number in the place of a count/dimension that should be `n`. */
function intArg(n) { return L('int', intArg0(n)); }
function intArg0(n) {
  if (rnd() < 0.75) return n;
  return pick([0, 1, -1, n + 1, n - 1, 1.5, NaN, Infinity, -Infinity, 2 ** 31, 2 ** 32, 2 ** 32 + n, 2 ** 53, -(2 ** 31), 1e6, 65536, '3', undefined, null, true, 2n, {}]);
}
const numArg = (v) => L('num', rnd() < 0.75 ? v : pick([NaN, -1, -0, 0, Infinity, -Infinity, 1e-320, 1e308, undefined, null, '1', 2n]));
const boolArg = () => L('bool', rnd() < 0.8 ? chance(0.5) : pick([0, 1, 'true', undefined, null, {}]));
const MODES = ['per-group', 'min', 'mean-excluding-own'];
const METHODS = ['single', 'complete', 'average', 'weighted', 'ward', 'centroid', 'median'];
const strArg = (valid) => L('str', rnd() < 0.8 ? pick(valid) : pick(['', 'WARD', 'ward\0', 'x'.repeat(10000), '😀', undefined, null, 3, {}]));

/** Valid-looking offsets for `nrows` rows in `ng` groups (sometimes broken). */
function offsets(nrows, ng) { return L('offsets', offsets0(nrows, ng)); }
function offsets0(nrows, ng) {
  const o = new Uint32Array(ng + 1);
  const cuts = new Set();
  while (cuts.size < Math.min(ng - 1, Math.max(0, nrows - 1))) cuts.add(ri(1, nrows - 1));
  const sorted = [...cuts].sort((a, b) => a - b);
  for (let i = 0; i < sorted.length; i++) o[i + 1] = sorted[i];
  o[ng] = nrows;
  if (chance(0.15)) o[ri(0, ng)] = pick([0, nrows + 1, 0xffffffff, 2 ** 31, ri(0, nrows)]);
  return chance(0.2) ? arrayArg(Uint32Array, o.length) : { v: o, note: 'offsets' };
}

// ---- A plan: consistent sizes, then arguments mutated by the generators above.
function plan() {
  const n = ri(1, 24);
  const d = pick([1, 2, 3, 4, 7, 8, 9, 16, 17, 33]);
  const nb = ri(1, 30);
  const ng = ri(1, Math.min(6, nb));
  return { n, d, nb, ng };
}

function condensedLen(n) {
  return (n * (n - 1)) / 2;
}
function zFor(n) { return L('Z', zFor0(n)); }
function zFor0(n) {
  // A valid Z (chain merges), sometimes corrupted.
  const z = new Float64Array(Math.max(0, n - 1) * 4);
  let prev = 0;
  for (let i = 0; i < n - 1; i++) {
    z[4 * i] = Math.min(prev, i + 1);
    z[4 * i + 1] = Math.max(prev, i + 1);
    z[4 * i + 2] = i + rnd();
    z[4 * i + 3] = i + 2;
    prev = n + i;
  }
  if (chance(0.2) && z.length) z[ri(0, z.length - 1)] = pick([NaN, -1, 1e9, n * 3, 0.5, Infinity]);
  return rnd() < 0.8 ? { v: z, note: 'Z' } : arrayArg(Float64Array, z.length);
}

// Each target builds its arguments from a plan and calls one function. `async` ones return promises.
function backendTargets(b) {
  return {
    pdist: (p) => { const x = arrayArg(Float32Array, p.n * p.d); return [[x], () => b.pdist(x.v, intArg(p.n), intArg(p.d), boolArg())]; },
    pdistAsync: (p) => { const x = arrayArg(Float32Array, p.n * p.d); return [[x], () => b.pdistAsync(x.v, intArg(p.n), intArg(p.d), boolArg())]; },
    cdist: (p) => { const q = arrayArg(Float32Array, p.n * p.d), y = arrayArg(Float32Array, p.nb * p.d); return [[q, y], () => b.cdist(q.v, intArg(p.n), y.v, intArg(p.nb), intArg(p.d), boolArg())]; },
    cdistAsync: (p) => { const q = arrayArg(Float32Array, p.n * p.d), y = arrayArg(Float32Array, p.nb * p.d); return [[q, y], () => b.cdistAsync(q.v, intArg(p.n), y.v, intArg(p.nb), intArg(p.d), boolArg())]; },
    groupedNN: (p) => { const a = groupedArgs(p); return [a.arrays, () => b.groupedNN(a.args)]; },
    groupedNNAsync: (p) => { const a = groupedArgs(p); return [a.arrays, () => b.groupedNNAsync(a.args)]; },
    softmaxWeights: (p) => { const s = arrayArg(Float32Array, p.nb), o = offsets(p.nb, p.ng); return [[s, o], () => b.softmaxWeights(s.v, o.v, numArg(pick([0, 0.5, 1, Infinity, 1e-30])))]; },
    weightedMean: (p) => { const r = arrayArg(Float32Array, p.nb * p.d), o = offsets(p.nb, p.ng), w = arrayArg(Float32Array, p.nb); return [[r, o, w], () => b.weightedMean(r.v, o.v, intArg(p.d), w.v)]; },
    maxPool: (p) => { const r = arrayArg(Float32Array, p.nb * p.d), o = offsets(p.nb, p.ng); return [[r, o], () => b.maxPool(r.v, o.v, intArg(p.d))]; },
    linkage: (p) => { const y = arrayArg(chance(0.5) ? Float64Array : Float32Array, condensedLen(p.n)); return [[y], () => b.linkage(y.v, intArg(p.n), strArg(METHODS))]; },
    linkageAsync: (p) => { const y = arrayArg(chance(0.5) ? Float64Array : Float32Array, condensedLen(p.n)); return [[y], () => b.linkageAsync(y.v, intArg(p.n), strArg(METHODS))]; },
    cutK: (p) => { const z = zFor(p.n); return [[z], () => b.cutK(z.v, intArg(p.n), intArg(ri(1, p.n)))]; },
    cutHeight: (p) => { const z = zFor(p.n); return [[z], () => b.cutHeight(z.v, intArg(p.n), numArg(rnd() * p.n))]; },
  };
}

function groupedArgs(p) {
  const self = chance(0.3);
  const base = arrayArg(Float32Array, p.nb * p.d);
  const q = self ? base : arrayArg(Float32Array, p.n * p.d);
  const nq = self ? p.nb : p.n;
  const o = offsets(p.nb, p.ng);
  const mode = strArg(MODES);
  const qg = chance(0.7) ? arrayArg(Int32Array, nq) : { v: undefined, note: 'none' };
  if (qg.v instanceof Int32Array && !chance(0.2)) for (let i = 0; i < qg.v.length; i++) qg.v[i] = ri(-1, p.ng - 1);
  return {
    arrays: [base, q, o, qg],
    args: { queries: q.v, nq: intArg(nq), base: base.v, groupOffsets: o.v, d: intArg(p.d), mode, queryGroups: qg.v, squared: boolArg(), selfJoin: self ? true : boolArg() },
  };
}

function nativeTargets(raw) {
  return {
    'raw.pdist': (p) => { const x = arrayArg(Float32Array, p.n * p.d); return [[x], () => raw.pdist(x.v, intArg(p.n), intArg(p.d), boolArg())]; },
    'raw.pdistAsync': (p) => { const x = arrayArg(Float32Array, p.n * p.d); return [[x], () => raw.pdistAsync(x.v, intArg(p.n), intArg(p.d), boolArg())]; },
    'raw.cdist': (p) => { const q = arrayArg(Float32Array, p.n * p.d), y = arrayArg(Float32Array, p.nb * p.d); return [[q, y], () => raw.cdist(q.v, intArg(p.n), y.v, intArg(p.nb), intArg(p.d), boolArg())]; },
    'raw.cdistAsync': (p) => { const q = arrayArg(Float32Array, p.n * p.d), y = arrayArg(Float32Array, p.nb * p.d); return [[q, y], () => raw.cdistAsync(q.v, intArg(p.n), y.v, intArg(p.nb), intArg(p.d), boolArg())]; },
    'raw.groupedNn': (p) => { const a = groupedArgs(p).args; return [[], () => raw.groupedNn(a.queries, a.nq, a.base, a.groupOffsets, a.d, a.mode, a.queryGroups, a.squared)]; },
    'raw.groupedNnAsync': (p) => { const g = groupedArgs(p); const a = g.args; return [g.arrays, () => raw.groupedNnAsync(a.queries, a.nq, a.base, a.groupOffsets, a.d, a.mode, a.queryGroups, a.squared)]; },
    'raw.groupedNnSelf': (p) => { const g = groupedArgs(p); const a = g.args; return [g.arrays, () => raw.groupedNnSelf?.(a.base, a.groupOffsets, a.d, a.mode, a.squared)]; },
    'raw.groupedNnSelfAsync': (p) => { const g = groupedArgs(p); const a = g.args; return [g.arrays, () => raw.groupedNnSelfAsync?.(a.base, a.groupOffsets, a.d, a.mode, a.squared)]; },
    'raw.softmaxWeights': (p) => { const s = arrayArg(Float32Array, p.nb), o = offsets(p.nb, p.ng); return [[s, o], () => raw.softmaxWeights(s.v, o.v, numArg(1))]; },
    'raw.weightedMean': (p) => { const r = arrayArg(Float32Array, p.nb * p.d), o = offsets(p.nb, p.ng), w = arrayArg(Float32Array, p.nb); return [[r, o, w], () => raw.weightedMean(r.v, o.v, intArg(p.d), w.v)]; },
    'raw.maxPool': (p) => { const r = arrayArg(Float32Array, p.nb * p.d), o = offsets(p.nb, p.ng); return [[r, o], () => raw.maxPool(r.v, o.v, intArg(p.d))]; },
    'raw.linkageF64': (p) => { const y = arrayArg(Float64Array, condensedLen(p.n)); return [[y], () => raw.linkageF64(y.v, intArg(p.n), strArg(METHODS))]; },
    'raw.linkageF32': (p) => { const y = arrayArg(Float32Array, condensedLen(p.n)); return [[y], () => raw.linkageF32(y.v, intArg(p.n), strArg(METHODS))]; },
    'raw.linkageF64Async': (p) => { const y = arrayArg(Float64Array, condensedLen(p.n)); return [[y], () => raw.linkageF64Async(y.v, intArg(p.n), strArg(METHODS))]; },
    'raw.linkageF32Async': (p) => { const y = arrayArg(Float32Array, condensedLen(p.n)); return [[y], () => raw.linkageF32Async(y.v, intArg(p.n), strArg(METHODS))]; },
    'raw.cutK': (p) => { const z = zFor(p.n); return [[z], () => raw.cutK(z.v, intArg(p.n), intArg(ri(1, p.n)))]; },
    'raw.cutHeight': (p) => { const z = zFor(p.n); return [[z], () => raw.cutHeight(z.v, intArg(p.n), numArg(1))]; },
    'raw.panicForTests': () => [[], () => raw.panicForTests(strArg(['boom', '']))],
    'raw.panicForTestsAsync': () => [[], () => raw.panicForTestsAsync(strArg(['boom']))],
    'raw.meta': () => [[], () => pick([raw.abiVersion, raw.isa, raw.threads])(pick([undefined, 1, 'x']))],
  };
}

function wasmTargets(raw) {
  // Raw wasm-bindgen exports: dimensions that are not u32 wrap silently in the glue (the adapter checks them), so
  // the fuzzer sends only non-negative integers there; everything else is as hostile as above.
  const u = (v) => (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 0xffffffff ? v : ri(0, 40));
  return {
    'raw.hc_pdist': (p) => { const x = arrayArg(Float32Array, p.n * p.d); return [[x], () => raw.hc_pdist(x.v, u(intArg(p.n)), u(intArg(p.d)), boolArg())]; },
    'raw.hc_cdist': (p) => { const q = arrayArg(Float32Array, p.n * p.d), y = arrayArg(Float32Array, p.nb * p.d); return [[q, y], () => raw.hc_cdist(q.v, u(intArg(p.n)), y.v, u(intArg(p.nb)), u(intArg(p.d)), boolArg())]; },
    'raw.hc_grouped_nn': (p) => { const a = groupedArgs(p).args; return [[], () => raw.hc_grouped_nn(a.queries, u(a.nq), a.base, a.groupOffsets, u(a.d), a.mode, a.queryGroups, a.squared)]; },
    'raw.hc_grouped_nn_self': (p) => { const a = groupedArgs(p).args; return [[], () => raw.hc_grouped_nn_self?.(a.base, a.groupOffsets, u(a.d), a.mode, a.squared)]; },
    'raw.hc_softmax_weights': (p) => { const s = arrayArg(Float32Array, p.nb), o = offsets(p.nb, p.ng); return [[s, o], () => raw.hc_softmax_weights(s.v, o.v, numArg(1))]; },
    'raw.hc_weighted_mean': (p) => { const r = arrayArg(Float32Array, p.nb * p.d), o = offsets(p.nb, p.ng), w = arrayArg(Float32Array, p.nb); return [[r, o, w], () => raw.hc_weighted_mean(r.v, o.v, u(intArg(p.d)), w.v)]; },
    'raw.hc_max_pool': (p) => { const r = arrayArg(Float32Array, p.nb * p.d), o = offsets(p.nb, p.ng); return [[r, o], () => raw.hc_max_pool(r.v, o.v, u(intArg(p.d)))]; },
    'raw.hc_linkage_f64': (p) => { const y = arrayArg(Float64Array, condensedLen(p.n)); return [[y], () => raw.hc_linkage_f64(y.v, u(intArg(p.n)), strArg(METHODS))]; },
    'raw.hc_linkage_f32': (p) => { const y = arrayArg(Float32Array, condensedLen(p.n)); return [[y], () => raw.hc_linkage_f32(y.v, u(intArg(p.n)), strArg(METHODS))]; },
    'raw.hc_cut_k': (p) => { const z = zFor(p.n); return [[z], () => raw.hc_cut_k(z.v, u(intArg(p.n)), u(intArg(ri(1, p.n))))]; },
    'raw.hc_cut_height': (p) => { const z = zFor(p.n); return [[z], () => raw.hc_cut_height(z.v, u(intArg(p.n)), numArg(1))]; },
  };
}

// ---- Targets of this run
const backend = getBackend(backendName);
const targets = { ...backendTargets(backend) };
/** Names whose thrown errors must be KernelErrors (the backend contract); raw exports may throw any Error. */
const contract = new Set(Object.keys(targets));
let wasmRaw;
if (backendName === 'native') Object.assign(targets, nativeTargets(loadNativeAddon().addon));
if (backendName === 'wasm') Object.assign(targets, wasmTargets((wasmRaw = loadWasmExports())));
const names = Object.keys(targets);

// ---- Trace file: the call in flight, written before each call (survives a segfault).
const traceFd = process.env.AC_FUZZ_TRACE ? openSync(process.env.AC_FUZZ_TRACE, 'w') : undefined;
function trace(s) {
  if (traceFd === undefined) return;
  ftruncateSync(traceFd, 0);
  writeSync(traceFd, s, 0);
}

const stats = { seed, backend: backendName, iterations: 0, returned: 0, threw: 0, codes: {}, byTarget: {}, violations: [], nonErrors: [], internal: {}, internalFirst: {} };
function record(name, err) {
  const bt = (stats.byTarget[name] ??= { calls: 0, ok: 0 });
  bt.calls++;
  if (err === undefined) {
    stats.returned++;
    bt.ok++;
    return;
  }
  stats.threw++;
  if (!(err instanceof Error)) {
    stats.nonErrors.push({ name, iteration: stats.iterations, value: String(err) });
    return;
  }
  const code = err.code ?? err.constructor.name;
  stats.codes[code] = (stats.codes[code] ?? 0) + 1;
  if ((code === 'ERR_INTERNAL' || err instanceof WebAssembly.RuntimeError) && !/panicForTests|test panic|boom/.test(name + err.message)) {
    const k = `${name}: ${err.message.replace(/\d+/g, 'N').slice(0, 160)}`;
    if ((stats.internal[k] = (stats.internal[k] ?? 0) + 1) === 1) stats.internalFirst[k] = stats.iterations - 1;
  }
  if (contract.has(name) && !(err instanceof KernelError) && stats.violations.length < 20) {
    stats.violations.push({ name, iteration: stats.iterations, error: `${err.constructor.name}: ${err.message.slice(0, 200)}` });
  }
  if (wasmRaw && err instanceof WebAssembly.RuntimeError) {
    // A raw trap leaves the instance unusable: reset it as the adapter does.
    try { wasmRaw.__wbg_reset_state(); } catch { /* next calls will say */ }
  }
}

/** After an async call started: detach or overwrite its inputs (the addon must have copied them). */
function disturb(arrays) {
  for (const a of arrays) {
    const v = a?.v;
    if (!ArrayBuffer.isView(v) || !chance(0.5)) continue;
    try {
      if (chance(0.5) && !(v.buffer instanceof SharedArrayBuffer)) structuredClone(v.buffer, { transfer: [v.buffer] });
      else if (!(v instanceof BigInt64Array)) v.fill(NaN);
    } catch { /* already detached, or not transferable */ }
  }
}

const deadline = performance.now() + ms;
const inflight = [];
while (performance.now() < deadline && stats.iterations < maxIters) {
  const name = pick(names);
  verbose = stats.iterations === maxIters - 1;
  const p = plan();
  let arrays, call;
  try {
    [arrays, call] = targets[name](p);
  } catch (e) {
    console.error('generator failed', e);
    process.exit(3);
  }
  trace(`iteration ${stats.iterations} ${name} ${JSON.stringify(p)} ${arrays.map((a) => a?.note).join(',')}\n`);
  stats.iterations++;
  if (verbose) console.log(`REPLAY ${name} ${JSON.stringify(p)}\n  ${logged.join('\n  ')}`);
  let r;
  try {
    r = call();
  } catch (e) {
    if (verbose) console.log(`  → threw ${e?.constructor?.name} ${e?.code ?? ''} ${e?.message}`);
    record(name, e ?? new Error('undefined thrown'));
    continue;
  }
  if (r && typeof r.then === 'function') {
    disturb(arrays);
    const settled = r.then(() => record(name), (e) => record(name, e ?? new Error('undefined rejection')));
    inflight.push(settled);
    if (inflight.length >= ri(1, 8)) await Promise.all(inflight.splice(0));
  } else {
    record(name);
  }
}
await Promise.all(inflight);
if (traceFd !== undefined) closeSync(traceFd);
console.log(JSON.stringify(stats));
process.exit(stats.nonErrors.length ? 2 : 0);
