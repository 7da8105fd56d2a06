"""Tests for LCENet / PCENet (faceclust.nn), their training, and the lce-pce / fc-eser methods."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceclust.errors import InputError, ParameterError  # noqa: E402
from faceclust.methods import get_method  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402
from faceclust.nn.lcenet import (  # noqa: E402
    LCENet,
    SplitProjection,
    centred,
    load_lcenet,
    neighbour_tokens,
    predict_connectivity,
    projected_tokens,
    save_lcenet,
)
from faceclust.nn.pairtrain import balanced_pairs, capped_per_class  # noqa: E402
from faceclust.nn.pcenet import PCENet, load_pcenet, predict_pairs, save_pcenet  # noqa: E402
from faceclust.synth import make_faces  # noqa: E402

TINY = {"width": 16, "depth": 1, "heads": 2, "ff_dim": 32, "head_dim": 16}
TINY_PCE = {"pce_width": 16, "pce_depth": 1, "pce_heads": 2, "pce_ff_dim": 32,
            "pce_mlp_dim": 32, "pce_k": 5, "pce_pairs_per_epoch": 256, "pce_batch_size": 64}


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny matrices: one torch thread is faster and immune to CPU oversubscription."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _ids(n, k, seed=0):
    rng = np.random.default_rng(seed)
    ids = np.stack([np.concatenate([[i], rng.choice(np.delete(np.arange(n), i), k - 1,
                                                   replace=False)]) for i in range(n)])
    return ids


def _x(n, d, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_neighbour_tokens_layout_and_padding():
    x = torch.from_numpy(_x(6, 4))
    nbr = torch.tensor([[0, 2, -1]])
    tok, pad = neighbour_tokens(x, nbr)
    assert tok.shape == (1, 3, 4 + 3) and pad.tolist() == [[False, False, True]]
    torch.testing.assert_close(tok[0, 1, :4], x[2])
    assert float(tok[0, 0, 4]) == pytest.approx(1.0, abs=1e-6)  # cos(self, self)
    assert float(tok[0, 0, 5]) == pytest.approx(float(x[0] @ x[2]), abs=1e-6)
    assert torch.all(tok[0, 2] == 0) and torch.all(tok[0, :, 6] == 0)  # missing: zero row/col


def test_lcenet_width_none_is_upstream_token_width():
    m = LCENet(8, 4, width=None, depth=1, heads=2, ff_dim=16)
    assert m.width == 12 and isinstance(m.encoder.proj, torch.nn.Identity)
    with pytest.raises(ParameterError, match="divisible"):
        LCENet(8, 4, width=10, heads=4)


def test_checkpoint_round_trip(tmp_path):
    n, k, d = 20, 5, 8
    x, ids = _x(n, d), _ids(n, k)
    torch.manual_seed(0)
    lce = LCENet(d, k, **TINY).eval()
    pce = PCENet(d, k, width=16, depth=1, heads=2, ff_dim=32, mlp_dim=32).eval()
    lce.center.copy_(torch.linspace(-0.1, 0.1, d))  # a stored training mean travels along
    save_lcenet(lce, tmp_path, {"note": 1})
    save_pcenet(pce, tmp_path, "pcenet", {"note": 2})
    lce2, meta = load_lcenet(tmp_path)
    pce2, meta2 = load_pcenet(tmp_path, "pcenet")
    assert meta == {"note": 1} and meta2 == {"note": 2}
    assert lce2.config() == lce.config() and pce2.config() == pce.config()
    torch.testing.assert_close(lce2.center, lce.center)
    np.testing.assert_array_equal(predict_connectivity(lce, x, ids), predict_connectivity(lce2, x, ids))
    src, dst = np.arange(n), ids[:, 1]
    np.testing.assert_array_equal(predict_pairs(pce, x, ids, src, dst),
                                  predict_pairs(pce2, x, ids, src, dst))
    doc = json.loads((tmp_path / "lcenet.json").read_text())
    assert doc["kind"] == "lcenet" and doc["config"]["k"] == k
    with pytest.raises(ParameterError, match="pcenet"):
        load_lcenet(tmp_path / "x") if False else load_pcenet(tmp_path, "lcenet")


def test_inference_batches_and_precisions_agree():
    n, k, d = 37, 5, 8
    x, ids = _x(n, d, 1), _ids(n, k, 1)
    torch.manual_seed(1)
    lce = LCENet(d, k, **TINY).eval()
    full = predict_connectivity(lce, x, ids, batch_size=64)
    np.testing.assert_allclose(predict_connectivity(lce, x, ids, batch_size=4), full, atol=1e-5)
    assert np.all(full[:, 0] > 0) and full.shape == (n, k)
    for prec in ("bf16", "int8"):
        np.testing.assert_allclose(predict_connectivity(lce, x, ids, precision=prec), full, atol=0.1)
    # a graph narrower than the model's k is padded: missing slots get 0
    narrow = predict_connectivity(lce, x, ids[:, :3])
    assert narrow.shape == (n, k) and np.all(narrow[:, 3:] == 0)
    with pytest.raises(InputError, match="8-d"):
        predict_connectivity(lce, x[:, :4], ids)


def test_split_projection_equals_projecting_the_tokens():
    """The inference fast path (f W_f gathered per node) gives proj([f || A]) exactly."""
    n, k, d = 23, 6, 8
    x, ids = _x(n, d, 2), _ids(n, k, 2)
    ids[:4, -2:] = -1  # missing neighbours
    torch.manual_seed(2)
    lce = LCENet(d, k, **TINY).eval()
    xt, nbr = torch.from_numpy(x), torch.from_numpy(ids.astype(np.int64))
    with torch.inference_mode():
        tok, pad = neighbour_tokens(xt, nbr)
        split = SplitProjection.of(lce.encoder, xt)
        h, pad2 = projected_tokens(xt, nbr, split)
        torch.testing.assert_close(h, lce.encoder.proj(tok), atol=1e-5, rtol=1e-5)
        assert torch.equal(pad, pad2)
        torch.testing.assert_close(lce(h, pad, True), lce(tok, pad), atol=1e-5, rtol=1e-5)
    assert SplitProjection.of(LCENet(d, k, width=None, depth=1, heads=1, ff_dim=8).encoder,
                              xt) is None  # upstream width: no projection to split
    pce = PCENet(d, 3, width=16, depth=1, heads=2, ff_dim=16, mlp_dim=16).eval()
    src, dst = np.arange(n), (np.arange(n) + 1) % n
    fast = predict_pairs(pce, x, ids, src, dst)
    with torch.inference_mode():  # the plain path, by hand
        both = torch.from_numpy(np.concatenate([ids[src, :3], ids[dst, :3]], 1).astype(np.int64))
        tok, pad = neighbour_tokens(xt, both)
        plain = torch.softmax(pce(tok, pad, xt[src], xt[dst]), -1)[:, 1].numpy()
    np.testing.assert_allclose(fast, plain, atol=1e-5)


def test_centred_inputs():
    x = np.array([[0.9, 0.1], [0.8, 0.3]], dtype=np.float32)
    np.testing.assert_array_equal(centred(x, torch.zeros(2)), x)  # zeros: off
    c = centred(x, torch.tensor([0.85, 0.2]))
    a, b = 1 / np.sqrt(5), 2 / np.sqrt(5)  # (0.05, -0.1) and (-0.05, 0.1), normalised
    np.testing.assert_allclose(c, [[a, -b], [-a, b]], rtol=1e-6)


def test_balanced_sampler_draws_half_positive():
    same = np.array([True] * 3 + [False] * 97)
    idx = balanced_pairs(same, 200, np.random.default_rng(0))
    assert len(idx) == 200 and same[idx].sum() == 100
    with pytest.raises(InputError, match="positive and negative"):
        balanced_pairs(np.ones(5, bool), 10, np.random.default_rng(0))


def test_validation_pool_capped_per_class():
    same = np.array([True] * 3 + [False] * 97)
    idx = capped_per_class(same, 10, np.random.default_rng(0))
    assert same[idx].sum() == 3 and (~same[idx]).sum() == 10  # all 3 positives, 10 of 97
    assert np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(capped_per_class(same, 100, np.random.default_rng(0)),
                                  np.arange(100))


def _data(seed):
    return make_faces(240, 24, dim=16, seed=seed)


@pytest.fixture(scope="module")
def lce_model(tmp_path_factory):
    out = tmp_path_factory.mktemp("lce")
    x, y = _data(1)
    meta = get_method("lce-pce").train(x, y, out, seed=0, k=8, epochs=3, pce_epochs=2,
                                       **TINY, **TINY_PCE)
    return out, meta


def test_lce_pce_train_then_cluster_unseen_people(lce_model):
    out, meta = lce_model
    assert json.dumps(meta)  # JSON-able
    assert meta["lcenet"]["best_epoch"] in (1, 2, 3) and len(meta["lcenet"]["epochs"]) == 3
    assert meta["pcenet"]["pool"]["positive"] > 0 and meta["n_val"] > 0
    from faceclust.nn.lcenet import load_lcenet as _load

    assert float(_load(out)[0].center.abs().sum()) > 0  # centred on the training mean
    x, y = _data(2)  # other synthetic people
    m = get_method("lce-pce")(model=str(out)).fit(x)
    assert m.n_edges_["E_d_verified"] <= m.n_edges_["E_d"]
    f = evaluate(y, m.labels_)
    assert f["pairwise_f"] > 0.7 and f["bcubed_f"] > 0.7, f
    no_verify = get_method("lce-pce")(model=str(out), verify=False).fit(x)
    assert no_verify.labels_.max() <= m.labels_.max()  # more edges -> no more clusters


def test_lce_pce_refuses_missing_model_and_wrong_dimension(lce_model, tmp_path):
    out, _ = lce_model
    with pytest.raises(ParameterError, match="model"):
        get_method("lce-pce")().fit(_x(30, 16))
    with pytest.raises(InputError, match="dimension"):
        get_method("lce-pce")(model=str(out)).fit(_x(30, 8))
    with pytest.raises(InputError, match="not found"):
        get_method("lce-pce")(model=str(tmp_path / "none")).fit(_x(30, 16))
    with pytest.raises(TypeError, match="bogus"):
        get_method("lce-pce").train(_x(30, 16), np.arange(30) % 3, tmp_path, bogus=1)


def test_train_defaults_are_the_train_keywords():
    from faceclust.methods._lcepce import FCESER_TRAIN_DEFAULTS, LCE_PCE_TRAIN_DEFAULTS
    from faceclust.methods._modeldir import train_defaults

    assert train_defaults(get_method("lce-pce")) == LCE_PCE_TRAIN_DEFAULTS
    assert train_defaults(get_method("fc-eser")) == FCESER_TRAIN_DEFAULTS


def test_fc_eser_train_then_cluster(tmp_path):
    x, y = _data(1)
    meta = get_method("fc-eser").train(x, y, tmp_path, seed=0, k=20, pce_epochs=2, **TINY_PCE)
    assert meta["pcenet_recall"]["candidates"]["delta"] == 0.12
    xt, yt = _data(2)
    m = get_method("fc-eser")(model=str(tmp_path), k=20).fit(xt)
    base = get_method("fc-es")(k=20).fit(xt)
    assert m.n_recalled_ <= m.n_candidates_
    assert m.n_links_ == base.n_links_ + m.n_recalled_  # fc-es links plus the recalled ones
    if m.n_recalled_ == 0:
        np.testing.assert_array_equal(m.labels_, base.labels_)
    f = evaluate(yt, m.labels_)
    assert f["pairwise_f"] > 0.5, f
    # eta = 1 accepts nothing: exactly fc-es
    strict = get_method("fc-eser")(model=str(tmp_path), k=20, eta=1.0).fit(xt)
    assert strict.n_recalled_ == 0
    np.testing.assert_array_equal(strict.labels_, base.labels_)


def test_nodes_per_epoch_and_val_nodes_bound_the_rows_seen(monkeypatch):
    """An epoch trains on ``nodes_per_epoch`` distinct random nodes and validation scores
    ``val_nodes`` fixed nodes; ``nodes_per_epoch >= N`` is the plain every-node epoch."""
    import faceclust.nn.pairtrain as pt
    from faceclust.knn import build_knn

    x, y = _data(3)
    xv, yv = _data(4)
    ids, vids = build_knn(x, k=6).ids, build_knn(xv, k=6).ids
    seen: list[np.ndarray] = []
    real = pt.neighbour_tokens

    def spy(xt, nbr):
        seen.append(nbr[:, 0].numpy().copy())  # slot 0 is the node itself
        return real(xt, nbr)

    monkeypatch.setattr(pt, "neighbour_tokens", spy)
    kw = dict(k=6, width=16, depth=1, heads=2, ff_dim=32, dropout=0.0, head_dim=16, epochs=2,
              batch_size=32, lr=1e-3, weight_decay=0.0, seed=0)
    _, meta = pt.train_lcenet(x, y, ids, (xv, yv, vids), nodes_per_epoch=50, val_nodes=70, **kw)
    # epoch 1: 2 training batches (32 + 18 rows) then one validation chunk of 70 rows
    sizes = [len(s) for s in seen]
    assert sizes == [32, 18, 70, 32, 18, 70]
    for e in (0, 3):
        rows = np.concatenate(seen[e : e + 2])
        assert len(np.unique(rows)) == 50  # without replacement within an epoch
    assert not np.array_equal(np.sort(np.concatenate(seen[0:2])), np.sort(np.concatenate(seen[3:5])))
    np.testing.assert_array_equal(seen[2], seen[5])  # the same validation nodes each epoch
    assert meta["nodes_per_epoch"] == 50 and meta["val_nodes_scored"] == 70
    assert meta["n_val"] == len(xv)
    monkeypatch.setattr(pt, "neighbour_tokens", real)
    full, _ = pt.train_lcenet(x, y, ids, (xv, yv, vids), **kw)
    same, m2 = pt.train_lcenet(x, y, ids, (xv, yv, vids), nodes_per_epoch=10**6, **kw)
    assert m2["nodes_per_epoch"] == len(x)
    for a, b in zip(full.state_dict().values(), same.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ParameterError, match="nodes_per_epoch"):
        pt.train_lcenet(x, y, ids, (xv, yv, vids), nodes_per_epoch=0, **kw)


def test_lce_pce_and_chen_train_take_nodes_per_epoch(tmp_path):
    x, y = _data(5)
    meta = get_method("lce-pce").train(x, y, tmp_path / "l", seed=0, k=6, epochs=1,
                                       pce_epochs=1, nodes_per_epoch=40, val_nodes=20,
                                       **TINY, **TINY_PCE)
    assert meta["lcenet"]["nodes_per_epoch"] == 40 and meta["lcenet"]["val_nodes_scored"] == 20
    meta = get_method("chen-dpc").train(x, y, tmp_path / "c", seed=0, k=6, epochs=1,
                                        nodes_per_epoch=30, val_nodes=25, **TINY)
    assert meta["chen"]["nodes_per_epoch"] == 30 and meta["chen"]["val_nodes_scored"] == 25
