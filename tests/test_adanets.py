"""Ada-NETS networks and the ada-nets method: losses, operator, checkpoints, train -> cluster."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from faceclust.errors import InputError, ParameterError  # noqa: E402
from faceclust.methods import get_method  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402
from faceclust.nn.adanets import (  # noqa: E402
    AdaGCN,
    AdaptiveFilter,
    SimilarityFilter,
    cluster_loss,
    gcn_operator,
    load_adanets,
    log_huber,
    predict_filter,
    predict_gcn,
    relative_huber,
    similarity_sequences,
    two_hop_mean,
)
from faceclust.stages.neighbours import similarity_adjacency  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _people(n_ids=12, per=8, d=24, noise=0.35, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, d))
    y = np.repeat(np.arange(n_ids), per)
    x = centres[y] / np.sqrt(d) + noise / np.sqrt(d) * rng.normal(size=(len(y), d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), y


def test_relative_huber_values():
    pred = torch.tensor([0.5, 3.0])
    target = torch.tensor([0.5, 1.0])  # relative errors 0 and 2 (linear part: 2 - 0.5)
    assert float(relative_huber(pred, target)) == pytest.approx((0.0 + 1.5) / 2)


def test_cluster_loss_allmax():
    f = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 1])
    # positives (5 entries incl. diagonal) all cos 1 -> 0; hardest negative cos 0 -> 1
    assert float(cluster_loss(f, y)) == pytest.approx(1.0)
    f2 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # positives: diag 1 (x3) and pair (0,1) cos 0 twice -> mean relu(0.9 - M) = 2*0.9/5
    # hardest negative: (0,2)/(1,2): max(-1, 0) = 0 -> relu(1 + 0) = 1
    y2 = torch.tensor([0, 0, 1])
    assert float(cluster_loss(f2, y2)) == pytest.approx(1.8 / 5 + 1.0)


def test_gcn_operator_counts_self_twice():
    import scipy.sparse as sp

    adj = sp.csr_matrix(np.array([[0.5, 0.5, 0.0], [0.3, 0.4, 0.3], [0.0, 0.5, 0.5]]))
    m = gcn_operator(adj).toarray()
    np.testing.assert_allclose(m[0], [2 / 3, 1 / 3, 0.0], atol=1e-6)
    np.testing.assert_allclose(m[1], [0.25, 0.5, 0.25], atol=1e-6)
    np.testing.assert_allclose(gcn_operator(adj, weighted=True).toarray(), adj.toarray())


def test_filter_matches_torch_lstm():
    """The per-node input projection gives nn.LSTM's exact output."""
    torch.manual_seed(0)
    f = AdaptiveFilter(6, hidden_dim=5, mlp_dim=7, k=4).eval()
    x = torch.randn(9, 6)
    seq = torch.tensor([[0, 3, 5, 1], [2, 2, 8, 7]])
    xs = x[seq]
    ref, _ = f.lstm(xs)
    parts = []
    for sfx, rev in (("", False), ("_reverse", True)):
        w = getattr(f.lstm, f"weight_ih_l0{sfx}")
        b = getattr(f.lstm, f"bias_ih_l0{sfx}") + getattr(f.lstm, f"bias_hh_l0{sfx}")
        parts.append(f._direction((x @ w.t() + b)[seq], rev))
    torch.testing.assert_close(torch.cat(parts, dim=2), ref, atol=1e-5, rtol=1e-5)
    assert f(x, seq).shape == (2,)


TINY = dict(k=12, train_k=24, top_n=16, filter_hidden=8, filter_mlp=16, filter_steps=8,
            filter_batch=32, gcn_hidden=32, gcn_out=32, gcn_steps=30, gcn_sample=16,
            val_fraction=0.25, train_graph="knn")


def test_log_huber_is_symmetric_in_ratio():
    k_star = torch.tensor([4.0, 4.0, 4.0])
    pred = torch.log(torch.tensor([8.0, 2.0, 4.0]))
    per = torch.nn.functional.huber_loss(pred, torch.log(k_star), reduction="none")
    assert per[0] == pytest.approx(per[1]) and per[2] == 0  # x2 and /2 cost the same
    assert log_huber(pred, k_star) == pytest.approx(float(per.mean()))
    # the original's relative error: /2 costs 0.125, x2 costs 0.5 -> pushes k_hat down
    assert relative_huber(torch.tensor([2.0]), torch.tensor([4.0])) == pytest.approx(0.125)
    assert relative_huber(torch.tensor([8.0]), torch.tensor([4.0])) == pytest.approx(0.5)


def test_similarity_sequences_hand_values():
    x = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    ids = np.array([[0, 1, -1], [1, 2, 0]])
    nd = np.array([[0.0, 0.3, np.inf], [0.0, 0.25, 0.5]], dtype=np.float32)
    seq = similarity_sequences(x, ids, nd)
    np.testing.assert_allclose(seq[0], [[1, 1], [0.7, 0.6], [0, -1]], atol=1e-6)
    np.testing.assert_allclose(seq[1], [[1, 1], [0.75, 0.8], [0.5, 0.6]], atol=1e-6)
    f = SimilarityFilter(2, 4, 8, k=3)
    assert f(torch.from_numpy(seq)).shape == (2,)


