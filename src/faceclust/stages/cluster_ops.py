"""Partition kernels of the classic baselines: Chinese whispers and graph average linkage.

Both work on an undirected weighted graph given as edge arrays ``(src, dst,
weight)`` over ``n`` nodes (typically the kNN graph's edges above a
similarity threshold). Each returns contiguous labels ``[n]`` in node order;
nodes without edges are singletons.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from numba import njit

from .._progress import progress
from ..errors import InputError, ParameterError
from ..graph import group_sums, relabel

__all__ = ["attach_by_majority", "attach_moves", "average_linkage", "chinese_whispers", "symmetric_csr"]


def symmetric_csr(src: np.ndarray, dst: np.ndarray, weight: np.ndarray, n: int) -> sp.csr_matrix:
    """Undirected ``[n, n]`` CSR of the edges: ``max(A, A.T)``, no diagonal, sorted indices.

    A pair listed in both directions (reciprocal kNN neighbours) becomes one
    undirected edge whose weight is the larger of the two values (the two are
    equal up to float rounding for an exact kNN graph).
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    if not (src.shape == dst.shape == weight.shape) or src.ndim != 1:
        raise InputError("edges: src, dst and weight must be 1-D arrays of one length")
    if len(src) and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise InputError(f"edges: node ids must lie in [0, {n})")
    keep = src != dst
    src, dst, weight = src[keep], dst[keep], weight[keep]
    # order each pair as (lo, hi) and keep the max weight per pair
    lo, hi = np.minimum(src, dst), np.maximum(src, dst)
    if len(lo):
        order = np.lexsort((-weight, hi, lo))
        lo, hi, weight = lo[order], hi[order], weight[order]
        first = np.ones(len(lo), dtype=bool)
        first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
        lo, hi, weight = lo[first], hi[first], weight[first]
    rows = np.concatenate([lo, hi])
    cols = np.concatenate([hi, lo])
    vals = np.concatenate([weight, weight])
    mat = sp.csr_matrix((vals, (rows, cols)), shape=(n, n))
    mat.sort_indices()
    return mat


# ------------------------------------------------------------- Chinese whispers
@njit(cache=True)
def _cw_round(indptr, indices, weights, labels, order, acc, stamp, touched, tick):  # pragma: no cover - numba
    """One asynchronous round: visit nodes in ``order``; each takes its neighbours' heaviest label.

    ``acc`` (float64 [n]) and ``stamp`` (int64 [n]) are scratch arrays indexed
    by label; ``stamp[l] == tick`` marks label l as already seen for the
    current node, so nothing has to be cleared between nodes. Ties go to the
    label met first in the node's adjacency list. Returns (changes, tick).
    """
    changes = 0
    for v in order:
        start = indptr[v]
        stop = indptr[v + 1]
        if start == stop:
            continue
        tick += 1
        m = 0
        for e in range(start, stop):
            lab = labels[indices[e]]
            if stamp[lab] != tick:
                stamp[lab] = tick
                acc[lab] = 0.0
                touched[m] = lab
                m += 1
            acc[lab] += weights[e]
        best = touched[0]
        best_w = acc[best]
        for t in range(1, m):
            lab = touched[t]
            if acc[lab] > best_w:
                best_w = acc[lab]
                best = lab
        if best != labels[v]:
            labels[v] = best
            changes += 1
    return changes, tick


