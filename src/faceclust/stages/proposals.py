"""Cluster proposals (GCN-D/S, learn-to-cluster CVPR'19): super-vertices, iterative proposals,
IoU/IoP targets and de-overlap.

A set of proposals is a :class:`Proposals` (concatenated member lists, CSR style:
proposal ``p`` holds ``nodes[ptr[p]:ptr[p+1]]``); proposals may overlap.

* :func:`super_vertices` -- iteration 0: kNN pairs with similarity ``>= threshold``,
  then the size-capped dynamic-threshold components of CDP
  (:func:`~faceclust.stages.partition.dynamic_threshold_components`, threshold
  raised by ``step`` on components above ``max_size``). Every node gets a label;
  no cluster exceeds the cap (leftovers after ``max_iter`` rounds are cut into
  pieces instead of the reference's one merged cluster).
* :func:`iterative_proposals` -- iteration 1: super-vertices (the iteration-0 clusters,
  singletons included) become nodes with the mean of their members' features, a small
  kNN over them, super-vertex proposals again, expanded back to faces.
* :func:`generate_proposals` -- a list of settings (:data:`PRESETS`: the paper's
  2 / 5 / 8 / 20 proposal settings) into one de-duplicated :class:`Proposals`.
* :func:`proposal_targets` -- IoU and IoP of each proposal against the majority identity.
* :func:`deoverlap` -- proposals by descending score, each face keeps its first one.

Thresholds of the presets are the paper's (MS1M, ArcFace-like scale: different people
near cosine 0). ``offset`` maps them onto another similarity scale:
``th' = offset + th (1 - offset)`` with ``offset`` the random-pair cosine mean of the
data (:func:`similarity_offset`; ~0 ArcFace-like, ~0.83 dlib), so 0.7 becomes ~0.95 on dlib.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._progress import progress
from ..errors import InputError, ParameterError
from ..graph import relabel
from .partition import dynamic_threshold_components
from .select import threshold_edges, unique_pairs

__all__ = [
    "PRESETS",
    "Proposals",
    "deoverlap",
    "generate_proposals",
    "iterative_proposals",
    "mean_knn",
    "proposal_targets",
    "proposals_from_labels",
    "similarity_offset",
    "super_vertices",
]

#: The paper's proposal settings (learn-to-cluster configs, §5.3 of the spec), by the number
#: of settings. ``iter0``: ``(threshold, kept)`` -- an iteration-0 setting not kept only seeds
#: iteration 1; ``iter1``: ``(k, sv_max_size)`` applied to every iteration-0 setting.
PRESETS: dict[str, dict[str, tuple]] = {
    "2": {"iter0": ((0.7, True), (0.75, True)), "iter1": ()},
    "5": {"iter0": tuple((t, True) for t in (0.55, 0.6, 0.65, 0.7, 0.75)), "iter1": ()},
    "8": {"iter0": ((0.6, True), (0.7, True), (0.75, False)), "iter1": ((2, 8), (3, 5))},
    "20": {"iter0": ((0.6, True), (0.7, True), (0.75, False)),
           "iter1": ((2, 8), (2, 12), (2, 16), (3, 5), (3, 10), (4, 4))},
}


@dataclass(frozen=True)
class Proposals:
    """Possibly overlapping groups of faces: proposal ``p`` is ``nodes[ptr[p]:ptr[p+1]]``."""

    ptr: np.ndarray  # [P + 1] int64
    nodes: np.ndarray  # [M] int64

    def __len__(self) -> int:
        return len(self.ptr) - 1

    @property
    def sizes(self) -> np.ndarray:
        """Members per proposal ``[P]``."""
        return np.diff(self.ptr)

    def members(self, p: int) -> np.ndarray:
        """Face ids of proposal ``p``."""
        return self.nodes[self.ptr[p] : self.ptr[p + 1]]

    def owner(self) -> np.ndarray:
        """Proposal index of every entry of ``nodes`` ``[M]``."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.sizes)

    @staticmethod
    def concat(parts: list[Proposals]) -> Proposals:
        """All proposals of ``parts`` in order."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return Proposals(np.zeros(1, np.int64), np.zeros(0, np.int64))
        sizes = np.concatenate([p.sizes for p in parts])
        return Proposals(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                         np.concatenate([p.nodes for p in parts]).astype(np.int64))

    def unique(self) -> Proposals:
        """Identical member sets kept once (first occurrence, order otherwise kept)."""
        if len(self) < 2:
            return self
        own = self.owner()
        order = np.lexsort((self.nodes, own))
        srt = self.nodes[order]  # members sorted within each proposal
        h1 = np.zeros(len(self), np.uint64)
        h2 = np.zeros(len(self), np.uint64)
        with np.errstate(over="ignore"):
            v = srt.astype(np.uint64) + np.uint64(1)
            np.add.at(h1, own, v * np.uint64(0x9E3779B97F4A7C15))
            np.add.at(h2, own, (v * v) ^ np.uint64(0xC2B2AE3D27D4EB4F))
        key = np.stack([self.sizes.astype(np.uint64), h1, h2], axis=1)
        _, first = np.unique(key, axis=0, return_index=True)
        keep = np.sort(first)
        return self.select(keep)

    def select(self, which: np.ndarray) -> Proposals:
        """The proposals ``which`` (indices), in that order."""
        which = np.asarray(which, dtype=np.int64)
        sizes = self.sizes[which]
        ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        pos = np.repeat(self.ptr[which] - ptr[:-1], sizes) + np.arange(ptr[-1])
        return Proposals(ptr, self.nodes[pos])


def similarity_offset(x: np.ndarray, pairs: int = 20000, seed: int = 0) -> float:
    """Random-pair cosine mean of the rows of ``x``, clipped to [0, 0.95] (the data's scale).

    Used to move the presets' ArcFace-scale thresholds onto the data's scale; a
    negative mean counts as 0.
    """
    n = x.shape[0]
    if n < 2:
        return 0.0
    rng = np.random.default_rng(seed)
    i = rng.integers(0, n, pairs)
    j = (i + rng.integers(1, n, pairs)) % n
    s = np.einsum("ij,ij->i", x[i].astype(np.float32), x[j].astype(np.float32))
    return float(np.clip(s.mean(), 0.0, 0.95))


def scaled(th: float, offset: float) -> float:
    """``offset + th (1 - offset)``: an ArcFace-scale threshold on a scale with random-pair mean ``offset``."""
    return float(offset + th * (1.0 - offset))


def super_vertices(
    ids: np.ndarray, sims: np.ndarray, threshold: float, max_size: int, *,
    step: float = 0.05, max_iter: int = 100,
) -> np.ndarray:
    """Iteration-0 super-vertices: labels ``[N]`` (every node, no cluster above ``max_size``).

    Pairs are the kNN slots with ``sim >= threshold`` (self and missing dropped,
    de-duplicated as unordered pairs, learn-to-cluster ``filter_knns``), partitioned
    by the size-capped dynamic-threshold components (pass 0 without a threshold,
    then ``th <- th + (1 - th) step`` from the lowest pair score). Components still
    too big after ``max_iter`` rounds (only exact duplicates get there) are cut into
    consecutive pieces of ``max_size``. Nodes without a pair are singletons.
    """
    ids = np.asarray(ids)
    n = ids.shape[0]
    if isinstance(max_size, bool) or not isinstance(max_size, int | np.integer) or max_size < 1:
        raise ParameterError(f"max_size must be an integer >= 1, got {max_size!r}")
    src, dst, w = threshold_edges(ids, np.asarray(sims), float(threshold))
    src, dst, w = unique_pairs(src, dst, w)
    labels = dynamic_threshold_components(src, dst, w, n, int(max_size), float(step),
                                          int(max_iter), leftover="components")
    sizes = np.bincount(labels)
    if sizes.max(initial=0) > max_size:
        big = np.flatnonzero(sizes > max_size)
        for c in big:
            members = np.flatnonzero(labels == c)
            piece = np.arange(len(members)) // max_size
            labels[members[piece > 0]] = labels.max() + piece[piece > 0]
        labels = relabel(labels)
    return labels


def proposals_from_labels(labels: np.ndarray, min_size: int = 1,
                          max_size: int | None = None) -> Proposals:
    """The clusters of ``labels`` (label order, members ascending) with
    ``min_size <= size <= max_size`` as proposals; negative labels are ignored."""
    labels = np.asarray(labels, dtype=np.int64)
    ok = np.flatnonzero(labels >= 0)
    if len(ok) == 0:
        return Proposals(np.zeros(1, np.int64), np.zeros(0, np.int64))
    order = ok[np.argsort(labels[ok], kind="stable")]
    lab = labels[order]
    starts = np.flatnonzero(np.r_[True, lab[1:] != lab[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    keep = (sizes >= min_size) & (sizes <= (max_size if max_size is not None else len(order)))
    p = Proposals(np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), order)
    return p.select(np.flatnonzero(keep))


def mean_knn(x: np.ndarray, labels0: np.ndarray, k: int, *,
             normalize: bool = False) -> tuple[np.ndarray, np.ndarray] | None:
    """kNN of the iteration-0 clusters' **mean** features (``labels0`` relabelled 0..C-1,
    singletons included; not re-normalised, as the reference, unless ``normalize``):
    ``(sims, ids)`` ``[C, min(k, C)]`` in descending order (a mean need not be its own
    nearest: means are not unit vectors); None when there are fewer than 2 clusters.
    Inner products of the means (:func:`faceclust.knn.self_topk_ip`: exact up to 100,000
    clusters, ``ivf-blas`` beyond: the exact search over the 151K means of a 584K set took
    221 CPU-s, the approximate one 20 CPU-s at recall 0.98)."""
    from ..graph import group_sums
    from ..knn import self_topk_ip

    labels0 = relabel(np.asarray(labels0))
    c = int(labels0.max()) + 1 if len(labels0) else 0
    if c < 2:
        return None
    sums = group_sums(np.asarray(x, dtype=np.float32), labels0, c)
    mean = (sums / np.bincount(labels0, minlength=c)[:, None]).astype(np.float32)
    if normalize:
        mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
    sims, ids = self_topk_ip(mean, int(k))
    return np.asarray(sims, np.float32), np.asarray(ids, np.int64)


def iterative_proposals(
    x: np.ndarray, labels0: np.ndarray, k: int, sv_max_size: int, *,
    threshold: float = 0.4, step: float = 0.05, sv_min_size: int = 2, min_size: int = 3,
    max_size: int = 500, normalize: bool = False,
    knn: tuple[np.ndarray, np.ndarray] | None = None,
) -> Proposals:
    """Iteration-1 proposals: super-vertex proposals over the iteration-0 clusters ``labels0``.

    Each cluster of ``labels0`` (singletons included) is a node with the **mean** of its
    members' features; a kNN of ``k`` (self included) over them (:func:`mean_knn`, or its
    result ``knn`` for at least ``k`` neighbours, cut to ``k``: one search serves every
    ``k`` of a preset); :func:`super_vertices` with ``threshold`` and ``sv_max_size``;
    groups of ``>= sv_min_size`` super-vertices expanded to faces and kept when
    ``min_size <= faces <= max_size``.
    """
    labels0 = relabel(np.asarray(labels0))
    if knn is None:
        knn = mean_knn(x, labels0, k, normalize=normalize)
    if knn is None:
        return Proposals(np.zeros(1, np.int64), np.zeros(0, np.int64))
    # the top k of a longer sorted list are the top k; self goes first after the cut
    sims, ids = _self_first(knn[1][:, : int(k)].copy(), knn[0][:, : int(k)].copy())
    sv = super_vertices(ids, sims, threshold, int(sv_max_size), step=step)
    sv_sizes = np.bincount(sv)
    sv = np.where(sv_sizes[sv] >= sv_min_size, sv, -1)
    return proposals_from_labels(np.where(sv[labels0] >= 0, sv[labels0], -1), min_size, max_size)


def _self_first(ids: np.ndarray, sims: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Put each row's own id in column 0 (ties of un-normalised means may hide it)."""
    n = ids.shape[0]
    rows = np.arange(n)
    here = ids == rows[:, None]
    has = here.any(axis=1)
    col = np.where(has, here.argmax(axis=1), ids.shape[1] - 1)
    ids[rows, col] = ids[:, 0]
    sims[rows, col] = sims[:, 0]
    ids[:, 0] = rows
    return sims, ids


