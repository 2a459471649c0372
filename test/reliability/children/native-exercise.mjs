// Calls every export of the native addon (raw, via loadNativeAddon) a few times — success paths, error paths,
// the panic hooks, async twins — small sizes, so that it runs under valgrind in a reasonable time.
// Used by scripts/valgrind-native.sh. Prints one line per export and `EXERCISED <n> exports`.
import { loadNativeAddon } from '../../../dist/bindings/native.js';
import { NATIVE_EXPORT_NAMES } from '../../../dist/bindings/abi.js';

const { addon: a } = loadNativeAddon();
const reps = Number(process.env.AC_EXERCISE_REPS ?? 3);
const n = 40, d = 12, ng = 4;
const x = new Float32Array(n * d).map((_, i) => Math.sin(i * 0.7));
const off = new Uint32Array([0, 10, 20, 30, 40]);
const qg = new Int32Array(n).map((_, i) => Math.floor(i / 10));
const y64 = new Float64Array((n * (n - 1)) / 2).map((_, i) => 1 + ((i * 7919) % 1000) / 1000);
const y32 = new Float32Array(y64);
const seen = new Set();
const calls = {
  abiVersion: () => a.abiVersion(),
  kernelSignatures: () => a.kernelSignatures(),
  isa: () => a.isa(),
  threads: () => a.threads(),
  pdist: () => a.pdist(x, n, d, false),
  pdistAsync: () => a.pdistAsync(x, n, d, true),
  cdist: () => a.cdist(x, n, x.subarray(0, 5 * d), 5, d, false),
  cdistAsync: () => a.cdistAsync(x, n, x, n, d, false),
  groupedNn: () => a.groupedNn(x, n, x, off, d, 'mean-excluding-own', qg, false),
  groupedNnAsync: () => a.groupedNnAsync(x, n, x, off, d, 'per-group', null, true),
  groupedNnSelf: () => a.groupedNnSelf(x, off, d, 'mean-excluding-own', false),
  groupedNnSelfAsync: () => a.groupedNnSelfAsync(x, off, d, 'min', false),
  softmaxWeights: () => a.softmaxWeights(x.subarray(0, n), off, 0.5),
  weightedMean: () => a.weightedMean(x, off, d, new Float32Array(n).fill(1)),
  maxPool: () => a.maxPool(x, off, d),
  linearMap: () => a.linearMap(x, n, d, x.subarray(0, d * d), d),
  linearMapAsync: () => a.linearMapAsync(x, n, d, x.subarray(0, 4 * d), 4),
  wardFromVectors: () => a.wardFromVectors(x, n, d, null),
  wardFromVectorsAsync: () => a.wardFromVectorsAsync(x, n, d, new Uint32Array(n).fill(2)),
  linkageF64: () => a.linkageF64(y64, n, 'ward'),
  linkageF32: () => a.linkageF32(y32, n, 'centroid'),
  linkageF64Async: () => a.linkageF64Async(y64, n, 'average'),
  linkageF32Async: () => a.linkageF32Async(y32, n, 'single'),
  cutK: () => a.cutK(a.linkageF64(y64, n, 'complete'), n, 4),
  cutHeight: () => a.cutHeight(a.linkageF64(y64, n, 'median'), n, 1.2),
  panicForTests: () => a.panicForTests('valgrind'),
  panicForTestsAsync: () => a.panicForTestsAsync('valgrind'),
};
// Error paths: bad shapes, bad method, NaN, bad offsets, wrong JS types.
const errors = [
  () => a.pdist(x, n + 1, d, false),
  () => a.pdistAsync(x, n, 0, false),
  () => a.groupedNn(x, n, x, new Uint32Array([0, 50]), d, 'min', null, false),
  () => a.linkageF64(y64, n, 'nope'),
  () => a.linkageF64Async(new Float64Array([NaN, 1, 1]), 3, 'ward'),
  () => a.cutK(new Float64Array(4), 2, 9),
  () => a.softmaxWeights(x.subarray(0, n), off, -1),
  () => a.weightedMean(x, off, d, new Float32Array(n)),
  () => a.maxPool(x, 3, d),
  () => a.pdist('x', 1, 1, false),
];
let failures = 0;
for (let r = 0; r < reps; r++) {
  for (const [name, f] of Object.entries(calls)) {
    try {
      const v = await f();
      if (r === 0) console.log(`${name}: ok ${v?.constructor?.name ?? typeof v} ${v?.length ?? v}`);
    } catch (e) {
      const expected = name.startsWith('panicForTests') && e?.code === 'ERR_INTERNAL';
      if (!expected) failures++;
      if (r === 0) console.log(`${name}: ${expected ? 'ok (panic caught)' : 'UNEXPECTED'} ${e?.code} ${e?.message?.split('\n')[0]}`);
    }
    seen.add(name);
  }
  for (const f of errors) {
    try { await f(); failures++; console.log('error path returned!'); } catch (e) { if (!(e instanceof Error)) failures++; }
  }
}
const missing = NATIVE_EXPORT_NAMES.filter((k) => !seen.has(k));
console.log(`EXERCISED ${seen.size} exports (${reps} reps, ${errors.length} error paths each)${missing.length ? `; NOT EXERCISED: ${missing.join(', ')}` : ''}`);
process.exit(failures || missing.length ? 1 : 0);
