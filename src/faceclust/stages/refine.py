"""Refine stage: re-score each kNN slot from the structure of the neighbourhoods.

Every function takes a :class:`~faceclust.knn.KnnGraph` and returns an
``[N, k]`` float32 score array aligned with ``graph.ids`` (same rows, same
columns, the original kNN order, self in column 0). Missing neighbours
(id -1) get score 0.

* :func:`nep` -- FC-ES's neighbour-based edge probability (sigma = 0.5).
* :func:`rank_order_distance` -- the approximate rank-order distance of the
  learn-to-cluster ARO baseline (a distance: lower is closer).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import ParameterError
from ..knn import KnnGraph

__all__ = ["nep", "nep_rows", "rank_order_distance", "transition_probabilities"]

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

