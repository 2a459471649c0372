//! Ward linkage straight from the observation vectors: the nearest-neighbour chain on cluster centroids,
//! `O(n·d)` memory instead of the `n(n-1)/2` condensed matrix.
//!
//! The Ward distance between clusters `A` and `B` (sizes `|A|`, `|B|`, centroids `c_A`, `c_B`) is
//!
//! ```text
//! d(A, B) = sqrt(2·|A|·|B| / (|A| + |B|)) · ‖c_A − c_B‖₂
//! ```
//!
//! which is exactly the quantity SciPy's Lance–Williams recurrence for `ward` computes from Euclidean input
//! distances (for singletons it is the plain Euclidean distance). So this gives the same Z as
//! `linkage(pdist(x), Ward)`, up to floating-point rounding: the heights agree to ~1e-12 relative, and the
//! merge order agrees except between merges whose heights tie up to that rounding.
//!
//! With `sizes`, [`ward_from_vectors`] starts from clusters of given sizes instead of singletons (row `i` is the centroid
//! of `sizes[i]` observations): exact Ward on the centroids of micro-clusters, the second half of the approximate
//! Ward of large sets (`src/pipeline/micro.ts`).
//!
//! Cost: each chain step scans all live centroids, `O(n·d)`, and a run takes about `2n`–`3n` steps, so
//! `O(n²·d)` time; with [`crate::Parallelism::Threads`] (and the `parallel` feature) each scan is split over the rayon pool. The
//! scans prune (partial distance search, exact): a candidate is dropped as soon as the first `32·j` dimensions of
//! its distance already reach the best so far, which starts at the previous chain element's distance.
//!
//! Before that exact test, a cheap **screen** drops most candidates without touching their f64 centroids: each
//! centroid also has an f32 "head", its coordinates along the top `h ≤ 32` principal directions of the data
//! (orthonormal rows `P`, from a few rounds of subspace iteration on the covariance of a sample). Because
//! `‖P·v‖ ≤ ‖v‖`, the head distance is a lower bound of the full one; a candidate is skipped only when that
//! bound, shrunk by a rigorous margin for every f32/f64 rounding involved (centring, projection, f32 storage,
//! f32 summation, and the f64 rounding of the exact value), already reaches the best so far. So a skipped
//! candidate is one the exact scan would have rejected too, and the result is **bit for bit** that of the
//! unscreened scan (tested). The heads are `n·h` f32s (12.8 MB for 100,000 points), so the scans mostly run
//! from cache; the f64 centroids are read only for the candidates the screen keeps (on clustered data, about
//! the members of the nearest clusters).
use super::union_find::{label, sort_rows_by_height};
use crate::{Error, Parallelism, Result};

