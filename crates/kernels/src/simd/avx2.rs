//! AVX2 + FMA kernels (x86-64). Selected only when the CPU reports both features (see [`super::detected`]).
//!
//! The micro-kernel keeps a 6 × 16 tile in 12 `ymm` accumulators; per step `k` it loads two `ymm` of the packed
//! `b` panel and broadcasts one scalar of each of the 6 `a` rows: 12 FMAs for 8 loads, which keeps both FMA
//! pipes of a Zen 3 / Skylake core busy while the `b` panel (`kc × 16` floats, 16 KiB at `kc = 256`) sits in L1.
use super::{MR, NR, TILE};
use std::arch::x86_64::*;

/// 12 accumulators: `r[i][h]` holds row `i`, lanes `8h .. 8h+8`.
type Acc = [[__m256; 2]; MR];

/// The shared inner loop. Callers guarantee (see [`super::Kernels::tile_dot`]) `lda >= kc`,
/// `a.len() >= 5*lda + kc`, `b.len() >= 16*kc`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn accumulate(kc: usize, a: *const f32, lda: usize, b: *const f32, mut r: Acc) -> Acc {
    // SAFETY (whole body): every pointer below stays inside `a[.. 5*lda + kc]` / `b[.. 16*kc]`, as the caller
    // guarantees; all loads are unaligned loads or scalar broadcasts, so no alignment requirement.
    let mut rows = [
        a,
        a.add(lda),
        a.add(2 * lda),
        a.add(3 * lda),
        a.add(4 * lda),
        a.add(5 * lda),
    ];
    let mut bp = b;
    // `rows`, `bp` and `r` are declared before the macro so that its (hygienic) body names these bindings.
    // The loop is written out per row (not `for i in 0..MR`) so the 12 accumulators stay in registers.
    macro_rules! step {
        ($k:expr) => {{
            let b0 = _mm256_loadu_ps(bp.add(NR * $k));
            let b1 = _mm256_loadu_ps(bp.add(NR * $k + 8));
            let x = _mm256_broadcast_ss(&*rows[0].add($k));
            r[0][0] = _mm256_fmadd_ps(x, b0, r[0][0]);
            r[0][1] = _mm256_fmadd_ps(x, b1, r[0][1]);
            let x = _mm256_broadcast_ss(&*rows[1].add($k));
            r[1][0] = _mm256_fmadd_ps(x, b0, r[1][0]);
            r[1][1] = _mm256_fmadd_ps(x, b1, r[1][1]);
            let x = _mm256_broadcast_ss(&*rows[2].add($k));
            r[2][0] = _mm256_fmadd_ps(x, b0, r[2][0]);
            r[2][1] = _mm256_fmadd_ps(x, b1, r[2][1]);
            let x = _mm256_broadcast_ss(&*rows[3].add($k));
            r[3][0] = _mm256_fmadd_ps(x, b0, r[3][0]);
            r[3][1] = _mm256_fmadd_ps(x, b1, r[3][1]);
            let x = _mm256_broadcast_ss(&*rows[4].add($k));
            r[4][0] = _mm256_fmadd_ps(x, b0, r[4][0]);
            r[4][1] = _mm256_fmadd_ps(x, b1, r[4][1]);
            let x = _mm256_broadcast_ss(&*rows[5].add($k));
            r[5][0] = _mm256_fmadd_ps(x, b0, r[5][0]);
            r[5][1] = _mm256_fmadd_ps(x, b1, r[5][1]);
        }};
    }
    let mut k = 0;
    // Unrolled by 4: fewer loop-carried pointer updates per FMA.
    while k + 4 <= kc {
        step!(0);
        step!(1);
        step!(2);
        step!(3);
        bp = bp.add(4 * NR);
        for p in rows.iter_mut() {
            *p = p.add(4);
        }
        k += 4;
    }
    while k < kc {
        step!(0);
        bp = bp.add(NR);
        for p in rows.iter_mut() {
            *p = p.add(1);
        }
        k += 1;
    }
    r
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn load(c: &[f32; TILE], acc: bool) -> Acc {
    let z = _mm256_setzero_ps();
    let mut r = [[z; 2]; MR];
    if acc {
        let p = c.as_ptr();
        for (i, ri) in r.iter_mut().enumerate() {
            // SAFETY: `i*NR + 8 + 8 <= TILE`.
            ri[0] = _mm256_loadu_ps(p.add(i * NR));
            ri[1] = _mm256_loadu_ps(p.add(i * NR + 8));
        }
    }
    r
}

