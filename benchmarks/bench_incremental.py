"""Incremental clustering on real LFW vs clustering everything at once with ``auto``.

Shuffles the 7,605 LFW faces with a fixed seed, fits the first batch with
``incremental`` (= ``auto``), adds the rest in equal batches with
``partial_fit``, and reports pairwise / BCubed F after the last batch (without
and with ``refine()``) next to ``auto`` on all faces, plus seconds per added face
of every batch.

    python benchmarks/bench_incremental.py [--batches 10] [--seed 0] [--refine-every 0]
                                           [--placement average|nearest]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.methods import METHODS  # noqa: E402
from faceclust.metrics import bcubed, pairwise  # noqa: E402

ROOT = Path("/work/shared/data/lfw")


def run(model: str, batches: int, seed: int, refine_every: int,
        placement: str = "average") -> dict:
    x = np.load(ROOT / f"{model}_features.npy").astype(np.float32)
    y = np.loadtxt(ROOT / "labels.meta", dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(len(x))
    x, y = x[perm], y[perm]
    t0 = time.perf_counter()
    full = METHODS["auto"]().fit(x)
    t_full = time.perf_counter() - t0
    parts = np.array_split(np.arange(len(x)), batches)
    inc = METHODS["incremental"](refine_every=refine_every or None, placement=placement)
    t0 = time.perf_counter()
    inc.fit(x[parts[0]])
    t_first = time.perf_counter() - t0
    thr_first = inc.threshold_
    per_face = []
    for p in parts[1:]:
        t0 = time.perf_counter()
        inc.partial_fit(x[p])
        per_face.append((time.perf_counter() - t0) / len(p))
    f_inc = (pairwise(y, inc.labels_)[2], bcubed(y, inc.labels_)[2])
    t0 = time.perf_counter()
    n_touched = len(inc.touched_)
    inc.refine()
    t_ref = time.perf_counter() - t0
    f_ref = (pairwise(y, inc.labels_)[2], bcubed(y, inc.labels_)[2])
    f_full = (pairwise(y, full.labels_)[2], bcubed(y, full.labels_)[2])
    return {
        "model": model, "n": len(x), "batches": batches, "seed": seed,
        "refine_every": refine_every, "placement": placement,
        "auto_all_F_pair_bcubed": [round(v, 4) for v in f_full], "auto_all_seconds": round(t_full, 2),
        "threshold_auto_all": round(full.threshold_, 4), "threshold_incremental_final": round(inc.threshold_, 4),
        "incremental_F_pair_bcubed": [round(v, 4) for v in f_inc],
        "incremental_refined_F_pair_bcubed": [round(v, 4) for v in f_ref],
        "threshold_first_batch": round(thr_first, 4),
        "first_batch_seconds": round(t_first, 3),
        "ms_per_added_face_per_batch": [round(1000 * v, 3) for v in per_face],
        "final_refine_seconds": round(t_ref, 3), "final_refine_touched_clusters": n_touched,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batches", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--refine-every", type=int, default=0)
    ap.add_argument("--models", default="arcface512,dlib128")
    ap.add_argument("--placement", default="average", choices=["average", "nearest"])
    a = ap.parse_args()
    for m in a.models.split(","):
        print(json.dumps(run(m, a.batches, a.seed, a.refine_every, a.placement)))


if __name__ == "__main__":
    main()
