/**
 * The error contract: each bad input gives its documented error class and `code` through the public API
 * (`src/kernels.ts`), with each backend; and each backend called directly with bad input throws a
 * `KernelError` with the same code (never a raw crash).
 */
import { describe, expect, it } from 'vitest';
import type { KernelBackend } from '../bindings/backend.js';
import { getBackend } from '../bindings/select.js';
import { KernelError } from '../src/errors.js';
import type { ErrorCode } from '../src/errors.js';
import * as K from '../src/kernels.js';
import { backendsUnderTest, skippedBackends } from './helpers.js';

function expectCode(f: () => unknown, code: ErrorCode, message?: RegExp): void {
  let err: unknown;
  try {
    f();
  } catch (e) {
    err = e;
  }
  expect(err, `expected ${code}`).toBeInstanceOf(KernelError);
  expect((err as KernelError).code).toBe(code);
  if (message) expect((err as KernelError).message).toMatch(message);
}

const x4 = Float32Array.from([0, 0, 1, 0, 0, 1, 1, 1]); // 4 rows × d=2
const y4 = Float64Array.from([1, 1, 1.5, 1.5, 1, 1]); // 4 points

for (const s of skippedBackends()) describe.skip(`errors on ${s.backend}: not loaded (${s.reason})`, () => {});

