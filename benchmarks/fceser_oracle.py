"""How much can FC-ESER's edge recall add to FC-ES? An oracle verifier bounds it.

    python benchmarks/fceser_oracle.py FEATURES.npy LABELS.meta [--eta 0.6] [--delta 0.12]

Runs ``fc-es`` (defaults: k 80, theta 0.22) and ``fc-es`` + recall where the pair
model is replaced by the ground truth (a candidate becomes a link, weight 1, exactly
when both faces are the same person). No trained ``fc-eser`` can beat that oracle
(with weights ≤ 1 and the same candidates), so when the oracle row barely differs
from ``fc-es``, recall cannot be what separates the two on that data. Prints one
JSON line: metrics of both, candidates, same-person candidates, links.
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("features")
    ap.add_argument("labels")
    ap.add_argument("--delta", type=float, default=0.12)
    ap.add_argument("--k", type=int, default=80)
    a = ap.parse_args()

    import numpy as np

    from faceclust.methods._fces import FCES
    from faceclust.metrics import evaluate
    from faceclust.stages.verify import recall_candidates

    x = np.load(a.features).astype(np.float32)
    y = np.loadtxt(a.labels, dtype=np.int64)
    k = min(a.k, len(x) - 1)

    class OracleRecall(FCES):
        def _recall(self, x, order, graph, scores, src, dst, w, single):
            yl = y[order]  # the graph is renumbered for locality
            c_src, c_dst, _ = recall_candidates(graph.ids, scores, float(self.theta), a.delta,
                                                self.max_links)
            keep = yl[c_src] == yl[c_dst]
            self.n_candidates_, self.n_recalled_ = int(len(c_src)), int(keep.sum())
            single = single.copy()
            single[c_src[keep]] = False
            return (np.concatenate([src, c_src[keep]]), np.concatenate([dst, c_dst[keep]]),
                    np.concatenate([w, np.ones(int(keep.sum()), np.float32)]), single)

    out = {"features": a.features, "n": len(x), "k": k, "delta": a.delta}
    for name, est in (("fc-es", FCES(k=k)), ("oracle-recall", OracleRecall(k=k))):
        t = time.perf_counter()
        lab = est.fit_predict(x)
        m = evaluate(y, lab)
        out[name] = {"pairwise_f": round(m["pairwise_f"], 4), "bcubed_f": round(m["bcubed_f"], 4),
                     "pairwise_precision": round(m["pairwise_precision"], 4),
                     "pairwise_recall": round(m["pairwise_recall"], 4),
                     "clusters": int(m["n_clusters"]), "links": int(est.n_links_),
                     "seconds": round(time.perf_counter() - t, 1)}
        if name == "oracle-recall":
            out[name].update(candidates=est.n_candidates_, same_person=est.n_recalled_)
    out["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
