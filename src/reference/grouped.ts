/**
 * @file Reference grouped nearest-neighbour search (see `GroupedMode` in `bindings/backend.ts`).
 * `dmin[q][g]` = min over rows r of group g of ‖q − r‖ (f64 accumulation, min taken on squared distances, then
 * square-rooted unless `squared`). Reductions over groups are done in f64 and stored as f32.
 * @module reference/grouped
 */
import type { GroupedMode } from '../../bindings/backend.js';
import { sqDist } from './distance.js';

/**
 * Grouped nearest-neighbour search, inputs trusted.
 * For `'mean-excluding-own'`, a query whose own group is the only group has no other group to average: its
 * value is 0.
 */
export function groupedNNRef(
  queries: Float32Array,
  nq: number,
  base: Float32Array,
  offsets: ArrayLike<number>,
  d: number,
  mode: GroupedMode,
  queryGroups: ArrayLike<number> | undefined,
  squared: boolean,
): Float32Array {
  const ng = offsets.length - 1;
  const out = new Float32Array(mode === 'per-group' ? nq * ng : nq);
  const dmin = new Float64Array(ng);
  for (let q = 0; q < nq; q++) {
    for (let g = 0; g < ng; g++) {
      let m = Infinity;
      for (let r = offsets[g]!; r < offsets[g + 1]!; r++) {
        const s = sqDist(queries, q, base, r, d);
        if (s < m) m = s;
      }
      dmin[g] = squared ? m : Math.sqrt(m);
    }
    if (mode === 'per-group') {
      for (let g = 0; g < ng; g++) out[q * ng + g] = dmin[g]!;
    } else if (mode === 'min') {
      let m = Infinity;
      for (let g = 0; g < ng; g++) if (dmin[g]! < m) m = dmin[g]!;
      out[q] = m;
    } else {
      const own = queryGroups ? queryGroups[q]! : -1;
      let s = 0;
      let c = 0;
      for (let g = 0; g < ng; g++) {
        if (g === own) continue;
        s += dmin[g]!;
        c++;
      }
      out[q] = c === 0 ? 0 : s / c;
    }
  }
  return out;
}
