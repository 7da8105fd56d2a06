"""Placement stage: add new faces to an existing clustering without re-clustering everything.

Two placements, both keeping every old label unchanged: :func:`place_average` (method
``incremental``'s default) lets new faces join the old clusters, held as fixed blocks, by
exact average linkage (:func:`faceclust.stages.linkage.merge_clusters`);
:func:`assign_new` (``placement="nearest"``, ``faceclust add``) labels the new faces
by their nearest old face:

1. a new face *matches* an old cluster when its nearest old face (label >= 0)
   has cosine similarity >= ``threshold``;
2. new faces are grouped by their kNN edges with similarity >= ``threshold``
   among themselves (a group may be a single face);
3. a group follows its majority: if at least half of its faces match one old
   cluster, the group joins that cluster (a member matching a different old
   cluster keeps its own match); otherwise the group gets one fresh label -- a
   new cluster, or a new singleton for a lone stranger -- except that a member
   matching an old cluster more closely than any unmatched member of the group
   keeps its match. The majority rule
   stops a new person from being pulled into a look-alike's cluster through a
   single borderline match and then chaining the rest of their photos after it.

The threshold is **not** a constant tuned to one embedding model (dlib
descriptors put different people at cosine ~0.85, ArcFace-like ones at ~0.1).
:func:`derive_threshold` reads it off the old clustering itself: for faces of
clusters with 2+ members it takes ``a`` = similarity to the nearest face of the
same cluster (what a new face of that person would score) and ``b`` =
similarity to the nearest face of any other cluster (what a stranger's
nearest wrong match scores), and returns the similarity that best separates the
two samples (minimum balanced error, midpoint of the best interval). It is the
rule "join only as close as the existing clusters hold together, and closer
than they come to each other", in the model's own similarity scale.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_features, check_labels
from ..errors import InputError, ParameterError
from ..graph import connected_components, relabel
from ..knn import search_topk
from .linkage import merge_clusters

__all__ = ["assign_new", "derive_threshold", "place_average"]


def derive_threshold(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = 20,
    max_queries: int = 20000,
    seed: int = 0,
) -> float:
    """Similarity threshold separating same-cluster from other-cluster nearest neighbours.

    Parameters
    ----------
    features, labels:
        The existing clustering (labels < 0 mean "unclustered" and are ignored).
    k:
        Neighbours searched per face (faces with no same-cluster face among them
        contribute only their other-cluster similarity).
    max_queries:
        At most this many faces (a seeded random sample) are used as queries.

    Returns
    -------
    float
        Midpoint of the similarity interval minimising the balanced error
        ``P(a < t) + P(b >= t)``. With a single cluster (no ``b``) it is the 1st
        percentile of ``a``.

    Raises
    ------
    ParameterError
        When no cluster has two or more faces (nothing to learn a scale from).
    """
    x = check_features(features, source="old features")
    y = check_labels(labels, len(x), source="old labels")
    keep = np.flatnonzero(y >= 0)
    x, y = x[keep], y[keep]
    _, inv, counts = np.unique(y, return_inverse=True, return_counts=True)
    multi = np.flatnonzero(counts[inv] >= 2)
    if len(multi) == 0:
        raise ParameterError(
            "cannot derive a threshold: the existing clustering has no cluster with 2+ faces; "
            "give the threshold explicitly"
        )
    rng = np.random.default_rng(seed)
    q = multi if len(multi) <= max_queries else np.sort(rng.choice(multi, max_queries, replace=False))
    sims, ids = search_topk(x, x[q], min(k + 1, len(x)))
    not_self = ids != q[:, None]
    same = (y[ids] == y[q][:, None]) & not_self
    other = (y[ids] != y[q][:, None]) & not_self
    has_a = same.any(axis=1)
    has_b = other.any(axis=1)
    a = sims[has_a, np.argmax(same[has_a], axis=1)]
    b = sims[has_b, np.argmax(other[has_b], axis=1)]
    if len(b) == 0:
        return float(np.quantile(a, 0.01))
    return _best_split(a.astype(np.float64), b.astype(np.float64))


def _best_split(a: np.ndarray, b: np.ndarray) -> float:
    """t minimising #(a < t)/|a| + #(b >= t)/|b|; midpoint between neighbouring values."""
    cand = np.unique(np.concatenate([a, b]))
    a_s, b_s = np.sort(a), np.sort(b)
    # t = cand[i]: a below t are missed, b at/above t are false joins
    err = np.searchsorted(a_s, cand, "left") / len(a) + (
        len(b) - np.searchsorted(b_s, cand, "left")
    ) / len(b)
    best = np.flatnonzero(err == err.min())
    if best[-1] - best[0] + 1 == len(best):  # one run of equal error: take its whole interval
        j, i = int(best[0]), int(best[-1])
    else:
        j = i = int(best[len(best) // 2])
    lo = cand[j - 1] if j > 0 else cand[j] - 1e-3
    return float((lo + cand[i]) / 2)


def assign_new(
    old_features: np.ndarray,
    old_labels: np.ndarray,
    new_features: np.ndarray,
    threshold: float | None = None,
    *,
    k: int = 10,
) -> np.ndarray:
    """Labels for ``new_features`` given an existing clustering; old labels stay as they are.

    Parameters
    ----------
    old_features, old_labels:
        ``[N, D]`` embeddings and ``[N]`` labels of the existing clustering
        (negative = unclustered: never joined).
    new_features:
        ``[M, D]`` embeddings to add (same model as the old ones).
    threshold:
        Cosine similarity needed to join; ``None`` derives it from the old
        clustering with :func:`derive_threshold`.
    k:
        Neighbours per new face used to link new faces among themselves.

    Returns
    -------
    ndarray of int64 ``[M]``
        An old label, or a fresh label ``> max(old_labels)`` (new clusters and
        new singletons, numbered in order of first appearance).
    """
    xo = check_features(old_features, source="old features")
    yo = check_labels(old_labels, len(xo), source="old labels")
    xn = check_features(new_features, source="new features")
    if xn.shape[1] != xo.shape[1]:
        raise InputError(
            f"new features have dimension {xn.shape[1]}, old ones {xo.shape[1]} "
            "(they must come from the same model)"
        )
    if threshold is None:
        threshold = derive_threshold(xo, yo)
    elif not -1.0 <= float(threshold) <= 1.0:
        raise ParameterError(f"threshold must be a cosine similarity in [-1, 1], got {threshold}")
    t = float(threshold)
    m = len(xn)

    # 1. direct matches: nearest old clustered face with similarity >= t
    direct = np.full(m, -1, dtype=np.int64)
    direct_sim = np.full(m, -np.inf)
    targets = np.flatnonzero(yo >= 0)
    if len(targets):
        s, i = search_topk(xo[targets], xn, 1)
        hit = s[:, 0] >= t
        direct[hit] = yo[targets[i[hit, 0]]]
        direct_sim[hit] = s[hit, 0]

    # 2. groups of new faces that agree (kNN edges >= t among the new faces)
    if m > 1:
        nn_s, nn_i = search_topk(xn, xn, min(k + 1, m))
        ok = (nn_s >= t) & (nn_i != np.arange(m)[:, None])
        comp = connected_components(np.repeat(np.arange(m), ok.sum(axis=1)), nn_i[ok], m)
    else:
        nn_s, nn_i = np.zeros((1, 0)), np.zeros((1, 0), dtype=np.int64)
        ok = np.zeros((1, 0), dtype=bool)
        comp = np.zeros(1, dtype=np.int64)
    n_comp = int(comp.max()) + 1
    size = np.bincount(comp, minlength=n_comp)

    # 3. each group follows its majority: the old cluster matched directly by at least
    #    half of its faces (ties: the larger support, then the smaller label), else new
    top_label = np.full(n_comp, -1, dtype=np.int64)
    top_count = np.zeros(n_comp, dtype=np.int64)
    matched = np.flatnonzero(direct >= 0)
    if len(matched):
        pairs, counts = np.unique(
            np.stack([comp[matched], direct[matched]], axis=1), axis=0, return_counts=True
        )
        order = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))
        pairs, counts = pairs[order], counts[order]
        first = np.flatnonzero(np.r_[True, pairs[1:, 0] != pairs[:-1, 0]])
        top_label[pairs[first, 0]] = pairs[first, 1]
        top_count[pairs[first, 0]] = counts[first]
    joins = 2 * top_count >= size
    joins &= top_count > 0
    fresh = np.flatnonzero(~joins)
    base = int(yo.max()) + 1 if len(yo) and yo.max() >= 0 else 0
    comp_label = top_label.copy()
    comp_label[fresh] = base + np.arange(len(fresh))
    out = comp_label[comp]
    # in a group that joins old clusters, a face matching another old cluster keeps its match;
    # in a new group, a face keeps its old match if that is closer than its nearest unmatched
    # group member (a returning person chained to newcomers through a look-alike)
    unmatched_nbr = ok & (direct[nn_i] < 0)
    best_new = np.where(unmatched_nbr, nn_s, -np.inf).max(axis=1, initial=-np.inf)
    keep = (direct >= 0) & (joins[comp] | (direct_sim > best_new))
    out[keep] = direct[keep]
    new = out >= base  # renumber fresh labels base, base+1, ... in order of first appearance
    if new.any():
        out[new] = base + relabel(out[new])
    return out


