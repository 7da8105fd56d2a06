"""Local graphs of the learn-to-cluster CVPR'19 methods, built in batches (bounded memory).

* :func:`pivot_subgraphs` -- L-GCN's Instance Pivot Sub-graphs (IPS): for each pivot its
  1-hop neighbours (the first ``k1`` of its kNN row), their first ``k2`` neighbours
  (2-hop), and edges from every member to its first ``active`` neighbours that are
  inside the sub-graph (symmetric, weight 1, no self loop).
* :func:`proposal_graphs` -- GCN-D/S's per-proposal graph: members linked where one is in
  the other's kNN row, weight = cosine similarity (or 1), plus self loops.
* :func:`linkage_propagation` -- L-GCN's pseudo-label propagation: size-capped
  dynamic-threshold components over the scored (pivot, 1-hop) links, duplicate
  links averaged.

* :func:`two_hop_subgraphs` / :func:`subgraph_adjacency` -- NSR-FC's cascaded-GCN
  (C-GCN) sub-graphs: per centre its first ``k1`` non-self neighbours and their first
  ``k2`` (duplicates removed, -1 padded to ``1 + k1 + k1 * k2`` columns), and the
  original kNN graph (first ``k_local`` neighbours, weight = cosine) restricted to each
  node set, symmetrised by max, self loops on present nodes, row-normalised; memory
  ``O(B * S * k_local * S)`` booleans per batch of B centres (``S`` the sub-graph size).

The two CVPR'19 builders return one block-diagonal graph over the concatenated members of a batch
(CSR-style ``ptr``), so a batch of B sub-graphs is one sparse matrix; callers stream the
pivots / proposals in batches. Membership tests are one ``searchsorted`` over keys
``graph * (N + 1) + node`` (vectorised, no per-sub-graph Python loop).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, ParameterError
from .partition import dynamic_threshold_components

__all__ = [
    "PivotSubgraphs",
    "linkage_propagation",
    "pivot_subgraphs",
    "proposal_graphs",
    "subgraph_adjacency",
    "subgraph_size",
    "two_hop_subgraphs",
]


@dataclass(frozen=True)
class PivotSubgraphs:
    """A batch of B instance-pivot sub-graphs over M members in all.

    ``nodes [M]`` global ids (ascending within each sub-graph ``ptr[b]:ptr[b+1]``);
    ``pivot_pos [B]`` the pivot's row in ``nodes``; ``hop1 [B, k1]`` the 1-hop ids
    (-1 where missing) and ``hop1_pos [B, k1]`` their rows in ``nodes`` (-1);
    ``adj [M, M]`` the symmetric 0/1 block-diagonal adjacency (no self loops).
    """

    ptr: np.ndarray
    nodes: np.ndarray
    pivot_pos: np.ndarray
    hop1: np.ndarray
    hop1_pos: np.ndarray
    adj: sp.csr_matrix

    @property
    def owner(self) -> np.ndarray:
        """Sub-graph index of each member ``[M]``."""
        return np.repeat(np.arange(len(self.ptr) - 1, dtype=np.int64), np.diff(self.ptr))


def _lookup(keys: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Positions of ``query`` in the sorted ``keys`` (-1 when absent)."""
    if len(keys) == 0:
        return np.full(query.shape, -1, np.int64)
    pos = np.searchsorted(keys, query)
    pos = np.minimum(pos, len(keys) - 1)
    return np.where(keys[pos] == query, pos, -1)