/// Squared Euclidean distance in f64 with 4 independent accumulators (lets the compiler vectorise).
#[inline]
fn sqdist(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (pa, pb) in (&mut ca).zip(&mut cb) {
        for k in 0..4 {
            let t = pa[k] - pb[k];
            acc[k] += t * t;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (u, v) in ca.remainder().iter().zip(cb.remainder()) {
        let t = u - v;
        s += t * t;
    }
    s
}

/// Squared Ward distance between live slots `x` and `i`: `2·nx·ni/(nx+ni) · ‖c_x − c_i‖²`.
#[inline]
fn ward_sq(c: &[f64], d: usize, size: &[usize], x: usize, i: usize) -> f64 {
    let (nx, ni) = (size[x] as f64, size[i] as f64);
    2.0 * nx * ni / (nx + ni) * sqdist(&c[x * d..x * d + d], &c[i * d..i * d + d])
}

/// Dimensions summed between two checks of the bound in [`ward_sq_below`].
const PRUNE_BLOCK: usize = 32;

/// [`ward_sq`] if it is `< bound`, else `None`, usually long before all `d` terms are summed (partial distance
/// search): every `PRUNE_BLOCK` dimensions it forms the partial sum exactly as [`sqdist`] forms the total and stops
/// once `factor × partial ≥ bound`. This is **exact**: the terms are non-negative and IEEE addition and
/// multiplication are monotone, so each accumulator, their sum and its product with `factor` can only grow; a
/// value that is returned is bit for bit [`ward_sq`]'s.
#[inline(always)]
fn ward_sq_below(c: &[f64], d: usize, size: &[usize], x: usize, i: usize, bound: f64) -> Option<f64> {
    let (nx, ni) = (size[x] as f64, size[i] as f64);
    let factor = 2.0 * nx * ni / (nx + ni);
    let (a, b) = (&c[x * d..x * d + d], &c[i * d..i * d + d]);
    let full = d - d % 4;
    let mut acc = [0.0f64; 4];
    let mut t = 0;
    while t < full {
        let end = (t + PRUNE_BLOCK).min(full);
        for (pa, pb) in a[t..end].chunks_exact(4).zip(b[t..end].chunks_exact(4)) {
            for k in 0..4 {
                let u = pa[k] - pb[k];
                acc[k] += u * u;
            }
        }
        t = end;
        if t < d && factor * ((acc[0] + acc[1]) + (acc[2] + acc[3])) >= bound {
            return None;
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (u, v) in a[full..].iter().zip(&b[full..]) {
        let t = u - v;
        s += t * t;
    }
    let v = factor * s;
    (v < bound).then_some(v)
}


/// Columns of the screen's projection (see the module docs).
const SCREEN_DIMS: usize = 32;
/// At most this many rows (an even stride) feed the covariance of the screen's basis.
const SCREEN_SAMPLE: usize = 16_384;
/// Rounds of subspace iteration for the basis (its quality only affects speed, never the result).
const SCREEN_ROUNDS: usize = 12;

/// The f32 lower-bound screen: heads `n × h` and the constants of the skip test.
struct Screen {
    h: usize,
    /// `h × d` orthonormal rows.
    p: Vec<f64>,
    /// Centre of the data (subtracted before projecting, so the rounding margin scales with the spread).
    mu: Vec<f64>,
    /// `n` f32 heads `f32(P·(c_i − μ))`, zero-padded to [`SCREEN_DIMS`] (zeros add nothing to a distance).
    head: Vec<[f32; SCREEN_DIMS]>,
    /// Skip candidate `i` iff `factor·(ŝ − add) ≥ mul·bound` (`ŝ` = f32 head distance²).
    mul: f64,
    add: f64,
}

impl Screen {
    fn new(x: &[f32], n: usize, d: usize) -> Screen {
        let h = SCREEN_DIMS.min(d);
        // Centre.
        let mut mu = vec![0.0f64; d];
        for row in x.chunks_exact(d) {
            for (m, &v) in mu.iter_mut().zip(row) {
                *m += v as f64;
            }
        }
        mu.iter_mut().for_each(|m| *m /= n as f64);
        // Covariance (upper triangle, mirrored) of an even-stride sample of centred rows.
        let stride = n.div_ceil(SCREEN_SAMPLE).max(1);
        let mut cov = vec![0.0f64; d * d];
        let mut t = vec![0.0f64; d];
        for row in x.chunks_exact(d).step_by(stride) {
            for k in 0..d {
                t[k] = row[k] as f64 - mu[k];
            }
            for a in 0..d {
                let ta = t[a];
                let ca = &mut cov[a * d..a * d + d];
                for b in a..d {
                    ca[b] += ta * t[b];
                }
            }
        }
        for a in 0..d {
            for b in 0..a {
                cov[a * d + b] = cov[b * d + a];
            }
        }
        // Subspace iteration: P ← orth(P·C), from a fixed pseudo-random start (deterministic).
        let mut p = vec![0.0f64; h * d];
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        for v in p.iter_mut() {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            *v = ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5;
        }
        orthonormalise(&mut p, h, d);
        let mut next = vec![0.0f64; h * d];
        for _ in 0..SCREEN_ROUNDS {
            for r in 0..h {
                let pr = &p[r * d..r * d + d];
                let out = &mut next[r * d..r * d + d];
                out.iter_mut().for_each(|v| *v = 0.0);
                for (k, &pk) in pr.iter().enumerate() {
                    if pk != 0.0 {
                        for (o, &ck) in out.iter_mut().zip(&cov[k * d..k * d + d]) {
                            *o += pk * ck;
                        }
                    }
                }
            }
            std::mem::swap(&mut p, &mut next);
            orthonormalise(&mut p, h, d);
        }
        // Heads, and the largest centred norm (merged centroids are convex combinations: never larger).
        let mut head = vec![[0.0f32; SCREEN_DIMS]; n];
        let mut rmax = 0.0f64;
        let mut cbuf = vec![0.0f64; d];
        for (i, row) in x.chunks_exact(d).enumerate() {
            for k in 0..d {
                cbuf[k] = row[k] as f64;
            }
            rmax = rmax.max(project(&p, &mu, h, d, &cbuf, &mut head[i][..h]));
        }
        // Margins (u = 2⁻²⁴). Per vector, ‖f32(P(c−μ)) − P(c−μ)‖ ≤ 2⁻²²·rmax (f32 storage 2⁻²⁴ plus f64
        // centring/projection error, far below); two vectors: E = 2⁻²¹·rmax. The f32 head distance² ŝ is within
        // a factor (1+γ) of the exact distance² of the stored heads, γ = (h+4)·2⁻²³. With t = ‖P(c_x−c_i)‖ ≤
        // ‖c_x−c_i‖ = r (orthonormal rows, up to 1e-12): t ≥ √(ŝ/(1+γ)) − E, and (q+E)² ≤ (1+δ)q² + (1+1/δ)E²
        // gives: t ≥ q whenever ŝ ≥ (1+γ)((1+δ)q² + (1+1/δ)E²). The exact f64 value v = factor·r²·(1 ± 1e-9)
        // (d·2⁻⁵³ rounding), so with q² = bound/(factor·(1−ε)) a skipped candidate has v ≥ bound.
        let gamma = (h as f64 + 4.0) * f64::powi(2.0, -23);
        let delta = 1e-3;
        let eps = 1e-9;
        let e = f64::powi(2.0, -21) * rmax;
        let mul = (1.0 + gamma) * (1.0 + delta) / (1.0 - eps) * (1.0 + 1e-12);
        let add = (1.0 + gamma) * (1.0 + 1.0 / delta) * e * e;
        Screen { h, p, mu, head, mul, add }
    }

    /// Recompute slot `i`'s head from its f64 centroid.
    fn update(&mut self, i: usize, c: &[f64]) {
        let (h, d) = (self.h, self.mu.len());
        project(&self.p, &self.mu, h, d, c, &mut self.head[i][..h]);
    }

    /// `true` if candidate `i` (size `ni`) cannot be strictly below `bound` as a partner of `x` (size `nx`): the
    /// test `factor·(ŝ − add) ≥ mul·bound` of [`Screen::new`] with `factor = 2·nx·ni/(nx+ni)` multiplied out (no
    /// division; its few roundings are far inside the margin).
    #[inline(always)]
    fn skips(&self, x: usize, i: usize, nx: f64, ni: f64, bound: f64) -> bool {
        let s = head_l2sq(&self.head[x], &self.head[i]) as f64;
        s.is_finite() && 2.0 * nx * ni * (s - self.add) >= self.mul * bound * (nx + ni)
    }
}

/// `Σ (a−b)²` over the padded heads, 8 lanes × 4 (vectorised by the compiler; 8-wide in the AVX2 build of the
/// scan). Any summation order is covered by the screen's margin.
#[inline(always)]
fn head_l2sq(a: &[f32; SCREEN_DIMS], b: &[f32; SCREEN_DIMS]) -> f32 {
    let mut acc = [0.0f32; 8];
    for (ca, cb) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for l in 0..8 {
            let t = ca[l] - cb[l];
            acc[l] += t * t;
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]))
}

/// `out ← f32(P·(c − μ))`; returns `‖c − μ‖₂`.
fn project(p: &[f64], mu: &[f64], h: usize, d: usize, c: &[f64], out: &mut [f32]) -> f64 {
    let mut norm = 0.0f64;
    for k in 0..d {
        let t = c[k] - mu[k];
        norm += t * t;
    }
    for r in 0..h {
        let mut acc = 0.0f64;
        for ((&pk, &ck), &mk) in p[r * d..r * d + d].iter().zip(c).zip(mu) {
            acc += pk * (ck - mk);
        }
        out[r] = acc as f32;
    }
    norm.sqrt()
}

/// Subtracts from row `r` of `p` (`· × d`) its projections on rows `0..r` (one modified Gram–Schmidt pass).
fn orthogonalise_row(p: &mut [f64], r: usize, d: usize) {
    let (done, rest) = p.split_at_mut(r * d);
    let pr = &mut rest[..d];
    for pq in done.chunks_exact(d) {
        let dot: f64 = pq.iter().zip(pr.iter()).map(|(a, b)| a * b).sum();
        pr.iter_mut().zip(pq).for_each(|(v, &w)| *v -= dot * w);
    }
}

/// Normalises row `r` of `p` if its norm exceeds `min`; returns whether it did.
fn normalise_row(p: &mut [f64], r: usize, d: usize, min: f64) -> bool {
    let row = &mut p[r * d..r * d + d];
    let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
    let ok = norm > min && norm.is_finite();
    if ok {
        row.iter_mut().for_each(|v| *v /= norm);
    }
    ok
}

/// Modified Gram–Schmidt, twice, on the `h` rows of `p` (`h × d`, `h ≤ d`); a row that collapses is replaced by
/// a unit axis vector orthogonalised in turn, so the rows always end orthonormal.
fn orthonormalise(p: &mut [f64], h: usize, d: usize) {
    for r in 0..h {
        orthogonalise_row(p, r, d);
        orthogonalise_row(p, r, d);
        if normalise_row(p, r, d, 1e-6) {
            continue;
        }
        // Degenerate (rank-deficient data): try axes until one survives orthogonalisation.
        for axis in 0..d {
            p[r * d..r * d + d].iter_mut().enumerate().for_each(|(k, v)| *v = if k == axis { 1.0 } else { 0.0 });
            orthogonalise_row(p, r, d);
            orthogonalise_row(p, r, d);
            if normalise_row(p, r, d, 0.5) {
                break;
            }
        }
    }
}

/// What one scan reads: f64 centroids, sizes and the optional screen.
struct View<'a> {
    c: &'a [f64],
    d: usize,
    size: &'a [usize],
    screen: Option<&'a Screen>,
}

/// Best live `i != x` in `range` strictly below `seed.0`: smallest squared Ward distance, lowest index on ties;
/// `seed` itself (e.g. `(value of the previous chain element, usize::MAX)`) if none is strictly smaller.
fn scan(v: &View, x: usize, range: std::ops::Range<usize>, seed: (f64, usize)) -> (f64, usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if crate::simd::kernels().name() == "avx2" {
            // SAFETY: the avx2 table is chosen only on CPUs with AVX2 and FMA.
            return unsafe { scan_avx2(v, x, range, seed) };
        }
    }
    scan_generic(v, x, range, seed)
}

