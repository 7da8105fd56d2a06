"""FC-ES: NEP similarity refinement, early-stopping edge selection, directed Infomap."""

from __future__ import annotations

import warnings
from typing import ClassVar

import numpy as np

from ..errors import FaceclustWarning
from ..graph import relabel
from ..knn import KnnGraph, restore_order
from ..stages.partition import LINK_BYTES, available_memory, infomap_link_cap, infomap_partition
from ..stages.refine import nep
from ..stages.select import early_stop_counts, early_stop_edges
from ._base import BaseClusterer, Constraint, OneOf, Param, register

SINGLETON_POLICIES = ("fc-es", "keep-module")
_MEMORY_SHARE = 0.7  # of the memory left that the uncapped links may take (see _memory_cap)


@register("fc-es")
class FCES(BaseClusterer):
    """FC-ES (Liu, arXiv 2408.13431), the unsupervised half of FC-ESER.

    1. refine: NEP of every kNN slot (:func:`faceclust.stages.refine.nep`, ``sigma``);
    2. select: walk each row in kNN order, link ``i -> u`` (weight NEP) while
       NEP >= ``theta``, stop at the first neighbour below ``theta``
       (:func:`faceclust.stages.select.early_stop_edges`);
    3. partition: directed two-level Infomap on those links (fixed ``seed``).

    The defaults are the paper's MS1M settings (about 68 photos per person).
    On LFW ArcFace-512, where most people have one photo, they over-merge:
    pairwise F 0.60 at k=80, 0.70 at k=20 (knn-cc, k=10, threshold 0.55: 0.976).

    Parameters
    ----------
    k : int
        Neighbours per point, self included (80 in the paper).
    sigma : float
        NEP kernel width (0.5).
    theta : float
        Early-stopping threshold on NEP (0.22).
    singletons : {"fc-es", "keep-module"}
        Nodes without any outgoing link ("single"): ``"fc-es"`` gives each a
        fresh singleton label even if other nodes linked to it and Infomap put
        it in their module (the reference code's behaviour, needed to match
        published numbers); ``"keep-module"`` keeps Infomap's module (FaceMap's
        choice).
    seed : int
        Infomap's random seed.
    num_trials : int
        Infomap trials (1 as in the reference).
    max_links : int or None
        If set, keep at most this many early-stop links per node (the most
        similar ones). None (default) is the published method; a cap of ~20
        cuts Infomap's time and memory about 3x on tight data (docs/benchmarks.md).
        With None, if Infomap would not fit in the memory the machine has left
        (about 110 bytes per link: 315M links, 35 GB, for 5.21M tight faces),
        the largest cap that fits is used instead, with a
        :class:`~faceclust.errors.FaceclustWarning`, rather than running out
        of memory.

    Attributes
    ----------
    max_links_ : int or None
        The cap actually used (None: the published method, uncapped).
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "k": Param(int, 2),
        "sigma": Param((int, float), 0.0, lo_open=True),
        "theta": Param((int, float), 0.0, 1.0),
        "singletons": (Param(str), OneOf(SINGLETON_POLICIES, f"one of {', '.join(SINGLETON_POLICIES)}")),
        "seed": Param(int, 0),
        "num_trials": Param(int, 1),
        "max_links": Param(int, 1, optional=True),
    }

    def __init__(
        self,
        k: int = 80,
        sigma: float = 0.5,
        theta: float = 0.22,
        singletons: str = "fc-es",
        seed: int = 123,
        num_trials: int = 1,
        max_links: int | None = None,
    ) -> None:
        self.k = k
        self.sigma = sigma
        self.theta = theta
        self.singletons = singletons
        self.seed = seed
        self.num_trials = num_trials
        self.max_links = max_links

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        graph, order = self._local(self._knn(x, knn, self._graph_k(x, knn)))
        with self._stage("refine"):
            # an executor (faceclust.distributed) scores blocks of rows on workers
            refine = self._executor.nep if self._executor is not None else nep
            scores = refine(graph, float(self.sigma))
        with self._stage("select"):
            cap = self.max_links
            if cap is None:
                cap = self._memory_cap(graph, scores)
            src, dst, w, single = early_stop_edges(graph.ids, scores, float(self.theta), cap)
            self.max_links_ = cap
        src, dst, w, single = self._recall(x, order, graph, scores, src, dst, w, single)
        with self._stage("select"):
            n = graph.n
            del scores, graph  # the renumbered copy: Infomap needs the memory
        with self._stage("partition"):
            labels = infomap_partition(
                src, dst, w, n, directed=True, two_level=True,
                seed=self.seed, num_trials=self.num_trials,
            )
            if self.singletons == "fc-es":
                labels[single] = -1  # relabel turns each into a fresh singleton
            labels = relabel(restore_order(labels, order))
        self.n_links_ = len(src)
        self.n_single_ = int(single.sum())
        return labels

    def _memory_cap(self, graph: KnnGraph, scores: np.ndarray) -> int | None:
        """A link cap if the uncapped links would not fit in memory for Infomap, else None."""
        free = available_memory()
        if free is None:
            return None
        counts = early_stop_counts(graph.ids, scores, float(self.theta))
        # the renumbered graph and the scores are freed before Infomap runs; 30 % is left
        # for the rest of the process (at 5.21M on a 23.5 GB machine a 0.9 share was killed
        # for memory at 24.4 GB, and 0.75 with 72 bytes a link peaked at 22.7 GB)
        budget = _MEMORY_SHARE * (free + scores.nbytes + graph.ids.nbytes + graph.sims.nbytes)
        cap = infomap_link_cap(counts, budget)
        if cap is not None:
            warnings.warn(
                f"fc-es: Infomap would need about {counts.sum() * LINK_BYTES / 1e9:.1f} GB for "
                f"{counts.sum():,} links, more than the {budget / 1e9:.1f} GB this machine has "
                f"left; keeping each face's {cap} most similar links (max_links={cap}). Set "
                "max_links to choose, or use a machine with more memory for the published method.",
                FaceclustWarning, stacklevel=3,
            )
        return cap

    def _graph_k(self, x: np.ndarray | None, knn: KnnGraph | None) -> int:
        """The kNN size to use (``k``; FC-ESER may take it from its model)."""
        return self.k

    def _recall(self, x, order, graph, scores, src, dst, w, single):
        """Hook between select and partition: extra links (FC-ESER's edge recall); none here."""
        return src, dst, w, single
