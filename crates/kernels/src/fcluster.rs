//! Flat clusters from a linkage matrix Z (SciPy's layout: `n - 1` rows `[a, b, height, size]`, the cluster of
//! row `i` having id `n + i`).
//!
//! - [`cut_k`]: exactly `k` clusters, by applying the first `n - k` rows of Z (SciPy's
//!   `cut_tree(Z, n_clusters=k)`).
//! - [`cut_height`]: SciPy's `fcluster(Z, h, criterion='distance')`: a row is applied when its height *and the
//!   heights of all the rows below it* are `≤ h`; for a monotone Z (every method but centroid/median) that is
//!   simply "the rows with height ≤ h".
//!
//! Both write **0-based** labels numbered in order of first appearance over the observations `0..n` (the
//! cluster of observation 0 is 0, the next new cluster met is 1, …). SciPy's `cut_tree` numbers clusters the
//! same way; `fcluster` numbers differently (1-based, in dendrogram order), which the TS layer reproduces.
//! Everything is iterative (union-find, no recursion), so deep trees cannot overflow the stack.
use crate::output;
use crate::{Error, Result};

/// Checks Z for `n` points: `n ≥ 1`, length `(n-1)·4`, finite, integer ids with `id < n + i` at row `i`,
/// each id merged at most once, `a != b`, non-negative heights, sizes equal to the sum of the children's.
///
/// # Errors
/// [`Error::Empty`] (`n == 0`), [`Error::ShapeMismatch`] (length), [`Error::NonFinite`] (index of the first
/// non-finite value), [`Error::InvalidArgument`] for the structural checks.
pub fn check_linkage_matrix(z: &[f64], n: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Empty("n (number of observations)"));
    }
    let expected = (n - 1).saturating_mul(4);
    if z.len() != expected {
        return Err(Error::ShapeMismatch { what: "Z", expected, got: z.len() });
    }
    if let Some(index) = z.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: "Z", index });
    }
    let mut size = vec![0usize; 2 * n - 1];
    size[..n].fill(1);
    let mut used = vec![false; 2 * n - 1];
    for (i, row) in z.chunks_exact(4).enumerate() {
        for &id in &row[..2] {
            if id < 0.0 || id.fract() != 0.0 || id >= (n + i) as f64 {
                return Err(Error::InvalidArgument(format!(
                    "Z: row {i} has cluster id {id}; expected an integer in [0, {})",
                    n + i
                )));
            }
            if used[id as usize] {
                return Err(Error::InvalidArgument(format!("Z: cluster id {id} is merged twice (row {i})")));
            }
            used[id as usize] = true;
        }
        let (a, b) = (row[0] as usize, row[1] as usize);
        if row[2] < 0.0 {
            return Err(Error::InvalidArgument(format!("Z: row {i} has negative height {}", row[2])));
        }
        let s = size[a] + size[b];
        if row[3] != s as f64 {
            return Err(Error::InvalidArgument(format!(
                "Z: row {i} has size {}; its children hold {s} observations",
                row[3]
            )));
        }
        size[n + i] = s;
    }
    Ok(())
}

/// Union-find with path halving over the `2n - 1` nodes of a dendrogram.
struct Forest(Vec<usize>);

impl Forest {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        self.0[ra] = rb;
    }
}

/// Applies the rows `i` of Z with `keep(i)`, then labels the observations by first appearance of their root.
fn apply_rows(z: &[f64], n: usize, keep: impl Fn(usize) -> bool, out: &mut [i32]) {
    let mut f = Forest((0..2 * n - 1).collect());
    for (i, row) in z.chunks_exact(4).enumerate() {
        if keep(i) {
            f.union(row[0] as usize, n + i);
            f.union(row[1] as usize, n + i);
        }
    }
    // Root → label; roots are node ids < 2n - 1, so a flat table does.
    let mut label_of = vec![-1i32; 2 * n - 1];
    let mut next = 0i32;
    for (j, o) in out.iter_mut().enumerate() {
        let r = f.find(j);
        if label_of[r] < 0 {
            label_of[r] = next;
            next += 1;
        }
        *o = label_of[r];
    }
}