/// [`scan_generic`] compiled for AVX2: the f64 loops of [`ward_sq_below`] run 4 lanes wide. Rust never contracts
/// `a*b+c` into an FMA on its own, so every value is bit for bit the generic build's.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2(v: &View, x: usize, range: std::ops::Range<usize>, seed: (f64, usize)) -> (f64, usize) {
    scan_generic(v, x, range, seed)
}

#[inline(always)]
fn scan_generic(v: &View, x: usize, range: std::ops::Range<usize>, seed: (f64, usize)) -> (f64, usize) {
    let View { c, d, size, screen } = *v;
    let nx = size[x] as f64;
    let mut best = seed;
    for i in range {
        if i == x || size[i] == 0 {
            continue;
        }
        if let Some(s) = screen {
            if s.skips(x, i, nx, size[i] as f64, best.0) {
                continue;
            }
        }
        // Strict `<` (inside `ward_sq_below`): a later index never displaces an equal earlier one.
        if let Some(val) = ward_sq_below(c, d, size, x, i, best.0) {
            best = (val, i);
        }
    }
    best
}

type Scanner = fn(&View, usize, usize, (f64, usize)) -> (f64, usize);

fn scan_serial(v: &View, x: usize, n: usize, seed: (f64, usize)) -> (f64, usize) {
    scan(v, x, 0..n, seed)
}

