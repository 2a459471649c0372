//! Property tests (kodama style): every fast algorithm against the `primitive` O(n³) oracle on seeded random
//! matrices of 0–40 points with distinct distances; Ward from vectors against Ward on a naive f64 `pdist`;
//! validation and robustness (no panic on any input).
use ac_kernels::fcluster::check_linkage_matrix;
use ac_kernels::linkage::{generic, linkage, linkage_in_place, mst, nn_chain, primitive, ward_from_vectors, Method};
use ac_kernels::Error;

/// SplitMix64.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1), 53 random bits: distinct values with overwhelming probability.
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f64 {
        // Box–Muller; plenty for test data.
        let (u, v) = (self.unit(), self.unit());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

/// Random condensed matrix with distinct entries in (0, 1).
fn distinct_condensed(n: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng(seed);
    (0..n * n.saturating_sub(1) / 2).map(|_| r.unit()).collect()
}

/// Naive f64 pdist (Euclidean) of `n × d` points.
fn pdist(x: &[f64], n: usize, d: usize) -> Vec<f64> {
    let mut y = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let s: f64 = (0..d).map(|t| (x[i * d + t] - x[j * d + t]).powi(2)).sum();
            y.push(s.sqrt());
        }
    }
    y
}

fn gaussian_points(n: usize, d: usize, seed: u64) -> Vec<f64> {
    let mut r = Rng(seed);
    (0..n * d).map(|_| r.normal()).collect()
}

/// Euclidean condensed matrix of random Gaussian points: what ward/centroid/median need.
fn euclidean_condensed(n: usize, seed: u64) -> Vec<f64> {
    pdist(&gaussian_points(n, 3, seed), n, 3)
}

fn input_for(m: Method, n: usize, seed: u64) -> Vec<f64> {
    match m {
        Method::Ward | Method::Centroid | Method::Median => euclidean_condensed(n, seed),
        _ => distinct_condensed(n, seed),
    }
}

/// Same ids and sizes, heights within `eps` (relative to max(1, |h|)).
fn eq_with_epsilon(a: &[f64], b: &[f64], eps: f64) -> bool {
    a.len() == b.len()
        && a.chunks_exact(4).zip(b.chunks_exact(4)).all(|(p, q)| {
            p[0] == q[0] && p[1] == q[1] && p[3] == q[3] && (p[2] - q[2]).abs() <= eps * p[2].abs().max(1.0)
        })
}

fn check_against_primitive(name: &str, fast: impl Fn(&[f64], usize, Method) -> ac_kernels::Result<Vec<f64>>, methods: &[Method]) {
    for &m in methods {
        for n in 0..=40usize {
            for rep in 0..3u64 {
                let seed = 1000 * n as u64 + rep + 7 * m as u64;
                let y = input_for(m, n, seed);
                let got = fast(&y, n, m);
                let want = primitive(&y, n, m);
                if n == 0 {
                    assert_eq!(got, Err(Error::Empty("n (number of observations)")));
                    assert_eq!(want, Err(Error::Empty("n (number of observations)")));
                    continue;
                }
                let (got, want) = (got.unwrap(), want.unwrap());
                assert_eq!(got.len(), 4 * (n - 1));
                if matches!(m, Method::Single | Method::Complete) {
                    assert_eq!(got, want, "{name} {m} n={n} seed={seed}");
                } else {
                    assert!(eq_with_epsilon(&got, &want, 1e-10), "{name} {m} n={n} seed={seed}\n{got:?}\n{want:?}");
                }
                check_linkage_matrix(&got, n).unwrap();
            }
        }
    }
}

#[test]
fn mst_single_matches_primitive() {
    check_against_primitive("mst", |y, n, _| mst(y, n), &[Method::Single]);
}

#[test]
fn nn_chain_matches_primitive() {
    check_against_primitive(
        "nn_chain",
        nn_chain,
        &[Method::Single, Method::Complete, Method::Average, Method::Weighted, Method::Ward],
    );
}

#[test]
fn generic_matches_primitive() {
    check_against_primitive("generic", generic, &Method::ALL);
}

#[test]
fn linkage_dispatch_matches_primitive() {
    check_against_primitive("linkage", linkage, &Method::ALL);
}

#[test]
fn linkage_dispatches_like_scipy() {
    for n in [1usize, 2, 5, 33] {
        let y = euclidean_condensed(n, 99);
        assert_eq!(linkage(&y, n, Method::Single), mst(&y, n));
        for m in [Method::Complete, Method::Average, Method::Weighted, Method::Ward] {
            assert_eq!(linkage(&y, n, m), nn_chain(&y, n, m));
        }
        for m in [Method::Centroid, Method::Median] {
            assert_eq!(linkage(&y, n, m), generic(&y, n, m));
        }
    }
}

