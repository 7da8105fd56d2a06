"""Select stage: choose which kNN slots become edges.

Inputs are a neighbour-id array ``ids [N, k]`` (``graph.ids``; -1 = missing,
column 0 = self) and an aligned score array ``scores [N, k]`` (``graph.sims``
or a refined score from :mod:`faceclust.stages.refine`). Outputs are directed
edge lists ``(src, dst, w)``: int64, int64, float32 arrays of one length,
listed in row-major order of the kNN table (row i's edges in column order).
Self entries and missing neighbours never become edges.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit, prange

from ..errors import InputError, ParameterError
from ..knn import KnnGraph

__all__ = [
    "early_stop_counts", "early_stop_edges", "knn_distance_matrix", "threshold_edges", "unique_pairs",
]

_ROWS = 1 << 15  # rows per block (bounds temporary [B, k] arrays)


def _check_table(ids: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids)
    scores = np.asarray(scores)
    if ids.ndim != 2 or ids.shape != scores.shape:
        raise InputError(
            f"edge selection: ids and scores must be 2-D arrays of one shape, got "
            f"{ids.shape} and {scores.shape}"
        )
    if ids.dtype.kind not in "iu":
        raise InputError(f"edge selection: ids must be integers, got {ids.dtype}")
    return ids, scores


def _gather(
    ids: np.ndarray, scores: np.ndarray, keep: np.ndarray, start: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, cols = np.nonzero(keep)
    return (
        (rows + start).astype(np.int64),
        ids[rows, cols].astype(np.int64),
        scores[rows, cols].astype(np.float32),
    )


def _concat(parts: list[tuple[np.ndarray, ...]], n_arrays: int) -> tuple[np.ndarray, ...]:
    dtypes = (np.int64, np.int64, np.float32)
    if not parts:
        return tuple(np.zeros(0, dtype=dtypes[i]) for i in range(n_arrays))
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(n_arrays))


def threshold_edges(
    graph_or_ids: KnnGraph | np.ndarray,
    scores: np.ndarray | None = None,
    threshold: float | None = None,
    *,
    strict: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directed edges ``i -> ids[i, c]`` whose score passes ``threshold``.

    Parameters
    ----------
    graph_or_ids:
        A :class:`KnnGraph` (its ``ids``) or an ``[N, k]`` id array.
    scores:
        ``[N, k]`` scores aligned with the ids; default the graph's similarities.
    threshold:
        Keep ``score >= threshold`` (``score > threshold`` with ``strict``);
        ``None`` keeps every present, non-self entry.

    Returns
    -------
    (src, dst, w):
        int64, int64, float32 arrays in row-major kNN order; self (``dst == src``)
        and missing (-1) entries are never included.
    """
    if isinstance(graph_or_ids, KnnGraph):
        ids = graph_or_ids.ids
        if scores is None:
            scores = graph_or_ids.sims
    else:
        ids = graph_or_ids
        if scores is None:
            raise InputError("threshold_edges: scores are required when ids are given")
    ids, scores = _check_table(ids, scores)
    parts = []
    for start in range(0, ids.shape[0], _ROWS):
        bi = ids[start : start + _ROWS]
        bs = scores[start : start + _ROWS]
        keep = (bi >= 0) & (bi != np.arange(start, start + len(bi))[:, None])
        if threshold is not None:
            keep &= (bs > threshold) if strict else (bs >= threshold)
        parts.append(_gather(bi, bs, keep, start))
    return _concat(parts, 3)


def early_stop_counts(ids: np.ndarray, scores: np.ndarray, theta: float) -> np.ndarray:
    """``[N]`` int64: how many links :func:`early_stop_edges` gives each row (no cap)."""
    ids, scores = _check_table(ids, scores)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    return _early_stop_count(np.ascontiguousarray(ids), scores, np.float32(theta), ids.shape[1])


