//! Run-time ISA dispatch for the distance kernels.
//!
//! Every hot loop of [`crate::distance`] and [`crate::grouped`] reduces to two primitives:
//!
//! - a **register-tiled GEMM micro-kernel**: a `MR × NR` (6 × 16) tile of dot products between `MR` rows of a
//!   row-major block (`a`, row stride `lda`) and `NR` rows packed lane-interleaved (`b`, layout `[k][NR]`),
//!   optionally fused with a *min-reduction* (`min over the MR rows of ‖a‖² − 2·a·b`), which is what the grouped
//!   nearest-neighbour search needs and what keeps the full distance matrix from ever being materialised;
//! - a single-vector `l2sq` (centred norms, exact re-computation of near pairs).
//!
//! Each ISA provides the same set of functions ([`scalar`] is the contract every SIMD kernel is tested against).
//! The table is chosen once, memchr/usearch style: on x86-64 the first call runs
//! `is_x86_feature_detected!("avx2")` and `"fma"` and caches the answer in a [`OnceLock`]; on wasm32 the choice
//! is made at compile time (`target_feature = "simd128"`). [`set_force_scalar`] overrides the choice at run time
//! (tests, benchmarks, `ANOMALY_CLUSTERING_ISA=scalar`).
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(target_arch = "x86_64")]
use std::sync::OnceLock;

pub(crate) mod block;
mod scalar;

#[cfg(target_arch = "x86_64")]
mod avx2;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

/// Rows of the `a` operand in one micro-tile (the reduced dimension of the fused min).
pub(crate) const MR: usize = 6;
/// Lanes of the packed `b` operand in one micro-tile (two 8-wide `ymm` registers with AVX2).
pub(crate) const NR: usize = 16;
/// Floats in one micro-tile (`MR × NR`, row-major: row = `a` row, column = `b` lane).
pub(crate) const TILE: usize = MR * NR;

/// `c ← (acc ? c : 0) + A·Bᵀ` on one tile, `kc` terms.
///
/// Contract (checked by [`Kernels::tile_dot`] before the call): `lda >= kc`, `a.len() >= (MR-1)*lda + kc`,
/// `b.len() >= kc*NR`.
type TileDotFn = unsafe fn(kc: usize, a: &[f32], lda: usize, b: &[f32], c: &mut [f32; TILE], acc: bool);

/// Like [`TileDotFn`], then instead of storing the tile, for every lane `j`:
/// `runmin[j] ← min(runmin[j], min_i (an[i] − 2·tile[i][j]))`. `c` is read only when `acc`.
type TileMinFn = unsafe fn(
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &[f32; TILE],
    acc: bool,
    an: &[f32; MR],
    runmin: &mut [f32; NR],
);

/// Like [`TileMinFn`] (same `runmin` update), plus the *column* reduction of the symmetric self-join: for
/// every row `i`, `colmin[i] ← min(colmin[i], min_j (ln[j] − 2·tile[i][j]))`, where `ln` holds the lanes'
/// squared norms (`+∞` for padding lanes, so they never win).
type TileMinBothFn = unsafe fn(
    kc: usize,
    a: &[f32],
    lda: usize,
    b: &[f32],
    c: &[f32; TILE],
    acc: bool,
    an: &[f32; MR],
    runmin: &mut [f32; NR],
    ln: &[f32; NR],
    colmin: &mut [f32; MR],
);

/// `Σ (x−y)²` of two equal-length slices.
type PairFn = unsafe fn(x: &[f32], y: &[f32]) -> f32;

/// One ISA's kernels. Fields are private so that a table holding `target_feature` functions can only be built
/// by this module, after checking that the CPU supports them: that is what makes the safe wrappers sound.
pub(crate) struct Kernels {
    name: &'static str,
    tile_dot: TileDotFn,
    tile_min: TileMinFn,
    tile_min_both: TileMinBothFn,
    l2sq: PairFn,
}

impl Kernels {
    /// The ISA name reported by [`isa`].
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// See [`TileDotFn`]. Panics only if the caller breaks the (internal) length contract, which the drivers
    /// in this crate establish by construction; the check is what makes the raw-pointer kernels sound.
    #[inline]
    pub(crate) fn tile_dot(&self, kc: usize, a: &[f32], lda: usize, b: &[f32], c: &mut [f32; TILE], acc: bool) {
        check_tile(kc, a.len(), lda, b.len());
        // SAFETY: lengths checked just above; the table was built only if the CPU has the ISA (see `Kernels`).
        unsafe { (self.tile_dot)(kc, a, lda, b, c, acc) }
    }

