//! `pdist_f32` / `cdist_f32` (serial and threaded) against a direct f64 oracle, every ISA against the scalar contract.
#[path = "distance_common.rs"]
mod common;
use ac_kernels::distance::{cdist_f32, pdist_f32};
use ac_kernels::{condensed_index, simd, Error};
use common::*;

fn check_pdist(x: &[f32], n: usize, d: usize, squared: bool, got: &[f32], isa: &str) {
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&x[i * d..][..d], &x[j * d..][..d]);
            let g = got[condensed_index(n, i, j)];
            assert!(
                close(g, l2sq64(a, b), tol2(a, b), squared),
                "pdist isa={isa} n={n} d={d} squared={squared} ({i},{j}): got {g}, want² {}",
                l2sq64(a, b)
            );
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn check_cdist(q: &[f32], nq: usize, b: &[f32], nb: usize, d: usize, squared: bool, got: &[f32], isa: &str) {
    for i in 0..nq {
        for j in 0..nb {
            let (x, y) = (&q[i * d..][..d], &b[j * d..][..d]);
            let g = got[i * nb + j];
            assert!(
                close(g, l2sq64(x, y), tol2(x, y), squared),
                "cdist isa={isa} nq={nq} nb={nb} d={d} squared={squared} ({i},{j}): got {g}, want² {}",
                l2sq64(x, y)
            );
        }
    }
}

/// SIMD and scalar outputs must agree with each other as well as with the oracle.
/// Up to a relative 1e-3 plus the rounding slack of the GEMM form (relative to the largest squared norm of
/// `data`; its square root for Euclidean outputs near 0).
fn check_agree(data: &[f32], d: usize, a: &[f32], b: &[f32], what: &str) {
    assert_eq!(a.len(), b.len());
    let n2 = data.chunks(d).map(norm2).fold(0.0, f64::max);
    let slack = (4e-4 * n2).sqrt().max(4e-4 * n2) as f32;
    for (k, (&x, &y)) in a.iter().zip(b).enumerate() {
        let scale = x.abs().max(y.abs());
        assert!(
            (x - y).abs() <= 1e-3 * scale + slack,
            "{what}: simd vs scalar at {k}: {x} vs {y}"
        );
    }
}

#[test]
fn isa_is_a_known_name() {
    let _g = lock();
    assert!(["avx2", "scalar", "simd128"].contains(&simd::isa()));
    simd::set_force_scalar(true);
    assert_eq!(simd::isa(), "scalar");
    simd::set_force_scalar(false);
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        assert_eq!(simd::isa(), "avx2");
    }
}

#[test]
fn pdist_matches_oracle_on_every_isa() {
    let _g = lock();
    let mut rng = Rng::new(1);
    for &d in &DIMS {
        for &n in &[1usize, 2, 3, 7, 17, 40, 151] {
            let offset = if d % 2 == 0 { 3.0 } else { 0.0 };
            let x = data(&mut rng, n, d, offset, 1.0);
            for squared in [true, false] {
                let (best, scalar) = both_isas(|isa| {
                    let mut out = vec![f32::NAN; n * (n - 1) / 2];
                    pdist_f32(&x, n, d, squared, ac_kernels::Parallelism::Serial, &mut out).unwrap();
                    check_pdist(&x, n, d, squared, &out, isa);
                    out
                });
                check_agree(&x, d, &best, &scalar, "pdist");
            }
        }
    }
}

#[test]
fn pdist_crosses_block_boundaries() {
    // n > 256 (query block) and > 144 (row chunk), d > 256 (k slice): every partial-block path.
    let _g = lock();
    let mut rng = Rng::new(2);
    let (n, d) = (300, 300);
    let x = data(&mut rng, n, d, 1.0, 1.0);
    let mut out = vec![0.0; n * (n - 1) / 2];
    pdist_f32(&x, n, d, false, ac_kernels::Parallelism::Serial, &mut out).unwrap();
    check_pdist(&x, n, d, false, &out, simd::isa());
}

#[test]
fn cdist_matches_oracle_on_every_isa() {
    let _g = lock();
    let mut rng = Rng::new(3);
    for &d in &DIMS {
        for &(nq, nb) in &[(1usize, 1usize), (1, 9), (5, 1), (17, 33), (40, 7), (70, 150)] {
            let q = data(&mut rng, nq, d, 2.0, 1.0);
            let b = data(&mut rng, nb, d, 2.0, 0.5);
            for squared in [true, false] {
                let (best, scalar) = both_isas(|isa| {
                    let mut out = vec![f32::NAN; nq * nb];
                    cdist_f32(&q, nq, &b, nb, d, squared, ac_kernels::Parallelism::Serial, &mut out).unwrap();
                    check_cdist(&q, nq, &b, nb, d, squared, &out, isa);
                    out
                });
                let qb: Vec<f32> = q.iter().chain(&b).copied().collect();
                check_agree(&qb, d, &best, &scalar, "cdist");
            }
        }
    }
}

#[test]
fn cdist_crosses_block_boundaries() {
    let _g = lock();
    let mut rng = Rng::new(4);
    let (nq, nb, d) = (270, 150, 520);
    let q = data(&mut rng, nq, d, 0.0, 1.0);
    let b = data(&mut rng, nb, d, 0.0, 1.0);
    let mut out = vec![0.0; nq * nb];
    cdist_f32(&q, nq, &b, nb, d, true, ac_kernels::Parallelism::Serial, &mut out).unwrap();
    check_cdist(&q, nq, &b, nb, d, true, &out, simd::isa());
}

