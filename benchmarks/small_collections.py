"""Tiny and degenerate collections: the tables of docs/degenerate.md.

``--table``: clusters found by every unsupervised method on synthetic strangers, one
person, a few people and identical rows (``faceclust.synth.make_faces``, seed 0).

``--real``: pairwise precision / recall / F of a method (default ``auto``; parameters with
``--set key=value``) on small albums sampled from every shared real source and model
(``--data``, default /work/shared/data): LFW, celeba_wild and celeba (dlib 128-d and
ArcFace-like 512-d) and ORL (dlib). Per source and kind, ``--reps`` albums (seeded by
``--seed``) of a size drawn uniformly from ``--sizes LO:HI`` (default 5:49):
``distinct`` (N different people, one photo each), ``mixed`` (about half the album a few
people with 2..5 photos each, the rest strangers), ``one`` (N photos of one person; the
largest person's photos where nobody has N). Pairs are summed over the albums; "albums
with a wrong merge" is the share of albums where some pair of different people was put
together (for ``distinct``: the album of strangers was merged at all); ``family``: a
household's album, 2..5 people with up to 12 photos each and no strangers.

    python benchmarks/small_collections.py --table
    python benchmarks/small_collections.py --real --reps 20
    python benchmarks/small_collections.py --real --reps 20 --name-model
    python benchmarks/small_collections.py --real --reps 20 --set small_floor=none --set embedding=none
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.errors import FaceclustError  # noqa: E402
from faceclust.fsutil import write_text  # noqa: E402
from faceclust.io import read_labels  # noqa: E402
from faceclust.methods import METHODS, make_method  # noqa: E402
from faceclust.params import parse_set  # noqa: E402
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


SOURCES = [("lfw", "arcface512"), ("lfw", "dlib128"), ("celeba_wild", "arcface512"),
           ("celeba_wild", "dlib128"), ("celeba", "arcface512"), ("celeba", "dlib128"),
           ("orl", "dlib128")]
KINDS = ("distinct", "mixed", "one", "family")


def album(kind: str, n: int, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row indices of one album of ``n`` faces (fewer for ``one`` where nobody has ``n``).

    ``distinct``: ``n`` different people, one photo each. ``mixed``: about half the
    album is a few people with 2..5 photos each, the rest strangers (one photo of
    other people). ``one``: ``n`` photos of one person (the largest if nobody has ``n``).
    ``family``: 2..5 people (drawn from ``n``'s generator) with up to 12 photos each
    (people with >= 5), no strangers, at most 49 faces: the album of a household.
    """
    ids, counts = np.unique(y, return_counts=True)
    rows_of = {int(i): np.flatnonzero(y == i) for i in ids}
    if kind == "family":
        ok = ids[counts >= 5]
        people = rng.choice(ok, min(len(ok), int(rng.integers(2, 6))), replace=False)
        rows = [rng.choice(rows_of[int(q)], min(12, len(rows_of[int(q)])), replace=False)
                for q in people]
        return np.concatenate(rows)[:49]
    if kind == "distinct":
        people = rng.choice(ids, min(n, len(ids)), replace=False)
        return np.array([rng.choice(rows_of[int(q)]) for q in people])
    if kind == "one":
        ok = ids[counts >= n]
        q = int(rng.choice(ok)) if len(ok) else int(ids[np.argmax(counts)])
        return rng.choice(rows_of[q], min(n, len(rows_of[q])), replace=False)
    out: list[int] = []
    used: set[int] = set()
    for q in rng.permutation(ids[counts >= 2]):
        if len(out) >= n // 2:
            break
        take = min(int(rng.integers(2, 6)), int(counts[ids == q][0]), n - len(out))
        if take < 2:
            break
        out += list(rng.choice(rows_of[int(q)], take, replace=False))
        used.add(int(q))
    rest = [q for q in rng.permutation(ids) if int(q) not in used][: n - len(out)]
    out += [int(rng.choice(rows_of[int(q)])) for q in rest]
    return np.array(out)


def pair_counts(truth: np.ndarray, pred: np.ndarray) -> tuple[int, int, int]:
    """(pairs in one predicted cluster, pairs of one person, pairs that are both)."""
    def pairs(lab: np.ndarray) -> int:
        c = np.unique(lab, return_counts=True)[1]
        return int((c * (c - 1) // 2).sum())
    joint = np.unique(np.stack([truth, pred]), axis=1, return_counts=True)[1]
    return pairs(pred), pairs(truth), int((joint * (joint - 1) // 2).sum())


def real(data: Path, reps: int, lo: int, hi: int, method: str, params: dict,
         seed: int = 1, name_model: bool = False) -> list[dict]:
    """Albums of every kind from every source: pairwise P / R / F (pairs summed over albums).

    ``name_model``: pass each set's embedding model by name (``embedding=dlib128`` ...),
    as a user who knows their model would, instead of the method's default."""
    rows = []
    for folder, feat in SOURCES:
        fpath = data / folder / f"{feat}_features.npy"
        if not fpath.exists():
            continue
        x = np.load(fpath)
        y = read_labels(data / folder / "labels.meta")
        set_params = {**params, "embedding": feat} if name_model else params
        for kind in KINDS:
            rng = np.random.default_rng([seed, KINDS.index(kind)])
            pred_p = true_p = tp = merged = faces = 0
            for _ in range(reps):
                idx = album(kind, int(rng.integers(lo, hi + 1)), y, rng)
                lab = make_method(method, dict(set_params)).fit_predict(x[idx])
                a, b, c = pair_counts(y[idx], lab)
                pred_p, true_p, tp, faces = pred_p + a, true_p + b, tp + c, faces + len(idx)
                merged += a > c  # some pair of different people put together
            prec = tp / pred_p if pred_p else 1.0
            rec = tp / true_p if true_p else 1.0
            f = 2 * prec * rec / (prec + rec) if prec + rec else 0.0
            rows.append({"set": f"{folder}/{feat}", "kind": kind, "albums": reps,
                         "faces": faces, "precision": prec, "recall": rec, "f": f,
                         "wrong_merge": merged / reps})
    return rows


def print_rows(rows: list[dict]) -> None:
    print("| set | album | pairwise precision | pairwise recall | pairwise F "
          "| albums with a wrong merge |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        rec = "–" if r["kind"] == "distinct" else f"{r['recall']:.2f}"
        f = "–" if r["kind"] == "distinct" else f"{r['f']:.2f}"
        print(f"| {r['set']} | {r['kind']} | {r['precision']:.2f} | {rec} | {f} "
              f"| {r['wrong_merge']:.0%} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--table", action="store_true")
    ap.add_argument("--real", action="store_true")
    ap.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    ap.add_argument("--reps", type=int, default=50, help="albums per source and kind")
    ap.add_argument("--sizes", default="5:49", help="album size range LO:HI (uniform)")
    ap.add_argument("--method", default="auto")
    ap.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                    help="method parameter (repeatable)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--name-model", action="store_true",
                    help="pass each set's embedding model by name (embedding=dlib128 ...)")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = ap.parse_args()
    if args.table or not args.real:
        table()
    if args.real:
        lo, _, hi = args.sizes.partition(":")
        rows = real(args.data, args.reps, int(lo), int(hi or lo), args.method,
                    parse_set(args.settings), args.seed, args.name_model)
        print_rows(rows)
        if args.json:
            write_text(args.json, json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
