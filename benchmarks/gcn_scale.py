"""Time / memory of GCN-V and GCN-E inference stages on a synthetic 584,013-node kNN graph.

The kNN graph is the one of ``fces_584k.py`` (k=80, identities of 68, impostors);
features are random unit vectors of the model's input dimension (timing only:
the quality is meaningless). kNN search itself is not timed (see ``faceclust
bench``). GCN-E runs on the first ``--pivots`` sub-graphs and the time is
extrapolated linearly to all pivots.

    python benchmarks/gcn_scale.py MODEL_DIR [N] [--pivots 4000]
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from fces_584k import synthetic_graph  # noqa: E402

from faceclust.nn.gcn_e import Candidates, edge_candidates, load_gcn_e, predict_links  # noqa: E402
from faceclust.nn.gcn_v import load_gcn_v, normalize_rows, predict_gcn_v  # noqa: E402
from faceclust.nn.layers import knn_adjacency  # noqa: E402
from faceclust.stages.confidence import deduce_tree, find_peaks  # noqa: E402


def rss() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main() -> None:
    model_dir = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 and sys.argv[2].isdigit() else 584013
    n_piv = int(sys.argv[sys.argv.index("--pivots") + 1]) if "--pivots" in sys.argv else 4000
    out: dict = {"n": n}
    vm, _ = load_gcn_v(model_dir)
    em, _ = load_gcn_e(model_dir)
    t = time.perf_counter()
    g = synthetic_graph(n)
    rng = np.random.default_rng(0)
    x = np.empty((n, vm.in_dim), dtype=np.float32)
    for s in range(0, n, 65536):
        x[s : s + 65536] = rng.standard_normal((min(65536, n - s), vm.in_dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    out["setup_s"] = round(time.perf_counter() - t, 1)
    out["rss_after_setup_mib"] = rss()

    def timed(name, fn, *a, **kw):
        t0 = time.perf_counter()
        r = fn(*a, **kw)
        out[f"{name}_s"] = round(time.perf_counter() - t0, 2)
        return r

    adj = timed("adjacency", knn_adjacency, g.ids, g.sims, 0.0)
    out["adj_nnz"] = int(adj.nnz)
    conf, feat = timed("gcn_v_predict", predict_gcn_v, vm, x, adj)
    peak, sim = timed("peaks", find_peaks, g.ids, g.sims, conf)
    timed("deduce", deduce_tree, peak, sim, 0.5)
    out["rss_after_gcn_v_mib"] = rss()
    featn = timed("normalize", normalize_rows, feat)
    del feat
    cand = timed("candidates", edge_candidates, g.ids, g.sims, conf, 0.8)
    p = len(cand.pivots)
    out["pivots"] = p
    out["mean_candidates"] = round(float(np.diff(cand.ptr).mean()), 1) if p else 0
    m = min(n_piv, p)
    sub = Candidates(cand.peak, cand.peak_sim, cand.pivots[:m], cand.ptr[: m + 1],
                     cand.nodes, cand.sims)
    timed("gcn_e_subset", predict_links, em, featn, sub, adj, batch_size=256)
    out["gcn_e_all_extrapolated_s"] = round(out["gcn_e_subset_s"] * p / max(m, 1), 1)
    out["peak_rss_mib"] = rss()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
