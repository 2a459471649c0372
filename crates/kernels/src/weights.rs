//! Patch weights: softmax of scores within each bag with a temperature. (STUB: being implemented.)
use crate::{Error, Result};

/// Softmax of `scores / tau` within each bag (`offsets`, length nbags+1), max-subtracted, into `out`
/// (same length as `scores`). `tau == 0`: arg-max, ties share equally. `tau == +inf`: uniform.
pub fn softmax_weights(scores: &[f32], offsets: &[u32], tau: f64, out: &mut [f32]) -> Result<()> {
    let _ = (scores, offsets, tau, out);
    Err(Error::InvalidArgument("softmax_weights: not implemented yet".into()))
}
