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
//! order of `1e-6 × (‖q−μ‖² + ‖b−μ‖²)`. Inputs with huge coordinates are scaled by a power of two first and the
//! results back, exactly, as in [`crate::distance`] (a squared distance above `f32::MAX` is `+∞`).
use crate::distance::{check_matrix, InputScale};
use crate::simd::block::{self, Scratch, MC, QB};
use crate::simd::{self, Kernels, NR};
use crate::output;
use crate::{Error, Parallelism, Result};

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
    implied_groups: bool,
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
    if mode == GroupedMode::MeanExcludingOwn && !implied_groups {
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
    implied_groups: bool,
    squared: bool,
    out: &mut [f32],
) -> Result<Option<(Ctx<'a>, usize)>> {
    let shape = validate(q, nq, base, offsets, d, mode, query_groups, implied_groups, out)?;
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
/// With [`Parallelism::Threads`] the query blocks are distributed over the pool; each reads the whole base, so the
/// speed-up is close to the number of cores as long as there are a few blocks (of up to 256 queries) per thread.
/// The results are the same.
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
    par: Parallelism,
    out: &mut [f32],
) -> Result<()> {
    let sc = InputScale::of(d, &[q, base]);
    let (q, base) = (sc.apply(q), sc.apply(base));
    let Some((ctx, per)) = setup(&q, nq, &base, offsets, d, mode, query_groups, false, squared, out)? else {
        return Ok(());
    };
    if par.threads() {
        #[cfg(feature = "parallel")]
        {
            use rayon::prelude::*;
            let qb = crate::distance::query_block(nq, rayon::current_num_threads());
            out.par_chunks_mut(qb * per).enumerate().for_each(|(bi, o)| {
                let q0 = bi * qb;
                ctx.block(q0, (q0 + qb).min(nq), o);
            });
        }
    } else {
        for (bi, o) in out.chunks_mut(QB * per).enumerate() {
            let q0 = bi * QB;
            ctx.block(q0, (q0 + QB).min(nq), o);
        }
    }
    sc.unscale(out, squared);
    Ok(())
}

/// Output length of the grouped search: `nq*ngroups` for `PerGroup`, else `nq`.
fn grouped_len(nq: usize, offsets: &[u32], mode: GroupedMode) -> Option<usize> {
    match mode {
        GroupedMode::PerGroup => output::mul(nq, offsets.len().saturating_sub(1)),
        GroupedMode::Min | GroupedMode::MeanExcludingOwn => Some(nq),
    }
}

