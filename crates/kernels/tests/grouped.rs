//! `grouped_nn_f32` (serial and threaded) against a direct f64 oracle, every ISA against the scalar contract.
#[path = "distance_common.rs"]
mod common;
use ac_kernels::grouped::grouped_nn_f32;
use ac_kernels::{simd, Error, GroupedMode};
use common::*;

/// Oracle `dmin²[q][g]` and the tolerance of each entry (that of the argmin pair).
fn oracle(q: &[f32], nq: usize, base: &[f32], offsets: &[u32], d: usize) -> Vec<(f64, f64)> {
    let ng = offsets.len() - 1;
    let mut out = Vec::with_capacity(nq * ng);
    for i in 0..nq {
        let a = &q[i * d..][..d];
        for g in 0..ng {
            let mut best = (f64::INFINITY, 0.0);
            for j in offsets[g] as usize..offsets[g + 1] as usize {
                let b = &base[j * d..][..d];
                let v = l2sq64(a, b);
                if v < best.0 {
                    best = (v, tol2(a, b));
                }
            }
            // Any row of the group could win within rounding: use the largest tolerance of the group.
            let t = (offsets[g] as usize..offsets[g + 1] as usize)
                .map(|j| tol2(a, &base[j * d..][..d]))
                .fold(0.0f64, f64::max);
            out.push((best.0, t));
        }
    }
    out
}

fn offsets_of(sizes: &[usize]) -> Vec<u32> {
    let mut o = vec![0u32];
    for &s in sizes {
        o.push(o[o.len() - 1] + s as u32);
    }
    o
}

struct Case {
    q: Vec<f32>,
    nq: usize,
    base: Vec<f32>,
    offsets: Vec<u32>,
    d: usize,
    qg: Vec<i32>,
}

fn run(c: &Case, mode: GroupedMode, squared: bool) -> Vec<f32> {
    let ng = c.offsets.len() - 1;
    let len = if mode == GroupedMode::PerGroup { c.nq * ng } else { c.nq };
    let mut out = vec![f32::NAN; len];
    grouped_nn_f32(
        &c.q,
        c.nq,
        &c.base,
        &c.offsets,
        c.d,
        mode,
        Some(&c.qg),
        squared, ac_kernels::Parallelism::Serial,
        &mut out)
    .unwrap();
    out
}

/// Checks all three modes (squared and not) of one case against the oracle; returns the outputs.
fn check_case(c: &Case, isa: &str) -> Vec<Vec<f32>> {
    let ng = c.offsets.len() - 1;
    let want = oracle(&c.q, c.nq, &c.base, &c.offsets, c.d);
    let mut outs = Vec::new();
    for squared in [true, false] {
        let per = run(c, GroupedMode::PerGroup, squared);
        for (k, (&g, &(w, t))) in per.iter().zip(&want).enumerate() {
            assert!(
                close(g, w, t, squared),
                "isa={isa} d={} per-group[{k}] squared={squared}: {g} vs² {w}",
                c.d
            );
        }
        let min = run(c, GroupedMode::Min, squared);
        for i in 0..c.nq {
            let row = &want[i * ng..][..ng];
            let (w, t) = row
                .iter()
                .fold((f64::INFINITY, 0.0f64), |a, &(w, t)| (a.0.min(w), a.1.max(t)));
            assert!(
                close(min[i], w, t, squared),
                "isa={isa} d={} min[{i}]: {} vs² {w}",
                c.d,
                min[i]
            );
        }
        let mean = run(c, GroupedMode::MeanExcludingOwn, squared);
        for i in 0..c.nq {
            let own = c.qg[i];
            let (mut s, mut n, mut tmax) = (0.0f64, 0usize, 0.0f64);
            for (g, &(w, t)) in want[i * ng..][..ng].iter().enumerate() {
                if g as i32 != own {
                    s += if squared { w } else { w.sqrt() };
                    n += 1;
                    tmax = tmax.max(t);
                }
            }
            let w = if n == 0 { 0.0 } else { s / n as f64 };
            // A mean of values each within tol (squared) or sqrt(tol) (Euclidean) of the truth.
            let t = if squared { tmax } else { tmax.sqrt() };
            assert!(
                (mean[i] as f64 - w).abs() <= t + 1e-6,
                "isa={isa} d={} mean[{i}] squared={squared}: {} vs {w}",
                c.d,
                mean[i]
            );
        }
        outs.extend([per, min, mean]);
    }
    outs
}

