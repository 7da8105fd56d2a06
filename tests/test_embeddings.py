"""Known embedding models: calibration file, recognition, and ``auto`` on small collections."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from faceclust import embeddings
from faceclust.embeddings import KnownEmbedding, known, recognise, resolve
from faceclust.errors import InputError, ParameterError
from faceclust.methods import AutoClusterer, IncrementalClusterer
from faceclust.metrics import evaluate
from faceclust.synth import make_faces

from .conftest import unit_rows

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
if not DATA.is_dir():
    DATA = Path("/work/shared/data")
needs_data = pytest.mark.skipif(not (DATA / "orl").is_dir(), reason="shared data not present")


def _orl() -> tuple[np.ndarray, np.ndarray]:
    x = np.load(DATA / "orl" / "dlib128_features.npy")
    return x, np.loadtxt(DATA / "orl" / "labels.meta", dtype=np.int64)


def _model(tail) -> KnownEmbedding:
    return KnownEmbedding(name="m", dim=4, tail=tuple(tail), calibrated_on="hand",
                          description="", mean=None, mean_norm2=0.0)


def test_stranger_cos_interpolates_in_log_chance_and_clips():
    m = _model([(1e-2, 0.90), (1e-4, 0.95)])
    assert m.stranger_cos(1e-3) == pytest.approx(0.925)  # halfway in log10
    assert m.stranger_cos(1.0) == pytest.approx(0.90) and m.stranger_cos(1e-9) == 0.95
    # n faces: chance alpha / pairs per pair; 2 faces = 1 pair -> 0.05, clipped to 1e-2
    assert m.verify_cos(2) == pytest.approx(0.90)
    assert m.verify_cos(10, alpha=0.045) == pytest.approx(m.stranger_cos(1e-3))  # 45 pairs


def test_shipped_models_are_monotone():
    models = known()
    assert {"dlib128", "arcface512"} <= set(models)
    for m in models.values():
        chances = [c for c, _ in m.tail]
        cos = [v for _, v in m.tail]
        assert chances == sorted(chances, reverse=True) and cos == sorted(cos)
        sizes = [m.verify_cos(n) for n in (2, 5, 10, 30, 49)]
        assert sizes == sorted(sizes)  # a larger album needs a stricter cosine
    assert models["dlib128"].mean is not None and models["arcface512"].mean is None
    assert np.linalg.norm(models["dlib128"].mean) == pytest.approx(1.0, abs=1e-5)


@needs_data
def test_shipped_file_is_what_the_calibration_script_makes():
    spec = importlib.util.spec_from_file_location(
        "calibrate_embeddings",
        Path(__file__).resolve().parents[1] / "benchmarks" / "calibrate_embeddings.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    made = mod.calibrate(DATA, "dlib128", 1e-4)
    shipped = json.loads((Path(embeddings.__file__).parent / "data" / "embeddings.json").read_text())
    assert made == shipped["dlib128"]


@needs_data
def test_recognise_dlib_from_a_few_faces_only():
    x, y = _orl()
    assert recognise(x[:1]).name == "dlib128" and recognise(x[y == 7]).name == "dlib128"
    centred = unit_rows(x - x.mean(axis=0))
    assert recognise(centred) is None  # no common direction left
    assert recognise(make_faces(40, 8, 128, seed=0)[0]) is None  # another 128-d model
    assert recognise(make_faces(40, 8, 64, seed=0)[0]) is None


def test_resolve_names_and_errors():
    x = make_faces(10, 2, 128, seed=0)[0]
    assert resolve(None, x) is None and resolve("auto", None) is None
    assert resolve("dlib128", x).name == "dlib128"
    with pytest.raises(InputError, match="512 dimensions"):
        resolve("arcface512", x)
    with pytest.raises(ParameterError, match="known model"):
        resolve("facenet", x)
    with pytest.raises(ParameterError, match="embedding"):
        AutoClusterer(embedding="facenet").fit(x)


@needs_data
@pytest.mark.parametrize("cls", [AutoClusterer, IncrementalClusterer])
def test_small_dlib_album_uses_the_verification_cosine(cls):
    """3 people x 4 photos + 5 strangers (ORL, dlib): the model's scale finds the people
    without merging strangers; without it (unknown model) the opt-in stranger floor keeps
    everyone apart, as it cannot tell one person's photos from strangers here."""
    x, y = _orl()
    idx = np.concatenate([np.flatnonzero(y == p)[:4] for p in (1, 2, 3)]
                         + [[np.flatnonzero(y == p)[0] for p in range(4, 9)]])
    model = cls().fit(x[idx])
    m = evaluate(y[idx], model.labels_)
    assert m["pairwise_precision"] == 1.0 and m["pairwise_recall"] >= 0.8
    assert model.threshold_ == pytest.approx(known()["dlib128"].verify_cos(len(idx)))
    assert "dlib128" in model.explain_ and "verification cosine" in model.explain_
    blind = cls(embedding=None, small_floor=1e-3).fit(x[idx])
    assert evaluate(y[idx], blind.labels_)["pairwise_recall"] == 0.0


@needs_data
def test_two_and_four_photos_of_one_person():
    x, y = _orl()
    pairs = [x[y == p][:2] for p in range(1, 41)]
    assert all(AutoClusterer().fit(two).labels_.tolist() == [0, 0] for two in pairs)
    assert AutoClusterer(embedding=None).fit(pairs[0]).labels_.tolist() == [0, 1]
    four = x[y == 5][:4]
    assert np.unique(AutoClusterer().fit(four).labels_).size == 1
    # a threshold the caller gives wins over the model's
    alone = AutoClusterer(threshold=0.9999).fit(four)
    assert np.unique(alone.labels_).size == 4 and alone.embedding_ == "dlib128"


@needs_data
def test_fifty_faces_and_more_estimate_their_own_scale():
    x, y = _orl()
    idx = np.flatnonzero(y <= 6)  # 60 faces
    a, b = AutoClusterer().fit(x[idx]), AutoClusterer(embedding=None).fit(x[idx])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.threshold_ == b.threshold_ and a.embedding_ is None


def test_verify_alpha_is_a_chance():
    assert 0.0 < embeddings.VERIFY_ALPHA < 1.0
