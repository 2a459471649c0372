//! Agglomerative clustering with SciPy's semantics and output. (STUB: being implemented.)
use crate::float::Float;
use crate::{Error, Result};

/// Linkage methods, SciPy's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Minimum distance.
    Single,
    /// Maximum distance.
    Complete,
    /// UPGMA.
    Average,
    /// WPGMA.
    Weighted,
    /// Ward's minimum variance.
    Ward,
    /// UPGMC.
    Centroid,
    /// WPGMC.
    Median,
}

impl std::str::FromStr for Method {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "single" => Method::Single,
            "complete" => Method::Complete,
            "average" => Method::Average,
            "weighted" => Method::Weighted,
            "ward" => Method::Ward,
            "centroid" => Method::Centroid,
            "median" => Method::Median,
            _ => {
                return Err(Error::InvalidMethod(format!(
                    "{s} (expected single, complete, average, weighted, ward, centroid, median)"
                )))
            }
        })
    }
}

/// Linkage of a condensed distance matrix `y` of `n` points; returns Z, `(n-1)*4` f64 values.
pub fn linkage<T: Float>(y: &[T], n: usize, method: Method) -> Result<Vec<f64>> {
    let _ = (y, n, method);
    Err(Error::InvalidArgument("linkage: not implemented yet".into()))
}
