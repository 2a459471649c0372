//! The table of exported kernels: **one declaration per kernel** for both binding crates.
//!
//! [`for_each_kernel!`](crate::for_each_kernel) hands the whole table to a macro of the caller's; `crates/node`
//! expands each line into a `#[napi]` export (and its `…Async` twin on the libuv pool), `crates/wasm` into a
//! `#[wasm_bindgen]` export. Adding a kernel to both artifacts is one line here (after its function in this crate).
//!
//! A line reads `jsName [/ jsNameAsync] | wasm_name (arg: kind, …) -> out = call;` where
//! - `jsName` is the addon's export (napi-rs keeps a camelCase name as it is), `jsNameAsync` its promise twin
//!   (addon only: the wasm adapter runs the sync export inside a promise), and `wasm_name` the wasm module's export;
//! - each argument kind says how the value crosses and what the `call` sees:
//!   `f32s` `f64s` `u32s` `i32s` a typed array (a slice in the call), `opt_u32s` `opt_i32s` the same or
//!   null/undefined (an `Option` of something that `as_deref()`s to a slice), `dim` and `k` a count (a `usize` in
//!   the call; a JS number that is not a non-negative integer is `ERR_INVALID_ARGUMENT`), `bool`, `f64` a number
//!   passed as it is, `mode` a [`GroupedMode`](crate::GroupedMode) given by its name;
//! - `out` is the typed array returned: `f32s`, `f64s` or `i32s` (the call returns `Result<Vec<_>>`);
//! - `call` may use `PAR`, the binding crate's [`Parallelism`](crate::Parallelism).
//!
//! The argument names are the JS ones (camelCase): they appear in the generated typings and in error messages.
//! [`KERNEL_SIGNATURES`] is the same table as text; both artifacts export it and the TypeScript loader compares it
//! with its own table (`KERNELS` in `bindings/backend.ts`), so a changed signature is refused at load time without
//! a manual version bump.

