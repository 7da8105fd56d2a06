"""LCENet / PCENet inference throughput and agreement per precision (issue 16's hot path).

    python benchmarks/lcepce_speed.py MODEL FEATURES.npy [--nodes 2048] [--batch 512]
        [--threads 1] [--precisions fp32,bf16,int8] [--out RESULT.json]

MODEL is a ``faceclust train --method lce-pce`` directory (``lcenet`` + ``pcenet``;
a ``pcenet_recall`` of ``fc-eser`` is measured too when present). On the first
``--nodes`` rows of FEATURES (their own kNN graph) it runs LCENet over every node
and the pair model over the (i, 1st neighbour) pairs, once per precision after a
warm-up batch, and prints one JSON line per precision: nodes/s and pairs/s, the
largest |Δp| against fp32 and how many thresholded decisions changed (LCENet
slots at 0.5, PCENet pairs at 0.5, recall pairs at 0.6). Timings are wall clock
on whatever else the machine runs: report the load with them.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("features")
    ap.add_argument("--nodes", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--precisions", default="fp32,bf16,int8")
    ap.add_argument("--out", default=None, help="also write the rows here (JSON)")
    a = ap.parse_args()

    import numpy as np
    import torch

    from faceclust import io
    from faceclust.knn import build_knn
    from faceclust.nn.lcenet import load_lcenet, predict_connectivity
    from faceclust.nn.pcenet import load_pcenet, predict_pairs

    torch.set_num_threads(a.threads)
    x = np.load(a.features, mmap_mode="r")[: a.nodes].astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    model = Path(a.model)
    nets = []
    if (model / "lcenet.json").is_file():
        nets.append(("lcenet", load_lcenet(model)[0], 0.5))
        nets.append(("pcenet", load_pcenet(model, "pcenet")[0], 0.5))
    if (model / "pcenet_recall.json").is_file():
        nets.append(("pcenet_recall", load_pcenet(model, "pcenet_recall")[0], 0.6))
    k = max(n.k for _, n, _ in nets)
    g = build_knn(x, k=min(k, len(x) - 1))
    src = np.arange(len(x), dtype=np.int64)
    dst = g.ids[:, 1].astype(np.int64)

    def run(name, net, prec, rows=None):
        rows = len(x) if rows is None else rows
        if name == "lcenet":
            return predict_connectivity(net, x, g.ids[:rows], batch_size=a.batch, precision=prec)
        return predict_pairs(net, x, g.ids, src[:rows], dst[:rows], batch_size=a.batch,
                             precision=prec)

    ref = {name: run(name, net, "fp32") for name, net, _ in nets}
    rows = []
    for prec in a.precisions.split(","):
        row = {"precision": prec, "nodes": len(x), "batch": a.batch, "threads": a.threads,
               "load1": round(os.getloadavg()[0], 2)}
        for name, net, thr in nets:
            run(name, net, prec, rows=min(a.batch, len(x)))  # warm-up
            t = time.perf_counter()
            p = run(name, net, prec)
            dt = time.perf_counter() - t
            row[f"{name}_per_s"] = round(len(x) / dt, 1)
            row[f"{name}_max_abs_dp"] = round(float(np.abs(p - ref[name]).max()), 4)
            row[f"{name}_changed"] = int(((p >= thr) != (ref[name] >= thr)).sum())
        print(json.dumps(row), flush=True)
        rows.append(row)
    if a.out:
        io.write_text(a.out, json.dumps({"model": str(model), "features": a.features,
                                          "rows": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
