//! `linear_map_f32` against a direct f64 product, across tile edges (rows not multiples of 6, outputs not of 16,
//! d_in over one 256-deep slice), the parallel variant, and its errors.
use ac_kernels::linear::linear_map_f32;
use ac_kernels::Error;

fn lcg(seed: u64) -> impl FnMut() -> f32 {
    let mut s = seed;
    move || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

fn direct(x: &[f32], n: usize, d_in: usize, w: &[f32], d_out: usize) -> Vec<f64> {
    let mut out = vec![0.0f64; n * d_out];
    for i in 0..n {
        for j in 0..d_out {
            out[i * d_out + j] = (0..d_in).map(|k| x[i * d_in + k] as f64 * w[j * d_in + k] as f64).sum();
        }
    }
    out
}

#[test]
fn matches_direct_product_on_awkward_shapes() {
    for &(n, d_in, d_out) in &[(1, 1, 1), (7, 3, 5), (13, 256, 17), (50, 300, 40), (145, 64, 300), (6, 513, 16)] {
        let mut r = lcg((n * 1000 + d_in * 10 + d_out) as u64);
        let x: Vec<f32> = (0..n * d_in).map(|_| r()).collect();
        let w: Vec<f32> = (0..d_out * d_in).map(|_| r()).collect();
        let mut out = vec![f32::NAN; n * d_out];
        linear_map_f32(&x, n, d_in, &w, d_out, ac_kernels::Parallelism::Serial, &mut out).unwrap();
        let want = direct(&x, n, d_in, &w, d_out);
        for (i, (&a, &b)) in out.iter().zip(&want).enumerate() {
            assert!((a as f64 - b).abs() <= 1e-5 * (d_in as f64).sqrt() * 4.0, "n={n} d_in={d_in} d_out={d_out} [{i}]: {a} vs {b}");
        }
        #[cfg(feature = "parallel")]
        {
            let mut par = vec![f32::NAN; n * d_out];
            ac_kernels::linear::linear_map_f32(&x, n, d_in, &w, d_out, ac_kernels::Parallelism::Threads, &mut par).unwrap();
            assert_eq!(par, out, "parallel differs from sequential for n={n} d_in={d_in} d_out={d_out}");
        }
    }
}

#[test]
fn identity_and_empty() {
    let x = [1.5f32, -2.0, 0.25, 4.0, 5.0, -6.0];
    let w = [1.0f32, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0];
    let mut out = [0.0f32; 6];
    linear_map_f32(&x, 2, 3, &w, 3, ac_kernels::Parallelism::Serial, &mut out).unwrap();
    assert_eq!(out, x);
    let mut none: [f32; 0] = [];
    linear_map_f32(&[], 0, 3, &w, 3, ac_kernels::Parallelism::Serial, &mut none).unwrap();
}

#[test]
fn errors() {
    let x = [1.0f32; 6];
    let w = [1.0f32; 6];
    let mut out = [0.0f32; 4];
    assert!(matches!(linear_map_f32(&x, 2, 0, &w, 2, ac_kernels::Parallelism::Serial, &mut out), Err(Error::Empty(_))));
    assert!(matches!(linear_map_f32(&x, 2, 3, &w, 0, ac_kernels::Parallelism::Serial, &mut out), Err(Error::Empty(_))));
    assert!(matches!(linear_map_f32(&x[..5], 2, 3, &w, 2, ac_kernels::Parallelism::Serial, &mut out), Err(Error::ShapeMismatch { what: "x", .. })));
    assert!(matches!(linear_map_f32(&x, 2, 3, &w[..5], 2, ac_kernels::Parallelism::Serial, &mut out), Err(Error::ShapeMismatch { what: "w", .. })));
    assert!(matches!(linear_map_f32(&x, 2, 3, &w, 2, ac_kernels::Parallelism::Serial, &mut out[..3]), Err(Error::ShapeMismatch { what: "out", .. })));
    let mut bad = x;
    bad[4] = f32::NAN;
    assert_eq!(linear_map_f32(&bad, 2, 3, &w, 2, ac_kernels::Parallelism::Serial, &mut out), Err(Error::NonFinite { what: "x", index: 4 }));
    let mut badw = w;
    badw[1] = f32::INFINITY;
    assert_eq!(linear_map_f32(&x, 2, 3, &badw, 2, ac_kernels::Parallelism::Serial, &mut out), Err(Error::NonFinite { what: "w", index: 1 }));
    let big = [3e38f32; 6];
    assert!(matches!(linear_map_f32(&big, 2, 3, &w, 2, ac_kernels::Parallelism::Serial, &mut out), Err(Error::InvalidArgument(_))));
}
