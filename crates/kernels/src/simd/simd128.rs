//! WebAssembly SIMD (`simd128`) kernels, compiled in only when the target enables `simd128` (the choice is
//! made at compile time: a wasm module cannot probe features at run time).
//!
//! wasm has no FMA in base `simd128` and engines map `v128` onto 16 `xmm` registers, so the 6 × 16 tile is
//! computed as two 6 × 8 halves (12 accumulators each) rather than all 24 vectors at once.
use super::{MR, NR, TILE};
use core::arch::wasm32::*;

/// One 6 × 8 half-tile (`h` = 0 or 1 selects lanes `8h .. 8h+8`).
///
/// # Safety
/// `lda >= kc`, `a.len() >= 5*lda + kc`, `b.len() >= 16*kc`.
#[inline(always)]
unsafe fn half(kc: usize, a: &[f32], lda: usize, b: &[f32], h: usize, init: [[v128; 2]; MR]) -> [[v128; 2]; MR] {
    let mut r = init;
    let pa = a.as_ptr();
    let pb = b.as_ptr().add(8 * h);
    for k in 0..kc {
        // SAFETY: `NR*k + 8h + 8 <= 16*kc <= b.len()`; `i*lda + k < 5*lda + kc <= a.len()`.
        let b0 = v128_load(pb.add(NR * k) as *const v128);
        let b1 = v128_load(pb.add(NR * k + 4) as *const v128);
        for (i, ri) in r.iter_mut().enumerate() {
            let x = f32x4_splat(*pa.add(i * lda + k));
            ri[0] = f32x4_add(ri[0], f32x4_mul(x, b0));
            ri[1] = f32x4_add(ri[1], f32x4_mul(x, b1));
        }
    }
    r
}

#[inline(always)]
fn init(c: &[f32; TILE], acc: bool, h: usize) -> [[v128; 2]; MR] {
    let mut r = [[f32x4_splat(0.0); 2]; MR];
    if acc {
        for (i, ri) in r.iter_mut().enumerate() {
            let o = i * NR + 8 * h;
            ri[0] = f32x4(c[o], c[o + 1], c[o + 2], c[o + 3]);
            ri[1] = f32x4(c[o + 4], c[o + 5], c[o + 6], c[o + 7]);
        }
    }
    r
}

/// simd128 [`super::TileDotFn`].
///
/// # Safety
/// The length contract of [`super::Kernels::tile_dot`] must hold.
pub(super) unsafe fn tile_dot(kc: usize, a: &[f32], lda: usize, b: &[f32], c: &mut [f32; TILE], acc: bool) {
    for h in 0..2 {
        let r = half(kc, a, lda, b, h, init(c, acc, h));
        for (i, ri) in r.iter().enumerate() {
            // SAFETY: `i*NR + 8h + 8 <= TILE`.
            let p = c.as_mut_ptr().add(i * NR + 8 * h);
            v128_store(p as *mut v128, ri[0]);
            v128_store(p.add(4) as *mut v128, ri[1]);
        }
    }
}

/// simd128 [`super::TileMinFn`].
///
/// # Safety
/// The length contract of [`super::Kernels::tile_dot`] must hold.
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
    let m2 = f32x4_splat(-2.0);
    for h in 0..2 {
        let r = half(kc, a, lda, b, h, init(c, acc, h));
        // SAFETY: `8h + 8 <= NR`.
        let p = runmin.as_mut_ptr().add(8 * h);
        let mut m0 = v128_load(p as *const v128);
        let mut m1 = v128_load(p.add(4) as *const v128);
        for (ri, &ani) in r.iter().zip(an) {
            let n = f32x4_splat(ani);
            let v0 = f32x4_add(n, f32x4_mul(ri[0], m2));
            let v1 = f32x4_add(n, f32x4_mul(ri[1], m2));
            // pmin(m, v) = v < m ? v : m, the same NaN behaviour as the scalar kernel.
            m0 = f32x4_pmin(m0, v0);
            m1 = f32x4_pmin(m1, v1);
        }
        v128_store(p as *mut v128, m0);
        v128_store(p.add(4) as *mut v128, m1);
    }
}

/// simd128 [`super::TileMinBothFn`].
///
/// # Safety
/// The length contract of [`super::Kernels::tile_dot`] must hold.
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
    let m2 = f32x4_splat(-2.0);
    for h in 0..2 {
        let r = half(kc, a, lda, b, h, init(c, acc, h));
        // SAFETY: `8h + 8 <= NR`.
        let p = runmin.as_mut_ptr().add(8 * h);
        let lp = ln.as_ptr().add(8 * h);
        let mut m0 = v128_load(p as *const v128);
        let mut m1 = v128_load(p.add(4) as *const v128);
        let l0 = v128_load(lp as *const v128);
        let l1 = v128_load(lp.add(4) as *const v128);
        for ((ri, &ani), cm) in r.iter().zip(an).zip(colmin.iter_mut()) {
            let n = f32x4_splat(ani);
            m0 = f32x4_pmin(m0, f32x4_add(n, f32x4_mul(ri[0], m2)));
            m1 = f32x4_pmin(m1, f32x4_add(n, f32x4_mul(ri[1], m2)));
            let w = f32x4_pmin(f32x4_add(l0, f32x4_mul(ri[0], m2)), f32x4_add(l1, f32x4_mul(ri[1], m2)));
            let w = f32x4_pmin(w, i32x4_shuffle::<2, 3, 0, 1>(w, w));
            let w = f32x4_pmin(w, i32x4_shuffle::<1, 0, 3, 2>(w, w));
            let v = f32x4_extract_lane::<0>(w);
            *cm = if v < *cm { v } else { *cm };
        }
        v128_store(p as *mut v128, m0);
        v128_store(p.add(4) as *mut v128, m1);
    }
}

/// simd128 [`super::PairFn`]: `Σ (x−y)²`.
///
/// # Safety
/// None beyond the signature (kept `unsafe` to share the function-pointer type).
pub(super) unsafe fn l2sq(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let mut s0 = f32x4_splat(0.0);
    let mut s1 = f32x4_splat(0.0);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: `i + 8 <= n`.
        let (px, py) = (x.as_ptr().add(i), y.as_ptr().add(i));
        let d0 = f32x4_sub(v128_load(px as *const v128), v128_load(py as *const v128));
        let d1 = f32x4_sub(v128_load(px.add(4) as *const v128), v128_load(py.add(4) as *const v128));
        s0 = f32x4_add(s0, f32x4_mul(d0, d0));
        s1 = f32x4_add(s1, f32x4_mul(d1, d1));
        i += 8;
    }
    let s = f32x4_add(s0, s1);
    let mut t = f32x4_extract_lane::<0>(s)
        + f32x4_extract_lane::<1>(s)
        + f32x4_extract_lane::<2>(s)
        + f32x4_extract_lane::<3>(s);
    for j in i..n {
        let d = x[j] - y[j];
        t += d * d;
    }
    t
}
