"""Compare synthetic faces (faceclust.synth) with real LFW embeddings, side by side.

Prints, for the real ArcFace-like 512-d LFW features and a synthetic set of the
same size (n, number of identities, dim), the intra- and inter-identity cosine
distributions, identity-size shape, kNN precision@k (k = 1, 5, 10; over all
rows and over rows whose identity has >= 2 samples) and the best pairwise /
BCubed F of a kNN-threshold baseline (k = 10 cosine neighbours, edges above a
threshold, connected components; threshold swept). With ``--dlib`` it also
compares the dlib 128-d features with a dlib-like config.

    python benchmarks/calibrate_synth.py [--seed 0] [--dim 512] [--dlib] [--n N --ids C]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from faceclust.graph import connected_components
from faceclust.knn import build_knn
from faceclust.metrics import bcubed, pairwise
from faceclust.synth import PRESETS, SynthConfig, make_faces

LFW = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lfw"
if not LFW.is_dir():
    LFW = Path("/work/shared/data/lfw")

#: Identity sizes shaped like LFW (72% singletons); the cosine parameters are the defaults.
LFW_SIZES = SynthConfig(size_sigma=2.0)
#: The dlib preset with LFW-like sizes.
DLIB_LIKE = dataclasses.replace(PRESETS["dlib"], size_sigma=LFW_SIZES.size_sigma)


def stats(x: np.ndarray, y: np.ndarray, max_pairs_rows: int = 8000) -> dict[str, float]:
    """Cosine distributions, size shape, kNN precision and baseline F of (x, y)."""
    x = x.astype(np.float32)
    n = len(y)
    rows = np.arange(n) if n <= max_pairs_rows else np.random.default_rng(0).choice(n, max_pairs_rows, replace=False)
    xs, ys = x[rows], y[rows]
    s = xs @ xs.T
    iu = np.triu_indices(len(rows), 1)
    sv, same = s[iu], (ys[:, None] == ys[None, :])[iu]
    out: dict[str, float] = {}
    for name, v in (("intra", sv[same]), ("inter", sv[~same])):
        out[f"{name} mean"] = float(v.mean())
        out[f"{name} std"] = float(v.std())
        for q in (0.01, 0.05, 0.5, 0.95, 0.99):
            out[f"{name} q{int(q * 100):02d}"] = float(np.quantile(v, q))
    _, inv, cnt = np.unique(y, return_inverse=True, return_counts=True)
    out["identities"] = len(cnt)
    out["singleton ids %"] = 100.0 * float((cnt == 1).mean())
    out["max size"] = int(cnt.max())
    out["ids >= 10"] = int((cnt >= 10).sum())

    # cosine kNN (k = 10 + self): exact faiss, IVF above 200K rows (recall ~0.99)
    k = 11
    g = build_knn(x, k, index="flat" if n <= 200_000 else "ivf", progress_bar=False)
    ids, sims = g.ids.astype(np.int64), g.sims
    multi = cnt[inv] > 1
    for kk in (1, 5, 10):
        p = (y[ids[:, 1 : kk + 1]] == y[:, None]).mean(1)
        out[f"prec@{kk} all"] = float(p.mean())
        out[f"prec@{kk} >=2"] = float(p[multi].mean())

    best = (-1.0, 0.0, 0.0)
    for th in np.arange(0.20, 0.99, 0.01):
        src = np.repeat(np.arange(n), k - 1)
        dst = ids[:, 1:].ravel()
        keep = sims[:, 1:].ravel() >= th
        pred = connected_components(src[keep], dst[keep], n)
        f = pairwise(y, pred)[2]
        if f > best[0]:
            best = (f, float(th), bcubed(y, pred)[2])
    out["kNN-th pairwise F"] = best[0]
    out["kNN-th BCubed F"] = best[2]
    out["kNN-th best th"] = best[1]
    return out


def _fmt(v: float) -> str:
    return f"{v:d}" if isinstance(v, int) else f"{v:.3f}"


def table(cols: dict[str, dict[str, float]]) -> str:
    names = list(cols)
    keys = list(next(iter(cols.values())))
    lines = [f"{'statistic':<20}" + "".join(f"{c:>14}" for c in names)]
    for key in keys:
        lines.append(f"{key:<20}" + "".join(f"{_fmt(cols[c][key]):>14}" for c in names))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dim", type=int, nargs="*", default=[512, 256], help="synthetic dims to show")
    ap.add_argument("--n", type=int, default=None, help="synthetic n (default: as the real set)")
    ap.add_argument("--ids", type=int, default=None, help="synthetic identities (default: as real)")
    ap.add_argument("--dlib", action="store_true", help="also compare dlib 128-d with DLIB_LIKE")
    ap.add_argument("--default-sizes", action="store_true",
                    help="use the default size_sigma instead of LFW-like sizes (for --n/--ids runs)")
    ap.add_argument("--no-real", action="store_true", help="skip the real columns")
    args = ap.parse_args()

    y = np.loadtxt(LFW / "labels.meta", dtype=np.int64)
    n = args.n or len(y)
    c = args.ids or len(np.unique(y))
    cols: dict[str, dict[str, float]] = {}
    x = np.load(LFW / "arcface512_features.npy")
    if not args.no_real:
        cols["real arc512"] = stats(x, y)
    cfg = SynthConfig() if args.default_sizes else LFW_SIZES
    for dim in args.dim:
        t = time.perf_counter()
        xs, ys = make_faces(n, c, dim, seed=args.seed, config=cfg)
        gen = time.perf_counter() - t
        cols[f"synth d{dim}"] = stats(xs, ys)
        print(f"# synth d{dim}: n={n} ids={c} seed={args.seed} generated in {gen:.2f} s")
    if args.dlib:
        xd = np.load(LFW / "dlib128_features.npy")
        cols["real dlib128"] = stats(xd, y)
        xs, ys = make_faces(n, c, 128, seed=args.seed, config=DLIB_LIKE)
        cols["synth dlib-like"] = stats(xs, ys)
    print("# defaults:", dataclasses.asdict(SynthConfig()))
    print(table(cols))


if __name__ == "__main__":
    main()
