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
        rng = np.random.default_rng(3)  # 12 people in 6 look-alike pairs: impure proposals
        base = unit_rows(rng.normal(size=(6, 16)))
        c = unit_rows(np.repeat(base, 2, axis=0) + 0.15 * rng.normal(size=(12, 16)))
        y = np.repeat(np.arange(12), 10)
        x = unit_rows(c[y] + 0.12 * rng.normal(size=(len(y), 16)))
        small = {"k": 10, "preset": "2", "dims": [16, 8], "steps": 30, "batch_size": 8,
                 "s_steps": 20, "s_batch_size": 4}
        get_method("gcn-ds").train(x[:80], y[:80], tmp_path, **small)
        _, smeta = load_dsgcn(tmp_path, "gcn_s")
        check = smeta["check"]
        assert check is not None  # 10 identities: the check runs end to end
        assert check["gain"] == pytest.approx(
            check["pairwise_f_segmented"] - check["pairwise_f_unsegmented"], abs=2e-4)
        assert 0.0 <= check["pairwise_f_unsegmented"] <= 1.0
        assert check["segmented_proposals"] <= check["val_proposals"]
        assert smeta["segment"] == (check["gain"] > 0)
        d = get_method("gcn-d")(model=str(tmp_path)).fit_predict(x[80:])
        ds = get_method("gcn-ds")(model=str(tmp_path), segment=False)
        assert np.array_equal(ds.fit_predict(x[80:]), d) and ds.n_segmented_ == 0
        forced = get_method("gcn-ds")(model=str(tmp_path), segment=True).fit(x[80:])
        assert forced.segmented_ and len(forced.labels_) == 40
    finally:
        torch.set_num_threads(old)


def test_segment_cleans_only_the_proposals_of_predicted_iop_in_range():
    torch = pytest.importorskip("torch")
    from faceclust.knn import build_knn
    from faceclust.methods._dsgcn import _segment
    from faceclust.nn.dsgcn import DSGCN

    x = unit_rows(np.random.default_rng(1).normal(size=(6, 4)))
    graph = build_knn(x, k=5)
    props = Proposals(np.array([0, 3, 6, 8]), np.array([0, 1, 2, 3, 4, 5, 0, 3]))
    scores = np.array([0.9, 0.8, 0.7], np.float32)
    iop = np.array([0.95, 0.5, 0.05], np.float32)  # only proposal 1 lies in (0.1, 0.9)
    seg = DSGCN(5, [2], kind="seg", dropout=0.0)
    with torch.no_grad():
        seg.head.weight.zero_()
        for bias, kept in (([0.0, 10.0], 3), ([0.0, -10.0], 1)):  # keep all / drop all
            seg.head.bias.copy_(torch.tensor(bias))
            out, s, which, sub, seeds, keep = _segment(
                props, scores, iop, seg, x, graph, True, (0.1, 0.9), "random",
                np.random.default_rng(0), 1024, False)
            assert which.tolist() == [1] and sub.members(0).tolist() == [3, 4, 5]
            assert keep.sum() == kept and keep[seeds[0]]  # the seed is always kept
            assert out.members(0).tolist() == [0, 1, 2] and out.members(2).tolist() == [0, 3]
            assert out.members(1).tolist() == sub.nodes[keep].tolist()
            assert s.tolist() == pytest.approx(scores.tolist())
    none = _segment(props, scores, np.ones(3, np.float32), seg, x, graph, True, (0.1, 0.9),
                    "random", np.random.default_rng(0), 1024, False)
    assert len(none[2]) == 0 and none[0] is props


def test_lgcn_balanced_link_loss_is_the_mean_of_the_class_means():
    torch = pytest.importorskip("torch")
    from faceclust.nn.lgcn import link_loss

    logits = torch.tensor([[0.2, 1.0], [1.5, -0.5], [0.0, 2.0], [0.3, 0.1], [1.0, 1.0]])
    tgt = np.array([1, 0, 1, 1, 1])
    per = torch.nn.functional.cross_entropy(logits, torch.from_numpy(tgt), reduction="none")
    plain, bal = link_loss(logits, tgt), link_loss(logits, tgt, balanced=True)
    assert float(plain) == pytest.approx(float(per.mean()), rel=1e-6)
    want = 0.5 * (float(per[tgt == 1].mean()) + float(per[tgt == 0].mean()))
    assert float(bal) == pytest.approx(want, rel=1e-6)
    # one class absent: the mean over the present one
    assert float(link_loss(logits[[0, 2]], tgt[[0, 2]], balanced=True)) == pytest.approx(
        float(per[[0, 2]].mean()), rel=1e-6)
