//! # ac-node: the Node-API addon of anomaly-clustering
//!
//! This crate **marshals and nothing else**: each export borrows its typed-array inputs, allocates its output,
//! calls one `ac_kernels` function and turns the result into JS values. There is no maths here.
//!
//! Error contract (what `bindings/native.ts` relies on):
//! - a kernel error becomes a JS `Error` whose `code` is [`ac_kernels::Error::code`] (`ERR_SHAPE_MISMATCH`, …)
//!   and whose message is the error's `Display`;
//! - a dimension that is not a non-negative integer, or an output too large to allocate, is
//!   `ERR_INVALID_ARGUMENT`;
//! - **no panic crosses into JS**: every export runs its work inside [`std::panic::catch_unwind`] (neon's
//!   failure boundary) and a panic becomes `ERR_INTERNAL`. The release profile keeps `panic = "unwind"` for this;
//!   the `#[napi(catch_unwind)]` attribute adds a second guard around napi-rs' own argument conversion;
//! - a JS value of the wrong type is rejected by napi-rs before any of our code runs: its `code` is a napi status
//!   (`InvalidArg`, `NumberExpected`, …) which the TS adapter maps to `ERR_INVALID_ARGUMENT`.
//!
//! Sync exports borrow the JS memory for the duration of the call (the JS thread is blocked, so nothing can
//! mutate or detach it). The `…Async` exports run on the libuv thread pool ([`napi::Task`]); because JS keeps
//! running meanwhile, and could write to, transfer or detach the input buffers, they **copy their inputs** into
//! owned `Vec`s first (one `memcpy`, negligible next to the O(n²·d) work) and hand the output `Vec` to JS without
//! a copy. Their validation errors reject the promise; they never throw synchronously for a bad value.
//! (Caveat shared by every addon: a typed array over a `SharedArrayBuffer` can still be written by another worker
//! during a sync call; the kernels then read torn values, never out of bounds.)
//!
//! `panicForTests` / `panicForTestsAsync` exist only to prove the failure boundary from JS (a panic on a rayon
//! worker comes back as `ERR_INTERNAL`); they have no other effect.
//!
//! Configuration, read once when the addon is first used (the loader calls `abiVersion()` right after load):
//! - `ANOMALY_CLUSTERING_ISA=scalar` forces the scalar kernels ([`ac_kernels::simd::set_force_scalar`]);
//! - `ANOMALY_CLUSTERING_THREADS=N` (N ≥ 1) sizes the rayon pool the heavy kernels use; default (unset or not a
//!   positive integer) is the available parallelism.
#![deny(missing_docs)]

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::str::FromStr;
use std::sync::Once;

use ac_kernels::{GroupedMode, Method};
use napi::bindgen_prelude::{
    AsyncTask, Float32Array, Float32ArraySlice, Float64Array, Float64ArraySlice, Int32Array, Int32ArraySlice,
    JsError, ToNapiValue, TypeName, Uint32ArraySlice,
};
use napi::{Env, Task};
use napi_derive::napi;

// ---------------------------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------------------------

