//! Pairwise Euclidean distances (`pdist`, `cdist`), blocked like a GEMM.
//!
//! Both use `‖a − b‖² = ‖a‖² + ‖b‖² − 2·a·b` with the dot products from the register-tiled micro-kernel of
//! [`crate::simd`] (see `simd::block` for the blocking), on data centred on the mean row so that a common
//! offset costs no precision. Negative squared distances (rounding) are clamped to 0, and pairs closer than
//! `1e-4 ×` their (centred) norms are recomputed directly as `Σ (a−b)²`, so duplicates come out exactly 0
//! and near pairs keep their relative precision.
//!
//! Layouts: inputs are row-major `n × d`; `cdist` writes `nq × nb` row-major; `pdist` writes SciPy's condensed
//! vector (see [`crate::condensed_index`]).
//!
//! Range: the GEMM form sums squares in f32, which would overflow for finite rows with large coordinates
//! (`|x| ≳ 1e19`) although their distance is a finite f32. When the largest `|x|` of the inputs exceeds a safe
//! bound ([`InputScale`]), the inputs are multiplied by a power of two `2^-e` first and the results by `2^e`
//! (`2^2e` when squared) afterwards, on every ISA path alike: both steps are exact (short of underflow of
//! coordinates below `2^-126+e`, negligible next to the large ones), so a Euclidean distance is finite and as
//! accurate as for moderate inputs whenever it is representable in f32. A **squared** distance above `f32::MAX`
//! (≈ 3.4e38) is `+∞`, correctly rounded, and so is that of the pure-TS reference.
use std::borrow::Cow;

use crate::simd::block::{self, Scratch, Tile, MC, QB};
use crate::simd::{self, Kernels, NR};
use crate::output;
use crate::{Error, Parallelism, Result};

/// Pairs whose squared distance is below this fraction of `‖a‖² + ‖b‖²` (centred) are recomputed directly:
/// there the cancellation error of the GEMM form would be a visible fraction of the result.
const REFINE_REL: f32 = 1e-4;

/// Power-of-two input scaling that keeps the GEMM form's f32 sums (`‖a−μ‖² + ‖b−μ‖² − 2(a−μ)·(b−μ)` over `d`
/// coordinates, each centred value at most `2·max|x|`) far below `f32::MAX`: `e = 0` (no copy, no change, the
/// usual case) unless `max|x| > 2^60 / √d`, else the smallest `e` that brings it under that bound. The bound leaves
/// a margin of `2^5` for the sums (`8·d·(2^60/√d)² = 2^123`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InputScale {
    e: i32,
}

impl InputScale {
    /// The scale for inputs `parts` of row dimension `d` (non-finite values are ignored: validated upstream).
    pub(crate) fn of(d: usize, parts: &[&[f32]]) -> Self {
        let mut m = 0.0f32;
        for p in parts {
            for &v in p.iter() {
                let a = v.abs();
                if a > m {
                    m = a;
                }
            }
        }
        let safe = 2f64.powi(60) / (d.max(1) as f64).sqrt();
        if !m.is_finite() || (m as f64) <= safe {
            return InputScale { e: 0 };
        }
        let mut e = ((m as f64) / safe).log2().ceil() as i32;
        while (m as f64) * 2f64.powi(-e) > safe {
            e += 1;
        }
        InputScale { e }
    }

    /// Whether the inputs are used as they are.
    #[inline]
    pub(crate) fn is_identity(&self) -> bool {
        self.e == 0
    }

    /// `x · 2^-e` (borrowed unchanged when `e = 0`).
    pub(crate) fn apply<'a>(&self, x: &'a [f32]) -> Cow<'a, [f32]> {
        if self.is_identity() {
            return Cow::Borrowed(x);
        }
        // e ≤ 100 (max|x| < 2^128, bound ≥ 2^60/2^32), so 2^-e is a normal f64; the f32 product is exact unless
        // it underflows.
        let f = 2f64.powi(-self.e);
        Cow::Owned(x.iter().map(|&v| (v as f64 * f) as f32).collect())
    }

    /// Undoes the scaling of distances in `out`: `· 2^e`, or `· 2^2e` for squared distances (exact; `+∞` when
    /// the true value exceeds `f32::MAX`).
    pub(crate) fn unscale(&self, out: &mut [f32], squared: bool) {
        if self.is_identity() {
            return;
        }
        let f = 2f64.powi(if squared { 2 * self.e } else { self.e });
        for v in out.iter_mut() {
            *v = (*v as f64 * f) as f32;
        }
    }
}

