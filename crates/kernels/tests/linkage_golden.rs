//! Linkage matrices compared bit for bit with SciPy 1.10 (`fixtures/linkage_golden.rs`, made by
//! `gen_linkage_golden.py`): documentation examples, scipy's `test_linkage_ties` input, all-equal distances,
//! small-integer distances and integer grids (heavy ties), continuous data, and f32 input.
#[path = "fixtures/linkage_golden.rs"]
mod golden;

use ac_kernels::linkage::{linkage, linkage_in_place, Method};
use golden::LINKAGE_CASES;

fn bits(z: &[f64]) -> Vec<u64> {
    z.iter().map(|v| v.to_bits()).collect()
}

fn run(case: &golden::LinkageCase) -> Vec<f64> {
    let m: Method = case.method.parse().unwrap();
    if case.f32_input {
        let y: Vec<f32> = case.y.iter().map(|&v| v as f32).collect();
        assert!(y.iter().zip(case.y).all(|(&a, &b)| a as f64 == b), "{}: fixture not f32-exact", case.name);
        linkage(&y, case.n, m).unwrap()
    } else {
        linkage(case.y, case.n, m).unwrap()
    }
}

#[test]
fn linkage_matches_scipy_bit_for_bit() {
    let mut failures = Vec::new();
    for case in LINKAGE_CASES {
        let z = run(case);
        if bits(&z) != bits(case.z) {
            failures.push(format!("{}:\n  got      {:?}\n  expected {:?}", case.name, z, case.z));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases differ:\n{}", failures.len(), LINKAGE_CASES.len(), failures.join("\n"));
}

#[test]
fn linkage_in_place_f64_matches_scipy_bit_for_bit() {
    for case in LINKAGE_CASES.iter().filter(|c| !c.f32_input) {
        let m: Method = case.method.parse().unwrap();
        let mut d = case.y.to_vec();
        let z = linkage_in_place(&mut d, case.n, m).unwrap();
        assert_eq!(bits(&z), bits(case.z), "{}", case.name);
    }
}

#[test]
fn golden_covers_every_method_with_ties() {
    for m in Method::ALL {
        let tied = LINKAGE_CASES
            .iter()
            .filter(|c| c.method == m.as_str() && (c.name.starts_with("grid") || c.name.starts_with("equal")))
            .count();
        assert!(tied >= 5, "{m}: only {tied} tied cases");
    }
}
