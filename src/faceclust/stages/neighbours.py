"""Adaptive neighbour discovery (Ada-NETS, ICLR'22): the non-learned stages.

Ada-NETS re-ranks each kNN list in the *structure space*
(:func:`faceclust.stages.refine.structure_space`), learns how many of the
re-ranked candidates to keep per node (the Adaptive Filter, ``faceclust.nn.adanets``),
builds a graph from those, runs a GCN on it and clusters the GCN's features.
The pure pieces live here:

* :func:`neighbour_quality` / :func:`target_k` -- the candidate-neighbour quality
  ``Q_k = F_beta(P_k, R_k)`` (beta = 0.5) and its arg-max ``k*``, the Adaptive
  Filter's training label (:func:`filter_targets`);
* :func:`similarity_adjacency` -- ``row_normalize(max(S, S^T) + I)`` over kept slots,
  with :func:`adaptive_keep` giving the Ada-NETS graph (first ``k_hat_i`` entries);
* :func:`threshold_components` -- the final rule: pairs among each node's ``top_n``
  nearest (self included) with cosine ``>= threshold``, connected components.

Arrays follow :class:`~faceclust.knn.KnnGraph`: ``ids [N, k]``, column 0 = self,
``-1`` = missing.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from ..errors import InputError, ParameterError
from ..graph import connected_components

__all__ = [
    "adaptive_keep",
    "filter_targets",
    "neighbour_quality",
    "similarity_adjacency",
    "target_k",
    "threshold_components",
]

_BLOCK = 1 << 16  # rows per block (bounds the [rows, k] float64 temporaries)


def _check_ids_labels(ids: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids)
    labels = np.asarray(labels)
    if ids.ndim != 2 or ids.shape[1] < 1:
        raise InputError(f"neighbour lists must be a 2-D [N, k] array, got shape {ids.shape}")
    if labels.shape != (ids.shape[0],):
        raise InputError(f"labels: expected {ids.shape[0]} labels, got shape {labels.shape}")
    return ids, labels


def neighbour_quality(ids: np.ndarray, labels: np.ndarray, beta: float = 0.5) -> np.ndarray:
    """``Q [N, k]`` float32: quality of keeping each row's first ``k`` = 1..K candidates.

    With ``y_t = 1`` when candidate t has the row's label (position 0 is
    counted as a hit: it is self), ``P_k = sum_{t<k} y_t / k``,
    ``R_k = sum_{t<k} y_t / |class(i)|`` (the class size over all rows,
    self included) and ``Q_k = (1 + b^2) P_k R_k / (b^2 P_k + R_k)`` with
    ``b = beta`` (0.5: precision weighs more), as ``tool/max_Q_ind.py``.
    Missing candidates (id -1) count as misses.
    """
    ids, labels = _check_ids_labels(ids, labels)
    if isinstance(beta, bool) or not isinstance(beta, int | float) or not beta > 0:
        raise ParameterError(f"beta must be a positive number, got {beta!r}")
    _, codes, counts = np.unique(labels, return_inverse=True, return_counts=True)
    n, k = ids.shape
    b2 = float(beta) ** 2
    out = np.empty((n, k), dtype=np.float32)
    ks = np.arange(1, k + 1, dtype=np.float64)
    for lo in range(0, n, _BLOCK):
        hi = min(n, lo + _BLOCK)
        nb = ids[lo:hi]
        hit = (nb >= 0) & (codes[np.where(nb >= 0, nb, 0)] == codes[lo:hi, None])
        hit[:, 0] = True
        c = np.cumsum(hit, axis=1, dtype=np.float64)
        p = c / ks
        r = c / counts[codes[lo:hi]][:, None]
        out[lo:hi] = (1.0 + b2) * p * r / (b2 * p + r)
    return out


def target_k(ids: np.ndarray, labels: np.ndarray, beta: float = 0.5) -> np.ndarray:
    """``k* [N]`` int64 in ``[1, k]``: the ``k`` maximising :func:`neighbour_quality` (first max)."""
    return np.argmax(neighbour_quality(ids, labels, beta), axis=1).astype(np.int64) + 1


def filter_targets(ids: np.ndarray, labels: np.ndarray, beta: float = 0.5) -> np.ndarray:
    """The Adaptive Filter's regression label ``k* / k`` ``[N]`` float32 (``scale_max = k``).

    ``ids`` are the structure-space lists (:func:`~faceclust.stages.refine.structure_space`).
    """
    ids = np.asarray(ids)
    return (target_k(ids, labels, beta) / float(ids.shape[1])).astype(np.float32)


def adaptive_keep(k_hat: np.ndarray, k: int) -> np.ndarray:
    """``[N, k]`` bool: slot (i, p) kept when ``p < k_hat_i`` (self, p = 0, is dropped later)."""
    k_hat = np.asarray(k_hat)
    if k_hat.ndim != 1:
        raise InputError(f"k_hat must be a 1-D vector, got shape {k_hat.shape}")
    return np.arange(k)[None, :] < k_hat[:, None]


def similarity_adjacency(
    ids: np.ndarray, sims: np.ndarray, *, min_sim: float = 0.0, keep: np.ndarray | None = None
) -> sp.csr_matrix:
    """``row_normalize(max(S, S^T) + I)`` as ``[N, N]`` float32 CSR (sorted indices).

    ``S_ij = sims[i, p]`` for each slot p of row i that is present, not self,
    has ``sims >= min_sim`` (inclusive; 0 as the original's ``th_sim``) and is
    in ``keep`` (all slots when None). With the structure-space lists,
    ``sims = 1 - nd`` and ``keep = adaptive_keep(k_hat, k)`` this is the
    Ada-NETS test graph (``gene_adj_adanets.py``); with cosine kNN lists and no
    ``keep`` it is the plain kNN graph the original trains on.
    """
    ids = np.asarray(ids)
    sims = np.asarray(sims, dtype=np.float32)
    if ids.ndim != 2 or ids.shape != sims.shape:
        raise InputError(f"ids and sims must be 2-D of one shape, got {ids.shape}, {sims.shape}")
    n, k = ids.shape
    mask = (ids >= 0) & (ids != np.arange(n)[:, None]) & (sims >= min_sim)
    if keep is not None:
        keep = np.asarray(keep, dtype=bool)
        if keep.shape != ids.shape:
            raise InputError(f"keep must have shape {ids.shape}, got {keep.shape}")
        mask &= keep
    # CSR straight from the [N, k] tables (row-major boolean indexing lists each row's
    # kept slots in order): no N*k COO row/column arrays, which at 460K x 256 (Ada-NETS's
    # training graph) held ~4 GB besides the matrix itself.
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    cols = ids[mask].astype(np.int32 if n < 2**31 - 1 else np.int64)
    s = sp.csr_matrix((sims[mask], cols, indptr), shape=(n, n), dtype=np.float32)
    del mask, cols
    s.sum_duplicates()
    a = s.maximum(s.T.tocsr()) + sp.identity(n, dtype=np.float32, format="csr")
    rowsum = np.asarray(a.sum(axis=1)).reshape(-1)
    scale = np.where(rowsum > 0, 1.0 / np.where(rowsum > 0, rowsum, 1.0), 1.0)
    out = sp.csr_matrix(sp.diags(scale.astype(np.float32)) @ a, dtype=np.float32)
    out.sort_indices()
    return out


def threshold_components(
    ids: np.ndarray, sims: np.ndarray, threshold: float, top_n: int | None = None
) -> np.ndarray:
    """Labels ``[N]``: connected components of the pairs ``(i, ids[i, p])`` with ``p < top_n``
    and ``sims[i, p] >= threshold`` (inclusive).

    Ada-NETS's final clustering (``GCN/cluster.py``'s intended rule: top 121
    neighbours, cosine >= 0.96, union-find). The undirected pair map of the
    original only de-duplicates pairs, which components ignore; missing
    neighbours and self are never edges; isolated points are singletons.
    """
    ids = np.asarray(ids)
    sims = np.asarray(sims)
    if ids.ndim != 2 or ids.shape != sims.shape:
        raise InputError(f"ids and sims must be 2-D of one shape, got {ids.shape}, {sims.shape}")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float | np.floating):
        raise ParameterError(f"threshold must be a number, got {threshold!r}")
    n, k = ids.shape
    top = k if top_n is None else int(top_n)
    if top < 1:
        raise ParameterError(f"top_n must be >= 1, got {top_n!r}")
    nb, sm = ids[:, :top], sims[:, :top]
    mask = (nb >= 0) & (sm >= threshold) & (nb != np.arange(n)[:, None])
    rows, cols = np.nonzero(mask)
    return connected_components(rows, nb[rows, cols].astype(np.int64), n)
