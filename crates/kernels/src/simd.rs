//! Run-time ISA dispatch. (STUB: being implemented; becomes `simd/mod.rs`.)
use std::sync::atomic::{AtomicBool, Ordering};

static FORCE_SCALAR: AtomicBool = AtomicBool::new(false);

/// Force the scalar kernels (for tests), or allow SIMD again.
pub fn set_force_scalar(force: bool) {
    FORCE_SCALAR.store(force, Ordering::SeqCst);
}

/// The instruction set the kernels use now: `"avx2"`, `"simd128"` or `"scalar"`.
pub fn isa() -> &'static str {
    "scalar"
}