def chinese_whispers(
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    n: int,
    *,
    iters: int = 20,
    seed: int = 42,
    progress_bar: bool | None = None,
) -> np.ndarray:
    """Chinese whispers label propagation (Biemann 2006) on the undirected weighted graph.

    Every node starts in its own class. In each of ``iters`` rounds the nodes
    are visited in a fresh random order (``numpy.random.default_rng(seed)``)
    and each node with neighbours takes the class with the largest **summed**
    edge weight among its neighbours, as learn-to-cluster's baseline does.

    Updates are **asynchronous** (a node sees the labels already changed in
    the same round), exactly like the original sequential algorithm; the
    round is one compiled numba pass, O(edges), so no vectorisation trick that
    would change the algorithm (synchronous updates oscillate on bipartite
    structures) is needed. Ties go to the class met first in the node's
    adjacency list (ascending neighbour id). The loop stops early when a round
    changes nothing: the state is then a fixed point and further rounds could
    not change it either, so the result equals running all ``iters`` rounds.

    Labels are returned in node order (learn-to-cluster returns them in
    cluster-major order, which mis-assigns them to nodes; that bug is not
    reproduced).
    """
    if iters < 0:
        raise ParameterError(f"iters must be >= 0, got {iters}")
    adj = symmetric_csr(src, dst, weight, n)
    indptr = adj.indptr.astype(np.int64)
    indices = adj.indices.astype(np.int64)
    weights = adj.data.astype(np.float64)
    labels = np.arange(n, dtype=np.int64)
    acc = np.zeros(n, dtype=np.float64)
    stamp = np.zeros(n, dtype=np.int64)
    max_deg = int(np.diff(indptr).max()) if n else 0
    touched = np.empty(max(max_deg, 1), dtype=np.int64)
    rng = np.random.default_rng(seed)
    tick = 0
    with progress(total=iters, desc="chinese whispers", enabled=progress_bar, unit="round") as bar:
        for _ in range(iters):
            order = rng.permutation(n).astype(np.int64)
            changes, tick = _cw_round(indptr, indices, weights, labels, order, acc, stamp,
                                      touched, tick)
            bar.update(1)
            if changes == 0:
                break
    return relabel(labels)


