"""Tests for the ``incremental`` method: partial_fit / predict / refine / constraints."""

from __future__ import annotations

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.methods import METHODS
from faceclust.methods._incremental import IncrementalClusterer
from faceclust.metrics import pairwise


def _blobs(n_ids=20, per=8, d=32, noise=0.25, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(n_ids, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_ids), per)
    x = c[y] + noise * rng.normal(size=(len(y), d)) / np.sqrt(d)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    perm = rng.permutation(len(y))
    return x[perm].astype(np.float32), y[perm]


def test_registered_and_partial_fit_matches_full_auto():
    assert METHODS["incremental"] is IncrementalClusterer
    x, y = _blobs()
    full = METHODS["auto"]().fit(x)
    inc = IncrementalClusterer().fit(x[:60])
    for s in range(60, len(x), 25):
        inc.partial_fit(x[s : s + 25])
    inc.refine()
    assert inc.labels_.shape == (len(x),)
    f_full = pairwise(y, full.labels_)[2]
    f_inc = pairwise(y, inc.labels_)[2]
    assert f_full > 0.9
    assert f_inc >= f_full - 0.01
    assert len(inc.batch_seconds_) == len(range(60, len(x), 25))


def test_old_labels_never_change_in_partial_fit():
    x, y = _blobs(seed=1)
    inc = IncrementalClusterer().fit(x[:80])
    before = inc.labels_.copy()
    inc.partial_fit(x[80:])
    np.testing.assert_array_equal(inc.labels_[:80], before)
    assert inc.touched_  # new faces touched some clusters


def test_partial_fit_first_call_is_fit():
    x, _ = _blobs(seed=2)
    a = IncrementalClusterer().partial_fit(x)
    b = METHODS["auto"]().fit(x)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_predict_joins_opens_and_marks_strangers():
    x, y = _blobs(n_ids=10, per=8, seed=3)
    known = y < 8
    inc = IncrementalClusterer(threshold=0.5).fit(x[known])
    # a known face's near-duplicate joins that face's cluster
    probe = x[known][:1] * 0.999 + 0.001
    assert inc.predict(probe)[0] == inc.labels_[0]
    # two new people: each group of photos opens one fresh cluster, a random face is -1
    new = x[y == 8][:4], x[y == 9][:4]
    rng = np.random.default_rng(0)
    stranger = rng.normal(size=(1, x.shape[1])).astype(np.float32)
    out = inc.predict(np.concatenate([new[0], new[1], stranger]))
    base = inc.labels_.max() + 1
    assert set(out[:4]) == {base} or set(out[:4]) == {base + 1}
    assert len(set(out[4:8])) == 1 and out[4] != out[0] and out[4] >= base
    assert out[8] == -1
    assert len(inc.labels_) == known.sum()  # predict stores nothing


def test_refine_splits_a_wrong_join_and_merges_split_clusters():
    x, y = _blobs(n_ids=6, per=10, seed=4)
    inc = IncrementalClusterer(threshold=0.5).fit(x)
    good = inc.labels_.copy()
    # corrupt: glue cluster of face 0 onto cluster of another identity, split another one
    a, b = good[0], good[np.flatnonzero(y != y[0])[0]]
    bad = good.copy()
    bad[bad == b] = a
    c_members = np.flatnonzero(good == good[np.flatnonzero((y != y[0]) & (good != b))[0]])
    bad[c_members[: len(c_members) // 2]] = bad.max() + 1
    inc.labels_ = bad
    inc.touched_ = set(np.unique(bad).tolist())
    inc.refine()
    assert pairwise(good, inc.labels_)[2] == pytest.approx(1.0)
    assert inc.touched_ == set()


def test_nearest_placement_and_reestimate_options():
    x, y = _blobs(seed=5)
    inc = IncrementalClusterer(placement="nearest").fit(x[:40])
    inc.partial_fit(x[40:])
    assert pairwise(y, inc.labels_)[2] > 0.7
    with pytest.raises(ParameterError, match="placement"):
        IncrementalClusterer(placement="x").fit(x)


def test_refine_every_and_constraints():
    x, y = _blobs(n_ids=5, per=6, seed=6)
    i, j = np.flatnonzero(y == y[0])[:2]
    inc = IncrementalClusterer(refine_every=1, constraints=(None, [[i, j]])).fit(x[:20])
    assert inc.labels_[i] != inc.labels_[j] or max(i, j) >= 20
    inc.partial_fit(x[20:])
    assert inc.labels_[i] != inc.labels_[j]
    assert inc.touched_ == set()  # refined after the batch


def test_bad_input():
    x, _ = _blobs(seed=7)
    inc = IncrementalClusterer().fit(x)
    with pytest.raises(InputError, match="expecting 32 features"):
        inc.partial_fit(np.ones((3, 5)))
    with pytest.raises(InputError, match="NaN"):
        inc.predict(np.full((2, 32), np.nan))


def test_confidence_attribute():
    x, y = _blobs(seed=8)
    inc = IncrementalClusterer().fit(x)
    c = inc.confidence_
    assert c.shape == (len(x),) and c.min() >= 0 and c.max() <= 1
    assert np.median(c) > 0.5  # well-separated blobs: most faces are sure


def test_photo_library_doc():
    import doctest
    from pathlib import Path

    doc = Path(__file__).resolve().parents[1] / "docs" / "photo-library.md"
    res = doctest.testfile(str(doc), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0 and res.attempted > 10