fn random_case(rng: &mut Rng, nq: usize, sizes: &[usize], d: usize, offset: f32) -> Case {
    let offsets = offsets_of(sizes);
    let nb = offsets[offsets.len() - 1] as usize;
    let ng = sizes.len() as i32;
    let q = data(rng, nq, d, offset, 1.0);
    let base = data(rng, nb, d, offset, 1.0);
    // Own-group ids in range, -1, and out of range (exclude nothing).
    let qg = (0..nq as i32)
        .map(|i| {
            if i % 7 == 3 {
                -1
            } else if i % 11 == 5 {
                ng + 2
            } else {
                i % ng.max(1)
            }
        })
        .collect();
    Case {
        q,
        nq,
        base,
        offsets,
        d,
        qg,
    }
}

/// SIMD and scalar agree up to a relative 1e-3 plus the rounding slack of the GEMM form (relative to the
/// largest squared norm; its square root for Euclidean outputs near 0).
fn agree(c: &Case, a: &[Vec<f32>], b: &[Vec<f32>]) {
    let n2 = c.q.chunks(c.d).chain(c.base.chunks(c.d)).map(norm2).fold(0.0, f64::max);
    let slack = (4e-4 * n2).sqrt().max(4e-4 * n2) as f32;
    for (x, y) in a.iter().zip(b) {
        for (k, (&u, &v)) in x.iter().zip(y).enumerate() {
            let s = u.abs().max(v.abs());
            assert!((u - v).abs() <= 1e-3 * s + slack, "simd vs scalar at {k}: {u} vs {v}");
        }
    }
}

#[test]
fn every_mode_matches_oracle_on_every_isa() {
    let _g = lock();
    let mut rng = Rng::new(11);
    for &d in &DIMS {
        for (nq, sizes) in [
            (1usize, vec![1usize]),
            (5, vec![3, 1, 7]),
            (17, vec![5, 13, 2, 9]),
            (40, vec![1, 1, 1]),
        ] {
            let c = random_case(&mut rng, nq, &sizes, d, if d > 8 { 2.0 } else { 0.0 });
            let (best, scalar) = both_isas(|isa| check_case(&c, isa));
            agree(&c, &best, &scalar);
        }
    }
}

#[test]
fn block_boundaries() {
    // nq > 256 (query block), a group > 144 rows (row chunk), d > 256 (k slice), odd everything.
    let _g = lock();
    let mut rng = Rng::new(12);
    for &d in &[37usize, 300] {
        let c = random_case(&mut rng, 270, &[151, 5, 290, 1], d, 1.0);
        let (best, scalar) = both_isas(|isa| check_case(&c, isa));
        agree(&c, &best, &scalar);
    }
}

#[test]
fn queries_equal_base_skips_own_group() {
    // The unsupervised patch-weight layout: queries = base, own group = the query's image.
    let _g = lock();
    let mut rng = Rng::new(13);
    let (m, n, d) = (49usize, 7usize, 24usize);
    let sizes = vec![m; n];
    let offsets = offsets_of(&sizes);
    let base = data(&mut rng, m * n, d, 0.5, 1.0);
    let qg: Vec<i32> = (0..m * n).map(|i| (i / m) as i32).collect();
    let c = Case {
        q: base.clone(),
        nq: m * n,
        base,
        offsets,
        d,
        qg,
    };
    let (best, scalar) = both_isas(|isa| check_case(&c, isa));
    agree(&c, &best, &scalar);
    // And self-distances (PerGroup, own group) are ~0.
    let per = run(&c, GroupedMode::PerGroup, true);
    for i in 0..c.nq {
        assert!(per[i * n + i / m] <= 1e-4 * norm2(&c.q[i * d..][..d]) as f32);
    }
}

#[test]
fn empty_base_and_no_queries() {
    let _g = lock();
    let q = vec![1.0f32; 6];
    let qg = vec![0i32, -1];
    let mut none: Vec<f32> = vec![];
    grouped_nn_f32(&q, 2, &[], &[0], 3, GroupedMode::PerGroup, None, false, ac_kernels::Parallelism::Serial, &mut none).unwrap();
    let mut two = vec![5.0f32; 2];
    grouped_nn_f32(
        &q,
        2,
        &[],
        &[0],
        3,
        GroupedMode::MeanExcludingOwn,
        Some(&qg),
        false, ac_kernels::Parallelism::Serial,
        &mut two)
    .unwrap();
    assert_eq!(two, vec![0.0, 0.0]);
    assert!(matches!(
        grouped_nn_f32(&q, 2, &[], &[0], 3, GroupedMode::Min, None, false, ac_kernels::Parallelism::Serial, &mut two),
        Err(Error::Empty(_))
    ));
    // No queries: fine whatever the base.
    grouped_nn_f32(&[], 0, &q, &[0, 2], 3, GroupedMode::Min, None, false, ac_kernels::Parallelism::Serial, &mut none).unwrap();
    grouped_nn_f32(
        &[],
        0,
        &q,
        &[0, 1, 2],
        3,
        GroupedMode::MeanExcludingOwn,
        Some(&[]),
        false, ac_kernels::Parallelism::Serial,
        &mut none)
    .unwrap();
    // One group, own excluded: mean over zero groups = 0.
    let mut one = vec![5.0f32; 1];
    grouped_nn_f32(
        &q[..3],
        1,
        &q,
        &[0, 2],
        3,
        GroupedMode::MeanExcludingOwn,
        Some(&[0]),
        false, ac_kernels::Parallelism::Serial,
        &mut one)
    .unwrap();
    assert_eq!(one, vec![0.0]);
}

