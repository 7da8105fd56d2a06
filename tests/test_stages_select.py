"""Tests for the select stage: threshold edges, FC-ES early stopping, pair de-duplication."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError
from faceclust.knn import KnnGraph
from faceclust.stages.select import early_stop_edges, threshold_edges, unique_pairs


def _edges(src, dst):
    return list(zip(src.tolist(), dst.tolist(), strict=True))


def test_early_stop_stops_at_first_below_theta():
    ids = np.full((5, 5), -1)
    ids[:, 0] = np.arange(5)  # rows 1-4 have no neighbours
    ids[0] = [0, 1, 2, 3, 4]
    scores = np.zeros(ids.shape, dtype=np.float32)
    scores[0] = [1.0, 0.5, 0.22, 0.1, 0.9]  # 0.22 >= theta is kept; 0.1 stops; 0.9 is NOT linked
    src, dst, w, single = early_stop_edges(ids, scores, 0.22)
    assert _edges(src, dst) == [(0, 1), (0, 2)]
    np.testing.assert_allclose(w, [0.5, 0.22])
    assert w.dtype == np.float32 and src.dtype == np.int64
    assert single.tolist() == [False, True, True, True, True]


def test_early_stop_skips_self_anywhere_and_stops_on_missing():
    # raw arrays: self in column 2 of row 1 is skipped, not a stop
    ids = np.array([[0, 1, -1, 2], [0, 2, 1, 2], [2, 0, 1, 1]])
    scores = np.array([[1.0, 0.9, 0.9, 0.9], [0.8, 0.7, 0.05, 0.6], [1.0, 0.3, 0.1, 0.8]])
    src, dst, w, single = early_stop_edges(ids, scores, 0.5)
    # row 0: link 1, then the missing entry stops (the later 2 is dropped)
    # row 1: 0, 2, (self skipped), 2 again
    # row 2: self, then 0.3 < 0.5 stops
    assert _edges(src, dst) == [(0, 1), (1, 0), (1, 2), (1, 2)]
    assert single.tolist() == [False, False, True]


def test_early_stop_nan_stops_and_blocks_agree():
    rng = np.random.default_rng(0)
    n, k = 70000, 6  # more rows than one block
    ids = rng.integers(0, n, (n, k))
    ids[:, 0] = np.arange(n)
    scores = rng.random((n, k)).astype(np.float32)
    scores[5, 1] = np.nan
    src, dst, w, single = early_stop_edges(ids, scores, 0.3)
    assert not (src == 5).any()
    # naive reference on a sample of rows
    for i in [0, 5, 32767, 32768, 69999]:
        ref = []
        for c in range(1, k):
            if ids[i, c] == i:
                continue
            if not scores[i, c] >= 0.3:
                break
            ref.append(int(ids[i, c]))
        assert dst[src == i].tolist() == ref
        assert single[i] == (len(ref) == 0)


def test_threshold_edges_inclusive_strict_and_self():
    g = KnnGraph(
        np.array([[0, 1, 2], [1, 0, -1], [2, 0, 1]]),
        np.array([[1.0, 0.7, 0.6], [1.0, 0.7, -np.inf], [1.0, 0.7, 0.75]], dtype=np.float32),
    )
    src, dst, w = threshold_edges(g, threshold=0.7)
    assert _edges(src, dst) == [(0, 1), (1, 0), (2, 0), (2, 1)]
    src, dst, w = threshold_edges(g, threshold=0.7, strict=True)
    assert _edges(src, dst) == [(2, 1)]
    np.testing.assert_allclose(w, [0.75])
    src, dst, w = threshold_edges(g)  # no threshold: every present non-self slot
    assert len(src) == 5
    # explicit scores override the similarities
    src, dst, w = threshold_edges(g.ids, -np.ones((3, 3)), -1.0)
    assert len(src) == 5 and (w == -1).all()
    with pytest.raises(InputError):
        threshold_edges(g.ids, None, 0.5)
    with pytest.raises(InputError):
        threshold_edges(g.ids, np.ones((3, 2)), 0.5)


def test_unique_pairs_keeps_first_occurrence():
    src = np.array([0, 0, 1, 2, 2, 3])
    dst = np.array([1, 2, 0, 0, 2, 1])
    w = np.array([0.9, 0.8, 0.1, 0.2, 1.0, 0.5])
    lo, hi, s = unique_pairs(src, dst, w)
    assert list(zip(lo.tolist(), hi.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 3)]
    np.testing.assert_allclose(s, [0.9, 0.8, 0.5])  # 1->0 (0.1) and 2->0 (0.2) come later
    lo, hi, s = unique_pairs(np.zeros(0), np.zeros(0), np.zeros(0))
    assert len(lo) == 0
