//! Sealed float trait (f32, f64) so the crate needs no num-traits.

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A float type the kernels accept as condensed-matrix storage.
pub trait Float: sealed::Sealed + Copy + PartialOrd + Send + Sync + 'static {
    /// Widen to f64.
    fn to_f64(self) -> f64;
    /// Narrow from f64 (rounding to nearest for f32).
    fn from_f64(v: f64) -> Self;
}

impl Float for f32 {
    #[inline]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Float for f64 {
    #[inline]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline]
    fn from_f64(v: f64) -> Self {
        v
    }
}
