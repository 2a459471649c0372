//! Bag pooling: one vector per bag (image) from its rows (patches): weighted mean, or per-dimension max.
//!
//! `rows` is `nrows × d` row-major; bag `b` owns rows `offsets[b]..offsets[b+1]` (see
//! [`check_offsets`]); `out` is `nbags × d`.
use crate::weights::check_offsets;
use crate::output;
use crate::{Error, Result};

fn check_rows(rows: &[f32], offsets: &[u32], d: usize, out: &[f32]) -> Result<usize> {
    if d == 0 {
        return Err(Error::Empty("d (dimension)"));
    }
    if rows.is_empty() {
        return Err(Error::Empty("rows"));
    }
    if !rows.len().is_multiple_of(d) {
        return Err(Error::ShapeMismatch { what: "rows", expected: rows.len() / d * d, got: rows.len() });
    }
    let nbags = check_offsets(offsets, rows.len() / d)?;
    if out.len() != nbags * d {
        return Err(Error::ShapeMismatch { what: "out", expected: nbags * d, got: out.len() });
    }
    if let Some(index) = rows.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: "rows", index });
    }
    Ok(nbags)
}

/// Weighted mean of each bag's rows: `out[b] = Σ_r w_r·row_r / Σ_r w_r` over the rows `r` of bag `b`.
///
/// Accumulates in f64 (a bag has hundreds of patches; f32 sums would lose ~3 digits) and rounds once to f32.
/// Rows with weight 0 are skipped, so softmax weights that underflowed to 0 cost nothing. The weights need not
/// sum to 1 (they are normalised per bag).
///
/// # Errors
/// [`Error::Empty`] if `d == 0`, `rows` is empty or there is no bag; [`Error::ShapeMismatch`] if `rows.len()`
/// is not a multiple of `d`, `weights.len()` is not the row count or `out.len() != nbags·d`;
/// [`Error::NonFinite`] for a NaN/±inf in `rows` or `weights`; [`Error::InvalidArgument`] for bad offsets, a
/// negative weight, or a bag whose weights sum to 0.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(ws > 0)` also catches NaN.
pub fn weighted_mean_f32(rows: &[f32], offsets: &[u32], d: usize, weights: &[f32], out: &mut [f32]) -> Result<()> {
    check_rows(rows, offsets, d, out)?;
    let nrows = rows.len() / d;
    if weights.len() != nrows {
        return Err(Error::ShapeMismatch { what: "weights", expected: nrows, got: weights.len() });
    }
    if let Some(index) = weights.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: "weights", index });
    }
    if let Some(i) = weights.iter().position(|&v| v < 0.0) {
        return Err(Error::InvalidArgument(format!(
            "weights: value at index {i} is {}; weights must be ≥ 0",
            weights[i]
        )));
    }
    let mut acc = vec![0.0f64; d];
    for (b, w) in offsets.windows(2).enumerate() {
        let (lo, hi) = (w[0] as usize, w[1] as usize);
        let ws: f64 = weights[lo..hi].iter().map(|&v| v as f64).sum();
        if !(ws > 0.0) {
            return Err(Error::InvalidArgument(format!(
                "weights: bag {b} has weight sum {ws}; each bag needs a positive sum"
            )));
        }
        acc.fill(0.0);
        for r in lo..hi {
            let wr = weights[r] as f64;
            if wr == 0.0 {
                continue;
            }
            for (a, &x) in acc.iter_mut().zip(&rows[r * d..r * d + d]) {
                *a += wr * x as f64;
            }
        }
        for (o, &a) in out[b * d..b * d + d].iter_mut().zip(&acc) {
            *o = (a / ws) as f32;
        }
    }
    Ok(())
}

/// Per-dimension maximum of each bag's rows into `out` (`nbags × d`).
///
/// # Errors
/// [`Error::Empty`] if `d == 0`, `rows` is empty or there is no bag; [`Error::ShapeMismatch`] if `rows.len()`
/// is not a multiple of `d` or `out.len() != nbags·d`; [`Error::NonFinite`] for a NaN/±inf in `rows`;
/// [`Error::InvalidArgument`] for bad offsets.
pub fn max_pool_f32(rows: &[f32], offsets: &[u32], d: usize, out: &mut [f32]) -> Result<()> {
    check_rows(rows, offsets, d, out)?;
    for (b, w) in offsets.windows(2).enumerate() {
        let (lo, hi) = (w[0] as usize, w[1] as usize);
        let o = &mut out[b * d..b * d + d];
        o.copy_from_slice(&rows[lo * d..lo * d + d]);
        for r in lo + 1..hi {
            for (m, &x) in o.iter_mut().zip(&rows[r * d..r * d + d]) {
                if x > *m {
                    *m = x;
                }
            }
        }
    }
    Ok(())
}

/// Output length `nbags × d` of the pooling kernels, when `rows` holds whole rows of `d > 0` values and the offsets
/// are valid for them (so the output is no larger than `rows`, whatever `d` says).
fn pooled_len(rows: &[f32], offsets: &[u32], d: usize) -> Option<usize> {
    let nrows = output::rows_of(rows.len(), rows.len() / d.max(1), d)?;
    let nbags = check_offsets(offsets, nrows).ok()?;
    output::mul(nbags, d)
}

/// [`weighted_mean_f32`] into a new output of `nbags × d` values.
///
/// # Errors
/// As [`weighted_mean_f32`]; [`Error::InvalidArgument`] if the output cannot be allocated.
pub fn weighted_mean(rows: &[f32], offsets: &[u32], d: usize, weights: &[f32]) -> Result<Vec<f32>> {
    output::with_output("weightedMean", pooled_len(rows, offsets, d), |out| weighted_mean_f32(rows, offsets, d, weights, out))
}

/// [`max_pool_f32`] into a new output of `nbags × d` values.
///
/// # Errors
/// As [`max_pool_f32`]; [`Error::InvalidArgument`] if the output cannot be allocated.
pub fn max_pool(rows: &[f32], offsets: &[u32], d: usize) -> Result<Vec<f32>> {
    output::with_output("maxPool", pooled_len(rows, offsets, d), |out| max_pool_f32(rows, offsets, d, out))
}