def test_similarity_sequences_in_blocks_equal_all_at_once(monkeypatch):
    from faceclust.nn import adanets

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.concatenate([np.arange(50)[:, None], rng.integers(-1, 50, size=(50, 5))], axis=1)
    nd = rng.random(ids.shape).astype(np.float32)
    whole = adanets.similarity_sequences(x, ids, nd)
    monkeypatch.setattr(adanets, "_SEQ_BLOCK", 7)  # 50 rows in blocks of 7
    np.testing.assert_array_equal(adanets.similarity_sequences(x, ids, nd), whole)
    ok = ids >= 0
    expect = np.where(ok, np.einsum("bd,bkd->bk", x, x[np.where(ok, ids, 0)]), -1.0)
    np.testing.assert_allclose(whole[:, :, 1], expect, atol=1e-6)


def test_cluster_loss_hinge_hand_pairs():
    feat = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    # same pair cos 0.8 (< 0.9: violation 0.1); different pairs cos 0 and 0.6 (> 0.5: 0.1)
    loss = cluster_loss(feat, labels, kind="hinge", pmargin=0.9, nmargin=0.5)
    assert float(loss) == pytest.approx(0.1 + 0.1, abs=1e-6)
    with pytest.raises(ParameterError, match="loss"):
        cluster_loss(feat, labels, kind="bogus")


def test_residual_gcn_starts_as_two_hop_mean():
    x, _ = _people(n_ids=4, per=5, d=8)
    ids = np.stack([np.arange(20), (np.arange(20) + 1) % 20, (np.arange(20) + 2) % 20], axis=1)
    adj = similarity_adjacency(ids, np.ones(ids.shape, dtype=np.float32))
    gcn = AdaGCN(8, 16, 8, residual=True)
    np.testing.assert_allclose(predict_gcn(gcn, x, adj), two_hop_mean(gcn_operator(adj), x)[1],
                               atol=1e-6)
    with pytest.raises(ParameterError, match="out_dim"):
        AdaGCN(8, 16, 4, residual=True)


def test_filter_projection_once_equals_per_chunk():
    x, _ = _people(n_ids=5, per=6, d=12)
    rng = np.random.default_rng(0)
    ids = np.concatenate([np.arange(30)[:, None], rng.integers(0, 30, (30, 5))], axis=1)
    ids[3, 4:] = -1
    with torch.random.fork_rng():
        torch.manual_seed(0)
        f = AdaptiveFilter(12, 4, 8, k=6)
    once = predict_filter(f, x, ids, chunk=7)
    per_chunk = predict_filter(f, x, ids, chunk=7, proj_bytes=0)
    np.testing.assert_array_equal(once, per_chunk)


def test_train_then_cluster(tmp_path):
    x, y = _people(seed=0)
    meta = get_method("ada-nets").train(x, y, tmp_path / "m", seed=3, **TINY)
    assert (tmp_path / "m" / "ada_filter.safetensors").is_file()
    saved = json.loads((tmp_path / "m" / "ada_gcn.json").read_text())["meta"]
    assert saved["threshold"] == meta["threshold"]
    assert meta["n_val"] + meta["n_fit"] == len(y) and meta["n_val"] > 0
    assert -1.0 <= meta["threshold"] <= 1.0
    assert "f_threshold" in meta["threshold_selection"]
    filt, gcn, m2 = load_adanets(tmp_path / "m")
    assert isinstance(filt, SimilarityFilter) and gcn.residual
    assert filt.k == 12 and gcn.in_dim == 24 and m2["top_n"] == 16

    xt, yt = _people(seed=1)  # other people
    est = get_method("ada-nets")(model=str(tmp_path / "m"))
    labels = est.fit_predict(xt)
    assert labels.shape == (len(yt),) and labels.min() == 0
    assert est.threshold_ == pytest.approx(meta["threshold"])
    assert est.k_hat_.min() >= 1 and est.k_hat_.max() <= 12
    assert {"structure-space", "filter", "gcn", "partition"} <= set(est.stage_seconds_)
    # clearly separated people: the learned rule recovers them well
    assert evaluate(yt, labels)["bcubed_f"] > 0.8
    knn_labels = get_method("ada-nets")(model=str(tmp_path / "m"), graph="knn").fit_predict(xt)
    assert knn_labels.shape == labels.shape
    # a threshold above every cosine leaves singletons
    single = get_method("ada-nets")(model=str(tmp_path / "m"), threshold=1.0).fit_predict(xt)
    assert len(np.unique(single)) >= len(yt) - 2