#[test]
fn bad_arguments_are_errors_not_panics() {
    let _g = lock();
    let q = vec![0.0f32; 6];
    let base = vec![0.0f32; 12];
    let mut out = vec![0.0f32; 2];
    let m = GroupedMode::Min;
    let call = |q: &[f32], nq, b: &[f32], off: &[u32], d, mode, qg: Option<&[i32]>, out: &mut [f32]| {
        grouped_nn_f32(q, nq, b, off, d, mode, qg, false, ac_kernels::Parallelism::Serial, out)
    };
    assert!(matches!(
        call(&q, 2, &base, &[0, 4], 0, m, None, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        call(&q, 3, &base, &[0, 4], 3, m, None, &mut out),
        Err(Error::ShapeMismatch { what: "q", .. })
    ));
    assert!(matches!(
        call(&q, 2, &base[..11], &[0, 4], 3, m, None, &mut out),
        Err(Error::ShapeMismatch { .. })
    ));
    assert!(matches!(
        call(&q, 2, &base, &[], 3, m, None, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        call(&q, 2, &base, &[1, 4], 3, m, None, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        call(&q, 2, &base, &[0, 2, 2, 4], 3, m, None, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        call(&q, 2, &base, &[0, 3, 2, 4], 3, m, None, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        call(&q, 2, &base, &[0, 3], 3, m, None, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        call(&q, 2, &base, &[0, 5], 3, m, None, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        call(&q, 2, &base, &[0, u32::MAX], 3, m, None, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    let mean = GroupedMode::MeanExcludingOwn;
    assert!(matches!(
        call(&q, 2, &base, &[0, 4], 3, mean, None, &mut out),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        call(&q, 2, &base, &[0, 4], 3, mean, Some(&[0]), &mut out),
        Err(Error::ShapeMismatch {
            what: "query_groups",
            ..
        })
    ));
    assert!(matches!(
        call(&q, 2, &base, &[0, 1, 4], 3, GroupedMode::PerGroup, None, &mut out),
        Err(Error::ShapeMismatch { what: "out", .. })
    ));
    assert!(call(&q, 2, &base, &[0, 1, 4], 3, m, None, &mut out).is_ok());
    assert!(call(&q, 2, &base, &[0, 1, 4], 3, mean, Some(&[i32::MIN, i32::MAX]), &mut out).is_ok());
}

#[cfg(feature = "parallel")]
#[test]
fn parallel_equals_serial() {
    let _g = lock();
    let mut rng = Rng::new(14);
    for &(nq, ref sizes, d) in &[
        (1usize, vec![2usize, 3], 5usize),
        (300, vec![150, 7, 1, 33], 40),
        (90, vec![9; 10], 513),
    ] {
        let c = random_case(&mut rng, nq, sizes, d, 1.0);
        let ng = sizes.len();
        for mode in [GroupedMode::PerGroup, GroupedMode::Min, GroupedMode::MeanExcludingOwn] {
            for squared in [true, false] {
                let len = if mode == GroupedMode::PerGroup { nq * ng } else { nq };
                let (mut a, mut b) = (vec![0.0; len], vec![1.0; len]);
                grouped_nn_f32(&c.q, nq, &c.base, &c.offsets, d, mode, Some(&c.qg), squared, ac_kernels::Parallelism::Serial, &mut a).unwrap();
                grouped_nn_f32(&c.q, nq, &c.base, &c.offsets, d, mode, Some(&c.qg), squared, ac_kernels::Parallelism::Threads, &mut b).unwrap();
                assert_eq!(a, b, "{mode:?} nq={nq} d={d}");
            }
        }
    }
}

#[test]
fn isa_is_reported() {
    let _g = lock();
    assert!(["avx2", "scalar", "simd128"].contains(&simd::isa()));
}

/// The self-join layout: base rows in groups of `sizes`, queries = base, own group = the row's group.
fn self_case(rng: &mut Rng, sizes: &[usize], d: usize) -> Case {
    let offsets = offsets_of(sizes);
    let nb = offsets[offsets.len() - 1] as usize;
    let base = data(rng, nb, d, 1.0, 1.0);
    let qg = (0..sizes.len()).flat_map(|g| std::iter::repeat_n(g as i32, sizes[g])).collect();
    Case {
        q: base.clone(),
        nq: nb,
        base,
        offsets,
        d,
        qg,
    }
}

fn run_self(c: &Case, mode: GroupedMode, squared: bool, par: bool) -> Vec<f32> {
    let ng = c.offsets.len() - 1;
    let len = if mode == GroupedMode::PerGroup { c.nq * ng } else { c.nq };
    let mut out = vec![f32::NAN; len];
    if par {
        #[cfg(feature = "parallel")]
        ac_kernels::grouped::grouped_nn_self_f32(&c.base, &c.offsets, c.d, mode, squared, ac_kernels::Parallelism::Threads, &mut out).unwrap();
    } else {
        ac_kernels::grouped::grouped_nn_self_f32(&c.base, &c.offsets, c.d, mode, squared, ac_kernels::Parallelism::Serial, &mut out).unwrap();
    }
    out
}

#[test]
fn self_join_equals_general_kernel() {
    // Bit-identical for every mode up to 64 groups (one group per stripe), and for PerGroup/Min beyond; the
    // mean of > 64 groups is summed per stripe, so within one f32 rounding step. Both ISAs; block boundaries
    // (groups > 256 rows and > 144 rows, d > 256) included.
    let _g = lock();
    let mut rng = Rng::new(21);
    let many: Vec<usize> = (0..70).map(|g| 1 + g % 4).collect();
    for (sizes, d) in [
        (vec![1usize], 3usize),
        (vec![3, 1, 7], 1),
        (vec![5, 13, 2, 9], 9),
        (vec![17; 6], 31),
        (vec![151, 5, 290, 1], 300),
        (many, 8),
    ] {
        let c = self_case(&mut rng, &sizes, d);
        let ng = sizes.len();
        both_isas(|isa| {
            for mode in [GroupedMode::PerGroup, GroupedMode::Min, GroupedMode::MeanExcludingOwn] {
                for squared in [true, false] {
                    let want = run(&c, mode, squared);
                    let got = run_self(&c, mode, squared, false);
                    if mode == GroupedMode::MeanExcludingOwn && ng > 64 {
                        for (k, (&u, &v)) in got.iter().zip(&want).enumerate() {
                            assert!((u - v).abs() <= 2.0 * f32::EPSILON * v.abs(), "{isa} {mode:?} row {k}: {u} vs {v}");
                        }
                    } else {
                        assert_eq!(got, want, "{isa} {mode:?} squared={squared} sizes={sizes:?} d={d}");
                    }
                    #[cfg(feature = "parallel")]
                    assert_eq!(run_self(&c, mode, squared, true), got, "par vs serial, {isa} {mode:?}");
                }
            }
        });
    }
}

#[test]
fn self_join_empty_and_bad_arguments() {
    use ac_kernels::grouped::grouped_nn_self_f32;
    let _g = lock();
    let mut out = vec![0.0f32; 0];
    assert!(grouped_nn_self_f32(&[], &[0], 3, GroupedMode::MeanExcludingOwn, false, ac_kernels::Parallelism::Serial, &mut out).is_ok());
    assert!(grouped_nn_self_f32(&[], &[0], 3, GroupedMode::PerGroup, false, ac_kernels::Parallelism::Serial, &mut out).is_ok());
    let base = [0.0f32; 12];
    assert!(matches!(
        grouped_nn_self_f32(&base, &[0, 2, 4], 0, GroupedMode::Min, false, ac_kernels::Parallelism::Serial, &mut [0.0; 4]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        grouped_nn_self_f32(&base, &[0, 2, 3], 3, GroupedMode::Min, false, ac_kernels::Parallelism::Serial, &mut [0.0; 4]),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        grouped_nn_self_f32(&base, &[0, 2, 4], 3, GroupedMode::PerGroup, false, ac_kernels::Parallelism::Serial, &mut [0.0; 4]),
        Err(Error::ShapeMismatch { what: "out", .. })
    ));
    // One group: the mean over no other group is 0.
    let mut one = [9.0f32; 4];
    grouped_nn_self_f32(&base, &[0, 4], 3, GroupedMode::MeanExcludingOwn, false, ac_kernels::Parallelism::Serial, &mut one).unwrap();
    assert_eq!(one, [0.0; 4]);
}
