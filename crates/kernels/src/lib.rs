//! # ac-kernels: the numeric kernels of Anomaly Clustering
//!
//! Pure Rust, no FFI, no knowledge of JavaScript. The Node-API addon (`crates/node`) and the WebAssembly module
//! (`crates/wasm`) only marshal data into and out of these functions.
//!
//! Conventions:
//! - Data are flat, row-major slices with explicit dimensions; outputs are caller-allocated `&mut [T]`.
//! - Every function validates its shapes and returns [`Error`] instead of panicking.
//! - Distances are Euclidean unless a `squared` flag says squared Euclidean.
//! - The condensed distance vector is SciPy's: for `n` points, length `n(n-1)/2`, entry for `i < j` at
//!   `n*i - i*(i+1)/2 + (j - i - 1)` (see [`condensed_index`]).
//! - The linkage matrix Z is SciPy's: `(n-1) × 4` rows `[a, b, height, size]` with `a < b`; the cluster made at
//!   step `i` has id `n + i`.
//!
//! SIMD: x86-64 kernels use AVX2+FMA when the CPU has them (detected once at run time), else a scalar path;
//! [`simd::set_force_scalar`] forces the scalar path (the addon does it when `ANOMALY_CLUSTERING_ISA=scalar`).
//! On wasm32 the choice is made at compile time (`simd128`).
//!
//! With the `parallel` feature, `*_par` variants split the work over the rayon thread pool.
#![deny(missing_docs)]

pub mod distance;
pub mod error;
pub mod fcluster;
pub mod float;
pub mod grouped;
pub mod linear;
pub mod linkage;
pub mod pooling;
pub mod simd;
pub mod weights;

pub use error::{Error, Result};
pub use grouped::GroupedMode;
pub use linkage::Method;

/// Index of the pair `(i, j)`, `i < j < n`, in a condensed distance vector of `n` points.
#[inline]
pub fn condensed_index(n: usize, i: usize, j: usize) -> usize {
    debug_assert!(i < j && j < n);
    n * i - i * (i + 1) / 2 + (j - i - 1)
}

/// ABI version shared by the addon and the wasm module; `bindings/` refuses an artifact with another one.
pub const ABI_VERSION: u32 = 5;
