/**
 * @file Lance–Williams distance updates, one function per method, written with **exactly** the operation order
 * of SciPy's `_hierarchy_distance_update.pxi` so that f64 results are bit-identical to SciPy's. Sizes are
 * integers (exact in f64), so integer sub-expressions such as `sx * sy` give the same value as in C.
 *
 * Each update returns d(i, x∪y) from d(x,i) = `dxi`, d(y,i) = `dyi`, d(x,y) = `dxy` and the cluster sizes.
 * ```text
 * single    min(dxi, dyi)
 * complete  max(dxi, dyi)
 * average   (sx·dxi + sy·dyi) / (sx+sy)
 * weighted  (dxi + dyi) / 2
 * centroid  sqrt(((sx·dxi² + sy·dyi²) − sx·sy·dxy²/(sx+sy)) / (sx+sy))
 * median    sqrt(dxi²/2 + dyi²/2 − dxy²/4)
 * ward      sqrt(((si+sx)·dxi² + (si+sy)·dyi² − si·dxy²) / (sx+sy+si))
 * ```
 * @module bindings/reference/linkage/methods
 */
import { KernelError } from '../../errors.js';
import type { LinkageMethod } from '../../backend.js';

/** A Lance–Williams update. */
export type DistanceUpdate = (dxi: number, dyi: number, dxy: number, sx: number, sy: number, si: number) => number;

const single: DistanceUpdate = (dxi, dyi) => (dyi < dxi ? dyi : dxi);
const complete: DistanceUpdate = (dxi, dyi) => (dyi > dxi ? dyi : dxi);
const average: DistanceUpdate = (dxi, dyi, _dxy, sx, sy) => (sx * dxi + sy * dyi) / (sx + sy);
const weighted: DistanceUpdate = (dxi, dyi) => 0.5 * (dxi + dyi);
const centroid: DistanceUpdate = (dxi, dyi, dxy, sx, sy) =>
  Math.sqrt((sx * dxi * dxi + sy * dyi * dyi - (sx * sy * dxy * dxy) / (sx + sy)) / (sx + sy));
const median: DistanceUpdate = (dxi, dyi, dxy) => Math.sqrt(0.5 * (dxi * dxi + dyi * dyi) - 0.25 * dxy * dxy);
const ward: DistanceUpdate = (dxi, dyi, dxy, sx, sy, si) => {
  const t = 1.0 / (sx + sy + si);
  return Math.sqrt((si + sx) * t * dxi * dxi + (si + sy) * t * dyi * dyi - si * t * dxy * dxy);
};

/** The update rule of each method. */
export const UPDATES: Record<LinkageMethod, DistanceUpdate> = {
  single,
  complete,
  average,
  weighted,
  ward,
  centroid,
  median,
};

/**
 * The error of a linkage that met NaN/±∞ intermediate distances and has no valid pair to merge at step `step`
 * (0-based) — the same code and message as the Rust kernels (`linkage::degenerate`), so that every backend throws
 * where one does (never a Z with ∞/NaN heights).
 */
export function degenerateLinkage(method: string, step: number): KernelError {
  return new KernelError('ERR_INVALID_ARGUMENT', `linkage (${method}): no finite pair of clusters to merge at step ${step}; intermediate distances became ` +
    'NaN or infinite (negative or non-Euclidean distances with ward/centroid/median, or overflow)');
}
