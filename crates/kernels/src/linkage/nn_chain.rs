//! The nearest-neighbour chain algorithm (SciPy's `nn_chain`), for the reducible methods complete, average,
//! weighted and Ward. `O(n²)` time; works in place on the condensed matrix.
//!
//! The algorithm, its tie-breaking and its Lance–Williams arithmetic are SciPy's, so Z is identical bit for bit
//! on `f64` storage. What differs is how the matrix is *read*, which is where the time goes at large `n` (the
//! matrix is far larger than the caches, and SciPy's loops test `size[i] != 0` for every entry they visit):
//!
//! - **Dead entries hold `+∞`.** When slot `x` is merged away, its row and column are overwritten with `+∞` (in
//!   the update loop, which reads them anyway). A scan with a strict `<` never picks `+∞` (nor NaN), exactly as
//!   SciPy's scan never picks a dead slot, so the scans need no `size` test.
//! - **The contiguous part of a row is scanned in blocks** with a lane-wise minimum (vectorised: `minps`/`minpd`)
//!   and only a block whose minimum beats the running one is re-read for the first index attaining it: the
//!   same answer as SciPy's sequential strict-`<` scan (first index of the smallest value below the start).
//! - **The strided loops visit live slots only** (a sorted list of them), so a dead entry costs no cache or TLB
//!   miss; the contiguous part of the update loop is branch-free (a dead entry is `+∞` and stays `+∞`/NaN,
//!   which can never be picked).
use super::union_find::{label, sort_rows_by_height};
use super::{cidx, degenerate, method};
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
pub(crate) fn nn_chain_core<W: Float>(d: &mut [W], n: usize, m: Method) -> Result<Vec<f64>> {
    // One monomorphised loop per method, so the update is inlined into the contiguous loop.
    match m {
        Method::Single => core(d, n, m, |a, b, _, _, _, _| method::single(a, b)),
        Method::Complete => core(d, n, m, |a, b, _, _, _, _| method::complete(a, b)),
        Method::Average => core(d, n, m, |a, b, _, nx, ny, _| method::average(a, b, nx, ny)),
        Method::Weighted => core(d, n, m, |a, b, _, _, _, _| method::weighted(a, b)),
        Method::Ward => core(d, n, m, method::ward),
        Method::Centroid => core(d, n, m, |a, b, c, nx, ny, _| method::centroid(a, b, c, nx, ny)),
        Method::Median => core(d, n, m, |a, b, c, _, _, _| method::median(a, b, c)),
    }
}

/// Index of the first smallest value of `s` that is `< cur` (strict; NaN never wins), with that value.
#[inline]
fn row_argmin<W: Float>(s: &[W], cur: W) -> Option<(usize, W)> {
    const BLOCK: usize = 1024;
    const LANES: usize = 16;
    let mut cur = cur;
    let mut best = None;
    for (bi, blk) in s.chunks(BLOCK).enumerate() {
        let (chunks, rest) = blk.as_chunks::<LANES>();
        let mut acc = [cur; LANES];
        for c in chunks {
            for (a, &v) in acc.iter_mut().zip(c) {
                // `v < a ? v : a`: the `minps` operand order, NaN never replaces `a`.
                *a = if v < *a { v } else { *a };
            }
        }
        let mut m = cur;
        for &v in acc.iter().chain(rest) {
            if v < m {
                m = v;
            }
        }
        if m < cur {
            // The sequential scan would stop its last update at the first occurrence of the block's minimum.
            if let Some(p) = blk.iter().position(|&v| v == m) {
                cur = blk[p];
                best = Some((bi * BLOCK + p, cur));
            }
        }
    }
    best
}

/// [`cidx`] for `i < j`.
#[inline(always)]
fn cidx_lt(n: usize, i: usize, j: usize) -> usize {
    n * i - i * (i + 1) / 2 + (j - i - 1)
}

#[allow(clippy::neg_cmp_op_on_partial_ord)] // NaN-aware tests, as SciPy's.
fn core<W: Float>(
    d: &mut [W],
    n: usize,
    method: Method,
    update: impl Fn(f64, f64, f64, usize, usize, usize) -> f64,
) -> Result<Vec<f64>> {
    let inf = W::from_f64(f64::INFINITY);
    let mut z = vec![0.0f64; 4 * (n - 1)];
    let mut size = vec![1usize; n];
    let mut chain = vec![0usize; n];
    let mut len = 0usize;
    let mut y = 0usize;
    // Live slots in increasing order: the strided loops visit only these (a dead entry would cost a cache and
    // TLB miss for nothing). Removing one is a memmove of at most `n` words, negligible next to a merge.
    let mut live: Vec<usize> = (0..n).collect();
    for k in 0..n - 1 {
        if len == 0 {
            len = 1;
            chain[0] = live[0];
        }
        // Walk the chain of nearest neighbours until two mutual nearest neighbours are found.
        let (mut x, current_min) = loop {
            let x = chain[len - 1];
            let mut cur = inf;
            // Prefer the previous element of the chain as the minimum, to avoid going round in cycles.
            if len > 1 {
                y = chain[len - 2];
                cur = d[cidx(n, x, y)];
            }
            // Column part (live slots i < x), strided.
            for &i in live.iter().take_while(|&&i| i < x) {
                let v = d[cidx_lt(n, i, x)];
                if v < cur {
                    cur = v;
                    y = i;
                }
            }
            // Row part (slots i > x), contiguous.
            if x + 1 < n {
                let start = cidx(n, x, x + 1);
                if let Some((off, v)) = row_argmin(&d[start..start + (n - x - 1)], cur) {
                    cur = v;
                    y = x + 1 + off;
                }
            }
            let current_min = cur.to_f64();
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
        // d(x∪y, i) into slot y's entries; slot x's entries become +inf (dead). SciPy's order of operations.
        let rx = cidx(n, x, x + 1);
        d[rx + (y - x - 1)] = inf; // d(x, y)
        // Live i < y (i ≠ x): slot y's column is strided; slot x's column too for i < x, its row for i > x.
        let px = live.partition_point(|&i| i < x);
        for &i in live[..px].iter() {
            let (ix, iy) = (cidx_lt(n, i, x), cidx_lt(n, i, y));
            d[iy] = W::from_f64(update(d[ix].to_f64(), d[iy].to_f64(), current_min, nx, ny, size[i]));
            d[ix] = inf;
        }
        for &i in live[px + 1..].iter().take_while(|&&i| i < y) {
            let (ix, iy) = (rx + (i - x - 1), cidx_lt(n, i, y));
            d[iy] = W::from_f64(update(d[ix].to_f64(), d[iy].to_f64(), current_min, nx, ny, size[i]));
            d[ix] = inf;
        }
        live.remove(px);
        // i > y: both rows contiguous, branch-free (a dead entry is +inf and stays +inf or NaN: never picked).
        if y + 1 < n {
            let ry = cidx(n, y, y + 1);
            let cnt = n - y - 1;
            let (lo, hi) = d.split_at_mut(ry);
            let rowx = &mut lo[rx + (y - x)..rx + (y - x) + cnt];
            let rowy = &mut hi[..cnt];
            for ((dx, dy), &ni) in rowx.iter_mut().zip(rowy.iter_mut()).zip(&size[y + 1..]) {
                *dy = W::from_f64(update(dx.to_f64(), dy.to_f64(), current_min, nx, ny, ni));
                *dx = inf;
            }
        }
    }
    sort_rows_by_height(&mut z);
    label(&mut z, n);
    Ok(z)
}
