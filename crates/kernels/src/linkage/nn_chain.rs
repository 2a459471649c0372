//! The nearest-neighbour chain algorithm (SciPy's `nn_chain`), for the reducible methods complete, average,
//! weighted and Ward. `O(n²)` time; works in place on the condensed matrix.
use super::union_find::{label, sort_rows_by_height};
use super::{cidx, degenerate, for_each_in_row};
use crate::float::Float;
use crate::linkage::Method;
use crate::Result;

/// Core of [`super::nn_chain`]: `d` (validated, `n ≥ 2`) is the working matrix and is overwritten.
///
/// Tie-breaking, as in SciPy: the chain starts at the lowest live slot; the nearest neighbour of the chain's
/// tip `x` is searched in increasing slot order with a strict `<`, starting from the distance to the previous
/// chain element, so the previous element wins every tie (this is what stops cycles) and otherwise the lowest
/// slot index wins. A merge of slots `x < y` keeps the new cluster in slot `y`. The merges are finally sorted
/// stably by height and relabelled with union-find.
#[allow(clippy::neg_cmp_op_on_partial_ord, clippy::needless_range_loop)] // NaN-aware tests; SciPy's loops.
pub(crate) fn nn_chain_core<W: Float>(d: &mut [W], n: usize, method: Method) -> Result<Vec<f64>> {
    let mut z = vec![0.0f64; 4 * (n - 1)];
    let mut size = vec![1usize; n];
    let mut chain = vec![0usize; n];
    let mut len = 0usize;
    let mut y = 0usize;
    for k in 0..n - 1 {
        if len == 0 {
            len = 1;
            chain[0] = size.iter().position(|&s| s > 0).unwrap_or(0);
        }
        // Walk the chain of nearest neighbours until two mutual nearest neighbours are found.
        let (mut x, current_min) = loop {
            let x = chain[len - 1];
            let mut current_min = f64::INFINITY;
            // Prefer the previous element of the chain as the minimum, to avoid going round in cycles.
            if len > 1 {
                y = chain[len - 2];
                current_min = d[cidx(n, x, y)].to_f64();
            }
            for_each_in_row(d, n, x, |i, dist| {
                if size[i] != 0 && dist < current_min {
                    current_min = dist;
                    y = i;
                }
            });
            if len > 1 && y == chain[len - 2] {
                break (x, current_min);
            }
            // Finite distances always give a candidate (and a strictly decreasing chain, hence no repeats);
            // NaN/inf intermediate distances (negative input for Ward, overflow) can leave none.
            if (len == 1 && !(current_min < f64::INFINITY)) || len >= n {
                return Err(degenerate(method, k));
            }
            chain[len] = y;
            len += 1;
        };
        len -= 2;
        // fastcluster's convention: the merged cluster lives in the higher slot.
        if x > y {
            std::mem::swap(&mut x, &mut y);
        }
        let (nx, ny) = (size[x], size[y]);
        z[4 * k] = x as f64;
        z[4 * k + 1] = y as f64;
        z[4 * k + 2] = current_min;
        z[4 * k + 3] = (nx + ny) as f64;
        size[x] = 0;
        size[y] = nx + ny;
        for i in 0..n {
            let ni = size[i];
            if ni == 0 || i == y {
                continue;
            }
            let (ix, iy) = (cidx(n, i, x), cidx(n, i, y));
            d[iy] = W::from_f64(method.update(d[ix].to_f64(), d[iy].to_f64(), current_min, nx, ny, ni));
        }
    }
    sort_rows_by_height(&mut z);
    label(&mut z, n);
    Ok(z)
}
