"""Tests for the refine stage: NEP (FC-ES) and the approximate rank-order distance (ARO)."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import ParameterError
from faceclust.knn import KnnGraph
from faceclust.stages.refine import ARO_ABSENT, nep, rank_order_distance, transition_probabilities


def _graph(ids, sims=None) -> KnnGraph:
    ids = np.asarray(ids)
    if sims is None:
        sims = np.where(ids >= 0, 1.0, -np.inf)
    return KnnGraph(ids, np.asarray(sims, dtype=np.float32))


def _random_graph(n=60, k=8, seed=0, missing=0.1) -> KnnGraph:
    rng = np.random.default_rng(seed)
    ids = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        others = rng.choice(np.delete(np.arange(n), i), k - 1, replace=False)
        ids[i] = np.concatenate([[i], others])
    sims = np.sort(rng.uniform(-0.2, 1.0, (n, k)), axis=1)[:, ::-1].copy()
    sims[:, 0] = 1.0
    drop = rng.random((n, k)) < missing
    drop[:, 0] = False
    drop = np.logical_or.accumulate(drop, axis=1)  # missing entries come last
    ids[drop] = -1
    sims[drop] = -np.inf
    return KnnGraph(ids, sims.astype(np.float32))


def _naive_nep(graph: KnnGraph, sigma: float) -> np.ndarray:
    """Direct transcription of the definition, one pair at a time."""
    p = transition_probabilities(graph, sigma).astype(np.float64)
    out = np.zeros(graph.ids.shape)
    for i in range(graph.n):
        pi = {int(w): p[i, a] for a, w in enumerate(graph.ids[i]) if w >= 0}
        for b, u in enumerate(graph.ids[i]):
            if u < 0:
                continue
            total = 0.0
            for c, w in enumerate(graph.ids[u]):
                if w >= 0 and int(w) in pi and p[u, c] != 0.0:
                    total += pi[int(w)] + p[u, c]
            out[i, b] = 0.5 * total
    return out


def test_transition_probabilities_formula():
    g = _graph([[0, 1, 2], [1, 0, -1], [2, 1, 0]], [[1.0, 0.5, -0.3], [1.0, 0.75, -np.inf], [1.0, 1.0, 0.2]])
    p = transition_probabilities(g, sigma=0.5)
    e0 = np.exp(-np.array([0.0, 1.0, 2.0]) / 0.5)  # -0.3 is clipped to 0 -> d = 2
    np.testing.assert_allclose(p[0], e0 / e0.sum(), rtol=1e-6)
    e1 = np.exp(-np.array([0.0, 0.5]) / 0.5)
    np.testing.assert_allclose(p[1, :2], e1 / e1.sum(), rtol=1e-6)
    assert p[1, 2] == 0.0
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ParameterError):
        transition_probabilities(g, sigma=0)


def test_nep_hand_computed():
    # All similarities 1 -> P is uniform over each row's present entries, so
    # NEP(i, u) = 1/2 * sum over shared entries of (1/|N(i)| + 1/|N(u)|).
    g = _graph([[0, 1, 2], [1, 0, 3], [2, 3, -1], [3, 2, 1]])
    s = nep(g)
    assert s.dtype == np.float32 and s.shape == (4, 3)
    # NEP(0, 1): shared {0, 1}: 1/2 * 2 * (1/3 + 1/3) = 2/3
    assert s[0, 1] == pytest.approx(2 / 3, rel=1e-6)
    # NEP(0, 2): row 2 has 2 entries (P = 1/2); shared {2}: 1/2 * (1/3 + 1/2) = 5/12
    assert s[0, 2] == pytest.approx(5 / 12, rel=1e-6)
    # NEP(2, 3): shared {2, 3}: 1/2 * 2 * (1/2 + 1/3) = 5/6
    assert s[2, 1] == pytest.approx(5 / 6, rel=1e-6)
    # NEP(1, 3): shared {1, 3}: 2/3; NEP(3, 1) is the same pair seen from 3
    assert s[1, 2] == pytest.approx(2 / 3, rel=1e-6)
    assert s[3, 2] == pytest.approx(2 / 3, rel=1e-6)
    # self slot: every entry of N(i) is shared with itself -> 1; missing slot -> 0
    np.testing.assert_allclose(s[:, 0], 1.0, rtol=1e-6)
    assert s[2, 2] == 0.0


@pytest.mark.parametrize("sigma", [0.5, 0.05, 0.01])
def test_nep_matches_naive_reference(sigma):
    g = _random_graph(seed=int(sigma * 100))
    np.testing.assert_allclose(nep(g, sigma), _naive_nep(g, sigma), rtol=1e-5, atol=1e-6)


def test_nep_symmetric_form_and_range():
    g = _random_graph(n=80, k=12, seed=3)
    s = nep(g)
    assert s.min() >= 0.0 and s.max() <= 1.0 + 1e-6
    pos = {(i, int(u)): c for i in range(g.n) for c, u in enumerate(g.ids[i]) if u >= 0}
    checked = 0
    for (i, u), c in pos.items():
        if (u, i) in pos and u != i:
            assert s[i, c] == pytest.approx(s[u, pos[(u, i)]], rel=1e-5)
            checked += 1
    assert checked > 20


def test_nep_large_rows_parallel_tasks_agree():
    # more rows than one parallel task (4096) so several scratch arrays are used
    g = _random_graph(n=9000, k=6, seed=5, missing=0.0)
    s = nep(g)
    rows = np.array([0, 4095, 4096, 8999])  # the full naive loop is slow; spot-check rows
    p = transition_probabilities(g).astype(np.float64)
    for i in rows:
        pi = {int(w): p[i, a] for a, w in enumerate(g.ids[i])}
        for b, u in enumerate(g.ids[i]):
            ref = 0.5 * sum(pi[int(w)] + p[u, c] for c, w in enumerate(g.ids[u]) if int(w) in pi)
            assert s[i, b] == pytest.approx(ref, rel=1e-5)


def _naive_aro(graph: KnnGraph) -> np.ndarray:
    ids = graph.ids
    out = np.full(ids.shape, ARO_ABSENT)
    out[:, 0] = 0.0
    for i in range(graph.n):
        li = [int(w) for w in ids[i] if w >= 0]
        for p in range(1, graph.k):
            j = int(ids[i, p])
            if j < 0:
                continue
            lj = [int(w) for w in ids[j] if w >= 0]
            if i not in lj:
                continue
            o_i, o_j = p, lj.index(i) + 1
            d_ij = len([w for w in li[:o_i] if w not in lj])
            d_ji = len([w for w in lj[:o_j] if w not in li])
            out[i, p] = (d_ij + d_ji) / min(o_i, o_j)
    return out


def test_rank_order_hand_computed():
    # N(0) = [0, 1, 2, 3], N(1) = [1, 2, 0, 4]
    g = _graph([[0, 1, 2, 3], [1, 2, 0, 4], [2, 0, 1, 3], [3, 4, 0, 2], [4, 3, 1, 0]])
    d = rank_order_distance(g)
    # (0, 1): O_0 = 1, 0 sits in column 2 of N(1) so O_1 = 3.
    # d_01 = |{0} \ N(1)| = 0; d_10 = |{1, 2, 0} \ N(0)| = 0 -> 0 / 1 = 0
    assert d[0, 1] == 0.0
    # (0, 3): O_0 = 3, O_3 = 3 (0 in column 2 of N(3)).
    # d_03 = |{0, 1, 2} \ {3, 4, 0, 2}| = 1 ({1}); d_30 = |{3, 4, 0} \ N(0)| = 1 ({4}) -> 2 / 3
    assert d[0, 3] == pytest.approx(2 / 3)
    # (1, 4): O_1 = 3, 1 in column 2 of N(4) so O_4 = 3.
    # d_14 = |{1, 2, 0} \ {4, 3, 1, 0}| = 1; d_41 = |{4, 3, 1} \ {1, 2, 0, 4}| = 1 -> 2 / 3
    assert d[1, 3] == pytest.approx(2 / 3)
    # (2, 3): 2 is in N(3) (column 3): O_2 = 3, O_3 = 4;
    # d_23 = |{2, 0, 1} \ N(3)| = 1; d_32 = |{3, 4, 0, 2} \ N(2)| = 1 -> 2 / 3
    assert d[2, 3] == pytest.approx(2 / 3)
    assert (d[:, 0] == 0).all()
    np.testing.assert_allclose(d, _naive_aro(g))


def test_rank_order_absent_reverse_and_missing():
    g = _graph([[0, 1, -1], [1, 2, -1], [2, 1, -1]])
    d = rank_order_distance(g)
    assert d[0, 1] == ARO_ABSENT  # 0 is not in N(1)
    assert d[0, 2] == ARO_ABSENT  # missing slot
    assert d[1, 1] == pytest.approx(0.0)  # mutual, identical lists


def test_rank_order_matches_naive_reference():
    g = _random_graph(n=50, k=10, seed=7)
    np.testing.assert_allclose(rank_order_distance(g), _naive_aro(g), rtol=1e-6)