/// `len == rows * d`, or the matching error.
pub(crate) fn check_matrix(what: &'static str, len: usize, rows: usize, d: usize) -> Result<()> {
    if d == 0 {
        return Err(Error::InvalidArgument(format!(
            "{what}: dimension d must be at least 1, got 0"
        )));
    }
    let expected = rows
        .checked_mul(d)
        .ok_or_else(|| Error::InvalidArgument(format!("{what}: {rows} rows × {d} dims overflows usize")))?;
    if len != expected {
        return Err(Error::ShapeMismatch {
            what,
            expected,
            got: len,
        });
    }
    Ok(())
}

fn check_out(len: usize, expected: usize) -> Result<()> {
    if len != expected {
        return Err(Error::ShapeMismatch {
            what: "out",
            expected,
            got: len,
        });
    }
    Ok(())
}

/// Squared distance from the GEMM form: clamped, and recomputed directly for near pairs.
#[inline]
fn finish(kern: &Kernels, an: f32, bn: f32, dot: f32, a: &[f32], b: &[f32], squared: bool) -> f32 {
    let s = an + bn;
    let mut d2 = s - 2.0 * dot;
    if d2 < REFINE_REL * s {
        d2 = kern.l2sq(a, b);
    }
    let d2 = d2.max(0.0);
    if squared {
        d2
    } else {
        d2.sqrt()
    }
}

/// Shared state of one `pdist`/`cdist` call.
struct Ctx<'a> {
    kern: &'static Kernels,
    q: &'a [f32],
    b: &'a [f32],
    d: usize,
    mu: Vec<f32>,
    qn: Vec<f32>,
    bn: Vec<f32>,
    squared: bool,
}

impl<'a> Ctx<'a> {
    /// Centre on the mean of `b`, norms of both sides. `pdist` passes the same slice twice.
    fn new(q: &'a [f32], b: &'a [f32], d: usize, squared: bool) -> Self {
        let kern = simd::kernels();
        let mu = block::mean_row(b, d);
        let mut bn = vec![0.0; b.len() / d];
        block::centred_norms(kern, b, d, &mu, &mut bn);
        let qn = if std::ptr::eq(q, b) {
            bn.clone()
        } else {
            let mut qn = vec![0.0; q.len() / d];
            block::centred_norms(kern, q, d, &mu, &mut qn);
            qn
        };
        Ctx {
            kern,
            q,
            b,
            d,
            mu,
            qn,
            bn,
            squared,
        }
    }

    /// Query rows `q0..q1` against base rows `j0..nb`; `put(i, j, dist)` receives every pair with `j >= jmin(i)`.
    fn block<P: FnMut(usize, usize, f32)>(
        &self,
        q0: usize,
        q1: usize,
        j0: usize,
        jmin: impl Fn(usize) -> usize,
        mut put: P,
    ) {
        let (kern, d) = (self.kern, self.d);
        let nb = self.bn.len();
        let mut packed = Vec::new();
        let mut s = Scratch::default();
        // Lane side = queries, packed once per block; row side = base chunks.
        let np = block::pack_panels(self.q, d, q0..q1, &self.mu, &mut packed);
        let mut c0 = j0;
        while c0 < nb {
            let c1 = (c0 + MC).min(nb);
            block::chunk_pass(
                kern,
                self.b,
                d,
                c0,
                c1,
                &self.mu,
                &packed,
                np,
                &mut s,
                |k, t: Tile<'_>| {
                    k.tile_dot(t.kc, t.a, t.lda, t.b, t.c, t.acc);
                    for lane in 0..NR {
                        let i = q0 + t.panel * NR + lane;
                        if i >= q1 {
                            break;
                        }
                        let lo = jmin(i);
                        for r in 0..t.rows {
                            let j = t.row0 + r;
                            if j < lo {
                                continue;
                            }
                            let v = finish(
                                k,
                                self.qn[i],
                                self.bn[j],
                                t.c[r * NR + lane],
                                &self.q[i * d..][..d],
                                &self.b[j * d..][..d],
                                self.squared,
                            );
                            put(i, j, v);
                        }
                    }
                },
            );
            c0 = c1;
        }
    }
}

/// Start of condensed row `i` (the index of pair `(i, i+1)`), valid for `i <= n`.
#[inline]
fn row_start(n: usize, i: usize) -> usize {
    // i(2n − i − 1)/2 written so that it cannot underflow for i <= n.
    i * (2 * n - i - 1) / 2
}

