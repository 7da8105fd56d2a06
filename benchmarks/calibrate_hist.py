"""Cosine histograms and kNN precision curves: real ArcFace-like LFW features vs synthetic.

For the real 512-d LFW features, a synthetic set of the same n, identities and
dim (LFW-like identity sizes, otherwise the ``arcface`` defaults), and a 256-d
synthetic set with MS1M part1's identity-size shape (default sizes, 29,200 rows), records:

* histograms (density, 100 bins on [-0.4, 1]) of intra- and inter-identity
  cosines over all pairs of up to 6000 sampled rows;
* kNN precision@k for k = 1..50 (exact cosine kNN; rows whose identity has
  at least k + 1 samples, so a perfect embedding scores 1).

Writes ``benchmarks/results/calibration.json``; ``faceclust bench --report``
draws it as ``img/calibration.png``.

    python benchmarks/calibrate_hist.py [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

from faceclust.fsutil import write_text
from faceclust.knn import build_knn
from faceclust.synth import SynthConfig, make_faces

LFW = Path("/work/shared/data/lfw")
OUT = Path(__file__).resolve().parent / "results" / "calibration.json"
BINS = np.linspace(-0.4, 1.0, 101)
KS = list(range(1, 51))


def describe(x: np.ndarray, y: np.ndarray, max_rows: int = 6000) -> dict:
    """Intra/inter cosine histograms and precision@k of exact kNN."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n = len(y)
    rng = np.random.default_rng(0)
    rows = np.arange(n) if n <= max_rows else np.sort(rng.choice(n, max_rows, replace=False))
    s = x[rows] @ x[rows].T
    iu = np.triu_indices(len(rows), 1)
    sv, same = s[iu], (y[rows][:, None] == y[rows][None, :])[iu]
    out: dict = {"n": int(n), "dim": int(x.shape[1]), "n_ids": int(len(np.unique(y)))}
    for name, v in (("intra", sv[same]), ("inter", sv[~same])):
        h, _ = np.histogram(v, bins=BINS, density=True)
        out[f"{name}_hist"] = [round(float(t), 5) for t in h]
        out[f"{name}_mean"] = float(v.mean())
        out[f"{name}_std"] = float(v.std())
        out[f"{name}_pairs"] = int(len(v))
    # kNN precision on a sample of queries (exact), computed against the whole set
    _, inv, cnt = np.unique(y, return_inverse=True, return_counts=True)
    kmax = max(KS) + 1
    g = build_knn(x, kmax, index="flat" if n <= 200_000 else "ivf", progress_bar=False)
    hit = y[g.ids[:, 1:]] == y[:, None]
    size = cnt[inv]
    prec = []
    for k in KS:
        ok = size >= k + 1
        prec.append(round(float(hit[ok, :k].mean()), 5) if ok.any() else None)
    out["prec_at_k"] = prec
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    os.environ.setdefault("FACECLUST_PROGRESS", "0")

    y = np.loadtxt(LFW / "labels.meta", dtype=np.int64)
    x = np.load(LFW / "arcface512_features.npy")
    n, c = len(y), len(np.unique(y))
    sets: dict = {"real LFW arcface512": describe(x, y)}
    xs, ys = make_faces(n, c, 512, seed=args.seed, config=SynthConfig(size_sigma=2.0))
    sets["synth 512-d, LFW sizes"] = describe(xs, ys)
    xs, ys = make_faces(29_200, 428, 256, seed=args.seed)
    sets["synth 256-d, MS1M-like sizes (29K)"] = describe(xs, ys)
    for name, d in sets.items():
        print(f"{name:<40} intra {d['intra_mean']:.3f}±{d['intra_std']:.3f}  inter "
              f"{d['inter_mean']:.3f}±{d['inter_std']:.3f}  prec@1 {d['prec_at_k'][0]}  "
              f"prec@10 {d['prec_at_k'][9]}  prec@50 {d['prec_at_k'][49]}")
    res = {"bins": [round(float(b), 4) for b in BINS], "ks": KS, "seed": args.seed, "sets": sets}
    out = write_text(args.out, json.dumps(res) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
