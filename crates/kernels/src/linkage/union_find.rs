//! Post-processing of the MST and NN-chain algorithms: SciPy's stable sort by height and union-find relabelling.
//!
//! Both algorithms record merges as pairs of *slots* (point indices that stand for the clusters living in
//! them), not in height order. SciPy then (1) sorts the rows by height with a stable merge sort
//! (`np.argsort(Z[:, 2], kind='mergesort')`), so tied heights keep their discovery order, and (2) walks the
//! sorted rows with a union-find to turn slots into cluster ids `n + i` (`label`). We do the same.

/// Stable sort of the rows of `z` (`rows × 4`) by column 2, with NumPy's order: NaN after every number, ties
/// (including `-0.0` vs `0.0`) in their original order.
pub(crate) fn sort_rows_by_height(z: &mut [f64]) {
    let rows = z.len() / 4;
    let mut order: Vec<usize> = (0..rows).collect();
    // `sort_by` is a stable merge sort, like NumPy's `kind='mergesort'`.
    order.sort_by(|&a, &b| {
        let (ha, hb) = (z[4 * a + 2], z[4 * b + 2]);
        match (ha.is_nan(), hb.is_nan()) {
            (false, false) => ha.partial_cmp(&hb).unwrap_or(std::cmp::Ordering::Equal),
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
        }
    });
    let sorted: Vec<f64> = order.iter().flat_map(|&r| z[4 * r..4 * r + 4].iter().copied()).collect();
    z.copy_from_slice(&sorted);
}

/// SciPy's `LinkageUnionFind`: nodes `0..2n-1`, a merge creates the next label `n, n+1, …`.
pub(crate) struct LinkageUnionFind {
    parent: Vec<usize>,
    size: Vec<usize>,
    next_label: usize,
}

impl LinkageUnionFind {
    /// A forest of `n` singletons (room for the `n - 1` merged nodes).
    pub(crate) fn new(n: usize) -> Self {
        let m = 2 * n - 1;
        LinkageUnionFind { parent: (0..m).collect(), size: vec![1; m], next_label: n }
    }

    /// Merge two roots into a new node; returns the size of the new cluster.
    pub(crate) fn merge(&mut self, x: usize, y: usize) -> usize {
        let l = self.next_label;
        self.parent[x] = l;
        self.parent[y] = l;
        let s = self.size[x] + self.size[y];
        self.size[l] = s;
        self.next_label += 1;
        s
    }

    /// Root of `x`, with full path compression (iterative).
    pub(crate) fn find(&mut self, mut x: usize) -> usize {
        let mut p = x;
        while self.parent[x] != x {
            x = self.parent[x];
        }
        while self.parent[p] != x {
            let next = self.parent[p];
            self.parent[p] = x;
            p = next;
        }
        x
    }
}

/// SciPy's `label`: rewrite columns 0, 1 and 3 of the (height-sorted) rows so that they name cluster ids
/// (`a < b`) and sizes. Columns 0 and 1 hold slot indices `< n` on entry.
pub(crate) fn label(z: &mut [f64], n: usize) {
    let mut uf = LinkageUnionFind::new(n);
    for row in z.chunks_exact_mut(4) {
        let (x, y) = (row[0] as usize, row[1] as usize);
        let (xr, yr) = (uf.find(x), uf.find(y));
        if xr < yr {
            row[0] = xr as f64;
            row[1] = yr as f64;
        } else {
            row[0] = yr as f64;
            row[1] = xr as f64;
        }
        row[3] = uf.merge(xr, yr) as f64;
    }
}
