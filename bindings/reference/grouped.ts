/**
 * @file Reference grouped nearest-neighbour search (see `GroupedMode` in `bindings/backend.ts`).
 * `dmin[q][g]` = min over rows r of group g of ‖q − r‖ (f64 accumulation, min taken on squared distances, then
 * square-rooted unless `squared`). Reductions over groups are done in f64 and stored as f32.
 * @module bindings/reference/grouped
 */
import type { GroupedMode } from '../backend.js';
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
    reduceRow(out, q, dmin, ng, mode, queryGroups ? queryGroups[q]! : -1);
  }
  return out;
}

/**
 * The symmetric self-join: {@link groupedNNRef} with `queries = base` and each row's query group = the group that
 * contains it, computing each pair of groups once and reducing it both ways (row minima and column minima).
 * Identical results: a squared distance is the same f64 sum whichever row comes first.
 */
export function groupedNNSelfRef(
  base: Float32Array,
  offsets: ArrayLike<number>,
  d: number,
  mode: GroupedMode,
  squared: boolean,
): Float32Array {
  const ng = offsets.length - 1;
  const nq = ng > 0 ? offsets[ng]! : 0;
  const out = new Float32Array(mode === 'per-group' ? nq * ng : nq);
  const sq = new Float64Array(nq * ng).fill(Infinity); // squared dmin, row-major nq × ng
  for (let g = 0; g < ng; g++) {
    // Own group only when the mode reads it.
    for (let h = mode === 'mean-excluding-own' ? g + 1 : g; h < ng; h++) {
      for (let r = offsets[g]!; r < offsets[g + 1]!; r++) {
        for (let s = offsets[h]!; s < offsets[h + 1]!; s++) {
          const v = sqDist(base, r, base, s, d);
          if (v < sq[r * ng + h]!) sq[r * ng + h] = v;
          if (v < sq[s * ng + g]!) sq[s * ng + g] = v;
        }
      }
    }
  }
  const dmin = new Float64Array(ng);
  for (let g = 0; g < ng; g++) {
    for (let q = offsets[g]!; q < offsets[g + 1]!; q++) {
      for (let h = 0; h < ng; h++) dmin[h] = squared ? sq[q * ng + h]! : Math.sqrt(sq[q * ng + h]!);
      reduceRow(out, q, dmin, ng, mode, g);
    }
  }
  return out;
}

/** Writes query `q`'s reduction of `dmin` (length ng) into `out`. */
function reduceRow(out: Float32Array, q: number, dmin: Float64Array, ng: number, mode: GroupedMode, own: number): void {
  if (mode === 'per-group') {
    for (let g = 0; g < ng; g++) out[q * ng + g] = dmin[g]!;
  } else if (mode === 'min') {
    let m = Infinity;
    for (let g = 0; g < ng; g++) if (dmin[g]! < m) m = dmin[g]!;
    out[q] = m;
  } else {
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
