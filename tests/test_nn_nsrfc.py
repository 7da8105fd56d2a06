"""Chen similarity transformer, C-GCN, and the chen-dpc / nsr-fc methods on small data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from faceclust.errors import InputError, ParameterError
from faceclust.knn import build_knn
from faceclust.methods import get_method
from faceclust.methods._nsrfc import chen_dpc_labels
from faceclust.metrics import evaluate

from .conftest import unit_rows

torch = pytest.importorskip("torch")


def _people(n_people: int, per: int, d: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.normal(size=(n_people, d)))
    y = np.repeat(np.arange(n_people), per)
    return unit_rows(centres[y] + 0.15 * rng.normal(size=(len(y), d))).astype(np.float32), y


def test_chen_dpc_labels_with_oracle_similarity_recovers_people():
    x, y = _people(5, 12, seed=3)
    g = build_knn(x, k=15)
    # a confident model: same person ~0.97-1 (continuous, so densities do not tie: with
    # ">=" two equally dense nodes can link to each other and leave a tree unjoined)
    sim = np.where(y[g.ids] == y[:, None], 0.97 + 0.03 * g.sims, 0.0).astype(np.float32)
    labels, info = chen_dpc_labels(g.ids, sim)
    m = evaluate(y, labels)
    assert m["pairwise_f"] == 1.0 and info["peaks"] == 5


def test_cgcn_loss_hand_case_and_padding_ignored():
    from faceclust.nn.cgcn import cgcn_loss

    out = torch.tensor([[[1.0, 0.0], [0.6, 0.8], [0.0, 1.0], [1.0, 0.0]]])
    lab = torch.tensor([[0, 0, 1, 1]])
    mask = torch.tensor([[True, True, True, False]])
    # anchors 0 and 1 (2 has no positive): ap = 0.6 for both, an = 0 (0-2) and 0.8 (1-2)
    trip = (max(0.0, 0 - 0.6 + 0.8) + max(0.0, 0.8 - 0.6 + 0.8)) / 2
    mean = (max(0.0, 0 - 0.1) + max(0.0, 0.8 - 0.1)) / 2 + (0.9 - 0.6)
    assert float(cgcn_loss(out, lab, mask)) == pytest.approx(trip + mean, rel=1e-5)
    # the padded row (a perfect positive of 0 by value) changes nothing
    out2 = out.clone()
    out2[0, 3] = torch.tensor([0.0, -1.0])
    assert float(cgcn_loss(out2, lab, mask)) == pytest.approx(trip + mean, rel=1e-5)


def test_chen_and_cgcn_checkpoints_round_trip(tmp_path):
    from faceclust.nn.cgcn import CGCN, load_cgcn, refine_features, save_cgcn
    from faceclust.nn.chen import ChenNet, load_chen, predict_similarity, save_chen

    x, _ = _people(4, 10)
    g = build_knn(x, k=8)
    torch.manual_seed(0)
    net = ChenNet(16, 8, width=16, heads=2, ff_dim=16, head_dim=8)
    save_chen(net, tmp_path, "chen", {"note": 1})
    net2, meta = load_chen(tmp_path, "chen")
    p1, p2 = predict_similarity(net, x, g.ids), predict_similarity(net2, x, g.ids)
    np.testing.assert_array_equal(p1, p2)
    assert meta == {"note": 1} and p1.shape == (40, 8) and (p1[:, 0] == 1).all()
    assert ((p1 >= 0) & (p1 <= 1)).all()
    with pytest.raises(InputError, match="16-d"):
        predict_similarity(net, x[:, :8], g.ids)
    cg = CGCN(16, hidden=8, k1=3, k2=2, k_local=3)
    save_cgcn(cg, tmp_path, "cgcn", {})
    cg2, _ = load_cgcn(tmp_path, "cgcn")
    r1 = refine_features(cg, x, g.ids, g.ids, g.sims, batch_size=7)
    r2 = refine_features(cg2, x, g.ids, g.ids, g.sims, batch_size=40)
    np.testing.assert_allclose(r1, r2, atol=1e-6)  # batch size does not matter
    np.testing.assert_allclose(np.linalg.norm(r1, axis=1), 1.0, atol=1e-5)


_TINY = {"k": 10, "cgcn_hidden": 16, "cgcn_k1": 5, "cgcn_k2": 3, "cgcn_k_local": 5,
         "cgcn_epochs": 2, "cgcn_centres_per_epoch": 64, "cgcn_batch_size": 16,
         "tf_width": 16, "tf_heads": 2, "tf_ff_dim": 32, "tf_head_dim": 16, "tf_epochs": 4,
         "tf_batch_size": 16, "tf_lr": 3e-3}


def test_nsr_fc_ablations_train_and_cluster(tmp_path):
    torch.set_num_threads(1)
    x, y = _people(8, 20, seed=0)
    xt, yt = _people(3, 15, seed=7)
    cls = get_method("nsr-fc")
    # stage 4 removed (Chen's DPC on the stage-3 similarity); stage 1 removed
    res = cls.train(x, y, tmp_path / "no-lce", seed=1, lce=False, rerank=False, **_TINY)
    assert "lce" not in res and set(res["stage_seconds"]) == {"refine", "transformer"}
    rec = json.loads((tmp_path / "no-lce" / "nsrfc.json").read_text())
    assert rec["stages"] == {"rerank": False, "refine": True, "transformer": True, "lce": False}
    m = evaluate(yt, cls(model=str(tmp_path / "no-lce")).fit_predict(xt))
    assert m["pairwise_precision"] > 0.9, m
    # stages 2 and 3 removed: cosine similarity into Chen's DPC -- no network at all
    cls.train(x, y, tmp_path / "bare", seed=1, refine=False, transformer=False, lce=False,
              **_TINY)
    assert not list((tmp_path / "bare").glob("*.safetensors"))
    est = cls(model=str(tmp_path / "bare")).fit(xt)
    assert est.similarity_.shape == (45, 10)
    with pytest.raises(ParameterError, match="lce_params"):
        cls.train(x, y, tmp_path / "bad", lce_params={"k": 5})
    with pytest.raises(InputError, match="dimension"):
        cls(model=str(tmp_path / "no-lce")).fit(xt[:, :8])


def test_nsr_fc_stage4_reuses_its_split_graphs_and_trains_as_lce_pce(tmp_path, monkeypatch):
    """Stage 4 is LCE-PCENet trained on the same people split with the same kNN size: NSR-FC
    builds the two split graphs once (not again inside stage 4) and its LCENet / PCENet are
    the ones ``lce-pce`` trains with the same parameters."""
    from safetensors.numpy import load_file

    import faceclust.methods._lcepce as lcepce

    torch.set_num_threads(1)
    x, y = _people(8, 20, seed=0)
    lp = {"epochs": 1, "pce_epochs": 1, "pce_pairs_per_epoch": 256}
    calls = []

    def counting(*a, **kw):
        calls.append(kw.get("k"))
        return build_knn(*a, **kw)

    monkeypatch.setattr(lcepce, "build_knn", counting)  # split_graphs: every split's graphs
    get_method("nsr-fc").train(x, y, tmp_path / "nsr", seed=1, k=10, rerank=False,
                               refine=False, transformer=False, lce_params=lp)
    assert calls == [10, 10]  # train and validation people, once each
    get_method("lce-pce").train(x, y, tmp_path / "lce", seed=1, k=10, **lp)
    for name in ("lcenet", "pcenet"):
        a = load_file(str(tmp_path / "nsr" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "lce" / f"{name}.safetensors"))
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    # a PCENet reading more neighbours than NSR-FC's graphs hold: stage 4 builds its own
    calls.clear()
    get_method("nsr-fc").train(x, y, tmp_path / "nsr12", seed=1, k=10, rerank=False,
                               refine=False, transformer=False, lce_params={**lp, "pce_k": 12})
    assert calls == [10, 10, 12, 12]
