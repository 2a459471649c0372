//! Grouped nearest-neighbour search: the distance from each query row to its nearest row in each group of the
//! base (one group = one image's patches), kept per group, reduced to the minimum, or to the mean over the
//! other groups.
//!
//! This is the cost centre of the unsupervised patch weights (`s_im = mean_{j≠i} min_m' ‖z_im − z_jm'‖`,
//! O(N²M²D)), so it never materialises a distance matrix: the min over a group's rows is fused into the GEMM
//! micro-kernel ([`crate::simd`]). Base rows sit on the micro-tile's 6-row side, queries on its 16-lane side, so
//! the reduction is a lane-wise `min` of `‖b‖² − 2·q·b` over the 6 rows, carried in a running minimum per
//! (query, group); `‖q‖²` is added, the result clamped at 0 and square-rooted only once per (query, group).
//! Queries are packed once per block of 256 and reused against the whole base; base rows are copied per
//! 144-row chunk inside one group (a partial last tile repeats the group's last row, which cannot change a min).
//!
//! Numerics: both sides are centred on the base's mean row (free, during packing), which removes the
//! cancellation error a large common offset would cause; the remaining error of a squared distance is of the
//! order of `1e-6 × (‖q−μ‖² + ‖b−μ‖²)`.
use crate::distance::check_matrix;
use crate::simd::block::{self, Scratch, MC, QB};
use crate::simd::{self, Kernels, NR};
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
            _ => Err(Error::InvalidMethod(format!(
                "{s} (expected per-group, min, mean-excluding-own)"
            ))),
        }
    }
}

/// Validated shapes of one call.
struct Shape {
    nb: usize,
    ngroups: usize,
    out_per_query: usize,
}

#[allow(clippy::too_many_arguments)]
fn validate(
    q: &[f32],
    nq: usize,
    base: &[f32],
    offsets: &[u32],
    d: usize,
    mode: GroupedMode,
    query_groups: Option<&[i32]>,
    out: &[f32],
) -> Result<Shape> {
    check_matrix("q", q.len(), nq, d)?;
    if !base.len().is_multiple_of(d) {
        let nb = base.len() / d;
        return Err(Error::ShapeMismatch {
            what: "base",
            expected: nb * d,
            got: base.len(),
        });
    }
    let nb = base.len() / d;
    let Some((&first, _)) = offsets.split_first() else {
        return Err(Error::InvalidArgument(
            "offsets: expected ngroups+1 values starting at 0, got none".into(),
        ));
    };
    if first != 0 {
        return Err(Error::InvalidArgument(format!("offsets: must start at 0, got {first}")));
    }
    for (g, w) in offsets.windows(2).enumerate() {
        if w[1] <= w[0] {
            return Err(Error::InvalidArgument(format!(
                "offsets: group {g} must be non-empty (offsets strictly increasing), got {}..{}",
                w[0], w[1]
            )));
        }
    }
    let last = offsets[offsets.len() - 1] as usize;
    if last != nb {
        return Err(Error::InvalidArgument(format!(
            "offsets: must end at the number of base rows {nb} (base.len()/d), got {last}"
        )));
    }
    let ngroups = offsets.len() - 1;
    if mode == GroupedMode::MeanExcludingOwn {
        match query_groups {
            None => {
                return Err(Error::InvalidArgument(
                    "query_groups: required for mode mean-excluding-own (length nq, -1 = exclude nothing)".into(),
                ))
            }
            Some(g) if g.len() != nq => {
                return Err(Error::ShapeMismatch {
                    what: "query_groups",
                    expected: nq,
                    got: g.len(),
                })
            }
            _ => {}
        }
    }
    if mode == GroupedMode::Min && ngroups == 0 && nq > 0 {
        return Err(Error::Empty("base (mode min needs at least one group)"));
    }
    let out_per_query = if mode == GroupedMode::PerGroup { ngroups } else { 1 };
    let expected = nq
        .checked_mul(out_per_query)
        .ok_or_else(|| Error::InvalidArgument(format!("grouped_nn: {nq} × {ngroups} overflows usize")))?;
    if out.len() != expected {
        return Err(Error::ShapeMismatch {
            what: "out",
            expected,
            got: out.len(),
        });
    }
    Ok(Shape {
        nb,
        ngroups,
        out_per_query,
    })
}

