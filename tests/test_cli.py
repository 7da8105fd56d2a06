"""The command-line contract: knn, cluster, eval, methods, demo, and one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from faceclust.cli import main

from .conftest import unit_rows


@pytest.fixture
def data(tmp_path, blobs):
    x, y = blobs
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "y.meta").write_text("\n".join(map(str, y)) + "\n")
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_methods_lists_every_method():
    res = run("methods")
    assert res.exit_code == 0
    assert "knn-cc" in res.output and "infomap" in res.output


def test_knn_writes_learn_to_cluster_format(data):
    res = run("knn", str(data / "x.npy"), "--k", "5", "--out", str(data / "knn.npz"))
    assert res.exit_code == 0, res.output
    with np.load(data / "knn.npz") as z:
        arr = z["data"]
    assert arr.shape == (100, 2, 5)
    assert (arr[:, 0, 0] == np.arange(100)).all()  # self first
    np.testing.assert_allclose(arr[:, 1, 0], 0.0, atol=1e-5)  # distance 1 - sim
    assert (np.diff(arr[:, 1, :], axis=1) >= -1e-6).all()  # ascending distance


def test_knn_ivf_blas_reports_cells_steps_and_refinement(data):
    for extra, passes in (([], 2), (["--refine", "0"], 0)):
        out = data / f"g{passes}.npz"
        res = run("knn", str(data / "x.npy"), "--k", "5", "--index", "ivf-blas", "--nlist", "4",
                  "--nprobe", "2", *extra, "--out", str(out))
        assert res.exit_code == 0, res.output
        assert f"(nlist 4, nprobe 2, refine {passes}), steps {{'train'" in res.output
        assert ("'refine'" in res.output) == (passes > 0)
        with np.load(out) as z:
            assert (z["data"][:, 0, 0] == np.arange(100)).all()


def test_cluster_then_eval_json(data):
    out = data / "pred.meta"
    res = run("cluster", str(data / "x.npy"), "--method", "knn-cc", "--set", "k=8",
              "--set", "threshold=0.8", "--out", str(out))
    assert res.exit_code == 0, res.output
    res = run("eval", "--pred", str(out), "--gt", str(data / "y.meta"), "--json")
    metrics = json.loads(res.output)
    assert set(metrics) == {"pairwise_precision", "pairwise_recall", "pairwise_f",
                            "bcubed_precision", "bcubed_recall", "bcubed_f", "nmi",
                            "n_clusters", "n_samples"}
    assert metrics["pairwise_f"] == pytest.approx(1.0)
    assert metrics["n_clusters"] == 5 and metrics["n_samples"] == 100


def test_cluster_with_precomputed_knn(data):
    assert run("knn", str(data / "x.npy"), "--k", "12", "--out", str(data / "knn.npz")).exit_code == 0
    res = run("cluster", str(data / "x.npy"), "--method", "infomap", "--set", "k=10",
              "--knn", str(data / "knn.npz"), "--out", str(data / "p.npy"))
    assert res.exit_code == 0, res.output
    assert len(np.unique(np.load(data / "p.npy"))) == 5


def test_bin_features_with_meta_beside(data, blobs):
    x, y = blobs
    x.astype(np.float32).tofile(data / "feat.bin")
    (data / "feat.meta").write_text("\n".join(map(str, y)) + "\n")
    res = run("cluster", str(data / "feat.bin"), "--method", "knn-cc", "--set", "k=5",
              "--set", "threshold=0.8", "--out", str(data / "p.meta"))
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize(
    "args,msg",
    [
        (["cluster", "{d}/x.npy", "--method", "nope", "--out", "{d}/p.meta"], "unknown method"),
        (["cluster", "{d}/x.npy", "--method", "knn-cc", "--set", "bogus=1", "--out", "{d}/p.meta"],
         "has no parameter bogus"),
        (["cluster", "{d}/x.npy", "--method", "knn-cc", "--set", "k=500", "--out", "{d}/p.meta"],
         "k=500 must be smaller"),
        (["cluster", "{d}/missing.npy", "--out", "{d}/p.meta"], "missing.npy"),
        (["cluster", "{d}/x.npy", "--method", "knn-cc", "--out", "{d}/x.npy"], "overwrite"),
        (["eval", "--pred", "{d}/short.meta", "--gt", "{d}/y.meta"], "labels"),
    ],
)
def test_errors_are_one_line_exit_2(data, args, msg):
    (data / "short.meta").write_text("0\n1\n")
    before = (data / "x.npy").read_bytes()
    res = CliRunner().invoke(main, [a.format(d=data) for a in args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.strip().splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("faceclust: error:"), res.output
    assert msg in lines[0]
    assert "Traceback" not in res.output
    assert (data / "x.npy").read_bytes() == before  # inputs untouched


def test_nan_features_error(data):
    x = unit_rows(np.random.default_rng(0).normal(size=(10, 4)))
    x[4, 1] = np.nan
    np.save(data / "nan.npy", x)
    res = CliRunner().invoke(main, ["cluster", str(data / "nan.npy"), "--out", str(data / "p.meta")])
    assert res.exit_code == 2 and "NaN" in res.output and "4" in res.output


def test_demo_prints_metrics_table():
    res = run("demo", "--methods", "infomap,knn-cc")
    assert res.exit_code == 0, res.output
    assert "pair F" in res.output and "infomap" in res.output


def test_default_is_auto_and_preset_ms1m_is_fc_es(data):
    res = run("cluster", str(data / "x.npy"), "--explain", "--out", str(data / "a.meta"))
    assert res.exit_code == 0, res.output
    assert res.output.startswith("auto:") and "merge threshold" in res.output
    res = run("cluster", str(data / "x.npy"), "--preset", "ms1m", "--set", "k=10",
              "--out", str(data / "b.meta"))
    assert res.exit_code == 0, res.output
    assert res.output.startswith("fc-es:")
