//! # ac-wasm: the WebAssembly face of `ac-kernels`
//!
//! This crate marshals and does nothing else: every `hc_*` export receives typed arrays that wasm-bindgen has
//! already copied into linear memory (`&[f32]`, …), calls exactly one allocating `ac_kernels` entry point and
//! hands the output back as a `Vec` (copied out into a fresh typed array). Shapes, output sizes and the
//! allocation are the kernels crate's. The kernels' exports are the lines of the table of `ac_kernels`
//! ([`ac_kernels::for_each_kernel`], shared with the addon) expanded by [`table_kernels!`]; only the linkage of a
//! condensed matrix and the module's own functions are written out here.
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

/// A table argument as the kernel call sees it: a mode read from its name (see [`string_arg`]), the rest as they are.
macro_rules! arg {
    (mode, $a:ident) => { string_arg(&$a, stringify!($a))?.parse::<GroupedMode>()? };
    ($kind:ident, $a:ident) => { $a };
}

/// Expands the kernel table of `ac_kernels` ([`ac_kernels::for_each_kernel`]): each line becomes one `hc_*`
/// export, its argument kinds turned into wasm-bindgen types one by one (no async twins: `bindings/wasm.ts` runs the
/// sync export inside a promise).
macro_rules! table_kernels {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident $(/ $async:ident)? | $wasm:ident ($($arg:ident : $kind:ident),* $(,)?) -> $out:ident = $call:expr;
    )*) => {$(
        table_kernels! { @arg [$(#[doc = $doc])* $wasm -> $out = { $(let $arg = arg!($kind, $arg);)* $call }] [] $($arg: $kind,)* }
    )*};
    (@arg $head:tt [$($done:tt)*] $a:ident: f32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: &[f32],] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: f64s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: &[f64],] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: u32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: &[u32],] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: i32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: &[i32],] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: opt_u32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: Option<Vec<u32>>,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: opt_i32s, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: Option<Vec<i32>>,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: dim, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: usize,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: k, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: usize,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: f64, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: f64,] $($rest)* } };
    (@arg $head:tt [$($done:tt)*] $a:ident: bool, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: bool,] $($rest)* } };
    // A string taken as a JsValue, never as `&str` (see `string_arg`).
    (@arg $head:tt [$($done:tt)*] $a:ident: mode, $($rest:tt)*) => { table_kernels! { @arg $head [$($done)* $a: JsValue,] $($rest)* } };
    (@arg [$(#[doc = $doc:literal])* $wasm:ident -> f32s = $call:expr] $args:tt) => { table_kernels! { @emit f32 [$(#[doc = $doc])* $wasm = $call] $args } };
    (@arg [$(#[doc = $doc:literal])* $wasm:ident -> f64s = $call:expr] $args:tt) => { table_kernels! { @emit f64 [$(#[doc = $doc])* $wasm = $call] $args } };
    (@arg [$(#[doc = $doc:literal])* $wasm:ident -> i32s = $call:expr] $args:tt) => { table_kernels! { @emit i32 [$(#[doc = $doc])* $wasm = $call] $args } };
    (@emit $elem:ident [$(#[doc = $doc:literal])* $wasm:ident = $call:expr] [$($args:tt)*]) => {
        $(#[doc = $doc])*
        #[wasm_bindgen]
        #[allow(non_snake_case, clippy::too_many_arguments)]
        pub fn $wasm($($args)*) -> Result<Vec<$elem>, JsError> {
            (|| -> Result<Vec<$elem>, Error> { Ok($call?) })().map_err(js_err)
        }
    };
}

k::for_each_kernel!(table_kernels);

/// The kernel table as text ([`ac_kernels::KERNEL_SIGNATURES`]): `bindings/wasm.ts` compares it with its own.
#[wasm_bindgen]
pub fn hc_kernel_signatures() -> String {
    k::KERNEL_SIGNATURES.to_owned()
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
