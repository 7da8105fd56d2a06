"""GCN-V+E variants on people it never saw: which node -> peak rule gets gcn-ve nearest ``auto``.

    python benchmarks/gcn_ve_variants.py --model DIR --emb arcface512 --test lfw-test
        [--data DIR] [--ignore 0.8,0.9,0.95] [--spaces gcn,input]

``DIR`` is a gcn-ve model directory (``faceclust train --method gcn-ve``; the protocol's
cache ``WORK/models/EMB/gcn-ve-*``), ``--data`` the protocol's ``WORK/data`` (regime 1a:
lfw-test, 1b: celeba_wild-test). GCN-V runs once; then, per candidate space and
``ignore_ratio``, GCN-E picks each pivot's peak and the edges become clusters by both
partition rules (``tree`` at the trained tau, ``linkage``), with and without
``link_roots``. Candidate spaces: ``gcn`` = the kNN of the GCN-V features (the paper's
GCN-E, gcn-ve's default), ``input`` = the kNN of the input features (as gcn-v's default
peaks; GCN-E still reads the GCN features). Prints pairwise / BCubed F per variant and
``auto``'s on the same people.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

from faceclust.knn import build_knn
from faceclust.methods import get_method
from faceclust.methods._gcn import _link_roots, linkage_partition
from faceclust.metrics import evaluate
from faceclust.nn.gcn_e import edge_candidates, load_gcn_e, predict_links
from faceclust.nn.gcn_v import gcn_v_outputs, load_gcn_v
from faceclust.nn.layers import knn_adjacency
from faceclust.stages.confidence import deduce_tree


def _f(y: np.ndarray, labels: np.ndarray) -> str:
    m = evaluate(y, labels)
    return f"{m['pairwise_f']:.3f} / {m['bcubed_f']:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--emb", required=True)
    ap.add_argument("--test", required=True)
    ap.add_argument("--data", default=os.environ.get("SUPERVISED_EVAL_WORK",
                                                      "/tmp/faceclust_supervised_eval") + "/data")
    ap.add_argument("--ignore", default="0.8,0.9,0.95")
    ap.add_argument("--spaces", default="gcn,input")
    a = ap.parse_args()
    d = Path(a.data) / a.emb
    x = np.load(d / f"{a.test}_features.npy")
    y = np.loadtxt(d / f"{a.test}.meta", dtype=np.int64)

    vmodel, vmeta = load_gcn_v(a.model)
    emodel, emeta = load_gcn_e(a.model)
    k, k_e = int(vmeta.get("k", 80)), int(emeta.get("k", 160))
    min_sim = float(vmeta.get("min_sim", 0.0))
    tau = float(vmeta.get("tau", 0.8))
    conf, feat, _ = gcn_v_outputs(vmodel, x, k=min(k, len(x) - 1), min_sim=min_sim)
    g2 = build_knn(feat, k=min(k_e, len(x) - 1))
    adj = knn_adjacency(g2.ids, g2.sims, min_sim)
    spaces = {"gcn": g2}
    if "input" in a.spaces.split(","):
        spaces["input"] = build_knn(x, k=min(k_e, len(x) - 1))
    print(f"{a.emb} {a.test} ({len(x)} faces), model {a.model}, trained tau {tau:.3f}; "
          f"auto {_f(y, get_method('auto')().fit_predict(x))}", flush=True)
    print("space  ignore  link_roots  tree (trained tau)  linkage", flush=True)
    for name in a.spaces.split(","):
        g = spaces[name]
        for r in (float(v) for v in a.ignore.split(",")):
            cand = edge_candidates(g.ids, g.sims, conf, r)
            peak, sim = predict_links(emodel, feat, cand, adj)
            if name == "input":  # the tree cut is on GCN-feature cosines, as gcn-ve's tau
                ok = peak >= 0
                sim = np.where(ok, np.einsum("ij,ij->i", feat, feat[np.maximum(peak, 0)]),
                               -np.inf).astype(np.float32)
            for lr in (False, True):
                p, s = _link_roots(peak, sim, conf, feat, k_e) if lr else (peak, sim)
                print(f"{name:6s} {r:6.2f}  {lr!s:10s}  {_f(y, deduce_tree(p, s, tau)):18s}  "
                      f"{_f(y, linkage_partition(x, p)[0])}", flush=True)


if __name__ == "__main__":
    main()
