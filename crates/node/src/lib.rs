//! # ac-node: the Node-API addon of anomaly-clustering
//!
//! This crate **marshals and nothing else**: each export borrows its typed-array inputs, converts its dimensions
//! (JS numbers) to `usize`, calls one allocating `ac_kernels` entry point and hands the output `Vec` to JS. There
//! is no maths here, and no sizes: the kernels crate checks the shapes and allocates (fallibly).
//!
//! Each kernel is declared once, in the table of `ac_kernels` ([`ac_kernels::for_each_kernel`]), shared with the
//! wasm module: its JS name, its async twin's name, its arguments and the kernel call. [`table_kernels!`] expands
//! each line to the sync `#[napi]` export and the `…Async` one (on the libuv thread pool), so napi-rs generates
//! both and their typings from that one line. Only the linkage of a condensed matrix is written out here (its
//! working copy is the addon's own).
//!
//! Error contract (what `bindings/native.ts` relies on):
//! - a kernel error becomes a JS `Error` whose `code` is [`ac_kernels::Error::code`] (`ERR_SHAPE_MISMATCH`, …)
//!   and whose message is the error's `Display`;
//! - a dimension that is not a non-negative integer is `ERR_INVALID_ARGUMENT`, and so is an output too large to
//!   allocate (the kernels crate's error);
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

use ac_kernels::{self as k, GroupedMode, Method, Parallelism};
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

/// The heavy kernels run on the addon's rayon pool.
const PAR: Parallelism = Parallelism::Threads;

/// A dimension from JS (a double): must be a non-negative integer that fits.
fn dim(name: &str, v: f64) -> KResult<usize> {
    const MAX_SAFE: f64 = 9_007_199_254_740_991.0; // 2^53 - 1
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v <= MAX_SAFE && v <= usize::MAX as f64 {
        Ok(v as usize)
    } else {
        Err(Fail::invalid(format!("{name}: expected a non-negative integer, got {v}")))
    }
}

fn grouped_mode(mode: &str) -> KResult<GroupedMode> {
    Ok(GroupedMode::from_str(mode)?)
}

fn method(method: &str) -> KResult<Method> {
    Ok(Method::from_str(method)?)
}

/// An argument of an `…Async` export, copied before the work leaves the JS thread: JS keeps running meanwhile and
/// could write to, transfer or detach the input buffers (see the crate docs). The copy ([`working_copy`]) derefs
/// like the borrowed argument, so one kernel call serves the sync and the async export.
pub trait Owned {
    /// The owned copy.
    type Owned: Send + 'static;
    /// Copies (typed arrays) or moves (numbers, strings) the argument.
    fn owned(self) -> Self::Owned;
}

macro_rules! owned_by_copy {
    ($($slice:ident => $elem:ty),*) => {$(
        impl Owned for $slice<'_> {
            type Owned = Vec<$elem>;
            fn owned(self) -> Vec<$elem> {
                working_copy(&self)
            }
        }
        impl Owned for Option<$slice<'_>> {
            type Owned = Option<Vec<$elem>>;
            fn owned(self) -> Option<Vec<$elem>> {
                self.map(|s| working_copy(&s))
            }
        }
    )*};
}
owned_by_copy!(Float32ArraySlice => f32, Float64ArraySlice => f64, Uint32ArraySlice => u32, Int32ArraySlice => i32);

macro_rules! owned_by_move {
    ($($t:ty),*) => {$(
        impl Owned for $t {
            type Owned = $t;
            fn owned(self) -> $t {
                self
            }
        }
    )*};
}
owned_by_move!(f64, bool, String);

/// A condensed matrix for [`linkage_of`]: borrowed (sync export) or already an owned copy (async export).
pub trait Condensed<T: Copy> {
    /// The values, read in place (single linkage only reads them).
    fn values(&self) -> &[T];
    /// The kernel's working matrix: a [`working_copy`] of a borrowed matrix, the owned copy itself otherwise (so a
    /// big matrix is held once, not twice).
    fn into_working(self) -> Vec<T>;
}

impl Condensed<f64> for Float64ArraySlice<'_> {
    fn values(&self) -> &[f64] {
        self
    }
    fn into_working(self) -> Vec<f64> {
        working_copy(&self)
    }
}

impl Condensed<f32> for Float32ArraySlice<'_> {
    fn values(&self) -> &[f32] {
        self
    }
    fn into_working(self) -> Vec<f32> {
        working_copy(&self)
    }
}

impl<T: Copy> Condensed<T> for Vec<T> {
    fn values(&self) -> &[T] {
        self
    }
    fn into_working(self) -> Vec<T> {
        self
    }
}

