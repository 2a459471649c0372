#!/usr/bin/env python3
"""The same method in the Python stack, for benches/e2e.mjs: what a user would run instead of this package.

onnxruntime (CPU wheel) on the same ONNX backbone file and the same two layers, Pillow decoding, numpy
aggregation (3x3 mean with zero padding /9, bilinear align_corners=False upsampling, concat, per-layer L2,
the same seeded Gaussian projection), numpy nearest-patch search (the same seeded reference images, patch
whitening with the same shrinkage, per-image relative softmax temperature), l2-center-l2 embedding
normalisation, fastcluster Ward (SciPy's fcluster maxclust for the K-cut).

Stages run one after the other (no overlap), as a straightforward script would. Reads a JSON job from argv[1]
(written by e2e.mjs), prints one JSON line: per-stage seconds and the labels.
"""
import json
import math
import sys
import time

job = json.loads(open(sys.argv[1]).read())

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from PIL import Image, ImageOps  # noqa: E402
import fastcluster  # noqa: E402
from scipy.cluster.hierarchy import fcluster  # noqa: E402

T = {}
M32 = 0xFFFFFFFF


def mulberry32(seed):
    """The package's PRNG (src/random.ts), bit for bit: uniform floats in [0, 1)."""
    a = seed & M32

    def imul(x, y):
        return (x * y) & M32

    def nxt():
        nonlocal a
        a = (a + 0x6D2B79F5) & M32
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & M32
        t &= M32
        return ((t ^ (t >> 14)) & M32) / 4294967296.0

    return nxt


def gaussian_projection(d_in, d_out, seed):
    """aggregate.ts gaussianProjection: mulberry32 + Box-Muller, N(0, 1/d_out), d_in x d_out row-major."""
    u = mulberry32((seed * 0x9E3779B1 + 0x632BE5AB) & M32)
    n = d_in * d_out
    p = np.empty(n, dtype=np.float64)
    s = 1.0 / math.sqrt(d_out)
    for i in range(0, n, 2):
        r = math.sqrt(-2.0 * math.log(u() + 0.5 / 4294967296.0))
        th = 2.0 * math.pi * (u() + 0.5 / 4294967296.0)
        p[i] = r * math.cos(th) * s
        if i + 1 < n:
            p[i + 1] = r * math.sin(th) * s
    return p.astype(np.float32).reshape(d_in, d_out)


def reference_sets(n, r, seed):
    """weighting.ts subsetScores: a partial Fisher-Yates over the other images, seeded per image."""
    out = []
    for i in range(n):
        rand = mulberry32((seed * 0x9E3779B1 + i * 0x85EBCA6B + 1) & M32)
        others = [j for j in range(n) if j != i]
        for t in range(r):
            u = t + int(math.floor(rand() * (n - 1 - t)))
            others[t], others[u] = others[u], others[t]
        out.append(others[:r])
    return out


# ---- model: the same file, outputs replaced by the two layers (onnxruntime prunes the rest)
t0 = time.perf_counter()
model = onnx.load(job["model"])
del model.graph.output[:]
for name in job["layers"]:
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
so = ort.SessionOptions()
if job.get("threads"):
    so.intra_op_num_threads = job["threads"]
sess = ort.InferenceSession(model.SerializeToString(), so, providers=["CPUExecutionProvider"])
inp = sess.get_inputs()[0].name
T["load"] = time.perf_counter() - t0

S = job["inputSize"]
mean = np.array(job["mean"], np.float32).reshape(3, 1, 1)
std = np.array(job["std"], np.float32).reshape(3, 1, 1)


def decode(path):
    im = Image.open(path)
    im = ImageOps.exif_transpose(im).convert("RGB")
    im = im.resize((S, S), Image.LANCZOS)  # fit 'stretch'
    x = np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return (x - mean) / std


def pool3(x):
    """3x3 mean, stride 1, zero padding 1, divided by 9: x [C, H, W]."""
    p = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    h = p[:, :, :-2] + p[:, :, 1:-1] + p[:, :, 2:]
    return (h[:, :-2] + h[:, 1:-1] + h[:, 2:]) / 9.0


def taps(n_in, n_out):
    o = np.arange(n_out)
    src = np.maximum((o + 0.5) * (n_in / n_out) - 0.5, 0)
    a = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    return a, np.minimum(a + 1, n_in - 1), (src - a).astype(np.float32)


def l2rows(x):
    n = np.sqrt((x * x).sum(1, keepdims=True))
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