#[test]
fn f32_input_equals_widened_f64_input() {
    for m in Method::ALL {
        let y64 = input_for(m, 30, 5);
        let y32: Vec<f32> = y64.iter().map(|&v| v as f32).collect();
        let widened: Vec<f64> = y32.iter().map(|&v| v as f64).collect();
        assert_eq!(linkage(&y32, 30, m).unwrap(), linkage(&widened, 30, m).unwrap(), "{m}");
    }
}

#[test]
fn in_place_f32_storage_is_close() {
    for m in Method::ALL {
        let y = input_for(m, 35, 11);
        let mut d32: Vec<f32> = y.iter().map(|&v| v as f32).collect();
        let widened: Vec<f64> = d32.iter().map(|&v| v as f64).collect();
        let want = linkage(&widened, 35, m).unwrap();
        let got = linkage_in_place(&mut d32, 35, m).unwrap();
        assert!(eq_with_epsilon(&got, &want, 1e-5), "{m}\n{got:?}\n{want:?}");
    }
}

#[test]
fn monotone_heights_for_reducible_methods() {
    for m in Method::ALL.into_iter().filter(|m| m.is_reducible()) {
        let z = linkage(&input_for(m, 40, 3), 40, m).unwrap();
        assert!(z.chunks_exact(4).zip(z.chunks_exact(4).skip(1)).all(|(a, b)| a[2] <= b[2]), "{m}");
    }
}

#[test]
fn ward_from_vectors_matches_ward_on_pdist() {
    for (n, d) in [(1usize, 3usize), (2, 1), (3, 2), (10, 1), (25, 3), (40, 17), (64, 5)] {
        for seed in 0..3u64 {
            let x: Vec<f32> = gaussian_points(n, d, 77 + seed + n as u64).iter().map(|&v| v as f32).collect();
            let xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let want = linkage(&pdist(&xf, n, d), n, Method::Ward).unwrap();
            let got = ward_from_vectors(&x, n, d, None, ac_kernels::Parallelism::Serial).unwrap();
            assert!(eq_with_epsilon(&got, &want, 1e-9), "n={n} d={d} seed={seed}\n{got:?}\n{want:?}");
            #[cfg(feature = "parallel")]
            assert_eq!(ac_kernels::linkage::ward_from_vectors(&x, n, d, None, ac_kernels::Parallelism::Threads).unwrap(), got);
        }
    }
}

/// The f32 lower-bound screen of `ward_from_vectors` (n ≥ 256) must never change the result: bit-identical Z
/// to the unscreened scan on clustered data, near-duplicates, exact duplicates and integer ties, a large common
/// offset (rounding margins scale with the spread), tiny and huge scales, and d below, at and above the screen's
/// 32 dimensions.
#[test]
fn ward_from_vectors_screen_is_exact() {
    use ac_kernels::linkage::ward_from_vectors_unscreened;
    let mut cases: Vec<(String, usize, usize, Vec<f32>)> = Vec::new();
    for &(n, d) in &[(300usize, 8usize), (400, 32), (600, 64), (500, 200)] {
        let mut r = Rng(1000 + n as u64 + d as u64);
        let k = 7;
        let centres: Vec<f64> = (0..k * d).map(|_| 4.0 * r.normal()).collect();
        let clustered: Vec<f32> =
            (0..n * d).map(|t| (centres[((t / d) % k) * d + t % d] + r.normal()) as f32).collect();
        cases.push((format!("clustered n={n} d={d}"), n, d, clustered.clone()));
        let offset: Vec<f32> = clustered.iter().map(|&v| v * 1e-3 + 1000.0).collect();
        cases.push((format!("offset 1e3, spread 1e-3, n={n} d={d}"), n, d, offset));
        let tiny: Vec<f32> = clustered.iter().map(|&v| v * 1e-30).collect();
        cases.push((format!("scale 1e-30 n={n} d={d}"), n, d, tiny));
        let huge: Vec<f32> = clustered.iter().map(|&v| v * 1e15).collect();
        cases.push((format!("scale 1e15 n={n} d={d}"), n, d, huge));
        // Near-duplicates: each point repeated with a perturbation in the last bit.
        let near: Vec<f32> = (0..n * d)
            .map(|t| {
                let v = clustered[((t / d) / 2) * d + t % d];
                if (t / d) % 2 == 1 { f32::from_bits(v.to_bits() ^ 1) } else { v }
            })
            .collect();
        cases.push((format!("near-duplicates n={n} d={d}"), n, d, near));
        let grid: Vec<f32> = (0..n * d).map(|_| (r.next_u64() % 3) as f32).collect();
        cases.push((format!("integer grid n={n} d={d}"), n, d, grid));
    }
    for (name, n, d, x) in &cases {
        let want = ward_from_vectors_unscreened(x, *n, *d, None).unwrap();
        let got = ward_from_vectors(x, *n, *d, None, ac_kernels::Parallelism::Serial).unwrap();
        assert!(got == want, "{name}: screened Z differs from the unscreened scan");
        #[cfg(feature = "parallel")]
        assert!(ac_kernels::linkage::ward_from_vectors(x, *n, *d, None, ac_kernels::Parallelism::Threads).unwrap() == want, "{name}: parallel");
    }
}