/// Calls `$m! { … }` with every line of the kernel table (see the [module docs](crate::table)).
#[macro_export]
macro_rules! for_each_kernel {
    ($m:ident) => {
        $m! {
            /// Condensed pairwise distances of `n` rows of `x` (`n*d`): `n(n−1)/2` values, SciPy's layout.
            pdist / pdistAsync | hc_pdist (x: f32s, n: dim, d: dim, squared: bool) -> f32s
                = $crate::distance::pdist(&x, n, d, squared, PAR);
            /// Distances between `nq` rows of `q` and `nb` rows of `b` (both `*d`): `nq × nb`, row-major.
            cdist / cdistAsync | hc_cdist (q: f32s, nq: dim, b: f32s, nb: dim, d: dim, squared: bool) -> f32s
                = $crate::distance::cdist(&q, nq, &b, nb, d, squared, PAR);
            /// Grouped nearest-neighbour search (`mode`: `per-group` | `min` | `mean-excluding-own`); `nq*ngroups`
            /// values for `per-group`, else `nq`. `queryGroups` is absent or one group index per query row.
            groupedNn / groupedNnAsync | hc_grouped_nn (queries: f32s, nq: dim, base: f32s, groupOffsets: u32s, d: dim, mode: mode, queryGroups: opt_i32s, squared: bool) -> f32s
                = $crate::grouped::grouped_nn(&queries, nq, &base, &groupOffsets, d, mode, queryGroups.as_deref(), squared, PAR);
            /// Grouped nearest-neighbour search of the base against itself, each row's own group being the group it
            /// belongs to: the result of `groupedNn(base, nb, base, groupOffsets, d, mode, rowGroups, squared)` in
            /// about half the work (each pair of groups is multiplied once).
            groupedNnSelf / groupedNnSelfAsync | hc_grouped_nn_self (base: f32s, groupOffsets: u32s, d: dim, mode: mode, squared: bool) -> f32s
                = $crate::grouped::grouped_nn_self(&base, &groupOffsets, d, mode, squared, PAR);
            /// Softmax of `scores / tau` within each bag (`bagOffsets`, length nbags+1): one weight per score.
            softmaxWeights | hc_softmax_weights (scores: f32s, bagOffsets: u32s, tau: f64) -> f32s
                = $crate::weights::softmax_weights_vec(&scores, &bagOffsets, tau);
            /// Weighted mean of each bag's rows: `nbags × d`.
            weightedMean | hc_weighted_mean (rows: f32s, bagOffsets: u32s, d: dim, weights: f32s) -> f32s
                = $crate::pooling::weighted_mean(&rows, &bagOffsets, d, &weights);
            /// Per-dimension max of each bag's rows: `nbags × d`.
            maxPool | hc_max_pool (rows: f32s, bagOffsets: u32s, d: dim) -> f32s
                = $crate::pooling::max_pool(&rows, &bagOffsets, d);
            /// `n` rows of `x` (`n*dIn`) mapped by the `dOut × dIn` matrix `w`: `x · wᵀ`, `n × dOut`.
            linearMap / linearMapAsync | hc_linear_map (x: f32s, n: dim, dIn: dim, w: f32s, dOut: dim) -> f32s
                = $crate::linear::linear_map(&x, n, dIn, &w, dOut, PAR);
            /// Ward linkage of the `n × d` rows `x` without the condensed matrix: SciPy's Z, `(n−1) × 4`, equal to
            /// the linkage of `pdist(x)` up to floating-point rounding (`O(n·d)` memory, `O(n²·d)` time). With
            /// `sizes`, row `i` is the centroid of `sizes[i]` observations (size-weighted Ward).
            wardFromVectors / wardFromVectorsAsync | hc_ward_from_vectors (x: f32s, n: dim, d: dim, sizes: opt_u32s) -> f64s
                = $crate::linkage::ward_from_vectors(&x, n, d, sizes.as_deref(), PAR);
            /// Cut Z into exactly `k` clusters: `n` 0-based labels in order of first appearance.
            cutK | hc_cut_k (z: f64s, n: dim, k: k) -> i32s
                = $crate::fcluster::cut_k_vec(&z, n, k);
            /// Cut Z keeping merges of height ≤ `height`: `n` 0-based labels in order of first appearance.
            cutHeight | hc_cut_height (z: f64s, n: dim, height: f64) -> i32s
                = $crate::fcluster::cut_height_vec(&z, n, height);
        }
    };
}

/// Renders the table as text, one kernel a line: `jsName(arg:kind,…,)->out`, then ` /jsNameAsync` for a twin.
macro_rules! signatures {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident $(/ $async:ident)? | $wasm:ident ($($arg:ident : $kind:ident),* $(,)?) -> $out:ident = $call:expr;
    )*) => {
        /// The kernel table as text, one line per kernel: `jsName(arg:kind,…,)->out`, then ` /jsNameAsync` when
        /// the addon has an async twin. Both artifacts export it (`kernelSignatures`); the TypeScript loader refuses
        /// an artifact whose line for one of its kernels differs from its own.
        pub const KERNEL_SIGNATURES: &str = concat!($(
            stringify!($name), "(", $(stringify!($arg), ":", stringify!($kind), ",",)* ")->", stringify!($out),
            $(" /", stringify!($async),)? "\n",
        )*);
    };
}

for_each_kernel!(signatures);

#[cfg(test)]
mod tests {
    use super::KERNEL_SIGNATURES;

    #[test]
    fn signatures_render_one_line_per_kernel() {
        let lines: Vec<&str> = KERNEL_SIGNATURES.lines().collect();
        assert_eq!(lines[0], "pdist(x:f32s,n:dim,d:dim,squared:bool,)->f32s /pdistAsync");
        assert!(lines.contains(&"cutK(z:f64s,n:dim,k:k,)->i32s"));
        for line in lines {
            let (name, rest) = line.split_once('(').expect(line);
            assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()), "{line}");
            assert!(rest.contains(")->"), "{line}");
        }
    }
}
