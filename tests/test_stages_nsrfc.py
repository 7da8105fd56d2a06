"""Chen et al. NDDe / TPDi / DPC, NSR-FC's tau_s and C-GCN sub-graphs, on hand-made graphs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.stages.density import (
    dpc_links,
    ndde_density,
    sort_rows,
    tau_s_weighted,
    tpdi_distance,
)
from faceclust.stages.subgraphs import subgraph_adjacency, subgraph_size, two_hop_subgraphs


def test_ndde_density_is_the_in_flow_of_row_normalised_weights():
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    d = np.array([[0.0, 0.5, 1.0], [0.0, 0.5, 1.0], [0.0, 0.5, 0.5]], np.float32)
    e = np.exp(-d.astype(np.float64) / 0.5)
    p = e / (e.sum(axis=1, keepdims=True) + 1e-5)
    # hand in-flow: node v collects p[i, j] for every slot ids[i, j] == v
    want = [p[0, 0] + p[1, 1] + p[2, 2], p[0, 1] + p[1, 0] + p[2, 1], p[0, 2] + p[1, 2] + p[2, 0]]
    np.testing.assert_allclose(ndde_density(ids, d, 0.5, 3), want, rtol=1e-6)
    # only the first m slots count; missing slots carry nothing
    e2 = np.exp(-d[:, :2].astype(np.float64) / 0.5)
    p2 = e2 / (e2.sum(axis=1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(ndde_density(ids, d, 0.5, 2),
                               [p2[0, 0] + p2[1, 1], p2[0, 1] + p2[1, 0] + p2[2, 1], p2[2, 0]],
                               rtol=1e-6)
    ids_m = ids.copy()
    ids_m[2, 2] = -1
    assert ndde_density(ids_m, d, 0.5, 3)[0] < ndde_density(ids, d, 0.5, 3)[0]
    with pytest.raises(ParameterError):
        ndde_density(ids, d, 0.0, 3)


def test_tpdi_hand_values():
    ids = np.array([[0, 1, -1], [1, 0, 2], [2, 1, -1]])
    d = np.zeros(ids.shape, np.float32)
    t = tpdi_distance(ids, d, sigma=0.05)
    # row 0 spreads 1/2 over {0, 1}, row 1 1/3 over {0, 1, 2}: overlap {0, 1}
    half, third = 1 / (2 + 1e-5), 1 / (3 + 1e-5)
    want01 = 1 - 2 * math.sqrt(half * third)
    assert t[0, 1] == pytest.approx(want01, abs=1e-6)
    assert t[1, 1] == pytest.approx(want01, abs=1e-6)  # 1 -> 0, symmetric here
    assert t[1, 2] == pytest.approx(want01, abs=1e-6)
    assert t[2, 1] == pytest.approx(want01, abs=1e-6)
    assert t[0, 0] == pytest.approx(1 - 2 * half, abs=1e-6)  # self: 1 - sum P ~ 0
    assert np.isinf(t[0, 2]) and np.isinf(t[2, 2])  # missing slots
    # disjoint neighbourhoods: distance 1; a far slot weighs almost nothing (sigma 0.05)
    ids2 = np.array([[0, 1], [1, 2], [2, 1]])
    d2 = np.array([[0.0, 1.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
    t2 = tpdi_distance(ids2, d2, sigma=0.05)
    e = math.exp(-1 / 0.05)
    p0 = np.array([1.0, e]) / (1 + e + 1e-5)
    assert t2[0, 1] == pytest.approx(1 - math.sqrt(p0[1] * 0.5 / (1 + 0.5e-5)), abs=1e-6)
    assert t2[1, 1] == pytest.approx(1 - 2 * 0.5 / (1 + 0.5e-5), abs=1e-6)  # same set {1, 2}


def test_sort_rows_puts_missing_last():
    ids = np.array([[0, 3, -1, 2]])
    d = np.array([[0.0, 0.4, 0.1, 0.2]], np.float32)
    si, sd = sort_rows(ids, d)
    assert si.tolist() == [[0, 2, 3, -1]] and sd[0, :3].tolist() == pytest.approx([0, 0.2, 0.4])
    assert np.isinf(sd[0, 3])


def test_dpc_links_nearest_denser_or_equal_below_tau():
    rho = np.array([3.0, 2.0, 1.0, 2.5, 2.0])
    ids = np.array([
        [0, 1, 3],   # the densest node: a peak
        [1, 2, 0],   # 2 is nearer but less dense -> 1 -> 0 at 0.3
        [2, 1, 3],   # 3 (d 0.1) before 1 (d 0.2): both denser -> 2 -> 3
        [3, 0, -1],  # the only denser one is at 0.8 >= tau: no link
        [4, 1, 2],   # equal density counts: 4 -> 1 at 0.05
    ])
    d = np.array([
        [0.0, 0.2, 0.1],
        [0.0, 0.1, 0.3],
        [0.0, 0.2, 0.1],
        [0.0, 0.8, 0.0],
        [0.0, 0.05, 0.5],
    ], np.float32)
    src, dst, w = dpc_links(ids, d, rho, tau=0.7)
    got = {int(s): (int(t), float(x)) for s, t, x in zip(src, dst, w, strict=True)}
    assert got.keys() == {1, 2, 4}
    assert got[1] == (0, pytest.approx(0.3)) and got[2] == (3, pytest.approx(0.1))
    assert got[4] == (1, pytest.approx(0.05))
    # tau is strict; a larger tau admits 3 -> 0
    assert 1 not in dpc_links(ids, d, rho, tau=0.3)[0]
    assert 3 in dpc_links(ids, d, rho, tau=0.81)[0]
    with pytest.raises(InputError):
        dpc_links(ids, d, rho[:3])


def test_tau_s_weighted_takes_the_three_largest_non_self():
    ids = np.array([[0, 1, 2, 3, 4], [1, 0, 2, -1, -1]])
    s = np.array([[1.0, 0.2, 0.9, 0.5, 0.7], [1.0, 0.6, 0.4, 9.0, 9.0]], np.float32)
    row0 = 0.7 * 0.9 + 0.2 * 0.7 + 0.1 * 0.5
    row1 = (0.7 * 0.6 + 0.2 * 0.4) / 0.9  # two neighbours: the weights they have, renormalised
    assert tau_s_weighted(ids, s) == pytest.approx((row0 + row1) / 2, rel=1e-6)


def test_two_hop_subgraphs_hand_table():
    ids = np.array([
        [0, 1, 2, 3],
        [1, 0, 4, 2],
        [2, 5, 0, 1],
        [3, 0, 1, 2],
        [4, 1, -1, -1],
        [5, 2, 0, 1],
    ])
    sub = two_hop_subgraphs(ids, np.array([0, 4]), k1=2, k2=2)
    assert sub.shape == (2, subgraph_size(2, 2)) == (2, 7)
    # centre 0: hop 1 = 1, 2; hop 2 = (0, 4) of 1 and (5, 0) of 2; repeats dropped
    assert sub[0].tolist() == [0, 1, 2, 4, 5, -1, -1]
    # centre 4 has one neighbour (1), whose first two non-self are 0 and 4 (4 repeated)
    assert sub[1].tolist() == [4, 1, 0, -1, -1, -1, -1]
    with pytest.raises(InputError):
        two_hop_subgraphs(ids, np.array([6]), 2, 2)
    with pytest.raises(ParameterError):
        two_hop_subgraphs(ids, np.array([0]), 0, 2)


def test_subgraph_adjacency_restricts_symmetrises_and_normalises():
    knn_ids = np.array([[0, 1, 3], [1, 2, 0], [2, 1, 3], [3, 0, 2]])
    knn_sims = np.array([[1, 0.8, 0.6], [1, 0.5, 0.8], [1, 0.5, 0.4], [1, 0.6, 0.4]], np.float32)
    nodes = np.array([[0, 1, 2, -1]])
    a = subgraph_adjacency(nodes, knn_ids, knn_sims, k_local=1)
    # k_local=1: edges 0->1 (0.8), 1->2 (0.5), 2->1 (0.5); 3 is not in the sub-graph
    raw = np.array([[1, 0.8, 0, 0], [0.8, 1, 0.5, 0], [0, 0.5, 1, 0], [0, 0, 0, 0]])
    want = raw / np.maximum(raw.sum(1, keepdims=True), 1)
    np.testing.assert_allclose(a[0], want, rtol=1e-6)
    a2 = subgraph_adjacency(nodes, knn_ids, knn_sims, k_local=2)
    assert a2[0, 0, 1] > 0 and a2[0, 2, 0] == 0  # 0 -> 3 leaves the sub-graph
