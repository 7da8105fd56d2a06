"""Tiny and degenerate collections: the tables of docs/degenerate.md.

``--table``: clusters found by every unsupervised method on synthetic strangers, one
person, a few people and identical rows (``faceclust.synth.make_faces``, seed 0).

``--real``: pairwise precision / recall of ``auto`` on random subsets of the shared real
sets (``--data``, default /work/shared/data): ``random`` draws N photos at random (mostly
strangers), ``dense`` N // 5 people with 5 photos each. Mean over ``--reps`` subsets.

    python benchmarks/small_collections.py --table
    python benchmarks/small_collections.py --real --reps 20
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.errors import FaceclustError  # noqa: E402
from faceclust.io import read_labels  # noqa: E402
from faceclust.methods import METHODS, AutoClusterer, make_method  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402
from faceclust.synth import make_faces  # noqa: E402


def table() -> None:
    cases = {
        "N = 3 strangers": make_faces(3, 3, 64, seed=0)[0],
        "N = 30 strangers": make_faces(30, 30, 64, seed=0)[0],
        "N = 30, one person": make_faces(30, 1, 64, seed=0)[0],
        "N = 40, 8 people": make_faces(40, 8, 64, seed=0)[0],
        "600 identical": np.repeat(make_faces(1, 1, 64, seed=0)[0], 600, axis=0),
    }
    print("| method | " + " | ".join(cases) + " |")
    print("|---" * (len(cases) + 1) + "|")
    for name in sorted(METHODS):
        if getattr(METHODS[name], "needs_model", False):
            continue
        row = []
        for x in cases.values():
            params = {"n_clusters": max(1, len(x) // 5)} if name == "kmeans" else {}
            try:
                row.append(str(len(np.unique(make_method(name, params).fit_predict(x)))))
            except FaceclustError as exc:
                row.append(f"error: {exc}")
        print(f"| `{name}` | " + " | ".join(row) + " |")


def real(data: Path, reps: int, sizes: list[int]) -> None:
    rng = np.random.default_rng(1)
    sets = [("lfw", "arcface512"), ("lfw", "dlib128"), ("celeba_wild", "arcface512"),
            ("celeba_wild", "dlib128"), ("orl", "dlib128")]
    print("| set | N | subset | pairwise precision | pairwise recall |")
    print("|---|---|---|---|---|")
    for folder, feat in sets:
        fpath = data / folder / f"{feat}_features.npy"
        if not fpath.exists():
            continue
        x = np.load(fpath)
        y = read_labels(data / folder / "labels.meta")
        ids, counts = np.unique(y, return_counts=True)
        big = ids[counts >= 5]
        for n in sizes:
            for mode in ("random", "dense"):
                p, r = [], []
                for _ in range(reps):
                    if mode == "random":
                        idx = rng.choice(len(x), n, replace=False)
                    else:
                        people = rng.choice(big, max(1, n // 5), replace=False)
                        idx = np.concatenate([rng.choice(np.flatnonzero(y == q), 5, replace=False)
                                              for q in people])[:n]
                    m = evaluate(y[idx], AutoClusterer().fit_predict(x[idx]))
                    p.append(m["pairwise_precision"])
                    r.append(m["pairwise_recall"])
                print(f"| {folder}/{feat} | {n} | {mode} | {np.mean(p):.2f} | {np.mean(r):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--sizes", default="5,10,30")
    args = ap.parse_args()
    if args.table or not args.real:
        table()
    if args.real:
        real(args.data, args.reps, [int(s) for s in args.sizes.split(",")])


if __name__ == "__main__":
    main()
