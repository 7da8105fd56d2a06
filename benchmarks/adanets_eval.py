"""Ada-NETS on people it never saw: train on one set of identities, cluster another.

    python benchmarks/adanets_eval.py REGIME [key=value ...]   # one JSON line per method

REGIME: ``lfw-arcface`` / ``lfw-dlib`` (LFW split by person, ``split_by_identity(labels,
0.5, seed=0)``: train on one half, test on the other) or ``lfw-to-wild-arcface`` /
``lfw-to-wild-dlib`` (train on all of LFW, test on celeba_wild). ``key=value`` are
``AdaNets.train`` parameters; ``eval_only=1`` reuses the model in WORK/REGIME (env
ADANETS_WORK, default /tmp/adanets). Prints the training meta (seconds, chosen
thresholds), then ``ada-nets`` (adaptive graph), ``ada-nets graph=knn`` (ablation) and
``auto`` on the same test people: pairwise / BCubed F via ``faceclust.metrics.evaluate``,
seconds and the process's peak RSS so far (ru_maxrss).
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
DATA = next((p / "shared" / "data" for p in _HERE.parents[1:4] if (p / "shared" / "data").is_dir()),
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


def _rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    from faceclust.methods import get_method
    from faceclust.metrics import evaluate

    name, rest = sys.argv[1], sys.argv[2:]
    params = parse_set(rest)
    eval_only = params.pop("eval_only", 0)
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
    for method, p in (("ada-nets", {"model": str(out)}),
                      ("ada-nets", {"model": str(out), "graph": "knn"}),
                      ("auto", {})):
        est = get_method(method)(**p)
        t0 = time.perf_counter()
        labels = est.fit_predict(xte)
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