#[test]
fn duplicates_are_exactly_zero() {
    let _g = lock();
    let mut rng = Rng::new(5);
    let d = 64;
    let mut x = data(&mut rng, 4, d, 10.0, 1.0);
    let row: Vec<f32> = x[..d].to_vec();
    x.extend_from_slice(&row);
    let n = 5;
    let (best, scalar) = both_isas(|_| {
        let mut out = vec![1.0; n * (n - 1) / 2];
        pdist_f32(&x, n, d, false, ac_kernels::Parallelism::Serial, &mut out).unwrap();
        let mut c = vec![1.0; n];
        cdist_f32(&row, 1, &x, n, d, true, ac_kernels::Parallelism::Serial, &mut c).unwrap();
        (out[condensed_index(n, 0, 4)], c[0], c[4])
    });
    assert_eq!(best, (0.0, 0.0, 0.0));
    assert_eq!(scalar, (0.0, 0.0, 0.0));
}

#[test]
fn empty_inputs_give_empty_outputs() {
    let _g = lock();
    let mut out: Vec<f32> = vec![];
    pdist_f32(&[], 0, 3, false, ac_kernels::Parallelism::Serial, &mut out).unwrap();
    pdist_f32(&[1.0, 2.0, 3.0], 1, 3, false, ac_kernels::Parallelism::Serial, &mut out).unwrap();
    cdist_f32(&[], 0, &[1.0, 2.0], 1, 2, false, ac_kernels::Parallelism::Serial, &mut out).unwrap();
    cdist_f32(&[1.0, 2.0], 1, &[], 0, 2, false, ac_kernels::Parallelism::Serial, &mut out).unwrap();
}

#[test]
fn bad_shapes_are_errors_not_panics() {
    let _g = lock();
    let x = vec![0.0f32; 12];
    let mut out = vec![0.0f32; 6];
    assert!(matches!(
        pdist_f32(&x, 4, 0, false, ac_kernels::Parallelism::Serial, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        pdist_f32(&x, 5, 3, false, ac_kernels::Parallelism::Serial, &mut out),
        Err(Error::ShapeMismatch { what: "x", .. })
    ));
    let mut short = vec![0.0f32; 5];
    assert!(matches!(
        pdist_f32(&x, 4, 3, false, ac_kernels::Parallelism::Serial, &mut short),
        Err(Error::ShapeMismatch { what: "out", .. })
    ));
    assert!(pdist_f32(&x, 4, 3, false, ac_kernels::Parallelism::Serial, &mut out).is_ok());
    assert!(pdist_f32(&x, usize::MAX, 2, false, ac_kernels::Parallelism::Serial, &mut out).is_err());
    let mut o2 = vec![0.0f32; 8];
    assert!(matches!(
        cdist_f32(&x, 4, &x, 4, 3, false, ac_kernels::Parallelism::Serial, &mut o2),
        Err(Error::ShapeMismatch { what: "out", .. })
    ));
    assert!(matches!(
        cdist_f32(&x, 4, &x[..11], 4, 3, false, ac_kernels::Parallelism::Serial, &mut o2),
        Err(Error::ShapeMismatch { what: "b", .. })
    ));
    assert!(matches!(
        cdist_f32(&x, 2, &x, 4, 3, false, ac_kernels::Parallelism::Serial, &mut o2),
        Err(Error::ShapeMismatch { what: "q", .. })
    ));
    assert!(matches!(
        cdist_f32(&x, 4, &x, 4, 0, false, ac_kernels::Parallelism::Serial, &mut o2),
        Err(Error::InvalidArgument(_))
    ));
    assert!(cdist_f32(&x, usize::MAX, &x, usize::MAX, 1, false, ac_kernels::Parallelism::Serial, &mut o2).is_err());
}

#[cfg(feature = "parallel")]
#[test]
fn parallel_equals_serial() {
    let _g = lock();
    let mut rng = Rng::new(6);
    for &(n, d) in &[(1usize, 3usize), (2, 9), (33, 31), (700, 40), (300, 513)] {
        let x = data(&mut rng, n, d, 1.0, 1.0);
        for squared in [true, false] {
            let mut a = vec![0.0; n * (n - 1) / 2];
            let mut b = vec![1.0; n * (n - 1) / 2];
            pdist_f32(&x, n, d, squared, ac_kernels::Parallelism::Serial, &mut a).unwrap();
            pdist_f32(&x, n, d, squared, ac_kernels::Parallelism::Threads, &mut b).unwrap();
            assert_eq!(a, b, "pdist_par n={n} d={d}");
            let nb = n / 2 + 1;
            let mut a = vec![0.0; n * nb];
            let mut b = vec![1.0; n * nb];
            cdist_f32(&x, n, &x[..nb * d], nb, d, squared, ac_kernels::Parallelism::Serial, &mut a).unwrap();
            cdist_f32(&x, n, &x[..nb * d], nb, d, squared, ac_kernels::Parallelism::Threads, &mut b).unwrap();
            assert_eq!(a, b, "cdist_par n={n} d={d}");
        }
    }
}