fn pdist_check(x: &[f32], n: usize, d: usize, out: &[f32]) -> Result<()> {
    check_matrix("x", x.len(), n, d)?;
    let pairs = n
        .checked_mul(n.saturating_sub(1))
        .map(|v| v / 2)
        .ok_or_else(|| Error::InvalidArgument(format!("pdist: {n} points overflow the condensed length")))?;
    check_out(out.len(), pairs)
}

/// Condensed distances of rows `r0..r1` into `out` (which starts at condensed row `r0`).
fn pdist_rows(ctx: &Ctx<'_>, n: usize, r0: usize, r1: usize, out: &mut [f32]) {
    let base = row_start(n, r0);
    let mut q0 = r0;
    while q0 < r1 {
        let q1 = (q0 + QB).min(r1);
        ctx.block(
            q0,
            q1,
            q0 + 1,
            |i| i + 1,
            |i, j, v| out[row_start(n, i) - base + (j - i - 1)] = v,
        );
        q0 = q1;
    }
}

/// Condensed distances of `n` rows of `x` (`n*d`) into `out` (`n(n-1)/2`).
///
/// Euclidean, or squared Euclidean when `squared`. Entry `(i, j)`, `i < j`, is at
/// [`crate::condensed_index`]`(n, i, j)`, as in SciPy's `pdist`. `n = 0` and `n = 1` give an empty `out`.
/// With [`Parallelism::Threads`] row blocks of equal pair counts go to the pool, each writing its own contiguous
/// range of `out`; the results are the same.
///
/// # Errors
/// [`Error::InvalidArgument`] if `d == 0`; [`Error::ShapeMismatch`] if `x.len() != n*d` or
/// `out.len() != n(n-1)/2`.
pub fn pdist_f32(x: &[f32], n: usize, d: usize, squared: bool, par: Parallelism, out: &mut [f32]) -> Result<()> {
    pdist_check(x, n, d, out)?;
    if n < 2 {
        return Ok(());
    }
    let sc = InputScale::of(d, &[x]);
    let x = sc.apply(x);
    let ctx = Ctx::new(&x, &x, d, squared);
    if par.threads() {
        #[cfg(feature = "parallel")]
        pdist_threads(&ctx, n, out);
    } else {
        pdist_rows(&ctx, n, 0, n, out);
    }
    sc.unscale(out, squared);
    Ok(())
}

/// [`pdist_f32`] into a new output of `n(n-1)/2` values.
///
/// # Errors
/// As [`pdist_f32`]; [`Error::InvalidArgument`] if the output cannot be allocated.
pub fn pdist(x: &[f32], n: usize, d: usize, squared: bool, par: Parallelism) -> Result<Vec<f32>> {
    let len = output::rows_of(x.len(), n, d).and_then(|n| output::mul(n, n.saturating_sub(1))).map(|v| v / 2);
    output::with_output("pdist", len, |out| pdist_f32(x, n, d, squared, par, out))
}

fn cdist_check(q: &[f32], nq: usize, b: &[f32], nb: usize, d: usize, out: &[f32]) -> Result<()> {
    check_matrix("q", q.len(), nq, d)?;
    check_matrix("b", b.len(), nb, d)?;
    let expected = nq
        .checked_mul(nb)
        .ok_or_else(|| Error::InvalidArgument(format!("cdist: {nq} × {nb} overflows usize")))?;
    check_out(out.len(), expected)
}

/// Distances between `nq` rows of `q` and `nb` rows of `b` (both `*d`) into `out` (`nq*nb`, row-major).
///
/// `out[i*nb + j]` is the (squared when `squared`) Euclidean distance between `q` row `i` and `b` row `j`.
/// `nq = 0` or `nb = 0` gives an empty `out`. With [`Parallelism::Threads`] blocks of query rows go to the pool;
/// the results are the same.
///
/// # Errors
/// [`Error::InvalidArgument`] if `d == 0`; [`Error::ShapeMismatch`] if a slice length does not match.
#[allow(clippy::too_many_arguments)]
pub fn cdist_f32(
    q: &[f32],
    nq: usize,
    b: &[f32],
    nb: usize,
    d: usize,
    squared: bool,
    par: Parallelism,
    out: &mut [f32],
) -> Result<()> {
    cdist_check(q, nq, b, nb, d, out)?;
    if nq == 0 || nb == 0 {
        return Ok(());
    }
    let sc = InputScale::of(d, &[q, b]);
    let (q, b) = (sc.apply(q), sc.apply(b));
    let ctx = Ctx::new(&q, &b, d, squared);
    if par.threads() {
        #[cfg(feature = "parallel")]
        cdist_threads(&ctx, nq, nb, out);
    } else {
        let mut q0 = 0;
        while q0 < nq {
            let q1 = (q0 + QB).min(nq);
            let rows = &mut out[q0 * nb..q1 * nb];
            ctx.block(q0, q1, 0, |_| 0, |i, j, v| rows[(i - q0) * nb + j] = v);
            q0 = q1;
        }
    }
    sc.unscale(out, squared);
    Ok(())
}

