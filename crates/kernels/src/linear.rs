//! Linear maps of rows: `out = x · Wᵀ`, on the blocked GEMM driver of the distance kernels.
//!
//! Used to whiten a patch bank (`W = L⁻¹` of the shrunk patch covariance `C = L·Lᵀ`): every patch of every image
//! goes through the same `d_out × d_in` matrix, `n·m·d_in·d_out` multiply-adds (1.5e10 for 583 images of 784
//! patches, d = 256), which is why it lives here and not in TypeScript.
use crate::simd::block::{self, Scratch, Tile, MC, QB};
use crate::simd::{self, NR};
use crate::output;
use crate::{Error, Parallelism, Result};

fn check(x: &[f32], n: usize, d_in: usize, w: &[f32], d_out: usize, out: &[f32]) -> Result<()> {
    if d_in == 0 {
        return Err(Error::Empty("dIn (input dimension)"));
    }
    if d_out == 0 {
        return Err(Error::Empty("dOut (output dimension)"));
    }
    let len = |what: &'static str, a: usize, b: usize| {
        a.checked_mul(b)
            .ok_or_else(|| Error::InvalidArgument(format!("linearMap: {what} {a} × {b} overflows usize")))
    };
    let (xl, wl, ol) = (len("x", n, d_in)?, len("w", d_out, d_in)?, len("out", n, d_out)?);
    if x.len() != xl {
        return Err(Error::ShapeMismatch { what: "x", expected: xl, got: x.len() });
    }
    if w.len() != wl {
        return Err(Error::ShapeMismatch { what: "w", expected: wl, got: w.len() });
    }
    if out.len() != ol {
        return Err(Error::ShapeMismatch { what: "out", expected: ol, got: out.len() });
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: "x", index });
    }
    if let Some(index) = w.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: "w", index });
    }
    Ok(())
}

/// Rows `r0..r1` of `x` through `w`, into `out` (which holds exactly those rows: `(r1−r0) × d_out`).
fn rows(x: &[f32], d_in: usize, w: &[f32], d_out: usize, r0: usize, r1: usize, out: &mut [f32]) {
    let kern = simd::kernels();
    let zero = vec![0.0f32; d_in];
    let mut packed = Vec::new();
    let mut s = Scratch::default();
    let mut l0 = 0;
    while l0 < d_out {
        // lane side = output dimensions (rows of w), packed once per block of QB
        let l1 = (l0 + QB).min(d_out);
        let np = block::pack_panels(w, d_in, l0..l1, &zero, &mut packed);
        let mut c0 = r0;
        while c0 < r1 {
            let c1 = (c0 + MC).min(r1);
            block::chunk_pass(kern, x, d_in, c0, c1, &zero, &packed, np, &mut s, |k, t: Tile<'_>| {
                k.tile_dot(t.kc, t.a, t.lda, t.b, t.c, t.acc);
                for r in 0..t.rows {
                    let o = &mut out[(t.row0 + r - r0) * d_out..][..d_out];
                    for lane in 0..NR {
                        let j = l0 + t.panel * NR + lane;
                        if j >= l1 {
                            break;
                        }
                        o[j] = t.c[r * NR + lane];
                    }
                }
            });
            c0 = c1;
        }
        l0 = l1;
    }
}

fn check_result(out: &[f32]) -> Result<()> {
    match out.iter().position(|v| !v.is_finite()) {
        Some(i) => Err(Error::InvalidArgument(format!(
            "linearMap: result {i} overflows f32 (inputs too large for this map)"
        ))),
        None => Ok(()),
    }
}

/// `out[i·d_out + j] = Σ_k x[i·d_in + k] · w[j·d_in + k]`: each of the `n` rows of `x` (`n × d_in`) mapped by
/// the `d_out × d_in` matrix `w` (row-major), i.e. `x · wᵀ`, accumulated in f32 with FMA where available.
/// `n = 0` gives an empty `out`. With [`Parallelism::Threads`] the rows are split over the pool (about 4 tasks
/// per thread, whole `MC` chunks); the results are the same.
///
/// # Errors
/// [`Error::Empty`] if `d_in` or `d_out` is 0; [`Error::ShapeMismatch`] if a slice length does not match;
/// [`Error::NonFinite`] for a NaN/±inf in `x` or `w`; [`Error::InvalidArgument`] if a result overflows f32.
pub fn linear_map_f32(
    x: &[f32],
    n: usize,
    d_in: usize,
    w: &[f32],
    d_out: usize,
    par: Parallelism,
    out: &mut [f32],
) -> Result<()> {
    check(x, n, d_in, w, d_out, out)?;
    if par.threads() {
        #[cfg(feature = "parallel")]
        if n > 0 {
            use rayon::prelude::*;
            let per = n.div_ceil(4 * rayon::current_num_threads().max(1)).div_ceil(MC).max(1) * MC;
            out.par_chunks_mut(per * d_out).enumerate().for_each(|(bi, o)| {
                let r0 = bi * per;
                let r1 = (r0 + per).min(n);
                rows(x, d_in, w, d_out, r0, r1, o);
            });
        }
    } else {
        rows(x, d_in, w, d_out, 0, n, out);
    }
    check_result(out)
}

/// [`linear_map_f32`] into a new output of `n*d_out` values.
///
/// # Errors
/// As [`linear_map_f32`]; [`Error::InvalidArgument`] if the output cannot be allocated.
pub fn linear_map(x: &[f32], n: usize, d_in: usize, w: &[f32], d_out: usize, par: Parallelism) -> Result<Vec<f32>> {
    let len = output::rows_of(x.len(), n, d_in)
        .filter(|_| output::rows_of(w.len(), d_out, d_in).is_some())
        .and_then(|n| output::mul(n, d_out));
    output::with_output("linearMap", len, |out| linear_map_f32(x, n, d_in, w, d_out, par, out))
}
