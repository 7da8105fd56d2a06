"""Infomap's memory per directed link: the constant behind FC-ES's memory guard.

    python benchmarks/infomap_memory.py [--n 200000] [--degree 40] [--group 60]
        [--out benchmarks/results/infomap_memory.json]

Builds a directed graph like FC-ES's early-stop links on tight data (each node links
``--degree`` random members of its group of ``--group`` nodes, weights in [0.1, 1.1)), hands
it to Infomap as ``stages.partition.infomap_partition`` does (float64 slices through
``add_links``) and runs the same two-level directed Infomap. Reports the resident memory
after adding the links and the process peak during ``run``, per link, above the RSS
before Infomap was created (``faceclust.stages.partition.INFOMAP_BYTES_PER_LINK`` uses the
peak). Run it in its own process: the peak is the process's.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from faceclust.fsutil import write_text


def rss_bytes() -> int:
    """Current resident set size of this process (Linux)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--degree", type=int, default=40)
    ap.add_argument("--group", type=int, default=60)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "infomap_memory.json"))
    a = ap.parse_args()

    import infomap

    rng = np.random.default_rng(0)
    src = np.repeat(np.arange(a.n), a.degree)
    dst = np.minimum((src // a.group) * a.group + rng.integers(0, a.group, len(src)), a.n - 1)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    w = rng.random(len(src)) + 0.1
    m = len(src)
    base = rss_bytes()
    im = infomap.Infomap(silent=True, two_level=True, directed=True, seed=123, num_trials=1)
    for s in range(0, m, 1 << 22):
        e = min(m, s + (1 << 22))
        im.add_links(np.stack([src[s:e], dst[s:e], w[s:e]], axis=1).astype(np.float64))
    added = rss_bytes()
    t0 = time.perf_counter()
    im.run()
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KB on Linux
    res = {"infomap": infomap.__version__, "n": a.n, "links_offered": m, "degree": a.degree,
           "group": a.group, "run_s": round(secs, 1),
           "bytes_per_link_after_add": round((added - base) / m, 1),
           "bytes_per_link_peak": round((peak - base) / m, 1)}
    print(json.dumps(res))
    write_text(Path(a.out), json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
