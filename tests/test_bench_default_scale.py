"""Smoke test of benchmarks/bench_default_scale.py at a tiny N (CI runs it; not a timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_default_scale_runs_end_to_end(tmp_path):
    out = tmp_path / "results"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_default_scale.py"), "--n", "3000",
           "--ids", "60", "--dim", "32", "--seed", "1", "--work", str(tmp_path / "work"),
           "--recall-sample", "100", "--gemm-seconds", "0.05", "--out", str(out), "--tag", "smoke"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads((out / "smoke.json").read_text())
    d = res["default"]
    assert d["stages_s"]["knn"] >= 0 and "partition" in d["stages_s"]
    assert set(d["stage_peak_gb"]) == set(d["stages_s"])  # one memory figure per stage
    assert d["peak_rss_gb"] > 0
    assert d["recall"]["recall"] == 1.0  # 3000 points: the default graph is exact
    assert 0.8 < d["metrics"]["pairwise_f"] <= 1.0
    f = res["fces"]
    assert res["fces_knn"]["seconds"] > 0 and f["with_knn_s"] >= f["seconds"]
    assert 0.8 < f["metrics"]["bcubed_f"] <= 1.0
    assert res["gemm"]["fp32_numpy_join"] > 0
    assert "| 3,000 default" in run.stdout and "| 3,000 fc-es" in run.stdout
