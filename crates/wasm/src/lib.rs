//! # ac-wasm: the WebAssembly face of `ac-kernels`
//!
//! This crate marshals and does nothing else: every `hc_*` export receives typed arrays that wasm-bindgen has
//! already copied into linear memory (`&[f32]`, …), calls exactly one allocating `ac_kernels` entry point and
//! hands the output back as a `Vec` (copied out into a fresh typed array). Shapes, output sizes and the
//! allocation are the kernels crate's.
//!
//! Errors come back as values, never as traps: a kernel [`Error`] becomes a `JsError` whose message is
//! `"<CODE>: <message>"` (for example `"ERR_SHAPE_MISMATCH: x: expected length 6, got 5"`), and
//! `bindings/wasm.ts` rebuilds the same coded `KernelError` that the native addon throws.
//!
//! The module is built with `panic = "abort"`, so a panic traps. That path is unreachable by design: the kernels
//! never panic on any input, and their allocating entry points size outputs with checked arithmetic and allocate
//! them fallibly (an output linear memory cannot hold is `ERR_INVALID_ARGUMENT`, after the input checks). If a
//! trap still happens, `bindings/wasm.ts` reads the panic message that the hook below kept ([`hc_take_panic_message`]),
//! throws `ERR_INTERNAL` with it and re-instantiates the module (`__wbg_reset_state`). [`hc_panic_for_tests`]
//! exercises that path.
//!
//! Build: `node scripts/build-wasm.mjs` (Debian rustc-web + `-Zbuild-std`, see `.cargo/config.toml`).
#![deny(missing_docs)]

use ac_kernels::{self as k, Error, GroupedMode, Method, Parallelism};
use std::sync::Mutex;

use wasm_bindgen::prelude::*;

/// One thread: wasm32 is built without the `parallel` feature.
const PAR: Parallelism = Parallelism::Serial;

/// A string argument (`mode`, `method`) taken as a `JsValue` and read here: wasm-bindgen's `&str` marshalling
/// trusts the JS value to be a string, and a typed array or object passed there writes past the buffer it
/// sized (seen by the boundary fuzzer as a crash of the whole process). A non-string is `ERR_INVALID_ARGUMENT`.
fn string_arg(v: &JsValue, what: &str) -> Result<String, Error> {
    v.as_string().ok_or_else(|| Error::InvalidArgument(format!("{what}: expected a string")))
}

/// `"<CODE>: <message>"`, parsed back into `KernelError(code, message)` by `bindings/wasm.ts`.
fn js_err(e: Error) -> JsError {
    JsError::new(&format!("{}: {}", e.code(), e))
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
    k::distance::pdist(x, n, d, squared, PAR).map_err(js_err)
}

/// Distances between `nq` rows of `q` and `nb` rows of `b`: `nq*nb` values, row-major.
#[wasm_bindgen]
pub fn hc_cdist(q: &[f32], nq: usize, b: &[f32], nb: usize, d: usize, squared: bool) -> Result<Vec<f32>, JsError> {
    k::distance::cdist(q, nq, b, nb, d, squared, PAR).map_err(js_err)
}

/// `n` rows of `x` (`n*d_in`) mapped by the `d_out × d_in` matrix `w`: `x · wᵀ`, `n*d_out` values.
#[wasm_bindgen]
pub fn hc_linear_map(x: &[f32], n: usize, d_in: usize, w: &[f32], d_out: usize) -> Result<Vec<f32>, JsError> {
    k::linear::linear_map(x, n, d_in, w, d_out, PAR).map_err(js_err)
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
    mode: JsValue,
    query_groups: Option<Vec<i32>>,
    squared: bool,
) -> Result<Vec<f32>, JsError> {
    (|| {
        let mode: GroupedMode = string_arg(&mode, "mode")?.parse()?;
        k::grouped::grouped_nn(q, nq, base, offsets, d, mode, query_groups.as_deref(), squared, PAR)
    })()
    .map_err(js_err)
}

/// Grouped nearest-neighbour search of `base` against itself (each row's own group = the group it belongs to):
/// `hc_grouped_nn(base, nb, base, offsets, d, mode, row groups, squared)` in about half the work.
#[wasm_bindgen]
pub fn hc_grouped_nn_self(base: &[f32], offsets: &[u32], d: usize, mode: JsValue, squared: bool) -> Result<Vec<f32>, JsError> {
    (|| k::grouped::grouped_nn_self(base, offsets, d, string_arg(&mode, "mode")?.parse()?, squared, PAR))().map_err(js_err)
}

/// Softmax of `scores / tau` within each bag (`offsets`, nbags+1): one weight per score.
#[wasm_bindgen]
pub fn hc_softmax_weights(scores: &[f32], offsets: &[u32], tau: f64) -> Result<Vec<f32>, JsError> {
    k::weights::softmax_weights_vec(scores, offsets, tau).map_err(js_err)
}

/// Weighted mean of each bag's rows: `nbags*d` values.
#[wasm_bindgen]
pub fn hc_weighted_mean(rows: &[f32], offsets: &[u32], d: usize, weights: &[f32]) -> Result<Vec<f32>, JsError> {
    k::pooling::weighted_mean(rows, offsets, d, weights).map_err(js_err)
}

/// Per-dimension max of each bag's rows: `nbags*d` values.
#[wasm_bindgen]
pub fn hc_max_pool(rows: &[f32], offsets: &[u32], d: usize) -> Result<Vec<f32>, JsError> {
    k::pooling::max_pool(rows, offsets, d).map_err(js_err)
}

/// Linkage matrix Z (`(n-1)*4` f64) of an f64 condensed matrix; `method` is one of SciPy's names.
#[wasm_bindgen]
pub fn hc_linkage_f64(y: &[f64], n: usize, method: JsValue) -> Result<Vec<f64>, JsError> {
    (|| k::linkage::linkage(y, n, string_arg(&method, "method")?.parse::<Method>()?))().map_err(js_err)
}

/// Linkage matrix Z (`(n-1)*4` f64) of an f32 condensed matrix; `method` is one of SciPy's names.
#[wasm_bindgen]
pub fn hc_linkage_f32(y: &[f32], n: usize, method: JsValue) -> Result<Vec<f64>, JsError> {
    (|| k::linkage::linkage(y, n, string_arg(&method, "method")?.parse::<Method>()?))().map_err(js_err)
}

/// Ward linkage matrix Z (`(n-1)*4` f64) of the `n × d` rows `x`, without the condensed matrix (`O(n·d)` memory).
/// `sizes` is `undefined` (all 1) or the number of observations each row stands for (size-weighted Ward).
#[wasm_bindgen]
pub fn hc_ward_from_vectors(x: &[f32], n: usize, d: usize, sizes: Option<Vec<u32>>) -> Result<Vec<f64>, JsError> {
    k::linkage::ward_from_vectors(x, n, d, sizes.as_deref(), PAR).map_err(js_err)
}

/// Labels (0-based, `n` values) of the cut of Z into exactly `k` clusters.
#[wasm_bindgen]
pub fn hc_cut_k(z: &[f64], n: usize, k: usize) -> Result<Vec<i32>, JsError> {
    k::fcluster::cut_k_vec(z, n, k).map_err(js_err)
}

/// Labels (0-based, `n` values) keeping the merges of Z with height ≤ `height`.
#[wasm_bindgen]
pub fn hc_cut_height(z: &[f64], n: usize, height: f64) -> Result<Vec<i32>, JsError> {
    k::fcluster::cut_height_vec(z, n, height).map_err(js_err)
}
