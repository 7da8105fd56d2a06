"""Does GCN-S learn to tell a proposal's seed identity from intruders on people it never saw?

    python benchmarks/dsgcn_gcns_check.py [--emb arcface512] [--preset 8]
        [--train-range "ioptr>=0.2,ioptr<=0.8"] [--seed-input indicator|residual]
        [--lr 0.01] [--dropout 0.5] [--steps 300]

Regime 1a of ``supervised_eval.py`` (LFW split by person, the largest people in test):
proposals (``preset``) on both sides, GCN-S trained on the training proposals whose true
IoP lies in the range (the reference: 0.2-0.8; ``--all-impure`` takes every IoP < 1), then
run on every impure test proposal with a random seed member. Prints node accuracy of
"P(same as seed) > 0.5" against the base rate (all kept), the kept members' precision and
the recall of the seed's identity: the measurement behind gcn-ds vs gcn-d.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from supervised_eval import DATA, lfw_split_largest_to_test  # noqa: E402

from faceclust.knn import build_knn  # noqa: E402
from faceclust.nn.dsgcn import predict_proposals, seed_nodes, train_dsgcn  # noqa: E402
from faceclust.stages.proposals import (  # noqa: E402
    generate_proposals,
    proposal_targets,
    similarity_offset,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--emb", default="arcface512")
    ap.add_argument("--preset", default="8")
    ap.add_argument("--all-impure", action="store_true")
    ap.add_argument("--seed-input", default="indicator")
    ap.add_argument("--lr", type=float, default=1e-2)
    ap.add_argument("--dropout", type=float, default=0.5)
    ap.add_argument("--steps", type=int, default=300)
    a = ap.parse_args()
    x = np.load(DATA / "lfw" / f"{a.emb}_features.npy")
    y = np.loadtxt(DATA / "lfw" / "labels.meta", dtype=np.int64)
    tr, te = lfw_split_largest_to_test(y)

    def prep(idx):
        g = build_knn(x[idx], k=80)
        p = generate_proposals(x[idx], g.ids, g.sims, a.preset, offset=similarity_offset(x[idx]))
        return g, p, proposal_targets(p, y[idx])[1]

    gtr, ptr_, ioptr = prep(tr)
    gte, pte, iopte = prep(te)
    sel = np.flatnonzero(ioptr < 1) if a.all_impure else np.flatnonzero((ioptr >= 0.2) & (ioptr <= 0.8))
    train_props, test_props = ptr_.select(sel), pte.select(np.flatnonzero(iopte < 1))
    t0 = time.perf_counter()
    model, meta = train_dsgcn(x[tr], y[tr], gtr.ids, gtr.sims, train_props, None, kind="seg",
                              steps=a.steps, batch_size=8, lr=a.lr, dropout=a.dropout,
                              seed_input=a.seed_input)
    seeds = seed_nodes(test_props, None, "random", np.random.default_rng(0))
    prob = predict_proposals(model, x[te], gte.ids, gte.sims, test_props, seeds=seeds)
    yt = y[te]
    same = yt[test_props.nodes] == yt[test_props.nodes[seeds]][test_props.owner()]
    kept = prob > 0.5
    print(f"train proposals {len(train_props)}, test impure proposals {len(test_props)}, "
          f"{time.perf_counter() - t0:.0f} s; final losses {meta['losses'][-3:]}")
    print(f"node accuracy {np.mean(kept == same):.3f} (base rate, keep all: {same.mean():.3f}); "
          f"kept precision {same[kept].mean() if kept.any() else float('nan'):.3f}; "
          f"seed-identity recall {kept[same].mean():.3f}")


if __name__ == "__main__":
    main()
