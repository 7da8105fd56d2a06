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


def _blobs(per: int, seed: int) -> np.ndarray:
    """Four tight blobs of ``per`` unit rows each (16-d), blob by blob."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((4, 16))
    x = np.repeat(centres, per, axis=0) + 0.05 * rng.standard_normal((4 * per, 16))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


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
    x = _blobs(6, seed=0)
    gt = np.repeat(np.arange(4), 6)
    est = get_method("fc-es")(k=10, max_links=5).fit(x)
    assert est.n_links_ == 24 * 5  # each point links its 5 blob mates, nothing more
    lab = est.labels_
    # every blob is one cluster and the blobs are not merged
    assert all(len(set(lab[gt == c])) == 1 for c in range(4))
    assert len(set(lab)) == 4
    assert est.get_params()["max_links"] == 5


def test_early_stop_counts_match_the_edges():
    from faceclust.stages.select import early_stop_counts

    ids, sc = _table()
    assert early_stop_counts(ids, sc, 0.3).tolist() == [3, 1, 3, 0]


def test_infomap_link_cap_is_the_largest_cap_that_fits():
    from faceclust.stages.partition import LINK_BYTES, infomap_link_cap

    counts = np.array([10, 5, 1])  # 16 links uncapped
    assert infomap_link_cap(counts, 16 * LINK_BYTES) is None
    # cap 6 keeps 6 + 5 + 1 = 12 links, cap 7 would keep 13
    assert infomap_link_cap(counts, 12 * LINK_BYTES) == 6
    assert infomap_link_cap(counts, 12.9 * LINK_BYTES) == 6
    assert infomap_link_cap(counts, 13 * LINK_BYTES) == 7
    assert infomap_link_cap(counts, 2 * LINK_BYTES) == 1  # never below one link
    assert infomap_link_cap(np.zeros(0, int), 0) is None


def test_fces_caps_links_when_infomap_would_not_fit(monkeypatch):
    """Without max_links, FC-ES is the published method unless memory is short: then the
    largest cap that fits is used, with a warning, and equals asking for that cap."""
    import faceclust.methods._fces as fces_mod
    from faceclust.errors import FaceclustWarning
    from faceclust.stages.partition import LINK_BYTES

    x = _blobs(8, seed=0)
    plenty = get_method("fc-es")(k=12).fit(x)
    assert plenty.max_links_ is None and plenty.n_links_ > 32 * 5  # more than 5 links a face

    # room for 4 links per face once the graph and scores are freed (a share kept spare)
    graph_bytes = 32 * 12 * (4 + 4 + 4)  # int32 ids, float32 sims, float32 NEP scores
    share = fces_mod._MEMORY_SHARE
    monkeypatch.setattr(fces_mod, "available_memory",
                        lambda: int((32 * 4 * LINK_BYTES + 1) / share) - graph_bytes)
    with pytest.warns(FaceclustWarning, match="max_links=4"):
        short = get_method("fc-es")(k=12).fit(x)
    assert short.max_links_ == 4 and short.n_links_ == 32 * 4
    capped = get_method("fc-es")(k=12, max_links=4).fit(x)
    np.testing.assert_array_equal(short.labels_, capped.labels_)
    assert capped.max_links_ == 4


def test_cli_reports_the_memory_cap_as_one_warning_line(monkeypatch, tmp_path):
    from click.testing import CliRunner

    import faceclust.methods._fces as fces_mod
    from faceclust.cli import main
    from faceclust.io import read_labels

    np.save(tmp_path / "x.npy", _blobs(8, seed=1).astype(np.float32))
    monkeypatch.setattr(fces_mod, "available_memory", lambda: 0)
    r = CliRunner().invoke(main, ["cluster", str(tmp_path / "x.npy"), "--method", "fc-es",
                                  "--set", "k=12", "--out", str(tmp_path / "l.meta")])
    assert r.exit_code == 0, r.output
    lines = [ln for ln in r.output.splitlines() if "warning" in ln.lower()]
    assert len(lines) == 1 and lines[0].startswith("faceclust: warning: fc-es: Infomap would need")
    assert "(max_links=1)" in lines[0]  # no memory at all: one link a face
    assert len(read_labels(tmp_path / "l.meta")) == 32
