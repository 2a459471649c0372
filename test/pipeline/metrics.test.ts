import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { evaluate, hungarian, matchedF1, nmi, ari } from '../../src/pipeline/metrics.js';
import { KernelError } from '../../src/errors.js';

interface GoldenCase { name: string; labels: (number | string)[]; truth: (number | string)[]; nmi: number; ari: number; f1: number }
const golden = JSON.parse(readFileSync(new URL('../fixtures/sklearn-metrics.json', import.meta.url), 'utf8')) as { cases: GoldenCase[] };

describe('evaluate() vs scikit-learn', () => {
  it('has the golden cases', () => expect(golden.cases.length).toBeGreaterThan(10));
  for (const c of golden.cases) {
    it(c.name, () => {
      const m = evaluate(c.labels, c.truth);
      expect(m.nmi).toBeCloseTo(c.nmi, 10);
      expect(m.ari).toBeCloseTo(c.ari, 10);
      expect(m.f1).toBeCloseTo(c.f1, 12);
    });
  }
  it('accepts typed arrays and is symmetric in NMI/ARI', () => {
    const c = golden.cases.find((x) => x.name.startsWith('random-3'))!;
    const lab = Int32Array.from(c.labels as number[]);
    expect(nmi(lab, c.truth)).toBeCloseTo(c.nmi, 10);
    expect(nmi(c.truth, lab)).toBeCloseTo(c.nmi, 10);
    expect(ari(c.truth, lab)).toBeCloseTo(c.ari, 10);
  });
});

describe('hungarian()', () => {
  function brute(cost: number[], r: number, c: number): number {
    // exhaustive min over injective maps from the smaller side
    const small = Math.min(r, c);
    const big = Math.max(r, c);
    const at = (i: number, j: number) => (r <= c ? cost[i * c + j]! : cost[j * c + i]!);
    let best = Infinity;
    const used = new Array(big).fill(false);
    const rec = (i: number, acc: number) => {
      if (i === small) { best = Math.min(best, acc); return; }
      for (let j = 0; j < big; j++) if (!used[j]) { used[j] = true; rec(i + 1, acc + at(i, j)); used[j] = false; }
    };
    rec(0, 0);
    return best;
  }
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  for (const [r, c] of [[1, 1], [3, 3], [4, 6], [6, 4], [5, 5], [2, 7], [7, 2], [6, 6]] as const) {
    it(`optimal on random ${r}×${c}`, () => {
      for (let t = 0; t < 20; t++) {
        const cost = Array.from({ length: r * c }, () => Math.round(rnd() * 20) - 5);
        const res = hungarian(cost, r, c);
        expect(res.cost).toBeCloseTo(brute(cost, r, c), 9);
        const assigned = [...res.rowToCol].filter((j) => j >= 0);
        expect(assigned.length).toBe(Math.min(r, c));
        expect(new Set(assigned).size).toBe(assigned.length);
        let sum = 0;
        res.rowToCol.forEach((j, i) => { if (j >= 0) sum += cost[i * c + j]!; });
        expect(sum).toBeCloseTo(res.cost, 9);
      }
    });
  }
  it('rejects a wrong shape', () => {
    expect(() => hungarian([1, 2, 3], 2, 2)).toThrow(KernelError);
  });
});

describe('matchedF1()', () => {
  it('returns the cluster→class matching', () => {
    const r = matchedF1([5, 5, 7, 7, 9], ['b', 'b', 'a', 'a', 'a']);
    expect(r.f1).toBeCloseTo(0.8);
    expect(r.clusterToClass).toEqual(['b', 'a', null]);
  });
});

describe('input checks', () => {
  it('length mismatch → ERR_SHAPE_MISMATCH', () => {
    try { evaluate([0, 1], ['a']); expect.unreachable(); } catch (e) { expect((e as KernelError).code).toBe('ERR_SHAPE_MISMATCH'); }
  });
  it('empty → ERR_EMPTY', () => {
    try { evaluate([], []); expect.unreachable(); } catch (e) { expect((e as KernelError).code).toBe('ERR_EMPTY'); }
  });
});