/// [`grouped_nn_f32`] into a new output (`nq*ngroups` values for `PerGroup`, else `nq`).
///
/// # Errors
/// As [`grouped_nn_f32`]; [`Error::InvalidArgument`] if the output cannot be allocated.
#[allow(clippy::too_many_arguments)]
pub fn grouped_nn(
    q: &[f32],
    nq: usize,
    base: &[f32],
    offsets: &[u32],
    d: usize,
    mode: GroupedMode,
    query_groups: Option<&[i32]>,
    squared: bool,
    par: Parallelism,
) -> Result<Vec<f32>> {
    let len = output::rows_of(q.len(), nq, d).and_then(|nq| grouped_len(nq, offsets, mode));
    output::with_output("groupedNn", len, |out| {
        grouped_nn_f32(q, nq, base, offsets, d, mode, query_groups, squared, par, out)
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Symmetric self-join
// ---------------------------------------------------------------------------------------------------------------

/// At most this many stripes of groups: the partial sums of `MeanExcludingOwn` take `≤ 64` f64 per row.
const MAX_STRIPES: usize = 64;

/// Where one stripe's rows put their results. Every cell is written by exactly one task (`PerGroup`,
/// `MeanExcludingOwn`) or combined with an order-independent `min` (`Min`), so the result does not depend on
/// which thread ran which task, nor in which order.
enum Sink<'o> {
    /// The stripe's rows of `out` (`rows × ngroups`), final (square-rooted) values.
    PerGroup(&'o mut [f32]),
    /// Running minimum of the squared distances, one per row.
    Min(Vec<f32>),
    /// `rows × nstripes` partial sums (f64, in group order) of the distances to the groups of each stripe.
    Mean(Vec<f64>),
}

/// Per-thread buffers of the self-join tasks, reused from task to task (a fresh multi-MiB packing buffer per
/// task would cost its page faults every time).
#[derive(Default)]
struct Work {
    packed: Vec<f32>,
    s: Scratch,
    rm: Vec<f32>,
    cm: Vec<f32>,
}

struct SelfJoin<'a> {
    ctx: Ctx<'a>,
    /// Groups per stripe.
    s: usize,
    /// Number of stripes.
    ns: usize,
}

impl SelfJoin<'_> {
    fn rows(&self, g: usize) -> (usize, usize) {
        (self.ctx.offsets[g] as usize, self.ctx.offsets[g + 1] as usize)
    }

    fn groups(&self, stripe: usize) -> (usize, usize) {
        (stripe * self.s, ((stripe + 1) * self.s).min(self.ctx.ngroups))
    }

    /// Squared nearest distances between group `i` (lanes: its rows packed in `packed`) and group `g` (rows):
    /// `rm[r]` for row `r` of `i` (min over `g`), and, when `cm` is given, `cm[r]` for row `r` of `g` (min over
    /// `i`), both as `(‖·‖² + min).max(0)`: bit for bit what [`grouped_nn_f32`] computes for the same pair, since
    /// every dot product is accumulated in the same order whichever side it sits on.
    fn pair(&self, i: usize, packed: &[f32], g: usize, rm: &mut [f32], mut cm: Option<&mut [f32]>, s: &mut Scratch) {
        let c = &self.ctx;
        let (kern, d) = (c.kern, c.d);
        let (i0, i1) = self.rows(i);
        let (g0, g1) = self.rows(g);
        let mi = i1 - i0;
        if let Some(cm) = cm.as_deref_mut() {
            cm.fill(f32::INFINITY);
        }
        let mut runmin = vec![f32::INFINITY; QB];
        let mut ln: Vec<[f32; NR]> = Vec::with_capacity(QB / NR);
        // Equal lane blocks of at most QB (784 rows → 4 × 208, not 3 × 256 + 16): a block of one panel would pay
        // the copy of every row chunk for 16 lanes of work.
        let nblk = mi.div_ceil(QB);
        let bs = mi.div_ceil(nblk).div_ceil(NR) * NR;
        let mut qb0 = 0;
        while qb0 < mi {
            let qb1 = (qb0 + bs).min(mi);
            let np = (qb1 - qb0).div_ceil(NR);
            let pk = &packed[(qb0 / NR) * d * NR..][..np * d * NR];
            ln.clear();
            ln.extend((0..np).map(|p| {
                std::array::from_fn(|l| {
                    let r = qb0 + p * NR + l;
                    if r < qb1 {
                        c.bn[i0 + r]
                    } else {
                        f32::INFINITY
                    }
                })
            }));
            runmin.fill(f32::INFINITY);
            let mut c0 = g0;
            while c0 < g1 {
                let c1 = (c0 + MC).min(g1);
                let runs = runmin.as_chunks_mut::<NR>().0;
                block::chunk_pass(kern, c.base, d, c0, c1, &c.mu, pk, np, s, |k, t| {
                    let an: [f32; simd::MR] = std::array::from_fn(|r| c.bn[t.row0 + r.min(t.rows - 1)]);
                    match cm.as_deref_mut() {
                        Some(cm) => {
                            let mut cmt = [f32::INFINITY; simd::MR];
                            k.tile_min_both(t.kc, t.a, t.lda, t.b, t.c, t.acc, &an, &mut runs[t.panel], &ln[t.panel], &mut cmt);
                            for (m, &v) in cm[t.row0 - g0..][..t.rows].iter_mut().zip(&cmt) {
                                *m = if v < *m { v } else { *m };
                            }
                        }
                        None => k.tile_min(t.kc, t.a, t.lda, t.b, t.c, t.acc, &an, &mut runs[t.panel]),
                    }
                });
                c0 = c1;
            }
            for (r, &v) in (qb0..qb1).zip(&runmin) {
                rm[r] = (c.bn[i0 + r] + v).max(0.0);
            }
            qb0 = qb1;
        }
        if let Some(cm) = cm {
            for (r, m) in cm.iter_mut().enumerate() {
                *m = (c.bn[g0 + r] + *m).max(0.0);
            }
        }
    }

    /// One task: every group pair between stripes `si ≤ sj` (each unordered pair once; a group with itself
    /// only when the mode reads it), results handed to the two stripes' sinks.
    fn task(&self, si: usize, sj: usize, sinks: &[std::sync::Mutex<Sink<'_>>], w: &mut Work) {
        let c = &self.ctx;
        let d = c.d;
        let (gi0, gi1) = self.groups(si);
        let (gj0, gj1) = self.groups(sj);
        let (ni, nj) = (gi1 - gi0, gj1 - gj0);
        let (ri0, ri1) = (c.offsets[gi0] as usize, c.offsets[gi1] as usize);
        let (rj0, rj1) = (c.offsets[gj0] as usize, c.offsets[gj1] as usize);
        let diag = c.mode != GroupedMode::MeanExcludingOwn;
        // Squared minima: rows of stripe si × groups of sj, and rows of sj × groups of si.
        let mut loc_i = vec![0.0f32; (ri1 - ri0) * nj];
        let mut loc_j = if si == sj { Vec::new() } else { vec![0.0f32; (rj1 - rj0) * ni] };
        let Work { packed, s, rm, cm } = w;
        for i in gi0..gi1 {
            let (i0, i1) = self.rows(i);
            block::pack_panels(c.base, d, i0..i1, &c.mu, packed);
            rm.resize(i1 - i0, 0.0);
            for g in gj0.max(if si == sj { i } else { 0 })..gj1 {
                let (g0, g1) = self.rows(g);
                if g == i {
                    if diag {
                        self.pair(i, packed, i, rm, None, s);
                        for (r, &v) in rm.iter().enumerate() {
                            loc_i[(i0 - ri0 + r) * nj + (g - gj0)] = v;
                        }
                    }
                    continue;
                }
                cm.resize(g1 - g0, 0.0);
                self.pair(i, packed, g, rm, Some(cm), s);
                for (r, &v) in rm.iter().enumerate() {
                    loc_i[(i0 - ri0 + r) * nj + (g - gj0)] = v;
                }
                // Row r of g against group i: in the same buffer when both stripes are one.
                let (loc, r0, w, col) = if si == sj { (&mut loc_i, ri0, nj, i - gj0) } else { (&mut loc_j, rj0, ni, i - gi0) };
                for (r, &v) in cm.iter().enumerate() {
                    loc[(g0 - r0 + r) * w + col] = v;
                }
            }
        }
        self.apply(si, sj, &loc_i, &sinks[si]);
        if si != sj {
            self.apply(sj, si, &loc_j, &sinks[sj]);
        }
    }

    /// Hands `loc` (rows of stripe `sr` × groups of stripe `sg`, squared) to stripe `sr`'s sink.
    fn apply(&self, sr: usize, sg: usize, loc: &[f32], sink: &std::sync::Mutex<Sink<'_>>) {
        let c = &self.ctx;
        let (gr0, gr1) = self.groups(sr);
        let (gg0, gg1) = self.groups(sg);
        let w = gg1 - gg0;
        let r0 = c.offsets[gr0] as usize;
        let root = |v: f32| if c.squared { v } else { v.sqrt() };
        // A poisoned lock only means another task panicked; that panic is reported anyway.
        let mut guard = sink.lock().unwrap_or_else(|e| e.into_inner());
        match &mut *guard {
            Sink::PerGroup(out) => {
                for (r, row) in loc.chunks_exact(w).enumerate() {
                    out[r * c.ngroups + gg0..][..w].iter_mut().zip(row).for_each(|(o, &v)| *o = root(v));
                }
            }
            Sink::Min(m) => {
                for (mr, row) in m.iter_mut().zip(loc.chunks_exact(w)) {
                    for &v in row {
                        *mr = if v < *mr { v } else { *mr };
                    }
                }
            }
            Sink::Mean(p) => {
                for g in gr0..gr1 {
                    let (a, b) = (c.offsets[g] as usize - r0, c.offsets[g + 1] as usize - r0);
                    for r in a..b {
                        let mut sum = 0.0f64;
                        for (k, &v) in loc[r * w..][..w].iter().enumerate() {
                            if gg0 + k != g {
                                sum += root(v) as f64;
                            }
                        }
                        p[r * self.ns + sg] = sum;
                    }
                }
            }
        }
    }

    /// Runs `exec` with the stripes' sinks, then writes the results into `out`.
    fn drive(&self, out: &mut [f32], exec: impl FnOnce(&[std::sync::Mutex<Sink<'_>>])) {
        if self.ctx.mode == GroupedMode::PerGroup {
            let sinks = self.sinks(out);
            exec(&sinks);
        } else {
            let sinks = self.sinks(&mut []);
            exec(&sinks);
            self.finish(sinks, out);
        }
    }

    fn tasks(&self) -> Vec<(usize, usize)> {
        let mut t = Vec::with_capacity(self.ns * (self.ns + 1) / 2);
        for si in 0..self.ns {
            for sj in si..self.ns {
                t.push((si, sj));
            }
        }
        t
    }

    fn sinks<'o>(&self, out: &'o mut [f32]) -> Vec<std::sync::Mutex<Sink<'o>>> {
        let c = &self.ctx;
        let mut v = Vec::with_capacity(self.ns);
        let mut rest = out;
        for st in 0..self.ns {
            let (g0, g1) = self.groups(st);
            let rows = (c.offsets[g1] - c.offsets[g0]) as usize;
            v.push(std::sync::Mutex::new(match c.mode {
                GroupedMode::PerGroup => {
                    let (head, tail) = std::mem::take(&mut rest).split_at_mut(rows * c.ngroups);
                    rest = tail;
                    Sink::PerGroup(head)
                }
                GroupedMode::Min => Sink::Min(vec![f32::INFINITY; rows]),
                GroupedMode::MeanExcludingOwn => Sink::Mean(vec![0.0; rows * self.ns]),
            }));
        }
        v
    }

    /// Writes the `Min` / `MeanExcludingOwn` results into `out` (`PerGroup` wrote there directly).
    fn finish(&self, sinks: Vec<std::sync::Mutex<Sink<'_>>>, out_rest: &mut [f32]) {
        let c = &self.ctx;
        let root = |v: f32| if c.squared { v } else { v.sqrt() };
        let mut row = 0;
        for sink in sinks {
            match sink.into_inner().unwrap_or_else(|e| e.into_inner()) {
                Sink::PerGroup(_) => {}
                Sink::Min(m) => {
                    for v in m {
                        out_rest[row] = root(v);
                        row += 1;
                    }
                }
                Sink::Mean(p) => {
                    let cnt = c.ngroups - 1;
                    for part in p.chunks_exact(self.ns) {
                        let sum = part.iter().fold(0.0f64, |a, &b| a + b);
                        out_rest[row] = if cnt == 0 { 0.0 } else { (sum / cnt as f64) as f32 };
                        row += 1;
                    }
                }
            }
        }
    }
}

fn setup_self<'a>(
    base: &'a [f32],
    offsets: &'a [u32],
    d: usize,
    mode: GroupedMode,
    squared: bool,
    out: &mut [f32],
) -> Result<Option<SelfJoin<'a>>> {
    let nq = base.len().checked_div(d).unwrap_or(0);
    let Some((ctx, _)) = setup(base, nq, base, offsets, d, mode, None, true, squared, out)? else {
        return Ok(None);
    };
    let s = ctx.ngroups.div_ceil(MAX_STRIPES).max(1);
    let ns = ctx.ngroups.div_ceil(s);
    Ok(Some(SelfJoin { ctx, s, ns }))
}

