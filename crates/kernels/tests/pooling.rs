//! Bag pooling: weighted mean (f64 accumulation) and per-dimension max; validation.
use ac_kernels::pooling::{max_pool_f32, weighted_mean_f32};
use ac_kernels::Error;

#[test]
fn weighted_mean_values() {
    // Two bags, d = 2: rows (1,2) (3,4) (5,6) | (7,8).
    let rows = [1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0];
    let mut out = [0.0f32; 4];
    weighted_mean_f32(&rows, &[0, 3, 4], 2, &[1.0, 0.0, 3.0, 0.25], &mut out).unwrap();
    assert_eq!(out, [4.0, 5.0, 7.0, 8.0]);
    // Unnormalised uniform weights = plain mean.
    weighted_mean_f32(&rows, &[0, 3, 4], 2, &[2.0, 2.0, 2.0, 9.0], &mut out).unwrap();
    assert_eq!(out, [3.0, 4.0, 7.0, 8.0]);
}

#[test]
fn weighted_mean_accumulates_in_f64() {
    // 10 001 rows: one 1e8 with weight 1, then 10 000 ones; an f32 running sum would drop every 1.
    let n = 10_001;
    let mut rows = vec![1.0f32; n];
    rows[0] = 1.0e8;
    let w = vec![1.0f32; n];
    let mut out = [0.0f32];
    weighted_mean_f32(&rows, &[0, n as u32], 1, &w, &mut out).unwrap();
    let want = ((1.0e8 + 10_000.0) / n as f64) as f32;
    assert_eq!(out[0], want);
}

#[test]
fn max_pool_values() {
    let rows = [1.0f32, -2.0, 3.0, -4.0, 0.5, 6.0, -7.0, -8.0];
    let mut out = [0.0f32; 4];
    max_pool_f32(&rows, &[0, 3, 4], 2, &mut out).unwrap();
    assert_eq!(out, [3.0, 6.0, -7.0, -8.0]);
}

#[test]
fn validation() {
    let rows = [1.0f32, 2.0, 3.0, 4.0];
    let mut out = [0.0f32; 2];
    let inv = |r: Result<(), Error>| matches!(r, Err(Error::InvalidArgument(_)));
    assert!(inv(weighted_mean_f32(&rows, &[0, 2], 2, &[0.0, 0.0], &mut out)));
    assert!(inv(weighted_mean_f32(&rows, &[0, 2], 2, &[1.0, -0.5], &mut out)));
    assert!(inv(weighted_mean_f32(&rows, &[0, 1], 2, &[1.0, 1.0], &mut out)));
    assert!(inv(max_pool_f32(&rows, &[0, 0, 2], 2, &mut out)));
    assert_eq!(
        weighted_mean_f32(&rows, &[0, 2], 2, &[1.0], &mut out),
        Err(Error::ShapeMismatch { what: "weights", expected: 2, got: 1 })
    );
    assert_eq!(
        weighted_mean_f32(&rows, &[0, 2], 2, &[1.0, f32::NAN], &mut out),
        Err(Error::NonFinite { what: "weights", index: 1 })
    );
    assert_eq!(
        max_pool_f32(&[1.0, f32::NAN, 0.0, 0.0], &[0, 2], 2, &mut out),
        Err(Error::NonFinite { what: "rows", index: 1 })
    );
    assert_eq!(max_pool_f32(&rows, &[0, 2], 2, &mut out[..1]), Err(Error::ShapeMismatch { what: "out", expected: 2, got: 1 }));
    assert_eq!(max_pool_f32(&rows[..3], &[0, 1], 2, &mut out), Err(Error::ShapeMismatch { what: "rows", expected: 2, got: 3 }));
    assert!(matches!(max_pool_f32(&rows, &[0, 2], 0, &mut out), Err(Error::Empty(_))));
    assert!(matches!(max_pool_f32(&[], &[0], 2, &mut []), Err(Error::Empty(_))));
}
