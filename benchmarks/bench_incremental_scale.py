"""Time and memory of ``auto`` (everything at once) and of ``incremental`` per added face, at scale.

Synthetic faces (:func:`faceclust.synth.make_faces`, 1 identity per ~67 faces as the
1M x 15K setting). ``auto`` clusters the first ``N - added`` faces (exact kNN); the
same clustering seeds ``incremental`` (``fit`` with ``threshold`` / the estimate reused,
not re-run), then ``--batches`` batches are added with ``partial_fit`` and one
``refine()`` follows. Prints one JSON line.

    python benchmarks/bench_incremental_scale.py --n 200000 [--added 10000] [--batches 5]
                                                 [--auto-all]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust._resources import measure  # noqa: E402
from faceclust.methods import METHODS  # noqa: E402
from faceclust.metrics import bcubed, pairwise  # noqa: E402
from faceclust.synth import make_faces  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--added", type=int, default=10_000)
    ap.add_argument("--batches", type=int, default=5)
    ap.add_argument("--auto-all", action="store_true",
                    help="also run auto on all N faces at once, for comparison")
    a = ap.parse_args()
    x, y = make_faces(a.n, max(2, a.n // 67), a.dim, seed=0)
    perm = np.random.default_rng(0).permutation(a.n)
    x, y = x[perm], y[perm]
    n0 = a.n - a.added
    with measure() as u_auto:
        inc = METHODS["incremental"]().fit(x[:n0])
    out = {
        "n": a.n, "dim": a.dim, "ids": max(2, a.n // 67), "initial": n0,
        "auto_fit_seconds": round(u_auto.seconds, 1),
        "auto_fit_peak_rss_gb": round(u_auto.peak_rss_gb, 2),
        "auto_stage_seconds": {k: round(v, 1) for k, v in inc.stage_seconds_.items()},
        "threshold": round(inc.threshold_, 4),
    }
    print(json.dumps(out), flush=True)  # partial result, in case a later step is cut off
    per_face = []
    with measure() as u_inc:
        for b in np.array_split(np.arange(n0, a.n), a.batches):
            t0 = time.perf_counter()
            inc.partial_fit(x[b])
            per_face.append((time.perf_counter() - t0) / len(b))
            print(f"batch of {len(b)}: {1000 * per_face[-1]:.3f} ms per face", flush=True)
        f_before = [round(pairwise(y, inc.labels_)[2], 4), round(bcubed(y, inc.labels_)[2], 4)]
        t0 = time.perf_counter()
        inc.refine()
        t_ref = time.perf_counter() - t0
    out.update({
        "ms_per_added_face_per_batch": [round(1000 * v, 3) for v in per_face],
        "refine_seconds": round(t_ref, 2),
        "incremental_peak_rss_gb": round(u_inc.peak_rss_gb, 2),
        "F_pair_bcubed_before_refine": f_before,
        "F_pair_bcubed_after": [round(pairwise(y, inc.labels_)[2], 4),
                                round(bcubed(y, inc.labels_)[2], 4)],
    })
    if a.auto_all:
        t0 = time.perf_counter()
        full = METHODS["auto"]().fit(x).labels_
        out.update({"auto_all_seconds": round(time.perf_counter() - t0, 1),
                    "auto_all_F_pair_bcubed": [round(pairwise(y, full)[2], 4),
                                               round(bcubed(y, full)[2], 4)]})
    print(json.dumps(out))


if __name__ == "__main__":
    main()
