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
keeps the pairs with that majority evidence; :func:`merge_along_pairs` runs
exact average linkage (mean cosine over all member pairs, from cluster vector
sums), starting from the partition and merging only along those pairs;
:func:`join_clusters` is the two in a row.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError, ParameterError
from ..graph import group_sums, relabel

__all__ = ["cluster_votes", "evidenced_pairs", "join_clusters", "merge_along_pairs"]


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


def merge_along_pairs(
    x: np.ndarray,
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """Exact average linkage starting from ``labels``, merging only along the cluster pairs ``(a, b)``.

    Clusters A, B joined by a pair merge while their mean cosine over all
    ``|A| |B|`` member pairs, ``S_A . S_B / (|A| |B|)`` (``S`` = sum of the
    unit rows ``x``), is at least ``threshold``; a merged cluster inherits its
    parts' pairs. Merges run in rounds of mutual best pairs (ties: smallest
    id), exact for the reducible average linkage. Cost O((N + rounds * E) D)
    for E pairs. Returns contiguous labels.
    """
    labels = relabel(np.asarray(labels, dtype=np.int64))
    a = np.asarray(a, dtype=np.int64)
    b = np.asarray(b, dtype=np.int64)
    if a.shape != b.shape or a.ndim != 1:
        raise InputError("join: a and b must be 1-D arrays of one length")
    if len(labels) != x.shape[0]:
        raise InputError(f"join: {len(labels)} labels for {x.shape[0]} rows")
    c = int(labels.max()) + 1 if len(labels) else 0
    if len(a) and (min(a.min(), b.min()) < 0 or max(a.max(), b.max()) >= c):
        raise InputError(f"join: cluster ids must lie in [0, {c})")
    if len(a) == 0:
        return labels
    sums = group_sums(x, labels, c)
    cnt = np.bincount(labels, minlength=c).astype(np.float64)
    root = np.arange(c, dtype=np.int64)
    u, v = a, b
    while len(u):
        u, v = np.minimum(u, v), np.maximum(u, v)
        keep = u != v
        pair = np.unique(u[keep] * c + v[keep])
        u, v = pair // c, pair % c
        link = np.einsum("ij,ij->i", sums[u], sums[v]) / (cnt[u] * cnt[v])
        ok = link >= threshold
        u, v, link = u[ok], v[ok], link[ok]
        if not len(u):
            break
        # best partner per cluster (highest linkage, ties: smallest id)
        node = np.concatenate([u, v])
        other = np.concatenate([v, u])
        w = np.concatenate([link, link])
        order = np.lexsort((other, -w, node))
        node, other = node[order], other[order]
        head = np.ones(len(node), dtype=bool)
        head[1:] = node[1:] != node[:-1]
        best = np.full(c, -1, dtype=np.int64)
        best[node[head]] = other[head]
        cand = node[head]
        mutual = (best[best[cand]] == cand) & (cand < best[cand])
        m1 = cand[mutual]
        m2 = best[m1]
        sums[m1] += sums[m2]
        cnt[m1] += cnt[m2]
        remap = np.arange(c, dtype=np.int64)
        remap[m2] = m1
        root = remap[root]
        u, v = remap[u], remap[v]
    return relabel(root[labels])


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
    """:func:`evidenced_pairs` then :func:`merge_along_pairs` at ``threshold`` (method ``auto``'s step)."""
    a, b = evidenced_pairs(labels, nbr_ids, nbr_sims, slots=slots, share=share, back=back,
                           touch=touch)
    return merge_along_pairs(x, labels, a, b, threshold)
