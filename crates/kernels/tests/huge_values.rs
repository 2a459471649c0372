//! Finite rows with huge coordinates (`|x| ≥ 1e19`): the GEMM form `‖a‖² + ‖b‖² − 2a·b` would overflow f32, so
//! the kernels scale the inputs by a power of two and the results back (docs/reliability.md, "Finite in, finite out"). Euclidean results must be
//! finite and accurate whenever the true distance is a finite f32, on every ISA, serial and parallel; squared
//! results are `+∞` exactly when the true squared distance exceeds `f32::MAX`.
#[path = "distance_common.rs"]
mod common;
use ac_kernels::distance::{cdist_f32, pdist_f32};
use ac_kernels::grouped::{grouped_nn_f32, grouped_nn_self_f32};
use ac_kernels::{condensed_index, GroupedMode};
use common::*;

/// `got` against the f64 oracle `want2` (squared) of rows `a`, `b`: `+∞` iff the true value exceeds f32::MAX, else
/// finite and within the usual tolerance of the GEMM form (relative to the rows' norms, [`tol2`]); `exact` asks
/// for a relative error ≤ 1e-6 instead.
fn assert_ok(got: f32, a: &[f32], b: &[f32], squared: bool, exact: bool, what: &str) {
    let want2 = l2sq64(a, b);
    let want = if squared { want2 } else { want2.sqrt() };
    if want > f32::MAX as f64 {
        assert_eq!(got, f32::INFINITY, "{what}: true value {want} exceeds f32::MAX");
        return;
    }
    assert!(got.is_finite(), "{what}: got {got}, want {want}");
    if exact {
        let err = (got as f64 - want).abs();
        assert!(err <= 1e-6 * want, "{what}: got {got}, want {want} (rel err {})", err / want);
    } else {
        assert!(close(got, want2, tol2(a, b), squared), "{what}: got {got}, want {want}");
    }
}

/// Rows with coordinates spread over 1e0 .. 3e37 (some pairs near, some far), dimension `d`.
fn huge_rows(rng: &mut Rng, n: usize, d: usize) -> Vec<f32> {
    let scales = [1.0f32, 1e19, 1e20, 2e20, 1e30, 3e37];
    (0..n * d)
        .map(|_| {
            let s = scales[rng.below(scales.len())];
            s * (2.0 * rng.unit() - 1.0)
        })
        .collect()
}

#[test]
fn pdist_cdist_of_huge_finite_rows_are_finite_and_accurate_on_every_isa() {
    let _g = lock();
    let mut rng = Rng::new(77);
    // The case: three points on a line, distances 2e20, 3e37, 3e37.
    let big = [0.0f32, 0.0, 2e20, 0.0, 3e37, 0.0];
    for &(ref x, n, d) in &[(big.to_vec(), 3usize, 2usize), (huge_rows(&mut rng, 40, 9), 40, 9), (huge_rows(&mut rng, 20, 513), 20, 513)] {
        for squared in [false, true] {
            let (best, scalar) = both_isas(|isa| {
                let mut out = vec![0.0f32; n * (n - 1) / 2];
                pdist_f32(x, n, d, squared, ac_kernels::Parallelism::Serial, &mut out).unwrap();
                for i in 0..n {
                    for j in i + 1..n {
                        let (a, b) = (&x[i * d..][..d], &x[j * d..][..d]);
                        assert_ok(out[condensed_index(n, i, j)], a, b, squared, n == 3, &format!("pdist {isa} n={n} d={d} sq={squared} ({i},{j})"));
                    }
                }
                let nb = n / 2 + 1;
                let mut c = vec![0.0f32; n * nb];
                cdist_f32(x, n, &x[..nb * d], nb, d, squared, ac_kernels::Parallelism::Serial, &mut c).unwrap();
                for i in 0..n {
                    for j in 0..nb {
                        let (a, b) = (&x[i * d..][..d], &x[j * d..][..d]);
                        assert_ok(c[i * nb + j], a, b, squared, n == 3, &format!("cdist {isa} n={n} d={d} sq={squared} ({i},{j})"));
                    }
                }
                (out, c)
            });
            let _ = (best, scalar);
        }
    }
}

#[test]
fn scaling_is_exact_a_power_of_two_times_the_moderate_result() {
    // x·2^70 has the same distances as x, times 2^70, bit for bit (the scaling only moves exponents).
    let _g = lock();
    let mut rng = Rng::new(5);
    let (n, d) = (30usize, 17usize);
    let x = data(&mut rng, n, d, 3.0, 2.0);
    let f = 2f32.powi(70);
    let xb: Vec<f32> = x.iter().map(|&v| v * f).collect();
    both_isas(|isa| {
        let mut a = vec![0.0f32; n * (n - 1) / 2];
        let mut b = vec![0.0f32; n * (n - 1) / 2];
        pdist_f32(&x, n, d, false, ac_kernels::Parallelism::Serial, &mut a).unwrap();
        pdist_f32(&xb, n, d, false, ac_kernels::Parallelism::Serial, &mut b).unwrap();
        for (k, (&u, &v)) in a.iter().zip(&b).enumerate() {
            assert_eq!(u * f, v, "{isa} pair {k}");
        }
    });
}

