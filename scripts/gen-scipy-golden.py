#!/usr/bin/python3
"""Generate test/fixtures/scipy-golden.json: SciPy's linkage matrices and flat clusters on fixed inputs.

Run with Debian's python3 + python3-scipy (1.10):  /usr/bin/python3 scripts/gen-scipy-golden.py

Every case stores the condensed f64 distance vector `y` (as computed by scipy's pdist, or given directly), so
the TS tests never recompute distances. For each of the seven methods it stores:
  Z         scipy.cluster.hierarchy.linkage(y, method), flattened row-major ((n-1)*4 floats)
  maxclust  {t: labels}  SciPy's fcluster(Z, t, 'maxclust') as fixed in SciPy >= 1.11 (1-based, SciPy's numbering;
            see maxclust() below: SciPy 1.10's binary search never tries the first merge height, so it returns
            too few clusters, and reads past the end of its array for n = 2)
  distance  [[t, fcluster(Z, t, 'distance')], ...]   (1-based)
  cutTree   {k: cut_tree(Z, n_clusters=k)}    (0-based; only for monotone methods and only where the cut is
            unambiguous, i.e. the heights of rows n-k-1 and n-k differ, because scipy's cut_tree orders tied
            merges by its own tree walk rather than by row)
Floats are written with repr (shortest round-trip), so JSON.parse gives the same f64 bits.
"""
import json
import os
import sys

import numpy as np
import scipy
from scipy.cluster.hierarchy import cut_tree, fcluster, linkage, maxdists
from scipy.spatial.distance import pdist

METHODS = ["single", "complete", "average", "weighted", "ward", "centroid", "median"]
MONOTONE = {"single", "complete", "average", "weighted", "ward"}
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "scipy-golden.json")


def maxclust(Z, t):
    """fcluster(Z, t, 'maxclust') with current SciPy semantics (scipy/cluster/_hierarchy.pyx
    cluster_maxclust_monocrit: `max_nc >= n` -> singletons labelled i+1; binary search from lower_idx = -1).
    The cut itself and the label numbering come from SciPy's own fcluster(..., 'distance')."""
    n = Z.shape[0] + 1
    if t >= n:
        return np.arange(1, n + 1)
    MD = maxdists(Z)
    lower, upper = -1, n - 1
    while upper - lower > 1:
        i = (lower + upper) >> 1
        nc = n - int(np.sum(MD <= MD[i]))  # clusters of the cut at MD[i] (MD is monotone along the tree)
        if nc > t:
            lower = i
        else:
            upper = i
    T = fcluster(Z, MD[upper], criterion="distance")
    if len(set(Z[:, 2])) == n - 1 and method_is_monotone(Z):
        assert T.max() == t, (T, t)
    return T


def method_is_monotone(Z):
    return bool(np.all(np.diff(Z[:, 2]) >= 0))


