"""Check that a refactoring changed no labels: hash every method's labels on fixed data sets.

Run once with the old code and once with the new, then compare::

    PYTHONPATH=/tmp/base/src python benchmarks/same_labels.py --save /tmp/before.json
    PYTHONPATH=src python benchmarks/same_labels.py --save /tmp/after.json --compare /tmp/before.json

Sets: the bundled sample, LFW (dlib 128-d and ArcFace 512-d, /work/shared/data/lfw) and any
``--extra NAME=FEATURES.npy[:METHOD,METHOD]`` (e.g. a 200K ``faceclust synth`` set, run with
``auto`` only). Each (set, method) is fitted with its defaults on the shared exact kNN graph
the method would build itself (sets over 100K: each method builds its own); the SHA-256 of the int64 labels is recorded with the number of
clusters. ``--compare`` exits 1 naming every (set, method) whose labels differ.

Each set runs in a process of its own: in one process, fc-es on LFW after the sample runs
crashed (segfault) in ``stages.partition.infomap_partition`` while numpy read Infomap's result
vectors through faiss's SWIG iterator class (both are SWIG modules; 7052ca8, three times in a
row; the same fit in a fresh process passes).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from faceclust import io
from faceclust.knn import build_knn
from faceclust.methods import make_method
from faceclust.synth import sample_paths

LFW = Path("/work/shared/data/lfw")
METHODS = ("auto", "incremental", "fc-es", "knn-cc", "cdp", "chinese-whispers", "aro",
           "infomap", "hac", "incremental-batches", "incremental-nearest", "suggest")
#: Paths beyond fit: ``incremental`` fitted on half the rows (seeded order), the rest added in
#: 4 ``partial_fit`` batches, then ``refine()`` (placement "average" or "nearest"); ``suggest``:
#: ``faceclust.suggest.suggest_merges`` (top 50) over ``auto``'s labels.
_BATCHES = 4


def _incremental(x: np.ndarray, placement: str) -> np.ndarray:
    order = np.random.default_rng(0).permutation(len(x))
    half = len(x) // 2
    est = make_method("incremental", {"placement": placement}).fit(x[order[:half]])
    for part in np.array_split(order[half:], _BATCHES):
        est.partial_fit(x[part])
    est.refine()
    labels = np.empty(len(x), dtype=np.int64)
    labels[order] = est.labels_
    return labels


def _special(name: str, x: np.ndarray) -> np.ndarray:
    if name.startswith("incremental-"):
        return _incremental(x, name.split("-", 1)[1].replace("batches", "average"))
    from faceclust.suggest import suggest_merges

    pairs = suggest_merges(x, make_method("auto").fit_predict(x), top=50)
    return np.array([(a, b, float(s).hex()) for a, b, s in pairs], dtype=object)


def _sets(extra: list[str]) -> dict[str, tuple[Path, tuple[str, ...]]]:
    sets = {"sample": (sample_paths()[0], METHODS)}
    for name in ("dlib128", "arcface512"):
        path = LFW / f"{name}_features.npy"
        if path.is_file():
            sets[f"lfw-{name}"] = (path, METHODS)
    for spec in extra:
        name, _, rest = spec.partition("=")
        path, _, methods = rest.partition(":")
        sets[name] = (Path(path), tuple(methods.split(",")) if methods else ("auto",))
    return sets


def run(extra: list[str], only: list[str] | None, one_set: str) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for name, (path, methods) in _sets(extra).items():
        if name != one_set:
            continue
        x = io.read_features(path)
        graphs: dict[int, object] = {}
        out[name] = {}
        for method in methods:
            if only and method not in only:
                continue
            t0 = time.perf_counter()
            if method in ("incremental-batches", "incremental-nearest", "suggest"):
                labels = _special(method, x)
            else:
                est = make_method(method)
                k = getattr(est, "k", None)
                knn = None
                if isinstance(k, int) and est.uses_knn and len(x) <= 100_000:
                    kk = max(k, 80)
                    if kk not in graphs:
                        graphs[kk] = build_knn(x, k=kk)
                    knn = graphs[kk]
                labels = np.ascontiguousarray(est.fit_predict(x, knn=knn), dtype=np.int64)
            data = labels.tobytes() if labels.dtype != object else repr(labels.tolist()).encode()
            out[name][method] = {
                "sha256": hashlib.sha256(data).hexdigest(),
                "clusters": int(len(np.unique(labels))) if labels.dtype != object else len(labels),
                "seconds": round(time.perf_counter() - t0, 2),
            }
            print(f"{name:>16} {method:>17} {out[name][method]['clusters']:>7} clusters "
                  f"{out[name][method]['seconds']:7.2f} s {out[name][method]['sha256'][:12]}",
                  file=sys.stderr, flush=True)
    return out


def compare(now: dict, before: dict) -> list[str]:
    """Every (set, method) whose labels differ, or that only one run has."""
    diffs = []
    for name in sorted(set(now) | set(before)):
        a, b = now.get(name, {}), before.get(name, {})
        for method in sorted(set(a) | set(b)):
            if method not in a or method not in b:
                diffs.append(f"{name}/{method}: only in {'before' if method in b else 'now'}")
            elif a[method]["sha256"] != b[method]["sha256"]:
                diffs.append(f"{name}/{method}: labels differ ({b[method]['clusters']} -> "
                             f"{a[method]['clusters']} clusters)")
    return diffs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--save", help="write the label hashes here (JSON)")
    ap.add_argument("--compare", help="label hashes of the other checkout (JSON)")
    ap.add_argument("--extra", action="append", default=[],
                    help="NAME=FEATURES.npy[:METHOD,...] (default method: auto)")
    ap.add_argument("--methods", nargs="*", help="only these methods")
    ap.add_argument("--only-set", help="run this one set in this process")
    args = ap.parse_args()
    if args.only_set:
        now = run(args.extra, args.methods, args.only_set)
    else:  # one child process per set (see the module doc)
        now = {}
        for name in _sets(args.extra):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "set.json"
                cmd = [sys.executable, __file__, "--only-set", name, "--save", str(out)]
                cmd += [f"--extra={e}" for e in args.extra]
                cmd += ["--methods", *args.methods] if args.methods else []
                subprocess.run(cmd, check=True)
                now.update(json.loads(out.read_text()))
    if args.save:
        io.write_text(args.save, json.dumps(now, indent=1, sort_keys=True) + "\n")
    if args.compare:
        diffs = compare(now, json.loads(Path(args.compare).read_text()))
        for line in diffs:
            print(line)
        n = sum(len(v) for v in now.values())
        print(f"{n} (set, method) runs compared: "
              f"{'all labels identical' if not diffs else f'{len(diffs)} differ'}")
        return 1 if diffs else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
