"""Experiment for the Infomap plan: FC-ES with at most m early-stop links per node.

Loads a cached kNN graph (``bench_scale.py --cache``), runs NEP and early-stop
selection once, then for each cap m keeps each node's first m links (kNN order,
i.e. highest similarity first) and times Infomap (wall and CPU seconds) and
scores the result.

    python benchmarks/fces_link_cap.py --data /tmp/fcbench/q146k --graph /tmp/fcbench/cache/knn-....npz
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.graph import relabel  # noqa: E402
from faceclust.io import read_labels  # noqa: E402
from faceclust.knn import KnnGraph  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402
from faceclust.stages.partition import infomap_partition  # noqa: E402
from faceclust.stages.refine import nep  # noqa: E402
from faceclust.stages.select import early_stop_edges  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("--graph", required=True)
    ap.add_argument("--caps", default="0,40,20,10")
    args = ap.parse_args()
    gt = read_labels(args.data + ".meta")
    with np.load(args.graph) as z:
        g = KnnGraph(z["ids"], z["sims"])
    s = nep(g)
    src, dst, w, single = early_stop_edges(g.ids, s, 0.22)
    order = np.argsort(src, kind="stable")
    src, dst, w = src[order], dst[order], w[order]
    start = np.searchsorted(src, src)  # first link of each link's source
    rank = np.arange(len(src)) - start
    for cap in (int(c) for c in args.caps.split(",")):
        keep = rank < cap if cap > 0 else np.ones(len(src), bool)
        t0, c0 = time.perf_counter(), time.process_time()
        lab = infomap_partition(src[keep], dst[keep], w[keep], g.n, directed=True, seed=123)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        lab[single] = -1
        m = evaluate(gt, relabel(lab))
        print(f"cap {cap or 'none':>4}: links {int(keep.sum()):>9}  infomap {wall:6.1f} s wall "
              f"{cpu:6.1f} CPU-s  pairwise F {m['pairwise_f']:.4f}  BCubed F {m['bcubed_f']:.4f}  "
              f"load {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    main()
