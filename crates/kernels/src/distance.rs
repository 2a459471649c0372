//! Pairwise Euclidean distances (`pdist`, `cdist`), blocked like a GEMM. (STUB: being implemented.)
use crate::{Error, Result};

/// Condensed distances of `n` rows of `x` (`n*d`) into `out` (`n(n-1)/2`).
pub fn pdist_f32(x: &[f32], n: usize, d: usize, squared: bool, out: &mut [f32]) -> Result<()> {
    let _ = (x, n, d, squared, out);
    Err(Error::InvalidArgument("pdist_f32: not implemented yet".into()))
}

/// Distances between `nq` rows of `q` and `nb` rows of `b` (both `*d`) into `out` (`nq*nb`, row-major).
pub fn cdist_f32(q: &[f32], nq: usize, b: &[f32], nb: usize, d: usize, squared: bool, out: &mut [f32]) -> Result<()> {
    let _ = (q, nq, b, nb, d, squared, out);
    Err(Error::InvalidArgument("cdist_f32: not implemented yet".into()))
}

/// Multi-threaded [`pdist_f32`] (rayon global pool).
#[cfg(feature = "parallel")]
pub fn pdist_f32_par(x: &[f32], n: usize, d: usize, squared: bool, out: &mut [f32]) -> Result<()> {
    pdist_f32(x, n, d, squared, out)
}

/// Multi-threaded [`cdist_f32`] (rayon global pool).
#[cfg(feature = "parallel")]
pub fn cdist_f32_par(q: &[f32], nq: usize, b: &[f32], nb: usize, d: usize, squared: bool, out: &mut [f32]) -> Result<()> {
    cdist_f32(q, nq, b, nb, d, squared, out)
}
