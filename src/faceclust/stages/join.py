"""Cluster-to-cluster joining: regroup the pieces of one person that a threshold partition split.

A person photographed many times in varied conditions (pose, age, make-up,
lighting) is often split by average linkage: each pose group is coherent, but
the mean cosine over *all* pairs of two groups stays under the merge
threshold. Such a piece differs from a look-alike person in who its
neighbours are:

* a **piece of a person** has a large part of its members' nearest neighbours
  in the person's other piece (the rest of that person is near), that piece
  holds most of the neighbours found outside the piece, and its members list
  the piece back; and the two touch: some photo of one has a photo of the
  other among its neighbours at a same-person similarity (pose groups blend
  into each other);
* a **look-alike** (a complete small identity) keeps most of its neighbours
  to itself, and a big, spread-out identity that many strangers have among
  their neighbours (a famous face with hundreds of photos) rarely lists those
  strangers back; two tight identities that are each other's nearest
  clusters have a gap between them.

:func:`cluster_votes` counts, per ordered pair of clusters, the neighbour
slots of one cluster's members that lie in the other; :func:`evidenced_pairs`
keeps the pairs with that majority evidence; :func:`join_clusters` then runs
exact average linkage (mean cosine over all member pairs, from cluster vector
sums), starting from the partition and merging only along those pairs
(:func:`faceclust.stages.linkage.merge_clusters`).
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ParameterError
from ..graph import relabel
from .linkage import merge_clusters

__all__ = ["cluster_votes", "evidenced_pairs", "join_clusters"]


def cluster_votes(
    labels: np.ndarray, nbr_ids: np.ndarray, *, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Neighbour slots per ordered cluster pair: ``(a, b, votes)``, ``a == b`` included.

    ``votes[j]`` is the number of entries ``nbr_ids[i, t]`` (``-1`` = missing,
    skipped) with ``labels[i] == a[j]`` and ``labels[nbr_ids[i, t]] == b[j]``.
    Pairs are sorted by ``(a, b)``; pairs with no vote are absent. Memory
    O(chunk * m + distinct pairs), rows read in chunks of ``chunk``.
    """
    labels = np.asarray(labels, dtype=np.int64)
    nbr_ids = np.asarray(nbr_ids)
    n = len(labels)
    if nbr_ids.ndim != 2 or nbr_ids.shape[0] != n:
        raise InputError(f"cluster_votes: nbr_ids must have shape ({n}, m), got {nbr_ids.shape}")
    c = int(labels.max()) + 1 if n else 0
    keys, counts = [], []
    for start in range(0, n, chunk):
        nb = nbr_ids[start : start + chunk]
        valid = nb >= 0
        rows = np.broadcast_to(labels[start : start + chunk, None], nb.shape)[valid]
        key, cnt = np.unique(rows * c + labels[nb[valid]], return_counts=True)
        keys.append(key)
        counts.append(cnt)
    if not keys:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    key = np.concatenate(keys)
    cnt = np.concatenate(counts)
    if len(keys) > 1:  # the same pair may appear in several chunks
        key, inv = np.unique(key, return_inverse=True)
        cnt = np.bincount(inv, weights=cnt).astype(np.int64)
    return key // c, key % c, cnt.astype(np.int64)