/// The `code` of a JS error thrown by this addon. napi-rs puts an error's status string into the JS error's
/// `code`, so a status type that is just our code string gives JS exactly `err.code === "ERR_…"`.
#[derive(Debug, Clone, Copy)]
pub struct Code(&'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// Result of a sync export: `Err` becomes a thrown JS `Error` with `code`. (Exports spell it out as
/// `napi::Result<T, Code>`: `#[napi]` recognises a fallible return only by the name `Result`.)
type JsResult<T> = napi::Result<T, Code>;

/// A failure with its stable code. Plain data (`Send`), so it can travel back from a worker thread.
#[derive(Debug)]
pub struct Fail {
    code: &'static str,
    message: String,
}

impl From<ac_kernels::Error> for Fail {
    fn from(e: ac_kernels::Error) -> Self {
        Fail { code: e.code(), message: e.to_string() }
    }
}

impl Fail {
    fn invalid(message: String) -> Self {
        Fail { code: "ERR_INVALID_ARGUMENT", message }
    }

    fn internal(message: String) -> Self {
        Fail { code: "ERR_INTERNAL", message }
    }

    fn into_napi(self) -> napi::Error<Code> {
        napi::Error::new(Code(self.code), self.message)
    }

    /// A JS `Error` object with our `code`, wrapped so napi-rs rejects a promise with exactly that object.
    fn into_js_rejection(self, env: &Env) -> napi::Error {
        let value = JsError::from(self.into_napi()).into_unknown(*env);
        napi::Error::from(value)
    }
}

/// Result of the marshalling helpers.
pub type KResult<T> = Result<T, Fail>;

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// The failure boundary: runs `f`, turning a panic into `ERR_INTERNAL`. Every export goes through it.
fn guard<T>(f: impl FnOnce() -> KResult<T>) -> KResult<T> {
    match catch_unwind(AssertUnwindSafe(|| {
        init();
        f()
    })) {
        Ok(r) => r,
        Err(payload) => {
            let msg = panic_message(&*payload);
            // A payload whose Drop panics again must not escape either.
            let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
            Err(Fail::internal(format!("internal error in the native addon (panic): {msg}")))
        }
    }
}

/// [`guard`] for a sync export.
fn run<T>(f: impl FnOnce() -> KResult<T>) -> JsResult<T> {
    guard(f).map_err(Fail::into_napi)
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------

static INIT: Once = Once::new();

fn init() {
    INIT.call_once(|| {
        if std::env::var("ANOMALY_CLUSTERING_ISA").is_ok_and(|v| v.trim().eq_ignore_ascii_case("scalar")) {
            ac_kernels::simd::set_force_scalar(true);
        }
        let requested = std::env::var("ANOMALY_CLUSTERING_THREADS")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|&n| n > 0);
        let n = requested.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        // Fails only if the global pool already exists (it cannot: nothing else in this image uses rayon
        // before the first export runs); then the existing pool is used.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("ac-kernels-{i}"))
            .build_global();
    });
}

// ---------------------------------------------------------------------------------------------------------------
// Marshalling helpers
// ---------------------------------------------------------------------------------------------------------------

/// Largest length of a JS typed array (V8: 2^32 elements); a larger output could not be returned anyway.
const MAX_OUT_LEN: usize = 1 << 32;

/// A dimension from JS (a double): must be a non-negative integer that fits.
fn dim(name: &str, v: f64) -> KResult<usize> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0; // 2^53 - 1
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE && v <= usize::MAX as f64 {
        Ok(v as usize)
    } else {
        Err(Fail::invalid(format!("{name}: expected a non-negative integer, got {v}")))
    }
}

fn mul(name: &str, a: usize, b: usize) -> KResult<usize> {
    a.checked_mul(b).ok_or_else(|| Fail::invalid(format!("{name}: {a} × {b} overflows")))
}

/// `got == expected`, else the kernels' own `ShapeMismatch` (same code and message as if the kernel had seen it).
/// Checked here only where a wrong length would make us allocate an output sized by garbage dimensions.
fn expect_len(what: &'static str, got: usize, expected: usize) -> KResult<()> {
    if got == expected {
        Ok(())
    } else {
        Err(ac_kernels::Error::ShapeMismatch { what, expected, got }.into())
    }
}

/// A zeroed output of `len` elements; a size JS cannot hold or the allocator refuses is an error, not an abort.
fn alloc<T: Copy + Default>(what: &str, len: usize) -> KResult<Vec<T>> {
    let too_big = || Fail::invalid(format!("{what}: cannot allocate an output of {len} elements"));
    if len > MAX_OUT_LEN {
        return Err(too_big());
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| too_big())?;
    v.resize(len, T::default());
    Ok(v)
}

// ---------------------------------------------------------------------------------------------------------------
// Kernel calls shared by the sync and async exports (plain slices in, owned Vec out)
// ---------------------------------------------------------------------------------------------------------------

