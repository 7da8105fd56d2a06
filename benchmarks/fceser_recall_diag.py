"""What fc-eser's trained recall adds on a test set: candidates, links recalled, how many are right.

    python benchmarks/fceser_recall_diag.py MODEL_DIR TEST.npy TEST.meta [--out JSONL]

Runs ``fc-eser`` (defaults) with a model from ``faceclust train --method fc-eser``
and prints one JSON line: fc-es's early-stop links and their pair precision, the
recall candidates, the links the pair model recalled (p >= eta) and how many of
them join two photos of one person, and the clustering's pairwise / BCubed F.
The oracle bound (a perfect verifier) is ``benchmarks/fceser_oracle.py``.
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

    from faceclust.methods._lcepce import FCESER
    from faceclust.metrics import evaluate

    x = np.load(a.features).astype(np.float32)
    y = np.loadtxt(a.labels, dtype=np.int64)
    seen: dict = {}

    class Probe(FCESER):
        def _recall(self, x_, order, graph, scores, src, dst, w, single):
            out = super()._recall(x_, order, graph, scores, src, dst, w, single)
            yo = y[order]  # the graph is renumbered by ``order``
            rs, rd = out[0][len(src):], out[1][len(src):]
            seen.update(early_stop_links=int(len(src)),
                        early_stop_precision=round(float((yo[src] == yo[dst]).mean()), 4),
                        recalled=int(len(rs)), recalled_same_person=int((yo[rs] == yo[rd]).sum()))
            return out

    est = Probe(model=a.model)
    m = evaluate(y, est.fit_predict(x))
    row = {"model": Path(a.model).name, "test": Path(a.features).name, "n": int(len(y)),
           "candidates": est.n_candidates_, **seen,
           "pairwise_f": round(float(m["pairwise_f"]), 4), "bcubed_f": round(float(m["bcubed_f"]), 4)}
    line = json.dumps(row)
    print(line)
    if a.out:
        with open(a.out, "a") as fh:
            fh.write(line + "\n")


if __name__ == "__main__":
    main()