def early_stop_edges(
    ids: np.ndarray, scores: np.ndarray, theta: float, max_links: int | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """FC-ES edge selection: walk each row in kNN order and stop at the first score < theta.

    For row i the entries are visited in column order; the entry equal to i
    is skipped. Entries are linked (``i -> u``, weight = score) while
    ``score >= theta``; the first entry with ``score < theta`` (or NaN, or a
    missing neighbour) stops the walk, so later entries are dropped even when
    their score is ``>= theta`` again. ``max_links`` (optional) keeps at most
    that many links per row, the first ones in kNN order: Infomap's cost and
    memory grow with the number of links (see docs/benchmarks.md).

    Returns
    -------
    (src, dst, w, single):
        The directed edges (int64, int64, float32, row-major order) and a bool
        ``[N]`` mask of "single" nodes, those with no outgoing edge.
    """
    ids, scores = _check_table(ids, scores)
    if max_links is not None and (
        isinstance(max_links, bool) or not isinstance(max_links, int | np.integer) or max_links < 1
    ):
        raise ParameterError(f"max_links must be None or an integer >= 1, got {max_links!r}")
    cap = ids.shape[1] if max_links is None else int(max_links)
    ids = np.ascontiguousarray(ids)
    scores = np.ascontiguousarray(scores, dtype=np.float32)
    counts = _early_stop_count(ids, scores, np.float32(theta), cap)
    starts = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=starts[1:])
    src, dst, w = _early_stop_fill(ids, scores, np.float32(theta), cap, starts)
    return src, dst, w, counts == 0


@njit(parallel=True, cache=True)
def _early_stop_count(ids, scores, theta, cap):  # pragma: no cover - compiled
    n, k = ids.shape
    counts = np.zeros(n, dtype=np.int64)
    for i in prange(n):
        c = 0
        for a in range(k):
            u = ids[i, a]
            if u == i:
                continue
            if u < 0 or not scores[i, a] >= theta or c == cap:  # NaN fails >=
                break
            c += 1
        counts[i] = c
    return counts


@njit(parallel=True, cache=True)
def _early_stop_fill(ids, scores, theta, cap, starts):  # pragma: no cover - compiled
    n, k = ids.shape
    m = starts[n]
    src = np.empty(m, dtype=np.int64)
    dst = np.empty(m, dtype=np.int64)
    w = np.empty(m, dtype=np.float32)
    for i in prange(n):
        j = starts[i]
        end = starts[i + 1]
        for a in range(k):
            if j == end:
                break
            u = ids[i, a]
            if u == i:
                continue
            src[j] = i
            dst[j] = u
            w[j] = scores[i, a]
            j += 1
    return src, dst, w


def unique_pairs(
    src: np.ndarray, dst: np.ndarray, w: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """De-duplicate directed edges as unordered pairs ``(min, max)`` (learn-to-cluster ``filter_knns``).

    A pair listed twice (i -> j and j -> i) keeps the score of its **first**
    occurrence in the input order (row-major kNN order: the lower anchor row).
    Self loops are dropped. Output is sorted by ``(min, max)``.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    w = np.asarray(w)
    if not (src.shape == dst.shape == w.shape) or src.ndim != 1:
        raise InputError("unique_pairs: src, dst and w must be 1-D arrays of one length")
    off = src != dst
    src, dst, w = src[off], dst[off], w[off]
    lo = np.minimum(src, dst)
    hi = np.maximum(src, dst)
    n = int(hi.max()) + 1 if len(hi) else 1
    _, first = np.unique(lo * n + hi, return_index=True)
    return lo[first], hi[first], w[first]


def knn_distance_matrix(graph: KnnGraph, eps: float) -> sp.csr_matrix:
    """Row i: cosine distances to i's kNN entries within ``eps`` (self removed), ascending.

    Entries beyond eps are dropped up front: scikit-learn ignores them
    anyway (its radius test is ``<= eps``), and dropping them keeps the
    matrix small. Rows keep the kNN order (ascending distance), so
    scikit-learn does not need to re-sort them; explicit zero distances
    (duplicate points) stay stored entries.
    """
    dist = np.maximum(1.0 - graph.sims[:, 1:].astype(np.float64), 0.0)  # sims may round above 1
    ids = graph.ids[:, 1:]
    mask = (ids >= 0) & (dist <= eps)
    counts = mask.sum(axis=1)
    indptr = np.zeros(graph.n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    mat = sp.csr_matrix((dist[mask], ids[mask].astype(np.int64), indptr),
                        shape=(graph.n, graph.n))
    return mat
