"""Tests for the synthetic face-embedding generator, the bundled sample and ``faceclust synth``."""

from __future__ import annotations

import dataclasses
import hashlib

import numpy as np
import pytest
from click.testing import CliRunner

from faceclust import io
from faceclust.cli import main
from faceclust.errors import ParameterError
from faceclust.graph import connected_components
from faceclust.metrics import pairwise
from faceclust.synth import BLOCK, SynthConfig, _build, make_faces, sample_paths, write_faces


def _inter_intra(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = x @ x.T
    iu = np.triu_indices(len(y), 1)
    same = (y[:, None] == y[None, :])[iu]
    return s[iu][same], s[iu][~same]


# ------------------------------------------------------------------ basic contract
def test_shapes_dtypes_norms_and_exact_counts():
    x, y = make_faces(1234, 57, 48, seed=3)
    assert x.shape == (1234, 48) and x.dtype == np.float32
    assert y.shape == (1234,) and y.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    counts = np.bincount(y)
    assert len(counts) == 57 and counts.min() >= 1 and counts.sum() == 1234
    assert np.isfinite(x).all()


def test_determinism_same_seed_identical_bytes_different_seed_differs():
    a, la = make_faces(700, 40, 32, seed=11)
    b, lb = make_faces(700, 40, 32, seed=11)
    c, lc = make_faces(700, 40, 32, seed=12)
    assert a.tobytes() == b.tobytes() and la.tobytes() == lb.tobytes()
    assert a.tobytes() != c.tobytes()
    assert not np.array_equal(la, lc)


@pytest.mark.parametrize(("n", "n_ids", "dim"), [(1, 1, 2), (50, 50, 3), (40, 1, 5)])
def test_edge_sizes(n, n_ids, dim):
    x, y = make_faces(n, n_ids, dim, seed=0)
    assert x.shape == (n, dim)
    assert sorted(np.unique(y).tolist()) == list(range(n_ids))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)


def test_grouped_rows_when_not_shuffled():
    _, y = make_faces(300, 20, 8, seed=1, config=SynthConfig(shuffle=False))
    assert np.all(np.diff(y) >= 0)


# ------------------------------------------------------------------- model features
def test_sizes_long_tailed_and_singletons_knob():
    _, y = make_faces(20000, 400, 8, seed=0)
    c = np.bincount(y)
    assert c.max() >= 4 * np.median(c)
    assert np.quantile(c, 0.9) >= 4 * np.quantile(c, 0.1)
    _, y0 = make_faces(20000, 400, 8, seed=0, config=SynthConfig(size_sigma=0.0))
    c0 = np.bincount(y0)  # control: equal weights give near-equal sizes
    assert c0.max() <= 1.6 * np.median(c0)
    _, y2 = make_faces(2000, 400, 8, seed=0, config=SynthConfig(singleton_frac=0.5))
    assert (np.bincount(y2) == 1).mean() >= 0.5


def test_mean_inter_cos_knob_and_arcface_like_defaults():
    x, y = make_faces(1500, 150, 128, seed=2)
    intra, inter = _inter_intra(x, y)
    assert abs(inter.mean() - 0.01) < 0.02
    assert 0.07 < inter.std() < 0.15  # crowded identity space, not 1/sqrt(dim)
    assert 0.55 < intra.mean() < 0.8
    cfg = SynthConfig(mean_inter_cos=0.83)
    x, y = make_faces(1500, 150, 128, seed=2, config=cfg)
    intra, inter = _inter_intra(x, y)
    assert abs(inter.mean() - 0.83) < 0.02
    assert intra.mean() > inter.mean() + 0.08


