"""`faceclust train` generic over the supervised methods; training.json; input checks."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from faceclust.cli import main
from faceclust.errors import InputError, ParameterError
from faceclust.methods import METHODS, get_method
from faceclust.methods._modeldir import (
    check_input,
    check_train_params,
    class_size_stats,
    guess_embedding,
    read_training_info,
    similarity_stats,
    train_defaults,
)
from faceclust.metrics import evaluate

from .conftest import unit_rows

SUPERVISED = sorted(n for n, c in METHODS.items() if getattr(c, "needs_model", False))

#: Small, fast training settings per supervised method (a method missing here trains with
#: its defaults: add an entry when adding a supervised method).
SMALL: dict[str, dict[str, object]] = {
    "ada-nets": {"k": 12, "train_k": 24, "top_n": 16, "filter_hidden": 8, "filter_mlp": 16,
                 "filter_steps": 8, "filter_batch": 32, "gcn_hidden": 32, "gcn_out": 32,
                 "gcn_steps": 30, "gcn_sample": 16, "val_fraction": 0.25, "train_graph": "knn"},
    "gcn-v": {"k": 10, "steps": 100, "hidden_dim": 32, "mlp_dim": 32, "lr": 0.05,
              "batch_size": None, "k_feat": 10},
    "gcn-ve": {"k": 10, "steps": 100, "hidden_dim": 32, "mlp_dim": 32, "lr": 0.05,
               "batch_size": None, "k_feat": 10, "e_k": 15, "e_epochs": 2, "e_batch_size": 8,
               "e_dims": [16, 16], "e_mlp_dim": 8, "e_lr": 0.01, "e_cross_fit": 0},
    "lce-pce": {"k": 8, "width": 16, "depth": 1, "heads": 2, "ff_dim": 32, "head_dim": 16,
                "epochs": 15, "batch_size": 16, "lr": 3e-3, "pce_k": 5, "pce_width": 16,
                "pce_depth": 1, "pce_heads": 2, "pce_ff_dim": 32, "pce_mlp_dim": 32,
                "pce_epochs": 4, "pce_pairs_per_epoch": 512, "pce_batch_size": 32,
                "pce_lr": 3e-3},
    "lgcn": {"k": 10, "k1": 5, "k2": 3, "active": 3, "dims": [16, 16, 8, 8], "mlp_dim": 8,
             "steps": 60, "batch_size": 16, "lr": 0.01},
    "gcn-d": {"k": 10, "preset": "2", "dims": [16, 8], "steps": 60, "batch_size": 8},
    "gcn-ds": {"k": 10, "preset": "2", "dims": [16, 8], "steps": 60, "batch_size": 8,
               "s_steps": 40, "s_batch_size": 4},
    "chen-dpc": {"k": 10, "width": 16, "heads": 2, "ff_dim": 32, "head_dim": 16, "epochs": 6,
                 "batch_size": 16, "lr": 3e-3},
    "nsr-fc": {"k": 10, "cgcn_hidden": 16, "cgcn_k1": 5, "cgcn_k2": 3, "cgcn_k_local": 5,
               "cgcn_epochs": 3, "cgcn_centres_per_epoch": 128, "cgcn_batch_size": 16,
               "tf_width": 16, "tf_heads": 2, "tf_ff_dim": 32, "tf_head_dim": 16,
               "tf_epochs": 6, "tf_batch_size": 16, "tf_lr": 3e-3,
               "lce_params": {"width": 16, "depth": 1, "heads": 2, "ff_dim": 32,
                              "head_dim": 16, "epochs": 15, "batch_size": 16, "lr": 3e-3,
                              "pce_k": 5, "pce_width": 16, "pce_depth": 1, "pce_heads": 2,
                              "pce_ff_dim": 32, "pce_mlp_dim": 32, "pce_epochs": 4,
                              "pce_pairs_per_epoch": 512, "pce_batch_size": 32,
                              "pce_lr": 3e-3}},
    "fc-eser": {"k": 20, "pce_k": 5, "pce_width": 16, "pce_depth": 1, "pce_heads": 2,
                "pce_ff_dim": 32, "pce_mlp_dim": 32, "pce_epochs": 2,
                "pce_pairs_per_epoch": 256, "pce_batch_size": 64},
}


def _people(n_people: int, per: int, d: int = 16, seed: int = 0):
    """Well-separated identities with varied spread (so confidences differ)."""
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.normal(size=(n_people, d)))
    y = np.repeat(np.arange(n_people), per)
    scale = 0.15 * rng.uniform(0.3, 1.5, size=(len(y), 1))
    return unit_rows(centres[y] + scale * rng.normal(size=(len(y), d))), y


def _write(tmp_path, name, x, y=None):
    np.save(tmp_path / f"{name}.npy", x)
    if y is not None:
        (tmp_path / f"{name}.meta").write_text("\n".join(map(str, y)) + "\n")


def _sets(settings: dict[str, object]) -> list[str]:
    return [a for k, v in settings.items() for a in ("--set", f"{k}={json.dumps(v)}")]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    x, y = _people(8, 25, seed=0)
    _write(tmp, "train", x, y)
    xt, yt = _people(3, 20, seed=11)  # other people
    _write(tmp, "test", xt, yt)
    return tmp


def test_supervised_methods_registered_and_marked():
    assert {"gcn-v", "gcn-ve"} <= set(SUPERVISED)
    out = CliRunner().invoke(main, ["methods"]).output
    for line in out.splitlines():
        name = line.split()[0]
        assert ("[needs model]" in line) == (name in SUPERVISED), line


@pytest.mark.parametrize("method", SUPERVISED)
def test_cli_train_then_cluster_round_trip(data, method):
    torch = pytest.importorskip("torch")
    numba = pytest.importorskip("numba")
    numba.get_num_threads()  # start numba's thread pool now: starting it resets torch's count
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        model = data / f"model-{method}"
        r = CliRunner().invoke(main, ["train", "--method", method, str(data / "train.npy"),
                                      str(data / "train.meta"), "--out", str(model),
                                      *_sets(SMALL.get(method, {})), "--seed", "1"])
        assert r.exit_code == 0, r.output
        info = read_training_info(model)
        assert info["method"] == method and info["seed"] == 1
        assert info["data"]["n"] == 200 and info["data"]["dim"] == 16
        assert info["data"]["class_sizes"] == {"identities": 8, "min": 25, "median": 25.0,
                                               "mean": 25.0, "p90": 25.0, "max": 25,
                                               "singletons": 0}
        assert info["data"]["embedding"] == "train"  # from the file name
        assert info["params"] == {**train_defaults(get_method(method)), **SMALL.get(method, {})}
        assert info["command"][:3] == ["faceclust", "train", "--method"]
        r = CliRunner().invoke(main, ["cluster", str(data / "test.npy"), "--method", method,
                                      "--model", str(model), "--gt", str(data / "test.meta"),
                                      "--out", str(data / f"pred-{method}.meta")])
        assert r.exit_code == 0, r.output
        assert "warning" not in r.output
        pred = np.loadtxt(data / f"pred-{method}.meta", dtype=int)
        yt = np.loadtxt(data / "test.meta", dtype=int)
        m = evaluate(yt, pred)
        assert m["pairwise_precision"] > 0.95 and m["bcubed_f"] > 0.8, m
        # same seed, same model: every stored tensor is identical. The first numba-parallel
        # kernel of a process starts its OpenMP pool, which resets torch's thread count too:
        # pin it again, as the first training ran with it.
        torch.set_num_threads(1)
        again = data / f"again-{method}"
        r = CliRunner().invoke(main, ["train", "--method", method, str(data / "train.npy"),
                                      str(data / "train.meta"), "--out", str(again),
                                      *_sets(SMALL.get(method, {})), "--seed", "1"])
        assert r.exit_code == 0, r.output
        from safetensors.numpy import load_file

        files = sorted(model.glob("*.safetensors"))
        assert files
        for f in files:
            a, b = load_file(f), load_file(again / f.name)
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a), f.name
    finally:
        torch.set_num_threads(old)


def test_cluster_refuses_other_dimension_and_warns_on_scale(data):
    method = SUPERVISED[0]
    model = data / f"model-{method}"
    if not (model / "training.json").is_file():
        pytest.skip("round-trip test did not run")
    x = np.load(data / "test.npy")
    np.save(data / "wide.npy", unit_rows(np.hstack([x, x])))
    r = CliRunner().invoke(main, ["cluster", str(data / "wide.npy"), "--method", method,
                                  "--model", str(model), "--out", str(data / "w.meta")])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "trained on 16-d features" in r.output
    assert "input has dimension 32" in r.output
    assert not (data / "w.meta").exists()
    # same dimension, another similarity scale (a shared component: every cosine ~0.8)
    shifted = unit_rows(x + 2.0 * unit_rows(np.ones((1, x.shape[1]))))
    np.save(data / "shifted.npy", shifted)
    r = CliRunner().invoke(main, ["cluster", str(data / "shifted.npy"), "--method", method,
                                  "--model", str(model), "--out", str(data / "s.meta")])
    assert r.exit_code == 0, r.output
    assert "warning: similarity scale differs from training" in r.output


def test_train_refuses_unsupervised_and_unknown_params(data):
    args = [str(data / "train.npy"), str(data / "train.meta"), "--out", str(data / "m")]
    r = CliRunner().invoke(main, ["train", "--method", "infomap", *args])
    assert r.exit_code == 2 and "needs no training" in r.output and "gcn-v" in r.output
    r = CliRunner().invoke(main, ["train", "--method", "gcn-v", *args, "--set", "stepz=3"])
    assert r.exit_code == 2 and "unknown parameter(s) stepz" in r.output
    assert not (data / "m").exists()
    with pytest.raises(ParameterError, match="needs no model"):
        get_method("auto").train(np.eye(3), np.arange(3), data / "m")


def test_check_train_params_lists_known():
    with pytest.raises(ParameterError, match="known: .*steps"):
        check_train_params(get_method("gcn-v"), {"nope": 1})
    check_train_params(get_method("gcn-v"), {"steps": 3})


def test_stats_hand_values():
    s = class_size_stats(np.array([0, 0, 0, 1, 2, 2]))
    assert s == {"identities": 3, "min": 1, "median": 2.0, "mean": 2.0, "p90": 2.8, "max": 3,
                 "singletons": 1}
    # two antipodal groups: random distinct pairs are +1 (same group) or -1
    x = np.repeat(np.array([[1.0, 0.0], [-1.0, 0.0]], np.float32), 50, axis=0)
    st = similarity_stats(x, pairs=4000, seed=1)
    assert st["q05"] == -1.0 and st["q95"] == 1.0 and abs(st["mean"]) < 0.1
    assert guess_embedding("/d/lfw/arcface512_features.npy") == "arcface512"
    assert guess_embedding("features.npy") is None


def test_check_input_without_record_and_bad_dir(tmp_path):
    assert check_input(tmp_path, np.eye(3, dtype=np.float32)) == []
    with pytest.raises(InputError, match="not found"):
        check_input(tmp_path / "missing", np.eye(3, dtype=np.float32))
    (tmp_path / "training.json").write_text("{not json")
    with pytest.raises(InputError, match="unreadable"):
        check_input(tmp_path, np.eye(3, dtype=np.float32))
