"""Tests for per-face confidence and merge suggestions."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import ParameterError
from faceclust.methods import METHODS
from faceclust.suggest import cluster_sums, confidence, suggest_merges


def _unit(a):
    a = np.asarray(a, dtype=np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def test_confidence_hand_computed():
    # cluster 0: e1, e1; cluster 1: e2. face 0: own mean cos 1, best other 0 -> margin 1
    x = _unit([[1, 0], [1, 0], [0, 1]])
    y = np.array([0, 0, 1])
    c = confidence(x, y, scale=0.5, threshold=0.3)
    assert c[0] == pytest.approx(1.0) and c[1] == pytest.approx(1.0)
    # singleton face 2: margin = threshold - best other (0) = 0.3 -> 0.6
    assert c[2] == pytest.approx(0.6)
    # a face sitting between two clusters gets low confidence
    x2 = _unit([[1, 0], [1, 0.05], [0.7, 0.7], [0, 1], [0.05, 1]])
    c2 = confidence(x2, np.array([0, 0, 0, 1, 1]), scale=0.5, threshold=0.3)
    assert c2[2] < 0.2 < c2[0]


def test_confidence_uses_estimate_scale():
    rng = np.random.default_rng(0)
    cen = rng.normal(size=(30, 32))
    y = np.repeat(np.arange(30), 6)
    x = _unit(cen[y] + 0.3 * rng.normal(size=(180, 32)))
    m = METHODS["auto"]().fit(x)
    c = confidence(x, m.labels_, estimate=m.estimate_)
    assert c.shape == (180,) and 0 <= c.min() and c.max() <= 1
    assert np.median(c) > 0.5


def test_suggest_merges_ranked_and_hand_computed():
    x = _unit([[1, 0, 0], [1, 0, 0], [0.8, 0.6, 0], [0, 1, 0], [0, 0, 1]])
    y = np.array([0, 0, 1, 2, 3])
    out = suggest_merges(x, y, top=3, k=4)
    assert out[0][:2] == (0, 1) and out[0][2] == pytest.approx(0.8, abs=1e-6)
    assert out[1][:2] == (1, 2) and out[1][2] == pytest.approx(0.6, abs=1e-6)
    scores = [s for _, _, s in out]
    assert scores == sorted(scores, reverse=True)
    assert len(suggest_merges(x, y, top=1)) == 1


def test_suggest_merges_after_split_finds_the_split():
    rng = np.random.default_rng(1)
    cen = rng.normal(size=(10, 32))
    y = np.repeat(np.arange(10), 8)
    x = _unit(cen[y] + 0.2 * rng.normal(size=(80, 32)))
    pred = y.copy()
    pred[:4] = 10  # identity 0 split in two
    top = suggest_merges(x, pred, top=1)[0]
    assert top[:2] == (0, 10)


def test_cluster_sums_and_errors():
    x = _unit([[1, 0], [0, 1], [1, 1]])
    ids, sums, cnt = cluster_sums(x, np.array([3, 3, -1]))
    assert ids.tolist() == [3] and cnt.tolist() == [2.0]
    np.testing.assert_allclose(sums[0], [1, 1], atol=1e-6)
    with pytest.raises(ParameterError, match="top"):
        suggest_merges(x, np.array([0, 1, 1]), top=0)
    with pytest.raises(ParameterError, match="scale"):
        confidence(x, np.array([0, 1, 1]), scale=0.0, threshold=0.5)
