/**
 * @file Method presets: which weighting(s), temperature, whitening and embedding normalisation a run uses.
 *
 * - `'default'` is what the dev-set protocol (benches/evaluate.mjs, docs/quality.md) selected: a consensus of six
 *   configurations (max pooling and unsupervised weights, with and without whitening and embedding normalisation),
 *   each strong on a different kind of image set, so that no set type is left behind: mean NMI 0.507 over the six
 *   dev sets against 0.488 for the paper and 0.504 for the best single configuration, and within 0.02 of the paper
 *   on every set.
 * - `'paper'` is the method as published (Sohn et al.): unsupervised patch weights from plain Euclidean nearest-patch
 *   distances, softmax at τ = 0.5 × each image's score spread, Ward on the weighted means as they are.
 *
 * Giving `weighting`, `tau`, `whiten` or `embeddingNorm` explicitly runs one configuration: the preset's own when
 * it has one member (`'paper'`), else {@link SINGLE_DEFAULTS}, with the given fields replaced.
 * @module pipeline/presets
 */
import type { EmbeddingNorm } from './embedding-norm.js';
import type { Tau, Weighting } from './weighting.js';

/** One way of turning patch bags into image embeddings (one clustering). */
export interface MethodConfig {
  weighting: Weighting;
  /** Softmax temperature (ignored by 'uniform' and 'max'). */
  tau: Tau;
  /** Patch whitening shrinkage, or false (ignored by 'uniform' and 'max'). */
  whiten: number | false;
  embeddingNorm: EmbeddingNorm;
}

/** Names of the presets. */
export type PresetName = 'default' | 'paper';
/** Runtime list of {@link PresetName}s. */
export const PRESET_NAMES = ['default', 'paper'] as const;

/** A preset: one configuration, or several whose clusterings are combined by consensus (`consensus.ts`). */
export interface Preset {
  members: readonly MethodConfig[];
  /**
   * For a consensus: each member's tree is cut at K and at the K's within `kSpread` of it (co-association over all
   * those cuts). @default 0
   */
  kSpread?: number;
}

/** The published method. */
export const PAPER_METHOD: MethodConfig = { weighting: 'unsupervised', tau: { relative: 0.5 }, whiten: false, embeddingNorm: 'none' };

/**
 * Field defaults of a single explicitly chosen configuration (e.g. `weighting: 'max'` alone): the paper's, which
 * the protocol found the safest single choice across set types (docs/quality.md).
 */
export const SINGLE_DEFAULTS: MethodConfig = PAPER_METHOD;

/** The presets. */
export const PRESETS: Record<PresetName, Preset> = {
  default: {
    // max pooling and the unsupervised weights (τ 0.5σ) with and without the patch whitening, each with the
    // embeddings as they are and l2-center-l2; every tree cut at K−1, K and K+1 (docs/quality.md)
    members: [
      { weighting: 'max', tau: { relative: 0.5 }, whiten: false, embeddingNorm: 'none' },
      { weighting: 'max', tau: { relative: 0.5 }, whiten: false, embeddingNorm: 'l2-center-l2' },
      PAPER_METHOD,
      { ...PAPER_METHOD, embeddingNorm: 'l2-center-l2' },
      { ...PAPER_METHOD, whiten: 1 },
      { ...PAPER_METHOD, whiten: 1, embeddingNorm: 'l2-center-l2' },
    ],
    kSpread: 1,
  },
  paper: { members: [PAPER_METHOD] },
};

/** The effective method of a run. */
export interface ResolvedMethod {
  /** The preset the run started from (`'custom'` when fields were given explicitly). */
  preset: PresetName | 'custom';
  members: MethodConfig[];
  /** For a consensus (several members): the K spread of the cuts. */
  kSpread: number;
}

/**
 * The configuration(s) a run uses (see the module doc).
 * @throws {RangeError} for an unknown preset
 */
export function resolveMethod(options: { preset?: PresetName; weighting?: Weighting; tau?: Tau; whiten?: number | false; embeddingNorm?: EmbeddingNorm }): ResolvedMethod {
  const name = options.preset ?? 'default';
  if (!(PRESET_NAMES as readonly string[]).includes(name)) throw new RangeError(`preset: expected one of ${PRESET_NAMES.join(', ')}, got ${JSON.stringify(name)}`);
  const preset = PRESETS[name];
  const { weighting, tau, whiten, embeddingNorm } = options;
  const given = { ...(weighting !== undefined ? { weighting } : {}), ...(tau !== undefined ? { tau } : {}), ...(whiten !== undefined ? { whiten } : {}), ...(embeddingNorm !== undefined ? { embeddingNorm } : {}) };
  if (Object.keys(given).length === 0) return { preset: name, members: preset.members.map((m) => ({ ...m })), kSpread: preset.kSpread ?? 0 };
  const base = preset.members.length === 1 ? preset.members[0]! : SINGLE_DEFAULTS;
  return { preset: 'custom', members: [{ ...base, ...given }], kSpread: 0 };
}

/** A short label of a configuration, e.g. `unsupervised τ0.5σ whiten 1 l2-center-l2`. */
export function describeMethod(m: MethodConfig): string {
  if (m.weighting === 'uniform' || m.weighting === 'max') return `${m.weighting}${m.embeddingNorm !== 'none' ? ` ${m.embeddingNorm}` : ''}`;
  const tau = typeof m.tau === 'number' ? `τ${m.tau}` : `τ${m.tau.relative}σ${m.tau.spread === 'set' ? '(set)' : ''}`;
  return `${m.weighting} ${tau}${m.whiten === false ? '' : ` whiten ${m.whiten}`}${m.embeddingNorm !== 'none' ? ` ${m.embeddingNorm}` : ''}`;
}
