//! # ac-kernels: the numeric kernels of Anomaly Clustering
//!
//! Pure Rust, no FFI, no knowledge of JavaScript. The Node-API addon (`crates/node`) and the WebAssembly module
//! (`crates/wasm`) only marshal data into and out of these functions.
//!
//! Conventions:
//! - Data are flat, row-major slices with explicit dimensions. Each kernel has one declaration that writes into a
//!   caller-allocated `&mut [T]` (`pdist_f32`, `cdist_f32`, …) and, beside it, an allocating entry point of the
//!   same arguments (`pdist`, `cdist`, …) that checks the shapes, sizes and allocates the output (fallibly: a size
//!   that cannot be allocated is an [`Error::InvalidArgument`], never an abort) and calls it. The binding crates
//!   call the allocating entry points and only convert arguments and errors.
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
//! Parallelism: the heavy kernels take a [`Parallelism`] argument. With the `parallel` feature,
//! [`Parallelism::Threads`] splits the work over the rayon global pool; without it (wasm32) it runs serially.
//! Either way the results are the same, bit for bit.
#![deny(missing_docs)]

pub mod distance;
pub mod error;
pub mod fcluster;
pub mod float;
pub mod grouped;
pub mod linear;
pub mod linkage;
mod output;
pub mod pooling;
pub mod simd;
pub mod table;
pub mod weights;

pub use error::{Error, Result};
pub use grouped::GroupedMode;
pub use linkage::Method;
pub use table::KERNEL_SIGNATURES;

/// Index of the pair `(i, j)`, `i < j < n`, in a condensed distance vector of `n` points.
#[inline]
pub fn condensed_index(n: usize, i: usize, j: usize) -> usize {
    debug_assert!(i < j && j < n);
    n * i - i * (i + 1) / 2 + (j - i - 1)
}

/// ABI version shared by the addon and the wasm module; `bindings/` refuses an artifact with another one. The
/// signatures of the table's kernels are checked by themselves ([`KERNEL_SIGNATURES`]); bump this when a convention
/// or an export outside the table changes. `ABI_VERSION` in `bindings/abi.ts` must follow (a test reads this line
/// and fails until it does).
pub const ABI_VERSION: u32 = 6;

/// How a kernel may spread its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Parallelism {
    /// On the calling thread.
    #[default]
    Serial,
    /// Over the rayon global pool when the crate is built with the `parallel` feature; serially without it.
    /// The results are the same as [`Parallelism::Serial`]'s, bit for bit.
    Threads,
}

impl Parallelism {
    /// Whether the work really goes to the thread pool (`Threads` with the `parallel` feature).
    #[inline]
    pub(crate) fn threads(self) -> bool {
        cfg!(feature = "parallel") && self == Parallelism::Threads
    }
}
