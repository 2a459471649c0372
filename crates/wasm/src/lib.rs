//! # ac-wasm: the WebAssembly face of `ac-kernels`
//!
//! This crate marshals and does nothing else: every `hc_*` export receives typed arrays that wasm-bindgen has
//! already copied into linear memory (`&[f32]`, …), allocates the output, calls exactly one `ac_kernels`
//! function and hands the output back as a `Vec` (copied out into a fresh typed array).
//!
//! Errors come back as values, never as traps: a kernel [`Error`] becomes a `JsError` whose message is
//! `"<CODE>: <message>"` (for example `"ERR_SHAPE_MISMATCH: x: expected length 6, got 5"`), and
//! `bindings/wasm.ts` rebuilds the same coded `KernelError` that the native addon throws.
//!
//! The module is built with `panic = "abort"`, so a panic traps. To keep that path unreachable the exports check
//! what they need before the kernel runs: lengths that size an output are compared with the dimensions, output
//! sizes use checked arithmetic, and outputs are allocated fallibly (`try_reserve_exact`; when memory cannot hold
//! one, the kernel still runs on an empty output so that bad input gets the kernel's own error). If a trap still
//! happens, `bindings/wasm.ts` reads the panic message that the hook below kept ([`hc_take_panic_message`]),
//! throws `ERR_INTERNAL` with it and re-instantiates the module (`__wbg_reset_state`). [`hc_panic_for_tests`]
//! exercises that path.
//!
//! Build: `node scripts/build-wasm.mjs` (Debian rustc-web + `-Zbuild-std`, see `.cargo/config.toml`).
#![deny(missing_docs)]

use ac_kernels::{self as k, Error, GroupedMode, Method};
use std::sync::Mutex;

use wasm_bindgen::prelude::*;

/// `"<CODE>: <message>"`, parsed back into `KernelError(code, message)` by `bindings/wasm.ts`.
fn js_err(e: Error) -> JsError {
    JsError::new(&format!("{}: {}", e.code(), e))
}

/// `a * b` or an `ERR_INVALID_ARGUMENT` naming the dimensions (wasm32 has a 32-bit `usize`).
fn mul(what: &str, a: usize, b: usize) -> Result<usize, Error> {
    a.checked_mul(b)
        .ok_or_else(|| Error::InvalidArgument(format!("{what}: {a} × {b} overflows the 32-bit wasm address space")))
}

/// An output size; an overflow becomes `usize::MAX`, which [`with_out`] cannot allocate and hands to the kernel
/// to diagnose.
fn size(a: usize, b: usize) -> usize {
    a.checked_mul(b).unwrap_or(usize::MAX)
}

/// `ERR_SHAPE_MISMATCH` unless `got == expected` (same wording as the kernels).
fn check_len(what: &'static str, got: usize, expected: usize) -> Result<(), Error> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::ShapeMismatch { what, expected, got })
    }
}

/// `len == rows * d` when `d > 0`, so that `rows` can size an output. `d == 0` is left to the kernel, which
/// rejects it before looking at lengths (checking here would report a different error for the same input).
fn check_rows(what: &'static str, len: usize, rows: usize, d: usize) -> Result<(), Error> {
    if d == 0 {
        return Ok(());
    }
    check_len(what, len, mul(what, rows, d)?)
}

/// A zeroed output of `len` elements, or `ERR_INVALID_ARGUMENT` if linear memory cannot hold it (instead of the
/// allocation-failure abort that `vec![0; len]` would be).
fn alloc<T: Copy + Default>(what: &str, len: usize) -> Result<Vec<T>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| {
        Error::InvalidArgument(format!(
            "{what}: cannot allocate {len} output values ({} bytes) in wasm linear memory",
            len as u64 * std::mem::size_of::<T>() as u64
        ))
    })?;
    v.resize(len, T::default());
    Ok(v)
}

/// Allocates the `len`-element output and runs the kernel on it. If linear memory cannot hold the output, the
/// kernel still runs, on an empty output, so that bad input is reported with the kernel's own error (an absurd
/// size usually comes from inconsistent arguments); only valid input gets the allocation error.
fn with_out<T: Copy + Default>(
    what: &str,
    len: usize,
    mut kernel: impl FnMut(&mut [T]) -> k::Result<()>,
) -> Result<Vec<T>, Error> {
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

/// Number of bags/groups described by an offsets array of length `nbags + 1` (an empty array: no bags; the
/// kernel reports it).
fn bags(offsets: &[u32]) -> usize {
    offsets.len().saturating_sub(1)
}

/// ABI version of the kernels this module was built from; `bindings/wasm.ts` refuses any other.
#[wasm_bindgen]
pub fn hc_abi_version() -> u32 {
    k::ABI_VERSION
}

/// Instruction set the kernels run on (`"simd128"` when built with `+simd128`, else `"scalar"`).
#[wasm_bindgen]
pub fn hc_isa() -> String {
    k::simd::isa().to_string()
}

/// Force the scalar kernels (`ANOMALY_CLUSTERING_ISA=scalar`), or allow SIMD again.
#[wasm_bindgen]
pub fn hc_set_force_scalar(force: bool) {
    k::simd::set_force_scalar(force);
}

/// Message of the last panic, kept by the panic hook: under panic=abort the panic traps right after the hook, and
/// `bindings/wasm.ts` reads it (from the trapped instance, before re-instantiating) for the `ERR_INTERNAL` message.
static LAST_PANIC: Mutex<String> = Mutex::new(String::new());

/// Runs when the module is instantiated (and re-instantiated): installs the panic hook.
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        if let Ok(mut last) = LAST_PANIC.try_lock() {
            *last = info.to_string();
        }
    }));
}