#[cfg(feature = "parallel")]
fn scan_parallel(v: &View, x: usize, n: usize, seed: (f64, usize)) -> (f64, usize) {
    use rayon::prelude::*;
    // Chunks of ~32k multiply-adds (fewer once the screen and the pruning bite); each starts from the same seed,
    // and the reduction keeps (min value, then min index), which is exactly what the serial left-to-right
    // strict-`<` scan returns, so both variants give the same Z.
    let chunk = if v.screen.is_some() { 4096 } else { (32_768 / v.d.max(1)).max(64) };
    (0..n.div_ceil(chunk))
        .into_par_iter()
        .map(|b| scan(v, x, b * chunk..((b + 1) * chunk).min(n), seed))
        .reduce(|| seed, |a, b| if b.0 < a.0 || (b.0 == a.0 && b.1 < a.1) { b } else { a })
}

/// Checks the optional initial sizes: `n` values, each ≥ 1, their sum representable.
fn check_sizes(sizes: Option<&[u32]>, n: usize) -> Result<()> {
    let Some(s) = sizes else { return Ok(()) };
    if s.len() != n {
        return Err(Error::ShapeMismatch { what: "sizes", expected: n, got: s.len() });
    }
    if let Some(i) = s.iter().position(|&v| v == 0) {
        return Err(Error::InvalidArgument(format!("sizes[{i}]: expected an integer ≥ 1 (a cluster of that many observations), got 0")));
    }
    Ok(())
}

