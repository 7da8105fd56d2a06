"""``auto``'s attachment step at scale: each (attach_share, attach) setting on one big set.

    python benchmarks/attach_sweep_scale.py --data /tmp/fcbench/part1 --knn /tmp/fcbench/part1_k80.npz
        [--json benchmarks/results/attach_sweep_part1.json]

``--data PREFIX`` names ``PREFIX.npy`` (features) and ``PREFIX.meta`` (labels), as written by
``faceclust synth --out PREFIX``; ``--knn`` a cached graph (``faceclust knn ... --out``).
``auto`` runs once with the attachment step off; each setting then applies the step to those
labels exactly as ``auto`` does (same graph columns, same floor formula), so one linkage serves
the whole sweep. Complements ``real_data_eval.py --sweep`` (20K and real sets): the
different-people mode of the kNN similarities rises with the number of identities, so the
floor ``attach`` matters more at scale.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.fsutil import write_text  # noqa: E402
from faceclust.io import read_knn, read_labels  # noqa: E402
from faceclust.methods import AutoClusterer  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402
from faceclust.stages.cluster_ops import attach_by_majority  # noqa: E402

SHARES = (0.6, 0.75, 0.9, 1.0)
FLOORS = (0.0, 0.05, 0.1, 0.15)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", required=True, help="PREFIX of PREFIX.npy / PREFIX.meta")
    ap.add_argument("--knn", required=True, help="cached kNN graph (.npz)")
    ap.add_argument("--json", default=None, help="write the results here")
    args = ap.parse_args()
    x = np.load(f"{args.data}.npy", mmap_mode="r")
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = read_labels(f"{args.data}.meta")
    graph = read_knn(args.knn)
    t0 = time.perf_counter()
    model = AutoClusterer(attach=None).fit(x, knn=graph)
    base = model.labels_
    est = model.estimate_
    m = min(model.k_est, graph.k)
    out = {"data": str(args.data), "n": int(len(x)), "seconds_auto": time.perf_counter() - t0,
           "impostor_mode": est.impostor_mode, "genuine_mode": est.genuine_mode,
           "threshold": est.threshold, "rows": []}
    r = evaluate(y, base)
    out["rows"].append({"share": None, "attach": None, "pairwise_f": r["pairwise_f"],
                        "bcubed_f": r["bcubed_f"], "n_clusters": r["n_clusters"]})
    print(f"no attachment: {r['pairwise_f']:.4f} / {r['bcubed_f']:.4f} ({r['n_clusters']} clusters)",
          flush=True)
    for share in SHARES:
        for a in FLOORS:
            floor = est.impostor_mode + a * (est.genuine_mode - est.impostor_mode)
            lab = attach_by_majority(base, graph.ids[:, 1:m], floor, x=x, share=share)
            r = evaluate(y, lab)
            out["rows"].append({"share": share, "attach": a, "pairwise_f": r["pairwise_f"],
                                "bcubed_f": r["bcubed_f"], "n_clusters": r["n_clusters"]})
            print(f"share {share:.2f} attach {a:.2f}: {r['pairwise_f']:.4f} / {r['bcubed_f']:.4f} "
                  f"({r['n_clusters']} clusters)", flush=True)
    if args.json:
        write_text(args.json, json.dumps(out, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
