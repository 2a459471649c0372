/**
 * @file When a grouped nearest-neighbour call may run as the symmetric self-join (see `GroupedNNArgs.selfJoin`).
 * Shared by the three backends; `src/kernels.ts` sets the flag, the backends re-check it here.
 * @module bindings/selfjoin
 */
import type { GroupedNNArgs } from './backend.js';

/**
 * Whether `a` is the self-join: `queries` and `base` are the same memory (O(1) check) and, for
 * `'mean-excluding-own'`, every row's query group is the group that contains it (O(nq) check, negligible next to
 * the O(nq²·d) search).
 */
export function isSelfJoin(a: GroupedNNArgs): boolean {
  const { queries: q, base: b } = a;
  if (q.buffer !== b.buffer || q.byteOffset !== b.byteOffset || q.length !== b.length) return false;
  if (a.d <= 0 || a.nq * a.d !== b.length) return false;
  const off = a.groupOffsets;
  if (off.length === 0 || off[0] !== 0 || off[off.length - 1] !== a.nq) return false;
  if (a.mode !== 'mean-excluding-own') return true;
  const qg = a.queryGroups;
  if (qg === undefined || qg === null || qg.length !== a.nq) return false;
  for (let g = 0; g + 1 < off.length; g++) {
    for (let r = off[g]!; r < off[g + 1]!; r++) if (qg[r] !== g) return false;
  }
  return true;
}
