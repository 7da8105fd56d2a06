"""Partition stage: turn selected (weighted) edges into one label per point.

Every function takes edges ``(src, dst[, weight])`` over nodes ``0..n-1`` and
returns contiguous int64 labels ``[n]``; a node without any edge is a
singleton (learn-to-cluster's convention, so metrics always see all N items).
"""

from __future__ import annotations

import os
import tempfile
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components as _cc

from ..errors import InputError, ParameterError
from ..graph import connected_components, relabel

__all__ = [
    "available_memory", "connected_components", "dynamic_threshold_components", "infomap_link_cap",
    "infomap_partition",
]

_LINK_CHUNK = 1 << 22  # links per Infomap.add_links call (bounds the float64 copy)
#: Infomap's peak memory per directed link during ``run`` (infomap 2.16): 74 bytes at 7.9M
#: links (``benchmarks/infomap_memory.py``), about 90 at 170M (FC-ES at 5.21M, whose process
#: peaked at 22.7 GB; benchmarks/results/notes.md)
INFOMAP_BYTES_PER_LINK = 90
#: ... plus our own copy of the link (int64 src, int64 dst, float32 weight)
LINK_BYTES = INFOMAP_BYTES_PER_LINK + 20


def _check_edges(src, dst, weight, n: int, what: str, *, convert: bool = True):
    """Validated edge arrays; ``convert`` makes them int64/int64/float64 (copies if needed)."""
    src, dst, weight = np.asarray(src), np.asarray(dst), np.asarray(weight)
    if convert:
        src, dst = src.astype(np.int64, copy=False), dst.astype(np.int64, copy=False)
        weight = weight.astype(np.float64, copy=False)
    if src.dtype.kind not in "iu" or dst.dtype.kind not in "iu":
        raise InputError(f"{what}: src and dst must be integer arrays")
    if not (src.shape == dst.shape == weight.shape) or src.ndim != 1:
        raise InputError(f"{what}: src, dst and weight must be 1-D arrays of one length")
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise InputError(f"{what}: node ids must lie in [0, {n})")
    if np.isnan(weight).any():
        raise InputError(f"{what}: edge weights contain NaN")
    return src, dst, weight


def infomap_partition(
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    n: int,
    *,
    directed: bool = True,
    two_level: bool = True,
    seed: int = 123,
    num_trials: int = 1,
) -> np.ndarray:
    """Map-equation partition (Infomap) of the weighted links ``src -> dst``.

    Returns contiguous labels ``[n]`` (top-level modules); nodes without any
    link are singletons. ``directed`` selects the directed flow model, as used
    by FC-ES and the Infomap baseline; ``seed`` makes the result reproducible.

    Links go to Infomap as float64 ``[m, 3]`` slices through
    ``Infomap.add_links`` (C++ bulk calls); the ``add_edge_index`` and
    scipy adapters iterate in Python and a Pajek text file is parsed slower.
    Infomap's cost is dominated by cache misses in its per-node maps: give it
    nodes numbered for locality (:func:`faceclust.knn.locality_order`).
    Modules are read back as two arrays from one bulk traversal.
    """
    import infomap

    src, dst, weight = _check_edges(src, dst, weight, n, "infomap", convert=False)
    labels = np.full(n, -1, dtype=np.int64)
    keep = (src != dst) & (weight > 0)
    n_links = int(keep.sum())
    if n_links == 0:
        return relabel(labels)
    if n_links < len(keep):
        src, dst, weight = src[keep], dst[keep], weight[keep]
    del keep
    im = infomap.Infomap(
        silent=True, two_level=two_level, directed=directed, seed=seed, num_trials=num_trials
    )
    # Hand the links over in slices: a full [M, 3] float64 copy would be 0.9 GB at
    # 38M links, memory that Infomap's own network needs.
    for start in range(0, n_links, _LINK_CHUNK):
        stop = min(n_links, start + _LINK_CHUNK)
        links = np.empty((stop - start, 3), dtype=np.float64)
        links[:, 0] = src[start:stop]
        links[:, 1] = dst[start:stop]
        links[:, 2] = weight[start:stop]
        im.add_links(links)
    del links
    im.run()
    nodes, modules = _read_modules(im)
    labels[nodes] = modules
    return relabel(labels)


def available_memory() -> int | None:
    """Bytes the OS can still give this process (psutil's ``available``); None if unknown."""
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except Exception:  # pragma: no cover - psutil is a dependency; a platform may not say
        return None


