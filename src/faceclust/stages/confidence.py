"""Confidence stage of GCN-V / GCN-E: ground-truth confidence, peaks, tree deduction.

Pure numpy functions over a kNN graph given as ``ids [N, k]`` / ``sims [N, k]``
(rows sorted by descending similarity, column 0 = self, ``-1`` = missing, as in
:class:`~faceclust.knn.KnnGraph`).

The pipeline (learn-to-cluster's VE-GCN, spec section 7):

1. every node gets a confidence ``c_i`` (how "central" it is inside its
   identity): the s_nbr target :func:`snbr_confidence` for training, a GCN
   prediction at test time;
2. :func:`find_peaks`: each node points at its nearest neighbour with a
   **strictly** higher confidence (equal confidence never qualifies, so two
   tied nodes cannot point at each other and no cycle can form);
3. :func:`deduce_tree`: keep the edges node -> peak with similarity
   **strictly** above ``tau`` and take connected components. Every node is
   labelled; nodes without a kept edge are singletons.

``tau`` is a cosine similarity and therefore depends on the embedding model's
similarity scale (ArcFace-like: different people near 0, same person > ~0.5;
dlib: different people near 0.83). It is always a parameter, never hard-wired.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ParameterError
from ..graph import connected_components

__all__ = [
    "candidate_mask",
    "choose_tau",
    "deduce_tree",
    "find_peaks",
    "identity_folds",
    "ignore_mask",
    "snbr_confidence",
    "split_by_identity",
]

_CHUNK = 1 << 15  # rows per block (bounds the [rows, k] temporaries)


def _check_knn(ids: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ids = np.asarray(ids)
    sims = np.asarray(sims)
    if ids.ndim != 2 or ids.shape != sims.shape:
        raise InputError(
            f"kNN arrays: ids and sims must be 2-D of one shape, got {ids.shape} and {sims.shape}"
        )
    return ids, sims


def snbr_confidence(
    ids: np.ndarray, sims: np.ndarray, labels: np.ndarray, *, normalize: bool = True
) -> np.ndarray:
    """Ground-truth confidence ``s_nbr`` of every node (the GCN-V regression target).

    ``c_i = sum_j (+sim_ij if label_j == label_i else -sim_ij)`` over all k
    columns of row i **including i itself** (which adds +sim_ii = +1);
    missing neighbours (id -1) add nothing. With ``normalize`` every c_i is
    divided by ``max_i |c_i|`` so the target lies in [-1, 1].

    Returns
    -------
    c : float32 ``[N]``
    """
    ids, sims = _check_knn(ids, sims)
    labels = np.asarray(labels)
    n = ids.shape[0]
    if labels.shape != (n,):
        raise InputError(f"labels: expected shape ({n},) to match the kNN graph, got {labels.shape}")
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        i = ids[start : start + _CHUNK]
        s = sims[start : start + _CHUNK].astype(np.float64)
        valid = i >= 0
        same = labels[np.where(valid, i, 0)] == labels[start : start + len(i), None]
        signed = np.where(same, s, -s)
        out[start : start + len(i)] = np.where(valid, signed, 0.0).sum(axis=1)
    if normalize:
        m = np.abs(out).max()
        if m > 0:
            out /= m
    return out.astype(np.float32)


def candidate_mask(ids: np.ndarray, conf: np.ndarray, start: int = 0) -> np.ndarray:
    """``[rows, k]`` bool: neighbour present and with confidence **strictly** above the row's.

    ``ids`` is a block of kNN rows whose first row is node ``start``. Self is
    excluded automatically (``c_i > c_i`` is false).
    """
    valid = ids >= 0
    own = conf[start : start + ids.shape[0], None]
    return valid & (conf[np.where(valid, ids, 0)] > own)


def find_peaks(
    ids: np.ndarray, sims: np.ndarray, conf: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest neighbour of strictly higher confidence for every node.

    Scans each kNN row in order (descending similarity) and returns the first
    neighbour ``j`` with ``conf[j] > conf[i]``. Neighbours with **equal**
    confidence never qualify.

    Returns
    -------
    peak : int64 ``[N]``
        The peak's id, or -1 when no neighbour in the row has higher confidence
        (the node is a cluster root).
    peak_sim : float32 ``[N]``
        Similarity to the peak, ``-inf`` where there is none.
    """
    ids, sims = _check_knn(ids, sims)
    conf = np.asarray(conf)
    n = ids.shape[0]
    if conf.shape != (n,):
        raise InputError(f"confidence: expected shape ({n},), got {conf.shape}")
    peak = np.full(n, -1, dtype=np.int64)
    peak_sim = np.full(n, -np.inf, dtype=np.float32)
    for start in range(0, n, _CHUNK):
        i = ids[start : start + _CHUNK]
        mask = candidate_mask(i, conf, start)
        has = mask.any(axis=1)
        first = mask.argmax(axis=1)
        rows = np.flatnonzero(has)
        peak[start + rows] = i[rows, first[rows]]
        peak_sim[start + rows] = sims[start + rows, first[rows]]
    return peak, peak_sim


