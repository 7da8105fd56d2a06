"""Recall@k of IVF's probe rule on the ``ivf-blas`` cells for several probe counts, one assignment.

    python benchmarks/knn_probe_recall.py FEATURES.npy [--k 20] [--probes 8,16,24,32,48,64]
        [--rows 2000] [--seed 0] [--out benchmarks/results/knn_probe_recall_NAME.json]

IVF-Flat's rule compares a query q with a point m exactly when m's own (nearest) cell is
one of q's ``nprobe`` nearest cells; faiss returns the cells nearest first, so one assignment
with the largest probe count gives every smaller count as a prefix. Exact top-k of the
sampled rows (``knn.exact_rows_topk``) is the reference. The features are memory-mapped.
Since session 8 ``ivf-blas`` joins both ways and refines its k <= 32 graphs
(``knn.refine_knn``), so these figures are a lower bound of the default graph's recall;
``faceclust knn FEATURES --recall-sample R`` measures the default graph itself.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from faceclust import knn as K
from faceclust.fsutil import write_text


def probe_recall(x: np.ndarray, k: int, probes: list[int], rows: np.ndarray) -> dict:
    """``{nprobe: recall@k}`` on ``rows`` for the default ``ivf-blas`` cells of ``x``."""
    n = x.shape[0]
    nlist, _ = K.ivf_blas_cells(n, k=k)
    t0 = time.perf_counter()
    exact = K.exact_rows_topk(x, rows, k)
    t_exact = time.perf_counter() - t0
    cent = K.ivf_train(x, nlist, 0)
    cells = K.ivf_assign(x, cent, max(probes))
    t_assign = time.perf_counter() - t0 - t_exact
    order = np.argsort(cells[:, 0], kind="stable")
    start = np.searchsorted(cells[order, 0], np.arange(nlist + 1))
    out = {}
    for p in sorted(probes):
        hits = 0
        for q, ex in zip(rows, exact, strict=True):
            cand = np.concatenate([order[start[c] : start[c + 1]] for c in cells[q, :p]])
            s = np.asarray(x[cand]) @ np.asarray(x[q])
            s[cand == q] = np.inf
            top = cand[np.lexsort((cand, -s.astype(np.float64)))[:k]]
            hits += len(np.intersect1d(top, ex))
        out[p] = round(hits / (len(rows) * k), 4)
    return {"n": n, "k": k, "nlist": nlist, "rows": len(rows), "recall": out,
            "exact_s": round(t_exact, 1), "train_assign_s": round(t_assign, 1),
            "default_nprobe": K.ivf_blas_cells(n, k=k)[1]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("features")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--probes", default="8,16,24,32,48,64")
    ap.add_argument("--rows", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()
    x = np.load(a.features, mmap_mode="r")
    rows = np.sort(np.random.default_rng(a.seed).choice(x.shape[0], a.rows, replace=False))
    res = probe_recall(x, a.k, [int(p) for p in a.probes.split(",")], rows)
    res["features"] = a.features
    for p, r in res["recall"].items():
        print(f"nprobe {p}: recall@{a.k} {r}")
    out = Path(a.out or f"benchmarks/results/knn_probe_recall_{Path(a.features).stem}.json")
    write_text(out, json.dumps(res, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
