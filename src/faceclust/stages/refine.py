"""Refine stage: re-score each kNN slot from the structure of the neighbourhoods.

Every function takes a :class:`~faceclust.knn.KnnGraph` and returns an
``[N, k]`` float32 score array aligned with ``graph.ids`` (same rows, same
columns, the original kNN order, self in column 0). Missing neighbours
(id -1) get score 0.

* :func:`nep` -- FC-ES's neighbour-based edge probability (sigma = 0.5).
* :func:`rank_order_distance` -- the approximate rank-order distance of the
  learn-to-cluster ARO baseline (a distance: lower is closer).
* :func:`structure_distance` / :func:`structure_space` -- Ada-NETS's k-reciprocal
  Jaccard re-ranking (a distance; ``structure_space`` also re-sorts each row).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._progress import progress
from ..errors import ParameterError
from ..knn import KnnGraph

__all__ = [
    "STRUCTURE_LAMBDA",
    "jaccard_distance",
    "nep",
    "nep_rows",
    "rank_order_distance",
    "reciprocal_expansion",
    "structure_distance",
    "structure_space",
    "transition_probabilities",
]

_ROWS_PER_TASK = 4096  # rows per parallel task (each task owns an N-sized scratch array)
ARO_ABSENT = 9999.0  # rank-order distance of a pair whose reverse link is missing


def transition_probabilities(graph: KnnGraph, sigma: float = 0.5) -> np.ndarray:
    """Row-stochastic ``P [N, k]`` float32 over each kNN list (FC-ES, NEP steps 1-3).

    Similarities are clipped to [0, 1], turned into squared distances
    ``d = 2 - 2 a``, weighted ``exp(-d / sigma)`` and normalised over the
    present entries of the row (self included). Missing entries get 0.
    """
    if not (isinstance(sigma, int | float) and not isinstance(sigma, bool) and sigma > 0):
        raise ParameterError(f"sigma must be a positive number, got {sigma!r}")
    valid = graph.valid
    out = np.empty(graph.ids.shape, dtype=np.float32)
    step = 1 << 16
    for start in range(0, graph.n, step):
        a = np.clip(graph.sims[start : start + step].astype(np.float64), 0.0, 1.0)
        e = np.exp(-(2.0 - 2.0 * a) / float(sigma))
        e[~valid[start : start + step]] = 0.0
        e /= e.sum(axis=1, keepdims=True)
        out[start : start + step] = e
    return out


def nep(graph: KnnGraph, sigma: float = 0.5) -> np.ndarray:
    """Neighbour-based edge probability of every kNN slot, ``[N, k]`` float32 (FC-ES).

    For node i and each entry u of its list ``N(i)``::

        NEP(i, u) = 1/2 * sum over w in N(i) & N(u) of [P_i(w) + P_u(w)]

    with ``P`` from :func:`transition_probabilities`; a term whose ``P_u(w)``
    is exactly 0 (underflow) is left out. NEP lies in [0, 1], is symmetric in
    form, and is returned in the original kNN order (column 0 = self, where
    it is 1). Missing slots get 0. O(N k^2) time, O(N k) memory, parallel
    over rows (numba threads).
    """
    p = transition_probabilities(graph, sigma)
    ids = np.ascontiguousarray(graph.ids)
    return nep_rows(ids, p, 0, graph.n)


def nep_rows(ids: np.ndarray, p: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """NEP of rows ``lo <= i < hi`` only, ``[hi - lo, k]``: the kernel of :func:`nep`.

    Reads the lists of all points (``ids``, ``p`` from
    :func:`transition_probabilities`), so blocks of rows can be scored
    independently, e.g. on Ray workers (:mod:`faceclust.distributed`).
    """
    return _nep_kernel(ids, p, _ROWS_PER_TASK, int(lo), int(hi))


@njit(parallel=True, cache=True)
def _nep_kernel(ids, p, rows_per_task, row_lo, row_hi):  # pragma: no cover - compiled
    n, k = ids.shape
    out = np.zeros((row_hi - row_lo, k), dtype=np.float32)
    n_tasks = (row_hi - row_lo + rows_per_task - 1) // rows_per_task
    for t in prange(n_tasks):
        # slot[w] = 1 + column of w in the current row i's list, 0 if absent
        slot = np.zeros(n, dtype=np.int32)
        lo = row_lo + t * rows_per_task
        hi = min(row_hi, lo + rows_per_task)
        for i in range(lo, hi):
            for a in range(k):
                w = ids[i, a]
                if w >= 0:
                    slot[w] = a + 1
            for b in range(k):
                u = ids[i, b]
                if u < 0:
                    continue
                acc = 0.0
                for c in range(k):
                    w = ids[u, c]
                    if w < 0:
                        continue
                    s = slot[w]
                    if s > 0:
                        pu = p[u, c]
                        if pu != 0.0:
                            acc += p[i, s - 1] + pu
                out[i - row_lo, b] = 0.5 * acc
            for a in range(k):
                w = ids[i, a]
                if w >= 0:
                    slot[w] = 0
    return out


def rank_order_distance(graph: KnnGraph) -> np.ndarray:
    """Approximate rank-order distance of every kNN slot, ``[N, k]`` float32 (ARO baseline).

    For node i and its neighbour j in column p >= 1 (``O_i = p``): if i is not
    in j's list the distance is 9999; otherwise, with ``q`` the column of i in
    j's list and ``O_j = q + 1``::

        d_ij = |first O_i entries of N(i) not in N(j)|
        d_ji = |first O_j entries of N(j) not in N(i)|
        D(i, j) = (d_ij + d_ji) / min(O_i, O_j)

    Column 0 (self) is 0 and missing slots are 9999. Semantics follow the
    learn-to-cluster ``aro`` baseline, including its asymmetric ``O_i``/``O_j``.
    """
    ids = np.ascontiguousarray(graph.ids)
    return _aro_kernel(ids, _ROWS_PER_TASK, ARO_ABSENT)


@njit(parallel=True, cache=True)
def _aro_kernel(ids, rows_per_task, absent):  # pragma: no cover - compiled
    n, k = ids.shape
    out = np.full((n, k), absent, dtype=np.float32)
    n_tasks = (n + rows_per_task - 1) // rows_per_task
    for t in prange(n_tasks):
        in_i = np.zeros(n, dtype=np.int32)  # 1 + column in the current row i's list
        in_j = np.zeros(n, dtype=np.uint8)  # member of the current neighbour j's list
        lo = t * rows_per_task
        hi = min(n, lo + rows_per_task)
        for i in range(lo, hi):
            for a in range(k):
                w = ids[i, a]
                if w >= 0:
                    in_i[w] = a + 1
            out[i, 0] = 0.0
            for p in range(1, k):
                j = ids[i, p]
                if j < 0:
                    continue
                q = -1
                for c in range(k):
                    w = ids[j, c]
                    if w == i:
                        q = c
                        break
                if q < 0:
                    continue
                for c in range(k):
                    w = ids[j, c]
                    if w >= 0:
                        in_j[w] = 1
                d_ij = 0
                for a in range(p):
                    w = ids[i, a]
                    if w >= 0 and in_j[w] == 0:
                        d_ij += 1
                d_ji = 0
                for c in range(q + 1):
                    w = ids[j, c]
                    if w >= 0 and in_i[w] == 0:
                        d_ji += 1
                o_j = q + 1
                out[i, p] = (d_ij + d_ji) / min(p, o_j)
                for c in range(k):
                    w = ids[j, c]
                    if w >= 0:
                        in_j[w] = 0
            for a in range(k):
                w = ids[i, a]
                if w >= 0:
                    in_i[w] = 0
    return out



# --------------------------------------------------------------------------------------
# Structure space (Ada-NETS, ICLR'22; reused by NSR-FC): k-reciprocal / Jaccard re-ranking
# --------------------------------------------------------------------------------------

#: Ada-NETS's weight of the original cosine distance in the structure distance.
STRUCTURE_LAMBDA = 0.3
_STRUCT_BLOCK = 16384  # rows per progress step of the structure-space kernels


def _reciprocal_mask(ids: np.ndarray, kk: int) -> np.ndarray:
    """``[N, kk]`` bool: slot (i, p) holds a j with i among j's first ``kk`` entries too."""
    head = np.ascontiguousarray(ids[:, :kk])
    srt = np.sort(head, axis=1)  # missing (-1) first; searched by binary search
    return _reciprocal_kernel(head, srt)


