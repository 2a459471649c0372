//! The error type of every kernel. Each variant maps to a stable code that JS sees as `err.code`.
use std::fmt;

/// Why a kernel refused its input.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// A slice has the wrong length for the dimensions given.
    ShapeMismatch {
        /// Which argument.
        what: &'static str,
        /// Expected length.
        expected: usize,
        /// Actual length.
        got: usize,
    },
    /// A NaN or infinite value where finite ones are required.
    NonFinite {
        /// Which argument.
        what: &'static str,
        /// Index of the first offending value.
        index: usize,
    },
    /// An input that must not be empty is.
    Empty(&'static str),
    /// `k` outside `1..=n`.
    KOutOfRange {
        /// Requested number of clusters.
        k: usize,
        /// Number of observations.
        n: usize,
    },
    /// Unknown method/mode name.
    InvalidMethod(String),
    /// Any other invalid argument, with a message saying what was expected.
    InvalidArgument(String),
}

impl Error {
    /// The stable code JS sees (`err.code`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::ShapeMismatch { .. } => "ERR_SHAPE_MISMATCH",
            Error::NonFinite { .. } => "ERR_NON_FINITE",
            Error::Empty(_) => "ERR_EMPTY",
            Error::KOutOfRange { .. } => "ERR_K_OUT_OF_RANGE",
            Error::InvalidMethod(_) => "ERR_INVALID_METHOD",
            Error::InvalidArgument(_) => "ERR_INVALID_ARGUMENT",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::ShapeMismatch { what, expected, got } => {
                write!(f, "{what}: expected length {expected}, got {got}")
            }
            Error::NonFinite { what, index } => write!(f, "{what}: value at index {index} is not finite"),
            Error::Empty(what) => write!(f, "{what}: must not be empty"),
            Error::KOutOfRange { k, n } => write!(f, "k must be in 1..={n}, got {k}"),
            Error::InvalidMethod(m) => write!(f, "unknown method {m:?}"),
            Error::InvalidArgument(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result alias of the kernels.
pub type Result<T> = std::result::Result<T, Error>;
