"""Throughput of gcn-ve's GCN-E inference, the stage gcn-v does not have, to extrapolate to 584K.

    python benchmarks/gcne_throughput.py FEATURES.npy GCN_V_MODEL_DIR [--pivots 3000]

Runs GCN-V (a trained model) on FEATURES, the GCN-feature kNN (k = 160, ivf-blas) and
GCN-E's candidate split (ignore_ratio 0.8, the inference default), then times GCN-E
(default architecture 512-512-256-256, random weights: the cost does not depend on
them) on the first ``--pivots`` pivots. Prints one JSON line: CPU seconds per stage,
pivot fraction, candidates per pivot, pivots per CPU second, peak RSS. Used for the
regime-3 gcn-ve inference extrapolation to 584K (issue 23), on the 50K synth test set
(``faceclust synth --n 50000 --ids 750 --dim 256 --seed 2``) with the GCN-V trained on
the 50K synth training set by ``benchmarks/supervised_eval.py``.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np


def main() -> None:
    import torch

    from faceclust.knn import build_knn
    from faceclust.nn.gcn_e import GCNE, Candidates, edge_candidates, predict_links
    from faceclust.nn.gcn_v import gcn_v_outputs, load_gcn_v
    from faceclust.nn.layers import knn_adjacency

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("features")
    ap.add_argument("gcn_v_model")
    ap.add_argument("--pivots", type=int, default=3000)
    ap.add_argument("--k-e", type=int, default=160)
    ap.add_argument("--ignore-ratio", type=float, default=0.8)
    a = ap.parse_args()
    torch.set_num_threads(1)
    x = np.load(a.features)
    vm, vmeta = load_gcn_v(a.gcn_v_model)
    out: dict = {"n": int(len(x))}
    c0 = time.process_time()
    conf, feat, _ = gcn_v_outputs(vm, x, k=int(vmeta.get("k", 80)),
                                  min_sim=float(vmeta.get("min_sim", 0.0)))
    out["gcn_v_cpu_s"] = round(time.process_time() - c0, 1)
    c0 = time.process_time()
    g2 = build_knn(feat, k=a.k_e, index="ivf-blas")
    adj = knn_adjacency(g2.ids, g2.sims, 0.0)
    out["knn_feat_cpu_s"] = round(time.process_time() - c0, 1)
    cand = edge_candidates(g2.ids, g2.sims, conf, a.ignore_ratio)
    p = len(cand.pivots)
    sizes = np.diff(cand.ptr)
    out.update(pivots=p, pivot_fraction=round(p / len(x), 4),
               mean_candidates=round(float(sizes.mean()), 1) if p else 0.0)
    m = min(p, a.pivots)
    sub = Candidates(cand.peak, cand.peak_sim, cand.pivots[:m], cand.ptr[: m + 1],
                     cand.nodes[: cand.ptr[m]], cand.sims[: cand.ptr[m]])
    torch.manual_seed(0)
    model = GCNE(feat.shape[1])
    c0 = time.process_time()
    predict_links(model, feat, sub, adj, batch_size=256)
    cpu = time.process_time() - c0
    out.update(timed_pivots=m, gcn_e_cpu_s=round(cpu, 1),
               pivots_per_cpu_s=round(m / cpu, 1) if cpu > 0 else None,
               peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
