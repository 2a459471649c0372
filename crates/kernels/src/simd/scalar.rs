//! Portable kernels: the contract. Every SIMD kernel must agree with these up to float rounding.
//!
//! Written with fixed-size arrays and unit-stride inner loops so that the compiler may still auto-vectorise
//! them for the baseline target (SSE2 on x86-64), but without any explicit intrinsic.
use super::{MR, NR, TILE};

/// Accumulate `MR × NR` dot products over `kc` terms into `t`.
#[inline(always)]
fn accumulate(kc: usize, a: &[f32], lda: usize, b: &[f32], t: &mut [[f32; NR]; MR]) {
    for (k, bk) in b.chunks_exact(NR).take(kc).enumerate() {
        for (i, ti) in t.iter_mut().enumerate() {
            let ai = a[i * lda + k];
            for (tij, &bkj) in ti.iter_mut().zip(bk) {
                *tij += ai * bkj;
            }
        }
    }
}

#[inline(always)]
fn load(c: &[f32; TILE], acc: bool) -> [[f32; NR]; MR] {
    let mut t = [[0.0f32; NR]; MR];
    if acc {
        for (ti, ci) in t.iter_mut().zip(c.chunks_exact(NR)) {
            ti.copy_from_slice(ci);
        }
    }
    t
}

/// Scalar [`super::TileDotFn`]. `unsafe` only to share the function-pointer type; it is safe for any input.
pub(super) unsafe fn tile_dot(kc: usize, a: &[f32], lda: usize, b: &[f32], c: &mut [f32; TILE], acc: bool) {
    let mut t = load(c, acc);
    accumulate(kc, a, lda, b, &mut t);
    for (ci, ti) in c.chunks_exact_mut(NR).zip(&t) {
        ci.copy_from_slice(ti);
    }
}

/// Scalar [`super::TileMinFn`]. `unsafe` only to share the function-pointer type; it is safe for any input.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile_min(
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &[f32; TILE],
    acc: bool,
    an: &[f32; MR],
    runmin: &mut [f32; NR],
) {
    let mut t = load(c, acc);
    accumulate(kc, a, lda, b, &mut t);
    for (ti, &ani) in t.iter().zip(an) {
        for (m, &tij) in runmin.iter_mut().zip(ti) {
            // `f32::min` would let a NaN lose; this form matches `_mm256_min_ps(v, m)` lane by lane.
            let v = ani - 2.0 * tij;
            *m = if v < *m { v } else { *m };
        }
    }
}

/// Scalar [`super::TileMinBothFn`]. `unsafe` only to share the function-pointer type; it is safe for any input.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn tile_min_both(
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &[f32; TILE],
    acc: bool,
    an: &[f32; MR],
    runmin: &mut [f32; NR],
    ln: &[f32; NR],
    colmin: &mut [f32; MR],
) {
    let mut t = load(c, acc);
    accumulate(kc, a, lda, b, &mut t);
    for ((ti, &ani), cm) in t.iter().zip(an).zip(colmin.iter_mut()) {
        for ((m, &tij), &lnj) in runmin.iter_mut().zip(ti).zip(ln) {
            let v = ani - 2.0 * tij;
            *m = if v < *m { v } else { *m };
            // The same expression with the roles swapped: bit-identical to what the general kernel computes
            // for this lane's row as a base row.
            let w = lnj - 2.0 * tij;
            *cm = if w < *cm { w } else { *cm };
        }
    }
}

/// Scalar [`super::PairFn`]: `Σ (x−y)²`.
pub(super) unsafe fn l2sq(x: &[f32], y: &[f32]) -> f32 {
    let mut s = [0.0f32; 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let (xr, yr) = (xc.remainder(), yc.remainder());
    for (xs, ys) in xc.zip(yc) {
        for l in 0..8 {
            let t = xs[l] - ys[l];
            s[l] += t * t;
        }
    }
    let mut tail = 0.0f32;
    for (a, b) in xr.iter().zip(yr) {
        let t = a - b;
        tail += t * t;
    }
    s.iter().sum::<f32>() + tail
}