#[test]
fn grouped_nn_of_huge_finite_rows_is_finite_and_accurate() {
    let _g = lock();
    let mut rng = Rng::new(9);
    let (nb, d) = (24usize, 7usize);
    // One scale per data set: the grouped kernel has no near-pair refinement, its error is relative to the
    // centred norms (see `grouped`), so mixed scales would test that, not the range.
    let big = |v: Vec<f32>| v.into_iter().map(|x| x * 1e36).collect::<Vec<f32>>();
    let base = big(data(&mut rng, nb, d, 0.5, 1.0));
    let offsets = [0u32, 5, 11, 24];
    let ng = offsets.len() - 1;
    let q = big(data(&mut rng, 10, d, 0.5, 1.0));
    for squared in [false, true] {
        both_isas(|isa| {
            let mut out = vec![0.0f32; 10 * ng];
            grouped_nn_f32(&q, 10, &base, &offsets, d, GroupedMode::PerGroup, None, squared, ac_kernels::Parallelism::Serial, &mut out).unwrap();
            for i in 0..10 {
                for g in 0..ng {
                    let a = &q[i * d..][..d];
                    let j = (offsets[g] as usize..offsets[g + 1] as usize)
                        .min_by(|&u, &v| l2sq64(a, &base[u * d..][..d]).total_cmp(&l2sq64(a, &base[v * d..][..d])))
                        .unwrap();
                    assert_ok(out[i * ng + g], a, &base[j * d..][..d], squared, false, &format!("grouped {isa} sq={squared} ({i},{g})"));
                }
            }
            // The self-join gives the general search's results, bit for bit.
            let mut s = vec![0.0f32; nb * ng];
            grouped_nn_self_f32(&base, &offsets, d, GroupedMode::PerGroup, squared, ac_kernels::Parallelism::Serial, &mut s).unwrap();
            let rg: Vec<i32> = (0..nb).map(|r| offsets.iter().rposition(|&o| o as usize <= r).unwrap() as i32).collect();
            let mut g2 = vec![0.0f32; nb * ng];
            grouped_nn_f32(&base, nb, &base, &offsets, d, GroupedMode::PerGroup, Some(&rg), squared, ac_kernels::Parallelism::Serial, &mut g2).unwrap();
            assert_eq!(s, g2, "self-join {isa} sq={squared}");
        });
    }
}

#[cfg(feature = "parallel")]
#[test]
fn parallel_equals_serial_on_huge_rows() {
    let _g = lock();
    let mut rng = Rng::new(11);
    let (n, d) = (300usize, 33usize);
    let x = huge_rows(&mut rng, n, d);
    for squared in [false, true] {
        let mut a = vec![0.0; n * (n - 1) / 2];
        let mut b = vec![1.0; n * (n - 1) / 2];
        pdist_f32(&x, n, d, squared, ac_kernels::Parallelism::Serial, &mut a).unwrap();
        pdist_f32(&x, n, d, squared, ac_kernels::Parallelism::Threads, &mut b).unwrap();
        assert_eq!(a, b);
        let mut a = vec![0.0; n * 50];
        let mut b = vec![1.0; n * 50];
        cdist_f32(&x, n, &x[..50 * d], 50, d, squared, ac_kernels::Parallelism::Serial, &mut a).unwrap();
        cdist_f32(&x, n, &x[..50 * d], 50, d, squared, ac_kernels::Parallelism::Threads, &mut b).unwrap();
        assert_eq!(a, b);
        let offsets = [0u32, 100, 180, 300];
        let mut a = vec![0.0; n];
        let mut b = vec![1.0; n];
        grouped_nn_f32(&x, n, &x, &offsets, d, GroupedMode::Min, None, squared, ac_kernels::Parallelism::Serial, &mut a).unwrap();
        grouped_nn_f32(&x, n, &x, &offsets, d, GroupedMode::Min, None, squared, ac_kernels::Parallelism::Threads, &mut b).unwrap();
        assert_eq!(a, b);
        let mut c = vec![1.0; n];
        grouped_nn_self_f32(&x, &offsets, d, GroupedMode::Min, squared, ac_kernels::Parallelism::Threads, &mut c).unwrap();
        assert_eq!(a, c);
    }
}