fn check(x: &[f32], n: usize, d: usize) -> Result<()> {
    if n == 0 {
        return Err(Error::Empty("n (number of observations)"));
    }
    if d == 0 {
        return Err(Error::Empty("d (dimension)"));
    }
    let expected = n.saturating_mul(d);
    if x.len() != expected {
        return Err(Error::ShapeMismatch { what: "x", expected, got: x.len() });
    }
    if let Some(index) = x.iter().position(|v| !v.is_finite()) {
        return Err(Error::NonFinite { what: "x", index });
    }
    Ok(())
}

/// Ward linkage of `n` observations `x` (`n × d`, row-major) without the `n²` distance matrix.
///
/// Returns Z, `(n-1)·4` values (empty for `n == 1`), equal to `linkage(pdist(x), Method::Ward)` up to
/// floating-point rounding; `O(n·d)` memory (f64 centroids), `O(n²·d)` time. The distance between clusters
/// `A` and `B` (sizes `|A|`, `|B|`, centroids `c_A`, `c_B`) is
///
/// ```text
/// d(A, B) = sqrt(2·|A|·|B| / (|A| + |B|)) · ‖c_A − c_B‖₂
/// ```
///
/// exactly what SciPy's Lance–Williams `ward` recurrence computes from Euclidean distances, so the heights
/// agree to ~1e-12 relative and the merge order agrees except between merges whose heights tie up to rounding.
/// Tie-breaking follows SciPy's NN-chain (previous chain element first, then the lowest slot; merged cluster
/// in the higher slot; stable sort by height; union-find labels).
///
/// `sizes` (`None`: all 1): row `i` of `x` is the centroid of a cluster of `sizes[i]` observations (e.g. the
/// micro-clusters of a large set): the size-weighted Ward linkage, the same Z as running Ward on the
/// observations with each of those clusters merged first (when they are the first merges), i.e. the Ward
/// distance `sqrt(2·a·b/(a+b))·‖c_a − c_b‖` between clusters of `a` and `b` observations. Column 3 of Z counts
/// rows of `x` (SciPy's convention for a Z over `n` leaves), not observations.
///
/// With [`Parallelism::Threads`] each nearest-neighbour scan is split over the pool; the result is the same.
///
/// # Errors
/// [`Error::Empty`] if `n == 0` or `d == 0`; [`Error::ShapeMismatch`] if `x.len() != n·d` or
/// `sizes.len() != n`; [`Error::NonFinite`] with the index of the first NaN/±inf in `x`;
/// [`Error::InvalidArgument`] for a zero size.
pub fn ward_from_vectors(x: &[f32], n: usize, d: usize, sizes: Option<&[u32]>, par: Parallelism) -> Result<Vec<f64>> {
    check(x, n, d)?;
    check_sizes(sizes, n)?;
    let scanner: Scanner = if par.threads() {
        #[cfg(feature = "parallel")]
        {
            scan_parallel
        }
        #[cfg(not(feature = "parallel"))]
        {
            scan_serial
        }
    } else {
        scan_serial
    };
    ward_chain(x, n, d, sizes, scanner, true)
}