@njit(parallel=True, cache=True)
def _reciprocal_kernel(head, srt):  # pragma: no cover - compiled
    n, kk = head.shape
    out = np.zeros((n, kk), dtype=np.bool_)
    for i in prange(n):
        for p in range(kk):
            j = head[i, p]
            if j < 0:
                continue
            row = srt[j]
            pos = np.searchsorted(row, i)
            if pos < kk and row[pos] == i:
                out[i, p] = True
    return out


@njit(parallel=True, cache=True)
def _rstar_pass(ids, rec, rec_h, lo, hi, rows_per_task, indptr, out, fill):  # pragma: no cover
    """Expanded set R*(i) for rows lo..hi-1: sizes into indptr[1:] (pass 1) or members (pass 2)."""
    n, k = ids.shape
    kh = rec_h.shape[1]
    n_tasks = (hi - lo + rows_per_task - 1) // rows_per_task
    for t in prange(n_tasks):
        mark = np.zeros(n, dtype=np.uint8)  # 1 = in R(i, k), 2 = added by the expansion
        added = np.empty(k * kh + k, dtype=ids.dtype)
        a0 = lo + t * rows_per_task
        a1 = min(hi, a0 + rows_per_task)
        for i in range(a0, a1):
            m = 0
            for p in range(k):
                if rec[i, p]:
                    j = ids[i, p]
                    mark[j] = 1
                    added[m] = j
                    m += 1
            m_r = m
            for a in range(m_r):
                j = added[a]
                size_h = 0
                inter = 0
                for c in range(kh):
                    if rec_h[j, c]:
                        size_h += 1
                        if mark[ids[j, c]] == 1:
                            inter += 1
                if 3 * inter >= 2 * size_h:  # |R(j,k/2) & R(i,k)| >= 2/3 |R(j,k/2)|
                    for c in range(kh):
                        if rec_h[j, c]:
                            w = ids[j, c]
                            if mark[w] == 0:
                                mark[w] = 2
                                added[m] = w
                                m += 1
            if fill:
                start = indptr[i - lo]
                for a in range(m):
                    out[start + a] = added[a]
            else:
                indptr[i - lo + 1] = m
            for a in range(m):
                mark[added[a]] = 0
    return indptr


