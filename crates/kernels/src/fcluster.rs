//! Flat clusters from a linkage matrix. (STUB: being implemented.)
use crate::{Error, Result};

/// Cut Z (of `n` points) into exactly `k` clusters; 0-based labels in order of first appearance into `out` (n).
pub fn cut_k(z: &[f64], n: usize, k: usize, out: &mut [i32]) -> Result<()> {
    let _ = (z, n, k, out);
    Err(Error::InvalidArgument("cut_k: not implemented yet".into()))
}

/// Cut Z keeping the merges of height ≤ `height`; 0-based labels in order of first appearance into `out` (n).
pub fn cut_height(z: &[f64], n: usize, height: f64, out: &mut [i32]) -> Result<()> {
    let _ = (z, n, height, out);
    Err(Error::InvalidArgument("cut_height: not implemented yet".into()))
}
