"""Profile the ``ivf-blas`` kNN at sizes where a full run does not fit the time budget.

Runs every step of :func:`faceclust.knn._search_ivf_blas` on all N points except the
join, which is run on the first ``--cells`` cells of each pass only; the join time is then
scaled by the share of (point, cell) comparisons those cells hold, which is how the
join's cost is spread. Prints and writes one JSON with the step times, the estimate of
a full run and the peak RSS.

    faceclust synth --n 5206761 --ids 77157 --seed 0 --out /tmp/fcbench/part9
    python benchmarks/knn_scale_profile.py --data /tmp/fcbench/part9 [--cells 256]

writes ``benchmarks/results/knn_profile_<data name>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.fsutil import write_text  # noqa: E402
from faceclust.knn import _search_ivf_blas, ivf_blas_cells  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", required=True, help="prefix written by faceclust synth")
    ap.add_argument("--k", type=int, default=80)
    ap.add_argument("--nlist", type=int, default=None)
    ap.add_argument("--nprobe", type=int, default=None)
    ap.add_argument("--cells", type=int, default=256, help="cells joined per pass")
    ap.add_argument("--out", default=str(RESULTS))
    a = ap.parse_args()
    prefix = Path(a.data)
    t0 = time.perf_counter()
    x = np.load(prefix.with_name(prefix.name + ".npy"))
    load_s = time.perf_counter() - t0
    n = x.shape[0]
    nlist, nprobe = ivf_blas_cells(n, a.nlist, a.nprobe, a.k)
    steps: dict = {}
    _search_ivf_blas(x, a.k, nlist, nprobe, 0, False, steps, max_cells=a.cells)
    # k-means numbers its cells in no particular order, so the first cells are a fair sample
    share = min(1.0, a.cells / nlist)
    est_join = steps["join"] / share
    est_total = steps["train"] + steps["assign"] + steps["group"] + est_join + steps["sort"]
    res = {
        "data": str(prefix), "n": n, "dim": int(x.shape[1]), "k": a.k, "nlist": nlist,
        "nprobe": nprobe, "cells_joined_per_pass": min(a.cells, nlist), "load_s": round(load_s, 1),
        "steps_s": {k: round(v, 1) for k, v in steps.items()},
        "join_estimate_s": round(est_join, 1), "knn_estimate_s": round(est_total, 1),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "loadavg": [round(v, 2) for v in os.getloadavg()],
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    print(json.dumps(res, indent=2), flush=True)
    path = write_text(Path(a.out) / f"knn_profile_{prefix.name}.json",
                      json.dumps(res, indent=2) + "\n")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
