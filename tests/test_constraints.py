"""Tests for the must-link / cannot-link repair stage and the ``constraints=`` fit parameter."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.methods import METHODS
from faceclust.stages.constraints import Constraints, apply_constraints, as_constraints


def test_must_link_merges_clusters_keeping_smallest_label():
    y = np.array([0, 0, 1, 1, 2, 3])
    out = apply_constraints(y, must_link=[[1, 2], [4, 5]])
    assert out.tolist() == [0, 0, 0, 0, 2, 2]


def test_must_link_chain_and_noise():
    y = np.array([-1, -1, 5, 7])
    out = apply_constraints(y, must_link=[[0, 1], [1, 3]])
    assert out[0] == out[1] == out[3] and out[2] == 5 and out[0] != 5


def test_cannot_link_moves_least_typical_member_to_new_cluster():
    # cluster 0: faces 0,1,2 near e1; face 3 between e1 and e2; cannot-link (0, 3)
    x = np.array([[1, 0], [0.99, 0.14], [0.98, 0.2], [0.7, 0.71], [0, 1]], dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    y = np.array([0, 0, 0, 0, 1])
    out = apply_constraints(y, cannot_link=[[0, 3]], features=x)
    assert out[:3].tolist() == [0, 0, 0] and out[3] == 2 and out[4] == 1
    # with a threshold the moved face may join its best other allowed cluster
    out = apply_constraints(y, cannot_link=[[0, 3]], features=x, threshold=0.5)
    assert out[3] == 1


def test_cannot_link_respects_must_link_groups():
    y = np.zeros(4, dtype=int)
    out = apply_constraints(y, must_link=[[2, 3]], cannot_link=[[0, 2]])
    # without features the larger unit (the must-linked pair) stays; face 0 moves out
    assert out[2] == out[3] == out[1] == 0 and out[0] == 1


def test_same_photo_faces_all_separated():
    y = np.zeros(4, dtype=int)
    cl = [[0, 1], [0, 2], [1, 2]]  # three faces in one photo
    out = apply_constraints(y, cannot_link=cl)
    assert len({out[0], out[1], out[2]}) == 3


def test_contradiction_and_bad_pairs():
    with pytest.raises(ParameterError, match="contradict"):
        apply_constraints(np.zeros(3, int), must_link=[[0, 1], [1, 2]], cannot_link=[[0, 2]])
    with pytest.raises(InputError, match="must_link"):
        apply_constraints(np.zeros(3, int), must_link=[[0, 3]])
    with pytest.raises(InputError, match="cannot_link"):
        apply_constraints(np.zeros(3, int), cannot_link=[0, 1])
    with pytest.raises(ParameterError, match="constraints"):
        as_constraints("x", 3)
    c = as_constraints({"must_link": [[0, 1]]}, 3)
    assert isinstance(c, Constraints) and c.cannot_link.shape == (0, 2)


@pytest.mark.parametrize("name", ["auto", "knn-cc", "incremental", "hac"])
def test_fit_constraints_param_honoured(name):
    rng = np.random.default_rng(0)
    c = rng.normal(size=(4, 16))
    y = np.repeat(np.arange(4), 10)
    x = (c[y] + 0.05 * rng.normal(size=(40, 16))).astype(np.float32)
    kw = {"k": 5} if name != "incremental" else {}
    plain = METHODS[name](**kw).fit(x).labels_
    assert plain[0] == plain[1] and plain[0] != plain[10]
    cons = ([[0, 10]], [[0, 1]])  # force faces 0 and 10 together, 0 and 1 apart
    out = METHODS[name](**kw).fit(x, constraints=cons).labels_
    assert out[0] == out[10] and out[0] != out[1]
