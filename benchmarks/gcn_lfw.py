"""GCN-V / GCN-V+E on LFW (ArcFace-like 512-d), split by identity, vs knn-cc and infomap.

    python benchmarks/gcn_lfw.py split [FEATURES.npy]  # write train/test arrays to WORK
    python benchmarks/gcn_lfw.py synth N IDS           # or: synthetic train/test (make_faces)
    python benchmarks/gcn_lfw.py train-v [key=value..] # faceclust train gcn-v (timed)
    python benchmarks/gcn_lfw.py train-e [key=value..]
    python benchmarks/gcn_lfw.py eval METHOD [key=value..]   # one JSON line: metrics, s, RSS

Each step runs in its own process so peak RSS (ru_maxrss) is per step.
WORK defaults to /tmp/gcn_lfw (env GCN_LFW_WORK). Test identities: split_by_identity(
labels, 0.5, seed=0).
GCN_LFW_SPLIT=train evaluates on the training split (to choose thresholds without the test set).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from faceclust.params import parse_set

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"
WORK = Path(os.environ.get("GCN_LFW_WORK", "/tmp/gcn_lfw"))


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    from faceclust.stages.confidence import split_by_identity

    cmd, rest = sys.argv[1], sys.argv[2:]
    WORK.mkdir(parents=True, exist_ok=True)
    if cmd == "split":
        x = np.load(DATA / (rest[0] if rest else "arcface512_features.npy"))
        y = np.loadtxt(DATA / "labels.meta", dtype=np.int64)
        tr, te = split_by_identity(y, 0.5, seed=0)
        for name, idx in (("train", tr), ("test", te)):
            np.save(WORK / f"{name}_x.npy", x[idx])
            np.save(WORK / f"{name}_y.npy", y[idx])
        print(json.dumps({"train": len(tr), "test": len(te),
                          "train_ids": len(np.unique(y[tr])), "test_ids": len(np.unique(y[te]))}))
        return
    if cmd == "synth":  # synthetic ArcFace-like train/test (different seeds = different people)
        from faceclust.synth import make_faces

        n, n_ids = int(rest[0]), int(rest[1])
        for name, seed in (("train", 1), ("test", 2)):
            x, y = make_faces(n, n_ids, dim=512, seed=seed)
            np.save(WORK / f"{name}_x.npy", x)
            np.save(WORK / f"{name}_y.npy", y)
        print(json.dumps({"train": n, "test": n, "ids": n_ids}))
        return
    if cmd in ("train-v", "train-e"):
        from faceclust.methods._gcn import train_gcn_e_model, train_gcn_v_model

        x = np.load(WORK / "train_x.npy")
        y = np.load(WORK / "train_y.npy")
        p = parse_set(rest)
        out = p.pop("out", str(WORK / "model"))
        t0 = time.perf_counter()
        fn = train_gcn_v_model if cmd == "train-v" else train_gcn_e_model
        meta = fn(x, y, out, **p)
        meta["wall_seconds"] = round(time.perf_counter() - t0, 1)
        meta["cpu_seconds"] = round(time.process_time(), 1)
        meta["peak_rss_mib"] = round(_rss_mib())
        print(json.dumps(meta))
        return
    if cmd == "eval":
        from faceclust.methods import get_method
        from faceclust.metrics import evaluate

        split = os.environ.get("GCN_LFW_SPLIT", "test")  # "train" to choose thresholds
        x = np.load(WORK / f"{split}_x.npy")
        y = np.load(WORK / f"{split}_y.npy")
        method, p = rest[0], parse_set(rest[1:])
        if method.startswith("gcn") and "model" not in p:
            p["model"] = str(WORK / "model")
        est = get_method(method)(**p)
        t0 = time.perf_counter()
        c0 = time.process_time()
        labels = est.fit_predict(x)
        secs = time.perf_counter() - t0
        m = evaluate(y, labels)
        _, counts = np.unique(y, return_counts=True)
        multi = np.isin(y, np.unique(y)[counts >= 2])
        m2 = evaluate(y[multi], labels[multi])
        row = {"split": split, "method": method, **{k: v for k, v in p.items() if k != "model"},
               "pF": round(m["pairwise_f"], 4), "pP": round(m["pairwise_precision"], 4),
               "pR": round(m["pairwise_recall"], 4), "bF": round(m["bcubed_f"], 4),
               "nmi": round(m["nmi"], 4), "bF_ge2": round(m2["bcubed_f"], 4),
               "pF_ge2": round(m2["pairwise_f"], 4), "clusters": m["n_clusters"],
               "wall_s": round(secs, 2), "cpu_s": round(time.process_time() - c0, 2),
               "peak_rss_mib": round(_rss_mib()),
               "stages": {k: round(v, 2) for k, v in est.stage_seconds_.items()}}
        print(json.dumps(row))
        return
    raise SystemExit(f"unknown command {cmd!r}")


if __name__ == "__main__":
    main()
