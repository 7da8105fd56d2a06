"""The default method (``auto``) on features read fully into memory, not memory-mapped.

``faceclust cluster`` memory-maps ``.npy`` features (``io.read_features``); this runs the same
estimator on ``np.load(path)`` (a real array in RAM) and prints per-stage seconds, peak RSS
and F, to set beside the memory-mapped run of ``bench_default_scale.py`` on the same file
(issue 22: the 5.21M partition stage).

    python benchmarks/default_in_ram.py /work/part9/part9.npy /work/part9/part9.meta \\
        --out benchmarks/results/default_in_ram_part9.json
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
from faceclust.io import read_labels  # noqa: E402
from faceclust.methods import make_method  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("features", type=Path, help=".npy features (read fully into memory)")
    ap.add_argument("labels", type=Path, help="ground-truth labels (.meta)")
    ap.add_argument("--out", type=Path, default=None, help="also write the result JSON here")
    a = ap.parse_args()
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    x = np.load(a.features, allow_pickle=False)
    t_load = time.perf_counter() - t0
    est = make_method("auto", {})
    t1 = time.perf_counter()
    labels = est.fit(x).labels_
    t_fit = time.perf_counter() - t1
    m = evaluate(read_labels(a.labels), labels)
    out = {"n": int(x.shape[0]), "load_s": t_load, "fit_s": t_fit, "stages": est.stage_seconds_,
           "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
           "pairwise_f": m["pairwise_f"], "bcubed_f": m["bcubed_f"],
           "load_before": load0, "load_after": os.getloadavg()}
    text = json.dumps(out, indent=1, default=float)
    print(text)
    if a.out is not None:
        write_text(a.out, text + "\n")


if __name__ == "__main__":
    main()
