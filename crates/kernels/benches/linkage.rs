//! Linkage benchmark (std::time, no harness): ward/average/complete on random points (condensed matrix built
//! outside the timed region), and Ward from vectors.
//!
//! `cargo bench -p ac-kernels --bench linkage` (add `--features parallel` for `ward_from_vectors` with `Parallelism::Threads`).
//! Default sizes: n = 2000 and 5000 for the matrix methods, n = 5000, d = 256 for Ward from vectors;
//! `AC_BENCH_FULL=1` adds n = 20000 (a 1.6 GB f64 working matrix; the f32 in-place variant is timed too)
//! and Ward from vectors at n = 20000.
use ac_kernels::linkage::{linkage, linkage_in_place, ward_from_vectors, Method};
use std::time::Instant;

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

/// Condensed Euclidean distances of `n × d` points, f32 (naive; not timed).
fn condensed(x: &[f32], n: usize, d: usize) -> Vec<f32> {
    let mut y = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        let a = &x[i * d..i * d + d];
        for j in i + 1..n {
            let b = &x[j * d..j * d + d];
            let s: f32 = a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum();
            y.push(s.sqrt());
        }
    }
    y
}

fn secs(f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    t.elapsed().as_secs_f64()
}

fn main() {
    let full = std::env::var("AC_BENCH_FULL").is_ok_and(|v| v == "1");
    let d = 32;
    let mut sizes = vec![2000usize, 5000];
    if full {
        sizes.push(20_000);
    }
    for &n in &sizes {
        let x = data(n * d, n as u64);
        let y = condensed(&x, n, d);
        for m in [Method::Ward, Method::Average, Method::Complete, Method::Single] {
            let mut z = Vec::new();
            let t = secs(|| z = linkage(&y, n, m).unwrap());
            println!("linkage {:<9} n={n:<6} f32 in, f64 work   {t:>9.3} s", m.as_str());
            assert_eq!(z.len(), 4 * (n - 1));
        }
        if full || n <= 5000 {
            let mut work = y.clone();
            let t = secs(|| {
                linkage_in_place(&mut work, n, Method::Ward).unwrap();
            });
            println!("linkage_in_place ward n={n:<6} f32 work           {t:>9.3} s");
        }
    }
    let wv: &[usize] = if full { &[5000, 20_000] } else { &[5000] };
    for &n in wv {
        let d = 256;
        let x = data(n * d, 7 + n as u64);
        let t = secs(|| {
            ward_from_vectors(&x, n, d, None, ac_kernels::Parallelism::Serial).unwrap();
        });
        println!("ward_from_vectors n={n:<6} d={d}               {t:>9.3} s");
        #[cfg(feature = "parallel")]
        {
            let t = secs(|| {
                ac_kernels::linkage::ward_from_vectors(&x, n, d, None, ac_kernels::Parallelism::Threads).unwrap();
            });
            println!("ward_from_vectors (threads) n={n:<6} d={d} ({} threads) {t:>9.3} s", rayon::current_num_threads());
        }
    }
}
