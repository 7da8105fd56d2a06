"""Partition primitives: components, relabelling, union-find."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError
from faceclust.graph import (
    UnionFind,
    connected_components,
    group_sums,
    labels_from_clusters,
    relabel,
)


def test_connected_components_with_isolated_nodes():
    labels = connected_components(np.array([0, 3, 5]), np.array([1, 4, 3]), 7)
    # {0,1}, {2}, {3,4,5}, {6}: numbered by first appearance
    assert labels.tolist() == [0, 0, 1, 2, 2, 2, 3]


def test_connected_components_direction_ignored():
    assert connected_components(np.array([2]), np.array([0]), 3).tolist() == [0, 1, 0]


def test_connected_components_bad_ids():
    with pytest.raises(InputError, match="node ids"):
        connected_components(np.array([0]), np.array([3]), 3)


def test_relabel_first_appearance_and_noise():
    assert relabel(np.array([7, 7, 3, -1, 3, -1, 9])).tolist() == [0, 0, 1, 2, 1, 3, 4]
    assert relabel(np.array([-1, -1])).tolist() == [0, 1]
    assert relabel(np.array([], dtype=int)).tolist() == []


def test_labels_from_clusters():
    labels = labels_from_clusters([np.array([4, 2]), np.array([0])], 6)
    assert labels.tolist() == [0, 1, 2, 3, 2, 4]
    with pytest.raises(InputError, match="overlap"):
        labels_from_clusters([np.array([1, 2]), np.array([2])], 3)


def test_union_find_matches_components():
    rng = np.random.default_rng(0)
    src, dst = rng.integers(0, 50, 40), rng.integers(0, 50, 40)
    uf = UnionFind(50)
    uf.union_many(src, dst)
    assert uf.labels().tolist() == connected_components(src, dst, 50).tolist()
    assert uf.union(0, 0) is False


def test_group_sums_equals_add_at_and_checks_ids():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 7)).astype(np.float32)
    g = rng.integers(0, 40, size=500)
    ref = np.zeros((43, 7))
    np.add.at(ref, g, x)
    out = group_sums(x, g, 43)
    assert out.dtype == np.float64 and out.shape == (43, 7)
    assert np.array_equal(out, ref)  # same order of additions: bit for bit
    assert not out[40:].any()
    with pytest.raises(InputError, match="group ids"):
        group_sums(x, g, 10)
    with pytest.raises(InputError, match="500 rows"):
        group_sums(x, g[:3], 43)
