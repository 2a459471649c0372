//! The blocked GEMM driver shared by `pdist`, `cdist` and the grouped nearest-neighbour search.
//!
//! Both operands are rows of length `d`. One *block* pairs a set of "lane" rows (queries, packed once per block
//! into `NR`-wide panels `[k][NR]` for the whole `d`) with consecutive "row" rows (base rows, copied per
//! `KC`-slice into a small contiguous buffer). For each `KC` slice, every (panel, 6-row tile) pair runs the
//! micro-kernel; partial sums live in a tile-contiguous scratch buffer between slices, and the last slice hands
//! the finished tile to a caller-provided epilogue (store distances, or fuse a running minimum). Loop order
//! (BLIS): slice → panel (16 × `KC` floats, stays in L1) → tile (6 rows, streamed from the L2-resident copy).
//!
//! Both operands are **centred** on a common vector `mu` while they are packed/copied (free: the copy happens
//! anyway). Distances are translation invariant, and the rounding error of `‖a‖² + ‖b‖² − 2·a·b` is
//! proportional to the norms, so centring removes the error caused by a large common offset (non-negative CNN
//! features have one).
use super::{Kernels, MR, NR, TILE};

/// Depth of one `k` slice: the packed 16-lane panel slice is `KC × 16 × 4` bytes = 16 KiB, half of L1d.
pub(crate) const KC: usize = 256;
/// Rows (base side) per copied chunk: `MC × KC × 4` bytes = 144 KiB, the L2-resident operand.
pub(crate) const MC: usize = 144;
/// Default lanes (query side) per block: 16 panels, so the scratch tile buffer is `MC × QB × 4` = 144 KiB.
pub(crate) const QB: usize = 256;

/// Per-thread scratch buffers, reused across the chunks of one block.
#[derive(Default)]
pub(crate) struct Scratch {
    a: Vec<f32>,
    c: Vec<f32>,
}

/// Mean row of `x` (`n × d`, `n > 0`), accumulated in f64.
pub(crate) fn mean_row(x: &[f32], d: usize) -> Vec<f32> {
    let mut acc = vec![0.0f64; d];
    let mut n = 0usize;
    for row in x.chunks_exact(d) {
        for (a, &v) in acc.iter_mut().zip(row) {
            *a += v as f64;
        }
        n += 1;
    }
    let inv = if n > 0 { 1.0 / n as f64 } else { 0.0 };
    acc.iter().map(|&a| (a * inv) as f32).collect()
}

/// `‖row − mu‖²` of every row of `x`, into `out`.
pub(crate) fn centred_norms(kern: &Kernels, x: &[f32], d: usize, mu: &[f32], out: &mut [f32]) {
    for (o, row) in out.iter_mut().zip(x.chunks_exact(d)) {
        *o = kern.l2sq(row, mu);
    }
}

/// Rows `rows` of `x` (`· × d`), centred on `mu`, packed lane-interleaved: panel `p` holds rows
/// `16p .. 16p+16` as `[k][16]` for `k < d`, padded with zero rows. Returns the number of panels.
pub(crate) fn pack_panels(x: &[f32], d: usize, rows: std::ops::Range<usize>, mu: &[f32], out: &mut Vec<f32>) -> usize {
    let m = rows.len();
    let np = m.div_ceil(NR);
    out.clear();
    out.resize(np * d * NR, 0.0);
    for (p, panel) in out.chunks_exact_mut(d * NR).enumerate() {
        for lane in 0..NR {
            let r = p * NR + lane;
            if r >= m {
                break;
            }
            let src = &x[(rows.start + r) * d..][..d];
            for ((dst, &v), &c) in panel[lane..].iter_mut().step_by(NR).zip(src).zip(mu) {
                *dst = v - c;
            }
        }
    }
    np
}

/// One finished micro-tile handed to the epilogue on the last `k` slice. The epilogue must run the last
/// micro-kernel itself (`tile_dot` or `tile_min` on `kc, a, lda, b, c, acc`), so a fused min never stores.
pub(crate) struct Tile<'s> {
    /// Depth of the last slice.
    pub kc: usize,
    /// The tile's 6 rows of the slice (row stride `lda`).
    pub a: &'s [f32],
    /// Row stride of `a`.
    pub lda: usize,
    /// The panel's slice, `[k][NR]`.
    pub b: &'s [f32],
    /// Partial sums of the previous slices (valid when `acc`); `tile_dot` leaves the final sums here.
    pub c: &'s mut [f32; TILE],
    /// Whether `c` holds partial sums (false when `d <= KC`).
    pub acc: bool,
    /// Index (in the row operand) of the tile's first row.
    pub row0: usize,
    /// Valid rows in this tile (1..=6); the others duplicate the chunk's last row.
    pub rows: usize,
    /// Panel index within the block (lanes `16·panel ..`).
    pub panel: usize,
}

/// Multiply rows `r0..r1` of `x` (`· × d`, centred on `mu`) by the `np` packed panels, running `fin` on each
/// finished tile. Tiles beyond `r1` are padded with copies of row `r1 − 1` (harmless for a min, ignored by a
/// store since `Tile::rows` says how many are valid).
#[allow(clippy::too_many_arguments)]
pub(crate) fn chunk_pass<F: FnMut(&Kernels, Tile<'_>)>(
    kern: &Kernels,
    x: &[f32],
    d: usize,
    r0: usize,
    r1: usize,
    mu: &[f32],
    packed: &[f32],
    np: usize,
    s: &mut Scratch,
    mut fin: F,
) {
    let m = r1 - r0;
    if m == 0 || np == 0 {
        return;
    }
    let mt = m.div_ceil(MR);
    let kslices = d.div_ceil(KC);
    if kslices > 1 {
        s.c.resize(np * mt * TILE, 0.0);
    }
    let mut one = [0.0f32; TILE];
    let mut pc = 0;
    while pc < d {
        let kc = KC.min(d - pc);
        let last = pc + kc == d;
        s.a.resize(mt * MR * kc, 0.0);
        for (r, dst) in s.a.chunks_exact_mut(kc).enumerate() {
            let src = &x[(r0 + r.min(m - 1)) * d + pc..][..kc];
            for ((o, &v), &c) in dst.iter_mut().zip(src).zip(&mu[pc..pc + kc]) {
                *o = v - c;
            }
        }
        for p in 0..np {
            let b = &packed[p * d * NR + pc * NR..][..kc * NR];
            for t in 0..mt {
                let a = &s.a[t * MR * kc..][..MR * kc];
                let c: &mut [f32; TILE] = if kslices > 1 {
                    &mut s.c.as_chunks_mut::<TILE>().0[p * mt + t]
                } else {
                    &mut one
                };
                if last {
                    let rows = MR.min(m - t * MR);
                    fin(
                        kern,
                        Tile {
                            kc,
                            a,
                            lda: kc,
                            b,
                            c,
                            acc: pc > 0,
                            row0: r0 + t * MR,
                            rows,
                            panel: p,
                        },
                    );
                } else {
                    kern.tile_dot(kc, a, kc, b, c, pc > 0);
                }
            }
        }
        pc += kc;
    }
}
