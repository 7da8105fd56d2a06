"""Tests for the partition stage: dynamic-threshold components (CDP) and Infomap."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.graph import relabel
from faceclust.stages.partition import dynamic_threshold_components, infomap_partition


def _same_partition(a, b) -> bool:
    return np.array_equal(relabel(np.asarray(a)), relabel(np.asarray(b)))


def _reference_dynamic_th(src, dst, scores, n, max_size, step, max_iter):
    """Literal set-based transcription of the specification (BFS with a "remain" set)."""
    score = {}
    links: dict[int, set[int]] = {}
    for a, b, s in zip(src.tolist(), dst.tolist(), scores.tolist(), strict=True):
        a, b = min(a, b), max(a, b)
        if a == b:
            continue
        score[a, b] = s  # a later duplicate overwrites
        links.setdefault(a, set()).add(b)
        links.setdefault(b, set()).add(a)

    def components(nodes, th):
        result, remain = [], set()
        nodes = set(nodes)
        while nodes:
            v = min(nodes)
            nodes.discard(v)
            group, queue, ok = {v}, [v], True
            while queue:
                x = queue.pop(0)
                nb = {y for y in links[x] if th is None or score[min(x, y), max(x, y)] >= th}
                nb -= group
                nodes -= nb
                group |= nb
                queue.extend(nb)
                if len(group) > max_size or remain & nb:
                    ok = False
                    remain |= group
                    break
            if ok:
                result.append(group)
        return result, remain

    clusters, remain = components(links.keys(), None)
    th = min(score.values())
    it = 0
    while remain and it < max_iter:
        th = th + (1 - th) * step
        comps, remain = components(remain, th)
        clusters.extend(comps)
        it += 1
    if remain:
        clusters.append(remain)
    labels = np.full(n, -1)
    for c, members in enumerate(clusters):
        labels[list(members)] = c
    return relabel(labels)


def test_chain_splits_at_weakest_edge():
    # chain 0-1-2-3-4-5 of 6 nodes, cap 3: round 0 keeps it whole (too big);
    # th starts at min = 0.3 and rises to 0.335, which removes only the 2-3 edge
    src = np.array([0, 1, 2, 3, 4])
    dst = src + 1
    scores = np.array([0.9, 0.8, 0.3, 0.85, 0.95])
    labels = dynamic_threshold_components(src, dst, scores, 8, max_size=3, step=0.05)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 3]  # 6 and 7 have no edge: singletons
    # a cap of 6 keeps the chain in one piece
    labels = dynamic_threshold_components(src, dst, scores, 6, max_size=6, step=0.05)
    assert len(set(labels.tolist())) == 1


def test_needs_several_rounds_and_caps_every_cluster():
    # a chain whose scores differ only slightly needs many threshold rounds
    n = 40
    src = np.arange(n - 1)
    dst = src + 1
    scores = 0.5 + 0.01 * np.sin(np.arange(n - 1)) ** 2
    labels = dynamic_threshold_components(src, dst, scores, n, max_size=5, step=0.05)
    assert np.bincount(labels).max() <= 5
    assert _same_partition(labels, _reference_dynamic_th(src, dst, scores, n, 5, 0.05, 100))


@pytest.mark.parametrize("seed", range(6))
def test_matches_reference_on_random_graphs(seed):
    rng = np.random.default_rng(seed)
    n, m = 120, 220
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    scores = rng.uniform(0.3, 1.0, m)
    for max_size, max_iter in [(4, 100), (10, 100), (10, 1), (200, 100)]:
        got = dynamic_threshold_components(src, dst, scores, n, max_size, 0.05, max_iter)
        ref = _reference_dynamic_th(src, dst, scores, n, max_size, 0.05, max_iter)
        assert _same_partition(got, ref), (max_size, max_iter)


def test_leftover_merge_versus_components():
    # two separate 4-cliques with equal scores, cap 3, no rounds allowed
    pairs = [(a, b) for base in (0, 4) for a in range(base, base + 4) for b in range(a + 1, base + 4)]
    src, dst = np.array(pairs).T
    scores = np.full(len(src), 0.9)
    merged = dynamic_threshold_components(src, dst, scores, 8, 3, 0.05, max_iter=0)
    assert len(set(merged.tolist())) == 1  # reference quirk: leftovers form one cluster
    comps = dynamic_threshold_components(src, dst, scores, 8, 3, 0.05, max_iter=0, leftover="components")
    assert comps.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_duplicate_edge_pooling():
    # edge 0-1 listed twice (0.2, then 0.9 as 1-0); 1-2 at 0.5; cap 2 forces a split
    src, dst = np.array([0, 1, 1]), np.array([1, 0, 2])
    scores = np.array([0.2, 0.9, 0.5])
    # last wins: 0-1 = 0.9 -> th0 = 0.5, th1 = 0.525 drops 1-2
    assert dynamic_threshold_components(src, dst, scores, 3, 2).tolist() == [0, 0, 1]
    assert dynamic_threshold_components(src, dst, scores, 3, 2, pool="max").tolist() == [0, 0, 1]
    # avg: 0-1 = 0.55 -> th1 = 0.525 drops 1-2 too
    assert dynamic_threshold_components(src, dst, scores, 3, 2, pool="avg").tolist() == [0, 0, 1]
    # with the first score (as if 0.2 were the last): 0-1 = 0.2 is the weakest and goes
    assert dynamic_threshold_components(src[[1, 0, 2]], dst[[1, 0, 2]], scores[[1, 0, 2]], 3, 2).tolist() == [0, 1, 1]


def test_dynamic_threshold_bad_input():
    e = np.array([0]), np.array([1]), np.array([0.5])
    with pytest.raises(ParameterError):
        dynamic_threshold_components(*e, 2, max_size=0)
    with pytest.raises(ParameterError):
        dynamic_threshold_components(*e, 2, max_size=3, step=0.0)
    with pytest.raises(ParameterError):
        dynamic_threshold_components(*e, 2, max_size=3, pool="sum")
    with pytest.raises(InputError):
        dynamic_threshold_components(*e, 1, max_size=3)  # node 1 out of range
    with pytest.raises(InputError):
        dynamic_threshold_components(np.array([0]), np.array([1]), np.array([np.nan]), 2, 3)
    assert dynamic_threshold_components(np.zeros(0), np.zeros(0), np.zeros(0), 3, 2).tolist() == [0, 1, 2]


def test_infomap_two_cliques_and_isolated():
    pairs = [(a, b) for base in (0, 5) for a in range(base, base + 5) for b in range(base, base + 5) if a != b]
    src, dst = np.array(pairs).T
    src = np.append(src, 4)  # one weak bridge 4 -> 5
    dst = np.append(dst, 5)
    w = np.ones(len(src))
    w[-1] = 0.01
    labels = infomap_partition(src, dst, w, 12, seed=1)
    assert labels.tolist() == [0] * 5 + [1] * 5 + [2, 3]
    again = infomap_partition(src, dst, w, 12, seed=1)
    assert np.array_equal(labels, again)
    undirected = infomap_partition(src, dst, w, 12, directed=False)
    assert undirected.tolist() == labels.tolist()


def test_infomap_ignores_self_and_zero_links_and_checks_input():
    labels = infomap_partition(np.array([0, 1]), np.array([0, 2]), np.array([1.0, 0.0]), 3)
    assert labels.tolist() == [0, 1, 2]
    with pytest.raises(InputError):
        infomap_partition(np.array([0]), np.array([5]), np.array([1.0]), 3)
    with pytest.raises(InputError):
        infomap_partition(np.array([0, 1]), np.array([1]), np.array([1.0]), 3)