def test_nuisance_directions_dominate_within_class_residuals():
    cfg = SynthConfig(nuisance_rank=6, nuisance_var=0.3, outlier_frac=0.0, size_sigma=0.3)
    n, ids, dim = 4000, 40, 64
    x, y = make_faces(n, ids, dim, seed=5, config=cfg)
    means = np.zeros((ids, dim))
    np.add.at(means, y, x)
    means /= np.bincount(y)[:, None]
    resid = x - means[y]
    _, s, vt = np.linalg.svd(resid, full_matrices=False)
    assert s[5] ** 2 > 2.5 * s[6] ** 2  # clear gap after the 6 shared directions
    # the top-6 residual subspace is the model's nuisance subspace
    basis = _build(n, ids, dim, 5, cfg).nuisance.astype(np.float64)
    cosines = np.linalg.svd(vt[:6] @ basis.T, compute_uv=False)
    assert cosines.min() > 0.9
    # without nuisance there is no such gap
    x0, y0 = make_faces(n, ids, dim, seed=5, config=dataclasses.replace(cfg, nuisance_rank=0))
    r0 = x0 - np.stack([x0[y0 == i].mean(0) for i in range(ids)])[y0]
    s0 = np.linalg.svd(r0, compute_uv=False)
    assert s0[5] ** 2 < 1.3 * s0[6] ** 2


def test_near_duplicate_identities_and_outliers():
    cfg = SynthConfig(near_dup_frac=0.1, outlier_frac=0.05)
    m = _build(3000, 200, 64, 4, cfg)
    c = m.centers.astype(np.float64) @ m.centers.T
    np.fill_diagonal(c, -1)
    close = c.max(1)
    # 20 look-alike identities; each of them and its partner sit at cos 0.6-0.8
    assert ((close >= 0.6 - 1e-4) & (close <= 0.8 + 1e-4)).sum() >= 20
    x, y = make_faces(3000, 200, 64, seed=4, config=cfg)
    own = np.einsum("ij,ij->i", x, m.centers[y])
    # outliers: about 5% of the rows are far from their own centre
    frac = (own < 0.3).mean()
    assert 0.03 < frac < 0.08


def test_realistic_difficulty_of_knn_threshold_baseline():
    """A k=10 kNN-threshold baseline is good but not perfect (pairwise F < 1)."""
    x, y = make_faces(3000, 150, 128, seed=0)
    s = x @ x.T
    np.fill_diagonal(s, -np.inf)
    nbr = np.argsort(-s, axis=1)[:, :10]
    sim = np.take_along_axis(s, nbr, 1)
    src = np.repeat(np.arange(len(y)), 10)
    best = 0.0
    for th in np.arange(0.3, 0.8, 0.02):
        keep = sim.ravel() >= th
        best = max(best, pairwise(y, connected_components(src[keep], nbr.ravel()[keep], len(y)))[2])
    assert 0.85 < best < 0.995
    assert 0.9 < (y[nbr[:, 0]] == y).mean() < 1.0


# ----------------------------------------------------------------- streaming writer
@pytest.mark.parametrize(("fmt", "chunk"), [("npy", 1), ("bin", 3 * BLOCK), ("npy", BLOCK + 5)])
def test_streaming_writer_equals_in_memory(tmp_path, fmt, chunk):
    n, ids, dim = 2 * BLOCK + 123, 300, 8
    x, y = make_faces(n, ids, dim, seed=9)
    feat, meta = write_faces(tmp_path / "s", n, ids, dim, 9, fmt=fmt, chunk=chunk)
    assert feat.name == f"s.{fmt}" and meta.name == "s.meta"
    if fmt == "npy":
        got = np.load(feat)
    else:
        got = np.fromfile(feat, dtype="<f4").reshape(-1, dim)
    assert got.dtype == np.float32 and got.tobytes() == x.tobytes()
    np.testing.assert_array_equal(io.read_labels(meta, n), y)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([feat.name, meta.name])


def test_write_faces_bad_args(tmp_path):
    with pytest.raises(ParameterError, match="output directory"):
        write_faces(tmp_path / "missing" / "s", 10, 2, 4)
    with pytest.raises(ParameterError, match="fmt"):
        write_faces(tmp_path / "s", 10, 2, 4, fmt="csv")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((5, 10, 4), "n_ids"),
        ((10, 0, 4), "n_ids"),
        ((0, 0, 4), "n must"),
        ((10, 2, 1), "dim"),
        ((10.0, 2, 4), "n must be an integer"),
    ],
)
def test_make_faces_bad_args(args, match):
    with pytest.raises(ParameterError, match=match):
        make_faces(*args)


