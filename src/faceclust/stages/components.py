"""Threshold linkage per connected component, and attachment per block of rows (``auto``'s core).

``auto`` merges two clusters only along a kNN edge whose similarity is at least its
threshold, so the connected components of those edges never interact: the linkage
of any union of components, renumbered in ascending order, is the linkage of the
whole restricted to it. The attachment of the faces left alone reads the labels
as given, so blocks of rows can be decided apart and the moves applied together.
These pure functions are the one code both run: ``AutoClusterer`` calls them on
the whole graph, :mod:`faceclust.distributed` per group of components and per
block of rows on Ray workers, with the same labels.

* :func:`threshold_edges` -- the edges that may join clusters;
* :func:`link_edges` -- average linkage along them (any union of components);
  :func:`link_threaded` the same per group of components on a few threads;
* :func:`component_groups` -- the components packed largest first into groups,
  with each group's points and edges in local ids; :func:`combine_group_labels`
  puts the groups' labels back together;
* :func:`attach_inputs`, :func:`~faceclust.stages.cluster_ops.attach_moves`,
  :func:`apply_moves` -- attachment.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .._progress import progress
from ..graph import relabel
from ..knn import KnnGraph
from ..knn import threads as knn_threads
from .cluster_ops import average_linkage
from .linkage import centroid_average_linkage

__all__ = [
    "ComponentGroup",
    "apply_moves",
    "attach_inputs",
    "combine_group_labels",
    "component_groups",
    "link_edges",
    "link_group",
    "link_threaded",
    "pack_largest_first",
    "threshold_edges",
]


def threshold_edges(
    graph: KnnGraph, k: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The edges ``(src, dst, sim)`` that may join clusters: the first ``k`` neighbours, sim >= threshold."""
    return graph.truncate(min(k, graph.k)).edges(min_sim=threshold)


def link_edges(
    x: np.ndarray | None, n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray,
    threshold: float, *, progress_bar: bool | None = None,
) -> np.ndarray:
    """Average linkage of ``n`` points along edges ``src -- dst`` (sims ``w``); contiguous labels.

    Two clusters merge while the mean cosine over all their member pairs
    (from the cluster sums of the unit rows ``x``) is >= ``threshold``; without
    ``x``, the mean over the observed edges stands in. Valid on any union of the
    connected components of the edges (renumbered in ascending order) alone.
    """
    if x is not None:
        return centroid_average_linkage(x, src, dst, w, threshold, progress_bar=progress_bar)
    return average_linkage(src, dst, w, n, threshold, unobserved="skip", progress_bar=progress_bar)


_THREADED_MIN_EDGES = 200_000  # fewer edges: one call, no threads
_GROUPS_PER_THREAD = 4  # component groups per thread (the largest-first packing evens them out)


def link_threaded(
    x: np.ndarray | None, n: int, src: np.ndarray, dst: np.ndarray, w: np.ndarray,
    threshold: float, *, threads: int | None = None,
) -> np.ndarray:
    """:func:`link_edges` per group of connected components on ``threads`` threads (default:
    :func:`faceclust.knn.threads`, all cores unless set); the same labels.

    The linkage is rounds of numpy array operations, most of which release the GIL,
    so groups of components run side by side: at 584K (16,257 components) 11.8 ->
    6.6 s on 2 cores with 8 groups. Below 200,000 edges, or with one thread, one call.
    """
    threads = int(threads or knn_threads())
    if threads < 2 or len(src) < _THREADED_MIN_EDGES:
        return link_edges(x, n, src, dst, w, threshold)
    groups, _ = component_groups(src, dst, n, _GROUPS_PER_THREAD * threads)
    with progress(total=len(groups), desc="auto: average linkage", unit="group") as bar, \
            ThreadPoolExecutor(threads) as pool:

        def one(g: ComponentGroup) -> tuple[np.ndarray, np.ndarray]:
            labels = link_group(x, g.points, g.src, g.dst, w[g.edges], threshold)
            bar.update()
            return g.points, labels

        return combine_group_labels(n, pool.map(one, groups))


def pack_largest_first(costs: np.ndarray, bins: int) -> np.ndarray:
    """Bin of each item: largest first into the least loaded bin (LPT scheduling)."""
    out = np.empty(len(costs), dtype=np.int64)
    heap = [(0.0, b) for b in range(bins)]
    for item in np.argsort(-np.asarray(costs), kind="stable"):
        load, b = heapq.heappop(heap)
        out[item] = b
        heapq.heappush(heap, (load + float(costs[item]), b))
    return out


