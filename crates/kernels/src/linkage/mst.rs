//! Single linkage by Prim's minimum spanning tree on the condensed matrix (SciPy's `mst_single_linkage`).
//!
//! `O(n²)` time, `O(n)` extra memory, and the input is only read (no working copy).
use super::union_find::{label, sort_rows_by_height};
use super::{cidx, degenerate};
use crate::float::Float;
use crate::linkage::Method;
use crate::Result;

/// Core of [`super::mst`]; `y` validated, `n ≥ 2`.
///
/// Tie-breaking, as in SciPy: the tree grows from point 0; at each step the candidate distances `D[i]` are
/// scanned in increasing `i` and the first strictly smaller one wins, so among equal distances the lowest
/// point index is taken. The edges are then sorted stably by length and relabelled with union-find.
#[allow(clippy::neg_cmp_op_on_partial_ord)] // `!(a < inf)` is also true for NaN, on purpose.
pub(crate) fn mst_core<W: Float>(y: &[W], n: usize) -> Result<Vec<f64>> {
    let mut z = vec![0.0f64; 4 * (n - 1)];
    let mut merged = vec![false; n];
    // D[i]: distance from the tree to point i (infinite until a tree point has been seen next to it).
    let mut dmin = vec![f64::INFINITY; n];
    let mut x = 0usize;
    let mut yy = 0usize;
    for k in 0..n - 1 {
        let mut current_min = f64::INFINITY;
        merged[x] = true;
        for i in 0..n {
            if merged[i] {
                continue;
            }
            let dist = y[cidx(n, x, i)].to_f64();
            if dmin[i] > dist {
                dmin[i] = dist;
            }
            if dmin[i] < current_min {
                yy = i;
                current_min = dmin[i];
            }
        }
        // Finite inputs always give a candidate; without one SciPy would reuse a stale index.
        if !(current_min < f64::INFINITY) {
            return Err(degenerate(Method::Single, k));
        }
        z[4 * k] = x as f64;
        z[4 * k + 1] = yy as f64;
        z[4 * k + 2] = current_min;
        x = yy;
    }
    sort_rows_by_height(&mut z);
    label(&mut z, n);
    Ok(z)
}
