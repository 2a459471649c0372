#!/usr/bin/env python3
"""Golden values for test/pipeline/metrics.test.ts, computed once with scikit-learn (and SciPy's Hungarian solver).

    /usr/bin/python3 scripts/gen-sklearn-golden.py > test/fixtures/sklearn-metrics.json

NMI = sklearn.metrics.normalized_mutual_info_score (average_method='arithmetic', the default);
ARI = sklearn.metrics.adjusted_rand_score;
F1  = micro-F1 after matching clusters to classes one-to-one with scipy.optimize.linear_sum_assignment on the
      contingency table (maximising matches), i.e. clustering accuracy.
Inputs are fixed (a seeded NumPy generator), so the file is reproducible.
"""
import json
import sys

import numpy as np
import scipy
import sklearn
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score
from sklearn.metrics.cluster import contingency_matrix


def f1_matched(truth, pred):
    c = contingency_matrix(truth, pred)  # classes x clusters
    r, k = linear_sum_assignment(-c)
    return float(c[r, k].sum()) / len(truth)


def case(name, pred, truth):
    return {
        "name": name,
        "labels": list(pred),
        "truth": list(truth),
        "nmi": float(normalized_mutual_info_score(truth, pred)),
        "ari": float(adjusted_rand_score(truth, pred)),
        "f1": f1_matched(truth, pred),
    }


def main():
    rng = np.random.default_rng(20230101)
    cases = [
        case("identical", [0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2]),
        case("permuted-ids", [2, 2, 0, 0, 1, 1], ["a", "a", "b", "b", "c", "c"]),
        case("one-off", [0, 0, 0, 1, 1, 1, 2, 2], [0, 0, 1, 1, 1, 1, 2, 2]),
        case("all-one-cluster", [0] * 6, ["x", "x", "y", "y", "z", "z"]),
        case("all-singletons", list(range(6)), ["x", "x", "y", "y", "z", "z"]),
        case("both-trivial", [3] * 5, ["q"] * 5),
        case("more-clusters-than-classes", [0, 1, 2, 3, 4, 4, 3, 2, 1, 0], ["a"] * 5 + ["b"] * 5),
        case("fewer-clusters-than-classes", [0, 0, 0, 1, 1, 1, 1, 0, 1, 0], ["a", "a", "b", "b", "c", "c", "d", "d", "e", "e"]),
        case("strings-mvtec", ["0", "0", "1", "2", "2", "3", "1", "0"],
             ["good", "good", "broken_large", "contamination", "contamination", "broken_small", "broken_large", "good"]),
        case("single-item", [0], ["a"]),
        case("two-items-split", [0, 1], ["a", "a"]),
    ]
    for t, (n, kp, kt) in enumerate([(30, 3, 3), (100, 4, 6), (100, 6, 4), (250, 5, 5), (583, 6, 6), (57, 10, 3)]):
        truth = rng.integers(0, kt, n)
        # partly informative: keep the class with probability 0.6, else random
        pred = np.where(rng.random(n) < 0.6, truth % kp, rng.integers(0, kp, n))
        cases.append(case(f"random-{t}-n{n}-k{kp}-c{kt}", [int(x) for x in pred], [f"class{int(x)}" for x in truth]))
    head = {"generator": "scripts/gen-sklearn-golden.py", "sklearn": sklearn.__version__, "scipy": scipy.__version__,
            "numpy": np.__version__}
    out = json.dumps(head)[:-1] + ', "cases": [\n'  # one case per line: readable diffs
    out += ",\n".join(json.dumps(c) for c in cases)
    sys.stdout.write(out + "\n]}\n")


if __name__ == "__main__":
    main()