describe.each(backendsUnderTest())('public API errors with backend %s', (backend) => {
  // Z is built by the reference so that these tests exercise validation, not the backend's linkage.
  const lk = (): K.Linkage => K.linkage(y4, { method: 'average', backend: 'js' });

  it('TypeError for wrong types', () => {
    expect(() => K.pdist([0, 1, 2, 3] as unknown as number[][], { backend })).toThrow(TypeError);
    expect(() => K.pdist(Float64Array.from([0, 1]) as unknown as Float32Array, { d: 1, backend })).toThrow(TypeError);
    expect(() => K.pdist(x4, { backend })).toThrow(TypeError); // flat array without d
    expect(() => K.pdist(x4, { d: 2, squared: 'yes' as unknown as boolean, backend })).toThrow(TypeError);
    expect(() => K.pdist([[1, 'a' as unknown as number]], { backend })).toThrow(TypeError);
    expect(() => K.linkage('1,2,3' as unknown as Float64Array, { backend })).toThrow(TypeError);
    expect(() => K.softmaxWeights(Float32Array.from([1]), [0, 1], { tau: '1' as unknown as number, backend })).toThrow(TypeError);
    expect(() => K.cutTree(lk(), { nClusters: 1.5, backend })).toThrow(TypeError);
    expect(() => K.fcluster({ Z: [0, 1, 1, 2] as unknown as Float64Array, n: 2 }, 1, { backend })).toThrow(TypeError);
    expect(() => K.pdist(x4, { d: 2, backend: 'gpu' as unknown as K.BackendName })).toThrow(TypeError);
  });

  it('ERR_SHAPE_MISMATCH for lengths vs dimensions', () => {
    expectCode(() => K.pdist(x4, { d: 3, backend }), 'ERR_SHAPE_MISMATCH', /multiple of d=3/);
    expectCode(() => K.pdist([[1, 2], [3]], { backend }), 'ERR_SHAPE_MISMATCH');
    expectCode(() => K.pdist([[1, 2]], { d: 3, backend }), 'ERR_SHAPE_MISMATCH');
    expectCode(() => K.cdist([[1, 2]], [[1, 2, 3]], { backend }), 'ERR_SHAPE_MISMATCH');
    expectCode(() => K.linkage(Float64Array.from([1, 2, 3, 4]), { backend }), 'ERR_SHAPE_MISMATCH', /n\(n-1\)\/2/);
    expectCode(() => K.linkage(y4, { n: 5, backend }), 'ERR_SHAPE_MISMATCH');
    expectCode(() => K.weightedMean(x4, [0, 4], [1, 1, 1], { d: 2, backend }), 'ERR_SHAPE_MISMATCH');
    expectCode(() => K.groupedNN(x4, x4, [0, 4], { d: 2, mode: 'mean-excluding-own', queryGroups: [0, 0], backend }), 'ERR_SHAPE_MISMATCH');
    expectCode(() => K.fcluster({ Z: new Float64Array(5), n: 2 }, 1, { backend }), 'ERR_SHAPE_MISMATCH');
    expectCode(() => K.squareform(Float64Array.from([1, 2])), 'ERR_SHAPE_MISMATCH');
    expectCode(() => K.condensed([[0, 1], [1]]), 'ERR_SHAPE_MISMATCH');
  });

  it('ERR_NON_FINITE with the index', () => {
    const bad = Float32Array.from(x4);
    bad[5] = NaN;
    expectCode(() => K.pdist(bad, { d: 2, backend }), 'ERR_NON_FINITE', /index 5/);
    expectCode(() => K.pdist([[0, 1], [Infinity, 2]], { backend }), 'ERR_NON_FINITE', /index 2/);
    expectCode(() => K.cdist(x4, bad, { d: 2, backend }), 'ERR_NON_FINITE', /index 5/);
    expectCode(() => K.groupedNN(bad, x4, [0, 4], { d: 2, backend }), 'ERR_NON_FINITE');
    expectCode(() => K.linkage(Float64Array.from([1, -Infinity, 2]), { backend }), 'ERR_NON_FINITE', /index 1/);
    expectCode(() => K.softmaxWeights([1, NaN], [0, 2], { backend }), 'ERR_NON_FINITE', /index 1/);
    expectCode(() => K.weightedMean(x4, [0, 4], [1, 1, NaN, 1], { d: 2, backend }), 'ERR_NON_FINITE', /index 2/);
    const z = Float64Array.from(lk().Z);
    z[2] = NaN;
    expectCode(() => K.cutTree({ Z: z, n: 4 }, { nClusters: 2, backend }), 'ERR_NON_FINITE');
  });

  it('ERR_EMPTY for empty input', () => {
    expectCode(() => K.pdist([], { backend }), 'ERR_EMPTY');
    expectCode(() => K.pdist(new Float32Array(0), { d: 2, backend }), 'ERR_EMPTY');
    expectCode(() => K.pdist(x4, { d: 0, backend }), 'ERR_EMPTY');
    expectCode(() => K.cdist(x4, new Float32Array(0), { d: 2, backend }), 'ERR_EMPTY');
    expectCode(() => K.linkage(new Float64Array(0), { n: 0, backend }), 'ERR_EMPTY');
    expectCode(() => K.softmaxWeights([], [0], { backend }), 'ERR_EMPTY');
    expectCode(() => K.maxPool([[1]], [], { backend }), 'ERR_EMPTY');
  });

  it('ERR_K_OUT_OF_RANGE for k outside 1..n', () => {
    expectCode(() => K.cutTree(lk(), { nClusters: 0, backend }), 'ERR_K_OUT_OF_RANGE', /1\.\.4/);
    expectCode(() => K.cutTree(lk(), { nClusters: 5, backend }), 'ERR_K_OUT_OF_RANGE');
    expectCode(() => K.fcluster(lk(), 0, { backend }), 'ERR_K_OUT_OF_RANGE');
  });

  it('ERR_INVALID_METHOD listing the valid values', () => {
    expectCode(() => K.linkage(y4, { method: 'wards' as K.LinkageMethod, backend }), 'ERR_INVALID_METHOD', /single, complete, average, weighted, ward, centroid, median/);
    expectCode(() => K.groupedNN(x4, x4, [0, 4], { d: 2, mode: 'max' as K.GroupedMode, backend }), 'ERR_INVALID_METHOD', /per-group, min, mean-excluding-own/);
    expectCode(() => K.fcluster(lk(), 2, { criterion: 'inconsistent' as K.FclusterCriterion, backend }), 'ERR_INVALID_METHOD', /maxclust, distance/);
  });

  it('ERR_INVALID_ARGUMENT for bad values', () => {
    expectCode(() => K.softmaxWeights([1, 2], [0, 2], { tau: -1, backend }), 'ERR_INVALID_ARGUMENT', /tau/);
    expectCode(() => K.softmaxWeights([1, 2], [0, 2], { tau: NaN, backend }), 'ERR_INVALID_ARGUMENT', /tau/);
    expectCode(() => K.weightedMean(x4, [0, 4], [1, -1, 1, 1], { d: 2, backend }), 'ERR_INVALID_ARGUMENT', /≥ 0/);
    expectCode(() => K.weightedMean(x4, [0, 2, 4], [0, 0, 1, 1], { d: 2, backend }), 'ERR_INVALID_ARGUMENT', /bag 0/);
    expectCode(() => K.maxPool(x4, [0, 2, 2, 4], { d: 2, backend }), 'ERR_INVALID_ARGUMENT', /increasing/);
    expectCode(() => K.maxPool(x4, [1, 4], { d: 2, backend }), 'ERR_INVALID_ARGUMENT', /offsets\[0\]/);
    expectCode(() => K.maxPool(x4, [0, 3], { d: 2, backend }), 'ERR_INVALID_ARGUMENT', /last offset/);
    expectCode(() => K.maxPool(x4, [0, -1, 4], { d: 2, backend }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => K.groupedNN(x4, x4, [0, 4], { d: 2, mode: 'mean-excluding-own', backend }), 'ERR_INVALID_ARGUMENT', /queryGroups/);
    expectCode(() => K.groupedNN(x4, x4, [0, 4], { d: 2, mode: 'mean-excluding-own', queryGroups: [0, 0, 1, 0], backend }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => K.linkage(Float64Array.from([1, -1, 2]), { method: 'ward', backend }), 'ERR_INVALID_ARGUMENT', /non-negative/);
    expectCode(() => K.cutTree(lk(), { backend } as unknown as K.CutTreeOptions), 'ERR_INVALID_ARGUMENT');
    expectCode(() => K.cutTree(lk(), { height: NaN, backend }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => K.fcluster({ Z: Float64Array.from([0, 0, 1, 2]), n: 2 }, 1, { backend }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => K.fcluster({ Z: Float64Array.from([0, 1, 1, 3]), n: 2 }, 1, { backend }), 'ERR_INVALID_ARGUMENT', /size/);
    expectCode(() => K.fcluster({ Z: Float64Array.from([0, 5, 1, 2]), n: 2 }, 1, { backend }), 'ERR_INVALID_ARGUMENT');
    expectCode(() => K.condensed([[0, 1], [2, 0]]), 'ERR_INVALID_ARGUMENT', /symmetric/);
  });

  it('async variants reject (not throw) with the same codes', async () => {
    await expect(K.pdistAsync(x4, { d: 3, backend })).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
    await expect(K.cdistAsync([], x4, { d: 2, backend })).rejects.toMatchObject({ code: 'ERR_EMPTY' });
    await expect(K.groupedNNAsync(x4, x4, [0, 4], { d: 2, mode: 'x' as K.GroupedMode, backend })).rejects.toMatchObject({
      code: 'ERR_INVALID_METHOD',
    });
    await expect(K.linkageAsync(y4, { method: 'nope' as K.LinkageMethod, backend })).rejects.toBeInstanceOf(KernelError);
  });
});

describe.each(backendsUnderTest())('backend %s called directly never crashes on bad input', (name) => {
  const b = (): KernelBackend => getBackend(name);
  it('throws KernelError with the documented code', async () => {
    expectCode(() => b().pdist(x4, 4, 3, false), 'ERR_SHAPE_MISMATCH');
    // (finiteness of pdist/cdist rows is checked by src/ only: the backends may skip that O(n·d) scan)
    expectCode(() => b().cdist(x4, 4, x4, 3, 2, false), 'ERR_SHAPE_MISMATCH');
    expectCode(() => b().linkage(y4, 4, 'foo' as K.LinkageMethod), 'ERR_INVALID_METHOD');
    expectCode(() => b().linkage(y4, 5, 'single'), 'ERR_SHAPE_MISMATCH');
    expectCode(() => b().linkage(Float64Array.from([1, NaN, 1]), 3, 'single'), 'ERR_NON_FINITE');
    expectCode(() => b().cutK(K.linkage(y4, { backend: 'js' }).Z, 4, 0), 'ERR_K_OUT_OF_RANGE');
    expectCode(() => b().cutK(K.linkage(y4, { backend: 'js' }).Z, 4, 5), 'ERR_K_OUT_OF_RANGE');
    expectCode(() => b().softmaxWeights(Float32Array.from([1, 2]), Uint32Array.from([0, 2]), -1), 'ERR_INVALID_ARGUMENT');
    expectCode(() => b().maxPool(x4, Uint32Array.from([0, 5]), 2), 'ERR_INVALID_ARGUMENT');
    // linearMap: the same code for the same mistake on every backend
    const w6 = Float32Array.from([1, 0, 0, 1, 1, 1]);
    expectCode(() => b().linearMap(x4, 4, 0, w6, 3), 'ERR_EMPTY');
    expectCode(() => b().linearMap(x4, 4, 2, w6, 0), 'ERR_EMPTY');
    expectCode(() => b().linearMap(x4, 3, 2, w6, 3), 'ERR_SHAPE_MISMATCH');
    expectCode(() => b().linearMap(x4, 4, 2, w6, 2), 'ERR_SHAPE_MISMATCH');
    expectCode(() => b().linearMap(Float32Array.from([1, NaN]), 1, 2, w6, 3), 'ERR_NON_FINITE');
    expectCode(() => b().linearMap(Float32Array.from([1, 2]), 1, 2, Float32Array.from([1, 0, 0, Infinity, 1, 1]), 3), 'ERR_NON_FINITE');
    expectCode(() => b().linearMap(Float32Array.from([3e38, 3e38]), 1, 2, w6, 3), 'ERR_INVALID_ARGUMENT', /overflows/);
    await expect(b().linearMapAsync(x4, 3, 2, w6, 3)).rejects.toMatchObject({ code: 'ERR_SHAPE_MISMATCH' });
    expect(b().linearMap(new Float32Array(0), 0, 2, w6, 3).length).toBe(0);
    expectCode(
      () => b().weightedMean(x4, Uint32Array.from([0, 4]), 2, new Float32Array(4)),
      'ERR_INVALID_ARGUMENT',
    );
    expectCode(
      () => b().groupedNN({ queries: x4, nq: 4, base: x4, groupOffsets: Uint32Array.from([0, 4]), d: 2, mode: 'nope' as K.GroupedMode }),
      'ERR_INVALID_METHOD',
    );
    await expect(b().linkageAsync(y4, 4, 'foo' as K.LinkageMethod)).rejects.toMatchObject({ code: 'ERR_INVALID_METHOD' });
  });
});

describe('OptionError: the class of an option value clusterImages does not accept', () => {
  it('is a RangeError with the option path and a stable code; the CLI maps it to its exit codes', async () => {
    const { OptionError } = await import('../src/errors.js');
    const { exitCodeOf, EXIT } = await import('../src/cli/main.js');
    const { resolveClusterOptions } = await import('../src/pipeline/options.js');
    const caught = (o: object): unknown => {
      try {
        resolveClusterOptions(o);
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const k = caught({ k: -2 });
    expect(k).toBeInstanceOf(OptionError);
    expect(k).toBeInstanceOf(RangeError);
    expect(k).not.toBeInstanceOf(KernelError);
    expect(k).toMatchObject({ name: 'OptionError', option: 'k', code: 'ERR_K_OUT_OF_RANGE' });
    expect(exitCodeOf(k)).toBe(EXIT.K_RANGE);
    const whiten = caught({ weights: { whiten: -1 } });
    expect(whiten).toMatchObject({ name: 'OptionError', option: 'weights.whiten', code: 'ERR_INVALID_ARGUMENT' });
    expect((whiten as Error).cause).toBeInstanceOf(Error); // the stage check's own error, message unchanged
    expect((whiten as Error).message).toBe(((whiten as Error).cause as Error).message);
    expect(exitCodeOf(whiten)).toBe(EXIT.USAGE);
    expect(caught({ linkage: 'nearest' })).toMatchObject({ option: 'linkage', code: 'ERR_INVALID_METHOD' });
    expect(caught({ k: 2 })).toBeUndefined();
  });
});
