"""faceclust.bench and the ``faceclust bench`` command on a tiny synthetic set."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from faceclust.bench import METRIC_KEYS, default_methods, make_estimators, run_bench, write_report
from faceclust.cli import main
from faceclust.errors import ParameterError
from faceclust.knn import build_knn
from faceclust.methods import METHODS


def test_run_bench_rows_metrics_and_errors(blobs):
    x, y = blobs
    methods = ["hac", "kmeans", "dbscan"]
    report = run_bench(x, y, methods, {"hac": {"k": 20}, "dbscan": {"eps": 5.0}})
    assert [r.method for r in report.results] == methods
    hac, kmeans, dbscan = report.results
    assert hac.error is None and kmeans.error is None
    assert set(hac.metrics) == set(METRIC_KEYS)
    assert hac.metrics["pairwise_f"] == pytest.approx(1.0)
    assert hac.metrics["n_clusters"] == 5 and hac.metrics["n_samples"] == 100
    # kmeans gets the number of gt classes (marked as an oracle)
    assert kmeans.params["n_clusters"] == 5 and "oracle" in kmeans.note
    assert kmeans.metrics["bcubed_f"] == pytest.approx(1.0)
    # a bad value is an error row, not an exception
    assert dbscan.error is not None and "eps" in dbscan.error and dbscan.metrics == {}
    # one graph, built with the largest k requested (hac k=20, dbscan default 80 -> capped N-1)
    assert report.knn["k"] == 80
    assert hac.seconds > 0 and "partition" in hac.stage_seconds and hac.peak_rss_mb >= 0
    md = report.to_markdown()
    rows = [line for line in md.splitlines() if line.startswith("| ")][1:]
    assert len(rows) == 3
    assert rows[2].startswith("| dbscan |") and "error:" in rows[2]
    assert all(r.count("|") == rows[0].count("|") for r in rows)


def test_write_report_files(tmp_path, blobs):
    x, y = blobs
    report = run_bench(x, y, ["knn-cc", "hac"], {"hac": {"k": 20}}, knn=build_knn(x, k=20))
    md, js = write_report(report, tmp_path / "out")
    assert md.read_text() == report.to_markdown()
    data = json.loads(js.read_text())
    assert set(data) == {"dataset", "knn", "machine", "results"}
    assert data["dataset"]["n_samples"] == 100 and data["dataset"]["n_classes"] == 5
    assert [r["method"] for r in data["results"]] == ["knn-cc", "hac"]
    for r in data["results"]:
        assert set(r) >= {"method", "params", "metrics", "seconds", "stage_seconds",
                          "peak_rss_mb", "error"}
        assert set(r["metrics"]) == set(METRIC_KEYS)
    assert data["knn"]["k"] == 20
    assert not list((tmp_path / "out").glob(".*tmp"))  # no temporary files left


def test_auto_row_records_its_choices(blobs):
    x, y = blobs
    auto, knn_cc = run_bench(x, y, ["auto", "knn-cc"]).results
    assert auto.error is None and "merge threshold" in auto.explain
    assert auto.threshold is not None and f"{auto.threshold:.4f}" in auto.explain
    assert knn_cc.explain == "" and knn_cc.threshold is None


def test_given_graph_too_small_is_error_row(blobs):
    x, y = blobs
    report = run_bench(x, y, ["hac"], knn=build_knn(x, k=10))  # hac wants k=80
    assert report.results[0].error is not None and "k=" in report.results[0].error


def test_default_methods_are_unsupervised():
    names = default_methods()
    for name in ("chinese-whispers", "dbscan", "hac", "kmeans", "knn-cc", "infomap"):
        assert name in names
    assert all(name in METHODS for name in names)


def test_make_estimators_rejects_bad_names_and_keys():
    with pytest.raises(ParameterError, match="unknown method"):
        make_estimators(["nope"])
    with pytest.raises(ParameterError, match="no parameter"):
        make_estimators(["hac"], {"hac": {"kk": 3}})
    with pytest.raises(ParameterError, match="not among"):
        make_estimators(["hac"], {"dbscan": {"k": 3}})
    with pytest.raises(ParameterError, match="more than once"):
        make_estimators(["hac", "hac"])


def test_cli_bench(tmp_path, blobs):
    x, y = blobs
    feats = tmp_path / "f.npy"
    labels = tmp_path / "l.meta"
    np.save(feats, x)
    labels.write_text("\n".join(map(str, y)) + "\n")
    out = tmp_path / "res"
    args = ["bench", str(feats), "--gt", str(labels), "--methods", "hac,chinese-whispers,kmeans",
            "--set", "hac.linkage=average", "--set", "chinese-whispers.k=20",
            "--set", "kmeans.n_clusters=4", "--out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "| hac | linkage=average |" in res.output
    data = json.loads((out / "bench.json").read_text())
    assert [r["method"] for r in data["results"]] == ["hac", "chinese-whispers", "kmeans"]
    assert data["results"][2]["params"] == {"n_clusters": 4}
    assert data["results"][2]["metrics"]["n_clusters"] == 4
    assert (out / "bench.md").read_text().count("\n| ") == 4  # header + 3 rows (+ separator)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--methods", "hac,nope"], "unknown method"),
        (["--methods", "hac", "--set", "hac.nope=1"], "no parameter"),
        (["--methods", "hac", "--set", "k=1"], "method.key=value"),
    ],
)
def test_cli_bench_bad_arguments(tmp_path, blobs, extra, message):
    x, y = blobs
    feats = tmp_path / "f.npy"
    labels = tmp_path / "l.meta"
    np.save(feats, x)
    labels.write_text("\n".join(map(str, y)) + "\n")
    res = CliRunner().invoke(main, ["bench", str(feats), "--gt", str(labels), *extra,
                                    "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert message in res.output
    assert not (tmp_path / "o").exists()
