//! Softmax patch weights: values, limits (tau = 0, tau = inf, tiny/huge tau), numerical safety, validation.
use ac_kernels::weights::{check_offsets, softmax_weights};
use ac_kernels::Error;

fn softmax(scores: &[f32], offsets: &[u32], tau: f64) -> Vec<f32> {
    let mut out = vec![f32::NAN; scores.len()];
    softmax_weights(scores, offsets, tau, &mut out).unwrap();
    out
}

fn close(a: &[f32], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| (x as f64 - y).abs() <= 1e-7 * y.abs().max(1e-30))
}

#[test]
fn softmax_values_per_bag() {
    let s = [1.0f32, 2.0, 3.0, 5.0, 5.0];
    let w = softmax(&s, &[0, 3, 5], 1.0);
    let e: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| (v - 3.0f64).exp()).collect();
    let z: f64 = e.iter().sum();
    assert!(close(&w[..3], &[e[0] / z, e[1] / z, e[2] / z]));
    assert_eq!(&w[3..], &[0.5, 0.5]);
    // tau scales: tau = 2 is the softmax of s/2.
    let w2 = softmax(&s[..3], &[0, 3], 2.0);
    let e2: Vec<f64> = [1.0f64, 2.0, 3.0].iter().map(|v| ((v - 3.0) / 2.0f64).exp()).collect();
    let z2: f64 = e2.iter().sum();
    assert!(close(&w2, &[e2[0] / z2, e2[1] / z2, e2[2] / z2]));
}

#[test]
fn each_bag_sums_to_one_and_is_shift_invariant() {
    let s: Vec<f32> = (0..100).map(|i| ((i * 37 % 101) as f32) * 0.731 - 20.0).collect();
    let offs = [0u32, 1, 10, 45, 100];
    for tau in [0.0, 1e-3, 0.5, 3.0, 1e6, f64::INFINITY] {
        let w = softmax(&s, &offs, tau);
        for b in offs.windows(2) {
            let sum: f64 = w[b[0] as usize..b[1] as usize].iter().map(|&v| v as f64).sum();
            assert!((sum - 1.0).abs() < 1e-6, "tau={tau} sum={sum}");
        }
        let shifted: Vec<f32> = s.iter().map(|v| v + 1000.0).collect();
        let ws = softmax(&shifted, &offs, tau);
        if tau == 0.0 || tau == f64::INFINITY {
            assert_eq!(w, ws);
        }
    }
}

#[test]
fn limits() {
    let s = [3.0f32, 7.0, 7.0, -1.0];
    assert_eq!(softmax(&s, &[0, 4], 0.0), vec![0.0, 0.5, 0.5, 0.0]);
    assert_eq!(softmax(&s, &[0, 4], f64::INFINITY), vec![0.25; 4]);
    // Tiny tau tends to the arg-max without NaN; huge scores do not overflow.
    assert_eq!(softmax(&s, &[0, 4], 1e-300), vec![0.0, 0.5, 0.5, 0.0]);
    let big = [3.0e38f32, -3.0e38, 3.0e38];
    assert_eq!(softmax(&big, &[0, 3], 1e-3), vec![0.5, 0.0, 0.5]);
    let w = softmax(&big, &[0, 3], 1e300);
    assert!(w.iter().all(|v| (v - 1.0 / 3.0).abs() < 1e-6));
    // A bag of one.
    assert_eq!(softmax(&[-5.0], &[0, 1], 0.7), vec![1.0]);
}

#[test]
fn validation() {
    let mut out = [0.0f32; 3];
    let s = [1.0f32, 2.0, 3.0];
    let inv = |r: Result<(), Error>| matches!(r, Err(Error::InvalidArgument(_)));
    assert!(inv(softmax_weights(&s, &[0, 3], -1.0, &mut out)));
    assert!(inv(softmax_weights(&s, &[0, 3], f64::NAN, &mut out)));
    assert!(inv(softmax_weights(&s, &[1, 3], 1.0, &mut out)));
    assert!(inv(softmax_weights(&s, &[0, 2, 2, 3], 1.0, &mut out)));
    assert!(inv(softmax_weights(&s, &[0, 2], 1.0, &mut out)));
    assert!(inv(softmax_weights(&s, &[0, 4], 1.0, &mut out)));
    assert!(matches!(softmax_weights(&s, &[0], 1.0, &mut out), Err(Error::Empty(_))));
    assert!(matches!(softmax_weights(&s, &[], 1.0, &mut out), Err(Error::Empty(_))));
    assert!(matches!(softmax_weights(&[], &[0], 1.0, &mut []), Err(Error::Empty(_))));
    assert_eq!(
        softmax_weights(&s, &[0, 3], 1.0, &mut out[..2]),
        Err(Error::ShapeMismatch { what: "out", expected: 3, got: 2 })
    );
    assert_eq!(
        softmax_weights(&[1.0, f32::INFINITY, 0.0], &[0, 3], 1.0, &mut out),
        Err(Error::NonFinite { what: "scores", index: 1 })
    );
    assert_eq!(check_offsets(&[0, 2, 5], 5), Ok(2));
}
