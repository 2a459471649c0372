#!/usr/bin/env python3
"""Peer timings for benches/peers.mjs: numpy/OpenBLAS, scipy, scikit-learn, fastcluster on the same data.

Reads a JSON job from argv[1]: {"op": ..., "x": "<path to .npy f32>", ...}; writes timings and outputs (as .npy)
into the job's "out" folder and prints one JSON line. Installs nothing: uses what the system Python has.
"""
import json, os, sys, time, resource

job = json.loads(open(sys.argv[1]).read())
import numpy as np

def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0

def timed(fn, reps=1):
    best = float("inf"); out = None
    for _ in range(reps):
        t0 = time.perf_counter(); out = fn(); best = min(best, time.perf_counter() - t0)
    return best, out

res = {"op": job["op"], "numpy": np.__version__}
try:
    from threadpoolctl import threadpool_info
    res["blas"] = [{k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")} for i in threadpool_info()]
except Exception as e:  # threadpoolctl is optional
    res["blas"] = str(e)

op = job["op"]
if op == "sgemm":
    n, d = job["n"], job["d"]
    a = np.random.default_rng(0).standard_normal((n, d), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((d, n), dtype=np.float32)
    t, _ = timed(lambda: a @ b, 3)
    res.update(seconds=t, gflops=2.0 * n * n * d / t / 1e9)
elif op == "grouped":
    x = np.load(job["x"]); nb, m = job["nbags"], job["m"]
    nq = x.shape[0] if job.get("full") else job["nq"]  # full: every patch of every image is a query
    q = x[:nq]
    bn = np.einsum("ij,ij->i", x, x)
    qn = bn[:nq]
    def run():
        out = np.zeros(nq, dtype=np.float64)
        for g in range(nb):  # chunked: one image's patches at a time, min over rows, never the full matrix
            blk = x[g * m:(g + 1) * m]
            d2 = qn[:, None] + bn[None, g * m:(g + 1) * m] - 2.0 * (q @ blk.T)
            dmin = np.sqrt(np.maximum(d2.min(axis=1), 0.0))
            own = (np.arange(nq) // m) == g
            dmin[own] = 0.0
            out += dmin
        own_count = 1
        return (out / (nb - own_count)).astype(np.float32)
    t, out = timed(run)
    np.save(os.path.join(job["out"], "grouped.npy"), out)
    res.update(seconds=t, gflops=2.0 * nq * (nb - 1) * m * x.shape[1] / t / 1e9, nq=nq)
elif op == "cdist":
    from sklearn.metrics.pairwise import euclidean_distances
    x = np.load(job["x"]); nq = job["nq"]
    t, out = timed(lambda: euclidean_distances(x[:nq], x))
    res.update(sklearn_seconds=t)
    if job.get("scipy", True):
        from scipy.spatial.distance import cdist
        t2, _ = timed(lambda: cdist(x[:nq], x))
        res.update(scipy_seconds=t2)
elif op == "pdist":
    x = np.load(job["x"])
    from scipy.spatial.distance import pdist
    t, out = timed(lambda: pdist(x))
    res.update(scipy_seconds=t)
    from sklearn.metrics.pairwise import euclidean_distances
    t2, _ = timed(lambda: euclidean_distances(x))
    res.update(sklearn_seconds=t2)
elif op == "linkage":
    y = np.load(job["y"]).astype(np.float64)
    from scipy.cluster.hierarchy import linkage
    t, z = timed(lambda: linkage(y, method=job["method"]))
    np.save(os.path.join(job["out"], "Z-scipy.npy"), z)
    res.update(scipy_seconds=t)
    try:
        import fastcluster
        t2, z2 = timed(lambda: fastcluster.linkage(y, method=job["method"]))
        res.update(fastcluster_seconds=t2)
    except ImportError:
        pass
res["peak_mb"] = peak_mb()
print(json.dumps(res))
