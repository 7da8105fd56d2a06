"""Approximate rank-order clustering (learn-to-cluster's ``aro`` baseline)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..graph import connected_components
from ..knn import KnnGraph
from ..stages.refine import rank_order_distance
from ..stages.select import threshold_edges
from ._base import BaseClusterer, Constraint, Param, register


@register("aro")
class ApproxRankOrder(BaseClusterer):
    """Approximate rank-order clustering (Otto et al.), as learn-to-cluster's baseline.

    1. refine: the approximate rank-order distance of every kNN slot
       (:func:`faceclust.stages.refine.rank_order_distance`; 9999 when the
       pair is not mutual);
    2. select: "plausible neighbours", slots with distance <= ``1 - threshold``;
    3. partition: connected components of those links (treated as undirected;
       the reference's breadth-first grouping over directed links depends on
       visiting order, components do not). Every node is labelled.

    Defaults ``k=80, threshold=0`` are the learn-to-cluster README setting
    (MS1M part1: P 99.77 / R 7.2 / F_P 13.42). On singleton-heavy data it
    over-merges instead: LFW ArcFace-512 (7,605 faces, k=80) pairwise F 0.008,
    with 21% of the plausible-neighbour links joining different people.

    Parameters
    ----------
    k : int
        Neighbours per point, self included.
    threshold : float
        Link when rank-order distance <= 1 - threshold (at most 1; lower values
        allow larger distances).
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "k": Param(int, 2),
        "threshold": Param((int, float), None, 1.0),
    }

    def __init__(self, k: int = 80, threshold: float = 0.0) -> None:
        self.k = k
        self.threshold = threshold

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        graph = self._knn(x, knn, self.k)
        with self._stage("refine"):
            dist = rank_order_distance(graph)
        with self._stage("select"):
            # distance <= 1 - threshold  <=>  -distance >= threshold - 1
            src, dst, _ = threshold_edges(graph.ids, -dist, float(self.threshold) - 1.0)
        with self._stage("partition"):
            return connected_components(src, dst, graph.n)
