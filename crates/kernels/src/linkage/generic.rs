//! Müllner's generic algorithm with a heap of nearest-neighbour candidates (SciPy's `fast_linkage`), used for
//! centroid and median, whose merge heights can decrease (inversions). Works for every method; best case
//! `O(n²)`, worst case `O(n³)`. Works in place on the condensed matrix and emits Z in merge order (unsorted,
//! ids assigned as the merges happen), exactly as SciPy does.
use super::{cidx, degenerate};
use crate::float::Float;
use crate::linkage::Method;
use crate::Result;

const NONE: usize = usize::MAX;

/// SciPy's binary min-heap of `(key, value)` with keys `0..len` and `change_value` by key.
///
/// Its exact sift rules (strict comparisons, left child preferred on ties) decide which of several equal
/// candidates is popped first, so they are reproduced literally.
struct Heap {
    index_by_key: Vec<usize>,
    key_by_index: Vec<usize>,
    values: Vec<f64>,
    size: usize,
}

impl Heap {
    fn new(values: Vec<f64>) -> Self {
        let size = values.len();
        let mut h = Heap { index_by_key: (0..size).collect(), key_by_index: (0..size).collect(), values, size };
        for i in (0..size / 2).rev() {
            h.sift_down(i);
        }
        h
    }

    fn get_min(&self) -> Option<(usize, f64)> {
        (self.size > 0).then(|| (self.key_by_index[0], self.values[0]))
    }

    fn remove_min(&mut self) {
        if self.size == 0 {
            return;
        }
        self.swap(0, self.size - 1);
        self.size -= 1;
        self.sift_down(0);
    }

    fn change_value(&mut self, key: usize, value: f64) {
        let index = self.index_by_key[key];
        let old = self.values[index];
        self.values[index] = value;
        // A removed key (only reachable after NaN intermediate distances) must not re-enter the heap.
        if index >= self.size {
            return;
        }
        if value < old {
            self.sift_up(index);
        } else {
            self.sift_down(index);
        }
    }

    fn sift_up(&mut self, mut index: usize) {
        while index > 0 {
            let parent = (index - 1) >> 1;
            if self.values[parent] > self.values[index] {
                self.swap(index, parent);
                index = parent;
            } else {
                break;
            }
        }
    }

    fn sift_down(&mut self, mut index: usize) {
        let mut child = 2 * index + 1;
        while child < self.size {
            if child + 1 < self.size && self.values[child + 1] < self.values[child] {
                child += 1;
            }
            if self.values[index] > self.values[child] {
                self.swap(index, child);
                index = child;
                child = 2 * index + 1;
            } else {
                break;
            }
        }
    }

    fn swap(&mut self, i: usize, j: usize) {
        self.values.swap(i, j);
        let (ki, kj) = (self.key_by_index[i], self.key_by_index[j]);
        self.key_by_index[i] = kj;
        self.key_by_index[j] = ki;
        self.index_by_key[ki] = j;
        self.index_by_key[kj] = i;
    }
}

/// Nearest live slot `> x` (first strict minimum in increasing order) and its distance; `NONE`/inf if none.
fn find_min_dist<W: Float>(d: &[W], n: usize, size: &[usize], x: usize) -> (usize, f64) {
    let mut current_min = f64::INFINITY;
    let mut y = NONE;
    if x + 1 < n {
        let start = cidx(n, x, x + 1);
        for (off, v) in d[start..start + (n - x - 1)].iter().enumerate() {
            let i = x + 1 + off;
            let dist = v.to_f64();
            if size[i] != 0 && dist < current_min {
                current_min = dist;
                y = i;
            }
        }
    }
    (y, current_min)
}

/// Core of [`super::generic`]: `d` (validated, `n ≥ 2`) is the working matrix and is overwritten.
///
/// Tie-breaking, as in SciPy: each slot `x` keeps a candidate `neighbor[x] > x` (first strict minimum in
/// increasing slot order) and a lower bound `min_dist[x]` in the heap; the pair popped first (heap order,
/// see [`Heap`]) whose bound is still exact is merged; the merged cluster lives in the higher slot.
#[allow(clippy::needless_range_loop)] // Kept as SciPy's index loops, to be checked line by line.
pub(crate) fn generic_core<W: Float>(d: &mut [W], n: usize, method: Method) -> Result<Vec<f64>> {
    let mut z = vec![0.0f64; 4 * (n - 1)];
    let mut size = vec![1usize; n];
    let mut cluster_id: Vec<usize> = (0..n).collect();
    let mut neighbor = vec![NONE; n - 1];
    let mut min_dist = vec![f64::INFINITY; n - 1];
    for x in 0..n - 1 {
        let (y, dist) = find_min_dist(d, n, &size, x);
        neighbor[x] = y;
        min_dist[x] = dist;
    }
    let mut heap = Heap::new(min_dist.clone());

    for k in 0..n - 1 {
        let (mut x, mut y, mut dist) = (NONE, NONE, f64::NAN);
        // SciPy bounds this search by n - k candidate refreshes rather than looping "while true".
        for _ in 0..n - k {
            let Some((hx, hd)) = heap.get_min() else { break };
            x = hx;
            dist = hd;
            y = neighbor[x];
            if y != NONE && dist == d[cidx(n, x, y)].to_f64() {
                break;
            }
            let (ny, nd) = find_min_dist(d, n, &size, x);
            y = ny;
            dist = nd;
            neighbor[x] = y;
            min_dist[x] = dist;
            heap.change_value(x, dist);
        }
        heap.remove_min();
        // Only NaN intermediate distances (negative/non-Euclidean input) can leave no valid pair.
        if x == NONE || y == NONE || size[x] == 0 || size[y] == 0 || x == y {
            return Err(degenerate(method, k));
        }

        let (nx, ny) = (size[x], size[y]);
        let (id_x, id_y) = (cluster_id[x], cluster_id[y]);
        let (lo, hi) = if id_x > id_y { (id_y, id_x) } else { (id_x, id_y) };
        z[4 * k] = lo as f64;
        z[4 * k + 1] = hi as f64;
        z[4 * k + 2] = dist;
        z[4 * k + 3] = (nx + ny) as f64;
        size[x] = 0;
        size[y] = nx + ny;
        cluster_id[y] = n + k;

        for i in 0..n {
            let ni = size[i];
            if ni == 0 || i == y {
                continue;
            }
            let (ix, iy) = (cidx(n, i, x), cidx(n, i, y));
            d[iy] = W::from_f64(method.update(d[ix].to_f64(), d[iy].to_f64(), dist, nx, ny, ni));
        }
        // Reassign neighbour candidates from x to y (a logical guess; checked when popped).
        for i in 0..x.min(n - 1) {
            if size[i] > 0 && neighbor[i] == x {
                neighbor[i] = y;
            }
        }
        // Update the lower bounds of the slots before y.
        for i in 0..y.min(n - 1) {
            if size[i] == 0 {
                continue;
            }
            let di = d[cidx(n, i, y)].to_f64();
            if di < min_dist[i] {
                neighbor[i] = y;
                min_dist[i] = di;
                heap.change_value(i, di);
            }
        }
        // Nearest neighbour of the new cluster.
        if y < n - 1 {
            let (nz, nd) = find_min_dist(d, n, &size, y);
            if nz != NONE {
                neighbor[y] = nz;
                min_dist[y] = nd;
                heap.change_value(y, nd);
            }
        }
    }
    Ok(z)
}