    /// See [`TileMinFn`]; same contract as [`Kernels::tile_dot`].
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tile_min(
        &self,
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: &[f32; TILE],
        acc: bool,
        an: &[f32; MR],
        runmin: &mut [f32; NR],
    ) {
        check_tile(kc, a.len(), lda, b.len());
        // SAFETY: lengths checked just above; the table was built only if the CPU has the ISA (see `Kernels`).
        unsafe { (self.tile_min)(kc, a, lda, b, c, acc, an, runmin) }
    }

    /// See [`TileMinBothFn`]; same contract as [`Kernels::tile_dot`].
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn tile_min_both(
        &self,
        kc: usize,
        a: &[f32],
        lda: usize,
        b: &[f32],
        c: &[f32; TILE],
        acc: bool,
        an: &[f32; MR],
        runmin: &mut [f32; NR],
        ln: &[f32; NR],
        colmin: &mut [f32; MR],
    ) {
        check_tile(kc, a.len(), lda, b.len());
        // SAFETY: lengths checked just above; the table was built only if the CPU has the ISA (see `Kernels`).
        unsafe { (self.tile_min_both)(kc, a, lda, b, c, acc, an, runmin, ln, colmin) }
    }

    /// `Σ (x[i]−y[i])²` over `min(x.len(), y.len())` terms.
    #[inline]
    pub(crate) fn l2sq(&self, x: &[f32], y: &[f32]) -> f32 {
        let n = x.len().min(y.len());
        // SAFETY: equal lengths by construction; ISA support as above.
        unsafe { (self.l2sq)(&x[..n], &y[..n]) }
    }
}

#[inline]
fn check_tile(kc: usize, alen: usize, lda: usize, blen: usize) {
    let ok = lda >= kc
        && (MR - 1)
            .checked_mul(lda)
            .and_then(|v| v.checked_add(kc))
            .is_some_and(|need| alen >= need)
        && kc.checked_mul(NR).is_some_and(|need| blen >= need);
    assert!(ok, "micro-kernel operand too short (internal error)");
}

static SCALAR: Kernels = Kernels {
    name: "scalar",
    tile_dot: scalar::tile_dot,
    tile_min: scalar::tile_min,
    tile_min_both: scalar::tile_min_both,
    l2sq: scalar::l2sq,
};

#[cfg(target_arch = "x86_64")]
static AVX2: Kernels = Kernels {
    name: "avx2",
    tile_dot: avx2::tile_dot,
    tile_min: avx2::tile_min,
    tile_min_both: avx2::tile_min_both,
    l2sq: avx2::l2sq,
};

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
static SIMD128: Kernels = Kernels {
    name: "simd128",
    tile_dot: simd128::tile_dot,
    tile_min: simd128::tile_min,
    tile_min_both: simd128::tile_min_both,
    l2sq: simd128::l2sq,
};

static FORCE_SCALAR: AtomicBool = AtomicBool::new(false);

/// Force the scalar kernels (for tests, benchmarks and `ANOMALY_CLUSTERING_ISA=scalar`), or allow SIMD again.
///
/// Takes effect for kernel calls that start after it; a call already running keeps its kernels.
pub fn set_force_scalar(force: bool) {
    FORCE_SCALAR.store(force, Ordering::SeqCst);
}

/// The best table this machine supports, ignoring [`set_force_scalar`]. Detected once.
fn detected() -> &'static Kernels {
    #[cfg(target_arch = "x86_64")]
    {
        static BEST: OnceLock<&'static Kernels> = OnceLock::new();
        BEST.get_or_init(|| {
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                &AVX2
            } else {
                &SCALAR
            }
        })
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    {
        &SIMD128
    }
    #[cfg(not(any(target_arch = "x86_64", all(target_arch = "wasm32", target_feature = "simd128"))))]
    {
        &SCALAR
    }
}

/// The kernel table to use now. Drivers call it once per public call, so one call never mixes ISAs.
#[inline]
pub(crate) fn kernels() -> &'static Kernels {
    if FORCE_SCALAR.load(Ordering::Relaxed) {
        &SCALAR
    } else {
        detected()
    }
}

/// The instruction set the kernels use now: `"avx2"`, `"simd128"` or `"scalar"`.
pub fn isa() -> &'static str {
    kernels().name()
}