def link_roots(
    peak: np.ndarray, peak_sim: np.ndarray, conf: np.ndarray, root_ids: np.ndarray,
    root_sims: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Give every root its nearest root of strictly higher confidence (density-peak rule).

    :func:`find_peaks` looks for a higher-confidence node only among a node's
    k neighbours, so a person with many more photos than k (or several modes:
    ages, poses) gets several local maxima -- several roots, several clusters,
    whatever the threshold. Rodriguez & Laio's density peaks take the nearest
    higher-density point among *all* points; this does so for the roots only,
    searching the other roots: ``root_ids``/``root_sims`` is a kNN graph over
    the roots (rows and ids are positions in ``np.flatnonzero(peak < 0)``).
    The tree stays a forest (parents have strictly higher confidence) and the
    usual cut ``sim > tau`` of :func:`deduce_tree` still decides.

    Returns new ``(peak, peak_sim)``; the global maximum stays a root.
    """
    peak = np.array(peak, dtype=np.int64, copy=True)
    peak_sim = np.array(peak_sim, dtype=np.float32, copy=True)
    roots = np.flatnonzero(peak < 0)
    if np.asarray(root_ids).shape[0] != len(roots):
        raise InputError(
            f"root kNN graph has {np.asarray(root_ids).shape[0]} rows for {len(roots)} roots"
        )
    if len(roots) < 2:
        return peak, peak_sim
    pr, sr = find_peaks(root_ids, root_sims, np.asarray(conf)[roots])
    ok = pr >= 0
    peak[roots[ok]] = roots[pr[ok]]
    peak_sim[roots[ok]] = sr[ok]
    return peak, peak_sim


def deduce_tree(peak: np.ndarray, peak_sim: np.ndarray, tau: float) -> np.ndarray:
    """Cluster labels from node -> peak edges with similarity strictly above ``tau``.

    The kept edges form a forest (each node has at most one parent, of
    strictly higher confidence); its trees are the clusters. Labels are
    contiguous, numbered by first appearance; nodes with no kept edge in
    either direction are singletons.
    """
    peak = np.asarray(peak, dtype=np.int64)
    peak_sim = np.asarray(peak_sim)
    if peak.ndim != 1 or peak.shape != peak_sim.shape:
        raise InputError(
            f"peaks: peak and peak_sim must be 1-D of one length, got {peak.shape}, {peak_sim.shape}"
        )
    if not np.isfinite(tau):
        raise ParameterError(f"tau must be a finite similarity, got {tau!r}")
    keep = (peak >= 0) & (peak_sim > tau)
    src = np.flatnonzero(keep)
    return connected_components(src, peak[src], len(peak))


def ignore_mask(conf: np.ndarray, ignore_ratio: float) -> np.ndarray:
    """``[N]`` bool marking the ``ignore_ratio`` fraction of nodes with the lowest confidence.

    GCN-E links these nodes straight to their nearest higher-confidence
    neighbour instead of running the edge classifier. Ties at the cut are
    resolved by index (stable sort), so the count is exactly
    ``floor(ignore_ratio * N)``.
    """
    if not 0.0 <= ignore_ratio <= 1.0:
        raise ParameterError(f"ignore_ratio must lie in [0, 1], got {ignore_ratio!r}")
    conf = np.asarray(conf)
    m = int(np.floor(ignore_ratio * len(conf)))
    out = np.zeros(len(conf), dtype=bool)
    if m > 0:
        out[np.argsort(conf, kind="stable")[:m]] = True
    return out


def split_by_identity(
    labels: np.ndarray, test_fraction: float = 0.5, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split sample indices into train / test so that no identity appears in both.

    The distinct labels are shuffled with ``numpy.random.default_rng(seed)``
    and the first ``round(test_fraction * n_identities)`` of them go to the
    test side. Returns sorted int64 index arrays ``(train_idx, test_idx)``.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ParameterError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"labels: expected a 1-D vector, got shape {labels.shape}")
    ids = np.unique(labels)
    if len(ids) < 2:
        raise InputError("labels: need at least two identities to split by identity")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(ids))
    n_test = min(len(ids) - 1, max(1, int(round(test_fraction * len(ids)))))
    test_ids = ids[perm[:n_test]]
    is_test = np.isin(labels, test_ids)
    return np.flatnonzero(~is_test).astype(np.int64), np.flatnonzero(is_test).astype(np.int64)


def identity_folds(y: np.ndarray, folds: int, seed: int, what: str) -> np.ndarray:
    """Fold number ``[N]`` of every sample; identities are dealt to folds at random (seeded)."""
    ids_u = np.unique(y)
    if len(ids_u) < folds:
        raise InputError(f"{what}: {len(ids_u)} identities cannot make {folds} folds")
    fold_of = np.random.default_rng(seed).permutation(len(ids_u)) % folds
    return fold_of[np.searchsorted(ids_u, y)]


def choose_tau(
    peak: np.ndarray, peak_sim: np.ndarray, labels: np.ndarray, *, n_grid: int = 100
) -> tuple[float, float]:
    """The cut ``tau`` for :func:`deduce_tree` that maximises pairwise F against ``labels``.

    Scale-free: the candidates are ``n_grid`` quantiles of the present peak
    similarities (plus values just below each, since the cut is strict), so
    the search adapts to any similarity scale (ArcFace-like, dlib, GCN
    features). Used at training time, on labelled data. Returns ``(tau, F)``;
    ties go to the highest tau (fewer merges).
    """
    from ..metrics import pairwise

    peak_sim = np.asarray(peak_sim, dtype=np.float64)
    present = peak_sim[np.asarray(peak) >= 0]
    if len(present) == 0:
        return 1.0, 0.0
    qs = np.unique(np.quantile(present, np.linspace(0.0, 1.0, n_grid)))
    grid = np.unique(np.concatenate([qs, np.nextafter(qs, -np.inf)]))
    best_tau, best_f = float(grid[-1]), -1.0
    for tau in grid[::-1]:
        f = pairwise(labels, deduce_tree(peak, peak_sim, float(tau)))[2]
        if f > best_f + 1e-12:
            best_tau, best_f = float(tau), float(f)
    return best_tau, best_f
