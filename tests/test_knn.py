"""kNN graph: invariants, exact builders against brute force, approximate recall, caching."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.knn import KnnGraph, build_knn, knn_recall, locality_order, restore_order

from .conftest import unit_rows


def brute_force(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    s = x @ x.T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


@pytest.fixture
def feats() -> np.ndarray:
    return unit_rows(np.random.default_rng(0).normal(size=(300, 16)))


@pytest.mark.parametrize("index", ["numpy", "flat"])
def test_exact_builders_match_brute_force(feats, index):
    g = build_knn(feats, k=10, index=index)
    ids, sims = brute_force(feats, 10)
    assert g.ids.dtype == np.int32 and g.sims.dtype == np.float32
    np.testing.assert_array_equal(g.ids, ids)
    np.testing.assert_allclose(g.sims, sims, atol=1e-5)
    assert (g.ids[:, 0] == np.arange(300)).all()
    assert (np.diff(g.sims[:, 1:], axis=1) <= 1e-7).all()


def test_self_first_with_duplicates():
    base = unit_rows(np.random.default_rng(1).normal(size=(20, 8)))
    x = np.concatenate([base, base[:5], base[:5]])  # rows 0..4 appear three times
    g = build_knn(x, k=4, index="numpy")
    assert (g.ids[:, 0] == np.arange(len(x))).all()
    # row 20 is a copy of row 0: its other copies (0 and 25) follow, ties by ascending id
    assert g.ids[20, 1:3].tolist() == [0, 25]
    np.testing.assert_allclose(g.sims[20, :3], 1.0, atol=1e-6)


def test_from_search_inserts_missing_self_and_sorts():
    ids = np.array([[2, 1, -1], [0, 1, 2], [1, 2, 0]])
    sims = np.array([[0.9, 0.5, 0.0], [0.8, 1.0, 0.1], [0.3, 1.0, 0.3]], dtype=np.float32)
    g = KnnGraph.from_search(ids, sims)
    # row 0: self absent -> inserted first with sim 1, the rest sorted, last column dropped
    assert g.ids[0].tolist() == [0, 2, 1]
    np.testing.assert_allclose(g.sims[0], [1.0, 0.9, 0.5])
    # row 1: self moved to front, others by descending sim
    assert g.ids[1].tolist() == [1, 0, 2]
    # row 2: tie 0.3 between ids 1 and 0 -> ascending id
    assert g.ids[2].tolist() == [2, 0, 1]
    assert g.valid.all()


def test_missing_neighbours_are_masked():
    ids = np.array([[0, 1, -1], [1, 0, -1]])
    sims = np.array([[1.0, 0.5, 0.7], [1.0, 0.5, 0.0]], dtype=np.float32)
    g = KnnGraph.from_search(ids, sims)
    assert g.ids[:, 2].tolist() == [-1, -1]
    assert np.isneginf(g.sims[:, 2]).all()
    src, dst, w = g.edges()
    assert src.tolist() == [0, 1] and dst.tolist() == [1, 0]
    np.testing.assert_allclose(w, [0.5, 0.5])


def test_edges_and_csr_threshold_inclusive():
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    sims = np.array([[1, 0.7, 0.2], [1, 0.7, 0.6], [1, 0.6, 0.2]], dtype=np.float32)
    g = KnnGraph(ids, sims)
    src, dst, _ = g.edges(min_sim=0.6)
    assert sorted(zip(src.tolist(), dst.tolist(), strict=True)) == [(0, 1), (1, 0), (1, 2), (2, 1)]
    a = g.to_csr()
    assert a.shape == (3, 3) and a.nnz == 6 and a[0, 1] == pytest.approx(0.7)


def test_graph_validation_errors():
    with pytest.raises(InputError, match="column 0"):
        KnnGraph(np.array([[1, 0], [0, 1]]), np.ones((2, 2), np.float32))
    with pytest.raises(InputError, match=r"range"):
        KnnGraph(np.array([[0, 5], [1, 0]]), np.ones((2, 2), np.float32))
    with pytest.raises(InputError, match="one shape"):
        KnnGraph(np.zeros((2, 2), int), np.ones((2, 3), np.float32))


def test_build_rejects_bad_input(feats):
    with pytest.raises(ParameterError, match="smaller than the number of samples"):
        build_knn(feats[:5], k=5)
    with pytest.raises(ParameterError, match="integer"):
        build_knn(feats, k=2.5)
    bad = feats.copy()
    bad[3, 0] = np.nan
    with pytest.raises(InputError, match=r"NaN.*first rows: 3"):
        build_knn(bad, k=3)
    bad = feats.copy()
    bad[7] = 0
    with pytest.raises(InputError, match=r"zero norm.*7"):
        build_knn(bad, k=3)
    with pytest.raises(InputError, match="2-D"):
        build_knn(feats[0], k=3)
    with pytest.raises(ParameterError, match="index must be"):
        build_knn(feats, k=3, index="annoy")


def test_unnormalised_input_is_normalised_not_modified(feats):
    x = feats * 3.0
    before = x.copy()
    g = build_knn(x, k=5, index="numpy")
    np.testing.assert_array_equal(x, before)
    np.testing.assert_allclose(g.sims[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("index,params", [("ivf", {"nlist": 8, "nprobe": 8}), ("hnsw", {})])
def test_approximate_indexes_report_recall(index, params):
    rng = np.random.default_rng(3)
    centres = unit_rows(rng.normal(size=(40, 32)))
    x = unit_rows(centres[rng.integers(0, 40, 2000)] + 0.3 * rng.normal(size=(2000, 32)))
    g = build_knn(x, k=10, index=index, **params)
    assert (g.ids[:, 0] == np.arange(2000)).all()
    r = knn_recall(g, x, sample=300)
    assert 0.9 <= r <= 1.0
    # probing a single IVF cell must lose recall: the check is informative, not constant
    if index == "ivf":
        low = knn_recall(build_knn(x, k=10, index="ivf", nlist=64, nprobe=1), x, sample=300)
        assert low < r


def test_exact_recall_is_one(feats):
    assert knn_recall(build_knn(feats, k=8), feats, sample=100) == pytest.approx(1.0)


def test_cache_round_trip(tmp_path, feats):
    g1 = build_knn(feats, k=6, cache_dir=tmp_path)
    files = list(tmp_path.glob("knn-*.npz"))
    assert len(files) == 1
    g2 = build_knn(feats, k=6, cache_dir=tmp_path)
    assert "cached" in g2.meta
    np.testing.assert_array_equal(g1.ids, g2.ids)
    build_knn(feats, k=7, cache_dir=tmp_path)  # other parameters -> another entry
    build_knn(feats[::-1].copy(), k=6, cache_dir=tmp_path)  # other content -> another entry
    assert len(list(tmp_path.glob("knn-*.npz"))) == 3


def test_truncate(feats):
    g = build_knn(feats, k=8)
    t = g.truncate(3)
    np.testing.assert_array_equal(t.ids, g.ids[:, :3])
    with pytest.raises(ParameterError):
        g.truncate(9)


def test_locality_order_is_a_permutation_and_permute_round_trips():
    x = unit_rows(np.random.default_rng(3).normal(size=(300, 16)))
    graph = build_knn(x, k=8, index="numpy")
    order = locality_order(graph, m=4)
    assert np.array_equal(np.sort(order), np.arange(300))
    moved = graph.permute(order)
    # point order[j] is now j: its neighbours, mapped back, are the same set with the same sims
    for j in (0, 17, 299):
        i = order[j]
        back = {int(order[u]): float(s) for u, s in zip(moved.ids[j], moved.sims[j], strict=True)}
        assert back == {int(u): float(s) for u, s in zip(graph.ids[i], graph.sims[i], strict=True)}
        assert moved.ids[j, 0] == j
    labels = np.arange(300) % 7
    assert np.array_equal(restore_order(labels[order], order), labels)


def test_locality_order_puts_neighbours_close():
    # two far-apart groups interleaved in the input: the order puts each group in one run
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=16), rng.normal(size=16)
    x = np.stack([(a if i % 2 else b) + 0.05 * rng.normal(size=16) for i in range(200)])
    graph = build_knn(unit_rows(x), k=6, index="numpy")
    order = locality_order(graph)
    group = order % 2
    assert np.count_nonzero(np.diff(group)) == 1


def test_permute_rejects_a_non_permutation():
    graph = build_knn(unit_rows(np.random.default_rng(1).normal(size=(20, 4))), k=3)
    with pytest.raises(InputError, match="permutation"):
        graph.permute(np.zeros(20, dtype=np.int64))


def test_ivf_blas_probing_every_cell_is_exact():
    x = unit_rows(np.random.default_rng(5).normal(size=(2000, 16)))
    exact = build_knn(x, k=12, index="flat")
    joined = build_knn(x, k=12, index="ivf-blas", nlist=20, nprobe=20)
    assert joined.meta["nlist"] == 20 and joined.meta["nprobe"] == 20
    np.testing.assert_allclose(joined.sims, exact.sims, atol=1e-5)
    # faiss and numpy's BLAS may round a product differently in the last bit, which
    # can swap two neighbours tied at the k-th place; every other row is identical
    differ = np.flatnonzero((joined.ids != exact.ids).any(axis=1))
    assert len(differ) <= 2
    for r in differ:
        assert abs(joined.sims[r, -1] - exact.sims[r, -1]) < 1e-6
        assert np.array_equal(joined.ids[r, :-1], exact.ids[r, :-1])


def test_ivf_blas_recall_with_few_probes():
    from faceclust.synth import make_faces

    x, _ = make_faces(6000, 120, 64, seed=1)
    graph = build_knn(x, k=20, index="ivf-blas", nlist=64, nprobe=8)
    assert graph.ids.shape == (6000, 20)
    assert np.array_equal(graph.ids[:, 0], np.arange(6000))
    assert knn_recall(graph, x, sample=300) > 0.95


@pytest.mark.parametrize("n", [2, 5, 45])
def test_ivf_blas_tiny_inputs_are_exact_and_report_steps(n):
    x = unit_rows(np.random.default_rng(n).normal(size=(n, 8)))
    graph = build_knn(x, k=min(3, n - 1), index="ivf-blas")
    assert np.array_equal(graph.ids, build_knn(x, k=min(3, n - 1), index="numpy").ids)
    assert set(graph.meta["steps"]) == {"train", "assign", "group", "join", "sort", "refine"}


def test_ivf_blas_default_probes_depend_on_k():
    from faceclust.knn import ivf_blas_cells, ivf_blas_refine

    # k = 80 (fc-es): at least 16 probes; k <= 32 (the default method's 20): fewer, refined
    assert ivf_blas_cells(584013, k=80) == (4096, 16)
    assert ivf_blas_cells(5206761, k=80) == (8192, 16)
    assert ivf_blas_cells(120000, k=80) == (2048, 16)
    assert ivf_blas_cells(5206761, k=20) == (8192, 4)
    assert ivf_blas_cells(584013, k=20) == (4096, 2)
    assert ivf_blas_cells(584013, k=32) == (4096, 2) and ivf_blas_cells(584013, k=33) == (4096, 16)
    assert ivf_blas_cells(584013, nprobe=7, k=20) == (4096, 7)  # a given value wins
    assert (ivf_blas_refine(20), ivf_blas_refine(80), ivf_blas_refine(20, 0)) == (2, 0, 0)
    with pytest.raises(ParameterError, match="refine"):
        ivf_blas_refine(20, -1)


def test_exact_rows_topk_matches_search_topk():
    from faceclust.knn import exact_rows_topk, search_topk

    x = unit_rows(np.random.default_rng(9).normal(size=(3000, 24)))
    rows = np.array([0, 17, 999, 2999])
    _, ids = search_topk(x, x[rows], 15)
    got = exact_rows_topk(x, rows, 15, block=700)  # several database blocks
    assert np.array_equal(got[:, 0], rows)  # self first
    np.testing.assert_array_equal(got, ids)


def test_heap_keeps_one_entry_per_point_with_its_best_score_in_any_order():
    """A pair offered twice (a refinement pass, or partial lists merged) stays one neighbour."""
    from faceclust.knn import merge_partial_topk

    offers = [(4, 0.5), (2, 0.9), (4, 0.7), (6, 0.6), (2, 0.8), (8, 0.1)]
    for perm in ([0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [2, 0, 4, 1, 5, 3]):
        ts = np.full((1, 3), -np.inf, np.float32)
        ti = np.full((1, 3), -1, np.int32)
        cols = np.array([offers[p][0] for p in perm])
        sims = np.array([[offers[p][1] for p in perm]], np.float32)
        merge_partial_topk(ts, ti, np.array([0]), sims, cols[None, :])
        got = sorted(zip(ti[0].tolist(), ts[0].tolist(), strict=True))
        assert got == [(2, pytest.approx(0.9)), (4, pytest.approx(0.7)), (6, pytest.approx(0.6))]


def _ivf_pieces(x, nlist, nprobe):
    from faceclust.knn import ivf_assign, ivf_train

    probe = ivf_assign(x, ivf_train(x, nlist, 0), nprobe)
    return probe, probe[:, 0]


def test_ivf_blas_both_ways_compares_a_pair_when_either_probes_the_other():
    """With ``both_ways`` the join is exact top-k over pairs (p, q) where q's cell is one of
    p's probes or p's cell one of q's; one way, only the first (IVF-Flat's rule)."""
    from faceclust.knn import _sort_rows_desc, ivf_group, ivf_join_cells, new_topk

    x = unit_rows(np.random.default_rng(3).normal(size=(600, 8)))
    probe, own = _ivf_pieces(x, 12, 3)
    s = x @ x.T
    probes_q = (own[None, :, None] == probe[:, None, :]).any(axis=2)  # q's cell in p's probes
    for both, k in ((False, 7), (True, 7), (True, 90)):  # 90: most allowed pairs are kept
        allowed = probes_q | probes_q.T if both else probes_q
        top_s, top_i = new_topk(600, k, 600)
        ivf_join_cells(x, ivf_group(probe, 12), range(12), top_s, top_i, both_ways=both)
        _sort_rows_desc(top_s, top_i)
        want = np.sort(np.where(allowed, s, -np.inf), axis=1)[:, ::-1][:, :k]
        np.testing.assert_allclose(top_s, want, atol=1e-5)
        assert all(len(set(r) - {-1}) == (r != -1).sum() for r in top_i)  # no point twice
    assert (probes_q | probes_q.T).sum() > probes_q.sum()  # the test exercises both rules


def test_refine_pass_scores_neighbours_of_neighbours():
    """One pass: each point's list is the exact top-k over its list and its first m
    neighbours' first m neighbours."""
    from faceclust.knn import refine_knn

    rng = np.random.default_rng(4)
    x = unit_rows(rng.normal(size=(400, 6)))
    s = x @ x.T
    k, m = 6, 4
    ids = np.stack([np.concatenate([[i], rng.choice(np.delete(np.arange(400), i), k - 1,
                                                     replace=False)]) for i in range(400)])
    sims = np.take_along_axis(s, ids, axis=1).astype(np.float32)
    o = np.argsort(-sims, axis=1, kind="stable")
    ids, sims = np.take_along_axis(ids, o, axis=1), np.take_along_axis(sims, o, axis=1)
    want = []
    for i in range(400):
        cand = set(ids[i].tolist()) | {int(c) for j in ids[i, :m] for c in ids[j, :m]}
        c = np.array(sorted(cand))
        want.append(np.sort(s[i, c])[::-1][:k])
    top_s, top_i = sims.copy(), ids.astype(np.int32)
    refine_knn(x, top_s, top_i, passes=1, m=m)
    np.testing.assert_allclose(top_s, np.array(want), atol=1e-5)
    assert np.array_equal(top_i[:, 0], np.arange(400))
    assert (top_s.sum(axis=1) >= sims.sum(axis=1) - 1e-5).all()
    assert all(len(set(r)) == k for r in top_i.tolist())