def ks_for(n):
    ks = sorted({1, 2, 3, max(1, n // 2), n - 1, n} & set(range(1, n + 1)))
    return ks


def case_from_y(name, y, n, note=""):
    y = np.asarray(y, dtype=np.float64)
    case = {"name": name, "n": int(n), "y": [float(v) for v in y], "note": note, "methods": {}}
    for method in METHODS:
        if n == 1:
            case["methods"][method] = {
                "Z": [],
                "maxclust": {"1": [1], "2": [1]},
                "distance": [[0.0, [1]]],
                "cutTree": {"1": [0]},
            }
            continue
        Z = linkage(y, method)
        entry = {"Z": [float(v) for v in Z.ravel()]}
        mc = {}
        for t in ks_for(n) + [n + 1]:
            mc[str(t)] = [int(v) for v in maxclust(Z, t)]
        entry["maxclust"] = mc
        heights = Z[:, 2]
        ts = {0.0, float(np.median(heights)), float(heights[len(heights) // 2]), float(heights.max()) + 1.0}
        if len(heights) > 2:
            ts.add(float((heights[0] + heights[-1]) / 2))
        entry["distance"] = [[t, [int(v) for v in fcluster(Z, t, criterion="distance")]] for t in sorted(ts)]
        if method in MONOTONE:
            ct = {}
            for k in ks_for(n):
                if 1 < k < n and heights[n - k - 1] == heights[n - k]:
                    continue
                ct[str(k)] = [int(v) for v in cut_tree(Z, n_clusters=k)[:, 0]]
            entry["cutTree"] = ct
        case["methods"][method] = entry
    return case


def case_from_x(name, X, note=""):
    X = np.asarray(X, dtype=np.float64)
    return case_from_y(name, pdist(X), X.shape[0], note)


def main():
    cases = []
    # The 12-point example of scipy's docs (`ward(pdist(X))`, fcluster, ...): many tied distances.
    X12 = [[0, 0], [0, 1], [1, 0], [0, 4], [0, 3], [1, 4], [4, 0], [3, 0], [4, 1], [4, 4], [3, 4], [4, 3]]
    cases.append(case_from_x("scipy-docs-12", X12, "scipy.cluster.hierarchy docs example X"))
    # test_linkage_ties (scipy/cluster/tests/test_hierarchy.py).
    cases.append(case_from_x("linkage-ties", [[-1, -1], [0, 0], [1, 1]], "scipy test_linkage_ties"))
    # Tiny sizes.
    cases.append(case_from_y("n1", [], 1, "a single point: Z is empty (scipy itself refuses n=1)"))
    cases.append(case_from_y("n2", [2.5], 2))
    cases.append(case_from_y("n3", [1.0, 3.0, 2.0], 3))
    cases.append(case_from_y("n3-all-equal", [1.0, 1.0, 1.0], 3))
    # All distances equal / all points identical: pure tie-breaking.
    n = 6
    cases.append(case_from_y("all-equal-6", np.ones(n * (n - 1) // 2), n, "every distance 1"))
    cases.append(case_from_y("all-zero-5", np.zeros(10), 5, "identical points"))
    # Integer grids: many ties.
    grid = [[i, j] for i in range(4) for j in range(4)]
    cases.append(case_from_x("grid-4x4", grid, "4x4 integer grid"))
    rng = np.random.default_rng(20240611)
    for i, nn in enumerate([7, 13, 20, 30]):
        Xi = rng.integers(0, 4, size=(nn, 2))
        cases.append(case_from_x(f"int-ties-{nn}", Xi, "random integer points in [0,4)^2: tied and zero distances"))
    Xi = rng.integers(0, 3, size=(18, 3))
    cases.append(case_from_x("int-ties-18-d3", Xi, "random integer points in [0,3)^3"))
    # Random continuous points, 2..30 points.
    for seed, (nn, d) in enumerate([(2, 2), (3, 3), (4, 2), (5, 4), (8, 3), (11, 2), (16, 5), (23, 3), (30, 4)]):
        r = np.random.default_rng(1000 + seed)
        Xr = r.normal(size=(nn, d))
        cases.append(case_from_x(f"random-{nn}x{d}", Xr, f"standard normal, seed {1000 + seed}"))
    # Clustered data (well separated groups) so flat cuts are meaningful.
    r = np.random.default_rng(77)
    centers = r.normal(scale=10, size=(4, 3))
    Xc = np.concatenate([c + r.normal(size=(6, 3)) for c in centers])
    cases.append(case_from_x("blobs-24x3", Xc, "4 gaussian blobs of 6 points"))
    # A condensed matrix that is not Euclidean (random, all distinct): exercises centroid/median inversions.
    r = np.random.default_rng(5)
    cases.append(case_from_y("random-condensed-12", r.uniform(0.5, 2.0, size=66), 12, "random non-metric distances"))

    doc = {
        "generator": "scripts/gen-scipy-golden.py",
        "scipy": scipy.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases, {os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