@njit(parallel=True, cache=True)
def _jaccard_kernel(ids, indptr, members, lo, hi, rows_per_task):  # pragma: no cover - compiled
    """Jaccard distance 1 - |R*(i) & R*(j)| / |R*(i) | R*(j)| for the slots of rows lo..hi-1."""
    n, k = ids.shape
    out = np.ones((hi - lo, k), dtype=np.float32)
    n_tasks = (hi - lo + rows_per_task - 1) // rows_per_task
    for t in prange(n_tasks):
        mark = np.zeros(n, dtype=np.uint8)
        a0 = lo + t * rows_per_task
        a1 = min(hi, a0 + rows_per_task)
        for i in range(a0, a1):
            for a in range(indptr[i], indptr[i + 1]):
                mark[members[a]] = 1
            size_i = indptr[i + 1] - indptr[i]
            for p in range(k):
                j = ids[i, p]
                if j < 0:
                    continue
                inter = 0
                for a in range(indptr[j], indptr[j + 1]):
                    inter += mark[members[a]]
                union = size_i + (indptr[j + 1] - indptr[j]) - inter
                if union > 0:
                    out[i - lo, p] = 1.0 - inter / union
            for a in range(indptr[i], indptr[i + 1]):
                mark[members[a]] = 0
    return out


def _struct_k(graph: KnnGraph, k: int | None) -> int:
    if k is None:
        return graph.k
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 2 <= k <= graph.k:
        raise ParameterError(f"k must be an integer in [2, {graph.k}] (the graph's k), got {k!r}")
    return int(k)


