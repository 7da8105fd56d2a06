"""Two baselines straight on the kNN graph: thresholded components and Infomap."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..graph import relabel
from ..knn import KnnGraph, restore_order
from ..stages.partition import connected_components, infomap_partition
from ._base import BaseClusterer, Constraint, Param, register


@register("knn-cc")
class KnnConnectedComponents(BaseClusterer):
    """Connected components of kNN edges with cosine similarity >= threshold.

    Parameters
    ----------
    k : int
        Neighbours per point, self included.
    threshold : float
        Keep edge i -> j when sim(i, j) >= threshold (inclusive, as learn-to-cluster).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.array([[1, 0], [0.99, 0.1], [0, 1], [0.1, 0.99]], dtype=np.float32)
    >>> KnnConnectedComponents(k=2, threshold=0.9).fit_predict(X).tolist()
    [0, 0, 1, 1]
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "k": Param(int, 2),
        "threshold": Param((int, float), -1.0, 1.0),
    }

    def __init__(self, k: int = 10, threshold: float = 0.7) -> None:
        self.k = k
        self.threshold = threshold

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        graph = self._knn(x, knn, self.k)
        with self._stage("select"):
            src, dst, _ = graph.edges(min_sim=float(self.threshold))
        with self._stage("partition"):
            return connected_components(src, dst, graph.n)


@register("infomap")
class KnnInfomap(BaseClusterer):
    """Directed two-level Infomap on the kNN graph, edges weighted by cosine similarity.

    The strong unsupervised baseline of B-Attention's table (MS1M part1 F_P
    93.91). Edges with similarity below ``min_sim`` are dropped first.

    Parameters
    ----------
    k : int
        Neighbours per point, self included.
    min_sim : float
        Drop edges whose similarity is below this (0 keeps all positive edges).
    seed : int
        Infomap's random seed (results are reproducible for a fixed seed).
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "k": Param(int, 2),
        "min_sim": Param((int, float), -1.0, 1.0),
        "seed": Param(int, 0),
    }

    def __init__(self, k: int = 80, min_sim: float = 0.0, seed: int = 123) -> None:
        self.k = k
        self.min_sim = min_sim
        self.seed = seed

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        graph, order = self._local(self._knn(x, knn, self.k))
        with self._stage("select"):
            src, dst, w = graph.edges(min_sim=float(self.min_sim))
        with self._stage("partition"):
            labels = infomap_partition(src, dst, w, graph.n, directed=True, seed=self.seed)
            return relabel(restore_order(labels, order))
