"""Tests for faceclust.report (benchmark Markdown + PNG report from JSON results)."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner

from faceclust.cli import main
from faceclust.errors import InputError
from faceclust.report import _power_fit, extrapolate, load_results, render_markdown, write_report


def _run(n: int, index: str, scale: float, recall: float = 0.96, f: float = 0.9) -> dict:
    """A fake bench_scale result whose stage seconds grow as scale * n / 1e5."""
    t = scale * n / 1e5
    stages = {s: {"seconds": t, "peak_rss_gb": 1.0, "loadavg": [1.0, 1.0, 1.0]}
              for s in ("load", "knn", "refine", "select", "partition", "eval")}
    stages["knn"]["params"] = {"index": index, "nlist": 64, "nprobe": 8}
    return {
        "tag": f"scale_{n}_{index}", "n": n, "dim": 8, "index": index, "k": 80, "recall": recall,
        "stages": stages, "clustering_s": 3 * t, "end_to_end_s": 5 * t,
        "peak_rss_gb": 2.0 * n / 1e5,
        "metrics": {"pairwise_precision": 0.95, "pairwise_recall": 0.85, "pairwise_f": f,
                    "bcubed_f": f - 0.01, "nmi": 0.97, "n_clusters": 10},
        "machine_start": {"cpu_model": "Test CPU", "nproc": 2, "mem_total_gb": 24.0,
                          "loadavg": [2.5, 2.0, 1.0]},
        "machine_end": {"loadavg": [3.0, 2.0, 1.0]},
    }


def _calibration() -> dict:
    bins = [-0.4 + 0.014 * i for i in range(101)]
    h = [0.0] * 100
    h[50] = 1.0
    d = {"n": 100, "dim": 8, "n_ids": 10, "intra_hist": h, "inter_hist": h, "intra_mean": 0.6,
         "intra_std": 0.1, "inter_mean": 0.01, "inter_std": 0.1, "prec_at_k": [0.9] * 49 + [None]}
    return {"bins": bins, "ks": list(range(1, 51)), "sets": {"real": d, "synth": d}}


@pytest.fixture
def results(tmp_path):
    d = tmp_path / "results"
    d.mkdir()
    for r in (_run(584_013, "ivf", 2.0, recall=0.957, f=0.93), _run(584_013, "flat", 9.0, 1.0, 0.94),
              _run(146_003, "ivf", 2.0), _run(1_740_301, "ivf", 2.0)):
        (d / f"{r['tag']}.json").write_text(json.dumps(r))
    (d / "calibration.json").write_text(json.dumps(_calibration()))
    (d / "bench_metrics_5m.json").write_text(json.dumps({"n": 5_206_761, "seconds": 1.5}))
    (d / "notes.md").write_text("## Notes\n\nhand-written text\n")
    return d


def test_power_fit_recovers_exponent():
    ns = [1e5, 1e6, 1e7]
    a, b = _power_fit(ns, [3.0 * n**1.5 for n in ns])
    assert b == pytest.approx(1.5)
    assert math.exp(a) == pytest.approx(3.0)
    assert _power_fit([5.0, 5.0], [1.0, 2.0]) is None


def test_extrapolate_linear_runs(results):
    res = load_results(results)
    ex = extrapolate(res["scale"], 5_206_761)
    # ivf runs only (one per N): seconds = 2 * n / 1e5, end-to-end 5x, memory 2 GB per 1e5
    assert ex["from_n"] == [146_003, 584_013, 1_740_301]
    v, b = ex["knn"]
    assert b == pytest.approx(1.0)
    assert v == pytest.approx(2.0 * 5_206_761 / 1e5, rel=1e-6)
    assert ex["end_to_end"][0] == pytest.approx(10.0 * 5_206_761 / 1e5, rel=1e-6)
    assert ex["peak_rss_gb"][0] == pytest.approx(2.0 * 5_206_761 / 1e5, rel=1e-6)


def test_markdown_tables_and_targets(results):
    res = load_results(results)
    assert [r["n"] for r in res["scale"]] == [146_003, 584_013, 584_013, 1_740_301]
    md = render_markdown(res, "img", "faceclust bench --report docs")
    assert md.startswith("# Benchmarks")
    assert "faceclust bench --report docs" in md.split("## Machine")[0]
    assert "Test CPU" in md and "`nproc` = 2" in md
    # 584K ivf: end-to-end 5 * 2 * 5.84 = 58.4 s <= 180 but peak 11.7 GB > 4 GB -> not met
    line = next(x for x in md.splitlines() if x.startswith("| 584K end-to-end"))
    assert "58 s" in line and "11.68 GB" in line and line.endswith("| no |")
    line = next(x for x in md.splitlines() if x.startswith("| 584K clustering"))
    assert "35.0 s" in line and line.endswith("| no |")
    assert "**extrapolated**" in md
    assert "| metrics (`evaluate`) on 5.21M | ≤ 2 s | 1.50 s | yes |" in md
    assert "| 584K flat | 1.000 |" in md and "0.9400" in md
    assert "hand-written text" in md
    assert md.count("![") == 4


def test_write_report_files(results, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "docs"
    paths = write_report(results, out)
    names = sorted(p.name for p in paths)
    assert names == ["benchmarks.md", "calibration.png", "fscore.png", "scaling.png", "stages.png"]
    for p in paths:
        assert p.is_file() and p.stat().st_size > 0
        if p.suffix == ".png":
            assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert p.stat().st_size < 200_000
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temporary leftovers


def test_cli_report(results, tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "rep"
    r = CliRunner().invoke(main, ["bench", "--report", str(out), "--results", str(results)])
    assert r.exit_code == 0, r.output
    md = (out / "benchmarks.md").read_text()
    assert f"faceclust bench --report {out} --results {results}" in md


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_results(tmp_path / "nope")
    with pytest.raises(InputError, match="no scale"):
        load_results(tmp_path)
    (tmp_path / "scale_x.json").write_text("{broken")
    with pytest.raises(InputError, match="scale_x.json"):
        load_results(tmp_path)
    r = CliRunner().invoke(main, ["bench"])
    assert r.exit_code == 2 and "--report" in r.output


def test_5m_targets_come_from_the_measured_default_and_fces_runs(results):
    """bench_default_scale.py results replace the 5.21M extrapolation; the fastest run counts."""
    md0 = render_markdown(load_results(results), "img", "cmd")
    assert "**extrapolated**" in md0

    def run(tag, default_s, fces_s, warn):
        return {"n": 5_206_761, "machine_start": {"loadavg": [1.0]}, "machine_end": {"loadavg": [1.5]},
                "default": {"seconds": default_s, "peak_rss_gb": 11.1, "recall": {"recall": 0.96}},
                "fces": {"seconds": fces_s - 1000, "with_knn_s": fces_s, "peak_rss_gb": 12.5,
                         "warnings": ["fc-es: ... (max_links=40)"] if warn else []},
                "fces_knn": {"seconds": 1000, "peak_rss_gb": 9.0, "recall": 0.91}, "tag": tag}

    (results / "scale_default_a.json").write_text(json.dumps(run("a", 707.0, 2300.0, True)))
    (results / "scale_default_b.json").write_text(json.dumps(run("b", 950.0, 2500.0, False)))
    res = load_results(results)
    assert len(res["default_scale"]) == 2 and len(res["scale"]) == 4  # not mixed with bench_scale runs
    md = render_markdown(res, "img", "cmd")
    assert "**extrapolated**" not in md
    assert ("| 5.21M default (`faceclust cluster`, no flags) | ≤ 15 min, ≤ 16 GB, recall@20 ≥ 0.95 | "
            "11.8 min, 11.10 GB, recall 0.960 (load 1.0 → 1.5) | yes |") in md
    assert ("| 5.21M fc-es (k 80, graph cached and reused) with a memory link cap | ≤ 40 min, ≤ 20 GB | "
            "38.3 min, 12.50 GB, recall@80 0.910 (load 1.0 → 1.5) | yes |") in md
