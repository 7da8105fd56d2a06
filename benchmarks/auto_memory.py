"""Peak RSS of ``auto`` on one machine, per phase: how much ``auto`` adds to features + graph.

    faceclust synth --n 100000 --ids 1500 --seed 0 --out /tmp/raybench/n100k
    OMP_NUM_THREADS=1 python benchmarks/auto_memory.py /tmp/raybench/n100k.npy

writes ``benchmarks/results/auto_memory_<name>.json``: the process's peak RSS (GB, sampled
every 0.2 s from ``/proc/self/status``) after loading, through the ``ivf-blas`` kNN (k = 20)
and through ``auto`` on that graph, with the seconds and the load average. Used by
``docs/scale.md`` to split the Ray run's memory into ``auto``'s own and the workers' fixed cost.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from pathlib import Path

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.io import read_features, write_text  # noqa: E402
from faceclust.knn import build_knn  # noqa: E402
from faceclust.methods import make_method  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _rss_gb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("features", help=".npy features (faceclust synth output)")
    ap.add_argument("--k", type=int, default=20)
    a = ap.parse_args()
    peak: dict[str, float] = {}
    phase = ["load"]

    def sample() -> None:
        while True:
            peak[phase[0]] = max(peak.get(phase[0], 0.0), _rss_gb())
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    x = read_features(a.features)
    phase[0] = "knn"
    t0 = time.perf_counter()
    graph = build_knn(x, a.k, index="ivf-blas", progress_bar=False)
    knn_s = time.perf_counter() - t0
    phase[0] = "after_knn"
    time.sleep(1.0)
    est = make_method("auto", {})
    phase[0] = "auto"
    t0 = time.perf_counter()
    est.fit(x, knn=graph)
    auto_s = time.perf_counter() - t0
    time.sleep(0.5)
    out = {"n": len(x), "k": a.k, "rss_gb_peak_per_phase": peak, "knn_s": knn_s,
           "auto_s": auto_s, "stages": est.stage_seconds_, "load_after": os.getloadavg()}
    write_text(RESULTS / f"auto_memory_{Path(a.features).stem}.json",
               json.dumps(out, indent=1, default=float))
    print(json.dumps(out, indent=1, default=float))


if __name__ == "__main__":
    main()