def infomap_link_cap(counts: np.ndarray, budget_bytes: float) -> int | None:
    """The per-node link cap that fits Infomap into ``budget_bytes``; None if all links fit.

    ``counts[i]``: links node i would send uncapped. A cap ``c`` keeps
    ``sum(min(counts, c))`` links of :data:`LINK_BYTES` each (Infomap's peak plus
    our edge arrays); the largest cap that fits is returned (at least 1).
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size == 0 or counts.sum() * LINK_BYTES <= budget_bytes:
        return None
    lo, hi = 1, int(counts.max())  # sum(min(counts, hi)) does not fit
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if np.minimum(counts, mid).sum() * LINK_BYTES <= budget_bytes:
            lo = mid
        else:
            hi = mid
    return lo


def _read_modules(im) -> tuple[np.ndarray, np.ndarray]:
    """(node ids, top-level module ids) of a finished Infomap run.

    Read back through Infomap's own ``.clu`` writer (C++) and numpy's C text parser:
    faster than iterating its result vectors, and safe beside faiss. Both are SWIG
    modules sharing one runtime type table, so a ``std::vector`` iterator of
    Infomap's may be wrapped by faiss's iterator class when faiss was imported
    first, which crashed the process (seen on LFW through ``fc-es``).
    """
    with tempfile.TemporaryDirectory(prefix="faceclust-infomap-") as tmp:
        path = os.path.join(tmp, "modules.clu")
        im.write_clu(path)
        table = np.loadtxt(path, comments="#", usecols=(0, 1), dtype=np.int64, ndmin=2)
    return table[:, 0], table[:, 1]


def dynamic_threshold_components(
    src: np.ndarray,
    dst: np.ndarray,
    scores: np.ndarray,
    n: int,
    max_size: int,
    step: float = 0.05,
    max_iter: int = 100,
    *,
    pool: Literal["last", "avg", "max"] = "last",
    leftover: Literal["merge", "components"] = "merge",
) -> np.ndarray:
    """Connected components with a cluster-size cap, raising the threshold on big ones (CDP).

    The "dynamic threshold" partition of CDP / learn-to-cluster
    (``graph_clustering_dynamic_th``), over undirected edges ``src -- dst``:

    1. Round 0 uses every edge: components of size <= ``max_size`` are final,
       the nodes of bigger ones "remain".
    2. With ``th`` starting at ``min(scores)``, each round sets
       ``th <- th + (1 - th) * step`` and recomputes components among the
       remaining nodes using only edges with ``score >= th``; again components
       within the cap are final and the rest remain.
    3. After ``max_iter`` rounds, nodes still remaining form **one** cluster
       (``leftover="merge"``, the reference behaviour) or their current
       components (``leftover="components"``).

    An edge listed twice (either direction) takes the score of its last
    occurrence (``pool="last"``, the reference default), the mean (``"avg"``)
    or the max (``"max"``). Nodes without edges are singletons. Each round is
    one vectorised scipy connected-components call.
    """
    src, dst, scores = _check_edges(src, dst, scores, n, "dynamic threshold")
    if isinstance(max_size, bool) or not isinstance(max_size, int | np.integer) or max_size < 1:
        raise ParameterError(f"max_size must be an integer >= 1, got {max_size!r}")
    if not (isinstance(step, int | float) and 0 < step <= 1):
        raise ParameterError(f"step must be a number in (0, 1], got {step!r}")
    if isinstance(max_iter, bool) or not isinstance(max_iter, int) or max_iter < 0:
        raise ParameterError(f"max_iter must be an integer >= 0, got {max_iter!r}")
    if pool not in ("last", "avg", "max"):
        raise ParameterError(f"pool must be 'last', 'avg' or 'max', got {pool!r}")
    if leftover not in ("merge", "components"):
        raise ParameterError(f"leftover must be 'merge' or 'components', got {leftover!r}")

    labels = np.full(n, -1, dtype=np.int64)
    off = src != dst
    lo = np.minimum(src[off], dst[off])
    hi = np.maximum(src[off], dst[off])
    w = scores[off]
    if len(lo) == 0:
        return relabel(labels)
    key = lo * n + hi
    uniq, inv = np.unique(key, return_inverse=True)
    inv = inv.reshape(-1)
    if pool == "last":
        last = np.zeros(len(uniq), dtype=np.int64)
        last[inv] = np.arange(len(inv))  # fancy assignment: the last write wins
        w = w[last]
    elif pool == "avg":
        w = np.bincount(inv, weights=w) / np.bincount(inv)
    else:
        mx = np.full(len(uniq), -np.inf)
        np.maximum.at(mx, inv, w)
        w = mx
    lo, hi = uniq // n, uniq % n

    next_label = 0
    remain = np.zeros(n, dtype=bool)
    remain[lo] = True
    remain[hi] = True
    th = float(w.min())
    for rnd in range(max_iter + 1):
        if rnd > 0:
            th = th + (1.0 - th) * step
        nodes = np.flatnonzero(remain)
        local = np.full(n, -1, dtype=np.int64)
        local[nodes] = np.arange(len(nodes))
        sel = remain[lo] & remain[hi] & ((w >= th) if rnd > 0 else True)
        m = len(nodes)
        adj = sp.csr_matrix(
            (np.ones(int(sel.sum()), dtype=np.int8), (local[lo[sel]], local[hi[sel]])),
            shape=(m, m),
        )
        n_comp, comp = _cc(adj, directed=False)
        size = np.bincount(comp, minlength=n_comp)
        fits = size[comp] <= max_size
        if rnd == max_iter and leftover == "components":
            fits[:] = True
        done = nodes[fits]
        labels[done] = next_label + comp[fits]
        next_label += n_comp
        remain[done] = False
        if not remain.any():
            break
        lo, hi, w = lo[sel], hi[sel], w[sel]  # edges below th never come back
    if remain.any():  # leftover == "merge" after max_iter rounds
        labels[remain] = next_label
    return relabel(labels)