/// The message of the last panic (empty if none), and forgets it.
#[wasm_bindgen]
pub fn hc_take_panic_message() -> String {
    LAST_PANIC.try_lock().map(|mut last| std::mem::take(&mut *last)).unwrap_or_default()
}

/// Test hook (like the addon's `panicForTests`): panics, which traps under panic=abort; `bindings/wasm.ts` must
/// turn that into `ERR_INTERNAL` and re-instantiate the module.
#[wasm_bindgen]
pub fn hc_panic_for_tests(message: &str) {
    panic!("{message}");
}

/// Condensed pairwise distances of `n` rows of `x` (`n*d`): `n(n-1)/2` values.
#[wasm_bindgen]
pub fn hc_pdist(x: &[f32], n: usize, d: usize, squared: bool) -> Result<Vec<f32>, JsError> {
    (|| {
        check_rows("x", x.len(), n, d)?;
        let pairs = if n < 2 { 0 } else { size(n, n - 1) / 2 };
        with_out::<f32>("pdist", pairs, |out| k::distance::pdist_f32(x, n, d, squared, out))
    })()
    .map_err(js_err)
}

/// Distances between `nq` rows of `q` and `nb` rows of `b`: `nq*nb` values, row-major.
#[wasm_bindgen]
pub fn hc_cdist(q: &[f32], nq: usize, b: &[f32], nb: usize, d: usize, squared: bool) -> Result<Vec<f32>, JsError> {
    (|| {
        check_rows("q", q.len(), nq, d)?;
        check_rows("b", b.len(), nb, d)?;
        with_out::<f32>("cdist", size(nq, nb), |out| {
            k::distance::cdist_f32(q, nq, b, nb, d, squared, out)
        })
    })()
    .map_err(js_err)
}

/// `n` rows of `x` (`n*d_in`) mapped by the `d_out × d_in` matrix `w`: `x · wᵀ`, `n*d_out` values.
#[wasm_bindgen]
pub fn hc_linear_map(x: &[f32], n: usize, d_in: usize, w: &[f32], d_out: usize) -> Result<Vec<f32>, JsError> {
    (|| {
        // zero dimensions first (ERR_EMPTY, as the kernel and the TS reference report them), then the lengths
        if d_in == 0 {
            return Err(Error::Empty("dIn (input dimension)"));
        }
        if d_out == 0 {
            return Err(Error::Empty("dOut (output dimension)"));
        }
        check_rows("x", x.len(), n, d_in)?;
        check_rows("w", w.len(), d_out, d_in)?;
        let len = size(n, d_out);
        with_out::<f32>("linear_map", len, |out| k::linear::linear_map_f32(x, n, d_in, w, d_out, out))
    })()
    .map_err(js_err)
}

/// Grouped nearest-neighbour search (`mode`: `"per-group"`, `"min"`, `"mean-excluding-own"`); output
/// `nq*ngroups` values for `"per-group"`, else `nq`. `query_groups` is `undefined` or one group index per query.
#[wasm_bindgen]
#[allow(clippy::too_many_arguments)]
pub fn hc_grouped_nn(
    q: &[f32],
    nq: usize,
    base: &[f32],
    offsets: &[u32],
    d: usize,
    mode: &str,
    query_groups: Option<Vec<i32>>,
    squared: bool,
) -> Result<Vec<f32>, JsError> {
    (|| {
        let mode: GroupedMode = mode.parse()?;
        check_rows("q", q.len(), nq, d)?;
        let len = match mode {
            GroupedMode::PerGroup => size(nq, bags(offsets)),
            GroupedMode::Min | GroupedMode::MeanExcludingOwn => nq,
        };
        with_out::<f32>("grouped_nn", len, |out| {
            k::grouped::grouped_nn_f32(q, nq, base, offsets, d, mode, query_groups.as_deref(), squared, out)
        })
    })()
    .map_err(js_err)
}

