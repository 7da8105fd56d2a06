"""Tests for the label-free scale estimate (faceclust.adaptive) and method ``auto``."""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("FACECLUST_PROGRESS", "0")

from faceclust.adaptive import (  # noqa: E402
    ScaleEstimate,
    centred_graph_sims,
    decide_centring,
    estimate_scale,
    min_error_split,
)
from faceclust.errors import InputError, ParameterError  # noqa: E402
from faceclust.knn import build_knn  # noqa: E402
from faceclust.methods import METHODS, AutoClusterer  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402
from faceclust.synth import SynthConfig, make_faces  # noqa: E402


def blobs(n_ids=150, per=6, d=32, noise=0.35, offset=0.0, singletons=0, seed=0):
    """Unit-vector identities plus a shared offset along axis 0 (uncentred when offset > 0)."""
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((n_ids + singletons, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    y = np.concatenate([np.repeat(np.arange(n_ids), per), n_ids + np.arange(singletons)])
    x = c[y] + noise * rng.standard_normal((len(y), d)) / np.sqrt(d)
    x[:, 0] += offset
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def arc_dlib():
    """The same identities at an ArcFace-like and a dlib-like similarity scale."""
    xa, ya = make_faces(3000, 700, 128, seed=5)
    xd, yd = make_faces(3000, 700, 128, seed=5, config=SynthConfig(mean_inter_cos=0.83))
    return (xa, ya), (xd, yd)


def test_min_error_split_between_two_gaussians():
    rng = np.random.default_rng(0)
    vals = np.concatenate([rng.normal(0.3, 0.05, 8000), rng.normal(0.8, 0.05, 2000)])
    split, ok = min_error_split(vals)
    assert ok
    assert 0.45 < split < 0.65


def test_higher_scale_embedding_gets_higher_threshold(arc_dlib):
    (xa, _), (xd, _) = arc_dlib
    ea = estimate_scale(build_knn(xa, k=20))
    ed = estimate_scale(build_knn(xd, k=20))
    assert ea.bimodal and ed.bimodal
    assert ed.threshold > ea.threshold + 0.2
    for e in (ea, ed):
        assert e.impostor_mode < e.threshold < e.genuine_mode
        assert e.threshold == pytest.approx(
            e.impostor_mode + 0.3 * (e.genuine_mode - e.impostor_mode))


def test_auto_works_out_of_the_box_on_both_scales(arc_dlib):
    for x, y in arc_dlib:
        model = AutoClusterer().fit(x)
        r = evaluate(y, model.labels_)
        assert r["pairwise_f"] > 0.9 and r["bcubed_f"] > 0.9, r
        assert f"{model.threshold_:.4f}" in model.explain_
    # a fixed threshold tuned for one scale fails on the other: auto is needed
    (_, _), (xd, yd) = arc_dlib
    fixed = AutoClusterer(threshold=0.5).fit(xd)
    assert evaluate(yd, fixed.labels_)["bcubed_f"] < 0.5
    assert "fixed by the caller" in fixed.explain_


def test_alpha_moves_threshold_monotonically(arc_dlib):
    (xa, _), _ = arc_dlib
    g = build_knn(xa, k=20)
    thr = [estimate_scale(g, alpha=a).threshold for a in (0.0, 0.3, 0.6, 1.0)]
    assert thr == sorted(thr)
    assert thr[0] == pytest.approx(estimate_scale(g).impostor_mode)


def test_more_singletons_fewer_merges():
    few_x, few_y = blobs(n_ids=150, per=6, d=64, singletons=50, seed=1)
    many_x, many_y = blobs(n_ids=150, per=6, d=64, singletons=900, seed=1)
    res, thr = [], []
    for x, y in ((few_x, few_y), (many_x, many_y)):
        model = AutoClusterer().fit(x)
        labels = model.labels_
        thr.append(model.threshold_)
        true_single = np.bincount(y)[y] == 1
        pred_single = np.bincount(labels)[labels] == 1
        res.append((pred_single.mean(), pred_single[true_single].mean(), evaluate(y, labels)))
    # the impostor mode rises with the share of unmatched faces, so the threshold does too
    assert thr[1] > thr[0]
    # more predicted singletons where there are more true ones, and true ones stay alone
    assert res[1][0] > res[0][0] + 0.3
    assert res[0][1] > 0.9 and res[1][1] > 0.9
    assert res[1][2]["bcubed_f"] > 0.9


def test_centring_chosen_for_uncentred_not_for_centred():
    xc, _ = blobs(offset=0.0)
    xu, yu = blobs(offset=2.0)
    c0, m0, _, sep0 = decide_centring(xc, build_knn(xc, k=30))
    c1, m1, s_raw, s_cen = decide_centring(xu, build_knn(xu, k=30))
    assert not c0 and m0 < 0.1 and sep0 is None  # not even considered
    assert c1 and m1 > 0.5 and s_cen > s_raw
    model = AutoClusterer().fit(xu)
    assert model.estimate_.centre and "centring: yes" in model.explain_
    assert evaluate(yu, model.labels_)["bcubed_f"] > 0.95
    never = AutoClusterer(centre=False).fit(xu)
    assert not never.estimate_.centre


def test_centred_graph_sims_match_direct_computation():
    x, _ = blobs(n_ids=20, per=5, offset=1.5)
    g = build_knn(x, k=6)
    mean = x.mean(axis=0)
    xc = x - mean
    xc /= np.linalg.norm(xc, axis=1, keepdims=True)
    direct = np.einsum("ij,ikj->ik", xc, xc[g.ids])
    np.testing.assert_allclose(centred_graph_sims(g, x, mean), direct, atol=1e-5)


def test_graph_only_fit_and_registration(arc_dlib):
    (xa, ya), _ = arc_dlib
    g = build_knn(xa, k=20)
    model = AutoClusterer().fit(None, knn=g)
    assert evaluate(ya, model.labels_)["bcubed_f"] > 0.85
    assert "not evaluated" in model.explain_
    assert METHODS["auto"] is AutoClusterer
    with_x = AutoClusterer().fit(xa, knn=g)
    assert with_x.threshold_ == pytest.approx(model.threshold_)


def test_estimate_uses_a_row_sample(arc_dlib):
    (xa, _), _ = arc_dlib
    g = build_knn(xa, k=20)
    full = estimate_scale(g)
    part = estimate_scale(g, sample=1000)
    assert part.n_rows == 1000 and full.n_rows == g.n
    assert abs(part.threshold - full.threshold) < 0.05


def test_explain_mentions_choices():
    est = ScaleEstimate(threshold=0.44, k=10, k_est=20, impostor_mode=0.3, genuine_mode=0.75,
                        split=0.45, impostor_frac=0.7, separation=5.0, alpha=0.3, n_rows=100,
                        mean_norm2=0.01)
    text = est.explain()
    assert "0.4400" in text and "already centred" in text and "no labels" in text


@pytest.mark.parametrize(
    "kwargs",
    [{"k": 1}, {"alpha": 1.5}, {"threshold": 2.0}, {"centre": "yes"}, {"sample": 5},
     {"attach": -0.1}, {"attach": "yes"}, {"attach_share": 0.5}, {"attach_share": 1.2}],
)
def test_bad_parameters(kwargs):
    x, _ = blobs(n_ids=10, per=4)
    with pytest.raises(ParameterError):
        AutoClusterer(**kwargs).fit(x)


def test_tiny_inputs():
    x, _ = blobs(n_ids=1, per=2)
    assert AutoClusterer().fit(x).labels_.tolist() == [0, 1]
    with pytest.raises(ParameterError):
        estimate_scale(build_knn(blobs(n_ids=20, per=3)[0], k=5), alpha=-0.1)
    # N < 5: no scale can be estimated; everyone alone, said in explain_ (no error)
    tiny = AutoClusterer().fit(blobs(n_ids=1, per=3)[0])
    assert tiny.labels_.tolist() == [0, 1, 2] and "too few" in tiny.explain_
    # ... unless the caller gives a threshold: then it is applied
    x3 = blobs(n_ids=1, per=3)[0]
    fixed = AutoClusterer(threshold=float((x3 @ x3.T).min()) - 1e-3).fit(x3)
    assert fixed.labels_.tolist() == [0, 0, 0]
    with pytest.raises(InputError):  # the estimate itself still refuses too few similarities
        estimate_scale(build_knn(blobs(n_ids=1, per=3)[0], k=2))


def test_big_identities_use_deeper_neighbours():
    # ~75 photos per person: a 20-NN list holds almost no different-people pairs
    x, y = make_faces(3000, 40, 64, seed=3)
    shallow = estimate_scale(build_knn(x, k=20))
    model = AutoClusterer().fit(x)
    assert not shallow.bimodal
    assert model.estimate_.bimodal and "sampled points" in model.explain_
    assert model.threshold_ < shallow.threshold
    assert evaluate(y, model.labels_)["bcubed_f"] > 0.9


def test_attach_recovers_poor_photos_of_big_identities():
    # ~67 photos per person: the noisiest photos fall below the merge threshold, but
    # nearly all their neighbours are their own person's photos
    x, y = make_faces(2000, 30, 64, seed=2)
    on = AutoClusterer().fit(x)
    off = AutoClusterer(attach=None).fit(x)
    r_on, r_off = evaluate(y, on.labels_), evaluate(y, off.labels_)
    alone_on = (np.bincount(on.labels_) == 1).sum()
    alone_off = (np.bincount(off.labels_) == 1).sum()
    assert alone_on < alone_off
    assert r_on["bcubed_recall"] > r_off["bcubed_recall"] + 0.003
    assert r_on["bcubed_precision"] >= r_off["bcubed_precision"] - 1e-9
    est = on.estimate_
    assert est.impostor_mode < est.attach_threshold < est.threshold
    assert "nearest neighbours" in on.explain_ and off.estimate_.attach_threshold is None
    # every attached face went to the cluster its unattached run left it beside
    moved = np.bincount(off.labels_)[off.labels_] == 1
    moved &= np.bincount(on.labels_)[on.labels_] > 1
    assert moved.sum() == alone_off - alone_on


def test_attach_keeps_strangers_alone():
    # 60 % of the people are photographed once: they must stay singletons
    x, y = make_faces(3000, 1500, 64, seed=3, config=SynthConfig(singleton_frac=0.6))
    on = AutoClusterer().fit(x).labels_
    off = AutoClusterer(attach=None).fit(x).labels_
    stranger = np.bincount(y)[y] == 1
    alone_on = (np.bincount(on)[on] == 1)[stranger].mean()
    alone_off = (np.bincount(off)[off] == 1)[stranger].mean()
    assert alone_on >= alone_off - 0.01
    assert evaluate(y, on)["bcubed_f"] >= evaluate(y, off)["bcubed_f"] - 0.002
