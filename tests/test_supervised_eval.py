"""benchmarks/supervised_eval.py: row keys, method cells and clustering settings (no training)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def sev():
    spec = importlib.util.spec_from_file_location(
        "supervised_eval", ROOT / "benchmarks" / "supervised_eval.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(**kw):
    return {"regime": "1a", "emb": "arcface512", "train": "lfw-train", "test": "lfw-test",
            "method": "gcn-ve", "train_settings": ["steps=150", "tau_folds=0"], **kw}


def test_key_without_cluster_settings_is_unchanged(sev):
    # rows stored before --cluster-set existed must keep their key (merges replace, not add)
    assert sev._key(_row()) == "1a|arcface512|lfw-train|lfw-test|gcn-ve|steps=150 tau_folds=0"
    assert sev._key(_row(cluster_settings=[])) == sev._key(_row())


def test_cluster_settings_make_their_own_row(sev):
    base, var = _row(), _row(cluster_settings=["ignore_ratio=0.9", "link_roots=true"])
    assert sev._key(var) != sev._key(base)
    assert sev._key(var).endswith("|steps=150 tau_folds=0|ignore_ratio=0.9 link_roots=true")
    assert sev._method_cell(var) == (
        "gcn-ve (steps=150, tau_folds=0, cluster: ignore_ratio=0.9, link_roots=true)")
    assert sev._method_cell(base) == "gcn-ve (steps=150, tau_folds=0)"
    assert sev._method_cell({"method": "auto", "cluster_settings": ["k=30"]}) == (
        "auto (cluster: k=30)")


def test_per_method_parses_and_refuses(sev):
    got = sev._per_method(["gcn-ve:ignore_ratio=0.9", "lce-pce:x=1", "gcn-ve:k_e=80",
                           'nsr-fc:lce_params={"epochs": 2}'])
    assert got == {"gcn-ve": ["ignore_ratio=0.9", "k_e=80"], "lce-pce": ["x=1"],
                   "nsr-fc": ['lce_params={"epochs": 2}']}
    for bad in ("ignore_ratio=0.9", "gcn-ve:ignore_ratio", ":k=1"):
        with pytest.raises(SystemExit, match="METHOD:KEY=VALUE"):
            sev._per_method([bad])


def test_cluster_passes_settings_to_the_cli(sev, tmp_path, monkeypatch):
    y = np.array([0, 0, 1, 1, 2])
    (tmp_path / "t.meta").write_text("\n".join(map(str, y)) + "\n")
    seen = []

    def fake_cli(args, timeout=None):
        seen.append(args)
        out = Path(args[args.index("--out") + 1])
        out.write_text("\n".join(map(str, [5, 5, 7, 7, 7])) + "\n")
        return "auto: 5 samples -> 2 clusters in 0.25 s\n", 100.0, 0.5

    monkeypatch.setattr(sev, "_cli", fake_cli)
    test = {"name": "t", "x": str(tmp_path / "t.npy"), "y": str(tmp_path / "t.meta")}
    row = sev.cluster("gcn-ve", test, tmp_path / "model", tmp_path, ["ignore_ratio=0.9", "k_e=80"])
    args = seen[0]
    assert args[args.index("--model") + 1] == str(tmp_path / "model")
    assert [args[i + 1] for i, a in enumerate(args) if a == "--set"] == ["ignore_ratio=0.9",
                                                                         "k_e=80"]
    # predicted pairs 0-1, 2-3, 2-4, 3-4; true 0-1, 2-3: pairwise P = 2/4, R = 2/2
    assert row["pairwise_precision"] == pytest.approx(0.5)
    assert row["pairwise_recall"] == pytest.approx(1.0)
    assert row["n_clusters"] == 2 and row["cluster_seconds"] == pytest.approx(0.25)
    sev.cluster("auto", test, None, tmp_path)
    assert "--set" not in seen[1] and "--model" not in seen[1]
