//! Output allocation of the allocating entry points: the size is computed from the dimensions only where the
//! inputs that determine it are consistent, and the allocation is fallible, so that neither inconsistent
//! arguments nor an absurd size can abort the process (an out-of-memory abort in the addon, a trap in wasm).
use crate::{Error, Result};

/// Largest output, in elements (2^32: beyond any typed array of the callers, and beyond what such a call could
/// mean; larger sizes come from inconsistent arguments).
const MAX_OUTPUT_LEN: u64 = 1 << 32;

/// `a * b`, or `None` on overflow.
#[inline]
pub(crate) fn mul(a: usize, b: usize) -> Option<usize> {
    a.checked_mul(b)
}

/// `Some(rows)` when `len == rows * d` with `d > 0`: the lengths that size an output are consistent.
#[inline]
pub(crate) fn rows_of(len: usize, rows: usize, d: usize) -> Option<usize> {
    (d > 0 && mul(rows, d) == Some(len)).then_some(rows)
}

/// Allocates the output of `len` elements (zeroed) and runs `kernel` on it.
///
/// When `len` is `None` (the dimensions do not fit the inputs) or the output cannot be allocated, `kernel` runs on
/// an empty output first, so that bad input is reported with the kernel's own error; only valid input whose
/// output does not fit gets [`Error::InvalidArgument`].
pub(crate) fn with_output<T: Copy + Default>(
    what: &str,
    len: Option<usize>,
    kernel: impl FnOnce(&mut [T]) -> Result<()>,
) -> Result<Vec<T>> {
    let Some(len) = len else {
        kernel(&mut [])?;
        return Ok(Vec::new());
    };
    match alloc::<T>(what, len) {
        Ok(mut out) => {
            kernel(&mut out)?;
            Ok(out)
        }
        Err(e) => {
            kernel(&mut [])?;
            Err(e)
        }
    }
}

fn alloc<T: Copy + Default>(what: &str, len: usize) -> Result<Vec<T>> {
    let too_big = || {
        Error::InvalidArgument(format!(
            "{what}: cannot allocate an output of {len} values ({} bytes)",
            len as u64 * std::mem::size_of::<T>() as u64
        ))
    };
    if len as u64 > MAX_OUTPUT_LEN {
        return Err(too_big());
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_big())?;
    v.resize(len, T::default());
    Ok(v)
}