/// Symmetric self-join: [`grouped_nn_f32`] with `q = base` and each row's query group = the group it belongs to,
/// in about half the work.
///
/// The distance block between groups `i` and `g` is the transpose of block `(g, i)`, so each unordered pair is
/// multiplied once and reduced both ways: its row minima (rows of `i` against group `g`) and its column minima
/// (rows of `g` against group `i`), fused into the micro-kernel like the general search's row minima. The
/// own-group block (`i == g`) is computed only for `PerGroup` and `Min`, which read it.
///
/// Results: `PerGroup` and `Min` are bit for bit those of [`grouped_nn_f32`]`(base, nb, base, offsets, d, mode,
/// Some(row groups), squared, out)`; `MeanExcludingOwn` too when there are at most 64 groups, otherwise its f64
/// sum is associated per stripe of groups (a difference of at most an f32 rounding step).
///
/// Memory: besides `out`, at most `64` f64 partial sums per row (`MeanExcludingOwn`) and small per-task buffers.
///
/// With [`Parallelism::Threads`] the tasks (pairs of stripes of groups) go to the pool, largest first; the results
/// are the same whatever the number of threads: the tasks are fixed by the number of groups alone and each output
/// cell is written by one task (or min-combined, which is order independent).
///
/// # Errors
/// As [`grouped_nn_f32`] (without the `query_groups` cases).
pub fn grouped_nn_self_f32(
    base: &[f32],
    offsets: &[u32],
    d: usize,
    mode: GroupedMode,
    squared: bool,
    par: Parallelism,
    out: &mut [f32],
) -> Result<()> {
    let sc = InputScale::of(d, &[base]);
    let base = sc.apply(base);
    let Some(sj) = setup_self(&base, offsets, d, mode, squared, out)? else {
        return Ok(());
    };
    if par.threads() {
        #[cfg(feature = "parallel")]
        {
            use rayon::prelude::*;
            // Largest tasks first (off-diagonal stripe pairs), so the pool's tail is made of small ones.
            let mut tasks = sj.tasks();
            tasks.sort_by_key(|&(a, b)| a == b);
            sj.drive(out, |sinks| {
                tasks.par_iter().with_max_len(1).for_each_init(Work::default, |w, &(a, b)| sj.task(a, b, sinks, w))
            });
        }
    } else {
        sj.drive(out, |sinks| {
            let mut w = Work::default();
            for (a, b) in sj.tasks() {
                sj.task(a, b, sinks, &mut w);
            }
        });
    }
    sc.unscale(out, squared);
    Ok(())
}

/// [`grouped_nn_self_f32`] into a new output (`nb*ngroups` values for `PerGroup`, else `nb`).
///
/// # Errors
/// As [`grouped_nn_self_f32`]; [`Error::InvalidArgument`] if the output cannot be allocated.
pub fn grouped_nn_self(
    base: &[f32],
    offsets: &[u32],
    d: usize,
    mode: GroupedMode,
    squared: bool,
    par: Parallelism,
) -> Result<Vec<f32>> {
    let len = base.len().checked_div(d).and_then(|nb| grouped_len(nb, offsets, mode));
    output::with_output("groupedNnSelf", len, |out| grouped_nn_self_f32(base, offsets, d, mode, squared, par, out))
}