/// Shared state of one call.
struct Ctx<'a> {
    kern: &'static Kernels,
    q: &'a [f32],
    base: &'a [f32],
    offsets: &'a [u32],
    d: usize,
    mode: GroupedMode,
    query_groups: Option<&'a [i32]>,
    squared: bool,
    ngroups: usize,
    mu: Vec<f32>,
    bn: Vec<f32>,
}

impl Ctx<'_> {
    /// The query's own group if it is to be excluded (mode `MeanExcludingOwn`, id in range), else `None`.
    #[inline]
    fn own(&self, i: usize) -> Option<usize> {
        match (self.mode, self.query_groups) {
            (GroupedMode::MeanExcludingOwn, Some(qg)) => {
                let g = qg[i];
                (g >= 0 && (g as usize) < self.ngroups).then_some(g as usize)
            }
            _ => None,
        }
    }

    /// Queries `q0..q1` into `out` (`(q1−q0) × out_per_query`).
    fn block(&self, q0: usize, q1: usize, out: &mut [f32]) {
        let ng = self.ngroups;
        let root = |v: f32| if self.squared { v } else { v.sqrt() };
        match self.mode {
            GroupedMode::PerGroup => {
                self.squared_mins(q0, q1, out);
                out.iter_mut().for_each(|v| *v = root(*v));
            }
            GroupedMode::Min => {
                let mut dm = vec![0.0f32; (q1 - q0) * ng];
                self.squared_mins(q0, q1, &mut dm);
                for (o, row) in out.iter_mut().zip(dm.chunks_exact(ng)) {
                    *o = root(row.iter().fold(f32::INFINITY, |a, &b| if b < a { b } else { a }));
                }
            }
            GroupedMode::MeanExcludingOwn => {
                let mut dm = vec![0.0f32; (q1 - q0) * ng];
                self.squared_mins(q0, q1, &mut dm);
                for (i, (o, row)) in out.iter_mut().zip(dm.chunks_exact(ng)).enumerate() {
                    let own = self.own(q0 + i);
                    let (mut sum, mut cnt) = (0.0f64, 0usize);
                    for (g, &v) in row.iter().enumerate() {
                        if Some(g) != own {
                            sum += root(v) as f64;
                            cnt += 1;
                        }
                    }
                    *o = if cnt == 0 { 0.0 } else { (sum / cnt as f64) as f32 };
                }
            }
        }
    }

    /// Squared nearest distances of queries `q0..q1` to every group into `dm` (`(q1−q0) × ngroups`). Entries
    /// of a group excluded by every query of the block are left untouched (the caller never reads them).
    fn squared_mins(&self, q0: usize, q1: usize, dm: &mut [f32]) {
        let (kern, d, ng) = (self.kern, self.d, self.ngroups);
        let m = q1 - q0;
        let mut packed = Vec::new();
        let np = block::pack_panels(self.q, d, q0..q1, &self.mu, &mut packed);
        let qn: Vec<f32> = (q0..q1).map(|i| kern.l2sq(&self.q[i * d..][..d], &self.mu)).collect();
        // A group that every query of the block excludes (the usual case when queries = base) is skipped.
        let skip = self.own(q0).filter(|&g| (q0..q1).all(|i| self.own(i) == Some(g)));
        let mut runmin = vec![f32::INFINITY; np * NR];
        let mut s = Scratch::default();
        for g in 0..ng {
            if skip == Some(g) {
                continue;
            }
            runmin.fill(f32::INFINITY);
            let (g0, g1) = (self.offsets[g] as usize, self.offsets[g + 1] as usize);
            let mut c0 = g0;
            while c0 < g1 {
                let c1 = (c0 + MC).min(g1);
                let runs = runmin.as_chunks_mut::<NR>().0;
                block::chunk_pass(kern, self.base, d, c0, c1, &self.mu, &packed, np, &mut s, |k, t| {
                    // Padding rows repeat the tile's last valid row, as `chunk_pass` copied them.
                    let an: [f32; simd::MR] = std::array::from_fn(|r| self.bn[t.row0 + r.min(t.rows - 1)]);
                    k.tile_min(t.kc, t.a, t.lda, t.b, t.c, t.acc, &an, &mut runs[t.panel]);
                });
                c0 = c1;
            }
            for (i, &v) in runmin[..m].iter().enumerate() {
                // ‖q‖² + min(‖b‖² − 2q·b), clamped: the rounding of the GEMM form can go slightly negative.
                dm[i * ng + g] = (qn[i] + v).max(0.0);
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn setup<'a>(
    q: &'a [f32],
    nq: usize,
    base: &'a [f32],
    offsets: &'a [u32],
    d: usize,
    mode: GroupedMode,
    query_groups: Option<&'a [i32]>,
    squared: bool,
    out: &mut [f32],
) -> Result<Option<(Ctx<'a>, usize)>> {
    let shape = validate(q, nq, base, offsets, d, mode, query_groups, out)?;
    if nq == 0 {
        return Ok(None);
    }
    if shape.ngroups == 0 {
        // Only PerGroup (empty out) and MeanExcludingOwn (mean over no group = 0) reach here.
        out.fill(0.0);
        return Ok(None);
    }
    let kern = simd::kernels();
    let mu = block::mean_row(base, d);
    let mut bn = vec![0.0f32; shape.nb];
    block::centred_norms(kern, base, d, &mu, &mut bn);
    let ctx = Ctx {
        kern,
        q,
        base,
        offsets,
        d,
        mode,
        query_groups,
        squared,
        ngroups: shape.ngroups,
        mu,
        bn,
    };
    Ok(Some((ctx, shape.out_per_query)))
}

/// Grouped nearest-neighbour search.
///
/// - `q`: `nq*d` query rows; `base`: rows, groups stored contiguously, `offsets` (length ngroups+1, starts at 0,
///   non-decreasing, ends at `base.len()/d`, each group non-empty).
/// - `query_groups`: required for [`GroupedMode::MeanExcludingOwn`] (length `nq`, -1 = exclude nothing).
/// - `out`: `nq*ngroups` for `PerGroup`, else `nq`.
///
/// `dmin[q][g] = min over rows b of group g of ‖q − b‖` (squared when `squared`). Then:
/// - [`GroupedMode::PerGroup`]: `out[q*ngroups + g] = dmin[q][g]`;
/// - [`GroupedMode::Min`]: `out[q] = min_g dmin[q][g]`;
/// - [`GroupedMode::MeanExcludingOwn`]: `out[q]` = mean of `dmin[q][g]` over `g != query_groups[q]` (an id of
///   -1 or out of range excludes nothing; `query_groups` is ignored by the other modes); 0 when no group is left.
///
/// With no groups (`offsets == [0]`, empty base), `PerGroup` gives an empty `out` and `MeanExcludingOwn` zeros.
///
/// # Errors
/// [`Error::InvalidArgument`] if `d == 0`, `offsets` is empty, does not start at 0, is not strictly increasing
/// or does not end at `base.len()/d`, or `query_groups` is missing for `MeanExcludingOwn`;
/// [`Error::ShapeMismatch`] for a wrong `q`, `base`, `query_groups` or `out` length;
/// [`Error::Empty`] for `Min` with no group (and `nq > 0`).
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
    let Some((ctx, per)) = setup(q, nq, base, offsets, d, mode, query_groups, squared, out)? else {
        return Ok(());
    };
    for (bi, o) in out.chunks_mut(QB * per).enumerate() {
        let q0 = bi * QB;
        ctx.block(q0, (q0 + QB).min(nq), o);
    }
    Ok(())
}

/// Multi-threaded [`grouped_nn_f32`] (rayon global pool), same arguments and results.
///
/// Query blocks are distributed over the pool; each reads the whole base, so the speed-up is close to the
/// number of cores as long as there are a few blocks (of up to 256 queries) per thread.
///
/// # Errors
/// As [`grouped_nn_f32`].
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
    use rayon::prelude::*;
    let Some((ctx, per)) = setup(q, nq, base, offsets, d, mode, query_groups, squared, out)? else {
        return Ok(());
    };
    let qb = crate::distance::query_block(nq, rayon::current_num_threads());
    out.par_chunks_mut(qb * per).enumerate().for_each(|(bi, o)| {
        let q0 = bi * qb;
        ctx.block(q0, (q0 + qb).min(nq), o);
    });
    Ok(())
}
