//! Agglomerative (hierarchical) clustering with SciPy's semantics, algorithms and output.
//!
//! [`linkage`] takes a condensed distance vector (SciPy's `pdist` layout) and returns the linkage matrix Z:
//! `n - 1` rows `[a, b, height, size]`, `a < b`, the cluster formed at row `i` having id `n + i`. It dispatches
//! to the algorithm SciPy (≥ 1.0, `scipy/cluster/_hierarchy.pyx`) uses for the method:
//!
//! | method                                | algorithm                                   | module      |
//! |---------------------------------------|---------------------------------------------|-------------|
//! | single                                | Prim's minimum spanning tree                | [`mst`]     |
//! | complete, average, weighted, ward     | nearest-neighbour chain                     | [`nn_chain`]|
//! | centroid, median                      | Müllner's generic algorithm with a heap     | [`generic`] |
//!
//! [`primitive`] is the textbook `O(n³)` algorithm, kept public as the test oracle, and
//! [`ward_from_vectors`] runs Ward on the observation vectors themselves with `O(n·d)` memory, for `n` whose
//! condensed matrix would not fit.
//!
//! # Exactness and ties
//!
//! Each algorithm is a faithful port, down to its tie-breaking and the operation order of the Lance–Williams
//! updates (see [`method`]), so on `f64` input Z equals SciPy's bit for bit, tied distances included:
//! - **MST** grows the tree from point 0 and, among equal candidate distances, takes the lowest point index;
//! - **NN-chain** starts each chain at the lowest live slot, prefers the previous chain element on a tie (then
//!   the lowest slot), keeps a merged cluster in the higher of its two slots;
//! - after MST and NN-chain the merges are **sorted stably by height** (NumPy `mergesort`, so equal heights
//!   keep their discovery order) and **relabelled with union-find** (ids `n + i` in sorted order, `a < b`);
//! - **generic** pops candidates from SciPy's binary heap (same sift rules) and emits Z in merge order, without
//!   sorting (centroid/median heights can decrease).
//!
//! `f32` input is widened to `f64` first, so it gives SciPy's result on `y.astype(np.float64)`.
//! [`linkage_in_place`] instead uses the caller's buffer as working storage: with an `f32` buffer this halves
//! the memory, at the price of rounding every updated distance to `f32` (no longer SciPy-exact).
//!
//! Inputs must be finite; negative distances are not rejected (SciPy does not either), but Ward, centroid and
//! median can then meet the square root of a negative number: SciPy would carry NaN along, we do the same when
//! the algorithm can proceed and return [`Error::InvalidArgument`] when it cannot (no finite neighbour left).
//! Nothing here panics on any input.
use crate::float::Float;
use crate::{Error, Result};

mod generic;
pub mod method;
mod mst;
mod nn_chain;
mod primitive;
mod union_find;
mod ward_vectors;

pub use method::Method;
pub use ward_vectors::ward_from_vectors;
#[doc(hidden)]
pub use ward_vectors::ward_from_vectors_unscreened;

/// Condensed index of the pair `{i, j}`, `i != j`, in either order.
#[inline]
pub(crate) fn cidx(n: usize, i: usize, j: usize) -> usize {
    let (i, j) = if i < j { (i, j) } else { (j, i) };
    n * i - i * (i + 1) / 2 + (j - i - 1)
}

/// The error for an algorithm that met NaN/inf intermediate distances and has no valid pair to merge.
pub(crate) fn degenerate(method: Method, step: usize) -> Error {
    Error::InvalidArgument(format!(
        "linkage ({method}): no finite pair of clusters to merge at step {step}; intermediate distances became \
         NaN or infinite (negative or non-Euclidean distances with ward/centroid/median, or overflow)"
    ))
}

/// Length `n(n-1)/2` of the condensed matrix of `n` points (`None` if it overflows `usize`).
pub fn condensed_len(n: usize) -> Option<usize> {
    if n.is_multiple_of(2) {
        (n / 2).checked_mul(n.saturating_sub(1))
    } else {
        n.checked_mul((n - 1) / 2)
    }
}

/// Checks a condensed matrix: `n ≥ 1`, length `n(n-1)/2`, finite values.
fn check_condensed<T: Float>(y: &[T], n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Empty("n (number of observations)"));
    }
    let expected = condensed_len(n).unwrap_or(usize::MAX);
    if y.len() != expected {
        return Err(Error::ShapeMismatch { what: "y", expected, got: y.len() });
    }
    if let Some(index) = y.iter().position(|v| !v.to_f64().is_finite()) {
        return Err(Error::NonFinite { what: "y", index });
    }
    Ok(())
}

fn widen<T: Float>(y: &[T]) -> Vec<f64> {
    y.iter().map(|v| v.to_f64()).collect()
}

