"""Smoke test of benchmarks/bench_default_scale.py at 120,000 x 64 (CI runs it; not a timing).

Above 100,000 points the default graph is ivf-blas with refinement, so the run goes through
the same kNN code, recall check and hardware-limit rows as the 5.21M benchmark."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_default_scale_runs_end_to_end(tmp_path):
    out = tmp_path / "results"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "bench_default_scale.py"), "--n", "120000",
           "--dim", "64", "--seed", "1", "--work", str(tmp_path / "work"),
           "--recall-sample", "300", "--gemm-seconds", "0.05", "--out", str(out), "--tag", "smoke"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads((out / "smoke.json").read_text())
    d = res["default"]
    assert d["stages_s"]["knn"] >= 0 and "partition" in d["stages_s"]
    assert set(d["stage_peak_gb"]) == set(d["stages_s"])  # one memory figure per stage
    assert d["peak_rss_gb"] > 0
    rec = d["recall"]  # the default graph, rebuilt by `faceclust knn` with the same settings
    assert (rec["nlist"], rec["nprobe"], rec["refine"]) == (2048, 2, 2)
    assert set(rec["steps"]) == {"train", "assign", "group", "join", "sort", "refine"}
    assert 0.9 < rec["recall"] < 1.0
    assert 0.8 < d["metrics"]["pairwise_f"] <= 1.0
    f = res["fces"]
    assert res["fces_knn"]["seconds"] > 0 and f["with_knn_s"] >= f["seconds"]
    assert 0.8 < f["metrics"]["bcubed_f"] <= 1.0
    assert res["gemm"]["fp32_numpy_join"] > 0
    assert "| 120,000 default" in run.stdout and "| 120,000 fc-es" in run.stdout
    assert "| whole kNN stage of the default run |" in run.stdout
    assert "| whole kNN stage of fc-es's k = 80 graph |" in run.stdout