def evidenced_pairs(
    labels: np.ndarray,
    nbr_ids: np.ndarray,
    nbr_sims: np.ndarray | None = None,
    *,
    slots: float = 0.45,
    share: float = 0.5,
    back: float = 0.2,
    touch: float | None = None,
    min_size: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster pairs ``(a, b)``, ``a < b``, where one looks like a piece of the other.

    Cluster ``A`` (``|A| >= min_size``) has that evidence for ``B``
    (``|B| >= min_size``) when, over the neighbour slots ``nbr_ids`` of its
    members (self excluded, ``-1`` missing):

    * at least ``slots`` of all its valid slots lie in ``B`` (a real part of
      its neighbourhood, not a few stray votes);
    * at least ``share`` of its slots *outside* ``A`` lie in ``B`` (its other
      neighbours agree on one cluster);
    * ``B``'s members put at least ``back`` times as many slots in ``A`` as
      ``A``'s put in ``B`` (``B`` lists it back: not a hub every stranger is near);
    * when ``touch`` is given: some neighbour pair between the two has
      similarity ``nbr_sims >= touch`` (the two touch, as the pose groups of
      one person do; two tight clusters with a gap between them do not).

    Singletons are left to :func:`faceclust.stages.cluster_ops.attach_by_majority`.
    Returns cluster ids of ``labels`` (two int64 arrays, each pair once).
    """
    for name, val in (("slots", slots), ("share", share), ("back", back)):
        if not 0.0 <= val <= 1.0:
            raise ParameterError(f"join: {name} must be in [0, 1], got {val!r}")
    if min_size < 1:
        raise ParameterError(f"join: min_size must be >= 1, got {min_size!r}")
    labels = np.asarray(labels, dtype=np.int64)
    a, b, v = cluster_votes(labels, nbr_ids)
    if len(a) == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, e
    c = int(labels.max()) + 1
    size = np.bincount(labels, minlength=c)
    total = np.bincount(a, weights=v, minlength=c)  # valid slots per cluster
    inside = np.zeros(c)
    self_pair = a == b
    inside[a[self_pair]] = v[self_pair]
    outside = total - inside
    off = ~self_pair
    a, b, v = a[off], b[off], v[off]
    # votes of the reverse pair (b -> a), 0 if absent; keys are sorted by (a, b)
    key = a * c + b
    rkey = b * c + a
    pos = np.minimum(np.searchsorted(key, rkey), len(key) - 1)
    rv = np.where(key[pos] == rkey, v[pos], 0)
    ok = (
        (size[a] >= min_size) & (size[b] >= min_size) & (outside[a] > 0)
        & (v >= slots * total[a]) & (v >= share * outside[a]) & (rv >= back * v)
    )
    lo, hi = np.minimum(a[ok], b[ok]), np.maximum(a[ok], b[ok])
    pair = np.unique(lo * c + hi)
    if touch is not None and len(pair):
        if nbr_sims is None or np.shape(nbr_sims) != np.shape(nbr_ids):
            raise InputError("join: touch needs nbr_sims of the same shape as nbr_ids")
        pair = pair[_strongest_edge(labels, nbr_ids, nbr_sims, pair, c) >= touch]
    return pair // c, pair % c


def _strongest_edge(labels: np.ndarray, nbr_ids: np.ndarray, nbr_sims: np.ndarray,
                    pair: np.ndarray, c: int, chunk: int = 65536) -> np.ndarray:
    """Per cluster pair key ``lo * c + hi``: the largest neighbour similarity between them."""
    best = np.full(len(pair), -np.inf)
    for start in range(0, len(labels), chunk):
        nb = np.asarray(nbr_ids[start : start + chunk])
        valid = nb >= 0
        la = np.broadcast_to(labels[start : start + chunk, None], nb.shape)[valid]
        lb = labels[nb[valid]]
        key = np.minimum(la, lb) * c + np.maximum(la, lb)
        pos = np.minimum(np.searchsorted(pair, key), len(pair) - 1)
        hit = pair[pos] == key
        np.maximum.at(best, pos[hit], np.asarray(nbr_sims[start : start + chunk])[valid][hit])
    return best


def join_clusters(
    x: np.ndarray,
    labels: np.ndarray,
    nbr_ids: np.ndarray,
    threshold: float,
    *,
    slots: float = 0.45,
    share: float = 0.5,
    back: float = 0.2,
    touch: float | None = None,
    nbr_sims: np.ndarray | None = None,
) -> np.ndarray:
    """Method ``auto``'s joining step: :func:`evidenced_pairs`, then exact average linkage
    from the partition along those pairs only (:func:`faceclust.stages.linkage.merge_clusters`,
    mean cosine over all member pairs from cluster sums) down to ``threshold``.

    Returns contiguous labels.
    """
    labels = relabel(np.asarray(labels, dtype=np.int64))
    if x.shape[0] != len(labels):
        raise InputError(f"join: {len(labels)} labels for {x.shape[0]} rows")
    a, b = evidenced_pairs(labels, nbr_ids, nbr_sims, slots=slots, share=share, back=back,
                           touch=touch)
    return relabel(merge_clusters(x, labels, a, b, threshold))