/// Linkage of the condensed distance matrix `y` of `n` points with SciPy's algorithm for `method`.
///
/// Returns Z, `(n-1)·4` values (empty for `n == 1`), equal to
/// `scipy.cluster.hierarchy.linkage(y, method)` bit for bit on `f64` input (see the [module docs](self) for
/// the algorithms and their tie-breaking). `f32` input is widened to `f64`; the working copy takes
/// `8·n(n-1)/2` bytes except for `Single`, which only reads `y`.
///
/// # Errors
/// - [`Error::Empty`] if `n == 0`;
/// - [`Error::ShapeMismatch`] if `y.len() != n(n-1)/2`;
/// - [`Error::NonFinite`] with the index of the first NaN or ±inf in `y`;
/// - [`Error::InvalidArgument`] if intermediate distances become NaN/inf so that no pair can be merged (only
///   possible with negative or non-Euclidean input for ward/centroid/median, or with values near `f64::MAX`).
///
/// # Example
/// ```
/// use ac_kernels::linkage::{linkage, Method};
/// // Points 0, 1, 5 on a line: pairs (0,1)=1, (0,2)=5, (1,2)=4.
/// let z = linkage(&[1.0f64, 5.0, 4.0], 3, Method::Single).unwrap();
/// assert_eq!(z, vec![0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 4.0, 3.0]);
/// ```
pub fn linkage<T: Float>(y: &[T], n: usize, method: Method) -> Result<Vec<f64>> {
    check_condensed(y, n)?;
    if n == 1 {
        return Ok(Vec::new());
    }
    match method {
        Method::Single => mst::mst_core(y, n),
        _ => dispatch(&mut widen(y), n, method),
    }
}

/// [`linkage`] using `d` itself as the working matrix (no copy): `d` is overwritten with intermediate cluster
/// distances (left unchanged for `Single`).
///
/// With `W = f64` the result is identical to [`linkage`]. With `W = f32` the memory is halved but every
/// updated distance is rounded to `f32`, so heights and, near ties, merge order may differ from SciPy's.
///
/// # Errors
/// As [`linkage`].
pub fn linkage_in_place<W: Float>(d: &mut [W], n: usize, method: Method) -> Result<Vec<f64>> {
    check_condensed(d, n)?;
    if n == 1 {
        return Ok(Vec::new());
    }
    dispatch(d, n, method)
}

fn dispatch<W: Float>(d: &mut [W], n: usize, method: Method) -> Result<Vec<f64>> {
    match method {
        Method::Single => mst::mst_core(d, n),
        Method::Complete | Method::Average | Method::Weighted | Method::Ward => nn_chain::nn_chain_core(d, n, method),
        Method::Centroid | Method::Median => generic::generic_core(d, n, method),
    }
}

/// Single linkage by Prim's minimum spanning tree (SciPy's `mst_single_linkage`); `O(n²)` time, `O(n)` memory.
///
/// Z is sorted by height (stably) and labelled with union-find, as SciPy does.
///
/// # Errors
/// As [`linkage`].
pub fn mst<T: Float>(y: &[T], n: usize) -> Result<Vec<f64>> {
    check_condensed(y, n)?;
    if n == 1 {
        return Ok(Vec::new());
    }
    mst::mst_core(y, n)
}

/// Nearest-neighbour chain (SciPy's `nn_chain`) on a working `f64` copy of `y`; `O(n²)` time.
///
/// Only correct for the reducible methods (complete, average, weighted, ward, and single); for centroid and
/// median it returns *a* hierarchy but not the one [`generic`] finds. Z is sorted by height (stably) and
/// labelled with union-find, as SciPy does.
///
/// # Errors
/// As [`linkage`].
pub fn nn_chain<T: Float>(y: &[T], n: usize, method: Method) -> Result<Vec<f64>> {
    check_condensed(y, n)?;
    if n == 1 {
        return Ok(Vec::new());
    }
    nn_chain::nn_chain_core(&mut widen(y), n, method)
}

/// Müllner's generic algorithm (SciPy's `fast_linkage`) on a working `f64` copy of `y`; correct for every
/// method, Z in merge order (heights may decrease for centroid/median).
///
/// # Errors
/// As [`linkage`].
pub fn generic<T: Float>(y: &[T], n: usize, method: Method) -> Result<Vec<f64>> {
    check_condensed(y, n)?;
    if n == 1 {
        return Ok(Vec::new());
    }
    generic::generic_core(&mut widen(y), n, method)
}

/// The `O(n³)` textbook algorithm (SciPy's old `_hierarchy.linkage`): at each step merge the live pair at the
/// smallest distance, the lexicographically smallest `(i, j)` on ties. Slow; the oracle of the tests.
///
/// # Errors
/// As [`linkage`].
pub fn primitive<T: Float>(y: &[T], n: usize, method: Method) -> Result<Vec<f64>> {
    check_condensed(y, n)?;
    if n == 1 {
        return Ok(Vec::new());
    }
    primitive::primitive_core(&mut widen(y), n, method)
}
