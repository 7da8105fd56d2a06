"""Why GCN-V falls behind ``auto`` on unseen people: confidence calibration, tau, partition rule.

    python benchmarks/gcn_generalise.py --emb arcface512 --train lfw-train --test lfw-test
        [--steps 150] [--data DIR]

``DIR/EMB/NAME_features.npy`` + ``NAME.meta`` are the splits that
``benchmarks/supervised_eval.py`` writes into ``WORK/data`` (regime 1a: lfw-train /
lfw-test, 1b: celeba_wild-train / celeba_wild-test). Trains one GCN-V on the training
people and two on halves of them (cross-fitted, by identity), then prints, per set:

* calibration: Pearson correlation and MSE of the predicted confidence with the s_nbr
  target on the training people, on held-out training people and on the test people;
* the tree rule (peaks on the input kNN, link_roots) at the tau chosen on the
  cross-fitted training people (absolute cosine), at a scale-free tau (its position
  between the label-free modes of :func:`faceclust.adaptive.estimate_scale`, chosen on
  the same people), at the best tau of the test people, and with the *true* test
  confidence at its best tau (the rule's upper bound);
* ``partition="linkage"`` (:func:`faceclust.methods._gcn.linkage_partition`) and ``auto``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from faceclust.adaptive import estimate_scale
from faceclust.methods import get_method
from faceclust.methods._gcn import _link_roots, linkage_partition
from faceclust.metrics import evaluate, pairwise
from faceclust.nn.gcn_v import gcn_v_outputs, train_gcn_v
from faceclust.stages.confidence import (
    choose_tau,
    deduce_tree,
    find_peaks,
    identity_folds,
    snbr_confidence,
)

ALPHAS = np.linspace(-0.6, 1.2, 91)


def _outputs(model, x: np.ndarray, y: np.ndarray) -> dict:
    """Confidence, target, peaks (input kNN, roots linked) and label-free modes of one set."""
    conf, _, g = gcn_v_outputs(model, x, k=min(80, len(x) - 1), min_sim=0.0)
    peak, sim = _link_roots(*find_peaks(g.ids, g.sims, conf), conf, x, g.k)
    est = estimate_scale(g, k=10, k_est=20, alpha=0.3)
    return {"conf": conf, "target": snbr_confidence(g.ids, g.sims, y), "peak": peak, "sim": sim,
            "y": y, "x": x, "graph": g, "imp": est.impostor_mode, "gen": est.genuine_mode}


def _f(y: np.ndarray, labels: np.ndarray) -> str:
    m = evaluate(y, labels)
    return f"{m['pairwise_f']:.3f} / {m['bcubed_f']:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--emb", required=True)
    ap.add_argument("--train", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--data", default=os.environ.get("SUPERVISED_EVAL_WORK",
                                                      "/tmp/faceclust_supervised_eval") + "/data")
    a = ap.parse_args()

    def load(name: str) -> tuple[np.ndarray, np.ndarray]:
        d = Path(a.data) / a.emb
        return (np.load(d / f"{name}_features.npy"),
                np.loadtxt(d / f"{name}.meta", dtype=np.int64))

    params = {"k": 80, "min_sim": 0.0, "steps": a.steps, "batch_size": 512}
    xt, yt = load(a.train)
    model, _ = train_gcn_v(xt, yt, seed=42, **params)
    sets = {"own training people": _outputs(model, xt, yt)}
    fold = identity_folds(yt, 2, 42, "gcn_generalise")
    cf = []
    for f in range(2):
        held, rest = np.flatnonzero(fold == f), np.flatnonzero(fold != f)
        fm, _ = train_gcn_v(xt[rest], yt[rest], seed=43 + f, **params)
        cf.append(_outputs(fm, xt[held], yt[held]))
        sets[f"held-out training people {f}"] = cf[-1]
    x, y = load(a.test)
    test = sets["test people"] = _outputs(model, x, y)
    for name, o in sets.items():
        c, t = o["conf"], o["target"]
        print(f"calibration, {name}: corr {np.corrcoef(c, t)[0, 1]:.3f} "
              f"mse {np.mean((c - t) ** 2):.4f}")

    # tau on the cross-fitted training people: absolute, and relative to the label-free modes
    off, pk, sm, ys = 0, [], [], []
    for o in cf:
        pk.append(np.where(o["peak"] >= 0, o["peak"] + off, -1))
        sm.append(o["sim"])
        ys.append(o["y"])
        off += len(o["y"])
    y_cf = np.concatenate(ys)
    tau_abs, _ = choose_tau(np.concatenate(pk), np.concatenate(sm), y_cf)
    best_f, alpha = -1.0, 0.0
    for al in ALPHAS:
        labs, o2 = [], 0
        for o in cf:
            tau = o["imp"] + al * (o["gen"] - o["imp"])
            labs.append(deduce_tree(o["peak"], o["sim"], tau) + o2)
            o2 += len(o["y"]) + 1
        f = pairwise(y_cf, np.concatenate(labs))[2]
        if f > best_f + 1e-12:
            best_f, alpha = f, float(al)
    tau_rel = test["imp"] + alpha * (test["gen"] - test["imp"])
    tau_or, _ = choose_tau(test["peak"], test["sim"], y)
    g = test["graph"]
    tp, ts = _link_roots(*find_peaks(g.ids, g.sims, test["target"]), test["target"], x, g.k)
    tau_gt, _ = choose_tau(tp, ts, y)
    rows = {
        f"tree, trained tau {tau_abs:.3f}": deduce_tree(test["peak"], test["sim"], tau_abs),
        f"tree, scale-free tau (alpha {alpha:.2f}) {tau_rel:.3f}":
            deduce_tree(test["peak"], test["sim"], tau_rel),
        f"tree, best test tau {tau_or:.3f}": deduce_tree(test["peak"], test["sim"], tau_or),
        f"tree, true confidence, best tau {tau_gt:.3f}": deduce_tree(tp, ts, tau_gt),
        "partition=linkage": linkage_partition(x, test["peak"])[0],
        "auto": get_method("auto")().fit_predict(x),
    }
    print(f"{a.emb} {a.train} -> {a.test} (GCN-V {a.steps} steps), pairwise / BCubed F:")
    for name, labels in rows.items():
        print(f"  {name:45s} {_f(y, labels)}")


if __name__ == "__main__":
    main()