def pivot_subgraphs(ids: np.ndarray, pivots: np.ndarray, k1: int, k2: int,
                    active: int) -> PivotSubgraphs:
    """Instance-pivot sub-graphs of ``pivots`` over the kNN ``ids [N, k]`` (column 0 = self).

    1-hop = ``ids[c, 1:k1+1]``, 2-hop = ``ids[h, 1:k2+1]`` for every 1-hop ``h``; nodes =
    {c} ∪ 1-hop ∪ 2-hop. Edges: ``u -- ids[u, j]`` for ``j = 1..active`` when both are
    members, made symmetric. Missing neighbours (-1) are skipped. The reference uses the
    whole kNN row as 1-hop (``k1 = k - 1``); smaller values are its CPU scaling.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise InputError(f"kNN ids must be a 2-D integer array, got {ids.shape} {ids.dtype}")
    n, k = ids.shape
    for name, v in (("k1", k1), ("k2", k2), ("active", active)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ParameterError(f"{name} must be an integer >= 1, got {v!r}")
    k1, k2, active = min(int(k1), k - 1), min(int(k2), k - 1), min(int(active), k - 1)
    if k1 < 1:
        raise ParameterError("pivot sub-graphs need a kNN graph with k >= 2")
    piv = np.asarray(pivots, dtype=np.int64)
    b = len(piv)
    h1 = ids[piv, 1 : k1 + 1].astype(np.int64)  # [B, k1]
    h2 = ids[np.where(h1 >= 0, h1, 0), 1 : k2 + 1].astype(np.int64)  # [B, k1, k2]
    h2[h1 < 0] = -1
    cand = np.concatenate([piv[:, None], h1, h2.reshape(b, -1)], axis=1)
    big = np.int64(n)
    cand = np.where(cand >= 0, cand, big)
    cand.sort(axis=1)
    dup = np.zeros_like(cand, dtype=bool)
    dup[:, 1:] = cand[:, 1:] == cand[:, :-1]
    valid = (cand < big) & ~dup
    counts = valid.sum(axis=1)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    rows = np.repeat(np.arange(b, dtype=np.int64), counts)
    nodes = cand[valid]  # row-major: ascending within each sub-graph
    stride = np.int64(n + 1)
    keys = rows * stride + nodes  # globally ascending
    pivot_pos = _lookup(keys, np.arange(b, dtype=np.int64) * stride + piv)
    hop1_pos = _lookup(keys, np.arange(b, dtype=np.int64)[:, None] * stride + np.where(h1 >= 0, h1, big))
    hop1_pos[h1 < 0] = -1
    # edges u -> its first `active` neighbours inside the sub-graph
    nb = ids[nodes, 1 : active + 1].astype(np.int64)  # [M, active]
    q = rows[:, None] * stride + np.where(nb >= 0, nb, big)
    col = _lookup(keys, q)
    col[nb < 0] = -1
    r, c = np.nonzero(col >= 0)
    m = len(nodes)
    src, dst = r.astype(np.int64), col[r, c]
    a = sp.csr_matrix((np.ones(2 * len(src), np.float32),
                       (np.concatenate([src, dst]), np.concatenate([dst, src]))), shape=(m, m))
    a.data[:] = 1.0  # duplicates (u in v's list and v in u's) count once
    a.sort_indices()
    return PivotSubgraphs(ptr, nodes, pivot_pos, h1, hop1_pos, a)


def proposal_graphs(ptr: np.ndarray, nodes: np.ndarray, ids: np.ndarray, sims: np.ndarray,
                    *, weighted: bool = True) -> sp.csr_matrix:
    """Block-diagonal adjacency ``[M, M]`` of proposals ``nodes[ptr[p]:ptr[p+1]]``.

    Members ``u, v`` of one proposal are linked when ``v`` is in ``u``'s kNN row (or
    ``u`` in ``v``'s), with weight = their cosine similarity (1 with
    ``weighted=False``); every member has a self loop of weight 1. Not normalised.
    """
    ids = np.asarray(ids)
    ptr = np.asarray(ptr, dtype=np.int64)
    nodes = np.asarray(nodes, dtype=np.int64)
    n = ids.shape[0]
    m = len(nodes)
    own = np.repeat(np.arange(len(ptr) - 1, dtype=np.int64), np.diff(ptr))
    stride = np.int64(n + 1)
    key = own * stride + nodes
    order = np.argsort(key, kind="stable")
    skeys = key[order]
    nb = ids[nodes, 1:].astype(np.int64)
    q = own[:, None] * stride + np.where(nb >= 0, nb, np.int64(n))
    hit = _lookup(skeys, q)
    hit[nb < 0] = -1
    r, c = np.nonzero(hit >= 0)
    dst = order[hit[r, c]]
    w = np.asarray(sims)[nodes[r], 1 + c].astype(np.float32) if weighted else np.ones(len(r), np.float32)
    w = np.maximum(w, 0.0)
    a = sp.csr_matrix((w, (r.astype(np.int64), dst)), shape=(m, m))
    a = a.maximum(a.T.tocsr())
    a = a + sp.identity(m, dtype=np.float32, format="csr")
    a = sp.csr_matrix(a, dtype=np.float32)
    a.sort_indices()
    return a


def linkage_propagation(src: np.ndarray, dst: np.ndarray, scores: np.ndarray, n: int, *,
                        max_size: int = 300, step: float = 0.6,
                        max_iter: int = 100) -> np.ndarray:
    """L-GCN pseudo-label propagation: labels ``[n]`` from scored links ``src -- dst``.

    The size-capped dynamic-threshold components of CDP with the two directions of a
    link averaged (``pool="avg"``): pass 0 takes every link (small isolated groups are
    accepted whatever their score, as the reference), then the threshold rises from
    the lowest score by ``th <- th + (1 - th) step`` on components above ``max_size``.
    """
    return dynamic_threshold_components(src, dst, scores, n, int(max_size), float(step),
                                        int(max_iter), pool="avg")

def subgraph_size(k1: int, k2: int) -> int:
    """Column count of :func:`two_hop_subgraphs`: ``1 + k1 + k1 * k2``."""
    return 1 + k1 + k1 * k2


def _pos_int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
        raise ParameterError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _non_self(ids: np.ndarray, rows: np.ndarray, m: int) -> np.ndarray:
    """First ``m`` entries of ``ids[rows]`` that are present and not the row itself (-1 padded)."""
    sub = ids[rows]
    keep = (sub >= 0) & (sub != rows[:, None])
    order = np.argsort(~keep, axis=1, kind="stable")  # kept slots first, in kNN order
    out = np.take_along_axis(np.where(keep, sub, -1), order, axis=1)[:, :m]
    if out.shape[1] < m:
        out = np.pad(out, ((0, 0), (0, m - out.shape[1])), constant_values=-1)
    return out.astype(np.int64)


def two_hop_subgraphs(ids: np.ndarray, centres: np.ndarray, k1: int, k2: int) -> np.ndarray:
    """``[B, 1 + k1 + k1 k2]`` int64 node ids of the sub-graph of each centre (-1 = padding).

    Order: the centre, its ``k1`` first non-self neighbours of ``ids`` (hop 1,
    in list order), then for each hop-1 node in turn its ``k2`` first non-self
    neighbours (hop 2); a node already listed is dropped, present nodes are
    packed to the front in that order.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype.kind not in "iu":
        raise InputError(f"subgraph: ids must be a 2-D integer array, got {ids.shape} {ids.dtype}")
    k1, k2 = _pos_int("k1", k1), _pos_int("k2", k2)
    c = np.asarray(centres, dtype=np.int64).reshape(-1)
    if len(c) and (c.min() < 0 or c.max() >= len(ids)):
        raise InputError(f"subgraph: centres must lie in [0, {len(ids)})")
    h1 = _non_self(ids, c, k1)
    h2 = _non_self(ids, np.where(h1 >= 0, h1, 0).reshape(-1), k2).reshape(len(c), k1 * k2)
    h2[np.repeat(h1 < 0, k2, axis=1)] = -1
    cand = np.concatenate([c[:, None], h1, h2], axis=1)
    # drop repeats (keep the first occurrence), then pack present nodes to the front
    order = np.argsort(cand, axis=1, kind="stable")
    srt = np.take_along_axis(cand, order, axis=1)
    dup_sorted = np.zeros(srt.shape, dtype=bool)
    dup_sorted[:, 1:] = srt[:, 1:] == srt[:, :-1]
    dup = np.empty_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, axis=1)
    cand = np.where(dup | (cand < 0), -1, cand)
    pack = np.argsort(cand < 0, axis=1, kind="stable")
    return np.take_along_axis(cand, pack, axis=1)


