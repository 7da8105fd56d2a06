"""Time ``faceclust.metrics.evaluate`` on the 5.2M synthetic labels; write JSON for the report.

Ground truth: the labels of ``faceclust synth --n 5206761 --ids 77157`` (PREFIX.meta).
Prediction: 10% of identities split in two, 5% merged into another, 5% of rows
-1 (singletons), ids permuted. Records the best wall and CPU seconds over
``--repeats`` calls (CPU seconds are the robust number on a loaded machine)
and the process peak RSS, to ``benchmarks/results/bench_metrics_<name>.json``.

    python benchmarks/bench_metrics_scale.py --gt /tmp/fcbench/part9.meta
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np

from faceclust.fsutil import write_text
from faceclust.io import read_labels
from faceclust.metrics import evaluate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gt", required=True)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args()
    gt = read_labels(args.gt)
    n, c = len(gt), int(gt.max()) + 1
    rng = np.random.default_rng(0)
    pred = gt.copy()
    moved = (rng.random(c) < 0.1)[gt] & (rng.random(n) < 0.5)
    pred[moved] += c
    partner = np.arange(2 * c)
    merged = np.flatnonzero(rng.random(c) < 0.05)
    partner[merged] = rng.integers(0, c, len(merged))
    pred = rng.permutation(2 * c)[partner[pred]]
    pred[rng.random(n) < 0.05] = -1
    evaluate(gt, pred)  # warm-up
    wall, cpu = [], []
    for _ in range(args.repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        m = evaluate(gt, pred)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    res = {"n": n, "classes": c, "seconds": min(wall), "cpu_seconds": min(cpu),
           "loadavg": list(os.getloadavg()), "pairwise_f": m["pairwise_f"],
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
    print(json.dumps(res))
    out = Path(args.out) / f"bench_metrics_{Path(args.gt).stem}.json"
    write_text(out, json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