def test_train_graph_knn_is_the_plain_knn_ablation(tmp_path):
    """``train --set graph=knn``: the GCN learns on the plain kNN graph (train_graph
    follows graph) and ``fit`` runs on it by default, with the kNN graph's threshold."""
    x, y = _people(seed=0)
    tiny = {key: v for key, v in TINY.items() if key != "train_graph"}
    meta = get_method("ada-nets").train(x, y, tmp_path / "abl", seed=3, graph="knn", **tiny)
    assert meta["graph"] == "knn" and meta["train_graph"] == "knn"
    ref = get_method("ada-nets").train(x, y, tmp_path / "ref", seed=3, graph="knn",
                                       train_graph="knn", **tiny)
    _, g_abl, _ = load_adanets(tmp_path / "abl")
    _, g_ref, _ = load_adanets(tmp_path / "ref")
    for a, b in zip(g_abl.state_dict().values(), g_ref.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)  # trained on the same (kNN) graph
    assert meta["threshold_knn"] == ref["threshold_knn"]

    xt, _ = _people(seed=1)
    est = get_method("ada-nets")(model=str(tmp_path / "abl"))
    labels = est.fit_predict(xt)
    assert est.graph_ == "knn" and est.k_hat_ is None  # no adaptive filter used
    assert est.threshold_ == pytest.approx(meta["threshold_knn"])
    explicit = get_method("ada-nets")(model=str(tmp_path / "abl"), graph="knn").fit_predict(xt)
    np.testing.assert_array_equal(labels, explicit)
    over = get_method("ada-nets")(model=str(tmp_path / "abl"), graph="adaptive")
    over.fit(xt)
    assert over.graph_ == "adaptive" and over.k_hat_ is not None
    assert over.threshold_ == pytest.approx(meta["threshold"])
    # default training: the adaptive graph in training and at inference
    dflt = get_method("ada-nets").train(x, y, tmp_path / "d", seed=3, **tiny)
    assert dflt["graph"] == "adaptive" and dflt["train_graph"] == "adaptive"
    assert get_method("ada-nets")(model=str(tmp_path / "d")).fit(xt).graph_ == "adaptive"
    with pytest.raises(ParameterError, match="graph"):
        get_method("ada-nets").train(x, y, tmp_path / "bad", graph="full", **tiny)
    with pytest.raises(ParameterError, match="train_graph"):
        get_method("ada-nets").train(x, y, tmp_path / "bad", train_graph="full", **tiny)


def test_errors(tmp_path):
    x, y = _people(seed=0)
    with pytest.raises(ParameterError, match="model"):
        get_method("ada-nets")().fit(x)
    with pytest.raises(ParameterError, match="unknown parameter"):
        get_method("ada-nets").train(x, y, tmp_path / "m", bogus=1)
    with pytest.raises(ParameterError, match="graph"):
        get_method("ada-nets")(model=str(tmp_path), graph="full").fit(x)
    meta = get_method("ada-nets").train(x, y, tmp_path / "m", **{
        **TINY, "gcn_steps": 2, "filter_steps": 2, "train_graph": "adaptive",
        "filter_inputs": "features", "filter_optimizer": "sgd", "filter_lr": 0.01,
        "gcn_residual": False, "gcn_loss": "allmax", "gcn_optimizer": "sgd", "gcn_lr": 0.1})
    assert meta["train_graph"] == "adaptive"  # the original's recipe runs end to end
    filt, gcn, _ = load_adanets(tmp_path / "m")
    assert isinstance(filt, AdaptiveFilter) and not gcn.residual
    with pytest.raises(ParameterError, match="filter_inputs"):
        get_method("ada-nets").train(x, y, tmp_path / "m2", filter_inputs="pixels")
    with pytest.raises(InputError, match="dimension"):
        get_method("ada-nets")(model=str(tmp_path / "m")).fit(x[:, :20] / np.linalg.norm(
            x[:, :20], axis=1, keepdims=True))


def test_cli_train_then_cluster(tmp_path):
    from click.testing import CliRunner

    from faceclust.cli import main

    x, y = _people(seed=0)
    xt, yt = _people(seed=1)
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "y.meta", y, fmt="%d")
    np.save(tmp_path / "xt.npy", xt)
    np.savetxt(tmp_path / "yt.meta", yt, fmt="%d")
    sets = [a for kv in TINY.items() for a in ("--set", f"{kv[0]}={kv[1]}")]
    runner = CliRunner()
    r = runner.invoke(main, ["train", "--method", "ada-nets", str(tmp_path / "x.npy"),
                             str(tmp_path / "y.meta"), "--out", str(tmp_path / "m"), *sets])
    assert r.exit_code == 0, r.output
    info = json.loads((tmp_path / "m" / "training.json").read_text())
    assert info["method"] == "ada-nets" and info["params"]["gcn_steps"] == 30
    r = runner.invoke(main, ["cluster", str(tmp_path / "xt.npy"), "--method", "ada-nets",
                             "--model", str(tmp_path / "m"), "--out", str(tmp_path / "p.meta")])
    assert r.exit_code == 0, r.output
    pred = np.loadtxt(tmp_path / "p.meta", dtype=np.int64)
    assert pred.shape == yt.shape
    assert evaluate(yt, pred)["bcubed_f"] > 0.8