/// AVX2 [`super::TileDotFn`].
///
/// # Safety
/// The CPU must support AVX2 and FMA, and the length contract of [`super::Kernels::tile_dot`] must hold.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn tile_dot(kc: usize, a: &[f32], lda: usize, b: &[f32], c: &mut [f32; TILE], acc: bool) {
    let r = accumulate(kc, a.as_ptr(), lda, b.as_ptr(), load(c, acc));
    let p = c.as_mut_ptr();
    for (i, ri) in r.iter().enumerate() {
        // SAFETY: `i*NR + 16 <= TILE`.
        _mm256_storeu_ps(p.add(i * NR), ri[0]);
        _mm256_storeu_ps(p.add(i * NR + 8), ri[1]);
    }
}

/// AVX2 [`super::TileMinFn`]: the min over the 6 rows is vertical (lane-wise), so no horizontal reduction.
///
/// # Safety
/// The CPU must support AVX2 and FMA, and the length contract of [`super::Kernels::tile_dot`] must hold.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
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
    let r = accumulate(kc, a.as_ptr(), lda, b.as_ptr(), load(c, acc));
    let m2 = _mm256_set1_ps(-2.0);
    let p = runmin.as_mut_ptr();
    // SAFETY: `runmin` has 16 floats.
    let mut m0 = _mm256_loadu_ps(p);
    let mut m1 = _mm256_loadu_ps(p.add(8));
    for (ri, &ani) in r.iter().zip(an) {
        let n = _mm256_set1_ps(ani);
        // ‖a‖² − 2·a·b in one FMA; `min_ps(v, m)` keeps `m` when `v` is NaN, like the scalar kernel.
        m0 = _mm256_min_ps(_mm256_fmadd_ps(ri[0], m2, n), m0);
        m1 = _mm256_min_ps(_mm256_fmadd_ps(ri[1], m2, n), m1);
    }
    _mm256_storeu_ps(p, m0);
    _mm256_storeu_ps(p.add(8), m1);
}

/// AVX2 [`super::TileMinBothFn`]: the row reduction as in [`tile_min`], the column reduction is one FMA and
/// one `min` per row, then a horizontal min of 8 lanes (cheap next to the `12·kc` FMAs of the tile).
///
/// # Safety
/// The CPU must support AVX2 and FMA, and the length contract of [`super::Kernels::tile_dot`] must hold.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
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
    let r = accumulate(kc, a.as_ptr(), lda, b.as_ptr(), load(c, acc));
    let m2 = _mm256_set1_ps(-2.0);
    let p = runmin.as_mut_ptr();
    // SAFETY: `runmin` and `ln` have 16 floats.
    let mut m0 = _mm256_loadu_ps(p);
    let mut m1 = _mm256_loadu_ps(p.add(8));
    let l0 = _mm256_loadu_ps(ln.as_ptr());
    let l1 = _mm256_loadu_ps(ln.as_ptr().add(8));
    for ((ri, &ani), cm) in r.iter().zip(an).zip(colmin.iter_mut()) {
        let n = _mm256_set1_ps(ani);
        m0 = _mm256_min_ps(_mm256_fmadd_ps(ri[0], m2, n), m0);
        m1 = _mm256_min_ps(_mm256_fmadd_ps(ri[1], m2, n), m1);
        let w = _mm256_min_ps(_mm256_fmadd_ps(ri[0], m2, l0), _mm256_fmadd_ps(ri[1], m2, l1));
        let h = hmin(w);
        *cm = if h < *cm { h } else { *cm };
    }
    _mm256_storeu_ps(p, m0);
    _mm256_storeu_ps(p.add(8), m1);
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hmin(v: __m256) -> f32 {
    let s = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_min_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_min_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}

/// AVX2 [`super::PairFn`]: `Σ (x−y)²`.
///
/// # Safety
/// The CPU must support AVX2 and FMA; `x.len() == y.len()`.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn l2sq(x: &[f32], y: &[f32]) -> f32 {
    let n = x.len().min(y.len());
    let (px, py) = (x.as_ptr(), y.as_ptr());
    let mut s0 = _mm256_setzero_ps();
    let mut s1 = _mm256_setzero_ps();
    let mut i = 0;
    // SAFETY: all loads are at `i .. i+16 <= n` or `i .. i+8 <= n`.
    while i + 16 <= n {
        let d0 = _mm256_sub_ps(_mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i)));
        let d1 = _mm256_sub_ps(_mm256_loadu_ps(px.add(i + 8)), _mm256_loadu_ps(py.add(i + 8)));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        i += 16;
    }
    if i + 8 <= n {
        let d0 = _mm256_sub_ps(_mm256_loadu_ps(px.add(i)), _mm256_loadu_ps(py.add(i)));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        i += 8;
    }
    let mut t = hsum(_mm256_add_ps(s0, s1));
    for j in i..n {
        let d = x[j] - y[j];
        t += d * d;
    }
    t
}
