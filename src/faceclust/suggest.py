"""Per-face confidence and ranked merge suggestions, for a user reviewing a clustering.

Both read cluster *vector sums*: for unit rows the mean cosine between a face
``x`` and the members of cluster ``C`` is ``x . S_C / |C|`` and between clusters
``A, B`` it is ``S_A . S_B / (|A| |B|)`` -- the average linkage ``auto`` merges
by -- so each costs O(D) per pair, and only pairs met in the ``k``-NN lists are
scored.

* :func:`confidence` -- margin between a face's mean cosine to its own cluster
  (others only) and to the best other neighbouring cluster, divided by the
  embedding's similarity scale (the gap between the same-person and the
  different-people modes of :func:`faceclust.adaptive.estimate_scale`) and
  clipped to [0, 1]: 0 = as close to another cluster as to its own (review it),
  1 = a full scale step closer to its own. A singleton's margin is the
  threshold minus its best match (how clearly it stays alone).
* :func:`suggest_merges` -- neighbouring cluster pairs ranked by their mean
  pairwise cosine: after ``auto`` every pair left is below the threshold, so the
  top of the list is "probably the same person, please confirm".

Examples
--------
>>> import numpy as np
>>> x = np.array([[1, 0, 0], [0.99, 0.14, 0], [0.9, 0.44, 0], [0, 1, 0], [0, 0.99, 0.14]])
>>> x = x / np.linalg.norm(x, axis=1, keepdims=True)
>>> labels = np.array([0, 0, 0, 1, 1])
>>> conf = confidence(x, labels, scale=0.5)
>>> bool(conf[0] > conf[2])  # the face between the two clusters is the least sure
True
>>> suggest_merges(x, labels, top=1)[0][:2]
(0, 1)
"""

from __future__ import annotations

import numpy as np

from ._validation import check_features, check_labels
from .errors import InputError, ParameterError
from .graph import group_sums
from .knn import search_topk

__all__ = ["cluster_sums", "confidence", "suggest_merges"]


def cluster_sums(x: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, sums [C, D] float64, counts [C])`` of the clusters (negative labels excluded)."""
    keep = labels >= 0
    ids, inv = np.unique(labels[keep], return_inverse=True)
    sums = group_sums(x[keep], inv, len(ids))
    return ids, sums, np.bincount(inv, minlength=len(ids)).astype(np.float64)


def _prepare(features, labels, k):
    x = check_features(features, source="features")
    y = check_labels(labels, len(x), source="labels").astype(np.int64)
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ParameterError(f"k must be an integer >= 2, got {k!r}")
    y = y.copy()
    neg = y < 0  # unclustered faces are their own clusters
    if neg.any():
        y[neg] = y.max(initial=-1) + 1 + np.arange(int(neg.sum()))
    return x, y


def confidence(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    scale: float | None = None,
    threshold: float | None = None,
    estimate: object = None,
    k: int = 10,
) -> np.ndarray:
    """Confidence in [0, 1] of each face's cluster (see the module doc).

    Parameters
    ----------
    features, labels : the clustering (``[N, D]``, ``[N]``).
    scale : float or None
        Cosine distance counted as full confidence; default: the gap between the
        same-person and different-people modes of ``estimate`` (a
        :class:`~faceclust.adaptive.ScaleEstimate`, e.g. ``model.estimate_``), or
        of a fresh estimate when neither is given.
    threshold : float or None
        Join threshold for singletons; default ``estimate.threshold``.
    k : int
        Neighbours searched per face for competing clusters.
    """
    x, y = _prepare(features, labels, k)
    if estimate is None and (scale is None or threshold is None):
        from .adaptive import estimate_scale
        from .knn import build_knn

        if len(x) < 4:
            raise InputError("confidence: need at least 4 faces to estimate a scale; pass scale=")
        estimate = estimate_scale(build_knn(x, k=min(20, len(x) - 1)), k=k, k_est=min(20, len(x) - 1))
    if scale is None:
        scale = float(estimate.genuine_mode - estimate.impostor_mode)
    if threshold is None:
        threshold = float(estimate.threshold) if estimate is not None else 0.0
    if not scale > 0:
        raise ParameterError(f"scale must be > 0, got {scale!r}")
    ids, sums, cnt = cluster_sums(x, y)
    own = np.searchsorted(ids, y)
    size = cnt[own]
    s_own = np.einsum("ij,ij->i", x, sums[own]) - 1.0  # minus self (unit rows)
    a = np.where(size > 1, s_own / np.maximum(size - 1, 1), threshold)
    _, nn = search_topk(x, x, min(k + 1, len(x)))
    cand = own[nn]  # clusters of the neighbours
    n, kk = cand.shape
    other = cand != own[:, None]
    rows = np.repeat(np.arange(n), kk)[other.ravel()]
    cl = cand[other]
    b = np.full(n, -1.0)
    if len(cl):
        link = np.einsum("ij,ij->i", x[rows], sums[cl]) / cnt[cl]
        np.maximum.at(b, rows, link)
    return np.clip((a - b) / scale, 0.0, 1.0)


def suggest_merges(
    features: np.ndarray, labels: np.ndarray, top: int = 20, *, k: int = 10
) -> list[tuple[int, int, float]]:
    """Neighbouring cluster pairs ranked by mean pairwise cosine: ``[(a, b, score), ...]``.

    ``a < b`` are labels of ``labels`` (unclustered faces are skipped as pairs'
    members only if negative); ``score`` is ``S_a . S_b / (|a| |b|)``, highest first.
    Only pairs joined by some face's ``k`` nearest neighbours are scored.
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ParameterError(f"top must be an integer >= 1, got {top!r}")
    orig = np.asarray(labels)
    x, y = _prepare(features, labels, k)
    ids, sums, cnt = cluster_sums(x, y)
    c = np.searchsorted(ids, y)
    _, nn = search_topk(x, x, min(k + 1, len(x)))
    ca = np.repeat(c, nn.shape[1])
    cb = c[nn.ravel()]
    ok = ca != cb
    if not ok.any():
        return []
    m = len(ids)
    key = np.unique(np.minimum(ca[ok], cb[ok]) * m + np.maximum(ca[ok], cb[ok]))
    u, v = key // m, key % m
    score = np.einsum("ij,ij->i", sums[u], sums[v]) / (cnt[u] * cnt[v])
    order = np.lexsort((v, u, -score))[:top]
    # map internal ids back to the caller's labels (negative labels were made singletons)
    lab = ids.copy()
    neg = orig < 0
    if neg.any():
        lab[np.searchsorted(ids, y[neg])] = -1
    return [(int(lab[u[i]]), int(lab[v[i]]), float(score[i])) for i in order]
