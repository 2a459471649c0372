/**
 * The symmetric self-join of the grouped nearest-neighbour search (`GroupedNNArgs.selfJoin`): on every backend,
 * the self-join path gives the same scores as the general search of the same problem, bit for bit (each pair of
 * groups is multiplied once, but every distance and every min is the same number), and the flag is ignored when
 * its conditions do not hold. Also checks that `K.groupedNN` recognises the layout and sets the flag.
 */
import { describe, expect, it, vi } from 'vitest';
import type { GroupedMode, GroupedNNArgs } from '../../bindings/backend.js';
import { getBackend } from '../../bindings/select.js';
import * as K from '../../src/kernels.js';
import { arr, backendsUnderTest, randomRows, skippedBackends } from '../helpers.js';

const MODES: GroupedMode[] = ['per-group', 'min', 'mean-excluding-own'];

/** Groups of the given sizes, rows = base = queries, each row's group. */
function layout(sizes: number[], d: number, seed: number) {
  const offsets = new Uint32Array(sizes.length + 1);
  sizes.forEach((s, g) => (offsets[g + 1] = offsets[g]! + s));
  const nq = offsets[sizes.length]!;
  const base = randomRows(nq, d, seed);
  const groups = new Int32Array(nq);
  for (let g = 0; g < sizes.length; g++) groups.fill(g, offsets[g]!, offsets[g + 1]!);
  return { base, offsets, nq, groups };
}

function args(l: ReturnType<typeof layout>, d: number, mode: GroupedMode, squared: boolean, selfJoin: boolean): GroupedNNArgs {
  return {
    queries: l.base,
    nq: l.nq,
    base: l.base,
    groupOffsets: l.offsets,
    d,
    mode,
    queryGroups: l.groups,
    squared,
    ...(selfJoin ? { selfJoin: true } : {}),
  };
}

const CASES: [number[], number][] = [
  [[1], 3],
  [[3, 1, 7], 1],
  [[5, 13, 2, 9], 9],
  [[17, 17, 17, 17, 17, 17], 31],
  [[151, 5, 290, 1], 300], // blocks: > 256 lanes, > 144 rows, d > 256
  [Array.from({ length: 70 }, (_, g) => 1 + (g % 4)), 8], // > 64 groups: several groups per stripe
];

for (const s of skippedBackends()) describe.skip(`self-join on ${s.backend}: not loaded (${s.reason})`, () => {});

describe.each(backendsUnderTest())('grouped self-join on %s', (backend) => {
  const be = () => getBackend(backend);

  it.each(CASES.map(([sizes, d]) => [sizes.length, d, sizes] as const))(
    '%i groups, d=%i: self-join == general search, every mode',
    (_ng, d, sizes) => {
      // The JS reference is O(nq²·d) twice: keep its largest case small.
      if (backend === 'js' && d === 300) sizes = [40, 5, 61, 1];
      const l = layout([...sizes], d, 100 + d);
      for (const mode of MODES) {
        for (const squared of [false, true]) {
          const general = be().groupedNN(args(l, d, mode, squared, false));
          const self = be().groupedNN(args(l, d, mode, squared, true));
          const many = sizes.length > 64 && mode === 'mean-excluding-own' && backend !== 'js';
          if (many) {
            // > 64 groups: the f64 mean is summed per stripe of groups, at most one f32 rounding step away.
            for (let i = 0; i < general.length; i++) {
              expect(Math.abs(self[i]! - general[i]!)).toBeLessThanOrEqual(2 * 2 ** -23 * Math.abs(general[i]!));
            }
          } else {
            expect(arr(self), `${mode} squared=${squared}`).toEqual(arr(general));
          }
        }
      }
    },
  );

  it('async twin equals sync', async () => {
    const l = layout([9, 9, 9, 9], 13, 7);
    const a = args(l, 13, 'mean-excluding-own', false, true);
    expect(arr(await be().groupedNNAsync(a))).toEqual(arr(be().groupedNN(a)));
  });

  it('ignores the flag when its conditions do not hold', () => {
    const l = layout([4, 5, 6], 7, 3);
    const copy = Float32Array.from(l.base);
    // Different memory (a copy): general search, same numbers.
    const a = { ...args(l, 7, 'min', false, true), queries: copy };
    expect(arr(be().groupedNN(a))).toEqual(arr(be().groupedNN(args(l, 7, 'min', false, false))));
    // Query groups that are not the row groups: the general search honours them.
    const shifted = l.groups.map((g) => (g + 1) % 3);
    const b = { ...args(l, 7, 'mean-excluding-own', false, true), queryGroups: shifted };
    const want = be().groupedNN({ ...b, selfJoin: false });
    expect(arr(be().groupedNN(b))).toEqual(arr(want));
    expect(arr(want)).not.toEqual(arr(be().groupedNN(args(l, 7, 'mean-excluding-own', false, false))));
  });

  it('K.groupedNN recognises queries = base with row groups', () => {
    const l = layout([6, 6, 6], 5, 9);
    const spy = vi.spyOn(be(), 'groupedNN');
    try {
      K.groupedNN(l.base, l.base, l.offsets, { d: 5, mode: 'mean-excluding-own', queryGroups: l.groups, backend });
      expect(spy.mock.calls.at(-1)?.[0].selfJoin).toBe(true);
      K.groupedNN(l.base.subarray(0, 6 * 5), l.base, l.offsets, {
        d: 5,
        mode: 'mean-excluding-own',
        queryGroups: l.groups.subarray(0, 6),
        backend,
      });
      expect(spy.mock.calls.at(-1)?.[0].selfJoin).toBeUndefined();
      K.groupedNN(l.base, Float32Array.from(l.base), l.offsets, { d: 5, mode: 'min', backend });
      expect(spy.mock.calls.at(-1)?.[0].selfJoin).toBeUndefined();
    } finally {
      spy.mockRestore();
    }
  });
});
