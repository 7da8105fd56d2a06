"""Ada-NETS on people it never saw: train on one set of identities, cluster another.

    python benchmarks/adanets_eval.py REGIME [key=value ...]   # one JSON line per method

REGIME: ``lfw-arcface`` / ``lfw-dlib`` (LFW split by person, ``split_by_identity(labels,
0.5, seed=0)``: train on one half, test on the other) or ``lfw-to-wild-arcface`` /
``lfw-to-wild-dlib`` (train on all of LFW, test on celeba_wild). ``key=value`` are
``AdaNets.train`` parameters; ``eval_only=1`` reuses the model in WORK/REGIME (env
ADANETS_WORK, default /tmp/adanets). Prints the training meta (seconds, chosen
thresholds), then ``ada-nets`` (adaptive graph), ``ada-nets graph=knn`` (ablation) and
``auto`` on the same test people: pairwise / BCubed F via ``faceclust.metrics.evaluate``,
seconds and the process's peak RSS so far (ru_maxrss). ``diag=1`` adds one row per
stage on the test people (:func:`diagnose`): the filter's k_hat against the true k*, and
the final rule on raw features, on the parameter-free two-hop mean and on the GCN's
features, each over the learned and the true-k* (oracle) adaptive graph, at the model's
threshold, at 0.96 and at the best threshold for the test people (an upper bound, never
used to choose anything).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

from faceclust.params import parse_set

_HERE = Path(__file__).resolve()
DATA = Path(os.environ["FACECLUST_DATA"]) if os.environ.get("FACECLUST_DATA") else next((p / "shared" / "data" for p in _HERE.parents[1:4] if (p / "shared" / "data").is_dir()),
            _HERE.parents[2] / "shared" / "data")  # ../shared/data beside the checkout
WORK = Path(os.environ.get("ADANETS_WORK", "/tmp/adanets"))


def _load(name: str, emb: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.load(DATA / name / f"{emb}_features.npy")
    y = np.loadtxt(DATA / name / "labels.meta", dtype=np.int64)
    return x, y


def regime(name: str):
    """``(x_train, y_train, x_test, y_test)`` of a regime."""
    from faceclust.stages.confidence import split_by_identity

    emb = "dlib128" if name.endswith("dlib") else "arcface512"
    x, y = _load("lfw", emb)
    if name.startswith("lfw-to-wild"):
        xt, yt = _load("celeba_wild", emb)
        return x, y, xt, yt
    tr, te = split_by_identity(y, 0.5, seed=0)
    return x[tr], y[tr], x[te], y[te]


def _rule(feat: np.ndarray, y: np.ndarray, thresholds: dict[str, float], top_n: int = 121) -> dict:
    """Pairwise F of the final rule at named thresholds and at the best of a grid."""
    from faceclust.knn import build_knn
    from faceclust.metrics import pairwise
    from faceclust.stages.neighbours import threshold_components

    g = build_knn(feat, k=min(top_n, len(y) - 1))
    out = {f"pF@{name}": round(pairwise(y, threshold_components(g.ids, g.sims, t, top_n))[2], 4)
           for name, t in thresholds.items()}
    present = g.sims[:, 1:][g.ids[:, 1:] >= 0]
    grid = np.union1d(np.arange(0.30, 0.995, 0.01), np.quantile(present, np.linspace(0, 1, 60)))
    best = max((pairwise(y, threshold_components(g.ids, g.sims, float(t), top_n))[2], float(t))
               for t in grid)
    out["pF@best(test)"], out["best_t"] = round(best[0], 4), round(best[1], 5)
    return out


def diagnose(model: Path, x: np.ndarray, y: np.ndarray) -> list[dict]:
    """Stage-by-stage numbers of a trained model on labelled test faces (see module doc)."""
    from faceclust.knn import build_knn
    from faceclust.nn.adanets import (
        gcn_operator,
        load_adanets,
        predict_gcn,
        predict_k,
        two_hop_mean,
    )
    from faceclust.stages.neighbours import adaptive_keep, similarity_adjacency, target_k
    from faceclust.stages.refine import structure_space

    filt, gcn, meta = load_adanets(model)
    x = np.ascontiguousarray(x, dtype=np.float32)
    k = int(meta["k"])
    ths = {"model": float(meta["threshold"]), "0.96": 0.96}
    ss_ids, nd = structure_space(build_knn(x, k=k), float(meta["lam"]))
    k_star = target_k(ss_ids, y, float(meta["beta"]))
    k_hat = predict_k(filt, x, ss_ids, nd)
    lab = y[np.where(ss_ids >= 0, ss_ids, 0)] == y[:, None]
    rows = [{"stage": "filter", "k*_mean": round(float(k_star.mean()), 2),
             "k_hat_mean": round(float(k_hat.mean()), 2),
             "mae": round(float(np.abs(k_hat - k_star).mean()), 2),
             "corr": round(float(np.corrcoef(k_hat, k_star)[0, 1]), 3)}]
    for name, kk in (("learned", k_hat), ("oracle", k_star)):
        keep = adaptive_keep(kk, k)
        keep[:, 0] = False
        rows[0][f"edge_precision_{name}"] = round(float((lab & keep).sum() / max(1, keep.sum())), 4)
    rows.append({"stage": "raw features", **_rule(x, y, ths)})
    for name, kk in (("learned", k_hat), ("oracle", k_star)):
        adj = similarity_adjacency(ss_ids, 1.0 - nd, keep=adaptive_keep(kk, k))
        rows.append({"stage": f"two-hop mean, {name} k", **_rule(two_hop_mean(gcn_operator(adj), x)[1], y, ths)})
        rows.append({"stage": f"GCN, {name} k", **_rule(predict_gcn(gcn, x, adj), y, ths)})
    return rows


def _rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    from faceclust.methods import get_method
    from faceclust.metrics import evaluate

    name, rest = sys.argv[1], sys.argv[2:]
    params = parse_set(rest)
    eval_only = params.pop("eval_only", 0)
    diag = params.pop("diag", 0)
    out = WORK / params.pop("tag", name)
    xtr, ytr, xte, yte = regime(name)
    if not eval_only:
        t0 = time.perf_counter()
        meta = get_method("ada-nets").train(xtr, ytr, out, **params)
        print(json.dumps({"regime": name, "train_seconds": round(time.perf_counter() - t0, 1),
                          "peak_rss_mib": _rss_mib(), "n_train": len(ytr),
                          **{k: meta[k] for k in ("threshold", "threshold_knn", "seconds",
                                                   "k_star_mean", "train_graph")},
                          "selection": meta.get("threshold_selection"),
                          "filter_loss": meta["filter"]["losses"][::3],
                          "gcn_loss": meta["gcn"]["losses"][::3]}), flush=True)
    if diag:
        for row in diagnose(out, xte, yte):
            print(json.dumps({"regime": name, **row}), flush=True)
    for method, p in (("ada-nets", {"model": str(out)}),
                      ("ada-nets", {"model": str(out), "graph": "knn"}),
                      ("auto", {})):
        est = get_method(method)(**p)
        t0 = time.perf_counter()
        try:
            labels = est.fit_predict(xte)
        except ImportError as exc:  # e.g. a method whose optional package is absent
            print(json.dumps({"regime": name, "method": method, "error": str(exc)}), flush=True)
            continue
        secs = time.perf_counter() - t0
        m = evaluate(yte, labels)
        row = {"regime": name, "method": method, "graph": p.get("graph", ""),
               "n_test": len(yte), "pF": round(m["pairwise_f"], 4),
               "pP": round(m["pairwise_precision"], 4), "pR": round(m["pairwise_recall"], 4),
               "bF": round(m["bcubed_f"], 4), "clusters": m["n_clusters"],
               "threshold": getattr(est, "threshold_", None), "seconds": round(secs, 2),
               "peak_rss_mib": _rss_mib(),
               "stages": {k: round(v, 2) for k, v in est.stage_seconds_.items()}}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