# ------------------------------------------------------- graph average linkage
def _row_best(mat: sp.csr_matrix, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the max score and its column (smallest column among ties); -inf / -1 if empty."""
    c = mat.shape[0]
    best_s = np.full(c, -np.inf)
    best_c = np.full(c, -1, dtype=np.int64)
    counts = np.diff(mat.indptr)
    nonempty = np.flatnonzero(counts)
    if len(nonempty) == 0:
        return best_s, best_c
    best_s[nonempty] = np.maximum.reduceat(scores, mat.indptr[nonempty])
    rows = np.repeat(np.arange(c), counts)
    is_max = scores == best_s[rows]
    cand = np.flatnonzero(is_max)  # CSR order: row-major, columns ascending
    _, first = np.unique(rows[cand], return_index=True)
    chosen = cand[first]
    best_c[rows[chosen]] = mat.indices[chosen]
    return best_s, best_c


def _off_diagonal(mat: sp.spmatrix) -> sp.csr_matrix:
    """CSR copy of ``mat`` without diagonal entries, indices sorted (same pattern for equal input)."""
    coo = mat.tocoo()
    keep = coo.row != coo.col
    out = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=mat.shape)
    out.sort_indices()
    return out


def average_linkage(
    src: np.ndarray,
    dst: np.ndarray,
    weight: np.ndarray,
    n: int,
    threshold: float,
    *,
    unobserved: str = "skip",
    progress_bar: bool | None = None,
) -> np.ndarray:
    """Average-linkage agglomerative clustering restricted to a sparse similarity graph.

    The similarity of clusters A and B is computed from the graph edges
    between them only (the kNN graph never sees other pairs):

    * ``unobserved="zero"`` -- ``sum w(a, b) / (|A| |B|)``: a pair without an
      edge counts as similarity 0 (graph average linkage of Dhulipala et al.,
      ICML 2021); this is exact UPGMA when non-neighbours really are
      dissimilar, and conservative otherwise (a cluster larger than about
      k / threshold points cannot grow further);
    * ``unobserved="skip"`` -- ``sum w(a, b) / #edges(A, B)``: the mean over
      the observed pairs only.

    Clusters are merged while some pair has similarity ``>= threshold``. Both
    similarities are *reducible* (the similarity of A u B to C is a weighted
    mean of those of A and B, so never above the larger), so merging all
    mutual best pairs in parallel rounds gives the same clusters as the
    sequential algorithm, and a cluster whose best similarity is below the
    threshold can never merge again and is dropped from the work set. Each
    round is a handful of sparse matrix operations; ties are broken towards
    the smaller cluster index. Edges with weight <= 0 are ignored.
    """
    if unobserved not in ("zero", "skip"):
        raise ParameterError(f"unobserved must be 'zero' or 'skip', got {unobserved!r}")
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    weight = np.asarray(weight, dtype=np.float64)
    if not (src.shape == dst.shape == weight.shape) or src.ndim != 1:
        raise InputError("edges: src, dst and weight must be 1-D arrays of one length")
    pos = weight > 0
    sim = symmetric_csr(src[pos], dst[pos], weight[pos], n)
    cnt = None
    if unobserved == "skip":
        cnt = sim.copy()
        cnt.data = np.ones_like(cnt.data)
    point_cluster = np.arange(n, dtype=np.int64)  # point -> global cluster id
    active = np.arange(n, dtype=np.int64)  # row -> global cluster id
    sizes = np.ones(n, dtype=np.float64)
    with progress(total=None, desc="average linkage", enabled=progress_bar, unit="round") as bar:
        while sim.nnz:
            rows = np.repeat(np.arange(sim.shape[0]), np.diff(sim.indptr))
            if unobserved == "zero":
                scores = sim.data / (sizes[rows] * sizes[sim.indices])
            else:
                assert cnt is not None
                scores = sim.data / cnt.data
            best_s, best_c = _row_best(sim, scores)
            live = best_s >= threshold
            if not live.any():
                break
            if not live.all():  # drop clusters that can never merge again
                keep = np.flatnonzero(live)
                sim = _off_diagonal(sim[keep][:, keep])
                if cnt is not None:
                    cnt = _off_diagonal(cnt[keep][:, keep])
                active, sizes = active[keep], sizes[keep]
                remap_rows = np.full(len(live), -1, dtype=np.int64)
                remap_rows[keep] = np.arange(len(keep))
                best_c = remap_rows[best_c[keep]]
                best_s = best_s[keep]
            c = sim.shape[0]
            idx = np.arange(c)
            mutual = (best_c[best_c] == idx) & (idx < best_c)
            a = idx[mutual]
            b = best_c[mutual]
            # b joins a: global ids, point assignment, sizes, and the cluster graph
            remap = np.arange(n, dtype=np.int64)
            remap[active[b]] = active[a]
            point_cluster = remap[point_cluster]
            target = idx.copy()
            target[b] = a
            new_ids, target = np.unique(target, return_inverse=True)
            proj = sp.csr_matrix((np.ones(c), (idx, target)), shape=(c, len(new_ids)))
            sim = _off_diagonal(proj.T @ sim @ proj)
            if cnt is not None:
                cnt = _off_diagonal(proj.T @ cnt @ proj)
            new_sizes = np.zeros(len(new_ids))
            np.add.at(new_sizes, target, sizes)
            sizes = new_sizes
            active = active[new_ids]
            bar.update(1)
    return relabel(point_cluster)


# ------------------------------------------------------------ singleton attachment
def attach_by_majority(
    labels: np.ndarray,
    nbr_ids: np.ndarray,
    min_sim: float,
    *,
    x: np.ndarray | None = None,
    nbr_sims: np.ndarray | None = None,
    share: float = 0.5,
    chunk: int = 65536,
) -> np.ndarray:
    """Singletons join the cluster that holds (at least ``share`` of) their neighbours.

    A point left alone by a threshold partition is either a stranger (a
    person photographed once) or a poor photo of a well-photographed person:
    both are below the merge threshold, but only the second has most of its
    nearest neighbours in **one** cluster. So a singleton ``i`` joins cluster
    ``c`` when more than half, and at least ``share``, of its valid neighbours
    ``nbr_ids[i]`` (self excluded, ``-1`` = missing) lie in ``c`` (``|c| >= 2``)
    **and** its mean
    cosine to ``c`` is at least ``min_sim``: over all members of ``c`` when the
    unit rows ``x`` are given (``x_i . S_c / |c|``, from the cluster sums), else
    over the neighbours in ``c`` (``nbr_sims``). Votes are read from the
    labels *before* any attachment, so the result does not depend on order.
    Memory O(singletons * neighbours + clusters touched * D), in chunks of ``chunk`` rows.

    Returns contiguous labels (:func:`faceclust.graph.relabel`).
    """
    labels = np.asarray(labels, dtype=np.int64)
    pts, targets = attach_moves(labels, nbr_ids, min_sim, x=x, nbr_sims=nbr_sims, share=share,
                                chunk=chunk)
    out = labels.copy()
    out[pts] = targets
    return relabel(out)


def attach_moves(
    labels: np.ndarray,
    nbr_ids: np.ndarray,
    min_sim: float,
    *,
    x: np.ndarray | None = None,
    nbr_sims: np.ndarray | None = None,
    share: float = 0.5,
    rows: np.ndarray | None = None,
    chunk: int = 65536,
) -> tuple[np.ndarray, np.ndarray]:
    """The moves of :func:`attach_by_majority`: ``(points, clusters)``, each point's new label.

    Only the singletons among ``rows`` (all points by default) are examined, so
    blocks of rows can be decided independently (on other workers) and the
    moves applied together: votes and cluster means read ``labels`` as given.
    """
    labels = np.asarray(labels, dtype=np.int64)
    nbr_ids = np.asarray(nbr_ids)
    n = len(labels)
    if nbr_ids.ndim != 2 or nbr_ids.shape[0] != n:
        raise InputError(f"attach: nbr_ids must have shape ({n}, m), got {nbr_ids.shape}")
    if not 0.0 <= share <= 1.0:
        raise ParameterError(f"attach: share must be in [0, 1], got {share!r}")
    if x is None and (nbr_sims is None or np.shape(nbr_sims) != nbr_ids.shape):
        raise InputError("attach: give the unit rows x, or nbr_sims of the same shape as nbr_ids")
    cnt = np.bincount(labels, minlength=1)
    cand = np.arange(n) if rows is None else np.asarray(rows, dtype=np.int64)
    single = cand[cnt[labels[cand]] == 1]
    moved_pts: list[np.ndarray] = []
    moved_to: list[np.ndarray] = []
    if len(single) == 0 or nbr_ids.shape[1] == 0:
        single = single[:0]
    for start in range(0, len(single), chunk):
        blk = single[start : start + chunk]
        nb = nbr_ids[blk]
        valid = nb >= 0
        nl = labels[np.where(valid, nb, 0)]
        vote = valid & (cnt[nl] >= 2)
        # per row: the most frequent cluster among its neighbours (ties: smallest id)
        r, c = np.nonzero(vote)
        key, votes = np.unique(r * n + nl[r, c], return_counts=True)
        kr, kc = key // n, key % n
        order = np.lexsort((kc, -votes, kr))
        kr, kc, votes = kr[order], kc[order], votes[order]
        head = np.ones(len(kr), dtype=bool)
        head[1:] = kr[1:] != kr[:-1]
        kr, kc, votes = kr[head], kc[head], votes[head]
        nval = valid.sum(axis=1)[kr]
        major = (2 * votes > nval) & (votes >= share * nval)
        kr, kc = kr[major], kc[major]
        if len(kr) == 0:
            continue
        if x is not None:
            sims = _mean_cos_to_clusters(x, labels, blk[kr], kc, cnt)
        else:
            inc = (nl[kr] == kc[:, None]) & vote[kr]
            sims = np.where(inc, nbr_sims[blk[kr]], 0.0).sum(axis=1) / inc.sum(axis=1)
        ok = sims >= min_sim
        moved_pts.append(blk[kr[ok]])
        moved_to.append(kc[ok])
    if not moved_pts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(moved_pts).astype(np.int64), np.concatenate(moved_to).astype(np.int64)


def _mean_cos_to_clusters(
    x: np.ndarray, labels: np.ndarray, pts: np.ndarray, clus: np.ndarray, cnt: np.ndarray
) -> np.ndarray:
    """``x[pts[j]] . sum(x[labels == clus[j]]) / cnt[clus[j]]`` for each j, O((|pts| + members) D)."""
    uc, inv = np.unique(clus, return_inverse=True)
    pos = np.full(len(cnt), -1, dtype=np.int64)
    pos[uc] = np.arange(len(uc))
    members = np.flatnonzero(pos[labels] >= 0)
    sums = group_sums(x[members], pos[labels[members]], len(uc))
    dots = np.einsum("ij,ij->i", x[pts].astype(np.float64), sums[inv])
    return dots / cnt[clus]
