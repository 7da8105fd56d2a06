"""Sub-graph stage of NSR-FC's cascaded GCN (C-GCN): two-hop node sets and their adjacency.

* :func:`two_hop_subgraphs` -- per centre node c: c itself (position 0), its
  first ``k1`` non-self neighbours in a (re-ranked) kNN table, then the first
  ``k2`` non-self neighbours of each of those, duplicates removed (first
  occurrence kept), padded with -1 to ``1 + k1 + k1 * k2`` columns.
* :func:`subgraph_adjacency` -- the "local" adjacency of a batch of sub-graphs:
  the original kNN graph (first ``k_local`` neighbours, weight = cosine)
  restricted to each node set, self-loops removed, symmetrised by max, then
  self-loops (weight 1) on present nodes, row-normalised.

Both are pure numpy over arrays, vectorised over a batch of centres (memory
``O(B * S * k_local * S)`` booleans for the adjacency; ``S`` the sub-graph size).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ParameterError

__all__ = ["subgraph_adjacency", "subgraph_size", "two_hop_subgraphs"]


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
