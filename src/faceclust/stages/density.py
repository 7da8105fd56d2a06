"""LCE density stage (LCE-PCENet, CVPR'23): connectivity -> density -> E_d / E_s edges.

Inputs are a kNN table ``ids [N, k]`` (column 0 = self, -1 = missing), its
similarities ``sims [N, k]`` and a per-slot connectivity ``conn [N, k]`` in
[0, 1] (LCENet's P(neighbour has the node's identity), any source works).

1. :func:`symmetric_connectivity` -- ``c_ij = (C[i, u] + C[u, i]) / 2`` for
   ``u = ids[i, j]``, where a reverse entry that is not in u's list counts as 0,
   so a non-reciprocal pair is halved (part of the density definition upstream).
2. :func:`lce_density` -- ``rho_i = sum_{j >= 1} c_ij * s_ij``.
3. :func:`density_edges` -- per node, among neighbours of strictly higher
   density than the node, E_d = the one maximising ``c * s`` (at most one edge,
   none for a local density peak) and E_s = every other one with
   ``c * s >= tau_s``.
4. :func:`tau_s_top3` -- ``tau_s`` = mean over nodes of the mean of the three
   nearest non-self similarities; :func:`tau_s_weighted` -- NSR-FC's variant,
   ``0.7 s(1) + 0.2 s(2) + 0.1 s(3)`` of the three largest, averaged over nodes.

Chen et al. ("On Mitigating Hard Clusters", ECCV'22) density-peak clustering on a
learned distance table ``dist [N, k]`` (``1 - P(same identity)``, self included):

5. :func:`ndde_density` -- approximate NDDe: ``P_ij = exp(-d_ij / sigma)`` over
   each row's ``m`` nearest slots, row-normalised; density = in-flow
   ``sum_i P_iv``.
6. :func:`tpdi_distance` -- TPDi: ``1 - sum_{w in N(i) & N(u)} sqrt(P_iw P_uw)``
   with ``P`` the row-normalised ``exp(-d / sigma)`` over all k slots.
7. :func:`dpc_links` -- DPC: each node links to its nearest neighbour (by the
   given distance) whose density is >= its own, when that distance is < tau.

All functions are pure and chunked over rows (temporaries are ``[B, k]``).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..errors import InputError, ParameterError

__all__ = [
    "density_edges",
    "dpc_links",
    "lce_density",
    "ndde_density",
    "sort_rows",
    "symmetric_connectivity",
    "tau_s_top3",
    "tau_s_weighted",
    "tpdi_distance",
]

_ROWS = 1 << 15


def _check(ids: np.ndarray, *arrays: np.ndarray) -> tuple[np.ndarray, ...]:
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise InputError(f"density stage: ids must be a 2-D integer array, got {ids.shape} {ids.dtype}")
    out = [ids]
    for a in arrays:
        a = np.asarray(a, dtype=np.float32)
        if a.shape != ids.shape:
            raise InputError(f"density stage: arrays must have the shape of ids {ids.shape}, got {a.shape}")
        out.append(a)
    return tuple(out)


def symmetric_connectivity(ids: np.ndarray, conn: np.ndarray) -> np.ndarray:
    """``[N, k]`` float32: ``(conn[i, j] + conn[u, j'] ) / 2`` with ``ids[u, j'] == i``, else halved.

    ``u = ids[i, j]``; when ``i`` is not in ``u``'s list the reverse term is 0
    (LCE-PCENet averages the sparse matrix with its transpose). Missing slots
    (``u = -1``) get 0; the self slot keeps its own value. O(N k^2) worst case,
    compiled, parallel over rows.
    """
    ids, conn = _check(ids, conn)
    return _sym_kernel(np.ascontiguousarray(ids), np.ascontiguousarray(conn))


@njit(parallel=True, cache=True)
def _sym_kernel(ids, conn):  # pragma: no cover - compiled
    n, k = ids.shape
    out = np.zeros((n, k), dtype=np.float32)
    for i in prange(n):
        for j in range(k):
            u = ids[i, j]
            if u < 0:
                continue
            rev = np.float32(0.0)
            for t in range(k):
                if ids[u, t] == i:
                    rev = conn[u, t]
                    break
            out[i, j] = (conn[i, j] + rev) * np.float32(0.5)
    return out


def lce_density(ids: np.ndarray, sims: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``rho [N]`` float32: ``sum_{j >= 1} c_ij * s_ij`` over present, non-self slots."""
    ids, sims, c = _check(ids, sims, c)
    n = ids.shape[0]
    rho = np.empty(n, dtype=np.float32)
    for s in range(0, n, _ROWS):
        i, si, ci = ids[s : s + _ROWS], sims[s : s + _ROWS], c[s : s + _ROWS]
        keep = (i >= 0) & (i != np.arange(s, s + len(i))[:, None])
        rho[s : s + _ROWS] = np.where(keep, ci * np.where(keep, si, 0.0), 0.0).sum(axis=1)
    return rho


def tau_s_top3(ids: np.ndarray, sims: np.ndarray) -> float:
    """LCE's similarity threshold: mean over nodes of the mean of columns 1..3 of ``sims``.

    Missing neighbours are left out of a node's mean (a node with none is skipped).
    """
    ids, sims = _check(ids, sims)
    top_i, top_s = ids[:, 1:4], sims[:, 1:4].astype(np.float64)
    present = top_i >= 0
    cnt = present.sum(axis=1)
    ok = cnt > 0
    if not ok.any():
        return float("inf")
    row_mean = np.where(present, top_s, 0.0).sum(axis=1)[ok] / cnt[ok]
    return float(row_mean.mean())


def tau_s_weighted(
    ids: np.ndarray, sims: np.ndarray, weights: tuple[float, ...] = (0.7, 0.2, 0.1)
) -> float:
    """NSR-FC's ``tau_s``: per node the weighted sum of its three largest non-self
    similarities (``0.7 s(1) + 0.2 s(2) + 0.1 s(3)``, largest first), averaged over nodes.

    Unlike :func:`tau_s_top3` the row need not be sorted by ``sims`` (NSR-FC's
    refined similarities keep the kNN order). A node with fewer than
    ``len(weights)`` present neighbours uses the weights of the ones it has,
    renormalised; a node with none is skipped.
    """
    ids, sims = _check(ids, sims)
    w = np.asarray(weights, dtype=np.float64)
    m = len(w)
    keep = (ids >= 0) & (ids != np.arange(len(ids))[:, None])
    s = np.where(keep, sims, -np.inf).astype(np.float64)
    top = -np.sort(-s, axis=1)[:, :m]
    if top.shape[1] < m:
        top = np.pad(top, ((0, 0), (0, m - top.shape[1])), constant_values=-np.inf)
    present = np.isfinite(top)
    wsum = (present * w).sum(axis=1)
    ok = wsum > 0
    if not ok.any():
        return float("inf")
    val = np.where(present, top, 0.0) @ w
    return float((val[ok] / wsum[ok]).mean())


def sort_rows(ids: np.ndarray, dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row of ``(ids, dist)`` sorted by ``dist`` ascending (stable); missing slots
    (``ids == -1``) last with ``dist = inf``."""
    ids, dist = _check(ids, dist)
    d = np.where(ids >= 0, dist, np.inf).astype(np.float32)
    order = np.argsort(d, axis=1, kind="stable")
    return (np.ascontiguousarray(np.take_along_axis(ids, order, axis=1)),
            np.ascontiguousarray(np.take_along_axis(d, order, axis=1)))


def _row_probabilities(ids: np.ndarray, dist: np.ndarray, sigma: float) -> np.ndarray:
    """``exp(-d / sigma)`` over present slots, divided by (row sum + 1e-5) (Chen et al.)."""
    if not sigma > 0:
        raise ParameterError(f"sigma must be > 0, got {sigma!r}")
    present = ids >= 0
    e = np.where(present, np.exp(-np.where(present, dist, 0.0).astype(np.float64) / sigma), 0.0)
    return e / (e.sum(axis=1, keepdims=True) + 1e-5)


def ndde_density(ids: np.ndarray, dist: np.ndarray, sigma: float = 0.5, m: int = 20) -> np.ndarray:
    """Chen et al.'s approximate NDDe density ``[N]`` float32 (in-flow of a one-step walk).

    Rows must be sorted by ``dist`` ascending (:func:`sort_rows`); the first ``m``
    slots (self included, as in the reference's kNN rows) give
    ``P_ij = exp(-d_ij / sigma) / (sum_j exp(-d_ij / sigma) + 1e-5)`` and
    ``density_v = sum_i P_iv``. Missing slots carry no weight.
    """
    ids, dist = _check(ids, dist)
    if isinstance(m, bool) or not isinstance(m, int | np.integer) or m < 1:
        raise ParameterError(f"m must be a positive integer, got {m!r}")
    i, d = ids[:, :m], dist[:, :m]
    p = _row_probabilities(i, d, sigma)
    present = i >= 0
    return np.bincount(i[present], weights=p[present], minlength=len(ids)).astype(np.float32)


def tpdi_distance(ids: np.ndarray, dist: np.ndarray, sigma: float = 0.05) -> np.ndarray:
    """Chen et al.'s TPDi distance of every slot, ``[N, k]`` float32 (missing: inf).

    ``Q_i(w) = sqrt(P_i(w))`` with ``P_i`` the row-normalised ``exp(-d / sigma)``
    over all present slots of row i (self included);
    ``tpdi(i, u) = 1 - sum_{w in N(i) & N(u)} Q_i(w) Q_u(w)`` (a transition-
    probability overlap: 0 for identical rows). O(N k^2 log k), compiled,
    parallel over rows, memory O(N k).
    """
    ids, dist = _check(ids, dist)
    q = np.sqrt(_row_probabilities(ids, dist, sigma)).astype(np.float32)
    order = np.argsort(ids, axis=1, kind="stable")
    sid = np.ascontiguousarray(np.take_along_axis(ids, order, axis=1)).astype(np.int64)
    sq = np.ascontiguousarray(np.take_along_axis(q, order, axis=1))
    return _tpdi_kernel(np.ascontiguousarray(ids).astype(np.int64), sid, sq)


@njit(parallel=True, cache=True)
def _tpdi_kernel(ids, sid, sq):  # pragma: no cover - compiled
    n, k = ids.shape
    out = np.full((n, k), np.inf, dtype=np.float32)
    for i in prange(n):
        for j in range(k):
            u = ids[i, j]
            if u < 0:
                continue
            a, b, acc = 0, 0, 0.0
            while a < k and b < k:
                x, y = sid[i, a], sid[u, b]
                if x < 0:
                    a += 1
                elif y < 0:
                    b += 1
                elif x == y:
                    acc += sq[i, a] * sq[u, b]
                    a += 1
                    b += 1
                elif x < y:
                    a += 1
                else:
                    b += 1
            out[i, j] = np.float32(1.0 - acc)
    return out


def dpc_links(
    ids: np.ndarray, dist: np.ndarray, density: np.ndarray, tau: float = 0.7
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chen et al.'s DPC linking: at most one edge per node, ``(src, dst, dist)``.

    For node i, scan its slots by ``dist`` ascending (ties: slot order) and take
    the first neighbour ``u != i`` with ``density[u] >= density[i]``; link
    ``i -> u`` when ``dist < tau`` (strict). Since the scan is ascending, this is
    "the nearest denser-or-equal neighbour, if nearer than tau" (``max_conn = 1``).
    A node with no such neighbour is a density peak (no edge).
    """
    ids, dist = _check(ids, dist)
    rho = np.asarray(density, dtype=np.float32)
    n = len(ids)
    if rho.shape != (n,):
        raise InputError(f"dpc_links: density must have shape ({n},), got {rho.shape}")
    srcs, dsts, ws = [], [], []
    for s in range(0, n, _ROWS):
        i, d = sort_rows(ids[s : s + _ROWS], dist[s : s + _ROWS])
        rows = np.arange(s, s + len(i))
        present = i >= 0
        ok = present & (i != rows[:, None]) & (rho[np.where(present, i, 0)] >= rho[rows][:, None])
        first = ok.argmax(axis=1)
        has = ok[np.arange(len(i)), first]
        dd = d[np.arange(len(i)), first]
        link = has & (dd < tau)
        srcs.append(rows[link])
        dsts.append(i[link, first[link]])
        ws.append(dd[link])
    return _cat(list(zip(srcs, dsts, ws, strict=True)))


def density_edges(
    ids: np.ndarray, sims: np.ndarray, c: np.ndarray, rho: np.ndarray, tau_s: float
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """E_d and E_s edge lists ``(src, dst, score)`` (int64, int64, float32; score = ``c * s``).

    ``H_ij = rho[ids[i, j]] > rho[ids[i, 0]]`` (strict; column 0 is self).
    ``score_ij = c_ij * s_ij`` where H holds, else 0. E_d: ``j* = argmax_j
    score_ij`` (first on ties); no edge when ``j* = 0``, which is also the case
    when every score is <= 0 (a local density peak, or a row of equal
    densities). E_s: every slot ``j >= 1`` with H, ``score >= tau_s`` and
    ``j != j*``, as unordered pairs de-duplicated (first occurrence kept,
    listed as ``(min, max)``). The E_d exclusion is by slot, before any
    verification, as upstream: an E_d edge the verifier rejects cannot come
    back through E_s.
    """
    ids, sims, c = _check(ids, sims, c)
    rho = np.asarray(rho, dtype=np.float32)
    n, k = ids.shape
    if rho.shape != (n,):
        raise InputError(f"density_edges: rho must have shape ({n},), got {rho.shape}")
    d_parts, s_parts = [], []
    for s in range(0, n, _ROWS):
        i, si, ci = ids[s : s + _ROWS], sims[s : s + _ROWS], c[s : s + _ROWS]
        rows = np.arange(len(i))
        present = i >= 0
        nbr_rho = np.where(present, rho[np.where(present, i, 0)], -np.inf)
        h = present & (nbr_rho > nbr_rho[:, :1])
        h[:, 0] = False
        score = np.where(h, ci * np.where(present, si, 0.0), 0.0).astype(np.float32)
        jstar = score.argmax(axis=1)
        has = jstar > 0
        r = rows[has]
        d_parts.append((s + r, i[r, jstar[r]].astype(np.int64), score[r, jstar[r]]))
        es = h & (score >= np.float32(tau_s))
        es[rows, jstar] = False
        rr, cc = np.nonzero(es)
        s_parts.append((s + rr, i[rr, cc].astype(np.int64), score[rr, cc]))
    e_d = _cat(d_parts)
    src, dst, w = _cat(s_parts)
    if len(src):
        from .select import unique_pairs

        src, dst, w = unique_pairs(src, dst, w)
    return e_d, (src, dst, w.astype(np.float32))


def _cat(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if not parts:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return (
        np.concatenate([p[0] for p in parts]).astype(np.int64),
        np.concatenate([p[1] for p in parts]).astype(np.int64),
        np.concatenate([p[2] for p in parts]).astype(np.float32),
    )