/// [`cdist_f32`] into a new output of `nq*nb` values.
///
/// # Errors
/// As [`cdist_f32`]; [`Error::InvalidArgument`] if the output cannot be allocated.
pub fn cdist(q: &[f32], nq: usize, b: &[f32], nb: usize, d: usize, squared: bool, par: Parallelism) -> Result<Vec<f32>> {
    let len = output::rows_of(q.len(), nq, d)
        .zip(output::rows_of(b.len(), nb, d))
        .and_then(|(nq, nb)| output::mul(nq, nb));
    output::with_output("cdist", len, |out| cdist_f32(q, nq, b, nb, d, squared, par, out))
}

/// Split rows `0..n` of a pdist into about `parts` consecutive blocks of equal work (row `i` costs `n−1−i`
/// pairs), so that the short rows at the bottom of the triangle do not leave threads idle.
#[cfg(feature = "parallel")]
fn triangle_blocks(n: usize, parts: usize) -> Vec<usize> {
    let total = n as f64 * (n as f64 - 1.0) / 2.0;
    let mut bounds = vec![0usize];
    let mut i = 0usize;
    for p in 1..parts {
        // Work of rows 0..i is total − (n−i)(n−i−1)/2; solve for the i reaching p/parts of the total.
        let rest = total * (1.0 - p as f64 / parts as f64);
        let m = (0.5 + (0.25 + 2.0 * rest).sqrt()).floor() as usize; // (m)(m−1)/2 ≈ rest, m = n − i
        let next = n.saturating_sub(m).clamp(i, n);
        if next > i {
            bounds.push(next);
            i = next;
        }
    }
    if *bounds.last().unwrap_or(&0) != n {
        bounds.push(n);
    }
    bounds
}

/// The pool's share of [`pdist_f32`]: row blocks of equal pair counts, each writing its own range of `out`.
#[cfg(feature = "parallel")]
fn pdist_threads(ctx: &Ctx<'_>, n: usize, out: &mut [f32]) {
    use rayon::prelude::*;
    let parts = (8 * rayon::current_num_threads()).max(n.div_ceil(QB)).min(n);
    let bounds = triangle_blocks(n, parts);
    let mut jobs = Vec::with_capacity(bounds.len());
    let mut rest: &mut [f32] = out;
    for w in bounds.windows(2) {
        let len = row_start(n, w[1]) - row_start(n, w[0]);
        let (head, tail) = rest.split_at_mut(len);
        jobs.push((w[0], w[1], head));
        rest = tail;
    }
    jobs.into_par_iter()
        .for_each(|(r0, r1, o)| pdist_rows(ctx, n, r0, r1, o));
}

/// The pool's share of [`cdist_f32`]: blocks of query rows.
#[cfg(feature = "parallel")]
fn cdist_threads(ctx: &Ctx<'_>, nq: usize, nb: usize, out: &mut [f32]) {
    use rayon::prelude::*;
    let qb = query_block(nq, rayon::current_num_threads());
    out.par_chunks_mut(qb * nb).enumerate().for_each(|(bi, rows)| {
        let q0 = bi * qb;
        let q1 = (q0 + qb).min(nq);
        ctx.block(q0, q1, 0, |_| 0, |i, j, v| rows[(i - q0) * nb + j] = v);
    });
}

/// Query rows per parallel task: [`QB`] at most, smaller (a multiple of 16) when that leaves fewer than
/// about four tasks per thread.
#[cfg(feature = "parallel")]
pub(crate) fn query_block(nq: usize, threads: usize) -> usize {
    let per = nq.div_ceil(4 * threads.max(1));
    per.div_ceil(NR).max(1).saturating_mul(NR).min(QB)
}
