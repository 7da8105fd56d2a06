"""Partition primitives: connected components, union-find, label normalisation.

Every partition stage ends in one of these: edges become components, and the
labels are made contiguous with every unclustered point kept as its own
singleton (learn-to-cluster's convention, so metrics always see all N items).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit
from scipy.sparse.csgraph import connected_components as _cc

from .errors import InputError


def connected_components(src: np.ndarray, dst: np.ndarray, n: int) -> np.ndarray:
    """Labels ``[n]`` of the undirected connected components of edges ``src[i] -- dst[i]``.

    Points with no edge are singletons. Labels are contiguous, numbered by
    first appearance in index order.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    if src.shape != dst.shape or src.ndim != 1:
        raise InputError(f"edges: src and dst must be 1-D of one length, got {src.shape}, {dst.shape}")
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise InputError(f"edges: node ids must lie in [0, {n})")
    adj = sp.csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    _, labels = _cc(adj, directed=True, connection="weak")
    return relabel(labels)


def relabel(labels: np.ndarray) -> np.ndarray:
    """Contiguous int64 labels 0..C-1 in order of first appearance; negatives become singletons.

    A negative label (noise, "unclustered") gets a fresh label of its own, as
    learn-to-cluster's ``write_meta`` does, so no item is ever dropped.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"labels: expected a 1-D vector, got shape {labels.shape}")
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    work = labels.astype(np.int64, copy=True)
    noise = work < 0
    if noise.any():
        base = work.max() + 1 if (~noise).any() else 0
        work[noise] = base + np.arange(int(noise.sum()))
    _, first, inverse = np.unique(work, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse.reshape(-1)]


@njit(cache=True)
def _scatter_add(x, groups, out):  # pragma: no cover - numba
    for i in range(x.shape[0]):
        g = groups[i]
        for t in range(x.shape[1]):
            out[g, t] += x[i, t]


def group_sums(x: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """``[n_groups, D]`` float64 sums of the rows of ``x`` per group id (0 <= id < n_groups).

    Same values as ``np.add.at(out, groups, x)`` (rows added in order), compiled:
    ``np.add.at`` costs seconds per million rows, this one pass O(N D).
    """
    groups = np.asarray(groups, dtype=np.int64)
    if groups.shape != (x.shape[0],):
        raise InputError(f"group_sums: {len(groups)} group ids for {x.shape[0]} rows")
    if len(groups) and (groups.min() < 0 or groups.max() >= n_groups):
        raise InputError(f"group_sums: group ids must lie in [0, {n_groups})")
    out = np.zeros((n_groups, x.shape[1]), dtype=np.float64)
    _scatter_add(np.ascontiguousarray(x), groups, out)
    return out


def labels_from_clusters(clusters: list[np.ndarray], n: int) -> np.ndarray:
    """Labels ``[n]`` from a list of disjoint index arrays; uncovered points become singletons."""
    labels = np.full(n, -1, dtype=np.int64)
    for c, members in enumerate(clusters):
        members = np.asarray(members, dtype=np.int64)
        if (labels[members] >= 0).any():
            raise InputError("clusters overlap: a point is in more than one cluster")
        labels[members] = c
    return relabel(labels)


class UnionFind:
    """Disjoint sets over ``n`` items with path halving and union by size.

    Used where edges arrive incrementally (adding faces to an existing
    clustering); for a fixed edge list prefer :func:`connected_components`.
    """

    def __init__(self, n: int) -> None:
        self.parent = np.arange(n, dtype=np.int64)
        self.size = np.ones(n, dtype=np.int64)

    def find(self, x: int) -> int:
        """Root of ``x``'s set."""
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return int(x)

    def union(self, a: int, b: int) -> bool:
        """Merge the sets of ``a`` and ``b``; return True if they were different."""
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return False
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return True

    def union_many(self, src: np.ndarray, dst: np.ndarray) -> None:
        """Merge along every edge ``src[i] -- dst[i]``."""
        for a, b in zip(np.asarray(src).tolist(), np.asarray(dst).tolist(), strict=True):
            self.union(a, b)

    def labels(self) -> np.ndarray:
        """Contiguous labels of the current sets (first-appearance order)."""
        roots = np.array([self.find(i) for i in range(len(self.parent))], dtype=np.int64)
        return relabel(roots)
