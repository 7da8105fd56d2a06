"""FC-ES link cap: early_stop_edges(max_links=...) and FCES(max_links=...)."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import ParameterError
from faceclust.methods import get_method
from faceclust.stages.select import early_stop_edges


def _table():
    # row 0: self, 1 (0.9), 2 (0.8), 3 (0.7) -> 3 links; row 1: self, 0 (0.9), 2 (0.1 stops), 3
    ids = np.array([[0, 1, 2, 3], [1, 0, 2, 3], [2, 3, 0, 1], [3, 2, 1, 0]])
    sc = np.array([[1, 0.9, 0.8, 0.7], [1, 0.9, 0.1, 0.9], [1, 0.6, 0.5, 0.4], [1, 0.1, 0.9, 0.9]],
                  dtype=np.float32)
    return ids, sc


def test_cap_keeps_first_links_in_knn_order():
    ids, sc = _table()
    src, dst, w, single = early_stop_edges(ids, sc, 0.3)
    assert list(zip(src.tolist(), dst.tolist(), strict=True)) == [
        (0, 1), (0, 2), (0, 3), (1, 0), (2, 3), (2, 0), (2, 1)]
    src, dst, w, single = early_stop_edges(ids, sc, 0.3, max_links=2)
    assert list(zip(src.tolist(), dst.tolist(), strict=True)) == [(0, 1), (0, 2), (1, 0), (2, 3), (2, 0)]
    np.testing.assert_allclose(w, [0.9, 0.8, 0.9, 0.6, 0.5])
    assert single.tolist() == [False, False, False, True]
    # a cap above every row's count changes nothing
    full = early_stop_edges(ids, sc, 0.3)
    big = early_stop_edges(ids, sc, 0.3, max_links=10)
    for a, b in zip(full, big, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True, "3"])
def test_cap_rejects_bad_values(bad):
    ids, sc = _table()
    with pytest.raises(ParameterError, match="max_links"):
        early_stop_edges(ids, sc, 0.3, max_links=bad)
    with pytest.raises(ParameterError, match="max_links"):
        get_method("fc-es")(k=3, max_links=bad).fit(np.eye(4, dtype=np.float32))


def test_fces_with_cap_clusters_blobs():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 16))
    x = np.repeat(centres, 6, axis=0) + 0.05 * rng.standard_normal((24, 16))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    gt = np.repeat(np.arange(4), 6)
    est = get_method("fc-es")(k=10, max_links=5).fit(x)
    assert est.n_links_ == 24 * 5  # each point links its 5 blob mates, nothing more
    lab = est.labels_
    # every blob is one cluster and the blobs are not merged
    assert all(len(set(lab[gt == c])) == 1 for c in range(4))
    assert len(set(lab)) == 4
    assert est.get_params()["max_links"] == 5
