"""Incremental assignment of new faces to an existing clustering."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from faceclust.cli import main
from faceclust.errors import InputError, ParameterError
from faceclust.photos import FaceTable, read_faces, write_faces
from faceclust.stages.placement import _best_split, assign_new, derive_threshold

LFW = Path("/work/shared/data/lfw")
if not LFW.is_dir():
    LFW = Path(__file__).resolve().parents[2] / "shared" / "data" / "lfw"


def deg(*angles: float) -> np.ndarray:
    """Unit vectors in the plane at the given angles (degrees)."""
    a = np.radians(np.asarray(angles, dtype=np.float64))
    return np.stack([np.cos(a), np.sin(a)], axis=1).astype(np.float32)


def cosd(a: float) -> float:
    return float(np.cos(np.radians(a)))


# old clustering: A = {0, 5, 10} (label 0), B = {90, 95} (label 3), singleton C = {180}
# (label 7), unclustered noise at 45 (label -1)
OLD_X = deg(0, 5, 10, 90, 95, 180, 45)
OLD_Y = np.array([0, 0, 0, 3, 3, 7, -1])


def test_best_split_hand_computed():
    # candidates .7 .8 .85 .9 .95 -> balanced errors 1, .5, .83, .33, .67: best at .9,
    # midpoint with the value below
    t = _best_split(np.array([0.9, 0.8, 0.95]), np.array([0.7, 0.85]))
    assert t == pytest.approx(0.875)
    # perfectly separated: middle of the gap
    assert _best_split(np.array([0.97, 0.98]), np.array([0.85, 0.86])) == pytest.approx(0.915)


def test_derive_threshold_hand_computed():
    # same-cluster nearest: 5 degrees for everyone; other-cluster nearest: A0 90, A5 85,
    # A10 80, B90 80, B95 85 -> split between cos 80 and cos 5
    t = derive_threshold(OLD_X, OLD_Y)
    assert t == pytest.approx((cosd(80) + cosd(5)) / 2, abs=1e-6)


def test_derive_threshold_needs_a_cluster():
    with pytest.raises(ParameterError, match="no cluster with 2\\+ faces"):
        derive_threshold(deg(0, 50, 100), [0, 1, 2])
    # a single cluster (no other cluster): 1st percentile of same-cluster similarities
    assert derive_threshold(deg(0, 5, 10), [4, 4, 4]) == pytest.approx(cosd(5), abs=1e-6)


def test_assign_direct_new_cluster_and_singletons():
    new = deg(7, 46, 200, 203, 300, 92)
    before = new.copy()
    lab = assign_new(OLD_X, OLD_Y, new, threshold=cosd(10))
    np.testing.assert_array_equal(new, before)  # inputs untouched
    # 7 -> A; 46 is only near the noise face (never joined) -> fresh; 200/203 agree -> one
    # new cluster; 300 -> lone stranger; 92 -> B. Fresh labels start after max old (7).
    assert lab.tolist() == [0, 8, 9, 9, 10, 3]


def test_singleton_old_cluster_can_be_joined():
    lab = assign_new(OLD_X, OLD_Y, deg(183), threshold=cosd(10))
    assert lab.tolist() == [7]


def test_group_follows_majority():
    t = cosd(9)
    # 12 matches A (2 degrees from 10); 20 does not (10 degrees) but links to 12 (8):
    # a group of 2 with 1 match = half -> both join A
    assert assign_new(OLD_X, OLD_Y, deg(12, 20), threshold=t).tolist() == [0, 0]
    # a newcomer chain 112, 120, 128 with one borderline match 104 (9 degrees from B's 95,
    # but 8 from 112): the group is mostly unmatched -> one new cluster, B stays clean
    assert assign_new(OLD_X, OLD_Y, deg(104, 112, 120, 128), threshold=t).tolist() == [8] * 4
    # a close match (100: 5 degrees from 95) beats its 8-degree link to the newcomers
    assert assign_new(OLD_X, OLD_Y, deg(100, 108, 116, 124), threshold=t).tolist() == [3, 8, 8, 8]


def test_default_threshold_is_derived_from_old_clusters():
    new = deg(30, 7)
    t = derive_threshold(OLD_X, OLD_Y)  # ~ cos 42.5
    assert assign_new(OLD_X, OLD_Y, new).tolist() == assign_new(OLD_X, OLD_Y, new, t).tolist()
    assert assign_new(OLD_X, OLD_Y, new).tolist() == [0, 0]  # 30 is 20 degrees from A


def _synthetic(seed: int, n_id: int = 40, per: int = 6, d: int = 64):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_id, d))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    y = np.repeat(np.arange(n_id), per)
    x = centres[y] + rng.normal(scale=0.09, size=(len(y), d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def _offset(x: np.ndarray, scale: float = 2.5) -> np.ndarray:
    """dlib-like features: a large common component makes every cosine high."""
    u = np.zeros(x.shape[1], dtype=np.float32)
    u[0] = 1.0
    z = x + scale * u
    return z / np.linalg.norm(z, axis=1, keepdims=True)


def test_threshold_adapts_to_similarity_scale():
    x, y = _synthetic(0)
    old = np.arange(len(y)) % 6 < 4  # 4 photos per person known, 2 new
    old &= y < 30  # persons 30..39 are strangers
    scores = {}
    for name, feats in {"centred": x, "offset": _offset(x)}.items():
        t = derive_threshold(feats[old], y[old])
        lab = assign_new(feats[old], y[old], feats[~old])
        yt = y[~old]
        known = yt < 30
        scores[name] = t, lab
        assert (lab[known] == yt[known]).mean() >= 0.95
        assert (lab[~known] >= 30).all()  # strangers never join an old person
        # each stranger's two photos end up together, under a fresh label
        fresh = lab[~known].reshape(-1, 2)
        assert (fresh[:, 0] == fresh[:, 1]).all() and len(np.unique(fresh[:, 0])) == 10
    t_centred, t_offset = scores["centred"][0], scores["offset"][0]
    assert t_offset > t_centred + 0.2  # very different scales ...
    np.testing.assert_array_equal(scores["centred"][1], scores["offset"][1])  # ... same result
    # whereas a constant tuned on the centred features merges everyone on the offset ones
    wrong = assign_new(_offset(x)[old], y[old], _offset(x)[~old], threshold=t_centred)
    assert (wrong < 30).all()


def test_input_errors():
    with pytest.raises(InputError, match="dimension"):
        assign_new(OLD_X, OLD_Y, np.ones((2, 3), np.float32), threshold=0.5)
    with pytest.raises(ParameterError, match="threshold"):
        assign_new(OLD_X, OLD_Y, deg(1), threshold=1.5)
    with pytest.raises(InputError, match="labels"):
        assign_new(OLD_X, OLD_Y[:3], deg(1), threshold=0.5)
    with pytest.raises(InputError, match="NaN"):
        assign_new(OLD_X, OLD_Y, np.array([[np.nan, 1.0]], np.float32), threshold=0.5)


@pytest.mark.skipif(not (LFW / "labels.meta").exists(), reason="shared LFW data absent")
@pytest.mark.parametrize(("feats", "t_range"), [("dlib128", (0.9, 0.99)), ("arcface512", (0.3, 0.7))])
def test_lfw_split_by_person(feats, t_range):
    """Known people's new photos join their own cluster; newcomers do not join anyone."""
    x = np.load(LFW / f"{feats}_features.npy")
    y = np.loadtxt(LFW / "labels.meta", dtype=np.int64)
    rng = np.random.default_rng(0)
    newcomers = rng.choice(np.unique(y), len(np.unique(y)) // 5, replace=False)
    is_new = np.isin(y, newcomers) | (rng.random(len(y)) < 0.1)
    t = derive_threshold(x[~is_new], y[~is_new])
    assert t_range[0] < t < t_range[1]
    lab = assign_new(x[~is_new], y[~is_new], x[is_new], t)
    yt = y[is_new]
    known = np.isin(yt, y[~is_new])
    assert (lab[known] == yt[known]).mean() > 0.85  # measured 0.90 dlib, 0.95 arcface
    assert ((lab[known] != yt[known]) & (lab[known] <= y.max())).mean() < 0.01
    assert (lab[~known] <= y.max()).mean() < 0.08  # measured 0.041 dlib, 0.013 arcface


# ------------------------------------------------------------------ CLI `faceclust add`


def _table(x: np.ndarray, root: str, names: list[str], backend: str = "dlib") -> FaceTable:
    n = len(x)
    return FaceTable(
        embeddings=x, paths=names, boxes=np.tile([0, 0, 10, 10], (n, 1)), scores=np.ones(n),
        root=root, meta={"config": {"backend": backend, "dim": x.shape[1]}},
    )


def test_cli_add_with_faces_file(tmp_path):
    old = write_faces(_table(OLD_X, str(tmp_path / "photos" / "2019"),
                             [f"o{i}.jpg" for i in range(7)]), tmp_path / "old.npz")
    (tmp_path / "old.txt").write_text("\n".join(map(str, OLD_Y)) + "\n")
    new = write_faces(_table(deg(7, 200, 203), str(tmp_path / "photos" / "2020"),
                             ["a/n0.jpg", "n1.jpg", "n2.jpg"]), tmp_path / "new.npz")
    res = CliRunner().invoke(main, [
        "add", str(old), str(tmp_path / "old.txt"), str(new), "--out", str(tmp_path / "all.npz"),
        "--labels-out", str(tmp_path / "all.txt"), "--threshold", str(cosd(10)),
    ])
    assert res.exit_code == 0, res.output
    assert "3 new faces: 1 joined existing clusters, 2 in 1 new clusters" in res.output
    labels = np.loadtxt(tmp_path / "all.txt", dtype=np.int64)
    assert labels.tolist() == [*OLD_Y.tolist(), 0, 8, 8]
    merged = read_faces(tmp_path / "all.npz")
    assert merged.root == str(tmp_path / "photos")
    assert merged.paths[0] == "2019/o0.jpg" and merged.paths[7] == "2020/a/n0.jpg"
    assert merged.photo_path(7) == tmp_path / "photos" / "2020" / "a" / "n0.jpg"

    other = write_faces(_table(deg(7), str(tmp_path), ["x.jpg"], backend="onnx"),
                        tmp_path / "other.npz")
    res = CliRunner().invoke(main, [
        "add", str(old), str(tmp_path / "old.txt"), str(other), "--out", str(tmp_path / "b.npz"),
        "--labels-out", str(tmp_path / "b.txt"),
    ])
    assert res.exit_code == 2 and "not comparable" in res.output
    res = CliRunner().invoke(main, [
        "add", str(old), str(tmp_path / "old.txt"), str(tmp_path / "old.txt"),
        "--out", str(tmp_path / "c.npz"), "--labels-out", str(tmp_path / "c.txt"),
    ])
    assert res.exit_code == 2 and "neither a folder of photos nor a faces file" in res.output
