//! Patch weights: the softmax of each image's patch scores with a temperature (docs/method.md §2).
//!
//! Bags (images) are given as CSR-style `offsets`: bag `b` owns `scores[offsets[b]..offsets[b+1]]`.
use crate::output;
use crate::{Error, Result};

/// Checks bag offsets: at least one bag, `offsets[0] == 0`, strictly increasing (every bag non-empty), last
/// equal to `nrows`. Returns the number of bags.
///
/// # Errors
/// [`Error::Empty`] when there is no bag (`offsets.len() < 2`); [`Error::InvalidArgument`] otherwise.
pub fn check_offsets(offsets: &[u32], nrows: usize) -> Result<usize> {
    if offsets.len() < 2 {
        return Err(Error::Empty("offsets (no bag: offsets must have length nbags+1 ≥ 2)"));
    }
    if offsets[0] != 0 {
        return Err(Error::InvalidArgument(format!("offsets: offsets[0] must be 0, got {}", offsets[0])));
    }
    for i in 1..offsets.len() {
        let (a, b) = (offsets[i - 1], offsets[i]);
        if b <= a {
            return Err(Error::InvalidArgument(format!(
                "offsets: must be strictly increasing (every bag non-empty); offsets[{}]={a}, offsets[{i}]={b}",
                i - 1
            )));
        }
    }
    let last = offsets[offsets.len() - 1] as usize;
    if last != nrows {
        return Err(Error::InvalidArgument(format!(
            "offsets: last offset must equal the number of rows {nrows}, got {last}"
        )));
    }
    Ok(offsets.len() - 1)
}

/// Softmax of `scores / tau` within each bag, max-subtracted, into `out` (same length as `scores`).
///
/// For bag `B` and `m = max_{j∈B} s_j`: `w_i = exp((s_i − m)/tau) / Σ_{j∈B} exp((s_j − m)/tau)`. Subtracting
/// the max makes the largest term `exp(0) = 1`, so the sum is in `[1, |B|]`: no overflow, no division by zero,
/// for any `tau > 0` (tiny `tau` turns the other terms into exact zeros). Computed in f64, stored as f32.
/// - `tau == 0`: hard arg-max; tied maxima share the weight equally (`1/count`), the others get 0;
/// - `tau == +inf`: uniform `1/|B|` (the mean-pooling baseline).
///
/// # Errors
/// [`Error::Empty`] if there is no score or no bag; [`Error::ShapeMismatch`] if `out.len() != scores.len()`;
/// [`Error::NonFinite`] for a NaN/±inf score; [`Error::InvalidArgument`] for bad offsets (see
/// [`check_offsets`]) or `tau` NaN or negative.
pub fn softmax_weights(scores: &[f32], offsets: &[u32], tau: f64, out: &mut [f32]) -> Result<()> {
    if scores.is_empty() {
        return Err(Error::Empty("scores"));
    }
    if out.len() != scores.len() {
        return Err(Error::ShapeMismatch { what: "out", expected: scores.len(), got: out.len() });
    }
    if let Some(index) = scores.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: "scores", index });
    }
    check_offsets(offsets, scores.len())?;
    if tau.is_nan() || tau < 0.0 {
        return Err(Error::InvalidArgument(format!(
            "tau: expected a number ≥ 0 (0 = arg-max, Infinity = uniform), got {tau}"
        )));
    }
    let mut e: Vec<f64> = Vec::new();
    for w in offsets.windows(2) {
        let (lo, hi) = (w[0] as usize, w[1] as usize);
        let (s, o) = (&scores[lo..hi], &mut out[lo..hi]);
        let m = hi - lo;
        if tau == f64::INFINITY {
            o.fill((1.0 / m as f64) as f32);
            continue;
        }
        let max = s.iter().fold(f32::NEG_INFINITY, |a, &b| if b > a { b } else { a });
        if tau == 0.0 {
            let count = s.iter().filter(|&&v| v == max).count();
            let share = (1.0 / count as f64) as f32;
            for (oi, &si) in o.iter_mut().zip(s) {
                *oi = if si == max { share } else { 0.0 };
            }
            continue;
        }
        let max = max as f64;
        e.clear();
        e.extend(s.iter().map(|&v| ((v as f64 - max) / tau).exp()));
        let sum: f64 = e.iter().sum();
        for (oi, &ei) in o.iter_mut().zip(&e) {
            *oi = (ei / sum) as f32;
        }
    }
    Ok(())
}

/// [`softmax_weights`] into a new output, one weight per score.
///
/// # Errors
/// As [`softmax_weights`]; [`Error::InvalidArgument`] if the output cannot be allocated.
pub fn softmax_weights_vec(scores: &[f32], offsets: &[u32], tau: f64) -> Result<Vec<f32>> {
    output::with_output("softmaxWeights", Some(scores.len()), |out| softmax_weights(scores, offsets, tau, out))
}
