"""gcn-d / gcn-ds / lgcn estimators: parameters, GCN-S cleaning of proposals, missing models."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import ParameterError
from faceclust.methods import make_method
from faceclust.methods._dsgcn import _clean
from faceclust.stages.proposals import Proposals, deoverlap

from .conftest import unit_rows


def test_clean_keeps_rank_and_appends_outliers_last():
    props = Proposals(np.array([0, 3, 5]), np.array([0, 1, 2, 2, 3]))
    scores = np.array([0.9, 0.5], np.float32)
    sub = props.select(np.array([0]))
    keep = np.array([True, False, True])  # member 1 of proposal 0 is an outlier
    cleaned, s = _clean(props, scores, np.array([0]), sub, keep, keep_outliers=False)
    assert [cleaned.members(i).tolist() for i in range(len(cleaned))] == [[0, 2], [2, 3]]
    assert s.tolist() == pytest.approx([0.9, 0.5])
    labels = deoverlap(cleaned, s, 4)
    assert labels[0] == labels[2] and len(np.unique(labels)) == 3  # {0,2}, {3}, {1}
    witho, s2 = _clean(props, scores, np.array([0]), sub, keep, keep_outliers=True)
    assert [witho.members(i).tolist() for i in range(len(witho))] == [[0, 2], [2, 3], [1]]
    assert s2[-1] < s2.min(initial=1.0) + 1e-6 and s2[-1] < 0.5


@pytest.mark.parametrize("method", ["gcn-d", "gcn-ds", "lgcn"])
def test_needs_a_model_directory(method):
    x = unit_rows(np.random.default_rng(0).normal(size=(20, 8)))
    with pytest.raises(ParameterError, match=f"train --method {method}"):
        make_method(method).fit(x)


def test_parameter_checks():
    x = unit_rows(np.random.default_rng(0).normal(size=(20, 8)))
    with pytest.raises(ParameterError, match="preset"):
        make_method("gcn-d", {"preset": "3", "model": "x"}).fit(x)
    with pytest.raises(ParameterError, match="iop_range"):
        make_method("gcn-ds", {"iop_range": (0.9, 0.1), "model": "x"}).fit(x)
    with pytest.raises(ParameterError, match="step"):
        make_method("lgcn", {"step": 0.0, "model": "x"}).fit(x)
    with pytest.raises(ParameterError, match="preset"):
        from faceclust.methods import get_method

        get_method("gcn-d").train(x, np.arange(20) % 4, "/nonexistent/m", preset="7")


def test_gcn_ds_model_serves_gcn_d_and_records_the_gcn_s_check(tmp_path):
    torch = pytest.importorskip("torch")
    from faceclust.methods import get_method
    from faceclust.nn.dsgcn import load_dsgcn

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rng = np.random.default_rng(3)
        c = unit_rows(rng.normal(size=(10, 16)))
        y = np.repeat(np.arange(10), 12)
        x = unit_rows(c[y] + 0.12 * rng.normal(size=(len(y), 16)))
        small = {"k": 10, "preset": "2", "dims": [16, 8], "steps": 30, "batch_size": 8,
                 "s_steps": 20, "s_batch_size": 4}
        get_method("gcn-ds").train(x[:72], y[:72], tmp_path, **small)
        _, smeta = load_dsgcn(tmp_path, "gcn_s")
        check = smeta["check"]
        assert check is None or set(check) >= {"node_accuracy", "keep_all_accuracy", "gain"}
        assert smeta["segment"] == (check is None or check["gain"] > 0)
        d = get_method("gcn-d")(model=str(tmp_path)).fit_predict(x[72:])
        ds = get_method("gcn-ds")(model=str(tmp_path), segment=False)
        assert np.array_equal(ds.fit_predict(x[72:]), d) and ds.n_segmented_ == 0
        forced = get_method("gcn-ds")(model=str(tmp_path), segment=True).fit(x[72:])
        assert forced.segmented_ and len(forced.labels_) == 48
    finally:
        torch.set_num_threads(old)
