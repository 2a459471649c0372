//! Grouped nearest-neighbour search: the distance from each query row to its nearest row in each group of the
//! base (one group = one image's patches), reduced per group, to the minimum, or to the mean over the other
//! groups. The min-reduction is fused into GEMM-like tiles. (STUB: being implemented.)
use crate::{Error, Result};

/// What the per-group nearest distances `dmin[q][g]` are reduced to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupedMode {
    /// Keep the full `nq × ngroups` matrix.
    PerGroup,
    /// Minimum over all groups (`nq` values).
    Min,
    /// Mean over groups other than the query's own (`nq` values).
    MeanExcludingOwn,
}

impl std::str::FromStr for GroupedMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "per-group" => Ok(GroupedMode::PerGroup),
            "min" => Ok(GroupedMode::Min),
            "mean-excluding-own" => Ok(GroupedMode::MeanExcludingOwn),
            _ => Err(Error::InvalidMethod(format!("{s} (expected per-group, min, mean-excluding-own)"))),
        }
    }
}

/// Grouped nearest-neighbour search.
///
/// - `q`: `nq*d` query rows; `base`: rows, groups stored contiguously, `offsets` (length ngroups+1, starts at 0,
///   non-decreasing, ends at `base.len()/d`, each group non-empty).
/// - `query_groups`: required for [`GroupedMode::MeanExcludingOwn`] (length `nq`, -1 = exclude nothing).
/// - `out`: `nq*ngroups` for `PerGroup`, else `nq`.
#[allow(clippy::too_many_arguments)]
pub fn grouped_nn_f32(
    q: &[f32],
    nq: usize,
    base: &[f32],
    offsets: &[u32],
    d: usize,
    mode: GroupedMode,
    query_groups: Option<&[i32]>,
    squared: bool,
    out: &mut [f32],
) -> Result<()> {
    let _ = (q, nq, base, offsets, d, mode, query_groups, squared, out);
    Err(Error::InvalidArgument("grouped_nn_f32: not implemented yet".into()))
}

/// Multi-threaded [`grouped_nn_f32`] (rayon global pool), same arguments and results.
#[cfg(feature = "parallel")]
#[allow(clippy::too_many_arguments)]
pub fn grouped_nn_f32_par(
    q: &[f32],
    nq: usize,
    base: &[f32],
    offsets: &[u32],
    d: usize,
    mode: GroupedMode,
    query_groups: Option<&[i32]>,
    squared: bool,
    out: &mut [f32],
) -> Result<()> {
    grouped_nn_f32(q, nq, base, offsets, d, mode, query_groups, squared, out)
}