/// [`ward_from_vectors`] (serial) without the f32 screen (the definition the screened scan is tested against).
#[doc(hidden)]
pub fn ward_from_vectors_unscreened(x: &[f32], n: usize, d: usize, sizes: Option<&[u32]>) -> Result<Vec<f64>> {
    check(x, n, d)?;
    check_sizes(sizes, n)?;
    ward_chain(x, n, d, sizes, scan_serial, false)
}

fn ward_chain(x: &[f32], n: usize, d: usize, sizes: Option<&[u32]>, scanner: Scanner, screened: bool) -> Result<Vec<f64>> {
    if n == 1 {
        return Ok(Vec::new());
    }
    // The screen costs O(n·d·h); below a few hundred points a plain scan is as fast.
    let mut screen = (screened && n >= 256).then(|| Screen::new(x, n, d));
    let mut c: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let mut size: Vec<usize> = match sizes {
        Some(s) => s.iter().map(|&v| v as usize).collect(),
        None => vec![1usize; n],
    };
    let mut chain = vec![0usize; n];
    let mut len = 0usize;
    let mut z = vec![0.0f64; 4 * (n - 1)];
    for k in 0..n - 1 {
        if len == 0 {
            len = 1;
            chain[0] = size.iter().position(|&s| s > 0).unwrap_or(0);
        }
        let (mut a, mut b, best_sq) = loop {
            let tip = chain[len - 1];
            let view = View { c: &c, d, size: &size, screen: screen.as_ref() };
            // The previous chain element wins ties (SciPy starts its strict-`<` scan from it): the scan looks only
            // for something strictly closer, which also gives the pruning a tight bound from the start.
            // (A NaN `pv` is never beaten either, as in SciPy.)
            let y = if len > 1 {
                let prev = chain[len - 2];
                let pv = ward_sq(&c, d, &size, tip, prev);
                let (_, y) = scanner(&view, tip, n, (pv, usize::MAX));
                if y == usize::MAX {
                    break (tip, prev, pv);
                }
                y
            } else {
                scanner(&view, tip, n, (f64::INFINITY, usize::MAX)).1
            };
            // Finite input always has a candidate, and the chain strictly decreases so it cannot outgrow n.
            if y == usize::MAX || len >= n {
                return Err(Error::InvalidArgument(format!(
                    "ward_from_vectors: no nearest neighbour at step {k} (internal error)"
                )));
            }
            chain[len] = y;
            len += 1;
        };
        len -= 2;
        if a > b {
            std::mem::swap(&mut a, &mut b);
        }
        let (na, nb) = (size[a], size[b]);
        z[4 * k] = a as f64;
        z[4 * k + 1] = b as f64;
        z[4 * k + 2] = best_sq.sqrt();
        z[4 * k + 3] = (na + nb) as f64;
        // New centroid (size-weighted mean) in the higher slot; the lower slot dies.
        let (wa, wb, s) = (na as f64, nb as f64, (na + nb) as f64);
        for t in 0..d {
            c[b * d + t] = (wa * c[a * d + t] + wb * c[b * d + t]) / s;
        }
        size[a] = 0;
        size[b] = na + nb;
        if let Some(s) = screen.as_mut() {
            s.update(b, &c[b * d..b * d + d]);
        }
    }
    sort_rows_by_height(&mut z);
    label(&mut z, n);
    Ok(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The screen's margin is tight enough to matter and wide enough to be safe: with the bound set to the
    /// smallest f64 above the exact value `v` (so the exact scan would take the candidate), the screen must keep
    /// it, for every pair; and with the bound at `v / 2` it must drop most of them (it is not a no-op). `d ≤ 32`
    /// makes the projection a rotation, where the head distance equals the full one up to rounding: the case
    /// where a margin that ignored any rounding term would fail.
    #[test]
    fn screen_keeps_every_candidate_at_the_exact_bound() {
        let mut s = 0x1234_5678u64;
        let mut next = || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((s >> 11) as f64 / (1u64 << 53) as f64) - 0.5
        };
        // (n, d, scale, offset, tight): `tight` puts the points in 4 clusters of spread 1e-6 around far centres,
        // so the within-cluster distances are ~1e-6 of the norms: where the f32 rounding of the heads matters.
        for &(n, d, scale, offset, tight) in &[
            (300usize, 8usize, 1.0f64, 0.0f64, false),
            (300, 32, 1.0, 0.0, false),
            (300, 32, 1e-3, 100.0, false),
            (300, 77, 1e20, -3e20, false),
            (300, 16, 1.0, 0.0, true),
            (300, 32, 1.0, 5.0, true),
        ] {
            let centres: Vec<f64> = (0..4 * d).map(|_| next()).collect();
            let x: Vec<f32> = (0..n * d)
                .map(|t| {
                    let base = if tight { centres[((t / d) % 4) * d + t % d] } else { 0.0 };
                    (offset + scale * (base + if tight { 1e-6 } else { 1.0 } * next())) as f32
                })
                .collect();
            let c: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let screen = Screen::new(&x, n, d);
            let size = vec![1usize; n];
            let (mut dropped_at_half, mut pairs) = (0, 0);
            for xi in 0..n {
                for i in (0..n).filter(|&i| i != xi).step_by(7) {
                    let v = ward_sq(&c, d, &size, xi, i);
                    let just_above = f64::from_bits(v.to_bits() + 1);
                    assert!(!screen.skips(xi, i, 1.0, 1.0, just_above), "n={n} d={d} scale={scale}: pair ({xi},{i}) v={v}");
                    pairs += 1;
                    dropped_at_half += usize::from(screen.skips(xi, i, 1.0, 1.0, v * 0.5));
                }
            }
            if d <= SCREEN_DIMS && !tight {
                assert!(dropped_at_half * 10 >= pairs * 9, "d={d}: the screen dropped only {dropped_at_half}/{pairs}");
            }
        }
    }
}
