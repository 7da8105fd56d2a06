"""Tests for :mod:`faceclust.stages.join` and ``auto``'s cluster-joining step."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.methods import AutoClusterer
from faceclust.metrics import pairwise
from faceclust.stages.join import cluster_votes, evidenced_pairs, join_clusters
from faceclust.stages.linkage import merge_clusters


def merge_along_pairs(x, labels, a, b, t):
    return merge_clusters(x, labels, a, b, t)


def _unit(v):
    v = np.asarray(v, dtype=np.float64)
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


# --------------------------------------------------------------- cluster_votes
def test_cluster_votes_counts_slots_per_cluster_pair():
    labels = np.array([0, 0, 1, 2])
    nbr = np.array([[1, 2], [0, 2], [3, -1], [2, 0]])
    a, b, v = cluster_votes(labels, nbr)
    got = {(int(i), int(j)): int(c) for i, j, c in zip(a, b, v, strict=True)}
    # cluster 0: slots 1 (0), 2 (1), 0 (0), 2 (1) -> (0,0)=2, (0,1)=2; cluster 1: 3 -> (1,2)=1
    # (the -1 is skipped); cluster 2: 2 (1), 0 (0) -> (2,1)=1, (2,0)=1
    assert got == {(0, 0): 2, (0, 1): 2, (1, 2): 1, (2, 0): 1, (2, 1): 1}
    # chunked reading gives the same counts
    a2, b2, v2 = cluster_votes(labels, nbr, chunk=1)
    np.testing.assert_array_equal(np.stack([a, b, v]), np.stack([a2, b2, v2]))


def test_cluster_votes_rejects_bad_shape():
    with pytest.raises(InputError, match="nbr_ids"):
        cluster_votes(np.zeros(3, dtype=int), np.zeros((2, 2), dtype=int))


# ------------------------------------------------------------- evidenced_pairs
def _piece_and_main():
    """Cluster 0 (2 pts) has most neighbours in cluster 1 (4 pts), which lists it back;
    cluster 2 (2 pts) keeps its neighbours to itself."""
    labels = np.array([0, 0, 1, 1, 1, 1, 2, 2])
    nbr = np.array([
        [1, 2, 3],  # piece: 1 own, 2 in the main cluster
        [2, 3, 4],
        [3, 4, 0],  # main: lists the piece back
        [2, 5, 1],
        [5, 2, 3],
        [4, 3, 2],
        [7, 5, 4],  # cluster 2: own first, then the main cluster
        [6, 0, 3],
    ])
    return labels, nbr


def test_evidenced_pairs_finds_the_piece_only():
    labels, nbr = _piece_and_main()
    # cluster 0: 6 slots, 1 inside, 5 in cluster 1 (83 %, all of those outside);
    # cluster 1 puts 2 slots in cluster 0 (>= 0.2 x 5)
    a, b = evidenced_pairs(labels, nbr)
    assert list(zip(a.tolist(), b.tolist(), strict=True)) == [(0, 1)]


def test_evidenced_pairs_back_votes_block_a_hub():
    labels, nbr = _piece_and_main()
    nbr = nbr.copy()
    nbr[2:6] = [[3, 4, 5], [2, 5, 4], [5, 2, 3], [4, 3, 2]]  # cluster 1 never lists cluster 0
    a, _ = evidenced_pairs(labels, nbr)
    assert len(a) == 0
    a, b = evidenced_pairs(labels, nbr, back=0.0)
    assert (0, 1) in set(zip(a.tolist(), b.tolist(), strict=True))


def test_evidenced_pairs_slots_share_and_touch():
    labels, nbr = _piece_and_main()
    # cluster 2 has 3 of 6 slots in cluster 1 (50 %) but cluster 1 never lists it back;
    # at slots 0.6 it is not enough either
    a, b = evidenced_pairs(labels, nbr, back=0.0)
    assert (1, 2) in set(zip(a.tolist(), b.tolist(), strict=True))
    a, b = evidenced_pairs(labels, nbr, slots=0.6, back=0.0)
    assert set(zip(a.tolist(), b.tolist(), strict=True)) == {(0, 1)}
    # touch: the strongest neighbour similarity between the two must reach it
    sims = np.full(nbr.shape, 0.3, dtype=np.float32)
    sims[0, 1] = 0.8  # the piece's point 0 -> main point 2
    a, _ = evidenced_pairs(labels, nbr, sims, touch=0.7)
    assert len(a) == 1
    a, _ = evidenced_pairs(labels, nbr, sims, touch=0.9)
    assert len(a) == 0
    with pytest.raises(InputError, match="nbr_sims"):
        evidenced_pairs(labels, nbr, touch=0.5)
    with pytest.raises(ParameterError, match="slots"):
        evidenced_pairs(labels, nbr, slots=1.5)


def test_evidenced_pairs_leaves_singletons_to_attachment():
    labels = np.array([0, 1, 1, 1])
    nbr = np.array([[1, 2], [2, 0], [1, 3], [2, 1]])
    a, _ = evidenced_pairs(labels, nbr, back=0.0)
    assert len(a) == 0


# ------------------------------------ average linkage along the pairs (merge_clusters)
def test_merge_along_pairs_exact_mean_cosine():
    # clusters {0,1}, {2}, {3}: cos(0,2)=cos(1,2)=0.6 -> mean 0.6; cluster 3 orthogonal
    x = _unit([[1, 0, 0], [1, 0, 0], [0.6, 0.8, 0], [0, 0, 1]])
    labels = np.array([0, 0, 1, 2])
    out = merge_along_pairs(x, labels, np.array([0, 0]), np.array([1, 2]), 0.59)
    assert out[0] == out[1] == out[2] != out[3]
    out = merge_along_pairs(x, labels, np.array([0, 0]), np.array([1, 2]), 0.61)
    assert len(np.unique(out)) == 3
    # no pair: nothing merges, even for close clusters
    out = merge_along_pairs(x, labels, np.zeros(0, int), np.zeros(0, int), -1.0)
    assert len(np.unique(out)) == 3


def test_merge_along_pairs_inherits_pairs_and_recomputes_links():
    # A={0}, B={1}, C={2} on a circle: A-B 0.9, B-C 0.9, A-C 0.62; only pairs A-B, B-C given.
    ang = np.deg2rad([0.0, 25.84, 51.68])
    x = _unit(np.stack([np.cos(ang), np.sin(ang)], axis=1))
    labels = np.arange(3)
    a, b = np.array([0, 1]), np.array([1, 2])
    # A+B merge first; then C's mean cosine to {A,B} is (0.9 + 0.62) / 2 = 0.76
    out = merge_along_pairs(x, labels, a, b, 0.75)
    assert len(np.unique(out)) == 1
    out = merge_along_pairs(x, labels, a, b, 0.77)
    assert len(np.unique(out)) == 2


def test_join_clusters_rejects_mismatched_rows():
    with pytest.raises(InputError, match="labels for"):
        join_clusters(_unit(np.eye(3)), np.arange(4), np.zeros((4, 2), dtype=int), 0.5)


# -------------------------------------------------------- auto's joining step
def _tailed(n_ids=30, per=24, d=64, length=2.3, noise=0.6, seed=1):
    """Identities whose photos spread along a pose direction: most near frontal, a tail
    of turned photos (t = length * u^3) that average linkage splits off."""
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n_ids, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    pose = rng.normal(size=(n_ids, d))
    pose -= (pose * c).sum(1, keepdims=True) * c
    pose /= np.linalg.norm(pose, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_ids), per)
    t = length * rng.uniform(0, 1, size=len(y)) ** 3
    x = c[y] + t[:, None] * pose[y] + noise * rng.normal(size=(len(y), d)) / np.sqrt(d)
    return _unit(x), y


def _split_ids(y, labels):
    return {int(i) for i in np.unique(y) if len(np.unique(labels[y == i])) > 1}


def test_auto_join_regroups_people_split_along_a_pose_direction():
    x, y = _tailed()
    off = AutoClusterer(join=None).fit(x).labels_
    on_model = AutoClusterer().fit(x)
    on = on_model.labels_
    split_off, split_on = _split_ids(y, off), _split_ids(y, on)
    assert len(split_off) >= 5  # the linkage alone splits several people
    assert split_on < split_off  # joining only regroups, never splits
    assert len(split_off - split_on) >= 5  # people that were split now stay whole
    p_on, r_on, _ = pairwise(y, on)
    assert p_on == 1.0  # ... and no two people were joined
    assert r_on > pairwise(y, off)[1] + 0.1
    assert "two clusters join" in on_model.explain_


def test_auto_join_keeps_look_alike_people_apart():
    # 24 tight identities in pairs of look-alikes (centre cosine 0.5), 8 photos each: every
    # cluster's nearest cluster is its look-alike and most outside neighbours go there
    rng = np.random.default_rng(3)
    d, per = 32, 8
    base = rng.normal(size=(12, d))
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    other = rng.normal(size=(12, d))
    other -= (other * base).sum(1, keepdims=True) * base
    other /= np.linalg.norm(other, axis=1, keepdims=True)
    twin = 0.5 * base + np.sqrt(0.75) * other
    centres = np.concatenate([base, twin])
    y = np.repeat(np.arange(24), per)
    x = _unit(centres[y] + 0.3 * rng.normal(size=(len(y), d)) / np.sqrt(d))
    off = AutoClusterer(join=None).fit(x).labels_
    on = AutoClusterer().fit(x).labels_
    np.testing.assert_array_equal(on, off)
    assert pairwise(y, on)[0] == 1.0
    # without the touch and slot guards the look-alikes would be joined
    loose = AutoClusterer(join_touch=0.0, join_slots=0.3).fit(x).labels_
    assert pairwise(y, loose)[0] < 1.0


def test_join_clusters_matches_auto_step_and_param_checks():
    x, y = _tailed(n_ids=12, seed=2)
    m = AutoClusterer(join=None, attach=None).fit(x)
    est = m.estimate_
    from faceclust.knn import build_knn

    g = build_knn(x, k=20)
    thr = est.impostor_mode + 0.05 * (est.genuine_mode - est.impostor_mode)
    touch = est.impostor_mode + 0.55 * (est.genuine_mode - est.impostor_mode)
    got = join_clusters(x, m.labels_, g.ids[:, 1:20], thr, touch=touch, nbr_sims=g.sims[:, 1:20])
    want = AutoClusterer(attach=None).fit(x).labels_
    assert pairwise(want, got)[2] == 1.0
    with pytest.raises(ParameterError, match="join_touch"):
        AutoClusterer(join_touch=2.0).fit(x)
    # graph only: the step needs the features and says so
    model = AutoClusterer().fit(None, knn=g)
    assert "cluster joining skipped" in model.explain_
