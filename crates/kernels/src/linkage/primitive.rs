//! The textbook `O(n³)` algorithm (SciPy's `_hierarchy.linkage`), kept public as the test oracle.
use super::{cidx, degenerate};
use crate::float::Float;
use crate::linkage::Method;
use crate::Result;

const DEAD: usize = usize::MAX;

/// Core of [`super::primitive`]: `d` (validated, `n ≥ 2`) is the working matrix and is overwritten.
///
/// Each step scans every live pair in row-major order with a strict `<`, so among equal distances the
/// lexicographically smallest slot pair `(i, j)` is merged; Z comes out in merge order.
pub(crate) fn primitive_core<W: Float>(d: &mut [W], n: usize, method: Method) -> Result<Vec<f64>> {
    let mut z = vec![0.0f64; 4 * (n - 1)];
    let mut id_map: Vec<usize> = (0..n).collect();
    let mut size = vec![1usize; n];
    for k in 0..n - 1 {
        let mut current_min = f64::INFINITY;
        let (mut x, mut y) = (DEAD, DEAD);
        for i in 0..n - 1 {
            if id_map[i] == DEAD {
                continue;
            }
            let start = cidx(n, i, i + 1);
            for (j, v) in d[start..start + (n - i - 1)].iter().enumerate() {
                let v = v.to_f64();
                if v < current_min {
                    current_min = v;
                    x = i;
                    y = i + j + 1;
                }
            }
        }
        // Dead columns hold +inf, so an unfound pair means NaN/inf intermediate distances.
        if x == DEAD || id_map[y] == DEAD {
            return Err(degenerate(method, k));
        }
        let (id_x, id_y) = (id_map[x], id_map[y]);
        let (nx, ny) = (size[x], size[y]);
        z[4 * k] = id_x.min(id_y) as f64;
        z[4 * k + 1] = id_x.max(id_y) as f64;
        z[4 * k + 2] = current_min;
        z[4 * k + 3] = (nx + ny) as f64;
        id_map[x] = DEAD;
        id_map[y] = n + k;
        size[x] = 0;
        size[y] = nx + ny;
        for i in 0..n {
            if id_map[i] == DEAD || i == y {
                continue;
            }
            let (ix, iy) = (cidx(n, i, x), cidx(n, i, y));
            d[iy] = W::from_f64(method.update(d[ix].to_f64(), d[iy].to_f64(), current_min, nx, ny, size[i]));
            // Column x is dead: hide it from the row scans above (row x itself is skipped via id_map).
            if i < x {
                d[ix] = W::from_f64(f64::INFINITY);
            }
        }
    }
    Ok(z)
}