def subgraph_adjacency(
    nodes: np.ndarray, knn_ids: np.ndarray, knn_sims: np.ndarray, k_local: int = 10
) -> np.ndarray:
    """``[B, S, S]`` float32 row-normalised local adjacency of sub-graphs ``nodes [B, S]``.

    ``A[b, s, t] = max(w(s -> t), w(t -> s))`` where ``w(s -> t)`` is the cosine of
    ``t`` when it is among the first ``k_local`` non-self neighbours of ``s`` in
    ``knn_ids`` (else 0; negative cosines count as 0), plus 1 on the diagonal of
    present nodes; each row divided by its sum. Padding rows/columns are 0.
    """
    nodes = np.asarray(nodes, dtype=np.int64)
    k_local = _pos_int("k_local", k_local)
    knn_ids = np.asarray(knn_ids)
    knn_sims = np.asarray(knn_sims, dtype=np.float32)
    if knn_ids.shape != knn_sims.shape:
        raise InputError(f"subgraph: knn ids {knn_ids.shape} and sims {knn_sims.shape} differ")
    b, s = nodes.shape
    present = nodes >= 0
    flat = np.where(present, nodes, 0).reshape(-1)
    nb = knn_ids[flat, : k_local + 1].astype(np.int64)
    ws = np.clip(knn_sims[flat, : k_local + 1], 0.0, None)
    keep = (nb >= 0) & (nb != flat[:, None])
    # at most k_local non-self neighbours (column 0 is normally self)
    keep &= np.cumsum(keep, axis=1) <= k_local
    nb = np.where(keep, nb, -2).reshape(b, s, -1)
    ws = np.where(keep, ws, 0.0).reshape(b, s, -1)
    match = nb[:, :, :, None] == nodes[:, None, None, :]  # [B, S, kl, S]
    match &= present[:, None, None, :]
    w = (match * ws[..., None]).max(axis=2)  # [B, S, S]
    w *= present[:, :, None]
    a = np.maximum(w, w.transpose(0, 2, 1))
    idx = np.arange(s)
    a[:, idx, idx] = present.astype(np.float32)
    tot = a.sum(axis=2, keepdims=True)
    return (a / np.where(tot > 0, tot, 1.0)).astype(np.float32)
