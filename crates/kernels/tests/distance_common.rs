//! Shared helpers of the distance/grouped tests (included with `#[path]`, not a test binary of its own).
#![allow(dead_code)]
use std::sync::{Mutex, MutexGuard};

/// SplitMix64: tiny, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// `n × d` values: `offset + scale·U(-1,1)` (a common offset exercises the centring / cancellation path).
pub fn data(rng: &mut Rng, n: usize, d: usize, offset: f32, scale: f32) -> Vec<f32> {
    (0..n * d).map(|_| offset + scale * (2.0 * rng.unit() - 1.0)).collect()
}

/// Oracle: direct `Σ (a−b)²` in f64.
pub fn l2sq64(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| (x as f64 - y as f64).powi(2)).sum()
}

pub fn norm2(a: &[f32]) -> f64 {
    a.iter().map(|&x| (x as f64).powi(2)).sum()
}

/// Tolerance on a squared distance between `a` and `b`: relative to their norms.
pub fn tol2(a: &[f32], b: &[f32]) -> f64 {
    1e-4 * (norm2(a) + norm2(b)) + 1e-12
}

/// Whether `got` (squared when `squared`) matches the oracle squared distance `want2` within `tol2`.
pub fn close(got: f32, want2: f64, tol2: f64, squared: bool) -> bool {
    // Written so that NaN fails too.
    if got.is_nan() || got < 0.0 {
        return false;
    }
    let got2 = if squared { got as f64 } else { (got as f64).powi(2) };
    (got2 - want2).abs() <= tol2
}

static ISA_LOCK: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary: `set_force_scalar` is process-global.
pub fn lock() -> MutexGuard<'static, ()> {
    ISA_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Run `f` with the detected ISA, then with the scalar one; returns both results. Resets the flag after.
pub fn both_isas<T>(mut f: impl FnMut(&'static str) -> T) -> (T, T) {
    ac_kernels::simd::set_force_scalar(false);
    let best = f(ac_kernels::simd::isa());
    ac_kernels::simd::set_force_scalar(true);
    assert_eq!(ac_kernels::simd::isa(), "scalar");
    let scalar = f("scalar");
    ac_kernels::simd::set_force_scalar(false);
    (best, scalar)
}

pub const DIMS: [usize; 8] = [1, 3, 7, 8, 9, 31, 512, 513];