fn pdist_impl(x: &[f32], n: f64, d: f64, squared: bool) -> KResult<Vec<f32>> {
    let (n, d) = (dim("n", n)?, dim("d", d)?);
    expect_len("x", x.len(), mul("n*d", n, d)?)?;
    // n(n−1)/2 without overflowing in the intermediate product: halve the even factor first.
    let pairs = if n % 2 == 0 { mul("n(n-1)/2", n / 2, n.saturating_sub(1))? } else { mul("n(n-1)/2", n, (n - 1) / 2)? };
    let mut out = alloc("pdist", pairs)?;
    ac_kernels::distance::pdist_f32_par(x, n, d, squared, &mut out)?;
    Ok(out)
}

fn cdist_impl(q: &[f32], nq: f64, b: &[f32], nb: f64, d: f64, squared: bool) -> KResult<Vec<f32>> {
    let (nq, nb, d) = (dim("nq", nq)?, dim("nb", nb)?, dim("d", d)?);
    expect_len("q", q.len(), mul("nq*d", nq, d)?)?;
    expect_len("b", b.len(), mul("nb*d", nb, d)?)?;
    let mut out = alloc("cdist", mul("nq*nb", nq, nb)?)?;
    ac_kernels::distance::cdist_f32_par(q, nq, b, nb, d, squared, &mut out)?;
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn grouped_nn_impl(
    q: &[f32],
    nq: f64,
    base: &[f32],
    offsets: &[u32],
    d: f64,
    mode: &str,
    query_groups: Option<&[i32]>,
    squared: bool,
) -> KResult<Vec<f32>> {
    let (nq, d) = (dim("nq", nq)?, dim("d", d)?);
    let mode = GroupedMode::from_str(mode)?;
    expect_len("queries", q.len(), mul("nq*d", nq, d)?)?;
    let ngroups = offsets.len().saturating_sub(1);
    let len = if mode == GroupedMode::PerGroup { mul("nq*ngroups", nq, ngroups)? } else { nq };
    let mut out = alloc("groupedNn", len)?;
    ac_kernels::grouped::grouped_nn_f32_par(q, nq, base, offsets, d, mode, query_groups, squared, &mut out)?;
    Ok(out)
}

/// The symmetric self-join (`queries = base`, each row's query group = its own group): about half the work.
fn grouped_nn_self_impl(base: &[f32], offsets: &[u32], d: f64, mode: &str, squared: bool) -> KResult<Vec<f32>> {
    let d = dim("d", d)?;
    let mode = GroupedMode::from_str(mode)?;
    let nq = base.len().checked_div(d).unwrap_or(0);
    let ngroups = offsets.len().saturating_sub(1);
    let len = if mode == GroupedMode::PerGroup { mul("nq*ngroups", nq, ngroups)? } else { nq };
    let mut out = alloc("groupedNnSelf", len)?;
    ac_kernels::grouped::grouped_nn_self_f32_par(base, offsets, d, mode, squared, &mut out)?;
    Ok(out)
}

fn linear_map_impl(x: &[f32], n: f64, d_in: f64, w: &[f32], d_out: f64) -> KResult<Vec<f32>> {
    let (n, d_in, d_out) = (dim("n", n)?, dim("dIn", d_in)?, dim("dOut", d_out)?);
    // zero dimensions first (ERR_EMPTY, as the kernel and the TS reference report them), then the lengths
    if d_in == 0 {
        return Err(ac_kernels::Error::Empty("dIn (input dimension)").into());
    }
    if d_out == 0 {
        return Err(ac_kernels::Error::Empty("dOut (output dimension)").into());
    }
    expect_len("x", x.len(), mul("n*dIn", n, d_in)?)?;
    expect_len("w", w.len(), mul("dOut*dIn", d_out, d_in)?)?;
    let mut out = alloc("linearMap", mul("n*dOut", n, d_out)?)?;
    ac_kernels::linear::linear_map_f32_par(x, n, d_in, w, d_out, &mut out)?;
    Ok(out)
}

fn softmax_weights_impl(scores: &[f32], offsets: &[u32], tau: f64) -> KResult<Vec<f32>> {
    let mut out = alloc("softmaxWeights", scores.len())?;
    ac_kernels::weights::softmax_weights(scores, offsets, tau, &mut out)?;
    Ok(out)
}

/// Output `nbags × d` of the pooling kernels; `rows` must be `offsets[last] × d` (checked before allocating).
fn pooled_out(what: &str, rows: &[f32], offsets: &[u32], d: usize) -> KResult<Vec<f32>> {
    // Offsets are checked against the rows actually given (same codes as the kernels and the TS reference),
    // before the output is sized from them.
    if d == 0 {
        return Err(ac_kernels::Error::InvalidArgument(format!("{what}: d must be ≥ 1, got 0")).into());
    }
    if rows.len() % d != 0 {
        return Err(ac_kernels::Error::ShapeMismatch { what: "rows", expected: (rows.len() / d + 1) * d, got: rows.len() }.into());
    }
    ac_kernels::weights::check_offsets(offsets, rows.len() / d)?;
    alloc(what, mul("nbags*d", offsets.len().saturating_sub(1), d)?)
}

fn weighted_mean_impl(rows: &[f32], offsets: &[u32], d: f64, weights: &[f32]) -> KResult<Vec<f32>> {
    let d = dim("d", d)?;
    let mut out = pooled_out("weightedMean", rows, offsets, d)?;
    ac_kernels::pooling::weighted_mean_f32(rows, offsets, d, weights, &mut out)?;
    Ok(out)
}

fn max_pool_impl(rows: &[f32], offsets: &[u32], d: f64) -> KResult<Vec<f32>> {
    let d = dim("d", d)?;
    let mut out = pooled_out("maxPool", rows, offsets, d)?;
    ac_kernels::pooling::max_pool_f32(rows, offsets, d, &mut out)?;
    Ok(out)
}

/// Linkage of a borrowed condensed matrix: single linkage only reads it; the other methods work in place on a
/// copy of the same float type ([`working_copy`]): for f64 this is exactly `linkage` (SciPy's Z bit for bit);
/// for f32 it halves the memory, every updated distance being rounded to f32 (Z equal up to that rounding).
fn linkage_impl<T: ac_kernels::float::Float>(y: &[T], n: f64, method: &str) -> KResult<Vec<f64>> {
    let nn = dim("n", n)?;
    let m = Method::from_str(method)?;
    if m == Method::Single {
        return Ok(ac_kernels::linkage::linkage(y, nn, m)?);
    }
    linkage_owned_impl(working_copy(y), n, method)
}

/// Linkage of an owned copy (the async paths, and [`linkage_impl`]): the copy itself is the kernel's working
/// matrix, so a big `y` is held once instead of twice.
fn linkage_owned_impl<T: ac_kernels::float::Float>(mut y: Vec<T>, n: f64, method: &str) -> KResult<Vec<f64>> {
    let n = dim("n", n)?;
    let method = Method::from_str(method)?;
    Ok(ac_kernels::linkage::linkage_in_place(&mut y, n, method)?)
}

/// A copy of `src` in memory advised for transparent huge pages (Linux, ≥ 64 MiB). The linkage's nearest-
/// neighbour scans read a column of the condensed matrix, one entry per row, i.e. one 4 KiB page per entry: with
/// 2 MiB pages the whole matrix stays within the TLB's reach instead of costing a page walk per entry.
fn working_copy<T: Copy>(src: &[T]) -> Vec<T> {
    let mut v: Vec<T> = Vec::with_capacity(src.len());
    advise_huge_pages(v.as_mut_ptr().cast(), std::mem::size_of_val(src));
    v.extend_from_slice(src);
    v
}

#[cfg(target_os = "linux")]
fn advise_huge_pages(ptr: *mut u8, bytes: usize) {
    const HUGE: usize = 2 << 20;
    if bytes < 64 << 20 {
        return;
    }
    let start = (ptr as usize).next_multiple_of(HUGE);
    let end = (ptr as usize + bytes) & !(HUGE - 1);
    if end > start {
        // SAFETY: the range lies inside the allocation `ptr .. ptr+bytes` owned by the caller's Vec, not yet
        // touched; MADV_HUGEPAGE only changes how the kernel backs those pages (a failure is harmless: ignored).
        unsafe {
            libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_ptr: *mut u8, _bytes: usize) {}

/// Ward linkage straight from the `n × d` rows `x` ([`ac_kernels::linkage::ward_from_vectors_par`]): `O(n·d)`
/// memory instead of the condensed matrix, each nearest-neighbour scan split over the rayon pool.
/// `sizes` (`None` = all 1): row `i` is the centroid of `sizes[i]` observations (size-weighted Ward).
fn ward_from_vectors_impl(x: &[f32], n: f64, d: f64, sizes: Option<&[u32]>) -> KResult<Vec<f64>> {
    let (n, d) = (dim("n", n)?, dim("d", d)?);
    expect_len("x", x.len(), mul("n*d", n, d)?)?;
    Ok(ac_kernels::linkage::ward_from_vectors_weighted_par(x, n, d, sizes)?)
}

/// Labels output of the cut kernels; `z` must be `(n−1) × 4` (checked before allocating `n` labels).
fn labels_out(what: &str, z: &[f64], n: usize) -> KResult<Vec<i32>> {
    expect_len("z", z.len(), mul("(n-1)*4", n.saturating_sub(1), 4)?)?;
    alloc(what, n)
}

fn cut_k_impl(z: &[f64], n: f64, k: f64) -> KResult<Vec<i32>> {
    let (n, k) = (dim("n", n)?, dim("k", k)?);
    let mut out = labels_out("cutK", z, n)?;
    ac_kernels::fcluster::cut_k(z, n, k, &mut out)?;
    Ok(out)
}

fn cut_height_impl(z: &[f64], n: f64, height: f64) -> KResult<Vec<i32>> {
    let n = dim("n", n)?;
    let mut out = labels_out("cutHeight", z, n)?;
    ac_kernels::fcluster::cut_height(z, n, height, &mut out)?;
    Ok(out)
}

// ---------------------------------------------------------------------------------------------------------------
// Async machinery: one Task type for every async export
// ---------------------------------------------------------------------------------------------------------------

/// An owned kernel output that becomes a JS typed array without a copy.
pub trait IntoJs: Send + 'static {
    /// The JS value the promise resolves to.
    type Js: ToNapiValue + TypeName;
    /// Hand the data over to JS.
    fn into_js(self) -> Self::Js;
}

impl IntoJs for Vec<f32> {
    type Js = Float32Array;
    fn into_js(self) -> Float32Array {
        Float32Array::new(self)
    }
}

impl IntoJs for Vec<f64> {
    type Js = Float64Array;
    fn into_js(self) -> Float64Array {
        Float64Array::new(self)
    }
}

/// Work for the libuv thread pool: a closure over **owned copies** of the inputs (see the crate docs).
pub struct Job<T: IntoJs> {
    work: Option<Box<dyn FnOnce() -> KResult<T> + Send>>,
}

impl<T: IntoJs> Job<T> {
    fn spawn(work: impl FnOnce() -> KResult<T> + Send + 'static) -> AsyncTask<Job<T>> {
        AsyncTask::new(Job { work: Some(Box::new(work)) })
    }
}

impl<T: IntoJs> Task for Job<T> {
    /// Failures travel as data and are turned into a coded JS error on the JS thread in `resolve`.
    type Output = KResult<T>;
    type JsValue = T::Js;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let work = self.work.take();
        Ok(guard(move || match work {
            Some(work) => work(),
            None => Err(Fail::internal("native task computed twice".to_owned())),
        }))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Self::JsValue> {
        match output {
            Ok(v) => Ok(v.into_js()),
            Err(fail) => Err(fail.into_js_rejection(&env)),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Exports
// ---------------------------------------------------------------------------------------------------------------

/// ABI version of this addon (`ac_kernels::ABI_VERSION`); `bindings/native.ts` refuses another one.
#[napi(catch_unwind)]
pub fn abi_version() -> napi::Result<u32, Code> {
    run(|| Ok(ac_kernels::ABI_VERSION))
}

/// Instruction set the kernels use now (`"avx2"` or `"scalar"`), after `ANOMALY_CLUSTERING_ISA`.
#[napi(catch_unwind)]
pub fn isa() -> napi::Result<String, Code> {
    run(|| Ok(ac_kernels::simd::isa().to_owned()))
}

/// Threads of the rayon pool the heavy kernels use (after `ANOMALY_CLUSTERING_THREADS`).
#[napi(catch_unwind)]
pub fn threads() -> napi::Result<u32, Code> {
    run(|| Ok(u32::try_from(rayon::current_num_threads()).unwrap_or(u32::MAX)))
}

/// Condensed pairwise distances of `n` rows of `x` (`n*d`): `n(n−1)/2` values, SciPy's layout.
#[napi(catch_unwind)]
pub fn pdist(x: Float32ArraySlice, n: f64, d: f64, squared: bool) -> napi::Result<Float32Array, Code> {
    run(|| pdist_impl(&x, n, d, squared).map(Float32Array::new))
}

/// [`pdist`] on the libuv thread pool; resolves to the same array.
#[napi(catch_unwind, ts_return_type = "Promise<Float32Array>")]
pub fn pdist_async(x: Float32ArraySlice, n: f64, d: f64, squared: bool) -> AsyncTask<Job<Vec<f32>>> {
    let x = x.to_vec();
    Job::spawn(move || pdist_impl(&x, n, d, squared))
}

/// Distances between `nq` rows of `q` and `nb` rows of `b` (both `*d`): `nq × nb`, row-major.
#[napi(catch_unwind)]
pub fn cdist(q: Float32ArraySlice, nq: f64, b: Float32ArraySlice, nb: f64, d: f64, squared: bool) -> napi::Result<Float32Array, Code> {
    run(|| cdist_impl(&q, nq, &b, nb, d, squared).map(Float32Array::new))
}

/// [`cdist`] on the libuv thread pool.
#[napi(catch_unwind, ts_return_type = "Promise<Float32Array>")]
pub fn cdist_async(
    q: Float32ArraySlice,
    nq: f64,
    b: Float32ArraySlice,
    nb: f64,
    d: f64,
    squared: bool,
) -> AsyncTask<Job<Vec<f32>>> {
    let (q, b) = (q.to_vec(), b.to_vec());
    Job::spawn(move || cdist_impl(&q, nq, &b, nb, d, squared))
}

/// `n` rows of `x` (`n*dIn`) mapped by the `dOut × dIn` matrix `w`: `x · wᵀ`, `n × dOut`.
#[napi(catch_unwind)]
pub fn linear_map(x: Float32ArraySlice, n: f64, d_in: f64, w: Float32ArraySlice, d_out: f64) -> napi::Result<Float32Array, Code> {
    run(|| linear_map_impl(&x, n, d_in, &w, d_out).map(Float32Array::new))
}

/// [`linear_map`] on the libuv thread pool.
#[napi(catch_unwind, ts_return_type = "Promise<Float32Array>")]
pub fn linear_map_async(x: Float32ArraySlice, n: f64, d_in: f64, w: Float32ArraySlice, d_out: f64) -> AsyncTask<Job<Vec<f32>>> {
    let (x, w) = (x.to_vec(), w.to_vec());
    Job::spawn(move || linear_map_impl(&x, n, d_in, &w, d_out))
}

/// Grouped nearest-neighbour search (`mode`: `per-group` | `min` | `mean-excluding-own`).
#[napi(catch_unwind)]
#[allow(clippy::too_many_arguments)]
pub fn grouped_nn(
    queries: Float32ArraySlice,
    nq: f64,
    base: Float32ArraySlice,
    group_offsets: Uint32ArraySlice,
    d: f64,
    mode: String,
    query_groups: Option<Int32ArraySlice>,
    squared: bool,
) -> napi::Result<Float32Array, Code> {
    run(|| {
        let qg = query_groups.as_deref();
        grouped_nn_impl(&queries, nq, &base, &group_offsets, d, &mode, qg, squared).map(Float32Array::new)
    })
}

/// [`grouped_nn`] on the libuv thread pool.
#[napi(catch_unwind, ts_return_type = "Promise<Float32Array>")]
#[allow(clippy::too_many_arguments)]
pub fn grouped_nn_async(
    queries: Float32ArraySlice,
    nq: f64,
    base: Float32ArraySlice,
    group_offsets: Uint32ArraySlice,
    d: f64,
    mode: String,
    query_groups: Option<Int32ArraySlice>,
    squared: bool,
) -> AsyncTask<Job<Vec<f32>>> {
    let (q, base, offsets) = (queries.to_vec(), base.to_vec(), group_offsets.to_vec());
    let qg = query_groups.map(|g| g.to_vec());
    Job::spawn(move || grouped_nn_impl(&q, nq, &base, &offsets, d, &mode, qg.as_deref(), squared))
}

/// Grouped nearest-neighbour search of the base against itself, each row's own group being the group it
/// belongs to: the same result as `groupedNn(base, nb, base, groupOffsets, d, mode, rowGroups, squared)` in about
/// half the work (each pair of groups is multiplied once).
#[napi(catch_unwind)]
pub fn grouped_nn_self(
    base: Float32ArraySlice,
    group_offsets: Uint32ArraySlice,
    d: f64,
    mode: String,
    squared: bool,
) -> napi::Result<Float32Array, Code> {
    run(|| grouped_nn_self_impl(&base, &group_offsets, d, &mode, squared).map(Float32Array::new))
}

/// [`grouped_nn_self`] on the libuv thread pool.
#[napi(catch_unwind, ts_return_type = "Promise<Float32Array>")]
pub fn grouped_nn_self_async(
    base: Float32ArraySlice,
    group_offsets: Uint32ArraySlice,
    d: f64,
    mode: String,
    squared: bool,
) -> AsyncTask<Job<Vec<f32>>> {
    let (base, offsets) = (base.to_vec(), group_offsets.to_vec());
    Job::spawn(move || grouped_nn_self_impl(&base, &offsets, d, &mode, squared))
}

/// Softmax of `scores / tau` within each bag (`bagOffsets`, length nbags+1).
#[napi(catch_unwind)]
pub fn softmax_weights(scores: Float32ArraySlice, bag_offsets: Uint32ArraySlice, tau: f64) -> napi::Result<Float32Array, Code> {
    run(|| softmax_weights_impl(&scores, &bag_offsets, tau).map(Float32Array::new))
}

/// Weighted mean of each bag's rows: `nbags × d`.
#[napi(catch_unwind)]
pub fn weighted_mean(
    rows: Float32ArraySlice,
    bag_offsets: Uint32ArraySlice,
    d: f64,
    weights: Float32ArraySlice,
) -> napi::Result<Float32Array, Code> {
    run(|| weighted_mean_impl(&rows, &bag_offsets, d, &weights).map(Float32Array::new))
}

/// Per-dimension max of each bag's rows: `nbags × d`.
#[napi(catch_unwind)]
pub fn max_pool(rows: Float32ArraySlice, bag_offsets: Uint32ArraySlice, d: f64) -> napi::Result<Float32Array, Code> {
    run(|| max_pool_impl(&rows, &bag_offsets, d).map(Float32Array::new))
}

/// Linkage of an f64 condensed matrix of `n` points: SciPy's Z, `(n−1) × 4`.
#[napi(catch_unwind)]
pub fn linkage_f64(y: Float64ArraySlice, n: f64, method: String) -> napi::Result<Float64Array, Code> {
    run(|| linkage_impl(&y[..], n, &method).map(Float64Array::new))
}

/// Linkage of an f32 condensed matrix, in place on an f32 copy (half the memory of an f64 one; Z equal to the
/// f64 computation's up to f32 rounding of the intermediate distances).
#[napi(catch_unwind)]
pub fn linkage_f32(y: Float32ArraySlice, n: f64, method: String) -> napi::Result<Float64Array, Code> {
    run(|| linkage_impl(&y[..], n, &method).map(Float64Array::new))
}

/// [`linkage_f64`] on the libuv thread pool.
#[napi(catch_unwind, ts_return_type = "Promise<Float64Array>")]
pub fn linkage_f64_async(y: Float64ArraySlice, n: f64, method: String) -> AsyncTask<Job<Vec<f64>>> {
    let y = working_copy(&y);
    Job::spawn(move || linkage_owned_impl(y, n, &method))
}

/// [`linkage_f32`] on the libuv thread pool.
#[napi(catch_unwind, ts_return_type = "Promise<Float64Array>")]
pub fn linkage_f32_async(y: Float32ArraySlice, n: f64, method: String) -> AsyncTask<Job<Vec<f64>>> {
    let y = working_copy(&y);
    Job::spawn(move || linkage_owned_impl(y, n, &method))
}

/// Ward linkage of the `n × d` rows `x` without the condensed matrix: SciPy's Z, `(n−1) × 4`, equal to
/// `linkageF32(pdist(x), n, "ward")` up to floating-point rounding (`O(n·d)` memory, `O(n²·d)` time). With
/// `sizes`, row `i` is the centroid of `sizes[i]` observations (size-weighted Ward).
#[napi(catch_unwind)]
pub fn ward_from_vectors(x: Float32ArraySlice, n: f64, d: f64, sizes: Option<Uint32ArraySlice>) -> napi::Result<Float64Array, Code> {
    run(|| ward_from_vectors_impl(&x, n, d, sizes.as_deref()).map(Float64Array::new))
}

/// [`ward_from_vectors`] on the libuv thread pool (the scans still use the rayon pool).
#[napi(catch_unwind, ts_return_type = "Promise<Float64Array>")]
pub fn ward_from_vectors_async(x: Float32ArraySlice, n: f64, d: f64, sizes: Option<Uint32ArraySlice>) -> AsyncTask<Job<Vec<f64>>> {
    let x = x.to_vec();
    let sizes = sizes.map(|s| s.to_vec());
    Job::spawn(move || ward_from_vectors_impl(&x, n, d, sizes.as_deref()))
}

/// Cut Z into exactly `k` clusters: `n` 0-based labels in order of first appearance.
#[napi(catch_unwind)]
pub fn cut_k(z: Float64ArraySlice, n: f64, k: f64) -> napi::Result<Int32Array, Code> {
    run(|| cut_k_impl(&z, n, k).map(Int32Array::new))
}

/// Cut Z keeping merges of height ≤ `height`: `n` 0-based labels in order of first appearance.
#[napi(catch_unwind)]
pub fn cut_height(z: Float64ArraySlice, n: f64, height: f64) -> napi::Result<Int32Array, Code> {
    run(|| cut_height_impl(&z, n, height).map(Int32Array::new))
}

/// Test hook of the failure boundary: panics inside a rayon job (as a kernel bug would) and must come back as a
/// thrown `ERR_INTERNAL`, never an abort. No other effect.
#[napi(catch_unwind)]
pub fn panic_for_tests(message: String) -> napi::Result<(), Code> {
    run(|| {
        rayon::join(|| panic!("{message}"), || ());
        Ok(())
    })
}

/// [`panic_for_tests`] on the libuv thread pool: the promise rejects with `ERR_INTERNAL`.
#[napi(catch_unwind, ts_return_type = "Promise<never>")]
pub fn panic_for_tests_async(message: String) -> AsyncTask<Job<Vec<f32>>> {
    Job::spawn(move || {
        rayon::join(|| panic!("{message}"), || ());
        Ok(Vec::new())
    })
}
