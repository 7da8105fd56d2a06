"""Tests for the confidence stage: s_nbr target, peaks, tree deduction, ignore set, split."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.stages.confidence import (
    choose_tau,
    deduce_tree,
    find_peaks,
    identity_folds,
    ignore_mask,
    snbr_confidence,
    split_by_identity,
)

# hand graph: 4 nodes, k=3 (self first), one missing neighbour in row 3
IDS = np.array([[0, 1, 2], [1, 0, 3], [2, 0, 1], [3, 1, -1]])
SIMS = np.array(
    [[1.0, 0.9, 0.5], [1.0, 0.9, 0.4], [1.0, 0.5, 0.3], [1.0, 0.4, -np.inf]], dtype=np.float32
)
LABELS = np.array([0, 0, 1, 1])


def test_snbr_hand_graph():
    # row 0: +1 +0.9 -0.5 = 1.4 ; row 1: +1 +0.9 -0.4 = 1.5
    # row 2: +1 -0.5 -0.3 = 0.2 ; row 3: +1 -0.4 (missing adds 0) = 0.6
    raw = snbr_confidence(IDS, SIMS, LABELS, normalize=False)
    np.testing.assert_allclose(raw, [1.4, 1.5, 0.2, 0.6], rtol=1e-6)
    c = snbr_confidence(IDS, SIMS, LABELS)
    np.testing.assert_allclose(c, np.array([1.4, 1.5, 0.2, 0.6]) / 1.5, rtol=1e-6)
    assert c.dtype == np.float32 and np.abs(c).max() == pytest.approx(1.0)


def test_snbr_negative_normalisation_uses_abs():
    ids = np.array([[0, 1], [1, 0]])
    sims = np.array([[1.0, 0.9], [1.0, 0.9]], dtype=np.float32)
    # different labels: each row 1 - 0.9 = 0.1 -> both 1 after normalisation
    np.testing.assert_allclose(snbr_confidence(ids, sims, np.array([0, 1])), [1.0, 1.0])
    sims3 = np.array([[1.0, 3.0], [1.0, 0.5]], dtype=np.float32)  # row 0: 1 - 3 = -2
    np.testing.assert_allclose(snbr_confidence(ids, sims3, np.array([0, 1])), [-1.0, 0.25])


def test_snbr_label_shape_error():
    with pytest.raises(InputError, match="labels"):
        snbr_confidence(IDS, SIMS, LABELS[:3])


def test_peaks_nearest_strictly_higher():
    conf = np.array([0.5, 0.9, 0.7, 0.1], dtype=np.float32)
    peak, sim = find_peaks(IDS, SIMS, conf)
    # 0 -> 1 (nearest, higher); 1 has none (the maximum);
    # row 2 neighbours: 0 (0.5, lower: skipped), 1 (0.9, higher) -> 1 with sim 0.3
    # row 3: 1 (0.9 > 0.1) -> 1 with sim 0.4
    assert peak.tolist() == [1, -1, 1, 1]
    np.testing.assert_allclose(sim, [0.9, -np.inf, 0.3, 0.4])


def test_peaks_equal_confidence_is_not_a_parent():
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    sims = np.array([[1, 0.9, 0.8], [1, 0.9, 0.7], [1, 0.7, 0.8]], dtype=np.float32)
    conf = np.array([0.5, 0.5, 0.5], dtype=np.float32)
    peak, _ = find_peaks(ids, sims, conf)
    assert peak.tolist() == [-1, -1, -1]
    conf2 = np.array([0.5, 0.5, 0.6], dtype=np.float32)
    peak2, sim2 = find_peaks(ids, sims, conf2)
    # node 0: skips the tied 1, takes 2 ; node 1 likewise ; node 2 is the root
    assert peak2.tolist() == [2, 2, -1]
    np.testing.assert_allclose(sim2[:2], [0.8, 0.7])


def test_peaks_skip_missing_and_self():
    ids = np.array([[0, -1], [1, 0]])
    sims = np.array([[1.0, -np.inf], [1.0, 0.5]], dtype=np.float32)
    peak, _ = find_peaks(ids, sims, np.array([0.0, 1.0], dtype=np.float32))
    assert peak.tolist() == [-1, -1]


def test_deduce_tree_strict_threshold():
    peak = np.array([1, -1, 1, 2, -1])
    sim = np.array([0.9, -np.inf, 0.8, 0.95, -np.inf], dtype=np.float32)
    # tau 0.8: edge 2->1 (sim 0.8) is NOT kept (strict) -> {0,1}, {2,3}, {4}
    lab = deduce_tree(peak, sim, 0.8)
    assert lab.tolist() == [0, 0, 1, 1, 2]
    lab2 = deduce_tree(peak, sim, 0.79)
    assert lab2.tolist() == [0, 0, 0, 0, 1]
    assert deduce_tree(peak, sim, 0.99).tolist() == [0, 1, 2, 3, 4]


def test_deduce_tree_bad_input():
    with pytest.raises(InputError):
        deduce_tree(np.array([0, 1]), np.array([0.5]), 0.5)
    with pytest.raises(ParameterError):
        deduce_tree(np.array([-1]), np.array([0.0]), float("nan"))


def test_peaks_then_tree_recovers_two_groups():
    # two groups on a line; confidence peaks at each group centre
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 4, 5], [4, 3, 5], [5, 4, 3]])
    sims = np.array([[1, 0.9, 0.85]] * 6, dtype=np.float32)
    conf = np.array([0.5, 0.9, 0.4, 0.3, 0.8, 0.2], dtype=np.float32)
    peak, sim = find_peaks(ids, sims, conf)
    assert peak.tolist() == [1, -1, 1, 4, -1, 4]
    assert deduce_tree(peak, sim, 0.5).tolist() == [0, 0, 0, 1, 1, 1]


def test_ignore_mask_counts_lowest():
    conf = np.array([0.3, 0.1, 0.5, 0.1, 0.9])
    m = ignore_mask(conf, 0.4)  # floor(2.0) = 2 lowest: rows 1 and 3
    assert m.tolist() == [False, True, False, True, False]
    assert ignore_mask(conf, 0.0).sum() == 0 and ignore_mask(conf, 1.0).all()
    with pytest.raises(ParameterError):
        ignore_mask(conf, 1.5)


def test_split_by_identity_disjoint_and_seeded():
    labels = np.repeat(np.arange(50), np.arange(50) % 4 + 1)
    tr, te = split_by_identity(labels, 0.3, seed=1)
    assert len(np.intersect1d(labels[tr], labels[te])) == 0
    assert np.array_equal(np.sort(np.concatenate([tr, te])), np.arange(len(labels)))
    assert len(np.unique(labels[te])) == 15
    tr2, te2 = split_by_identity(labels, 0.3, seed=1)
    assert np.array_equal(te, te2)
    _, te3 = split_by_identity(labels, 0.3, seed=2)
    assert not np.array_equal(te, te3)
    with pytest.raises(ParameterError):
        split_by_identity(labels, 1.0)
    with pytest.raises(InputError):
        split_by_identity(np.zeros(5, int), 0.5)


def test_choose_tau_scale_free():
    # two groups: within-group peak sims high, one cross-group link in between
    peak = np.array([1, -1, 1, 4, -1, 4, 1])
    labels = np.array([0, 0, 0, 1, 1, 1, 2])
    for shift in (0.0, 0.8):  # ArcFace-like and dlib-like scales
        sim = np.array([0.7, -np.inf, 0.65, 0.72, -np.inf, 0.68, 0.4]) * (1 - shift) + shift
        tau, f = choose_tau(peak, sim, labels)
        assert f == pytest.approx(1.0)
        # the chosen cut keeps every within-group link and drops the impostor (node 6)
        assert sim[6] <= tau < sim[[0, 2, 3, 5]].min()
        assert deduce_tree(peak, sim, tau).tolist() == [0, 0, 0, 1, 1, 1, 2]
    assert choose_tau(np.array([-1, -1]), np.array([-np.inf, -np.inf]), np.array([0, 1])) == (1.0, 0.0)


def test_identity_folds_keep_each_identity_in_one_fold():
    y = np.repeat(np.arange(9), [1, 2, 3, 1, 2, 3, 1, 2, 3])
    fold = identity_folds(y, 3, seed=0, what="t")
    assert sorted(np.unique(fold).tolist()) == [0, 1, 2]
    for ident in np.unique(y):
        assert len(np.unique(fold[y == ident])) == 1
    # identities are dealt round-robin after a seeded shuffle: 3 identities per fold
    assert [len(np.unique(y[fold == f])) for f in range(3)] == [3, 3, 3]
    np.testing.assert_array_equal(fold, identity_folds(y, 3, seed=0, what="t"))
    with pytest.raises(InputError, match="t: 9 identities cannot make 10 folds"):
        identity_folds(y, 10, seed=0, what="t")


def test_link_roots_hand_case():
    from faceclust.stages.confidence import link_roots

    # nodes 0..4; roots 1, 3, 4 (peak -1); confidences make 3 the top root
    peak = np.array([1, -1, 3, -1, -1])
    sim = np.array([0.9, -np.inf, 0.8, -np.inf, -np.inf], np.float32)
    conf = np.array([0.1, 0.5, 0.2, 0.9, 0.3], np.float32)
    # kNN over the roots [1, 3, 4] (local ids), self first
    rids = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]])
    rsims = np.array([[1.0, 0.7, 0.4], [1.0, 0.7, 0.2], [1.0, 0.6, 0.2]], np.float32)
    p2, s2 = link_roots(peak, sim, conf, rids, rsims)
    # root 1 -> 3 (0.7); root 4 -> nearest higher root: 1 (conf 0.5 > 0.3, 0.6); 3 stays root
    assert p2.tolist() == [1, 3, 3, -1, 1]
    np.testing.assert_allclose(s2[[1, 4]], [0.7, 0.6])
    assert peak[1] == -1  # input not modified
    from faceclust.stages.confidence import deduce_tree

    assert len(np.unique(deduce_tree(p2, s2, 0.65))) == 2  # 4 cut off at 0.6
    with pytest.raises(InputError, match="roots"):
        link_roots(peak, sim, conf, rids[:2], rsims[:2])