#[test]
fn ward_from_vectors_with_ties_is_valid() {
    // Integer grid points: duplicates and tied distances. The tree may resolve exact ties differently from the
    // matrix version (different rounding), but it must be a valid, monotone Ward dendrogram.
    let mut r = Rng(5);
    let (n, d) = (50, 2);
    let x: Vec<f32> = (0..n * d).map(|_| (r.next_u64() % 4) as f32).collect();
    let z = ward_from_vectors(&x, n, d, None, ac_kernels::Parallelism::Serial).unwrap();
    check_linkage_matrix(&z, n).unwrap();
    assert!(z.chunks_exact(4).zip(z.chunks_exact(4).skip(1)).all(|(a, b)| a[2] <= b[2]));
    let xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    let want = linkage(&pdist(&xf, n, d), n, Method::Ward).unwrap();
    // Same multiset of heights up to rounding.
    for (a, b) in z.chunks_exact(4).zip(want.chunks_exact(4)) {
        assert!((a[2] - b[2]).abs() <= 1e-9 * b[2].max(1.0), "{} vs {}", a[2], b[2]);
    }
}

#[test]
fn ward_from_vectors_validates() {
    assert_eq!(ward_from_vectors(&[], 0, 3, None, ac_kernels::Parallelism::Serial), Err(Error::Empty("n (number of observations)")));
    assert_eq!(ward_from_vectors(&[1.0; 5], 2, 3, None, ac_kernels::Parallelism::Serial), Err(Error::ShapeMismatch { what: "x", expected: 6, got: 5 }));
    assert_eq!(ward_from_vectors(&[1.0, f32::NAN, 0.0, 0.0], 2, 2, None, ac_kernels::Parallelism::Serial), Err(Error::NonFinite { what: "x", index: 1 }));
    assert_eq!(ward_from_vectors(&[1.0, 2.0], 1, 2, None, ac_kernels::Parallelism::Serial), Ok(vec![]));
    // d = 0 is refused like an empty input (as the other backends and the public API do).
    assert_eq!(ward_from_vectors(&[], 4, 0, None, ac_kernels::Parallelism::Serial), Err(Error::Empty("d (dimension)")));
}

#[test]
fn validation_errors() {
    for m in Method::ALL {
        assert_eq!(linkage::<f64>(&[], 0, m), Err(Error::Empty("n (number of observations)")));
        assert_eq!(linkage::<f64>(&[], 1, m), Ok(vec![]));
        assert_eq!(linkage(&[1.0f64, 2.0], 3, m), Err(Error::ShapeMismatch { what: "y", expected: 3, got: 2 }));
        assert_eq!(linkage(&[1.0f64, f64::INFINITY, 2.0], 3, m), Err(Error::NonFinite { what: "y", index: 1 }));
        assert_eq!(linkage(&[1.0f32, 1.0, f32::NAN], 3, m), Err(Error::NonFinite { what: "y", index: 2 }));
        assert_eq!(linkage(&[2.5f64], 2, m), Ok(vec![0.0, 1.0, 2.5, 2.0]));
    }
    // n(n-1)/2 overflowing usize must not panic.
    assert!(matches!(linkage::<f64>(&[], usize::MAX, Method::Ward), Err(Error::ShapeMismatch { .. })));
}

#[test]
fn method_names_round_trip() {
    for m in Method::ALL {
        assert_eq!(m.as_str().parse::<Method>().unwrap(), m);
        assert_eq!(m.to_string(), m.as_str());
    }
    assert!(matches!("Ward".parse::<Method>(), Err(Error::InvalidMethod(_))));
}

