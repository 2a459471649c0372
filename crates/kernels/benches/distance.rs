//! Distance-kernel benchmark (std::time, no harness): GFLOP/s of `cdist` and of the grouped nearest-neighbour
//! search in its product shape (unsupervised patch weights: queries = base = all patches, groups = images).
//!
//! `cargo bench -p ac-kernels --features parallel --bench distance`
//!
//! Flops are counted as GEMM flops, `2 · pairs · d`. The grouped search over the full 100 × 784 × 1024 problem
//! is 12.6 TFLOP, so by default only the queries of the first few images are timed (against the whole base,
//! exactly the work each image does in the full run) and the full time is extrapolated; set
//! `AC_BENCH_FULL=1` to time the full problem with the multi-threaded AVX2 path.
use ac_kernels::{distance, grouped, simd, GroupedMode};
use std::time::Instant;

/// SplitMix64 → uniform [0, 1): non-negative like CNN features.
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
        })
        .collect()
}

/// Best of `reps` runs, in seconds.
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn report(name: &str, secs: f64, flops: f64) {
    println!(
        "{name:<64} {:>9.3} s {:>8.1} GFLOP/s  [isa={}]",
        secs,
        flops / secs / 1e9,
        simd::isa()
    );
}

#[derive(Clone, Copy)]
enum Threads {
    One,
    #[cfg(feature = "parallel")]
    Pool,
}

impl Threads {
    fn label(self) -> String {
        match self {
            Threads::One => "1 thread".into(),
            #[cfg(feature = "parallel")]
            Threads::Pool => format!("{} threads", rayon::current_num_threads()),
        }
    }
}

fn all_threads() -> Vec<Threads> {
    #[allow(unused_mut)]
    let mut v = vec![Threads::One];
    #[cfg(feature = "parallel")]
    v.push(Threads::Pool);
    v
}

fn cdist(th: Threads, q: &[f32], nq: usize, b: &[f32], nb: usize, d: usize, out: &mut [f32]) {
    match th {
        Threads::One => distance::cdist_f32(q, nq, b, nb, d, false, ac_kernels::Parallelism::Serial, out),
        #[cfg(feature = "parallel")]
        Threads::Pool => distance::cdist_f32(q, nq, b, nb, d, false, ac_kernels::Parallelism::Threads, out),
    }
    .expect("cdist");
}

#[allow(clippy::too_many_arguments)]
fn grouped_nn(th: Threads, q: &[f32], nq: usize, base: &[f32], off: &[u32], d: usize, qg: &[i32], out: &mut [f32]) {
    let mode = GroupedMode::MeanExcludingOwn;
    match th {
        Threads::One => grouped::grouped_nn_f32(q, nq, base, off, d, mode, Some(qg), false, ac_kernels::Parallelism::Serial, out),
        #[cfg(feature = "parallel")]
        Threads::Pool => grouped::grouped_nn_f32(q, nq, base, off, d, mode, Some(qg), false, ac_kernels::Parallelism::Threads, out),
    }
    .expect("grouped_nn");
}

fn main() {
    let full = std::env::var_os("AC_BENCH_FULL").is_some();
    simd::set_force_scalar(false);
    println!("ac-kernels distance bench: detected isa = {}", simd::isa());

    // cdist 5000 × 1536 vs 5000.
    let (n, d) = (5000usize, 1536usize);
    let q = data(n * d, 1);
    let b = data(n * d, 2);
    let mut out = vec![0.0f32; n * n];
    let flops = 2.0 * (n * n * d) as f64;
    for force in [false, true] {
        simd::set_force_scalar(force);
        for th in all_threads() {
            let reps = if force { 1 } else { 3 };
            let s = time(reps, || cdist(th, &q, n, &b, n, d, &mut out));
            report(&format!("cdist {n}x{d} vs {n} (euclidean), {}", th.label()), s, flops);
        }
    }
    simd::set_force_scalar(false);
    drop((q, b, out));

    // Grouped NN: 100 bags × 784 patches × 1024 dims, queries = base, mean over the other images.
    let (bags, m, d) = (100usize, 784usize, 1024usize);
    let base = data(bags * m * d, 3);
    let off: Vec<u32> = (0..=bags).map(|i| (i * m) as u32).collect();
    let qg_all: Vec<i32> = (0..bags * m).map(|i| (i / m) as i32).collect();
    // Each image's queries skip their own image: (bags − 1) · m base rows per query.
    let per_query_flops = 2.0 * ((bags - 1) * m * d) as f64;
    let full_flops = per_query_flops * (bags * m) as f64;
    println!(
        "grouped NN {bags} bags x {m} patches x {d} dims, mean-excluding-own: {:.1} TFLOP in full",
        full_flops / 1e12
    );
    for force in [false, true] {
        simd::set_force_scalar(force);
        for th in all_threads() {
            // Query images timed: all with AC_BENCH_FULL (AVX2, pool only), else a few (1 for scalar).
            let qbags = match (force, th) {
                (true, _) => 1,
                #[cfg(feature = "parallel")]
                (false, Threads::Pool) if full => bags,
                (false, Threads::One) => 2,
                #[allow(unreachable_patterns)]
                _ => 4,
            };
            let nq = qbags * m;
            let mut out = vec![0.0f32; nq];
            let s = time(1, || {
                grouped_nn(th, &base[..nq * d], nq, &base, &off, d, &qg_all[..nq], &mut out)
            });
            let flops = per_query_flops * nq as f64;
            report(
                &format!("grouped NN {qbags}/{bags} bags of queries vs all, {}", th.label()),
                s,
                flops,
            );
            if qbags < bags {
                println!(
                    "{:<64} {:>9.1} s (extrapolated full {bags}x{m}x{d})",
                    "",
                    s * (bags / qbags) as f64
                );
            }
        }
    }
    simd::set_force_scalar(false);
}
