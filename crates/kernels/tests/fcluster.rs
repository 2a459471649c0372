//! Flat clusters: SciPy goldens (`cut_tree` for every k, `fcluster(..., 'distance')` at and between every
//! merge height, non-monotone centroid trees included), validation, and a deep tree (no recursion).
#[path = "fixtures/fcluster_golden.rs"]
mod golden;

use ac_kernels::fcluster::{check_linkage_matrix, cut_height, cut_k};
use ac_kernels::linkage::{linkage, Method};
use ac_kernels::Error;
use golden::FCLUSTER_CASES;

#[test]
fn cut_k_matches_scipy_cut_tree() {
    let mut checked = 0;
    for c in FCLUSTER_CASES {
        for (&k, want) in c.ks.iter().zip(c.cut) {
            let mut out = vec![-7; c.n];
            cut_k(c.z, c.n, k, &mut out).unwrap();
            assert_eq!(&out[..], *want, "{} k={k}", c.name);
            assert_eq!(out.iter().max().map(|&m| m + 1), Some(k as i32));
            checked += 1;
        }
    }
    assert!(checked > 200);
}

#[test]
fn cut_height_matches_scipy_fcluster_distance() {
    let mut non_monotone = 0;
    for c in FCLUSTER_CASES {
        if c.ks.is_empty() {
            non_monotone += 1;
        }
        for (&h, want) in c.heights.iter().zip(c.fcl) {
            let mut out = vec![-7; c.n];
            cut_height(c.z, c.n, h, &mut out).unwrap();
            assert_eq!(&out[..], *want, "{} h={h}", c.name);
        }
    }
    assert!(non_monotone > 0, "fixture should include a non-monotone (centroid) tree");
}

#[test]
fn labels_are_first_appearance_ordered() {
    // 0,1 merge first; 2,3 next: k = 3 → {0,1} {2} {3}... with observation 0 labelled 0.
    let z = [2.0, 3.0, 0.5, 2.0, 0.0, 1.0, 1.0, 2.0, 4.0, 5.0, 3.0, 4.0];
    let mut out = [0i32; 4];
    cut_k(&z, 4, 3, &mut out).unwrap();
    assert_eq!(out, [0, 1, 2, 2]);
    cut_k(&z, 4, 2, &mut out).unwrap();
    assert_eq!(out, [0, 0, 1, 1]);
    cut_k(&z, 4, 1, &mut out).unwrap();
    assert_eq!(out, [0, 0, 0, 0]);
    cut_k(&z, 4, 4, &mut out).unwrap();
    assert_eq!(out, [0, 1, 2, 3]);
    cut_height(&z, 4, 0.5, &mut out).unwrap();
    assert_eq!(out, [0, 1, 2, 2]);
    cut_height(&z, 4, f64::INFINITY, &mut out).unwrap();
    assert_eq!(out, [0, 0, 0, 0]);
    cut_height(&z, 4, f64::NEG_INFINITY, &mut out).unwrap();
    assert_eq!(out, [0, 1, 2, 3]);
}

#[test]
fn single_observation() {
    let mut out = [5i32];
    cut_k(&[], 1, 1, &mut out).unwrap();
    assert_eq!(out, [0]);
    cut_height(&[], 1, 0.0, &mut out).unwrap();
    assert_eq!(out, [0]);
}

#[test]
fn deep_chain_tree_is_iterative() {
    // Single linkage of points on a line: a caterpillar tree of depth n - 1.
    let n = 200_000usize;
    let mut z = Vec::with_capacity(4 * (n - 1));
    z.extend([0.0, 1.0, 1.0, 2.0]);
    for i in 1..n - 1 {
        z.extend([(i + 1) as f64, (n + i - 1) as f64, 1.0 + i as f64, (i + 2) as f64]);
    }
    let mut out = vec![0i32; n];
    cut_k(&z, n, 2, &mut out).unwrap();
    assert!(out[..n - 1].iter().all(|&l| l == 0) && out[n - 1] == 1);
    cut_height(&z, n, 10.0, &mut out).unwrap();
    assert_eq!(out[..12], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    assert_eq!(out[n - 1] as usize, n - 11);
}

#[test]
fn validation() {
    let z = linkage(&[1.0f64, 2.0, 3.0], 3, Method::Average).unwrap();
    let mut out = [0i32; 3];
    assert_eq!(cut_k(&z, 0, 1, &mut []), Err(Error::Empty("n (number of observations)")));
    assert_eq!(cut_k(&z[..4], 3, 1, &mut out), Err(Error::ShapeMismatch { what: "Z", expected: 8, got: 4 }));
    assert_eq!(cut_k(&z, 3, 1, &mut out[..2]), Err(Error::ShapeMismatch { what: "out", expected: 3, got: 2 }));
    assert_eq!(cut_k(&z, 3, 0, &mut out), Err(Error::KOutOfRange { k: 0, n: 3 }));
    assert_eq!(cut_k(&z, 3, 4, &mut out), Err(Error::KOutOfRange { k: 4, n: 3 }));
    assert!(matches!(cut_height(&z, 3, f64::NAN, &mut out), Err(Error::InvalidArgument(_))));
    let bad = |i: usize, v: f64| {
        let mut b = z.clone();
        b[i] = v;
        b
    };
    assert_eq!(check_linkage_matrix(&bad(2, f64::NAN), 3), Err(Error::NonFinite { what: "Z", index: 2 }));
    for (i, v) in [(0, 5.0), (0, -1.0), (0, 0.5), (4, 4.0), (5, 0.0), (2, -1.0), (3, 3.0)] {
        assert!(matches!(check_linkage_matrix(&bad(i, v), 3), Err(Error::InvalidArgument(_))), "Z[{i}]={v}");
        assert!(matches!(cut_k(&bad(i, v), 3, 2, &mut out), Err(Error::InvalidArgument(_))));
    }
    // Merging the same id twice.
    let twice = [0.0, 1.0, 1.0, 2.0, 0.0, 2.0, 2.0, 2.0];
    assert!(matches!(check_linkage_matrix(&twice, 3), Err(Error::InvalidArgument(_))));
}