def reciprocal_expansion(graph: KnnGraph, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The expanded k-reciprocal sets ``R*(i)`` of Ada-NETS as CSR ``(indptr [N+1], members)``.

    With ``N_k(i)`` the first ``k`` entries of row i (self included) and
    ``R(i, k) = {j in N_k(i) : i in N_k(j)}``::

        R*(i) = R(i, k)  |  union of R(j, k//2) over j in R(i, k) with
                            |R(j, k//2) & R(i, k)| >= 2/3 |R(j, k//2)|

    (set-based, as ``tool/struct_space.py``: no Gaussian weights, no query
    expansion). Members of a row are in discovery order. Computed in blocks of
    rows (numba-parallel within a block, a progress bar over blocks); memory
    is ``O(N k)`` plus the sets themselves.
    """
    k = _struct_k(graph, k)
    ids = np.ascontiguousarray(graph.ids[:, :k])
    rec = _reciprocal_mask(ids, k)
    rec_h = _reciprocal_mask(ids, max(1, k // 2))
    n = graph.n
    sizes = np.zeros(n + 1, dtype=np.int64)
    chunks = []
    with progress(total=n, desc="structure space: R*", unit="row") as bar:
        for lo in range(0, n, _STRUCT_BLOCK):
            hi = min(n, lo + _STRUCT_BLOCK)
            local = np.zeros(hi - lo + 1, dtype=np.int64)
            _rstar_pass(ids, rec, rec_h, lo, hi, 256, local, np.zeros(0, ids.dtype), False)
            sizes[lo + 1 : hi + 1] = local[1:]
            indptr = np.cumsum(local)
            members = np.empty(int(indptr[-1]), dtype=ids.dtype)
            _rstar_pass(ids, rec, rec_h, lo, hi, 256, indptr, members, True)
            chunks.append(members)
            bar.update(hi - lo)
    return np.cumsum(sizes), (np.concatenate(chunks) if chunks else np.zeros(0, ids.dtype))


def jaccard_distance(graph: KnnGraph, k: int | None = None) -> np.ndarray:
    """Jaccard distance of the expanded k-reciprocal sets for every slot, ``[N, k]`` float32.

    ``jd_ij = 1 - |R*(i) & R*(j)| / |R*(i) | R*(j)|`` (see
    :func:`reciprocal_expansion`), aligned with ``graph.ids[:, :k]`` (column 0,
    self, is 0). Missing slots get 1. Row blocks, bounded memory, progress bar.
    """
    k = _struct_k(graph, k)
    indptr, members = reciprocal_expansion(graph, k)
    ids = np.ascontiguousarray(graph.ids[:, :k])
    out = np.empty(ids.shape, dtype=np.float32)
    with progress(total=graph.n, desc="structure space: Jaccard", unit="row") as bar:
        for lo in range(0, graph.n, _STRUCT_BLOCK):
            hi = min(graph.n, lo + _STRUCT_BLOCK)
            out[lo:hi] = _jaccard_kernel(ids, indptr, members, lo, hi, 256)
            bar.update(hi - lo)
    return out


def structure_distance(
    graph: KnnGraph, lam: float = STRUCTURE_LAMBDA, k: int | None = None
) -> np.ndarray:
    """Ada-NETS structure distance ``nd = (1 - lam) jd + lam (1 - cos)``, ``[N, k]`` float32.

    ``jd`` from :func:`jaccard_distance`, ``1 - cos`` the original cosine
    distance; ``lam = 0.3`` as the original (hard-coded there). Aligned with
    ``graph.ids[:, :k]`` (the kNN order); missing slots get ``inf``.
    """
    if isinstance(lam, bool) or not isinstance(lam, int | float) or not 0.0 <= lam <= 1.0:
        raise ParameterError(f"lam must be a number in [0, 1], got {lam!r}")
    k = _struct_k(graph, k)
    jd = jaccard_distance(graph, k)
    sims = graph.sims[:, :k]
    nd = ((1.0 - lam) * jd + lam * (1.0 - sims)).astype(np.float32)
    nd[graph.ids[:, :k] < 0] = np.inf
    return nd


def structure_space(
    graph: KnnGraph, lam: float = STRUCTURE_LAMBDA, k: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The kNN lists re-ranked by structure distance: ``(ids [N, k], nd [N, k])``.

    Each row's first ``k`` candidates (the set is not enlarged) sorted by
    :func:`structure_distance` ascending, stably (ties keep the kNN order), as
    Ada-NETS's ``struct_space.py``. Self has ``nd = 0`` and stays in column 0;
    missing neighbours (id -1, ``nd = inf``) go last.
    """
    k = _struct_k(graph, k)
    nd = structure_distance(graph, lam, k)
    nd[:, 0] = 0.0  # self (J = 1, cos = 1 up to rounding) stays first
    order = np.empty(nd.shape, dtype=np.int64)
    order[:, 0] = 0
    order[:, 1:] = 1 + np.argsort(nd[:, 1:], axis=1, kind="stable")
    ids = np.take_along_axis(graph.ids[:, :k], order, axis=1)
    return np.ascontiguousarray(ids), np.ascontiguousarray(np.take_along_axis(nd, order, axis=1))
