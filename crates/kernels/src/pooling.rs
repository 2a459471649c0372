//! Bag pooling: weighted mean and per-dimension max of each bag's rows. (STUB: being implemented.)
use crate::{Error, Result};

/// Weighted mean of each bag's rows (`rows`: nrows×d; `offsets`: nbags+1; `weights`: nrows) into `out` (nbags×d).
pub fn weighted_mean_f32(rows: &[f32], offsets: &[u32], d: usize, weights: &[f32], out: &mut [f32]) -> Result<()> {
    let _ = (rows, offsets, d, weights, out);
    Err(Error::InvalidArgument("weighted_mean_f32: not implemented yet".into()))
}

/// Per-dimension max of each bag's rows into `out` (nbags×d).
pub fn max_pool_f32(rows: &[f32], offsets: &[u32], d: usize, out: &mut [f32]) -> Result<()> {
    let _ = (rows, offsets, d, out);
    Err(Error::InvalidArgument("max_pool_f32: not implemented yet".into()))
}