/// Linkage of a condensed matrix: single linkage only reads it; the other methods work in place on a copy of the
/// same float type: for f64 this is exactly `linkage` (SciPy's Z bit for bit); for f32 it halves the memory, every
/// updated distance being rounded to f32 (Z equal up to that rounding).
fn linkage_of<T: ac_kernels::float::Float>(y: impl Condensed<T>, n: f64, m: &str) -> KResult<Vec<f64>> {
    let (n, m) = (dim("n", n)?, method(m)?);
    if m == Method::Single {
        return Ok(k::linkage::linkage(y.values(), n, m)?);
    }
    Ok(k::linkage::linkage_in_place(&mut y.into_working(), n, m)?)
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

/// One export: `name [/ name_async: "Promise<…>"] (arguments) -> JsArray(element) = kernel call;` expands to the
/// sync export and, when named, its `…Async` twin (the table's lines come here through [`table_kernels!`]). The call is written once and serves both: in
/// the sync export the typed arrays are borrowed, in the async one they are owned copies ([`Owned`]); both deref
/// to slices.
macro_rules! kernel {
    (
        $(#[doc = $doc:literal])*
        $name:ident / $name_async:ident : $promise:tt ($($arg:ident : $ty:ty),* $(,)?) -> $js:ident($elem:ty) = $call:expr;
    ) => {
        kernel! { $(#[doc = $doc])* $name ($($arg: $ty),*) -> $js($elem) = $call; }

        /// The same on the libuv thread pool (inputs copied first); failures reject the promise.
        #[napi(catch_unwind, ts_return_type = $promise)]
        #[allow(non_snake_case, clippy::too_many_arguments)]
        pub fn $name_async($($arg: $ty),*) -> AsyncTask<Job<Vec<$elem>>> {
            $(let $arg = Owned::owned($arg);)*
            Job::spawn(move || -> KResult<Vec<$elem>> { Ok($call?) })
        }
    };
    (
        $(#[doc = $doc:literal])*
        $name:ident ($($arg:ident : $ty:ty),* $(,)?) -> $js:ident($elem:ty) = $call:expr;
    ) => {
        $(#[doc = $doc])*
        #[napi(catch_unwind)]
        #[allow(non_snake_case, clippy::too_many_arguments)]
        pub fn $name($($arg: $ty),*) -> napi::Result<$js, Code> {
            run(|| -> KResult<Vec<$elem>> { Ok($call?) }).map($js::new)
        }
    };
}

kernel! {
    /// Linkage of an f64 condensed matrix of `n` points: SciPy's Z, `(n−1) × 4`.
    linkage_f64 / linkage_f64_async: "Promise<Float64Array>" (y: Float64ArraySlice, n: f64, method: String) -> Float64Array(f64)
        = linkage_of::<f64>(y, n, &method);
}
kernel! {
    /// Linkage of an f32 condensed matrix, in place on an f32 copy (half the memory of an f64 one; Z equal to the
    /// f64 computation's up to f32 rounding of the intermediate distances).
    linkage_f32 / linkage_f32_async: "Promise<Float64Array>" (y: Float32ArraySlice, n: f64, method: String) -> Float64Array(f64)
        = linkage_of::<f32>(y, n, &method);
}

/// A table argument as the kernel call sees it: a dimension as a checked `usize`, a mode parsed from its name, the
/// rest as they are.
macro_rules! arg {
    (dim, $a:ident) => { dim(stringify!($a), $a)? };
    (k, $a:ident) => { dim(stringify!($a), $a)? };
    (mode, $a:ident) => { grouped_mode(&$a)? };
    ($kind:ident, $a:ident) => { $a };
}

/// Expands the kernel table of `ac_kernels` ([`ac_kernels::for_each_kernel`]): each line becomes a [`kernel!`],
/// its argument kinds turned into napi-rs types one by one.
macro_rules! table_kernels {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident $(/ $async:ident)? | $wasm:ident ($($arg:ident : $kind:ident),* $(,)?) -> $out:ident = $call:expr;
    )*) => {$(
        table_kernels! { @arg [$(#[doc = $doc])* $name $(/ $async)? -> $out = { $(let $arg = arg!($kind, $arg);)* $call }] [] $($arg: $kind,)* }
    )*};
    (@arg $head:tt [$($done:tt)*] $a:ident: f32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: Float32ArraySlice,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: f64s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: Float64ArraySlice,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: u32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: Uint32ArraySlice,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: i32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: Int32ArraySlice,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: opt_u32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: Option<Uint32ArraySlice>,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: opt_i32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: Option<Int32ArraySlice>,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: dim, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: f64,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: k, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: f64,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: f64, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: f64,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: bool, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: bool,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: mode, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: String,] $($rest)* } };
    (@arg [$(#[doc = $doc:literal])* $name:ident $(/ $async:ident)? -> f32s = $call:expr] [$($args:tt)*]) => {
        kernel! { $(#[doc = $doc])* $name $(/ $async: "Promise<Float32Array>")? ($($args)*) -> Float32Array(f32) = $call; }
    };
    (@arg [$(#[doc = $doc:literal])* $name:ident $(/ $async:ident)? -> f64s = $call:expr] [$($args:tt)*]) => {
        kernel! { $(#[doc = $doc])* $name $(/ $async: "Promise<Float64Array>")? ($($args)*) -> Float64Array(f64) = $call; }
    };
    (@arg [$(#[doc = $doc:literal])* $name:ident $(/ $async:ident)? -> i32s = $call:expr] [$($args:tt)*]) => {
        kernel! { $(#[doc = $doc])* $name $(/ $async: "Promise<Int32Array>")? ($($args)*) -> Int32Array(i32) = $call; }
    };
}

ac_kernels::for_each_kernel!(table_kernels);

/// The kernel table as text ([`ac_kernels::KERNEL_SIGNATURES`]): `bindings/native.ts` compares it with its own.
#[napi(catch_unwind)]
pub fn kernel_signatures() -> napi::Result<String, Code> {
    run(|| Ok(ac_kernels::KERNEL_SIGNATURES.to_owned()))
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
