"""CDP (single model): thresholded kNN pairs, then size-capped dynamic-threshold components."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..knn import KnnGraph
from ..stages.partition import dynamic_threshold_components
from ..stages.select import threshold_edges, unique_pairs
from ._base import BaseClusterer, Constraint, Param, register


@register("cdp")
class CDP(BaseClusterer):
    """Consensus-Driven Propagation, single-model baseline (Zhan et al., ECCV'18).

    As run by learn-to-cluster's baseline: pairs are kNN entries with cosine
    similarity **strictly** above ``threshold`` (self and missing removed),
    de-duplicated as unordered pairs keeping the score of the first occurrence
    in row-major order; they are then partitioned by
    :func:`faceclust.stages.partition.dynamic_threshold_components`
    (components of at most ``max_size`` nodes, threshold raised by ``step``;
    leftovers after ``max_iter`` rounds form one cluster). Isolated nodes are
    singletons.

    Defaults: ``threshold=0.7`` is the learn-to-cluster README setting (MS1M
    part1 F_P 75.02). learn-to-cluster does not state ``k`` or ``max_size``, so
    ``k=15``, ``max_size=600`` and ``step=0.05`` follow CDP's own sample
    configuration (XiaohangZhan/cdp), the only documented source.

    Parameters
    ----------
    k : int
        Neighbours per point, self included.
    threshold : float
        Keep pairs with similarity > threshold.
    max_size : int
        Largest allowed cluster.
    step : float
        Threshold increment factor: ``th <- th + (1 - th) * step``.
    max_iter : int
        Rounds of threshold raising before the leftovers are merged.
    """

    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "k": Param(int, 2),
        "threshold": Param((int, float), -1.0, 1.0),
        "max_size": Param(int, 1),
        "step": Param((int, float), 0.0, 1.0, lo_open=True),
        "max_iter": Param(int, 0),
    }

    def __init__(
        self,
        k: int = 15,
        threshold: float = 0.7,
        max_size: int = 600,
        step: float = 0.05,
        max_iter: int = 100,
    ) -> None:
        self.k = k
        self.threshold = threshold
        self.max_size = max_size
        self.step = step
        self.max_iter = max_iter

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        graph = self._knn(x, knn, self.k)
        with self._stage("select"):
            src, dst, w = threshold_edges(graph, threshold=float(self.threshold), strict=True)
            src, dst, w = unique_pairs(src, dst, w)
        with self._stage("partition"):
            return dynamic_threshold_components(
                src, dst, w, graph.n, self.max_size, float(self.step), self.max_iter
            )
