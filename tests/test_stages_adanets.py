"""Ada-NETS's non-learned stages: structure space, Q / k*, adjacency, final rule."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import ParameterError
from faceclust.knn import KnnGraph, build_knn
from faceclust.stages.neighbours import (
    adaptive_keep,
    filter_targets,
    neighbour_quality,
    similarity_adjacency,
    target_k,
    threshold_components,
)
from faceclust.stages.refine import (
    jaccard_distance,
    reciprocal_expansion,
    structure_distance,
    structure_space,
)

# Hand example, k = 3 (k // 2 = 1, so R*(i) = R(i, 3)):
#   R(0) = {0,1}  R(1) = {0,1,2}  R(2) = {1,2,3}  R(3) = {2,3,4}  R(4) = {3,4}
HAND_IDS = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 3], [3, 2, 4], [4, 3, 2]])
HAND_SIMS = np.array([[1.0, 0.9, 0.8], [1.0, 0.9, 0.7], [1.0, 0.7, 0.6],
                      [1.0, 0.6, 0.5], [1.0, 0.5, 0.2]], dtype=np.float32)


def test_jaccard_distance_hand_example():
    jd = jaccard_distance(KnnGraph(HAND_IDS, HAND_SIMS))
    # row 0: 1 - |{0,1}&{0,1,2}|/|..| = 1 - 2/3 ; 1 - |{0,1}&{1,2,3}|/4 = 3/4
    np.testing.assert_allclose(jd[0], [0.0, 1 / 3, 3 / 4], atol=1e-6)
    # row 2 vs 1: {1,2,3}&{0,1,2} = 2 of 4 ; vs 3: {1,2,3}&{2,3,4} = 2 of 4
    np.testing.assert_allclose(jd[2], [0.0, 0.5, 0.5], atol=1e-6)
    np.testing.assert_allclose(jd[4], [0.0, 1 / 3, 3 / 4], atol=1e-6)


def test_structure_distance_and_stable_resort():
    g = KnnGraph(HAND_IDS, HAND_SIMS)
    nd = structure_distance(g, lam=0.3)
    # row 2: jd 0.5 for both; cosine distances 0.3 and 0.4
    np.testing.assert_allclose(nd[2], [0.0, 0.7 * 0.5 + 0.3 * 0.3, 0.7 * 0.5 + 0.3 * 0.4],
                               atol=1e-6)
    # lam = 0: pure Jaccard; row 2 ties (0.5, 0.5) keep the kNN order (stable)
    ids, d = structure_space(g, lam=0.0)
    assert ids[2].tolist() == [2, 1, 3]
    np.testing.assert_allclose(d[2], [0.0, 0.5, 0.5], atol=1e-6)
    # lam = 1: the original cosine order
    ids1, _ = structure_space(g, lam=1.0)
    assert ids1.tolist() == HAND_IDS.tolist()


def _brute_rstar(ids: np.ndarray, k: int) -> list[set[int]]:
    def recip(i: int, kk: int) -> set[int]:
        return {int(j) for j in ids[i, :kk] if i in set(ids[j, :kk].tolist())}

    out = []
    for i in range(len(ids)):
        r = recip(i, k)
        s = set(r)
        for j in r:
            h = recip(j, k // 2)
            if len(h & r) >= len(h) * 2 / 3:
                s |= h
        out.append(s)
    return out


def test_reciprocal_expansion_matches_set_definition():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 8))
    x = np.repeat(centres, 10, axis=0) + 0.6 * rng.normal(size=(60, 8))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    g = build_knn(x, k=12)
    indptr, members = reciprocal_expansion(g)
    ref = _brute_rstar(g.ids, 12)
    got = [set(members[indptr[i]:indptr[i + 1]].tolist()) for i in range(60)]
    assert got == ref
    assert any(len(s) > len({j for j in g.ids[i] if i in g.ids[j]}) for i, s in enumerate(ref))
    jd = jaccard_distance(g)
    for i in range(0, 60, 7):
        for p, j in enumerate(g.ids[i]):
            a, b = ref[i], ref[j]
            assert jd[i, p] == pytest.approx(1 - len(a & b) / len(a | b), abs=1e-6)


def test_structure_params_checked():
    g = KnnGraph(HAND_IDS, HAND_SIMS)
    with pytest.raises(ParameterError, match="lam"):
        structure_distance(g, lam=1.5)
    with pytest.raises(ParameterError, match="k must be"):
        jaccard_distance(g, k=7)


def test_quality_and_target_k_constructed_list():
    # row 0: label 0 (class of 3: rows 0, 2, 3); candidates self, 1 (miss), 2, 3 (hits), 4 (miss)
    labels = np.array([0, 1, 0, 0, 2])
    ids = np.array([[0, 1, 2, 3, 4]] + [[i, 0, 0, 0, 0] for i in range(1, 5)])
    q = neighbour_quality(ids, labels, beta=0.5)
    np.testing.assert_allclose(q[0], [0.714286, 0.454545, 0.666667, 0.789474, 0.652174], atol=1e-5)
    kstar = target_k(ids, labels)
    assert kstar[0] == 4
    # row 4, a singleton: only self -> P = R = 1 at k = 1, k* = 1
    assert kstar[4] == 1
    # beta large = recall-weighted: row 0 still peaks at k = 4 (all hits by then)
    assert target_k(ids, labels, beta=4.0)[0] == 4
    # position 0 is forced positive even if it is not the node itself
    q2 = neighbour_quality(np.array([[1, 0], [1, 0]]), np.array([5, 6]))
    assert q2[0, 0] == pytest.approx(1.0)


def test_filter_targets_are_kstar_over_k():
    labels = np.array([0, 1, 0, 0, 2])
    ids = np.array([[0, 1, 2, 3, 4]] + [[i, 0, 0, 0, 0] for i in range(1, 5)])
    t = filter_targets(ids, labels)
    assert t.dtype == np.float32
    np.testing.assert_allclose(t, target_k(ids, labels) / 5.0)
    assert t[0] == pytest.approx(0.8)


def test_adaptive_adjacency_keeps_first_k_hat():
    ids = np.array([[0, 1, 2], [1, 2, 0], [2, 1, 0]])
    s = np.array([[1.0, 0.8, 0.6], [1.0, 0.5, 0.4], [1.0, 0.3, -0.1]], dtype=np.float32)
    keep = adaptive_keep(np.array([2, 1, 3]), 3)
    a = similarity_adjacency(ids, s, keep=keep).toarray()
    # kept: 0->1 (0.8); row 1 keeps only self; row 2: 2->1 (0.3), 2->0 dropped (s < 0)
    pattern = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=bool)
    assert ((a > 0) == pattern).all()
    np.testing.assert_allclose(a.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(a[0], [1 / 1.8, 0.8 / 1.8, 0.0], atol=1e-6)
    np.testing.assert_allclose(a[1], [0.8 / 2.1, 1 / 2.1, 0.3 / 2.1], atol=1e-6)


def test_final_rule_on_hand_graph():
    ids = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 3, 1, 0], [3, 2, 0, 1], [4, 3, 2, 0]])
    sims = np.array([[1.0, 0.97, 0.90, 0.10], [1.0, 0.97, 0.95, 0.2], [1.0, 0.99, 0.95, 0.9],
                     [1.0, 0.99, 0.1, 0.1], [1.0, 0.961, 0.5, 0.1]], dtype=np.float32)
    lab = threshold_components(ids, sims, 0.96)
    # 0-1 (0.97), 2-3 (0.99), 4-3 (0.961); 1-2 at 0.95 is below 0.96
    assert lab.tolist() == [0, 0, 1, 1, 1]
    assert threshold_components(ids, sims, 0.95).tolist() == [0, 0, 0, 0, 0]
    # inclusive threshold
    assert threshold_components(ids, sims, 0.961).tolist() == [0, 0, 1, 1, 1]
    # top_n = 1 looks at self only: all singletons
    assert threshold_components(ids, sims, 0.0, top_n=1).tolist() == [0, 1, 2, 3, 4]
    # top_n = 2: only the first neighbour; 0.9 of row 2 col 3 ignored
    assert threshold_components(ids, sims, 0.5, top_n=2).tolist() == [0, 0, 1, 1, 1]


def test_similarity_adjacency_equals_the_dense_definition():
    """Missing and self slots, duplicates (summed), min_sim and keep on a random table:
    ``row_normalize(max(S, S^T) + I)`` computed densely."""
    rng = np.random.default_rng(3)
    n, k = 40, 7
    ids = rng.integers(-1, n, size=(n, k))
    ids[:, 0] = np.arange(n)
    ids[5, 3] = ids[5, 2]  # a duplicate neighbour in one row
    s = rng.uniform(-0.2, 1.0, size=(n, k)).astype(np.float32)
    keep = rng.random((n, k)) < 0.8
    for kw in ({}, {"keep": keep}, {"min_sim": 0.3, "keep": keep}):
        a = similarity_adjacency(ids, s, **kw)
        dense = np.zeros((n, n), np.float64)
        for i in range(n):
            for p in range(k):
                j = ids[i, p]
                if j < 0 or j == i or s[i, p] < kw.get("min_sim", 0.0):
                    continue
                if "keep" in kw and not keep[i, p]:
                    continue
                dense[i, j] += s[i, p]
        dense = np.maximum(dense, dense.T) + np.eye(n)
        dense /= dense.sum(axis=1, keepdims=True)
        assert a.has_sorted_indices and a.dtype == np.float32
        np.testing.assert_allclose(a.toarray(), dense, atol=1e-6)
