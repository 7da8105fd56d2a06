"""Exact average linkage (mean cosine over all member pairs) from cluster vector sums.

For unit vectors the mean cosine between clusters A and B is ``S_A . S_B / (|A| |B|)``
with ``S`` the sum of a cluster's vectors, so the linkage is exact and costs O(D) per
cluster pair. Merges run in rounds of mutual best pairs (exact for a reducible linkage
such as the average). :func:`centroid_average_linkage` is the partition stage of
``auto``; :func:`merge_clusters` does the same on whole clusters (``incremental``'s
placement and refine); :func:`best_partner` and :func:`pair_dots` are their compiled kernels.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._progress import progress
from ..graph import group_sums, relabel
from ..knn import search_topk

__all__ = [
    "best_partner",
    "centroid_average_linkage",
    "linked_clusters",
    "merge_clusters",
    "pair_dots",
]


@njit(cache=True)
def best_partner(u, v, w, n):  # pragma: no cover - numba
    """Per node: the other end of its heaviest edge (ties: smallest id), -1 if it has none."""
    best = np.full(n, -1, dtype=np.int64)
    bw = np.full(n, -np.inf)
    for e in range(len(u)):
        a, b, x = u[e], v[e], w[e]
        if x > bw[a] or (x == bw[a] and b < best[a]):
            bw[a] = x
            best[a] = b
        if x > bw[b] or (x == bw[b] and a < best[b]):
            bw[b] = x
            best[b] = a
    return best


@njit(cache=True, parallel=True)
def pair_dots(a, i, j):  # pragma: no cover - numba
    """``a[i[p]] . a[j[p]]`` in float64 for each p, without gathering the rows."""
    out = np.empty(len(i), dtype=np.float64)
    d = a.shape[1]
    for p in prange(len(i)):
        ri = a[i[p]]
        rj = a[j[p]]
        acc = 0.0
        for t in range(d):
            acc += np.float64(ri[t]) * np.float64(rj[t])
        out[p] = acc
    return out


@njit(cache=True)
def _relink(u, v, w, remap, changed, n):  # pragma: no cover - numba
    """One pass over the edges after a round of merges (``remap``: old -> new cluster id).

    Returns the edges between two untouched clusters as they were (``u, v, w``)
    and the keys ``lo * n + hi`` of the edges touching a cluster that merged
    (duplicates included; their linkage must be recomputed). Edges inside a
    merged cluster are dropped.
    """
    m = len(u)
    ku = np.empty(m, dtype=np.int64)
    kv = np.empty(m, dtype=np.int64)
    kw = np.empty(m, dtype=w.dtype)
    keys = np.empty(m, dtype=np.int64)
    nk = 0
    nc = 0
    for e in range(m):
        a = remap[u[e]]
        b = remap[v[e]]
        if a == b:
            continue
        if a > b:
            a, b = b, a
        if changed[a] or changed[b]:
            keys[nc] = a * n + b
            nc += 1
        else:
            ku[nk] = a
            kv[nk] = b
            kw[nk] = w[e]
            nk += 1
    return ku[:nk], kv[:nk], kw[:nk], keys[:nc]


def centroid_average_linkage(
    x: np.ndarray,
    src: np.ndarray,
    dst: np.ndarray,
    sim: np.ndarray,
    threshold: float,
    *,
    progress_bar: bool | None = None,
) -> np.ndarray:
    """Exact average-linkage (cosine) clusters of unit rows ``x``, merges along the given edges.

    Clusters A, B may merge only when some edge joins them; their similarity
    is the mean cosine over all ``|A| |B|`` member pairs, ``S_A . S_B / (|A||B|)``.
    Merging stops when no joined pair reaches ``threshold``. ``sim`` are the
    edges' point similarities (the first round's linkages). Memory O(N D + E).
    """
    n = x.shape[0]
    u = np.minimum(src, dst).astype(np.int64)
    v = np.maximum(src, dst).astype(np.int64)
    keep = (u != v) & (sim >= threshold)
    key, first = np.unique(u[keep] * n + v[keep], return_index=True)
    u, v = key // n, key % n
    link = np.asarray(sim, dtype=np.float64)[keep][first]
    sums: np.ndarray | None = None  # cluster vector sums, made on the first merge
    cnt = np.ones(n, dtype=np.float64)
    root = np.arange(n, dtype=np.int64)  # point -> cluster id (a point id)
    with progress(total=None, desc="auto: average linkage", enabled=progress_bar, unit="round") as bar:
        while len(u):
            best = best_partner(u, v, link, n)
            c = np.flatnonzero(best >= 0)
            mutual = (best[best[c]] == c) & (c < best[c])
            m1 = c[mutual]
            m2 = best[m1]
            if sums is None:
                sums = np.array(x, dtype=np.float32, copy=True)
            sums[m1] += sums[m2]
            cnt[m1] += cnt[m2]
            remap = np.arange(n, dtype=np.int64)
            remap[m2] = m1
            root = remap[root]
            changed = np.zeros(n, dtype=bool)
            changed[m1] = True
            u, v, link, key = _relink(u, v, link, remap, changed, n)
            key.sort()  # sort + neighbour test: much faster than np.unique's hashing here
            key = key[np.concatenate(([True], key[1:] != key[:-1]))] if len(key) else key
            cu, cv = key // n, key % n
            cl = pair_dots(sums, cu, cv) / (cnt[cu] * cnt[cv])
            ok = cl >= threshold
            u = np.concatenate([u, cu[ok]])
            v = np.concatenate([v, cv[ok]])
            link = np.concatenate([link, cl[ok]])
            bar.update(1)
    return relabel(root)


def linked_clusters(sums: np.ndarray, cnt: np.ndarray, pos: np.ndarray, k: int, t: float):
    """Pairs (a in pos, b) among each cluster's k nearest mean directions with link >= t."""
    if len(pos) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0, dtype=bool)
    dirs = (sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)).astype(
        np.float32
    )
    _, nb = search_topk(dirs, dirs[pos], min(k + 1, len(sums)))
    ca = np.repeat(pos, nb.shape[1])
    cb = nb.ravel().astype(np.int64)
    link = np.einsum("ij,ij->i", sums[ca], sums[cb]) / (cnt[ca] * cnt[cb])
    ok = (ca != cb) & (link >= t)
    return ca[ok], cb[ok], ok


