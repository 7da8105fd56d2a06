"""Ada-NETS stages without any network: what the structure space, the true k* and the
final rule give on the test people of a regime of ``benchmarks/adanets_eval.py``.

    python benchmarks/adanets_oracle.py lfw-arcface

Prints pairwise F of the final rule (top 121, components) at the best threshold for
the test people (an upper bound, never used to choose anything) and at 0.96 on: raw
features; structure-space similarities 1 - nd; the parameter-free two-hop mean over
the Ada-NETS graph of the true k* (labels of the test people: an oracle), over the
plain kNN graph (80, 256) and over fixed-k structure-space graphs.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from adanets_eval import regime  # noqa: E402

from faceclust.knn import build_knn  # noqa: E402
from faceclust.metrics import bcubed, pairwise  # noqa: E402
from faceclust.nn.adanets import gcn_operator, two_hop_mean  # noqa: E402
from faceclust.stages.neighbours import (  # noqa: E402
    adaptive_keep,
    similarity_adjacency,
    target_k,
    threshold_components,
)
from faceclust.stages.refine import structure_space  # noqa: E402


def sweep(y: np.ndarray, ids: np.ndarray, sims: np.ndarray, top: int = 121) -> dict:
    """Best-threshold and 0.96 pairwise F of the final rule over ``(ids, sims)``."""
    best, res = (-1.0, 0.0, None), {}
    for t in np.round(np.arange(0.30, 1.0, 0.01), 2):
        lab = threshold_components(ids, sims, float(t), top)
        res[float(t)] = f = pairwise(y, lab)[2]
        if f > best[0]:
            best = (f, float(t), lab)
    return {"bestF": round(best[0], 4), "best_t": best[1], "bF": round(bcubed(y, best[2])[2], 4),
            "F@0.96": round(res[0.96], 4)}


def rule(feat: np.ndarray, y: np.ndarray) -> dict:
    g = build_knn(feat, k=min(121, len(y) - 1))
    return sweep(y, g.ids, g.sims)


def main() -> None:
    _, _, x, y = regime(sys.argv[1])
    x = np.ascontiguousarray(x, dtype=np.float32)
    g = build_knn(x, k=256)
    g80 = g.truncate(80)
    ss_ids, nd = structure_space(g80, 0.3)
    out = {"raw": rule(x, y), "structure space 1-nd, top 80": sweep(y, ss_ids, 1 - nd, 80)}
    ks = target_k(ss_ids, y, 0.5)
    out["k* mean"] = round(float(ks.mean()), 2)
    keep = adaptive_keep(ks, 80)
    keep[:, 0] = False
    hit = (y[np.where(ss_ids >= 0, ss_ids, 0)] == y[:, None]) & keep
    out["true-k* edge precision"] = round(float(hit.sum() / keep.sum()), 4)
    adj = similarity_adjacency(ss_ids, 1 - nd, keep=adaptive_keep(ks, 80))
    out["two-hop mean, true k*"] = rule(two_hop_mean(gcn_operator(adj), x)[1], y)
    for kk in (80, 256):
        gk = g.truncate(kk)
        a = gcn_operator(similarity_adjacency(gk.ids, gk.sims))
        out[f"two-hop mean, kNN {kk}"] = rule(two_hop_mean(a, x)[1], y)
    for kk in (5, 10, 20):
        a = similarity_adjacency(ss_ids, 1 - nd, keep=adaptive_keep(np.full(len(y), kk), 80))
        out[f"two-hop mean, structure space k={kk}"] = rule(two_hop_mean(gcn_operator(a), x)[1], y)
    for key, val in out.items():
        print(key, val, flush=True)


if __name__ == "__main__":
    main()