#[test]
fn never_panics_on_hostile_finite_input() {
    // Negative, huge, non-Euclidean values: SciPy would carry NaN along; we must return Ok or Err, not panic.
    let mut r = Rng(42);
    for n in 2..30usize {
        let len = n * (n - 1) / 2;
        let inputs: Vec<Vec<f64>> = vec![
            (0..len).map(|_| r.unit() * 2.0 - 1.0).collect(),
            (0..len).map(|_| r.unit() * 1e300).collect(),
            (0..len).map(|_| -r.unit()).collect(),
            vec![0.0; len],
            (0..len).map(|i| if i % 2 == 0 { f64::MAX } else { -f64::MAX }).collect(),
        ];
        for y in &inputs {
            for m in Method::ALL {
                for f in [linkage::<f64>, nn_chain::<f64>, generic::<f64>, primitive::<f64>] {
                    if let Ok(z) = f(y, n, m) {
                        assert_eq!(z.len(), 4 * (n - 1));
                    }
                }
            }
        }
    }
}

/// Size-weighted Ward: a row of size s is s identical observations, so Ward on the expanded set (each row
/// repeated s times) first merges the copies at height 0 and then makes exactly the merges of the weighted run
/// on the unique rows, at the same heights (≈1e-12 relative: centroids of copies carry no rounding). And all-ones
/// sizes are bit for bit the unweighted Z; the screen (n ≥ 256) and the parallel scan never change the result.
#[test]
fn ward_from_vectors_weighted_matches_expanded_observations() {
    use ac_kernels::linkage::ward_from_vectors_unscreened;
    let mut r = Rng(0x5eed);
    for &(n, d) in &[(2usize, 3usize), (17, 5), (60, 8), (300, 40)] {
        let x: Vec<f32> = (0..n * d).map(|_| r.normal() as f32).collect();
        let sizes: Vec<u32> = (0..n).map(|_| 1 + (r.next_u64() % 4) as u32).collect();
        let ones = vec![1u32; n];
        assert_eq!(ward_from_vectors(&x, n, d, Some(&ones), ac_kernels::Parallelism::Serial).unwrap(), ward_from_vectors(&x, n, d, None, ac_kernels::Parallelism::Serial).unwrap());
        let got = ward_from_vectors(&x, n, d, Some(&sizes), ac_kernels::Parallelism::Serial).unwrap();
        check_linkage_matrix(&got, n).unwrap();
        assert!(got == ward_from_vectors_unscreened(&x, n, d, Some(&sizes)).unwrap(), "n={n}: screen");
        assert!(got == ac_kernels::linkage::ward_from_vectors(&x, n, d, Some(&sizes), ac_kernels::Parallelism::Threads).unwrap(), "n={n}: parallel");
        // A weighted Z differs from the unweighted one (the sizes matter).
        if n > 2 {
            assert!(got != ward_from_vectors(&x, n, d, None, ac_kernels::Parallelism::Serial).unwrap(), "n={n}: sizes ignored");
        }
        let mut big = Vec::new();
        for i in 0..n {
            for _ in 0..sizes[i] {
                big.extend_from_slice(&x[i * d..(i + 1) * d]);
            }
        }
        let nb = big.len() / d;
        let zb = ward_from_vectors(&big, nb, d, None, ac_kernels::Parallelism::Serial).unwrap();
        let hb: Vec<f64> = zb.chunks_exact(4).map(|row| row[2]).filter(|&h| h > 0.0).collect();
        let hw: Vec<f64> = got.chunks_exact(4).map(|row| row[2]).collect();
        assert_eq!(hb.len(), hw.len(), "n={n}: merges above height 0");
        for (a, b) in hb.iter().zip(&hw) {
            assert!((a - b).abs() <= 1e-9 * b.abs().max(1.0), "n={n}: height {a} vs {b}");
        }
        // The last merge joins everything: column 3 counts rows (SciPy's convention over n leaves).
        assert_eq!(got[4 * (n - 2) + 3], n as f64);
    }
    assert!(matches!(ward_from_vectors(&[0.0; 6], 2, 3, Some(&[1]), ac_kernels::Parallelism::Serial), Err(Error::ShapeMismatch { what: "sizes", .. })));
    assert!(matches!(ward_from_vectors(&[0.0; 6], 2, 3, Some(&[1, 0]), ac_kernels::Parallelism::Serial), Err(Error::InvalidArgument(_))));
}