def place_average(
    xo: np.ndarray, yo: np.ndarray, xn: np.ndarray, t: float, k: int
) -> np.ndarray:
    """Average-linkage placement of new rows with the old clusters as fixed blocks.

    New faces start as singletons; candidate pairs are (new face, clusters of its
    ``k`` nearest old faces) and (new face, its ``k`` nearest new faces) with cosine
    >= ``t``; :func:`merge_clusters` then merges mutual-best pairs whose exact mean
    pairwise cosine is >= ``t``. Old labels never change; two old clusters may be
    merged only by :meth:`IncrementalClusterer.refine`.
    """
    m = len(xn)
    base = int(yo.max()) + 1
    fresh = base + np.arange(m)
    s, i = search_topk(xo, xn, min(k, len(xo)))
    ok = s >= t
    ca = np.repeat(fresh, i.shape[1])[ok.ravel()]
    cb = yo[i[ok]]
    if m > 1:
        s2, i2 = search_topk(xn, xn, min(k + 1, m))
        ok2 = (s2 >= t) & (i2 != np.arange(m)[:, None])
        ca = np.concatenate([ca, np.repeat(fresh, i2.shape[1])[ok2.ravel()]])
        cb = np.concatenate([cb, fresh[i2[ok2]]])
    x = np.concatenate([xo, xn])
    y = np.concatenate([yo, fresh])
    y = merge_clusters(x, y, ca, cb, t, frozen=base)
    out = y[len(xo):]
    new = out >= base  # renumber fresh labels base, base+1, ... in order of first appearance
    if new.any():
        out[new] = base + relabel(out[new])
    return out
