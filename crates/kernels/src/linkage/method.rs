//! The linkage methods and their Lance–Williams distance updates.
//!
//! The update rules live here and only here, one `#[inline]` function per method. They are written exactly as
//! SciPy's `_hierarchy_distance_update.pxi` writes them, *including the order of the floating-point
//! operations* (`(nx·d_xi + ny·d_yi) / (nx + ny)`, not `d_xi·nx/(nx+ny) + …`), because that order is what makes
//! our linkage matrices equal to SciPy's bit for bit. In particular we do **not** use the "squaring trick" of
//! fastcluster/kodama (running Ward/centroid/median on squared distances and taking square roots at the end):
//! it is faster by a few percent but rounds differently from SciPy.
//!
//! Cluster sizes enter as `f64`: SciPy passes C `int`s, which the C arithmetic converts to `double` before
//! multiplying with a distance; `size_x * size_y` (centroid) is an integer product, exact in `f64` for any
//! product below 2⁵³, so `(nx as f64) * (ny as f64)` gives the identical value.
use crate::{Error, Result};

/// Linkage methods, with SciPy's names (`FromStr` accepts `"single"`, `"complete"`, …).
///
/// Each variant documents the distance between the merged cluster `x ∪ y` and another cluster `i`, given the
/// distances `d(x,i)`, `d(y,i)`, `d(x,y)` and the cluster sizes `nx`, `ny`, `ni` (the Lance–Williams form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// Nearest point (minimum spanning tree).
    ///
    /// ```text
    /// d(x∪y, i) = min(d(x,i), d(y,i))
    /// ```
    Single,
    /// Farthest point.
    ///
    /// ```text
    /// d(x∪y, i) = max(d(x,i), d(y,i))
    /// ```
    Complete,
    /// UPGMA: mean distance over all pairs of points.
    ///
    /// ```text
    /// d(x∪y, i) = (nx·d(x,i) + ny·d(y,i)) / (nx + ny)
    /// ```
    Average,
    /// WPGMA: the two halves weigh the same, whatever their sizes.
    ///
    /// ```text
    /// d(x∪y, i) = (d(x,i) + d(y,i)) / 2
    /// ```
    Weighted,
    /// Ward's minimum variance (needs Euclidean input distances).
    ///
    /// ```text
    /// d(x∪y, i) = sqrt( ((ni+nx)·d(x,i)² + (ni+ny)·d(y,i)² − ni·d(x,y)²) / (nx+ny+ni) )
    /// ```
    /// which equals `sqrt(2·|A||B|/(|A|+|B|))·‖c_A − c_B‖` between clusters `A`, `B` with centroids `c`.
    Ward,
    /// UPGMC: distance between centroids (needs Euclidean input distances; Z may be non-monotone).
    ///
    /// ```text
    /// d(x∪y, i) = sqrt( (nx·d(x,i)² + ny·d(y,i)² − nx·ny·d(x,y)²/(nx+ny)) / (nx+ny) )
    /// ```
    Centroid,
    /// WPGMC: distance between "midpoints" (needs Euclidean input distances; Z may be non-monotone).
    ///
    /// ```text
    /// d(x∪y, i) = sqrt( (d(x,i)² + d(y,i)²)/2 − d(x,y)²/4 )
    /// ```
    Median,
}

impl Method {
    /// All methods, in SciPy's documentation order.
    pub const ALL: [Method; 7] = [
        Method::Single,
        Method::Complete,
        Method::Average,
        Method::Weighted,
        Method::Ward,
        Method::Centroid,
        Method::Median,
    ];

    /// SciPy's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Single => "single",
            Method::Complete => "complete",
            Method::Average => "average",
            Method::Weighted => "weighted",
            Method::Ward => "ward",
            Method::Centroid => "centroid",
            Method::Median => "median",
        }
    }

    /// Whether the method satisfies the reducibility property (no inversions, so the nearest-neighbour chain
    /// is valid). False for centroid and median, whose Z may have decreasing heights.
    pub fn is_reducible(self) -> bool {
        !matches!(self, Method::Centroid | Method::Median)
    }

    /// Lance–Williams update: distance between `x ∪ y` and `i` (see the variant docs for the formulas).
    #[inline]
    pub fn update(self, d_xi: f64, d_yi: f64, d_xy: f64, nx: usize, ny: usize, ni: usize) -> f64 {
        match self {
            Method::Single => single(d_xi, d_yi),
            Method::Complete => complete(d_xi, d_yi),
            Method::Average => average(d_xi, d_yi, nx, ny),
            Method::Weighted => weighted(d_xi, d_yi),
            Method::Ward => ward(d_xi, d_yi, d_xy, nx, ny, ni),
            Method::Centroid => centroid(d_xi, d_yi, d_xy, nx, ny),
            Method::Median => median(d_xi, d_yi, d_xy),
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Method::ALL.iter().copied().find(|m| m.as_str() == s).ok_or_else(|| {
            Error::InvalidMethod(format!(
                "{s} (expected single, complete, average, weighted, ward, centroid, median)"
            ))
        })
    }
}

/// `min(d_xi, d_yi)`, written as Cython's `min` is compiled (`b < a ? b : a`), so that even the sign of a zero
/// matches.
#[inline]
pub fn single(d_xi: f64, d_yi: f64) -> f64 {
    if d_yi < d_xi {
        d_yi
    } else {
        d_xi
    }
}

/// `max(d_xi, d_yi)`, as Cython's `max` (`b > a ? b : a`).
#[inline]
pub fn complete(d_xi: f64, d_yi: f64) -> f64 {
    if d_yi > d_xi {
        d_yi
    } else {
        d_xi
    }
}

/// `(nx·d_xi + ny·d_yi) / (nx + ny)`.
#[inline]
pub fn average(d_xi: f64, d_yi: f64, nx: usize, ny: usize) -> f64 {
    (nx as f64 * d_xi + ny as f64 * d_yi) / (nx + ny) as f64
}

/// `0.5·(d_xi + d_yi)`.
#[inline]
pub fn weighted(d_xi: f64, d_yi: f64) -> f64 {
    0.5 * (d_xi + d_yi)
}

/// `sqrt((ni+nx)·t·d_xi² + (ni+ny)·t·d_yi² − ni·t·d_xy²)` with `t = 1/(nx+ny+ni)`, in SciPy's operation order.
#[inline]
pub fn ward(d_xi: f64, d_yi: f64, d_xy: f64, nx: usize, ny: usize, ni: usize) -> f64 {
    let t = 1.0 / (nx + ny + ni) as f64;
    ((ni + nx) as f64 * t * d_xi * d_xi + (ni + ny) as f64 * t * d_yi * d_yi - ni as f64 * t * d_xy * d_xy).sqrt()
}

/// `sqrt(((nx·d_xi² + ny·d_yi²) − nx·ny·d_xy²/(nx+ny)) / (nx+ny))`, in SciPy's operation order.
#[inline]
pub fn centroid(d_xi: f64, d_yi: f64, d_xy: f64, nx: usize, ny: usize) -> f64 {
    let s = (nx + ny) as f64;
    (((nx as f64 * d_xi * d_xi) + (ny as f64 * d_yi * d_yi) - ((nx as f64) * (ny as f64)) * d_xy * d_xy / s) / s).sqrt()
}

/// `sqrt(0.5·(d_xi² + d_yi²) − 0.25·d_xy²)`.
#[inline]
pub fn median(d_xi: f64, d_yi: f64, d_xy: f64) -> f64 {
    (0.5 * (d_xi * d_xi + d_yi * d_yi) - 0.25 * d_xy * d_xy).sqrt()
}
