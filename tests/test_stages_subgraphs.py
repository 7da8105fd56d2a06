"""L-GCN instance-pivot sub-graphs, GCN-D/S proposal graphs, linkage propagation."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import ParameterError
from faceclust.stages.subgraphs import linkage_propagation, pivot_subgraphs, proposal_graphs

# a ring-like 6-node kNN table, k = 3 (self first)
IDS = np.array([[0, 1, 2], [1, 0, 3], [2, 0, 4], [3, 1, 5], [4, 2, 5], [5, 3, 4]])


def _edges(sg, b: int) -> set[frozenset[int]]:
    lo, hi = sg.ptr[b], sg.ptr[b + 1]
    a = sg.adj[lo:hi, lo:hi].tocoo()
    nodes = sg.nodes[lo:hi]
    return {frozenset((int(nodes[r]), int(nodes[c]))) for r, c in zip(a.row, a.col, strict=True)}


def test_pivot_subgraph_by_hand():
    sg = pivot_subgraphs(IDS, np.array([0]), k1=2, k2=1, active=1)
    assert sg.nodes.tolist() == [0, 1, 2]  # 1-hop {1, 2}; their first neighbour is 0
    assert sg.adj.toarray().tolist() == [[0, 1, 1], [1, 0, 0], [1, 0, 0]]
    assert sg.hop1.tolist() == [[1, 2]] and sg.nodes[sg.hop1_pos[0]].tolist() == [1, 2]
    assert sg.nodes[sg.pivot_pos].tolist() == [0]


def test_pivot_subgraphs_batch_two_hop_and_active_connections():
    sg = pivot_subgraphs(IDS, np.array([0, 5]), k1=2, k2=2, active=2)
    assert sg.ptr.tolist() == [0, 5, 10]
    assert sg.nodes[:5].tolist() == [0, 1, 2, 3, 4]  # 2-hop adds 3 (via 1) and 4 (via 2)
    assert sg.nodes[5:].tolist() == [1, 2, 3, 4, 5]
    assert _edges(sg, 0) == {frozenset(e) for e in [(0, 1), (0, 2), (1, 3), (2, 4)]}
    assert _edges(sg, 1) == {frozenset(e) for e in [(1, 3), (2, 4), (3, 5), (4, 5)]}
    # block-diagonal, symmetric, no self loops, 0/1 weights
    a = sg.adj.toarray()
    assert (a[:5, 5:] == 0).all() and (a == a.T).all() and (np.diag(a) == 0).all()
    assert set(np.unique(a)) <= {0.0, 1.0}
    assert sg.nodes[sg.hop1_pos].tolist() == [[1, 2], [3, 4]]
    assert sg.nodes[sg.pivot_pos].tolist() == [0, 5]
    with pytest.raises(ParameterError, match="k1"):
        pivot_subgraphs(IDS, np.array([0]), k1=0, k2=1, active=1)


def test_pivot_subgraph_skips_missing_neighbours():
    ids = IDS.copy()
    ids[0, 2] = -1
    sg = pivot_subgraphs(ids, np.array([0]), k1=2, k2=1, active=2)
    assert sg.hop1.tolist() == [[1, -1]] and sg.hop1_pos.tolist() == [[1, -1]]
    assert sg.nodes.tolist() == [0, 1]


def test_proposal_graphs_weights_and_self_loops():
    sims = np.array([[1, .9, .8], [1, .9, .7], [1, .8, .6], [1, .7, .5], [1, .6, .4], [1, .5, .4]],
                    np.float32)
    a = proposal_graphs(np.array([0, 3, 5]), np.array([0, 1, 3, 4, 5]), IDS, sims).toarray()
    exp = np.zeros((5, 5), np.float32)
    exp[[0, 1], [1, 0]] = 0.9  # proposal {0, 1, 3}: 0-1 (0.9), 1-3 (0.7); 0-2 not a member
    exp[[1, 2], [2, 1]] = 0.7
    exp[[3, 4], [4, 3]] = 0.4  # proposal {4, 5}: 4-5 (0.4 from both rows, kept once)
    np.fill_diagonal(exp, 1.0)
    np.testing.assert_allclose(a, exp)
    b = proposal_graphs(np.array([0, 3]), np.array([0, 1, 3]), IDS, sims, weighted=False)
    assert b.toarray().tolist() == [[1, 1, 0], [1, 1, 1], [0, 1, 1]]


def test_linkage_propagation_averages_directions_and_caps_size():
    # 0-1 scored 0.9 and 0.3 (mean 0.6), 1-2 0.3, 2-3 0.9; 4 alone; cap 2, step 0.5
    src = np.array([0, 1, 1, 2, 2, 3])
    dst = np.array([1, 0, 2, 1, 3, 2])
    p = np.array([0.9, 0.3, 0.3, 0.3, 0.9, 0.9])
    labels = linkage_propagation(src, dst, p, 5, max_size=2, step=0.5)
    # pass 0: {0,1,2,3} > 2; th = 0.3 + 0.7 * 0.5 = 0.65: 0-1 (mean 0.6) goes, 2-3 stays
    assert len(np.unique(labels)) == 4 and labels[2] == labels[3]
    assert len({labels[0], labels[1], labels[2], labels[4]}) == 4
    # a small isolated group is accepted in pass 0 whatever its score
    labels = linkage_propagation(np.array([0, 2]), np.array([1, 3]), np.array([0.01, 0.99]), 4,
                                 max_size=2)
    assert labels[0] == labels[1] and labels[2] == labels[3] and labels[0] != labels[2]
    # the cap holds on a long chain
    n = 50
    labels = linkage_propagation(np.arange(n - 1), np.arange(1, n),
                                 np.linspace(0.1, 0.99, n - 1), n, max_size=7)
    assert np.bincount(labels).max() <= 7
