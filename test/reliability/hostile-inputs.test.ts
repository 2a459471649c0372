/**
 * @file Issue 7 — hostile inputs, table-driven, on every backend (`backendsUnderTest()`: in CI all three).
 *
 * 1. Kernels (public API, validated): NaN / ±Inf / denormal / huge values, mismatched dimensions, empty inputs,
 *    k = 0 and k > n, τ < 0, bad offsets, wrong array types. Each case names the exact `KernelError` code (or
 *    `TypeError`), or checks the result against the pure-TS reference in f64.
 * 2. Pipeline (`clusterImages`) and CLI (`main(argv, io)`, exit codes) on generated folders: empty and one-image
 *    folders, corrupt / truncated / zero-byte / huge-dimension (PNG header claiming 100000×100000) / non-image
 *    files, mixed sizes and modes (grey, grey+alpha, RGBA, 16-bit, JPEG, WebP, TIFF, GIF, 1×1, 3×300), k = 0,
 *    k > N, τ < 0, a normals folder with no images, an ONNX file that is not a model, missing layers.
 *    An option value not accepted is an `OptionError` naming the option, with its code.
 *    Each case must give its documented typed error / exit code, or a correct result — within a time bound
 *    (no hang), in-process (no crash or abort).
 * @module test/reliability/hostile-inputs
 */
import { writeFileSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import * as ac from '../../src/index.js';
import { KernelError, OptionError, type ErrorCode } from '../../src/errors.js';
import type { ClusterOptions, ClusterResult } from '../../src/pipeline/run.js';
import { InputError } from '../../src/errors.js';
import { EXIT, main } from '../../src/cli/main.js';
import type { BackendName } from '../../bindings/backend.js';
import { backendsUnderTest, condensedF64, randomRows } from '../helpers.js';
import { pngClaiming, sharp, tempDir, texturedPng } from './helpers.js';

const BACKENDS = backendsUnderTest();

// ---------------------------------------------------------------------------------------------------------
// Expectations

type Expect =
  | { option: string; code: ErrorCode }
  | { code: ErrorCode; problem?: string }
  | { type: 'TypeError' | 'RangeError' }
  | { ok: (v: never) => void };

function check(outcome: { value?: unknown; error?: unknown }, want: Expect, what: string): void {
  if ('ok' in want) {
    if (outcome.error !== undefined) throw new Error(`${what}: expected a result, got ${String(outcome.error)}`, { cause: outcome.error });
    want.ok(outcome.value as never);
    return;
  }
  const e = outcome.error;
  expect(e, `${what}: expected an error, got a result`).toBeDefined();
  expect(e, `${what}: thrown value must be an Error`).toBeInstanceOf(Error);
  if ('option' in want) {
    // An option value not accepted: an OptionError (a RangeError) naming the option, with a stable code.
    expect(e, `${what}: ${String(e)}`).toBeInstanceOf(OptionError);
    expect(e, `${what}: ${String(e)}`).toBeInstanceOf(RangeError);
    expect(e, `${what}: ${(e as Error).message}`).toMatchObject({ option: want.option, code: want.code });
  } else if ('code' in want) {
    expect(e, `${what}: ${String(e)}`).toBeInstanceOf(KernelError);
    expect((e as KernelError).code, `${what}: ${(e as Error).message}`).toBe(want.code);
    if (want.problem) expect((e as InputError).problem).toBe(want.problem);
  } else {
    expect((e as Error).constructor.name, `${what}: ${(e as Error).message}`).toBe(want.type);
  }
}

function sync(f: () => unknown): { value?: unknown; error?: unknown } {
  try {
    return { value: f() };
  } catch (error) {
    return { error: error ?? new Error('undefined thrown') };
  }
}

async function settle(p: () => Promise<unknown>): Promise<{ value?: unknown; error?: unknown }> {
  try {
    return { value: await p() };
  } catch (error) {
    return { error: error ?? new Error('undefined thrown') };
  }
}

const closeTo = (ref: ArrayLike<number>, rtol: number, atol: number) => (v: Float32Array) => {
  expect(v.length).toBe(ref.length);
  for (let i = 0; i < v.length; i++) {
    expect(Number.isFinite(v[i]!), `index ${i}: ${v[i]} (expected ${ref[i]})`).toBe(true);
    expect(Math.abs(v[i]! - ref[i]!), `index ${i}: ${v[i]} vs ${ref[i]}`).toBeLessThanOrEqual(atol + rtol * Math.abs(ref[i]!));
  }
};

// ---------------------------------------------------------------------------------------------------------
// 1. Kernels

const X = randomRows(5, 3, 1);
const withAt = (a: Float32Array, i: number, v: number) => {
  const b = a.slice();
  b[i] = v;
  return b;
};
const Y5 = Float64Array.from(condensedF64(X, 5, 3));
const Z5 = () => ac.linkage(Y5, { backend: 'js' });
const denorm = new Float32Array([1e-39, 0, 0, 3e-39, 2e-39, 2e-39]);
const moderate = new Float32Array([0, 0, 1e15, 0, 3e15, 2e15]);

type KCase = [name: string, call: (backend: BackendName) => unknown, want: Expect];
const kernelCases: KCase[] = [
  ['pdist NaN', (b) => ac.pdist(withAt(X, 4, NaN), { d: 3, backend: b }), { code: 'ERR_NON_FINITE' }],
  ['pdist +Inf', (b) => ac.pdist(withAt(X, 0, Infinity), { d: 3, backend: b }), { code: 'ERR_NON_FINITE' }],
  ['pdist -Inf in number[][]', (b) => ac.pdist([[0, 1], [-Infinity, 2]], { backend: b }), { code: 'ERR_NON_FINITE' }],
  ['pdist denormal rows → tiny finite distances', (b) => ac.pdist(denorm, { d: 2, backend: b }), { ok: closeTo(condensedF64(denorm, 3, 2), 1e-3, 1e-37) }],
  ['pdist large (1e15) rows agree with f64', (b) => ac.pdist(moderate, { d: 2, backend: b }), { ok: closeTo(condensedF64(moderate, 3, 2), 1e-5, 0) }],
  ['pdist length not a multiple of d', (b) => ac.pdist(new Float32Array(7), { d: 3, backend: b }), { code: 'ERR_SHAPE_MISMATCH' }],
  ['pdist ragged rows', (b) => ac.pdist([[1, 2], [3]], { backend: b }), { code: 'ERR_SHAPE_MISMATCH' }],
  ['pdist d = 0', (b) => ac.pdist(new Float32Array(0), { d: 0, backend: b }), { code: 'ERR_EMPTY' }],
  ['pdist no rows', (b) => ac.pdist(new Float32Array(0), { d: 3, backend: b }), { code: 'ERR_EMPTY' }],
  ['pdist Float64Array rows', (b) => ac.pdist(new Float64Array(6) as never, { d: 3, backend: b }), { type: 'TypeError' }],
  ['pdist flat number[]', (b) => ac.pdist([1, 2, 3] as never, { d: 3, backend: b }), { type: 'TypeError' }],
  ['pdist one row → empty', (b) => ac.pdist(new Float32Array(3), { d: 3, backend: b }), { ok: (v: Float32Array) => expect(v.length).toBe(0) }],
  ['cdist mismatched dims', (b) => ac.cdist([[1, 2]], [[1, 2, 3]], { backend: b }), { code: 'ERR_SHAPE_MISMATCH' }],
  ['cdist NaN in base', (b) => ac.cdist(X, withAt(X, 2, NaN), { d: 3, backend: b }), { code: 'ERR_NON_FINITE' }],
  ['groupedNN offsets not ending at nb', (b) => ac.groupedNN(X, X, [0, 2, 4], { d: 3, backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['groupedNN empty group', (b) => ac.groupedNN(X, X, [0, 2, 2, 5], { d: 3, backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['groupedNN unknown mode', (b) => ac.groupedNN(X, X, [0, 5], { d: 3, mode: 'max' as never, backend: b }), { code: 'ERR_INVALID_METHOD' }],
  ['groupedNN queryGroups out of range', (b) => ac.groupedNN(X, X, [0, 2, 5], { d: 3, mode: 'mean-excluding-own', queryGroups: [0, 0, 1, 1, 7], backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['groupedNN queryGroups missing', (b) => ac.groupedNN(X, X, [0, 2, 5], { d: 3, mode: 'mean-excluding-own', backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['groupedNN Inf query', (b) => ac.groupedNN(withAt(X, 1, -Infinity), X, [0, 5], { d: 3, backend: b }), { code: 'ERR_NON_FINITE' }],
  ['softmaxWeights τ < 0', (b) => ac.softmaxWeights([1, 2, 3], [0, 3], { tau: -0.5, backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['softmaxWeights τ NaN', (b) => ac.softmaxWeights([1, 2, 3], [0, 3], { tau: NaN, backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['softmaxWeights τ = Infinity → uniform', (b) => ac.softmaxWeights([1, 2, 3, 4], [0, 4], { tau: Infinity, backend: b }), { ok: (v: Float32Array) => expect([...v]).toEqual([0.25, 0.25, 0.25, 0.25]) }],
  ['softmaxWeights τ = denormal 1e-40 → finite, sums to 1', (b) => ac.softmaxWeights([1, 2, 2], [0, 3], { tau: 1e-40, backend: b }), { ok: (v: Float32Array) => expect([...v]).toEqual([0, 0.5, 0.5]) }],
  ['softmaxWeights NaN score', (b) => ac.softmaxWeights([1, NaN], [0, 2], { backend: b }), { code: 'ERR_NON_FINITE' }],
  ['weightedMean zero-sum bag', (b) => ac.weightedMean(X, [0, 2, 5], [0, 0, 1, 1, 1], { d: 3, backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['weightedMean negative weight', (b) => ac.weightedMean(X, [0, 5], [1, -1, 1, 1, 1], { d: 3, backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['weightedMean weights length', (b) => ac.weightedMean(X, [0, 5], [1, 1], { d: 3, backend: b }), { code: 'ERR_SHAPE_MISMATCH' }],
  ['maxPool denormals', (b) => ac.maxPool(denorm, [0, 3], { d: 2, backend: b }), { ok: (v: Float32Array) => expect([...v]).toEqual([Math.fround(2e-39), Math.fround(3e-39)]) }],
  ['linkage unknown method', (b) => ac.linkage(Y5, { method: 'ward.D2' as never, backend: b }), { code: 'ERR_INVALID_METHOD' }],
  ['linkage length not triangular', (b) => ac.linkage(new Float64Array(5), { backend: b }), { code: 'ERR_SHAPE_MISMATCH' }],
  ['linkage NaN distance', (b) => ac.linkage(Float64Array.from(Y5, (v, i) => (i === 3 ? NaN : v)), { backend: b }), { code: 'ERR_NON_FINITE' }],
  ['linkage negative distance (ward)', (b) => ac.linkage(Float64Array.from(Y5, (v, i) => (i === 3 ? -1 : v)), { method: 'ward', backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['linkage n mismatch', (b) => ac.linkage(Y5, { n: 4, backend: b }), { code: 'ERR_SHAPE_MISMATCH' }],
  ['linkage n = 0', (b) => ac.linkage(new Float64Array(0), { n: 0, backend: b }), { code: 'ERR_EMPTY' }],
  ['linkage one point', (b) => ac.linkage(new Float64Array(0), { backend: b }), { ok: (v: { Z: Float64Array; n: number }) => expect([v.Z.length, v.n]).toEqual([0, 1]) }],
  ['linkage denormal distances', (b) => ac.linkage(new Float64Array([5e-324, 1e-310, 2e-310]), { method: 'single', backend: b }), { ok: (v: { Z: Float64Array }) => expect([...v.Z]).toEqual([0, 1, 5e-324, 2, 2, 3, 1e-310, 3]) }],
  ['cutTree k = 0', (b) => ac.cutTree(Z5(), { nClusters: 0, backend: b }), { code: 'ERR_K_OUT_OF_RANGE' }],
  ['cutTree k > n', (b) => ac.cutTree(Z5(), { nClusters: 6, backend: b }), { code: 'ERR_K_OUT_OF_RANGE' }],
  ['cutTree k = 2.5', (b) => ac.cutTree(Z5(), { nClusters: 2.5, backend: b }), { type: 'TypeError' }],
  ['cutTree NaN height', (b) => ac.cutTree(Z5(), { height: NaN, backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['cutTree corrupt Z (child id out of range)', (b) => ac.cutTree({ Z: Z5().Z.map((v, i) => (i === 0 ? 99 : v)), n: 5 }, { nClusters: 2, backend: b }), { code: 'ERR_INVALID_ARGUMENT' }],
  ['cutTree Z with NaN height', (b) => ac.cutTree({ Z: Z5().Z.map((v, i) => (i === 2 ? NaN : v)), n: 5 }, { nClusters: 2, backend: b }), { code: 'ERR_NON_FINITE' }],
  ['fcluster t = 0', (b) => ac.fcluster(Z5(), 0, { backend: b }), { code: 'ERR_K_OUT_OF_RANGE' }],
];

describe.each(BACKENDS)('hostile kernel inputs on %s', (backend) => {
  it.each(kernelCases)('%s', (name, call, want) => {
    check(sync(() => call(backend)), want, `${backend}: ${name}`);
  });
  it('async twins reject (never throw synchronously) with the same codes', async () => {
    const cases: [() => Promise<unknown>, ErrorCode][] = [
      [() => ac.pdistAsync(withAt(X, 4, NaN), { d: 3, backend }), 'ERR_NON_FINITE'],
      [() => ac.cdistAsync([[1, 2]], [[1, 2, 3]], { backend }), 'ERR_SHAPE_MISMATCH'],
      [() => ac.groupedNNAsync(X, X, [0, 2, 2, 5], { d: 3, backend }), 'ERR_INVALID_ARGUMENT'],
      [() => ac.linkageAsync(new Float64Array(5), { backend }), 'ERR_SHAPE_MISMATCH'],
    ];
    for (const [f, code] of cases) {
      let p: Promise<unknown> | undefined;
      expect(() => (p = f())).not.toThrow();
      check(await settle(() => p!), { code }, `${backend} async ${code}`);
    }
  });
});

describe('finite but extreme values: |x| ≥ 1e19 (f32 range of the GEMM form)', () => {
  // |x| ≈ 1e20: ‖a‖² + ‖b‖² − 2a·b overflowed f32 in the native and wasm kernels (+Infinity, or NaN from ∞ − ∞),
  // which `linkage` then rejected as ERR_NON_FINITE although the user gave finite data and the true distances are
  // finite f32. Fixed in crates/kernels (distance.rs, grouped.rs): inputs whose max |x| exceeds 2^60/√d are scaled
  // by a power of two and the results back, exactly. The js reference sums (a−b)² in f64.
  const big = new Float32Array([0, 0, 2e20, 0, 3e37, 0]);
  const far = new Float32Array([1e19, -1e19, 3e19, 1e19, -2e20, 5e19, 1e19, -1e19 + 4e12, 3e19]); // rows 0 and 2: a near pair
  const spread = new Float32Array([1e37, -3e37, 2e37, 5e37, -1e37, 4e37, -2e37, 0, 3e37]); // distances ≈ the norms
  /** f64 distances (squared when asked) between rows of `q` and `b` (dimension `d`). */
  const ref = (q: Float32Array, b: Float32Array, d: number, squared: boolean) => {
    const nq = q.length / d, nb = b.length / d;
    const out = new Float64Array(nq * nb);
    for (let i = 0; i < nq; i++) {
      for (let j = 0; j < nb; j++) {
        let s = 0;
        for (let k = 0; k < d; k++) s += (q[i * d + k]! - b[j * d + k]!) ** 2;
        out[i * nb + j] = squared ? s : Math.sqrt(s);
      }
    }
    return out;
  };
  /** Matches `want` to 1e-5 relative; a true value above f32's max must come back as +Infinity (squared only). */
  const agree = (got: Float32Array, want: Float64Array, what: string) => {
    expect(got.length, what).toBe(want.length);
    for (let i = 0; i < got.length; i++) {
      if (want[i]! > 3.4028234663852886e38) {
        expect(got[i], `${what} [${i}]: true value ${want[i]} exceeds f32`).toBe(Infinity);
      } else {
        expect(Number.isFinite(got[i]!), `${what} [${i}]: ${got[i]} (expected ${want[i]})`).toBe(true);
        expect(Math.abs(got[i]! - want[i]!), `${what} [${i}]: ${got[i]} vs ${want[i]}`).toBeLessThanOrEqual(1e-5 * want[i]! + 1e-30);
      }
    }
  };
  for (const backend of BACKENDS) {
    it(`${backend}: pdist of finite rows with |x| ≥ 1e20 is finite and correct (f32 overflow in squared distances)`, () => {
      check(sync(() => ac.pdist(big, { d: 2, backend })), { ok: closeTo(condensedF64(big, 3, 2), 1e-5, 0) }, backend);
    });
    it(`${backend}: pdist / cdist / groupedNN of huge rows agree with f64, Euclidean and squared`, async () => {
      for (const [x, d] of [[big, 2], [far, 3], [spread, 3]] as const) {
        const n = x.length / d;
        for (const squared of [false, true]) {
          const what = `${backend} d=${d} squared=${squared}`;
          const all = ref(x, x, d, squared);
          const condensed = new Float64Array((n * (n - 1)) / 2);
          for (let i = 0, p = 0; i < n; i++) for (let j = i + 1; j < n; j++) condensed[p++] = all[i * n + j]!;
          agree(ac.pdist(x, { d, squared, backend }), condensed, `pdist ${what}`);
          agree(await ac.pdistAsync(x, { d, squared, backend }), condensed, `pdistAsync ${what}`);
          const q = x.subarray(d); // rows 1..n−1 against all rows
          agree(ac.cdist(q, x, { d, squared, backend }), ref(q, x, d, squared), `cdist ${what}`);
          // Groups {0}, {1..n−1}: per-group nearest distances of every row (self-join), and of the queries q.
          const groups = [0, 1, n];
          const want = new Float64Array(n * 2);
          for (let i = 0; i < n; i++) {
            want[i * 2] = all[i * n]!;
            let m = Infinity;
            for (let j = 1; j < n; j++) m = Math.min(m, all[i * n + j]!);
            want[i * 2 + 1] = m;
          }
          const self = ac.groupedNN(x, x, groups, { d, squared, mode: 'per-group', backend });
          const part = await ac.groupedNNAsync(q, x, groups, { d, squared, mode: 'per-group', backend });
          if (x === spread) {
            agree(self, want, `groupedNN self ${what}`);
            agree(part, want.subarray(2), `groupedNNAsync ${what}`);
          } else if (!squared) {
            // The grouped kernel has no near-pair refinement: its error is relative to the rows' distance from the
            // base's mean (documented in crates/kernels/src/grouped.rs), here up to max|x|. Finite, within that.
            const maxAbs = x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
            for (const [got, w] of [[self, want], [part, want.subarray(2)]] as const) {
              for (let i = 0; i < got.length; i++) {
                expect(Number.isFinite(got[i]!), `groupedNN ${what} [${i}]: ${got[i]}`).toBe(true);
                expect(Math.abs(got[i]! - w[i]!), `groupedNN ${what} [${i}]: ${got[i]} vs ${w[i]}`).toBeLessThanOrEqual(1e-3 * maxAbs * Math.sqrt(d));
              }
            }
          }
        }
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------------------
// 2. Pipeline and CLI

let tmp: string;
let cacheDir: string;
const dirs: Record<string, string> = {};
let notModel: string;
let emptyModel: string;
let mixedCount = 0;

beforeAll(async () => {
  tmp = tempDir('ac-hostile-');
  cacheDir = path.join(tmp, 'cache');
  const mk = (name: string) => {
    const d = path.join(tmp, name);
    mkdirSync(d, { recursive: true });
    dirs[name] = d;
    return d;
  };
  const good = await Promise.all([0, 1, 2, 3].map((i) => texturedPng(48 + 8 * i, 40, i + 1)));
  mk('empty');
  writeFileSync(path.join(mk('textonly'), 'notes.txt'), 'not an image\n');
  writeFileSync(path.join(mk('one'), 'a.png'), good[0]!);
  for (let i = 0; i < 2; i++) writeFileSync(path.join(mk('two'), `g${i}.png`), good[i]!);
  const withBad = (name: string, bad: Buffer, file = 'bad.png') => {
    const d = mk(name);
    for (let i = 0; i < 2; i++) writeFileSync(path.join(d, `g${i}.png`), good[i]!);
    writeFileSync(path.join(d, file), bad);
  };
  let a = 12345;
  withBad('corrupt', Buffer.from(Array.from({ length: 4096 }, () => ((a = (a * 1103515245 + 12345) >>> 0) >>> 24) & 255)));
  withBad('truncated', good[3]!.subarray(0, Math.floor(good[3]!.length / 2)));
  withBad('zerobyte', Buffer.alloc(0));
  withBad('hugedims', await pngClaiming(100_000, 100_000));
  withBad('textjpg', Buffer.from('hello, I am not a JPEG\n'), 'text.jpg');
  // PNG header followed by garbage chunks.
  withBad('badchunks', Buffer.concat([good[0]!.subarray(0, 33), Buffer.alloc(200, 0xab)]));
  const allBad = mk('allbad');
  writeFileSync(path.join(allBad, 'x.png'), Buffer.alloc(0));
  writeFileSync(path.join(allBad, 'y.jpg'), 'text');

  const s = await sharp();
  const mixed = mk('mixed');
  const files: [string, Buffer][] = [
    ['grey.png', await texturedPng(64, 48, 3, { channels: 1 })],
    ['greyalpha.png', await texturedPng(40, 64, 4, { channels: 2 })],
    ['rgba.png', await texturedPng(50, 50, 5, { channels: 4 })],
    ['rgb16.png', await texturedPng(32, 40, 6, { depth: 16 })],
    ['photo.jpg', await s(await texturedPng(80, 60, 7)).jpeg().toBuffer()],
    ['img.webp', await s(await texturedPng(60, 80, 8)).webp().toBuffer()],
    ['img.tiff', await s(await texturedPng(45, 45, 9)).tiff().toBuffer()],
    ['anim.gif', await s(await texturedPng(30, 30, 10)).gif().toBuffer()],
    ['pixel.png', await s({ create: { width: 1, height: 1, channels: 3, background: { r: 200, g: 10, b: 10 } } }).png().toBuffer()],
    ['sliver.png', await texturedPng(3, 300, 11)],
  ];
  for (const [f, b] of files) writeFileSync(path.join(mixed, f), b);
  mixedCount = files.length;
  mk('normals-empty');
  writeFileSync(path.join(dirs['normals-empty']!, 'README.txt'), 'no images here');
  notModel = path.join(tmp, 'not-a-model.onnx');
  writeFileSync(notModel, Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7919) & 255)));
  emptyModel = path.join(tmp, 'empty.onnx');
  writeFileSync(emptyModel, Buffer.alloc(0));
}, 60_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A checker of a correct clustering of `n` images into `k` clusters. */
const correct = (n: number, k: number, skipped = 0) => (r: ClusterResult) => {
  expect(r.n).toBe(n);
  expect(r.files.length).toBe(n);
  expect(r.skipped.length).toBe(skipped);
  expect(r.labels.length).toBe(n);
  expect(new Set(r.labels).size).toBe(k);
  for (const l of r.labels) expect(l >= 0 && l < k).toBe(true);
  expect(r.Z.length).toBe((n - 1) * 4);
  for (const v of r.Z) expect(Number.isFinite(v)).toBe(true);
  for (const v of r.embeddings) expect(Number.isFinite(v)).toBe(true);
  for (const w of r.weights) {
    let s = 0;
    for (const v of w) s += v;
    expect(Math.abs(s - 1)).toBeLessThan(1e-3);
  }
};

interface PCase {
  name: string;
  dir: () => string;
  options?: () => Partial<ClusterOptions>;
  argv?: () => string[];
  api: Expect;
  exit: number;
  /** Backends that skip this case: the unsupervised search over many images is slow on js (and on wasm for 10 images). */
  skip?: BackendName[];
}

const pipelineCases: PCase[] = [
  { name: 'empty folder', dir: () => dirs.empty!, api: { code: 'ERR_EMPTY', problem: 'no-images' }, exit: EXIT.NO_IMAGES },
  { name: 'folder with only a .txt file', dir: () => dirs.textonly!, api: { code: 'ERR_EMPTY', problem: 'no-images' }, exit: EXIT.NO_IMAGES },
  { name: 'missing folder', dir: () => path.join(tmp, 'nope'), api: { code: 'ERR_INVALID_ARGUMENT', problem: 'not-found' }, exit: EXIT.NOT_FOUND },
  { name: 'a file instead of a folder', dir: () => notModel, api: { code: 'ERR_INVALID_ARGUMENT', problem: 'not-found' }, exit: EXIT.NOT_FOUND },
  { name: 'one image, k = 1', dir: () => dirs.one!, options: () => ({ k: 1 }), argv: () => ['--k', '1'], api: { ok: correct(1, 1) }, exit: EXIT.OK },
  { name: 'one image, k = 1, unsupervised', dir: () => dirs.one!, options: () => ({ k: 1, weighting: 'unsupervised' }), argv: () => ['--k', '1', '--weighting', 'unsupervised'], api: { ok: correct(1, 1) }, exit: EXIT.OK },
  { name: 'one image, k = 2', dir: () => dirs.one!, options: () => ({ k: 2 }), argv: () => ['--k', '2'], api: { option: 'k', code: 'ERR_K_OUT_OF_RANGE' }, exit: EXIT.K_RANGE },
  { name: 'k = 0', dir: () => dirs.two!, options: () => ({ k: 0 }), argv: () => ['--k', '0'], api: { option: 'k', code: 'ERR_K_OUT_OF_RANGE' }, exit: EXIT.K_RANGE },
  { name: 'k < 0', dir: () => dirs.two!, options: () => ({ k: -3 }), argv: () => ['--k=-3'], api: { option: 'k', code: 'ERR_K_OUT_OF_RANGE' }, exit: EXIT.K_RANGE },
  { name: 'k > N', dir: () => dirs.two!, options: () => ({ k: 3 }), argv: () => ['--k', '3'], api: { option: 'k', code: 'ERR_K_OUT_OF_RANGE' }, exit: EXIT.K_RANGE },
  { name: 'k not an integer', dir: () => dirs.two!, options: () => ({ k: 1.5 }), argv: () => ['--k', '1.5'], api: { option: 'k', code: 'ERR_K_OUT_OF_RANGE' }, exit: EXIT.USAGE },
  { name: 'k NaN', dir: () => dirs.two!, options: () => ({ k: NaN }), argv: () => ['--k', 'NaN'], api: { option: 'k', code: 'ERR_K_OUT_OF_RANGE' }, exit: EXIT.USAGE },
  { name: 'τ < 0', dir: () => dirs.two!, options: () => ({ weights: { tau: -1 } }), argv: () => ['--tau=-1'], api: { option: 'weights.tau', code: 'ERR_INVALID_ARGUMENT' }, exit: EXIT.USAGE },
  { name: 'relative τ < 0', dir: () => dirs.two!, options: () => ({ weights: { tau: { relative: -2 } } }), argv: () => ['--tau', 'rel:-2'], api: { option: 'weights.tau', code: 'ERR_INVALID_ARGUMENT' }, exit: EXIT.USAGE },
  { name: 'τ NaN', dir: () => dirs.two!, options: () => ({ weights: { tau: NaN } }), argv: () => ['--tau', 'NaN'], api: { option: 'weights.tau', code: 'ERR_INVALID_ARGUMENT' }, exit: EXIT.USAGE },
  { name: 'τ = 0 (arg-max) is valid', dir: () => dirs.two!, options: () => ({ k: 2, weights: { tau: 0 }, weighting: 'unsupervised' }), argv: () => ['--k', '2', '--tau', '0', '--weighting', 'unsupervised'], api: { ok: correct(2, 2) }, exit: EXIT.OK, skip: ['js'] },
  { name: 'corrupt image (random bytes)', dir: () => dirs.corrupt!, api: { code: 'ERR_IMAGE' }, exit: EXIT.IMAGE },
  { name: 'corrupt image, skipBad', dir: () => dirs.corrupt!, options: () => ({ features: { skipBad: true } }), argv: () => ['--skip-bad'], api: { ok: correct(2, 2, 1) }, exit: EXIT.OK },
  { name: 'truncated PNG', dir: () => dirs.truncated!, api: { code: 'ERR_IMAGE' }, exit: EXIT.IMAGE },
  { name: 'truncated PNG, skipBad', dir: () => dirs.truncated!, options: () => ({ features: { skipBad: true } }), argv: () => ['--skip-bad'], api: { ok: correct(2, 2, 1) }, exit: EXIT.OK },
  { name: 'zero-byte image', dir: () => dirs.zerobyte!, api: { code: 'ERR_IMAGE' }, exit: EXIT.IMAGE },
  { name: 'PNG header claiming 100000×100000', dir: () => dirs.hugedims!, api: { code: 'ERR_IMAGE' }, exit: EXIT.IMAGE },
  { name: 'PNG header claiming 100000×100000, skipBad', dir: () => dirs.hugedims!, options: () => ({ features: { skipBad: true } }), argv: () => ['--skip-bad'], api: { ok: correct(2, 2, 1) }, exit: EXIT.OK },
  { name: 'text file named .jpg', dir: () => dirs.textjpg!, api: { code: 'ERR_IMAGE' }, exit: EXIT.IMAGE },
  { name: 'PNG signature + garbage chunks', dir: () => dirs.badchunks!, api: { code: 'ERR_IMAGE' }, exit: EXIT.IMAGE },
  { name: 'every image bad, skipBad', dir: () => dirs.allbad!, options: () => ({ k: 1, features: { skipBad: true } }), argv: () => ['--k', '1', '--skip-bad'], api: { code: 'ERR_EMPTY', problem: 'no-images' }, exit: EXIT.NO_IMAGES },
  { name: 'mixed sizes and modes (uniform)', dir: () => dirs.mixed!, options: () => ({ k: 3 }), argv: () => ['--k', '3'], api: { ok: (r: ClusterResult) => correct(mixedCount, 3)(r) }, exit: EXIT.OK },
  { name: 'mixed sizes and modes (unsupervised)', dir: () => dirs.mixed!, options: () => ({ k: 4, weighting: 'unsupervised' }), argv: () => ['--k', '4', '--weighting', 'unsupervised'], api: { ok: (r: ClusterResult) => correct(mixedCount, 4)(r) }, exit: EXIT.OK, skip: ['js', 'wasm'] },
  { name: 'semi-supervised, normals folder with no images', dir: () => dirs.two!, options: () => ({ weighting: 'semi-supervised', normals: dirs['normals-empty']! }), argv: () => ['--weighting', 'semi-supervised', '--normals', dirs['normals-empty']!], api: { code: 'ERR_EMPTY', problem: 'normals-empty' }, exit: EXIT.NORMALS },
  { name: 'semi-supervised, normals folder missing', dir: () => dirs.two!, options: () => ({ weighting: 'semi-supervised', normals: path.join(tmp, 'no-normals') }), argv: () => ['--weighting', 'semi-supervised', '--normals', path.join(tmp, 'no-normals')], api: { code: 'ERR_INVALID_ARGUMENT', problem: 'normals-not-found' }, exit: EXIT.NORMALS },
  { name: 'semi-supervised without normals', dir: () => dirs.two!, options: () => ({ weighting: 'semi-supervised' }), argv: () => ['--weighting', 'semi-supervised'], api: { code: 'ERR_INVALID_ARGUMENT', problem: 'normals-required' }, exit: EXIT.USAGE },
  { name: 'semi-supervised, normals are corrupt', dir: () => dirs.two!, options: () => ({ weighting: 'semi-supervised', normals: dirs.allbad! }), argv: () => ['--weighting', 'semi-supervised', '--normals', dirs.allbad!], api: { code: 'ERR_IMAGE' }, exit: EXIT.IMAGE },
  { name: 'ONNX file that is not a model', dir: () => dirs.two!, options: () => ({ features: { backbone: { model: notModel, layers: ['a', 'b'] } } }), argv: () => ['--model', notModel, '--layers', 'a,b'], api: { code: 'ERR_MODEL' }, exit: EXIT.MODEL },
  { name: 'empty .onnx file', dir: () => dirs.two!, options: () => ({ features: { backbone: { model: emptyModel, layers: ['a', 'b'] } } }), argv: () => ['--model', emptyModel, '--layers', 'a,b'], api: { code: 'ERR_MODEL' }, exit: EXIT.MODEL },
  { name: 'model file missing', dir: () => dirs.two!, options: () => ({ features: { backbone: { model: path.join(tmp, 'none.onnx'), layers: ['a', 'b'] } } }), argv: () => ['--model', path.join(tmp, 'none.onnx'), '--layers', 'a,b'], api: { code: 'ERR_MODEL' }, exit: EXIT.MODEL },
  { name: 'custom model without layers', dir: () => dirs.two!, options: () => ({ features: { backbone: { model: notModel } } }), argv: () => ['--model', notModel], api: { code: 'ERR_MODEL' }, exit: EXIT.MODEL },
  { name: 'default model, missing layers', dir: () => dirs.two!, options: () => ({ features: { backbone: { layers: ['no_such_layer', 'block_13_expand_relu'] } } }), argv: () => ['--layers', 'no_such_layer,block_13_expand_relu'], api: { code: 'ERR_MODEL' }, exit: EXIT.MODEL },
  { name: 'default model, layers at the wrong strides', dir: () => dirs.two!, options: () => ({ features: { backbone: { layers: ['block_13_expand_relu', 'block_3_expand_relu'] } } }), argv: () => ['--layers', 'block_13_expand_relu,block_3_expand_relu'], api: { code: 'ERR_MODEL' }, exit: EXIT.MODEL },
];

/** Cases run on this backend (slow unsupervised runs are skipped on js / wasm; determinism.test.ts covers wasm). */
const runnable = (backend: BackendName) => pipelineCases.filter((c) => !c.skip?.includes(backend));

describe.each(BACKENDS)('hostile pipeline inputs on %s', (backend) => {
  it.each(runnable(backend).map((c) => [c.name, c] as const))('clusterImages: %s', async (_name, c) => {
    const o = c.options?.() ?? {};
    const opts: ClusterOptions = { k: 2, weighting: 'uniform', ...o, features: { cacheDir, threads: 1, ...o.features }, resources: { backend, ...o.resources } } as ClusterOptions;
    const t0 = performance.now();
    const out = await settle(() => ac.clusterImages(c.dir(), opts));
    check(out, c.api, `${backend}: ${c.name}`);
    expect(performance.now() - t0).toBeLessThan(30_000);
  }, 40_000);

  it('clusterImages with hostile in-memory inputs and options', async () => {
    const base = { k: 1, weighting: 'uniform' as const, features: { cacheDir, threads: 1 }, resources: { backend } };
    const cases: [string, () => Promise<unknown>, Expect][] = [
      ['empty list', () => ac.clusterImages([], base), { code: 'ERR_EMPTY', problem: 'no-images' }],
      ['not a path or list', () => ac.clusterImages(42 as never, base), { type: 'TypeError' }],
      // options are optional (`clusterImages(dir)`, exercised in test/package.test.ts); null is still a TypeError
      ['options null', () => ac.clusterImages(dirs.two!, null as never), { type: 'TypeError' }],
      ['data is a string', () => ac.clusterImages([{ name: 'x.png', data: 'abc' as never }], base), { code: 'ERR_IMAGE' }],
      ['data is empty', () => ac.clusterImages([{ name: 'x.png', data: new Uint8Array(0) }], base), { code: 'ERR_IMAGE' }],
      ['unknown weighting', () => ac.clusterImages(dirs.two!, { ...base, weighting: 'magic' as never }), { option: 'weighting', code: 'ERR_INVALID_ARGUMENT' }],
      ['unknown linkage', () => ac.clusterImages(dirs.two!, { ...base, linkage: 'nearest' as never }), { option: 'linkage', code: 'ERR_INVALID_METHOD' }],
      ['batchSize 0', () => ac.clusterImages(dirs.two!, { ...base, features: { ...base.features, batchSize: 0 } }), { option: 'features.batchSize', code: 'ERR_INVALID_ARGUMENT' }],
      ['threads -1', () => ac.clusterImages(dirs.two!, { ...base, features: { ...base.features, threads: -1 } }), { option: 'features.threads', code: 'ERR_INVALID_ARGUMENT' }],
      ['same bytes twice under two names', async () => {
        const png = await texturedPng(50, 50, 9);
        return ac.clusterImages([{ name: 'a.png', data: png }, { name: 'b.png', data: png }], { ...base, k: 2 });
      }, { ok: (r: ClusterResult) => { correct(2, 2)(r); expect(r.Z[2]).toBe(0); } }],
    ];
    for (const [name, f, want] of cases) check(await settle(f), want, `${backend}: ${name}`);
  }, 60_000);

  it.each(runnable(backend).map((c) => [c.name, c] as const))('cli: %s', async (_name, c) => {
    let out = '';
    let err = '';
    const argv = [c.dir(), '--backend', backend, '--cache', cacheDir, '--threads', '1', '-q', '--out', path.join(tmp, `out-${backend}`)];
    const extra = c.argv?.() ?? ['--k', '2'];
    if (!extra.some((a) => a.startsWith('--weighting'))) argv.push('--weighting', 'uniform');
    if (!extra.some((a) => a.startsWith('--k'))) argv.push('--k', '2');
    const code = await main([...argv, ...extra], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s), isTTY: false },
      cwd: tmp,
    });
    expect(code, `${backend} cli ${c.name}: ${err}${out.slice(0, 300)}`).toBe(c.exit);
    if (c.exit !== EXIT.OK) expect(err).toMatch(/^anomaly-clustering: \S/m);
    expect(err).not.toMatch(/at .*\(.*:\d+:\d+\)/); // no stack trace
  }, 40_000);
});
