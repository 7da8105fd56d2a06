"""auto's stages per connected component and per block of rows: the same labels as whole."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.knn import build_knn
from faceclust.stages.cluster_ops import attach_moves
from faceclust.stages.components import (
    apply_moves,
    attach_inputs,
    combine_group_labels,
    component_groups,
    link_edges,
    link_group,
    link_threaded,
    pack_largest_first,
    threshold_edges,
)
from faceclust.synth import make_faces


@pytest.fixture(scope="module")
def data():
    x, _ = make_faces(3000, 300, 32, seed=5)
    graph = build_knn(x, k=10, index="flat")
    return x, graph


def test_pack_balances_largest_first():
    costs = np.array([10.0, 1, 1, 1, 9, 2])
    bins = pack_largest_first(costs, 2)
    assert sorted(np.bincount(bins, weights=costs).tolist()) == [12.0, 12.0]
    assert bins[0] != bins[4]  # the two largest go to different bins


def test_threshold_edges_keeps_first_k_at_or_above():
    x, _ = make_faces(200, 20, 16, seed=1)
    graph = build_knn(x, k=6, index="flat")
    src, dst, w = threshold_edges(graph, 4, 0.3)
    assert len(src) and (w >= 0.3).all()
    cols = np.array([list(graph.ids[s]).index(d) for s, d in zip(src, dst, strict=True)])
    assert cols.max() < 4 and cols.min() >= 1  # neighbours 1..3, self excluded


def test_component_groups_hand_case():
    # components {0,1,2} (2 edges), {4,5} (1 edge); 3 and 6 alone
    src, dst = np.array([0, 4, 1]), np.array([1, 5, 2])
    groups, info = component_groups(src, dst, 7, 4)
    assert info == {"components": 4, "components_multi": 2, "largest_component": 3}
    assert [g.points.tolist() for g in groups] == [[0, 1, 2], [4, 5]]  # largest first
    assert [g.edges.tolist() for g in groups] == [[0, 2], [1]]
    assert groups[0].src.tolist() == [0, 1] and groups[0].dst.tolist() == [1, 2]
    assert groups[1].src.tolist() == [0] and groups[1].dst.tolist() == [1]
    one, _ = component_groups(src, dst, 7, 1)
    assert [g.points.tolist() for g in one] == [[0, 1, 2, 4, 5]]
    assert component_groups(np.zeros(0, int), np.zeros(0, int), 3, 2)[0] == []


def test_combine_group_labels_numbers_by_first_appearance():
    parts = [(np.array([4, 5]), np.array([0, 0])), (np.array([0, 1, 2]), np.array([1, 0, 1]))]
    for order in (parts, parts[::-1]):
        assert combine_group_labels(7, order).tolist() == [0, 1, 0, 2, 3, 3, 4]


@pytest.mark.parametrize("use_x", [True, False])
@pytest.mark.parametrize("n_groups", [1, 3, 8])
def test_linkage_per_component_group_equals_whole(data, use_x, n_groups):
    x, graph = data
    src, dst, w = threshold_edges(graph, 10, 0.7)
    xx = x if use_x else None
    whole = link_edges(xx, graph.n, src, dst, w, 0.7)
    groups, info = component_groups(src, dst, graph.n, n_groups)
    assert len(groups) == min(n_groups, info["components_multi"])
    got = combine_group_labels(graph.n, [
        (g.points, link_group(xx, g.points, g.src, g.dst, w[g.edges], 0.7)) for g in groups
    ])
    assert np.array_equal(got, whole)
    assert 1 < len(np.unique(whole)) < graph.n  # something merged, not everything


@pytest.mark.parametrize("use_x", [True, False])
def test_threaded_linkage_equals_whole(data, use_x, monkeypatch):
    import faceclust.stages.components as comp

    x, graph = data
    src, dst, w = threshold_edges(graph, 10, 0.7)
    xx = x if use_x else None
    whole = link_edges(xx, graph.n, src, dst, w, 0.7)
    monkeypatch.setattr(comp, "_THREADED_MIN_EDGES", 0)  # thread even this small graph
    for threads in (1, 2, 3):
        assert np.array_equal(link_threaded(xx, graph.n, src, dst, w, 0.7, threads=threads), whole)


@pytest.mark.parametrize("use_x", [True, False])
def test_attachment_per_block_equals_whole(data, use_x):
    x, graph = data
    src, dst, w = threshold_edges(graph, 10, 0.75)  # strict: leaves singletons to attach
    labels = link_edges(x, graph.n, src, dst, w, 0.75)
    nbr_ids, nbr_sims = attach_inputs(graph, 8, use_x)
    assert nbr_ids.shape == (graph.n, 8) and (nbr_sims is None) == use_x
    xx = x if use_x else None
    pts, targets = attach_moves(labels, nbr_ids, 0.55, x=xx, nbr_sims=nbr_sims, share=0.6)
    assert len(pts) > 0
    whole = apply_moves(labels, pts, targets)
    moves = [attach_moves(labels, nbr_ids, 0.55, x=xx, nbr_sims=nbr_sims, share=0.6, rows=b)
             for b in np.array_split(np.arange(graph.n), 5)]
    blocks = apply_moves(labels, np.concatenate([m[0] for m in moves]),
                         np.concatenate([m[1] for m in moves]))
    assert np.array_equal(blocks, whole)


def test_apply_moves_hand_case():
    assert apply_moves(np.array([0, 0, 1, 2, 3]), np.array([2, 4]), np.array([0, 2])).tolist() \
        == [0, 0, 0, 1, 1]
