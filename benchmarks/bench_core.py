"""Time exact and IVF kNN and the metrics on a 584,013 x 256 synthetic set (MS1M part1 size).

    python benchmarks/bench_core.py [--n 584013] [--dim 256] [--ids 8573] [--k 80] [--skip-exact]

Prints seconds and peak RSS per stage and writes them as JSON to --json (default
benchmarks/results/bench_core.json). Exact search is O(N^2 D): about a quarter of an hour
at 584K on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import numpy as np

from faceclust._resources import measure
from faceclust.fsutil import write_text
from faceclust.knn import build_knn, knn_recall
from faceclust.metrics import evaluate
from faceclust.synth import make_faces


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=584_013)
    ap.add_argument("--ids", type=int, default=8_573)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=80)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-exact", action="store_true")
    ap.add_argument("--json", default="benchmarks/results/bench_core.json")
    args = ap.parse_args()

    results: dict = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
                     "n": args.n, "dim": args.dim, "k": args.k}
    with measure() as u:
        x, gt = make_faces(args.n, args.ids, args.dim, seed=args.seed)
    _report(results, "synth", u)

    graphs = {}
    for index in ("ivf",) if args.skip_exact else ("flat", "ivf"):
        with measure() as u:
            graphs[index] = build_knn(x, k=args.k, index=index)
        _report(results, f"knn_{index}", u, recall=knn_recall(graphs[index], x, sample=1000))

    pred = gt.copy()
    rng = np.random.default_rng(0)
    flip = rng.random(len(pred)) < 0.05
    pred[flip] = rng.integers(0, args.ids, int(flip.sum()))
    with measure() as u:
        m = evaluate(gt, pred)
    _report(results, "metrics", u, pairwise_f=m["pairwise_f"])

    out = write_text(args.json, json.dumps(results, indent=2))
    print(f"wrote {out}")


def _report(results: dict, stage: str, u, **extra) -> None:
    results[stage] = {"seconds": round(u.seconds, 3), "peak_rss_gb": round(u.peak_rss_gb, 3), **extra}
    more = "".join(f"  {k}={v:.4f}" for k, v in extra.items())
    print(f"{stage:<12} {u.seconds:9.2f} s   peak RSS {u.peak_rss_gb:6.2f} GB{more}", flush=True)


if __name__ == "__main__":
    main()