def merge_clusters(
    x: np.ndarray, labels: np.ndarray, ca: np.ndarray, cb: np.ndarray, t: float,
    frozen: int | None = None,
) -> np.ndarray:
    """Average-linkage merges among clusters joined by candidate pairs (ca, cb); exact links.

    Rounds of mutual-best merges (as :func:`centroid_average_linkage`) on cluster
    sums, so the work is O(#clusters involved x D) per round.
    """
    if len(ca) == 0:
        return labels
    ids, inv = np.unique(np.concatenate([ca, cb]), return_inverse=True)
    m = len(ids)
    u, v = inv[: len(ca)], inv[len(ca) :]
    pos = np.searchsorted(ids, labels)
    pos = np.minimum(pos, m - 1)
    inside = ids[pos] == labels
    sums = group_sums(x[inside], pos[inside], m)
    cnt = np.bincount(pos[inside], minlength=m).astype(np.float64)
    root = np.arange(m)
    while len(u):
        key = np.unique(np.minimum(u, v) * m + np.maximum(u, v))
        u, v = key // m, key % m
        link = np.einsum("ij,ij->i", sums[u], sums[v]) / (cnt[u] * cnt[v])
        keep = link >= t
        if frozen is not None:  # two old clusters never merge here
            keep &= (ids[u] >= frozen) | (ids[v] >= frozen)
        u, v, link = u[keep], v[keep], link[keep]
        if not len(u):
            break
        best = best_partner(u, v, link, m)
        c = np.flatnonzero(best >= 0)
        mutual = (best[best[c]] == c) & (c < best[c])
        m1, m2 = c[mutual], best[c[mutual]]
        sums[m1] += sums[m2]
        cnt[m1] += cnt[m2]
        remap = np.arange(m)
        remap[m2] = m1
        root = remap[root]
        u, v = remap[u], remap[v]
        live = u != v
        u, v = u[live], v[live]
    out = labels.copy()
    out[inside] = ids[root[pos[inside]]]  # a merged cluster keeps its smallest label
    return out