def test_bad_seed_and_config():
    with pytest.raises(ParameterError, match="seed"):
        make_faces(10, 2, 4, seed=-1)
    with pytest.raises(ParameterError, match="mean_inter_cos"):
        SynthConfig(mean_inter_cos=1.0)
    with pytest.raises(ParameterError, match="nuisance_rank"):
        SynthConfig(nuisance_rank=-1)
    with pytest.raises(ParameterError, match="near_dup_cos"):
        SynthConfig(near_dup_cos=(0.9, 0.5))
    with pytest.raises(ParameterError, match="config"):
        make_faces(10, 2, 4, config={"noise": 0.1})


# ---------------------------------------------------------------------- bundled sample
def test_bundled_sample_matches_generator():
    feat, meta = sample_paths()
    assert feat.is_file() and meta.is_file()
    assert feat.stat().st_size < 2_000_000
    x = io.read_features(feat)
    y = io.read_labels(meta, len(x))
    assert x.shape == (3000, 128) and len(np.unique(y)) == 150
    gx, gy = make_faces(3000, 150, 128, seed=0)
    assert hashlib.sha256(np.load(feat).tobytes()).digest() == hashlib.sha256(gx.tobytes()).digest()
    np.testing.assert_array_equal(y, gy)


# ------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("fmt", ["npy", "bin"])
def test_cli_synth_writes_readable_files(tmp_path, fmt):
    out = tmp_path / "faces"
    res = CliRunner().invoke(
        main, ["synth", "--n", "500", "--ids", "30", "--dim", "16", "--seed", "4",
               "--out", str(out), "--format", fmt]
    )
    assert res.exit_code == 0, res.output
    assert len(res.output.strip().splitlines()) == 1 and "500 x 16" in res.output
    x = io.read_features(tmp_path / f"faces.{fmt}", dim=16)
    y = io.read_labels(tmp_path / "faces.meta", len(x))
    ex, ey = make_faces(500, 30, 16, seed=4)
    np.testing.assert_array_equal(x, ex)
    np.testing.assert_array_equal(y, ey)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--n", "5", "--ids", "10"], "--ids=10 must be <= --n=5"),
        (["--n", "10", "--ids", "0"], "--ids must be >= 1"),
        (["--n", "10", "--ids", "2", "--dim", "1"], "--dim must be >= 2"),
        (["--n", "10", "--ids", "2", "--seed", "-3"], "--seed must be >= 0"),
    ],
)
def test_cli_synth_bad_args(tmp_path, args, match):
    res = CliRunner().invoke(main, ["synth", *args, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert match in res.output
    assert "Traceback" not in res.output
    assert list(tmp_path.iterdir()) == []


def test_cli_synth_missing_out_dir(tmp_path):
    # README's `--out data/part1` in a fresh clone: the folder is created
    res = CliRunner().invoke(
        main, ["synth", "--n", "10", "--ids", "2", "--out", str(tmp_path / "nope" / "o")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "nope" / "o.npy").exists() and (tmp_path / "nope" / "o.meta").exists()
    # a second run refuses to replace them unless --force
    args = ["synth", "--n", "10", "--ids", "2", "--seed", "1", "--out", str(tmp_path / "nope" / "o")]
    before = (tmp_path / "nope" / "o.npy").read_bytes()
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2 and "--force" in res.output
    assert (tmp_path / "nope" / "o.npy").read_bytes() == before
    assert CliRunner().invoke(main, [*args, "--force"]).exit_code == 0
    assert (tmp_path / "nope" / "o.npy").read_bytes() != before


def test_cli_synth_dlib_preset(tmp_path):
    res = CliRunner().invoke(
        main, ["synth", "--n", "600", "--ids", "60", "--dim", "128", "--preset", "dlib",
               "--out", str(tmp_path / "d")]
    )
    assert res.exit_code == 0, res.output
    x = io.read_features(tmp_path / "d.npy")
    y = io.read_labels(tmp_path / "d.meta", len(x))
    intra, inter = _inter_intra(x, y)
    assert abs(inter.mean() - 0.82) < 0.02
    assert 0.9 < intra.mean() < 0.97