fn check_out(out: &[i32], n: usize) -> Result<()> {
    if out.len() != n {
        return Err(Error::ShapeMismatch { what: "out", expected: n, got: out.len() });
    }
    Ok(())
}

/// Cuts Z (of `n` points) into exactly `k` clusters by applying its first `n - k` rows (SciPy's
/// `cut_tree(Z, n_clusters=k)`); writes **0-based** labels in order of first appearance into `out` (length `n`).
///
/// # Errors
/// As [`check_linkage_matrix`]; [`Error::ShapeMismatch`] if `out.len() != n`; [`Error::KOutOfRange`] unless
/// `1 ≤ k ≤ n`.
pub fn cut_k(z: &[f64], n: usize, k: usize, out: &mut [i32]) -> Result<()> {
    check_linkage_matrix(z, n)?;
    check_out(out, n)?;
    if k < 1 || k > n {
        return Err(Error::KOutOfRange { k, n });
    }
    apply_rows(z, n, |i| i < n - k, out);
    Ok(())
}

/// Cuts Z keeping the merges whose subtree's maximum height is `≤ height` (SciPy's
/// `fcluster(Z, height, criterion='distance')`; for a monotone Z: the rows with height `≤ height`); writes
/// **0-based** labels in order of first appearance into `out` (length `n`).
///
/// # Errors
/// As [`check_linkage_matrix`]; [`Error::ShapeMismatch`] if `out.len() != n`; [`Error::InvalidArgument`] if
/// `height` is NaN.
pub fn cut_height(z: &[f64], n: usize, height: f64, out: &mut [i32]) -> Result<()> {
    check_linkage_matrix(z, n)?;
    check_out(out, n)?;
    if height.is_nan() {
        return Err(Error::InvalidArgument("height: expected a number, got NaN".into()));
    }
    // Maximum height in each row's subtree (SciPy's `get_max_dist_for_each_cluster`); children precede
    // parents in Z, so one forward pass does.
    let mut max_dist = vec![0.0f64; n.saturating_sub(1)];
    for (i, row) in z.chunks_exact(4).enumerate() {
        let mut m = row[2];
        for &id in &row[..2] {
            let id = id as usize;
            if id >= n {
                m = m.max(max_dist[id - n]);
            }
        }
        max_dist[i] = m;
    }
    apply_rows(z, n, |i| max_dist[i] <= height, out);
    Ok(())
}

/// Output length `n` of the cuts: Z must hold the `(n-1) × 4` values of `n` points (checked before the `n` labels are
/// allocated, as `z`); `n = 0` is left to the kernel.
fn labels_len(z: &[f64], n: usize) -> Result<Option<usize>> {
    if n == 0 {
        return Ok(None);
    }
    let expected = output::mul(n - 1, 4).ok_or_else(|| Error::InvalidArgument(format!("z: {} × 4 overflows usize", n - 1)))?;
    if z.len() != expected {
        return Err(Error::ShapeMismatch { what: "z", expected, got: z.len() });
    }
    Ok(Some(n))
}

/// [`cut_k`] into a new output of `n` labels.
///
/// # Errors
/// As [`cut_k`] (a wrong length of Z comes first, as `z`); [`Error::InvalidArgument`] if the output cannot be
/// allocated.
pub fn cut_k_vec(z: &[f64], n: usize, k: usize) -> Result<Vec<i32>> {
    output::with_output("cutK", labels_len(z, n)?, |out| cut_k(z, n, k, out))
}

/// [`cut_height`] into a new output of `n` labels.
///
/// # Errors
/// As [`cut_height`] (a wrong length of Z comes first, as `z`); [`Error::InvalidArgument`] if the output cannot be
/// allocated.
pub fn cut_height_vec(z: &[f64], n: usize, height: f64) -> Result<Vec<i32>> {
    output::with_output("cutHeight", labels_len(z, n)?, |out| cut_height(z, n, height, out))
}
