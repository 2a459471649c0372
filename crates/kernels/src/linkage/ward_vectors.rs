//! Ward linkage straight from the observation vectors: the nearest-neighbour chain on cluster centroids,
//! `O(n·d)` memory instead of the `n(n-1)/2` condensed matrix.
//!
//! The Ward distance between clusters `A` and `B` (sizes `|A|`, `|B|`, centroids `c_A`, `c_B`) is
//!
//! ```text
//! d(A, B) = sqrt(2·|A|·|B| / (|A| + |B|)) · ‖c_A − c_B‖₂
//! ```
//!
//! which is exactly the quantity SciPy's Lance–Williams recurrence for `ward` computes from Euclidean input
//! distances (for singletons it is the plain Euclidean distance). So this gives the same Z as
//! `linkage(pdist(x), Ward)`, up to floating-point rounding: the heights agree to ~1e-12 relative, and the
//! merge order agrees except between merges whose heights tie up to that rounding.
//!
//! Cost: each chain step scans all live centroids, `O(n·d)`, and a run takes about `2n`–`3n` steps, so
//! `O(n²·d)` time; the `parallel` feature's [`ward_from_vectors_par`] splits each scan over the rayon pool. The
//! scans prune (partial distance search, exact): a candidate is dropped as soon as the first `32·j` dimensions of
//! its distance already reach the best so far, which starts at the previous chain element's distance. On
//! clustered data most candidates are dropped after 32 dimensions, so the scans read a fraction of the centroids.
use super::union_find::{label, sort_rows_by_height};
use crate::{Error, Result};

/// Squared Euclidean distance in f64 with 4 independent accumulators (lets the compiler vectorise).
#[inline]
fn sqdist(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (pa, pb) in (&mut ca).zip(&mut cb) {
        for k in 0..4 {
            let t = pa[k] - pb[k];
            acc[k] += t * t;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (u, v) in ca.remainder().iter().zip(cb.remainder()) {
        let t = u - v;
        s += t * t;
    }
    s
}

/// Squared Ward distance between live slots `x` and `i`: `2·nx·ni/(nx+ni) · ‖c_x − c_i‖²`.
#[inline]
fn ward_sq(c: &[f64], d: usize, size: &[usize], x: usize, i: usize) -> f64 {
    let (nx, ni) = (size[x] as f64, size[i] as f64);
    2.0 * nx * ni / (nx + ni) * sqdist(&c[x * d..x * d + d], &c[i * d..i * d + d])
}

/// Dimensions summed between two checks of the bound in [`ward_sq_below`].
const PRUNE_BLOCK: usize = 32;

/// [`ward_sq`] if it is `< bound`, else `None`, usually long before all `d` terms are summed (partial distance
/// search): every `PRUNE_BLOCK` dimensions it forms the partial sum exactly as [`sqdist`] forms the total and stops
/// once `factor × partial ≥ bound`. This is **exact**: the terms are non-negative and IEEE addition and
/// multiplication are monotone, so each accumulator, their sum and its product with `factor` can only grow; a
/// value that is returned is bit for bit [`ward_sq`]'s.
#[inline]
fn ward_sq_below(c: &[f64], d: usize, size: &[usize], x: usize, i: usize, bound: f64) -> Option<f64> {
    let (nx, ni) = (size[x] as f64, size[i] as f64);
    let factor = 2.0 * nx * ni / (nx + ni);
    let (a, b) = (&c[x * d..x * d + d], &c[i * d..i * d + d]);
    let full = d - d % 4;
    let mut acc = [0.0f64; 4];
    let mut t = 0;
    while t < full {
        let end = (t + PRUNE_BLOCK).min(full);
        for (pa, pb) in a[t..end].chunks_exact(4).zip(b[t..end].chunks_exact(4)) {
            for k in 0..4 {
                let u = pa[k] - pb[k];
                acc[k] += u * u;
            }
        }
        t = end;
        if t < d && factor * ((acc[0] + acc[1]) + (acc[2] + acc[3])) >= bound {
            return None;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (u, v) in a[full..].iter().zip(&b[full..]) {
        let t = u - v;
        s += t * t;
    }
    let v = factor * s;
    (v < bound).then_some(v)
}

/// Best live `i != x` in `range` strictly below `seed.0`: smallest squared Ward distance, lowest index on ties;
/// `seed` itself (e.g. `(value of the previous chain element, usize::MAX)`) if none is strictly smaller.
fn scan(c: &[f64], d: usize, size: &[usize], x: usize, range: std::ops::Range<usize>, seed: (f64, usize)) -> (f64, usize) {
    let mut best = seed;
    for i in range {
        if i == x || size[i] == 0 {
            continue;
        }
        // Strict `<` (inside `ward_sq_below`): a later index never displaces an equal earlier one.
        if let Some(v) = ward_sq_below(c, d, size, x, i, best.0) {
            best = (v, i);
        }
    }
    best
}

type Scanner = fn(&[f64], usize, &[usize], usize, usize, (f64, usize)) -> (f64, usize);

fn scan_serial(c: &[f64], d: usize, size: &[usize], x: usize, n: usize, seed: (f64, usize)) -> (f64, usize) {
    scan(c, d, size, x, 0..n, seed)
}

#[cfg(feature = "parallel")]
fn scan_parallel(c: &[f64], d: usize, size: &[usize], x: usize, n: usize, seed: (f64, usize)) -> (f64, usize) {
    use rayon::prelude::*;
    // Chunks of ~32k multiply-adds (fewer once the pruning bites); each starts from the same seed, and the
    // reduction keeps (min value, then min index), which is exactly what the serial left-to-right strict-`<` scan
    // returns, so both variants give the same Z.
    let chunk = (32_768 / d.max(1)).max(64);
    (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|b| scan(c, d, size, x, b * chunk..((b + 1) * chunk).min(n), seed))
        .reduce(|| seed, |a, b| if b.0 < a.0 || (b.0 == a.0 && b.1 < a.1) { b } else { a })
}

fn check(x: &[f32], n: usize, d: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Empty("n (number of observations)"));
    }
    if d == 0 {
        return Err(Error::Empty("d (dimension)"));
    }
    let expected = n.saturating_mul(d);
    if x.len() != expected {
        return Err(Error::ShapeMismatch { what: "x", expected, got: x.len() });
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: "x", index });
    }
    Ok(())
}