@dataclass
class ComponentGroup:
    """Some whole components: ``points`` (ascending global ids), their edges in local ids.

    ``edges`` indexes the input edge arrays (in their order), ``src``/``dst`` are
    those edges' ends renumbered ``0..len(points)-1``.
    """

    points: np.ndarray
    edges: np.ndarray
    src: np.ndarray
    dst: np.ndarray

    @property
    def cost(self) -> int:
        return len(self.points) + len(self.edges)


def component_groups(
    src: np.ndarray, dst: np.ndarray, n: int, groups: int
) -> tuple[list[ComponentGroup], dict[str, int]]:
    """The connected components (two points or more) of the edges in ``<= groups`` groups.

    Components are packed largest first (points + edges) into the least loaded
    group; groups come back largest first. Points without an edge are in no
    group (they stay alone in the linkage). Also returns counts: components,
    components with two points or more, the largest component's size.
    """
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    adj = sp.csr_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n))
    n_comp, comp = connected_components(adj, directed=True, connection="weak")
    size = np.bincount(comp, minlength=n_comp)
    multi = np.flatnonzero(size >= 2)
    info = {"components": int(n_comp), "components_multi": int(len(multi)),
            "largest_component": int(size.max()) if n_comp else 0}
    if len(multi) == 0:
        return [], info
    bins = max(1, min(int(groups), len(multi)))
    edges_per = np.bincount(comp[src], minlength=n_comp)
    comp_bin = np.full(n_comp, -1, dtype=np.int64)
    comp_bin[multi] = pack_largest_first((size + edges_per)[multi].astype(np.float64), bins)
    point_bin = comp_bin[comp]
    # points of each group in ascending order, and their local numbers
    p_order = np.argsort(point_bin, kind="stable")
    p_start = np.searchsorted(point_bin[p_order], np.arange(bins + 1))
    local = np.empty(n, dtype=np.int64)
    local[p_order] = np.arange(n) - p_start[np.maximum(point_bin[p_order], 0)]
    e_bin = point_bin[src]
    e_order = np.argsort(e_bin, kind="stable")  # keeps each group's edges in their order
    e_start = np.searchsorted(e_bin[e_order], np.arange(bins + 1))
    out = []
    for b in range(bins):
        pts = p_order[p_start[b] : p_start[b + 1]]
        eb = e_order[e_start[b] : e_start[b + 1]]
        if len(pts):
            out.append(ComponentGroup(pts, eb, local[src[eb]], local[dst[eb]]))
    out.sort(key=lambda g: -g.cost)
    return out, info


def link_group(
    x: np.ndarray | None, points: np.ndarray, src: np.ndarray, dst: np.ndarray, w: np.ndarray,
    threshold: float,
) -> np.ndarray:
    """:func:`link_edges` on one :class:`ComponentGroup` (rows ``x[points]``, local edges), quietly."""
    return link_edges(None if x is None else x[points], len(points), src, dst, w, threshold,
                      progress_bar=False)


def combine_group_labels(
    n: int, parts: Iterable[tuple[np.ndarray, np.ndarray]]
) -> np.ndarray:
    """Labels of ``n`` points from ``(points, labels)`` per group, in any order; others alone.

    Numbered by first appearance (:func:`faceclust.graph.relabel`), which
    depends only on the partition: the same labels as :func:`link_edges` on
    all the edges at once.
    """
    labels = np.arange(n, dtype=np.int64)  # points without edges stay alone
    offset = n
    for pts, lab in parts:
        if len(pts) == 0:
            continue
        labels[pts] = offset + lab
        offset += int(lab.max()) + 1
    return relabel(labels)


def attach_inputs(
    graph: KnnGraph, neighbours: int, with_features: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """The ``neighbours`` nearest ids (self excluded) that attachment reads, and their
    similarities when it has no features to compute cluster means from."""
    m = int(neighbours) + 1
    return graph.ids[:, 1:m], None if with_features else graph.sims[:, 1:m]


def apply_moves(labels: np.ndarray, points: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``labels`` with each of ``points`` moved to its target cluster; contiguous labels."""
    out = np.array(labels, dtype=np.int64)
    out[points] = targets
    return relabel(out)
