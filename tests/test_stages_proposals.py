"""Cluster proposals (GCN-D/S): super-vertices, iterative proposals, IoU/IoP, de-overlap."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.stages.proposals import (
    PRESETS,
    Proposals,
    deoverlap,
    generate_proposals,
    iterative_proposals,
    proposal_targets,
    proposals_from_labels,
    scaled,
    super_vertices,
)


def _table(n: int, edges: dict[tuple[int, int], float], k: int):
    """kNN table (self first, -1 / -inf padding) holding each undirected edge in both rows."""
    nbrs: dict[int, list[tuple[float, int]]] = {i: [] for i in range(n)}
    for (a, b), s in edges.items():
        nbrs[a].append((s, b))
        nbrs[b].append((s, a))
    ids = np.full((n, k), -1, np.int64)
    sims = np.full((n, k), -np.inf, np.float32)
    for i in range(n):
        row = sorted(nbrs[i], reverse=True)[: k - 1]
        ids[i, 0], sims[i, 0] = i, 1.0
        for c, (s, j) in enumerate(row, start=1):
            ids[i, c], sims[i, c] = j, s
    return ids, sims


def _groups(labels: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(labels == c).tolist()) for c in np.unique(labels)}


def test_super_vertices_size_cap_and_threshold_step():
    # chain 0-1-2-3 (4 > cap 3), pair 4-5, a pair below the threshold, 8 isolated
    edges = {(0, 1): 0.92, (1, 2): 0.8, (2, 3): 0.95, (4, 5): 0.85, (6, 7): 0.6}
    ids, sims = _table(9, edges, 3)
    labels = super_vertices(ids, sims, 0.7, 3, step=0.5)
    # pass 0: {0,1,2,3} too big; th = 0.8 + 0.2 * 0.5 = 0.9 keeps 0-1 and 2-3, drops 1-2
    assert _groups(labels) == {frozenset({0, 1}), frozenset({2, 3}), frozenset({4, 5}),
                               frozenset({6}), frozenset({7}), frozenset({8})}
    # a larger cap takes the whole chain in pass 0
    assert frozenset({0, 1, 2, 3}) in _groups(super_vertices(ids, sims, 0.7, 4, step=0.5))
    # a smaller step needs more rounds: th 0.82 (keeps 0-1, 2-3; drops 1-2 at 0.8)
    assert frozenset({0, 1}) in _groups(super_vertices(ids, sims, 0.7, 3, step=0.1))


def test_super_vertices_cap_holds_for_duplicates_and_covers_every_node():
    # 5 identical faces (every pair at 1.0): no threshold separates them
    edges = {(a, b): 1.0 for a in range(5) for b in range(a + 1, 5)}
    ids, sims = _table(6, edges, 5)
    labels = super_vertices(ids, sims, 0.5, 2, max_iter=3)
    assert len(labels) == 6 and (labels >= 0).all()
    assert np.bincount(labels).max() <= 2
    assert len(np.unique(labels[:5])) == 3  # 2 + 2 + 1
    with pytest.raises(ParameterError, match="max_size"):
        super_vertices(ids, sims, 0.5, 0)


def test_iterative_proposals_join_nearby_super_vertices():
    e0, e1 = np.eye(4, dtype=np.float32)[0], np.eye(4, dtype=np.float32)[1]
    near0 = np.array([0.95, 0.31225, 0, 0], np.float32)
    near1 = np.array([0.31225, 0.95, 0, 0], np.float32)
    x = np.stack([e0, e0, near0, near0, e1, e1, near1])
    labels0 = np.array([0, 0, 1, 1, 2, 2, 3])
    p = iterative_proposals(x, labels0, k=2, sv_max_size=2, threshold=0.4)
    assert {frozenset(p.members(i).tolist()) for i in range(len(p))} == {
        frozenset({0, 1, 2, 3}), frozenset({4, 5, 6})}
    # one super-vertex per group is below sv_min_size=2: no proposal
    assert len(iterative_proposals(x, labels0, k=2, sv_max_size=1, threshold=0.4)) == 0
    # min_size on faces: the 3-face group goes
    p4 = iterative_proposals(x, labels0, k=2, sv_max_size=2, threshold=0.4, min_size=4)
    assert [set(p4.members(i).tolist()) for i in range(len(p4))] == [{0, 1, 2, 3}]


def test_presets_and_generate_proposals_cover_settings():
    assert set(PRESETS) == {"2", "5", "8", "20"}
    n_settings = {name: sum(kept for _, kept in s["iter0"]) + len(s["iter0"]) * len(s["iter1"])
                  for name, s in PRESETS.items()}
    assert n_settings == {"2": 2, "5": 5, "8": 8, "20": 20}
    assert scaled(0.7, 0.0) == pytest.approx(0.7)
    assert scaled(0.7, 0.8) == pytest.approx(0.94)
    rng = np.random.default_rng(0)
    c = rng.normal(size=(4, 16))
    y = np.repeat(np.arange(4), 6)
    x = c[y] + 0.2 * rng.normal(size=(24, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    from faceclust.knn import build_knn

    g = build_knn(x, k=8)
    p = generate_proposals(x, g.ids, g.sims, "8", max_size=10, progress_bar=False)
    assert len(p) > 0 and p.sizes.min() >= 3
    keys = {tuple(sorted(p.members(i).tolist())) for i in range(len(p))}
    assert len(keys) == len(p)  # identical proposals kept once
    with pytest.raises(ParameterError, match="preset"):
        generate_proposals(x, g.ids, g.sims, "3")


def test_iou_iop_hand_case():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = Proposals(np.array([0, 3, 7, 9, 10]), np.array([0, 1, 3, 3, 4, 5, 0, 0, 3, 5]))
    iou, iop = proposal_targets(p, y)
    # {0,1,3}: majority 0, G={0,1,2}: 2 / (3 + 3 - 2); {3,4,5,0}: majority 1: 2 / (4 + 2 - 2)
    # {0,3}: tie 0/1 -> label 0: 1 / (2 + 3 - 1); {5}: 1 / 1
    np.testing.assert_allclose(iou, [0.5, 0.5, 0.25, 1.0])
    np.testing.assert_allclose(iop, [2 / 3, 0.5, 0.5, 1.0])


def test_deoverlap_keeps_each_node_once_and_prefers_higher_scores():
    p = Proposals(np.array([0, 3, 5, 6, 8]), np.array([0, 1, 2, 2, 3, 4, 1, 4]))
    labels = deoverlap(p, np.array([0.5, 0.9, 0.1, 0.5]), 6)
    assert _groups(labels) == {frozenset({2, 3}), frozenset({0, 1}), frozenset({4}),
                               frozenset({5})}
    # ties: the earlier proposal first; P3 = {1, 4} ties P0 and comes later
    labels = deoverlap(p, np.array([0.5, 0.5, 0.5, 0.5]), 6)
    assert _groups(labels) == {frozenset({0, 1, 2}), frozenset({3}), frozenset({4}),
                               frozenset({5})}
    # min_score drops low proposals first; uncovered faces are singletons
    labels = deoverlap(p, np.array([0.5, 0.9, 0.1, 0.5]), 6, min_score=0.6)
    assert _groups(labels) == {frozenset({2, 3}), *(frozenset({i}) for i in (0, 1, 4, 5))}
    with pytest.raises(InputError, match="scores"):
        deoverlap(p, np.zeros(3), 6)


def test_proposals_from_labels_unique_select():
    p = proposals_from_labels(np.array([1, 0, 1, 1, -1, 0, 2]), min_size=2, max_size=2)
    assert [p.members(i).tolist() for i in range(len(p))] == [[1, 5]]
    q = Proposals.concat([p, Proposals(np.array([0, 2, 4]), np.array([5, 1, 0, 2]))]).unique()
    assert [sorted(q.members(i).tolist()) for i in range(len(q))] == [[1, 5], [0, 2]]


def test_one_mean_search_per_setting_gives_each_k_its_own_search():
    """generate_proposals searches the cluster means once (largest iteration-1 k) and cuts the
    list for every k: the proposals equal those of one search per k, also where a mean is not
    its own nearest (means are not unit vectors, so self may be missing from a short list)."""
    from faceclust.knn import build_knn
    from faceclust.stages.proposals import mean_knn

    rng = np.random.default_rng(3)
    c = rng.normal(size=(30, 16))
    y = rng.integers(0, 30, size=300)
    x = c[y] + 0.6 * rng.normal(size=(300, 16))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    g = build_knn(x, k=10)
    # tight clusters and mixed groups (short means) side by side
    labels0 = np.where(rng.random(300) < 0.5, super_vertices(g.ids, g.sims, 0.5, 20),
                       1000 + rng.integers(0, 60, size=300))
    sims, ids = mean_knn(x, labels0, 4)
    assert (ids[:, 0] != np.arange(len(ids))).any()  # some mean is not its own nearest
    for k, sv_max in PRESETS["20"]["iter1"]:
        own = iterative_proposals(x, labels0, k, sv_max, threshold=0.3)
        cut = iterative_proposals(x, labels0, k, sv_max, threshold=0.3, knn=(sims, ids))
        np.testing.assert_array_equal(own.ptr, cut.ptr)
        np.testing.assert_array_equal(own.nodes, cut.nodes)


def test_self_topk_ip_exact_then_ivf():
    from faceclust.knn import search_topk, self_topk_ip

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(100, 16))  # means of clustered faces, of different lengths
    m = centres[rng.integers(0, 100, 3000)] + 0.5 * rng.normal(size=(3000, 16))
    m = (m * rng.uniform(0.3, 1.0, size=(3000, 1))).astype(np.float32)
    s_exact, i_exact = search_topk(m, m, 5)
    s, i = self_topk_ip(m, 5)
    np.testing.assert_array_equal(i, i_exact)
    s, i = self_topk_ip(m, 5, exact_max=1000)  # ivf-blas beyond exact_max (32 of 128 cells)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(i, i_exact, strict=True)])
    assert recall > 0.95
    assert np.all(np.diff(s, axis=1) <= 1e-6)  # sorted, descending