def generate_proposals(
    x: np.ndarray, ids: np.ndarray, sims: np.ndarray, preset: str = "2", *,
    offset: float = 0.0, max_size: int = 300, min_size: int = 3, step: float = 0.05,
    iter1_threshold: float = 0.4, iter1_max_size: int = 500, normalize_iter1: bool = False,
    progress_bar: bool | None = None,
) -> Proposals:
    """All proposals of a :data:`PRESETS` setting over the kNN ``ids``/``sims`` of ``x``.

    Iteration 0 per threshold (moved onto the data's scale with ``offset``, see the
    module docstring), clusters of ``min_size..max_size`` faces kept when the setting
    is kept; iteration 1 from every iteration-0 setting with each ``(k, sv_max_size)``
    (``iter1_threshold`` is on the super-vertex mean scale, moved by ``offset`` too).
    Identical proposals from different settings are kept once.
    """
    if preset not in PRESETS:
        raise ParameterError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    spec = PRESETS[preset]
    parts: list[Proposals] = []
    total = len(spec["iter0"]) * (1 + len(spec["iter1"]))
    with progress(total=total, desc="proposals", unit="setting", enabled=progress_bar) as bar:
        for th, kept in spec["iter0"]:
            labels0 = super_vertices(ids, sims, scaled(th, offset), max_size, step=step)
            if kept:
                parts.append(proposals_from_labels(labels0, min_size, max_size))
            bar.update(1)
            # one search of the cluster means for every iteration-1 k of the setting
            knn = (mean_knn(x, labels0, max(k1 for k1, _ in spec["iter1"]),
                            normalize=normalize_iter1) if spec["iter1"] else None)
            for k1, sv_max in spec["iter1"]:
                parts.append(iterative_proposals(
                    x, labels0, k1, sv_max, threshold=scaled(iter1_threshold, offset),
                    step=step, min_size=min_size, max_size=iter1_max_size,
                    normalize=normalize_iter1, knn=knn))
                bar.update(1)
    return Proposals.concat(parts).unique()