files = job["files"]
n = len(files)
bs = job["batchSize"]
P = gaussian_projection(job["dRaw"], job["projectDim"], job["projectSeed"]) if job.get("projectDim") else None

T["decode"] = 0.0
T["features"] = 0.0
bank = None
for b0 in range(0, n, bs):
    t0 = time.perf_counter()
    x = np.stack([decode(f) for f in files[b0:b0 + bs]]).astype(np.float32)
    t1 = time.perf_counter()
    fine, coarse = sess.run(job["layers"], {inp: x})
    if fine.shape[2] < coarse.shape[2]:
        fine, coarse = coarse, fine
    _, cf, h, w = fine.shape
    m = h * w
    y0, y1, wy = taps(coarse.shape[2], h)
    x0, x1, wx = taps(coarse.shape[3], w)
    for k in range(x.shape[0]):
        f = pool3(fine[k]).reshape(cf, m).T
        c = pool3(coarse[k])
        wy_, wx_ = wy[:, None], wx[None, :]
        up = ((1 - wy_) * (1 - wx_) * c[:, y0][:, :, x0] + (1 - wy_) * wx_ * c[:, y0][:, :, x1]
              + wy_ * (1 - wx_) * c[:, y1][:, :, x0] + wy_ * wx_ * c[:, y1][:, :, x1])
        up = up.reshape(c.shape[0], m).T
        if job["layerNorm"] == "l2":
            f, up = l2rows(f), l2rows(up)
        z = np.concatenate([f, up], 1).astype(np.float32)
        if P is not None:
            z = z @ P
        if bank is None:
            bank = np.empty((n, m, z.shape[1]), np.float32)
        bank[b0 + k] = z
    t2 = time.perf_counter()
    T["decode"] += t1 - t0
    T["features"] += t2 - t1

if job.get("dump"):  # the raw patch bank, for checking the features against ours
    np.save(job["dump"], bank)

# ---- weights: whitening, unsupervised nearest-patch scores, softmax, weighted mean
t0 = time.perf_counter()
_, m, d = bank.shape
flat = bank.reshape(n * m, d)
if job.get("whiten"):
    step = max(1, (n * m) // 65536)
    sample = flat[::step][:65536].astype(np.float64)
    xc = sample - sample.mean(0)
    cov = xc.T @ xc / len(sample)
    cov[np.diag_indices(d)] += job["whiten"] * np.trace(cov) / d
    Linv = np.linalg.inv(np.linalg.cholesky(cov)).astype(np.float32)
    flat = flat @ Linv.T
    bank = flat.reshape(n, m, d)
sq = (bank * bank).sum(2)  # [n, m]
R = job.get("references")
refs = reference_sets(n, R, job.get("seed", 0)) if R and R < n - 1 else [[j for j in range(n) if j != i] for i in range(n)]
scores = np.empty((n, m), np.float32)
CH = 16  # reference images per product (bounds the distance block: m x 16m floats)
for i in range(n):
    acc = np.zeros(m, np.float64)
    q = bank[i]
    for c0 in range(0, len(refs[i]), CH):
        idx = refs[i][c0:c0 + CH]
        base = bank[idx].reshape(-1, d)
        d2 = sq[i][:, None] + sq[idx].reshape(1, -1) - 2.0 * (q @ base.T)
        mins = d2.reshape(m, len(idx), m).min(2)
        acc += np.sqrt(np.maximum(mins, 0)).sum(1)
    scores[i] = acc / len(refs[i])
sd = scores.std(1, keepdims=True)
zs = np.divide(scores, sd, out=np.zeros_like(scores), where=sd > 0) / job["tauRelative"]
zs -= zs.max(1, keepdims=True)
wts = np.exp(zs)
wts /= wts.sum(1, keepdims=True)
emb = np.einsum("nm,nmd->nd", wts, bank)
T["weights"] = time.perf_counter() - t0

# ---- clustering: l2-center-l2, Ward, K-cut
t0 = time.perf_counter()
e = emb.astype(np.float64)
e = l2rows(e)
e -= e.mean(0)
e = l2rows(e)
Z = fastcluster.linkage_vector(e, method="ward")
labels = fcluster(Z, t=job["k"], criterion="maxclust")
T["clustering"] = time.perf_counter() - t0

print(json.dumps({
    "timings": T, "labels": [int(v) for v in labels], "n": n, "m": int(m), "d": int(d),
    "versions": {"onnxruntime": ort.__version__, "numpy": np.__version__, "fastcluster": fastcluster.__version__},
    "threads": so.intra_op_num_threads,
}))
