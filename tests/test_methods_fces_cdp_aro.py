"""Tests for the fc-es, cdp and aro methods: recovery, policies, parameter validation."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import ParameterError
from faceclust.graph import relabel
from faceclust.knn import KnnGraph, build_knn
from faceclust.methods import CDP, FCES, METHODS, ApproxRankOrder, get_method


def _blobs(n_per=40, n_blobs=5, dim=32, spread=0.05, seed=0):
    """Tight Gaussian blobs on the unit sphere; labels in blocks 0,0,...,1,1,..."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_blobs, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_blobs), n_per)
    x = centres[y] + spread * rng.normal(size=(len(y), dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


def test_registered():
    assert METHODS["fc-es"] is FCES
    assert METHODS["cdp"] is CDP
    assert METHODS["aro"] is ApproxRankOrder


@pytest.mark.parametrize(
    "name, params",
    [
        ("fc-es", {"k": 30}),
        ("fc-es", {"k": 30, "singletons": "keep-module"}),
        ("cdp", {}),
        ("cdp", {"k": 30, "max_size": 40}),
        ("aro", {"k": 30}),
    ],
)
def test_recovers_separated_blobs_exactly(name, params):
    x, y = _blobs()
    est = get_method(name)(**params)
    labels = est.fit_predict(x)
    assert np.array_equal(labels, relabel(y))
    assert set(est.stage_seconds_) >= {"knn", "partition"}
    # the same result from a precomputed (larger) graph
    graph = build_knn(x, k=45)
    assert np.array_equal(get_method(name)(**params).fit_predict(x, knn=graph), labels)


def test_cdp_caps_cluster_size():
    x, y = _blobs(n_per=40)
    labels = CDP(k=30, threshold=0.5, max_size=15).fit_predict(x)
    sizes = np.bincount(labels)
    assert sizes.max() <= 15
    # clusters never mix blobs: each predicted cluster lies inside one true blob
    for c in range(len(sizes)):
        assert len(set(y[labels == c].tolist())) == 1


def test_cdp_threshold_is_strict_and_isolated_are_singletons():
    # 0 and 1 at similarity exactly 0.7: strict '>' keeps them apart; 2 and 3 at 0.8 join
    ids = np.array([[0, 1], [1, 0], [2, 3], [3, 2], [4, 0]])
    sims = np.array([[1, 0.7], [1, 0.7], [1, 0.8], [1, 0.8], [1, 0.1]], dtype=np.float32)
    labels = CDP(k=2, threshold=0.7).fit_predict(None, knn=KnnGraph(ids, sims))
    assert labels.tolist() == [0, 1, 2, 2, 3]


def _singleton_graph() -> KnnGraph:
    """Clique 0-4 that links to node 5; node 5's first neighbour (6) has NEP 0.2 < 0.22.

    All similarities are 1, so P is uniform over each row and NEP(i, u) is
    1/2 * sum over shared entries of (1/|N(i)| + 1/|N(u)|): NEP(5, 6) = 1/2 (1/5 + 1/5)
    = 0.2 stops node 5's walk at once (it is "single"), while NEP(0, 5) = 0.4
    links the clique to it.
    """
    ids = np.full((13, 5), -1)
    ids[:, 0] = np.arange(13)
    ids[0] = [0, 1, 2, 3, 5]
    ids[1] = [1, 0, 2, 3, 5]
    ids[2] = [2, 0, 1, 3, 5]
    ids[3] = [3, 0, 1, 2, 5]
    ids[4] = [4, 0, 1, 2, 3]
    ids[5] = [5, 6, 7, 8, 0]
    ids[6] = [6, 9, 10, 11, 12]
    return KnnGraph(ids, np.where(ids >= 0, 1.0, -np.inf).astype(np.float32))


def test_fces_singleton_policies():
    g = _singleton_graph()
    fces = FCES(k=5).fit(None, knn=g)
    labels = fces.labels_
    assert labels[:5].tolist() == [0] * 5
    assert np.sum(labels == labels[5]) == 1  # single node 5 overrides its module: own cluster
    assert fces.n_single_ == 7  # 5 and 7..12 have no outgoing link
    keep = FCES(k=5, singletons="keep-module").fit_predict(None, knn=g)
    assert keep[5] == keep[0]  # Infomap's module (the clique) is kept
    assert keep[9] == keep[6]  # 9 is only a link target of 6


def test_fces_early_stop_theta_changes_links():
    g = _singleton_graph()
    # theta 0.15: NEP(5, 6) = 0.2 now passes, so 5 links to 6 and is no longer single
    assert FCES(k=5, theta=0.15).fit(None, knn=g).n_single_ == 6


def test_aro_threshold_controls_linking():
    x, y = _blobs(n_per=30, n_blobs=3)
    loose = ApproxRankOrder(k=20, threshold=0.0).fit_predict(x)  # distance <= 1
    assert np.array_equal(loose, relabel(y))
    strict = ApproxRankOrder(k=20, threshold=1.0).fit_predict(x)  # distance <= 0 only
    assert len(set(strict.tolist())) > len(set(loose.tolist()))
    # stricter linking only splits clusters: each strict cluster lies inside one loose one
    for c in np.unique(strict):
        assert len(set(loose[strict == c].tolist())) == 1


@pytest.mark.parametrize(
    "cls, bad",
    [
        (FCES, {"k": 1}),
        (FCES, {"k": 2.5}),
        (FCES, {"sigma": 0}),
        (FCES, {"sigma": "big"}),
        (FCES, {"theta": 1.5}),
        (FCES, {"theta": -0.1}),
        (FCES, {"singletons": "drop"}),
        (FCES, {"seed": -1}),
        (FCES, {"num_trials": 0}),
        (CDP, {"k": 0}),
        (CDP, {"threshold": 2.0}),
        (CDP, {"max_size": 0}),
        (CDP, {"max_size": True}),
        (CDP, {"step": 0.0}),
        (CDP, {"step": 1.5}),
        (CDP, {"max_iter": -1}),
        (ApproxRankOrder, {"k": 1}),
        (ApproxRankOrder, {"threshold": None}),
        (ApproxRankOrder, {"threshold": 1.5}),
    ],
)
def test_bad_parameters_raise(cls, bad):
    x, _ = _blobs(n_per=10, n_blobs=2)
    with pytest.raises(ParameterError):
        cls(**bad).fit(x)


def test_k_larger_than_given_graph_raises():
    x, _ = _blobs(n_per=10, n_blobs=2)
    with pytest.raises(ParameterError):
        FCES(k=30).fit(x, knn=build_knn(x, k=10))
