"""Why an ada-nets model falls short on a test set: its k_hat, its graph, its threshold.

    python benchmarks/adanets_protocol_diag.py MODEL_DIR TEST.npy TEST.meta [--out JSONL]

For a model from ``faceclust train --method ada-nets`` (e.g. one that
``benchmarks/supervised_eval.py`` cached under ``WORK/models``) and a labelled test
set, prints one JSON line: the Adaptive Filter's mean ``k_hat`` against the true
mean ``k*`` of the test people, the edge precision (share of kept structure-space
candidates that are the same person) of the graph from ``k_hat`` and from the true
``k*``, pairwise F of the final rule at the model's threshold (chosen on held-out
training people) and at the best threshold *for the test people* (an upper bound
for diagnosis only; nothing is chosen with it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("features")
    ap.add_argument("labels")
    ap.add_argument("--out", default=None, help="also append the line to this JSONL file")
    a = ap.parse_args()

    from faceclust.knn import build_knn
    from faceclust.methods._adanets import enhanced_features
    from faceclust.metrics import pairwise
    from faceclust.nn.adanets import load_adanets
    from faceclust.stages.neighbours import filter_targets, threshold_components
    from faceclust.stages.refine import structure_space

    filt, gcn, meta = load_adanets(a.model)
    x = np.load(a.features).astype(np.float32)
    y = np.loadtxt(a.labels, dtype=np.int64)
    feat, k_hat = enhanced_features(filt, gcn, x, k=meta["k"], lam=meta["lam"],
                                    graph="adaptive", knn_k=meta["train_k"],
                                    weighted=meta["weighted"])
    ss, nd = structure_space(build_knn(x, k=min(meta["k"], len(x) - 1)), meta["lam"])
    k_star = filter_targets(ss, y, meta["beta"]) * ss.shape[1]
    same = (y[ss] == y[:, None]) & (ss >= 0)
    pos = np.arange(ss.shape[1])[None, :]
    kept, kept_true = (pos < k_hat[:, None]) & (pos > 0), (pos < k_star[:, None]) & (pos > 0)
    g = build_knn(feat, k=min(int(meta["top_n"]), len(x) - 1))
    present = g.sims[:, 1:][g.ids[:, 1:] >= 0]
    grid = np.unique(np.quantile(present, 1 - np.geomspace(1, 1e-5, 120)))
    best_f, best_t = max((pairwise(y, threshold_components(g.ids, g.sims, float(t)))[2], float(t))
                         for t in grid)
    at_model = pairwise(y, threshold_components(g.ids, g.sims, float(meta["threshold"])))[2]
    row = {
        "model": Path(a.model).name, "test": Path(a.features).name, "n": int(len(y)),
        "k_hat_mean": round(float(k_hat.mean()), 2), "k_star_mean": round(float(k_star.mean()), 2),
        "train_k_star_mean": meta.get("k_star_mean"),
        "edge_precision_k_hat": round(float(same[kept].mean()), 4) if kept.any() else None,
        "edge_precision_k_star": round(float(same[kept_true].mean()), 4) if kept_true.any() else None,
        "threshold": meta["threshold"], "pairwise_f_at_threshold": round(float(at_model), 4),
        "best_threshold_test": round(best_t, 5), "pairwise_f_best_test": round(float(best_f), 4),
    }
    line = json.dumps(row)
    print(line)
    if a.out:
        with open(a.out, "a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
