"""Classic baselines: chinese-whispers, dbscan, hac (single/average), kmeans, and their kernels."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.graph import relabel
from faceclust.knn import build_knn
from faceclust.methods import METHODS
from faceclust.methods._baselines import FASTHAC_COSINE
from faceclust.stages.cluster_ops import (
    attach_by_majority,
    average_linkage,
    chinese_whispers,
    symmetric_csr,
)

from .conftest import unit_rows

BASELINES = {
    "chinese-whispers": {"k": 20},
    "dbscan": {"k": 20},
    "hac": {"k": 20},
    "kmeans": {"n_clusters": 5},
}


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(relabel(a), relabel(b))


@pytest.mark.parametrize("name", ["chinese-whispers", "dbscan", "hac", "hac-average", "kmeans"])
def test_recovers_tight_blobs(blobs, name):
    x, y = blobs
    if name == "hac-average":
        est = METHODS["hac"](k=20, linkage="average")
    else:
        est = METHODS[name](**BASELINES[name])
    labels = est.fit_predict(x)
    assert labels.shape == (100,)
    assert _same_partition(labels, y)
    assert "partition" in est.stage_seconds_


def test_registered_names():
    for name in ("chinese-whispers", "dbscan", "hac", "kmeans"):
        assert name in METHODS
    assert METHODS["kmeans"].uses_knn is False


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("chinese-whispers", {"k": 1}),
        ("chinese-whispers", {"threshold": 1.5}),
        ("chinese-whispers", {"iters": 0}),
        ("chinese-whispers", {"seed": -1}),
        ("dbscan", {"eps": 0.0}),
        ("dbscan", {"eps": 2.5}),
        ("dbscan", {"min_samples": 0}),
        ("dbscan", {"k": 10, "min_samples": 11}),
        ("hac", {"linkage": "complete"}),
        ("hac", {"threshold": "0.7"}),
        ("hac", {"linkage": "average", "threshold": 0.0}),
        ("kmeans", {}),
        ("kmeans", {"n_clusters": 0}),
        ("kmeans", {"n_clusters": 5, "batch_size": 0}),
        ("kmeans", {"n_clusters": 5.0}),
        ("kmeans", {"n_clusters": 101}),
        ("kmeans", {"n_clusters": 5, "init": "kmeans||"}),
    ],
)
def test_rejects_bad_params(blobs, name, params):
    x, _ = blobs
    with pytest.raises(ParameterError):
        METHODS[name](**params).fit(x)


def test_hac_default_is_fasthac_cut():
    # Euclidean 0.72 between unit vectors <=> cosine 1 - 0.72^2 / 2 = 0.7408
    assert FASTHAC_COSINE == pytest.approx(0.7408)
    assert METHODS["hac"]().threshold == pytest.approx(0.7408)


def test_hac_single_threshold_inclusive():
    # three points on a circle: cos(a, b) = 0.8, cos(b, c) = 0.6, cos(a, c) = -0.28
    ang = np.arccos([0.8, 0.6])
    x = np.array([[1, 0], [np.cos(ang[0]), np.sin(ang[0])],
                  [np.cos(ang[0] + ang[1]), np.sin(ang[0] + ang[1])]], dtype=np.float32)
    g = build_knn(x, k=2, index="numpy")
    sim_ab = float(x[0] @ x[1])
    assert METHODS["hac"](k=2, threshold=sim_ab).fit_predict(x, knn=g).tolist() == [0, 0, 1]
    assert METHODS["hac"](k=2, threshold=sim_ab + 1e-4).fit_predict(x, knn=g).tolist() == [0, 1, 2]


def test_average_linkage_hand_example():
    # 0-1 (0.9), 2-3 (0.8); between the pairs: 1-2 (0.7), 0-3 (0.3).
    src = np.array([0, 2, 1, 0])
    dst = np.array([1, 3, 2, 3])
    w = np.array([0.9, 0.8, 0.7, 0.3])
    # {0,1} vs {2,3}: observed mean (0.7 + 0.3) / 2 = 0.5; with zeros (0.7 + 0.3) / 4 = 0.25
    assert average_linkage(src, dst, w, 4, 0.5, unobserved="skip").tolist() == [0, 0, 0, 0]
    assert average_linkage(src, dst, w, 4, 0.51, unobserved="skip").tolist() == [0, 0, 1, 1]
    assert average_linkage(src, dst, w, 4, 0.25, unobserved="zero").tolist() == [0, 0, 0, 0]
    assert average_linkage(src, dst, w, 4, 0.26, unobserved="zero").tolist() == [0, 0, 1, 1]
    # single linkage at 0.7 would chain all four; average at 0.7 keeps two pairs
    assert average_linkage(src, dst, w, 4, 0.7).tolist() == [0, 0, 1, 1]
    # isolated node 4 stays a singleton
    assert average_linkage(src, dst, w, 5, 0.5).tolist() == [0, 0, 0, 0, 1]


def test_average_linkage_matches_brute_force():
    """Parallel mutual-best merging equals sequential greedy average linkage (random graphs)."""
    rng = np.random.default_rng(3)
    for trial in range(20):
        n = 12
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n) if rng.random() < 0.4]
        w = rng.uniform(0.05, 1.0, size=len(pairs))
        src = np.array([p[0] for p in pairs])
        dst = np.array([p[1] for p in pairs])
        for mode in ("skip", "zero"):
            th = 0.5
            got = average_linkage(src, dst, w, n, th, unobserved=mode)
            assert _same_partition(got, _greedy_average(pairs, w, n, th, mode)), (trial, mode)


def _greedy_average(pairs, w, n, th, mode):
    clusters = [{i} for i in range(n)]
    wmap = {p: x for p, x in zip(pairs, w, strict=True)}

    def score(a, b):
        tot = cnt = 0.0
        for i in a:
            for j in b:
                key = (min(i, j), max(i, j))
                if key in wmap:
                    tot += wmap[key]
                    cnt += 1
        if cnt == 0:
            return -1.0
        return tot / cnt if mode == "skip" else tot / (len(a) * len(b))

    while True:
        best, pair = -1.0, None
        for a in range(len(clusters)):
            for b in range(a + 1, len(clusters)):
                s = score(clusters[a], clusters[b])
                if s > best:
                    best, pair = s, (a, b)
        if pair is None or best < th:
            break
        a, b = pair
        clusters[a] |= clusters[b]
        del clusters[b]
    labels = np.empty(n, dtype=int)
    for c, members in enumerate(clusters):
        labels[list(members)] = c
    return labels


def test_symmetric_csr_max_and_no_self():
    m = symmetric_csr(np.array([0, 1, 2, 0]), np.array([1, 0, 2, 2]),
                      np.array([0.5, 0.7, 1.0, 0.2]), 3)
    dense = m.toarray()
    np.testing.assert_allclose(dense, [[0, 0.7, 0.2], [0.7, 0, 0], [0.2, 0, 0]])


def test_chinese_whispers_two_triangles_and_seed():
    # two triangles joined by one weak edge; an isolated node 6
    tri = [(0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (3, 5)]
    src = np.array([a for a, _ in tri] + [2])
    dst = np.array([b for _, b in tri] + [3])
    w = np.array([1.0] * 6 + [0.1])
    for seed in range(5):
        labels = chinese_whispers(src, dst, w, 7, iters=20, seed=seed)
        assert _same_partition(labels, np.array([0, 0, 0, 1, 1, 1, 2]))
    a = chinese_whispers(src, dst, w, 7, seed=1)
    b = chinese_whispers(src, dst, w, 7, seed=1)
    assert np.array_equal(a, b)


def test_chinese_whispers_labels_in_node_order():
    # interleaved clusters (even / odd nodes): the LTC bug would scramble these
    n = 10
    src, dst = [], []
    for parity in (0, 1):
        nodes = list(range(parity, n, 2))
        for i in nodes:
            for j in nodes:
                if i < j:
                    src.append(i)
                    dst.append(j)
    labels = chinese_whispers(np.array(src), np.array(dst), np.ones(len(src)), n)
    assert labels.tolist() == [0, 1] * 5


def test_chinese_whispers_threshold_cuts_weak_edges(blobs):
    x, y = blobs
    # with threshold 0.99 (above the blobs' within-cluster similarity ~0.97) all are singletons
    labels = METHODS["chinese-whispers"](k=20, threshold=0.999).fit_predict(x)
    assert len(np.unique(labels)) == 100


def test_dbscan_noise_and_directed_neighbourhoods():
    # points on a line of angles; 0-1-2 close (cos 0.995), 3 far from everything
    ang = np.array([0.0, 0.1, 0.2, 1.5])
    x = np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)
    g = build_knn(x, k=3, index="numpy")
    # min_samples=3: 1 is core (0, 2 within eps); 0 and 2 are border points; 3 is noise
    est = METHODS["dbscan"](k=3, eps=0.03, min_samples=3)
    labels = est.fit_predict(x, knn=g)
    assert labels.tolist() == [0, 0, 0, -1]
    # min_samples=1: no noise; 3 is its own cluster
    labels = METHODS["dbscan"](k=3, eps=0.03, min_samples=1).fit_predict(x, knn=g)
    assert labels.tolist() == [0, 0, 0, 1]
    # eps below every neighbour distance: every point is its own cluster (no -1 with min_samples=1)
    labels = METHODS["dbscan"](k=3, eps=1e-4, min_samples=1).fit_predict(x, knn=g)
    assert labels.tolist() == [0, 1, 2, 3]


def test_dbscan_noise_with_blobs(blobs):
    x, y = blobs
    outlier = unit_rows(np.random.default_rng(0).normal(size=(1, 32)))
    xx = np.vstack([x, outlier])
    labels = METHODS["dbscan"](k=20, min_samples=5).fit_predict(xx)
    assert labels[-1] == -1
    assert _same_partition(labels[:-1], y)


def test_kmeans_reproducible(blobs):
    x, _ = blobs
    a = METHODS["kmeans"](n_clusters=7, random_state=0).fit_predict(x)
    b = METHODS["kmeans"](n_clusters=7, random_state=0).fit_predict(x)
    assert np.array_equal(a, b)
    assert len(np.unique(a)) == 7


def test_methods_accept_shared_graph(blobs):
    x, y = blobs
    g = build_knn(x, k=30)
    for name in ("chinese-whispers", "dbscan", "hac"):
        labels = METHODS[name](k=20).fit_predict(x, knn=g)
        assert _same_partition(labels, y)
    with pytest.raises(ParameterError):
        METHODS["hac"](k=40).fit(x, knn=g)


# ------------------------------------------------------------- attach_by_majority
def _attach_case():
    """Cluster 0 = points 0..3, cluster 1 = points 4..5; points 6, 7, 8 alone (2-d unit rows)."""
    ang = np.array([0.0, 0.1, -0.1, 0.05, 2.0, 2.1, 0.6, 1.0, 3.0])
    x = np.stack([np.cos(ang), np.sin(ang)], axis=1).astype(np.float32)
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 3, 4])
    nbrs = np.array([
        [1, 2, 3, -1], [0, 2, 3, -1], [0, 1, 3, -1], [0, 1, 2, -1],
        [5, 7, -1, -1], [4, 7, -1, -1],
        [0, 1, 3, 7],    # 6: 3 of 4 neighbours in cluster 0
        [4, 5, 6, 0],    # 7: 2 of 4 in cluster 1 (no strict majority)
        [4, 5, -1, -1],  # 8: 2 of 2 valid neighbours in cluster 1, but far from it
    ])
    return x, labels, nbrs


def test_attach_by_majority_hand_example():
    x, labels, nbrs = _attach_case()
    mean6 = float(np.mean(x[:4] @ x[6]))  # cos(0.6 - a) averaged over cluster 0
    out = attach_by_majority(labels, nbrs, mean6 - 1e-6, x=x, share=0.75)
    assert out.tolist() == [0, 0, 0, 0, 1, 1, 0, 2, 3]  # only 6 joins; contiguous labels
    # a floor just above its mean cosine, or a stricter share, keeps it alone
    assert attach_by_majority(labels, nbrs, mean6 + 1e-6, x=x, share=0.75).tolist() == \
        [0, 0, 0, 0, 1, 1, 2, 3, 4]
    assert attach_by_majority(labels, nbrs, -1.0, x=x, share=0.8)[6] != 0
    # 8: both valid neighbours in cluster 1; joins once the floor allows its cosine
    mean8 = float(np.mean(x[4:6] @ x[8]))
    assert attach_by_majority(labels, nbrs, mean8 - 1e-6, x=x, share=1.0).tolist() == \
        [0, 0, 0, 0, 1, 1, 2, 3, 1]


def test_attach_by_majority_graph_only_uses_observed_mean():
    x, labels, nbrs = _attach_case()
    sims = np.where(nbrs >= 0, np.einsum("id,ijd->ij", x, x[np.maximum(nbrs, 0)]), -np.inf)
    obs6 = float(np.mean(sims[6, :3]))  # its three neighbours in cluster 0
    assert attach_by_majority(labels, nbrs, obs6 - 1e-6, nbr_sims=sims, share=0.75)[6] == 0
    assert attach_by_majority(labels, nbrs, obs6 + 1e-6, nbr_sims=sims, share=0.75)[6] != 0


def test_attach_by_majority_votes_before_moves_and_chunks():
    x, labels, nbrs = _attach_case()
    whole = attach_by_majority(labels, nbrs, -1.0, x=x, share=0.5)
    assert (attach_by_majority(labels, nbrs, -1.0, x=x, share=0.5, chunk=1) == whole).all()
    # 7's neighbour 6 is attached in the same call, but 7 still sees it as a singleton
    assert whole[6] == whole[0] and whole[7] not in (whole[0], whole[4])


def test_attach_by_majority_bad_input():
    x, labels, nbrs = _attach_case()
    with pytest.raises(InputError, match="nbr_ids"):
        attach_by_majority(labels, nbrs[:5], 0.0, x=x)
    with pytest.raises(InputError, match="nbr_sims"):
        attach_by_majority(labels, nbrs, 0.0)
    with pytest.raises(ParameterError, match="share"):
        attach_by_majority(labels, nbrs, 0.0, x=x, share=1.5)
