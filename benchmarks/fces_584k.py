"""Time FC-ES's stages (NEP, early-stop selection, Infomap) on a synthetic 584,013 x 80 graph.

The kNN graph is built directly (no features): 584,013 points in identities
of 68, ids randomly permuted (no memory locality). Row i lists its identity's
other members first (similarities 0.55-0.9, 10% of them replaced by random
impostors) and fills the rest of the 80 slots with random points at
similarities 0.1-0.45 -- roughly the shape of an MS1M part1 graph.

    python benchmarks/fces_584k.py [N] [--aro] [--cdp]
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.knn import KnnGraph  # noqa: E402
from faceclust.stages.partition import (  # noqa: E402
    dynamic_threshold_components,
    infomap_partition,
)
from faceclust.stages.refine import nep, rank_order_distance  # noqa: E402
from faceclust.stages.select import early_stop_edges, threshold_edges, unique_pairs  # noqa: E402


def synthetic_graph(n: int, k: int = 80, size: int = 68, seed: int = 0) -> KnnGraph:
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n)  # point perm[j] belongs to identity j // size
    ident = np.empty(n, dtype=np.int64)
    ident[perm] = np.arange(n) // size
    start = ident * size  # first position (in perm) of each point's identity
    ids = np.empty((n, k), dtype=np.int64)
    sims = np.empty((n, k), dtype=np.float32)
    ids[:, 0] = np.arange(n)
    sims[:, 0] = 1.0
    m = size - 1
    off = np.arange(1, size)  # other members relative to own position, cyclic
    pos = np.empty(n, dtype=np.int64)
    pos[perm] = np.arange(n)
    # the other members of the identity, cyclically after the point itself
    rel = ((pos - start)[:, None] + off[None, :]) % size
    mem = perm[np.minimum(start[:, None] + rel, n - 1)]
    imp = rng.random((n, m)) < 0.1
    mem[imp] = rng.integers(0, n, int(imp.sum()))
    ids[:, 1 : 1 + m] = mem
    ids[:, 1 + m :] = rng.integers(0, n, (n, k - 1 - m))
    sims[:, 1 : 1 + m] = np.sort(rng.uniform(0.55, 0.9, (n, m)).astype(np.float32), axis=1)[:, ::-1]
    sims[:, 1 + m :] = np.sort(rng.uniform(0.1, 0.45, (n, k - 1 - m)).astype(np.float32), axis=1)[:, ::-1]
    return KnnGraph.from_search(ids, sims)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 584013
    t = time.perf_counter()
    g = synthetic_graph(n)
    print(f"graph {g.n} x {g.k} built in {time.perf_counter() - t:.1f} s", flush=True)
    warm = KnnGraph.from_search(np.arange(200)[:, None] * 0 + np.arange(20)[None, :], np.ones((200, 20)))
    nep(warm)
    rank_order_distance(warm)  # compile / load numba caches outside the timings

    def clock() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def lap(name: str, t0: tuple[float, float]) -> tuple[float, float]:
        t1 = clock()
        print(f"{name:<28} wall {t1[0] - t0[0]:6.2f} s   cpu {t1[1] - t0[1]:6.2f} s", flush=True)
        return t1

    t0 = clock()
    s = nep(g)
    t1 = lap("fc-es refine: nep", t0)
    src, dst, w, single = early_stop_edges(g.ids, s, 0.22)
    del s
    t2 = lap(f"fc-es select: {len(src)} links", t1)
    labels = infomap_partition(src, dst, w, g.n)
    lap("fc-es partition: infomap", t2)
    lap("fc-es total", t0)
    print(f"clusters {labels.max() + 1}, single {int(single.sum())}")
    if "--cdp" in sys.argv:
        t0 = clock()
        gg = g.truncate(15)
        src, dst, w = unique_pairs(*threshold_edges(gg, threshold=0.7, strict=True))
        lab = dynamic_threshold_components(src, dst, w, g.n, 600, 0.05, 100)
        lap(f"cdp (k=15): {lab.max() + 1} clusters", t0)
    if "--aro" in sys.argv:
        t0 = clock()
        rank_order_distance(g)
        lap("aro refine: rank-order", t0)


if __name__ == "__main__":
    main()