/// Grouped nearest-neighbour search of `base` against itself (each row's own group = the group it belongs to):
/// `hc_grouped_nn(base, nb, base, offsets, d, mode, row groups, squared)` in about half the work.
#[wasm_bindgen]
pub fn hc_grouped_nn_self(base: &[f32], offsets: &[u32], d: usize, mode: &str, squared: bool) -> Result<Vec<f32>, JsError> {
    (|| {
        let mode: GroupedMode = mode.parse()?;
        let nq = base.len().checked_div(d).unwrap_or(0);
        let len = match mode {
            GroupedMode::PerGroup => size(nq, bags(offsets)),
            GroupedMode::Min | GroupedMode::MeanExcludingOwn => nq,
        };
        with_out::<f32>("grouped_nn_self", len, |out| {
            k::grouped::grouped_nn_self_f32(base, offsets, d, mode, squared, out)
        })
    })()
    .map_err(js_err)
}

/// Softmax of `scores / tau` within each bag (`offsets`, nbags+1): one weight per score.
#[wasm_bindgen]
pub fn hc_softmax_weights(scores: &[f32], offsets: &[u32], tau: f64) -> Result<Vec<f32>, JsError> {
    (|| {
        with_out::<f32>("softmax_weights", scores.len(), |out| {
            k::weights::softmax_weights(scores, offsets, tau, out)
        })
    })()
    .map_err(js_err)
}

/// Weighted mean of each bag's rows: `nbags*d` values.
#[wasm_bindgen]
pub fn hc_weighted_mean(rows: &[f32], offsets: &[u32], d: usize, weights: &[f32]) -> Result<Vec<f32>, JsError> {
    (|| {
        with_out::<f32>("weighted_mean", size(bags(offsets), d), |out| {
            k::pooling::weighted_mean_f32(rows, offsets, d, weights, out)
        })
    })()
    .map_err(js_err)
}

/// Per-dimension max of each bag's rows: `nbags*d` values.
#[wasm_bindgen]
pub fn hc_max_pool(rows: &[f32], offsets: &[u32], d: usize) -> Result<Vec<f32>, JsError> {
    (|| {
        with_out::<f32>("max_pool", size(bags(offsets), d), |out| {
            k::pooling::max_pool_f32(rows, offsets, d, out)
        })
    })()
    .map_err(js_err)
}

/// Linkage matrix Z (`(n-1)*4` f64) of an f64 condensed matrix; `method` is one of SciPy's names.
#[wasm_bindgen]
pub fn hc_linkage_f64(y: &[f64], n: usize, method: &str) -> Result<Vec<f64>, JsError> {
    (|| {
        let method: Method = method.parse()?;
        k::linkage::linkage(y, n, method)
    })()
    .map_err(js_err)
}

/// Linkage matrix Z (`(n-1)*4` f64) of an f32 condensed matrix; `method` is one of SciPy's names.
#[wasm_bindgen]
pub fn hc_linkage_f32(y: &[f32], n: usize, method: &str) -> Result<Vec<f64>, JsError> {
    (|| {
        let method: Method = method.parse()?;
        k::linkage::linkage(y, n, method)
    })()
    .map_err(js_err)
}

/// Ward linkage matrix Z (`(n-1)*4` f64) of the `n × d` rows `x`, without the condensed matrix (`O(n·d)` memory).
#[wasm_bindgen]
/// `sizes` is `undefined` (all 1) or the number of observations each row stands for (size-weighted Ward).
pub fn hc_ward_from_vectors(x: &[f32], n: usize, d: usize, sizes: Option<Vec<u32>>) -> Result<Vec<f64>, JsError> {
    (|| {
        check_len("x", x.len(), mul("x", n, d)?)?;
        k::linkage::ward_from_vectors_weighted(x, n, d, sizes.as_deref())
    })()
    .map_err(js_err)
}

/// Labels (0-based, `n` values) of the cut of Z into exactly `k` clusters.
#[wasm_bindgen]
pub fn hc_cut_k(z: &[f64], n: usize, k: usize) -> Result<Vec<i32>, JsError> {
    (|| {
        check_z(z, n)?;
        with_out::<i32>("cut_k", n, |out| k::fcluster::cut_k(z, n, k, out))
    })()
    .map_err(js_err)
}

/// Labels (0-based, `n` values) keeping the merges of Z with height ≤ `height`.
#[wasm_bindgen]
pub fn hc_cut_height(z: &[f64], n: usize, height: f64) -> Result<Vec<i32>, JsError> {
    (|| {
        check_z(z, n)?;
        with_out::<i32>("cut_height", n, |out| k::fcluster::cut_height(z, n, height, out))
    })()
    .map_err(js_err)
}

/// Z has `(n-1)*4` values; checked before an `n`-sized output is allocated (n = 0 is left to the kernel).
fn check_z(z: &[f64], n: usize) -> Result<(), Error> {
    if n == 0 {
        return Ok(());
    }
    check_len("z", z.len(), mul("z", n - 1, 4)?)
}