def proposal_targets(props: Proposals, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(IoU [P], IoP [P])`` of each proposal against its majority identity G.

    ``IoU = |P ∩ G| / |P ∪ G|``, ``IoP = |P ∩ G| / |P|``; G = every face of the most
    frequent label among the members (ties: the smallest label).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise InputError(f"labels: expected a 1-D vector, got shape {labels.shape}")
    _, lab = np.unique(labels, return_inverse=True)
    lab = lab.reshape(-1).astype(np.int64)
    n_lab = int(lab.max()) + 1 if len(lab) else 0
    class_size = np.bincount(lab, minlength=n_lab)
    own = props.owner()
    key = own * n_lab + lab[props.nodes]
    uk, cnt = np.unique(key, return_counts=True)  # sorted by (proposal, label)
    prop = uk // n_lab
    # majority per proposal: max count, ties -> smallest label (first in sorted order)
    order = np.lexsort((uk % n_lab, -cnt, prop))
    first = order[np.r_[True, prop[order][1:] != prop[order][:-1]]]
    inter = np.zeros(len(props), np.float64)
    gsize = np.zeros(len(props), np.float64)
    inter[prop[first]] = cnt[first]
    gsize[prop[first]] = class_size[uk[first] % n_lab]
    size = props.sizes.astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(size > 0, inter / (size + gsize - inter), 0.0)
        iop = np.where(size > 0, inter / size, 0.0)
    return iou.astype(np.float32), iop.astype(np.float32)


def deoverlap(props: Proposals, scores: np.ndarray, n: int, *,
              min_score: float | None = None) -> np.ndarray:
    """Labels ``[n]`` from overlapping proposals: by descending score, each face keeps the
    first proposal it is in (ties: proposal order); faces in none are singletons.

    ``min_score`` drops proposals scoring below it first (the reference's ``th_pos``).
    A proposal whose faces were all taken leaves no cluster. O(M log M), vectorised.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (len(props),):
        raise InputError(f"scores: expected shape ({len(props)},), got {scores.shape}")
    if np.isnan(scores).any():
        raise InputError("scores contain NaN")
    rank = np.argsort(-scores, kind="stable")
    if min_score is not None:
        rank = rank[scores[rank] >= min_score]
    pos_of = np.full(len(props), np.iinfo(np.int64).max, dtype=np.int64)
    pos_of[rank] = np.arange(len(rank))
    own = props.owner()
    entry_rank = pos_of[own]
    ok = entry_rank < len(rank)
    nodes, entry_rank = props.nodes[ok], entry_rank[ok]
    best = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    np.minimum.at(best, nodes, entry_rank)
    labels = np.where(best < len(rank), best, -1)
    return relabel(np.where(labels >= 0, labels, -1))
