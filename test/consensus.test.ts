/**
 * Consensus clustering (pipeline/consensus.ts) and method presets (pipeline/presets.ts).
 */
import { describe, expect, it } from 'vitest';
import { getBackend } from '../bindings/select.js';
import { coAssociationDistances, consensusClusters } from '../src/pipeline/consensus.js';
import { PAPER_METHOD, PRESETS, resolveMethod, SINGLE_DEFAULTS, describeMethod } from '../src/pipeline/presets.js';
import { evaluate } from '../src/pipeline/metrics.js';

const L = (...x: number[]) => Int32Array.from(x);

describe('coAssociationDistances', () => {
  it('is the share of partitions that separate each pair, in condensed order', () => {
    const y = coAssociationDistances([L(0, 0, 1), L(0, 1, 1)], 3);
    // pairs (0,1) (0,2) (1,2): separated by 1 of 2, 2 of 2, 1 of 2
    expect([...y]).toEqual([0.5, 1, 0.5]);
    expect([...coAssociationDistances([L(3, 3, 3)], 3)]).toEqual([0, 0, 0]);
  });

  it('rejects no partitions or a partition of the wrong length', () => {
    expect(() => coAssociationDistances([], 3)).toThrow(expect.objectContaining({ code: 'ERR_EMPTY' }));
    expect(() => coAssociationDistances([L(0, 1)], 3)).toThrow(expect.objectContaining({ code: 'ERR_SHAPE_MISMATCH' }));
  });
});

describe('consensusClusters', () => {
  const be = getBackend();
  it('recovers the majority partition when most members agree, and is deterministic', async () => {
    const truth = L(0, 0, 0, 1, 1, 1, 2, 2, 2);
    const noisy1 = L(0, 0, 1, 1, 1, 1, 2, 2, 2); // image 2 misplaced
    const noisy2 = L(0, 0, 0, 1, 1, 2, 2, 2, 2); // image 5 misplaced
    const parts = [truth, noisy1, noisy2, truth];
    const a = await consensusClusters(parts, 9, 3, be);
    expect(evaluate(a.labels, [...truth].map(String)).nmi).toBeCloseTo(1, 10);
    expect(a.Z.length).toBe(8 * 4);
    const b = await consensusClusters(parts, 9, 3, be);
    expect([...b.labels]).toEqual([...a.labels]);
    expect([...b.Z]).toEqual([...a.Z]);
    // one point alone
    expect([...(await consensusClusters([L(0)], 1, 1, be)).labels]).toEqual([0]);
  });
});

describe('resolveMethod', () => {
  it('the default preset runs its members; the paper preset runs the published method', () => {
    const d = resolveMethod({});
    expect(d.preset).toBe('default');
    expect(d.members).toEqual(PRESETS.default.members);
    expect(resolveMethod({ preset: 'paper' })).toEqual({ preset: 'paper', members: [PAPER_METHOD], kSpread: 0 });
    expect(PAPER_METHOD).toEqual({ weighting: 'unsupervised', tau: { relative: 0.5 }, whiten: false, embeddingNorm: 'none' });
  });

  it('explicit fields make a single configuration (the preset’s own, else the single defaults)', () => {
    expect(resolveMethod({ weighting: 'max' })).toEqual({ preset: 'custom', members: [{ ...SINGLE_DEFAULTS, weighting: 'max' }], kSpread: 0 });
    expect(resolveMethod({ preset: 'paper', whiten: 1 }).members).toEqual([{ ...PAPER_METHOD, whiten: 1 }]);
    expect(() => resolveMethod({ preset: 'best' as never })).toThrow(RangeError);
    expect(describeMethod(PAPER_METHOD)).toBe('unsupervised τ0.5σ');
    expect(describeMethod({ ...PAPER_METHOD, whiten: 1, embeddingNorm: 'l2-center-l2' })).toBe('unsupervised τ0.5σ whiten 1 l2-center-l2');
  });
});
