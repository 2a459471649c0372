/**
 * @file Whitening of the patch features before the nearest-patch search (the weighted modes).
 *
 * The set's patch covariance `C` (estimated on up to {@link WHITEN_SAMPLE} patches spread evenly over the bank) is
 * shrunk towards a multiple of the identity, `C_α = C + α·(tr C / d)·I`, factored `C_α = L·Lᵀ`, and every patch
 * `x` becomes `L⁻¹x`. Euclidean distances between whitened patches are the Mahalanobis distances
 * `√((x−y)ᵀ C_α⁻¹ (x−y))`: directions in which patches vary a lot everywhere (texture, lighting, the tile's grain)
 * count less, rare directions (a defect) count more, so a patch is scored by how unusual its difference from its
 * nearest neighbour is, not by its size. The weighted average of whitened patches is `L⁻¹` times the average of
 * the raw ones, and the embeddings are compared in the whitened space as well. `α` (the shrinkage) keeps `C_α`
 * well conditioned when the patches span few directions; `α → ∞` is no whitening (up to a common scale).
 *
 * Measured with `benches/evaluate.mjs --whiten …` on MVTec bottle and MTD over 3 projection seeds (README
 * "Quality"). The map itself is the `linearMap` kernel (`n·m·d²` multiply-adds).
 * @module pipeline/whiten
 */
import type { KernelBackend } from '../../bindings/backend.js';
import { KernelError } from '../errors.js';
import { bagStore, withBags } from './bank-store.js';
import type { FeatureBank } from './types.js';
import { throwIfAborted } from './context.js';

/** Default shrinkage α of the patch whitening (see the module docs); `false` switches it off. */
export const DEFAULT_WHITEN = 1;
/** Patches the covariance is estimated on, at most (evenly spaced over the bank; deterministic). */
export const WHITEN_SAMPLE = 65536;

/** A fitted whitening: `x ↦ matrix · x`. */
export interface Whitening {
  /** Dimension of the patches. */
  d: number;
  /** `L⁻¹`, `d × d` row-major, lower triangular. */
  matrix: Float32Array;
  /** The shrinkage α it was fitted with. */
  shrinkage: number;
  /** Patches the covariance was estimated on. */
  sampled: number;
}

/**
 * Checks a `whiten` option value: `false`, or a finite shrinkage α > 0.
 * @throws {RangeError} otherwise
 */
export function checkWhiten(whiten: unknown): number | false {
  if (whiten === false) return false;
  if (typeof whiten !== 'number' || !Number.isFinite(whiten) || !(whiten > 0)) {
    throw new RangeError(`whiten: expected a shrinkage > 0 (e.g. ${DEFAULT_WHITEN}) or false, got ${String(whiten)}`);
  }
  return whiten;
}

/**
 * Fits the whitening of `bank`'s patches (see the module docs).
 * @param shrinkage α > 0
 * @returns (a promise of) the whitening, or `null` when the sampled patches are all identical (nothing to whiten)
 * @throws {RangeError} for a bad shrinkage; {@link KernelError} from the kernel or a streamed bank's reads
 */
export async function fitWhitening(bank: FeatureBank, shrinkage: number, be: KernelBackend): Promise<Whitening | null> {
  checkWhiten(shrinkage);
  const { n, m, d } = bank;
  const total = n * m;
  const step = Math.max(1, Math.floor(total / WHITEN_SAMPLE));
  const s = Math.min(WHITEN_SAMPLE, Math.ceil(total / step));
  // the sample, transposed (d × s), centred on its mean: C·s = Xcᵀ·Xc = linearMap(Xcᵀ, d, s, Xcᵀ, d)
  const xt = new Float32Array(d * s);
  const mean = new Float64Array(d);
  let col = 0;
  bagStore(bank).forChunks((rows, i0, i1) => {
    // global row r = i0·m + local; sampled rows are multiples of step
    const first = Math.ceil((i0 * m) / step) * step;
    for (let r = first; r < i1 * m && col < s; r += step, col++) {
      const o = (r - i0 * m) * d;
      for (let k = 0; k < d; k++) {
        const v = rows[o + k]!;
        xt[k * s + col] = v;
        mean[k]! += v;
      }
    }
  });
  for (let k = 0; k < d; k++) {
    const mu = mean[k]! / s;
    for (let c = 0; c < s; c++) xt[k * s + c]! -= mu;
  }
  const g = await be.linearMapAsync(xt, d, s, xt, d); // d × d, Σ over the sample of centred outer products
  const cov = new Float64Array(d * d);
  let trace = 0;
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) cov[a * d + b] = (g[a * d + b]! + g[b * d + a]!) / (2 * s); // symmetrised
    trace += cov[a * d + a]!;
  }
  if (!(trace > 0)) return null;
  const ridge = (shrinkage * trace) / d;
  for (let a = 0; a < d; a++) cov[a * d + a]! += ridge;
  // Cholesky C = L·Lᵀ (f64), then L⁻¹ by forward substitution
  const L = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j <= i; j++) {
      let v = cov[i * d + j]!;
      for (let k = 0; k < j; k++) v -= L[i * d + k]! * L[j * d + k]!;
      if (i === j) {
        if (!(v > 0)) throw new KernelError('ERR_INTERNAL', `whitening: covariance not positive definite at ${i} (pivot ${v})`);
        L[i * d + i] = Math.sqrt(v);
      } else {
        L[i * d + j] = v / L[j * d + j]!;
      }
    }
  }
  const inv = new Float32Array(d * d);
  const col64 = new Float64Array(d);
  for (let c = 0; c < d; c++) {
    for (let i = c; i < d; i++) {
      let v = i === c ? 1 : 0;
      for (let k = c; k < i; k++) v -= L[i * d + k]! * col64[k]!;
      col64[i] = v / L[i * d + i]!;
      inv[i * d + c] = col64[i]!;
    }
  }
  return { d, matrix: inv, shrinkage, sampled: s };
}

/**
 * `bank` with every patch mapped by `w`. An in-memory bank gets a new data array, or its own overwritten when
 * `inPlace` (the caller then must not use the raw patches again); a streamed bank gets a new spill file on disk
 * (its `store` must be closed by the caller; the original's files, e.g. feature-cache entries, are never touched).
 * `pooled` and the other fields are kept as they are (`BankStore.mapChunks`, one chunk of `streamChunk` images at a time).
 * @throws {KernelError} `ERR_SHAPE_MISMATCH` when `w.d !== bank.d`; `ERR_ABORTED`; `ERR_IO` from streamed reads/writes
 */
export async function whitenBank(bank: FeatureBank, w: Whitening, be: KernelBackend,
  opts: { inPlace?: boolean; signal?: AbortSignal; spillDir?: string } = {}): Promise<FeatureBank> {
  const { m, d } = bank;
  if (w.d !== d) throw new KernelError('ERR_SHAPE_MISMATCH', `whitening of d=${w.d} for a bank of d=${d}`);
  const store = await bagStore(bank).mapChunks((rows, i0, i1) => be.linearMapAsync(rows, (i1 - i0) * m, d, w.matrix, d), {
    inPlace: opts.inPlace, spillDir: opts.spillDir, beforeChunk: () => throwIfAborted(opts.signal, 'weights (whitening)'),
  });
  return withBags(bank, store);
}