/// Ward linkage of `n` observations `x` (`n × d`, row-major) without the `n²` distance matrix.
///
/// Returns Z, `(n-1)·4` values (empty for `n == 1`), equal to `linkage(pdist(x), Method::Ward)` up to
/// floating-point rounding; `O(n·d)` memory (f64 centroids), `O(n²·d)` time. The distance between clusters
/// `A` and `B` (sizes `|A|`, `|B|`, centroids `c_A`, `c_B`) is
///
/// ```text
/// d(A, B) = sqrt(2·|A|·|B| / (|A| + |B|)) · ‖c_A − c_B‖₂
/// ```
///
/// exactly what SciPy's Lance–Williams `ward` recurrence computes from Euclidean distances, so the heights
/// agree to ~1e-12 relative and the merge order agrees except between merges whose heights tie up to rounding.
/// Tie-breaking follows SciPy's NN-chain (previous chain element first, then the lowest slot; merged cluster
/// in the higher slot; stable sort by height; union-find labels).
///
/// # Errors
/// [`Error::Empty`] if `n == 0` or `d == 0`; [`Error::ShapeMismatch`] if `x.len() != n·d`; [`Error::NonFinite`] with the
/// index of the first NaN/±inf in `x`.
pub fn ward_from_vectors(x: &[f32], n: usize, d: usize) -> Result<Vec<f64>> {
    check(x, n, d)?;
    ward_chain(x, n, d, scan_serial)
}

/// [`ward_from_vectors`] with each nearest-neighbour scan split over the rayon thread pool; same result.
///
/// # Errors
/// As [`ward_from_vectors`].
#[cfg(feature = "parallel")]
pub fn ward_from_vectors_par(x: &[f32], n: usize, d: usize) -> Result<Vec<f64>> {
    check(x, n, d)?;
    ward_chain(x, n, d, scan_parallel)
}

fn ward_chain(x: &[f32], n: usize, d: usize, scanner: Scanner) -> Result<Vec<f64>> {
    if n == 1 {
        return Ok(Vec::new());
    }
    let mut c: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut size = vec![1usize; n];
    let mut chain = vec![0usize; n];
    let mut len = 0usize;
    let mut z = vec![0.0f64; 4 * (n - 1)];
    for k in 0..n - 1 {
        if len == 0 {
            len = 1;
            chain[0] = size.iter().position(|&s| s > 0).unwrap_or(0);
        }
        let (mut a, mut b, best_sq) = loop {
            let tip = chain[len - 1];
            // The previous chain element wins ties (SciPy starts its strict-`<` scan from it): the scan looks only
            // for something strictly closer, which also gives the pruning a tight bound from the start.
            // (A NaN `pv` is never beaten either, as in SciPy.)
            let y = if len > 1 {
                let prev = chain[len - 2];
                let pv = ward_sq(&c, d, &size, tip, prev);
                let (_, y) = scanner(&c, d, &size, tip, n, (pv, usize::MAX));
                if y == usize::MAX {
                    break (tip, prev, pv);
                }
                y
            } else {
                scanner(&c, d, &size, tip, n, (f64::INFINITY, usize::MAX)).1
            };
            // Finite input always has a candidate, and the chain strictly decreases so it cannot outgrow n.
            if y == usize::MAX || len >= n {
                return Err(Error::InvalidArgument(format!(
                    "ward_from_vectors: no nearest neighbour at step {k} (internal error)"
                )));
            }
            chain[len] = y;
            len += 1;
        };
        len -= 2;
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        let (na, nb) = (size[a], size[b]);
        z[4 * k] = a as f64;
        z[4 * k + 1] = b as f64;
        z[4 * k + 2] = best_sq.sqrt();
        z[4 * k + 3] = (na + nb) as f64;
        // New centroid (size-weighted mean) in the higher slot; the lower slot dies.
        let (wa, wb, s) = (na as f64, nb as f64, (na + nb) as f64);
        for t in 0..d {
            c[b * d + t] = (wa * c[a * d + t] + wb * c[b * d + t]) / s;
        }
        size[a] = 0;
        size[b] = na + nb;
    }
    sort_rows_by_height(&mut z);
    label(&mut z, n);
    Ok(z)
}
