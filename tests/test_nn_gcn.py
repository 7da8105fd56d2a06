"""Tests for faceclust.nn (adjacency, GraphConv, checkpoints, GCN-E batches) and gcn-v/gcn-ve."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
from click.testing import CliRunner

torch = pytest.importorskip("torch")  # the learn extra: faceclust[learn]

from faceclust.cli import main  # noqa: E402
from faceclust.errors import InputError, ParameterError  # noqa: E402
from faceclust.knn import build_knn  # noqa: E402
from faceclust.methods import get_method  # noqa: E402
from faceclust.methods._gcn import train_gcn_e_model, train_gcn_v_model  # noqa: E402
from faceclust.metrics import evaluate  # noqa: E402
from faceclust.nn.checkpoint import check_config, load_checkpoint  # noqa: E402
from faceclust.nn.gcn_e import GCNE, build_batch, edge_candidates  # noqa: E402
from faceclust.nn.gcn_v import GCNV, load_gcn_v, save_gcn_v  # noqa: E402
from faceclust.nn.layers import GraphConv, knn_adjacency, row_normalize, to_torch_sparse  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny matrices: one torch thread is faster and immune to CPU oversubscription."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _unit(x):
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _clusters(n_per=30, n_clusters=3, d=16, noise=0.15, seed=0):
    rng = np.random.default_rng(seed)
    centres = _unit(rng.normal(size=(n_clusters, d)))
    labels = np.repeat(np.arange(n_clusters), n_per)
    # varied spread inside a cluster so confidences differ
    scale = noise * rng.uniform(0.3, 1.5, size=(len(labels), 1))
    x = centres[labels] + scale * rng.normal(size=(len(labels), d))
    return _unit(x), labels


# ---------------------------------------------------------------- adjacency
def test_knn_adjacency_normalised_symmetric_pattern():
    x, _ = _clusters(n_per=10, d=8)
    g = build_knn(x, k=5)
    a = knn_adjacency(g.ids, g.sims, min_sim=0.0)
    np.testing.assert_allclose(np.asarray(a.sum(axis=1)).ravel(), 1.0, rtol=1e-5)
    pattern = (a != 0).astype(np.int8)
    assert (pattern != pattern.T).nnz == 0
    assert np.all(a.diagonal() > 0)


def test_knn_adjacency_hand_values():
    ids = np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]])
    sims = np.array([[1, 0.5, -0.2], [1, 0.5, 0.3], [1, -0.2, 0.3]], dtype=np.float32)
    a = knn_adjacency(ids, sims, min_sim=0.0).toarray()
    # S = max(S, S^T) + I, negative sims dropped:
    # row0: [1, .5, 0] / 1.5 ; row1: [.5, 1, .3] / 1.8 ; row2: [0, .3, 1] / 1.3
    expect = np.array([[1, 0.5, 0], [0.5, 1, 0.3], [0, 0.3, 1]])
    expect = expect / expect.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(a, expect, rtol=1e-6)
    # an asymmetric kNN entry becomes symmetric (max of both directions)
    ids2 = np.array([[0, 1], [1, 2], [2, 1]])
    sims2 = np.array([[1, 0.6], [1, 0.8], [1, 0.8]], dtype=np.float32)
    a2 = knn_adjacency(ids2, sims2).toarray()
    assert a2[1, 0] > 0 and a2[0, 1] > 0
    np.testing.assert_allclose(a2[1], np.array([0.6, 1, 0.8]) / 2.4, rtol=1e-6)


def test_row_normalize_keeps_zero_rows():
    a = sp.csr_matrix(np.array([[0, 0], [2, 2]], dtype=np.float32))
    np.testing.assert_allclose(row_normalize(a).toarray(), [[0, 0], [0.5, 0.5]])


def test_graphconv_formula_and_precomputed_agg():
    torch.manual_seed(0)
    conv = GraphConv(3, 4)
    h = torch.randn(5, 3)
    dense = torch.rand(5, 5)
    expect = torch.relu(torch.cat([h, dense @ h], 1) @ conv.weight + conv.bias)
    torch.testing.assert_close(conv(h, dense), expect)
    adj = to_torch_sparse(sp.csr_matrix(dense.numpy()))
    torch.testing.assert_close(conv(h, adj), expect)
    torch.testing.assert_close(conv(h, agg=dense @ h), expect)
    assert conv(h, dense).shape == (5, 4)


# ---------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(1)
    model = GCNV(8, hidden_dim=6, mlp_dim=5)
    save_gcn_v(model, tmp_path, {"k": 7, "losses": [0.5]})
    loaded, meta = load_gcn_v(tmp_path)
    assert meta["k"] == 7
    x = torch.randn(4, 8)
    adj = torch.eye(4)
    with torch.no_grad():
        for a, b in zip(model(x, adj), loaded(x, adj), strict=True):
            torch.testing.assert_close(a, b)
    doc = json.loads((tmp_path / "gcn_v.json").read_text())
    assert doc["config"] == {"in_dim": 8, "hidden_dim": 6, "mlp_dim": 5}
    assert doc["tensors"]["conv.weight"] == [16, 6]
    assert not list(tmp_path.glob("*.tmp*"))


def _edit_config(path, **changes):
    doc = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            doc["config"].pop(key)
        else:
            doc["config"][key] = value
    path.write_text(json.dumps(doc))


def test_checkpoint_config_and_shape_mismatch(tmp_path):
    model = GCNV(8, hidden_dim=6, mlp_dim=5)
    save_gcn_v(model, tmp_path, {})
    cfg = tmp_path / "gcn_v.json"
    original = cfg.read_text()
    _edit_config(cfg, in_dim=9)  # model built with in_dim 9 cannot take 8-d weights
    with pytest.raises(InputError, match="conv.weight"):
        load_gcn_v(tmp_path)
    cfg.write_text(original)
    _edit_config(cfg, hidden_dim="six")
    with pytest.raises(ParameterError, match="hidden_dim"):
        load_gcn_v(tmp_path)
    cfg.write_text(original)
    _edit_config(cfg, extra=1)
    with pytest.raises(ParameterError, match="unknown"):
        load_gcn_v(tmp_path)
    cfg.write_text(original)
    _edit_config(cfg, mlp_dim=None)
    with pytest.raises(ParameterError, match="missing"):
        load_gcn_v(tmp_path)
    cfg.write_text(original)
    with pytest.raises(ParameterError, match="gcn-v"):
        load_checkpoint(tmp_path, "gcn_v", kind="gcn-e")
    doc = json.loads(original)
    doc["tensors"]["conv.bias"] = [7]
    cfg.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="conv.bias"):
        load_gcn_v(tmp_path)
    cfg.write_text("{not json")
    with pytest.raises(InputError, match="gcn_v.json"):
        load_gcn_v(tmp_path)
    cfg.write_text(original)
    (tmp_path / "gcn_v.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="safetensors"):
        load_gcn_v(tmp_path)
    with pytest.raises(InputError, match="not found"):
        load_gcn_v(tmp_path / "nope")


def test_check_config_list_of_int_widths():
    spec = {"dims": list[int], "rate": float}
    assert check_config({"dims": [4, 2], "rate": 1}, spec, source="m") == {"dims": [4, 2],
                                                                          "rate": 1.0}
    for bad in ([4, True], [4, 2.0], "64", 64):
        with pytest.raises(ParameterError, match="'dims' must be a list of integers"):
            check_config({"dims": bad, "rate": 1.0}, spec, source="m")


@pytest.mark.parametrize("kind", ["gcn_e", "lgcn", "dsgcn"])
def test_saved_widths_must_be_integers(tmp_path, kind):
    """Every model with layer widths refuses a config whose widths are not integers."""
    from faceclust.nn import dsgcn, gcn_e, lgcn

    save, load = {
        "gcn_e": (lambda: gcn_e.save_gcn_e(GCNE(8, dims=[6, 4]), tmp_path, {}),
                  lambda: gcn_e.load_gcn_e(tmp_path)),
        "lgcn": (lambda: lgcn.save_lgcn(lgcn.LGCN(8, dims=[6, 4]), tmp_path, {}),
                 lambda: lgcn.load_lgcn(tmp_path)),
        "dsgcn": (lambda: dsgcn.save_dsgcn(dsgcn.DSGCN(8, dims=[6, 4]), tmp_path, "d", {}),
                  lambda: dsgcn.load_dsgcn(tmp_path, "d")),
    }[kind]
    save()
    load()  # as saved: fine
    _edit_config(next(tmp_path.glob("*.json")), dims=[6, "4"])
    with pytest.raises(ParameterError, match="list of integers"):
        load()


# ---------------------------------------------------------------- GCN-E batches
def test_edge_candidates_and_block_adjacency():
    x, _ = _clusters(n_per=12, n_clusters=2, d=8, seed=3)
    g = build_knn(x, k=8)
    a = knn_adjacency(g.ids, g.sims).tocsr()
    conf = np.linspace(0, 1, len(x)).astype(np.float32)[np.random.default_rng(0).permutation(len(x))]
    cand = edge_candidates(g.ids, g.sims, conf, ignore_ratio=0.3)
    assert len(cand.pivots) > 0
    for p, node in enumerate(cand.pivots):
        c = cand.nodes[cand.ptr[p] : cand.ptr[p + 1]]
        assert len(c) >= 2 and np.all(conf[c] > conf[node])
        row = [j for j in g.ids[node] if conf[j] > conf[node]]
        assert c.tolist() == row  # kNN order
        assert cand.peak[node] == -1
    loc = np.full(len(x), -1, dtype=np.int64)
    which = np.arange(min(3, len(cand.pivots)))
    xb, ab, ptr, pos = build_batch(cand, which, x, a, loc)
    assert np.all(loc == -1)
    dense = ab.to_dense().numpy()
    for b, p in enumerate(which):
        c = cand.nodes[cand.ptr[p] : cand.ptr[p + 1]]
        expect = row_normalize(a[c][:, c]).toarray()
        blk = slice(ptr[b], ptr[b + 1])
        np.testing.assert_allclose(dense[blk, blk], expect, rtol=1e-5)
        np.testing.assert_allclose(xb.numpy()[blk], x[c] - x[cand.pivots[p]], rtol=1e-6)
    # no entries between different sub-graphs
    off = dense.copy()
    for b in range(len(which)):
        off[ptr[b] : ptr[b + 1], ptr[b] : ptr[b + 1]] = 0
    assert not off.any()
    # the non-pivots: ignored or single-candidate nodes link to the nearest higher one
    for node in np.flatnonzero(cand.peak >= 0):
        row = [j for j in g.ids[node] if conf[j] > conf[node]]
        assert cand.peak[node] == row[0]


def test_gcne_output_shape():
    model = GCNE(6, dims=[5, 4], mlp_dim=3)
    out = model(torch.randn(7, 6), torch.eye(7))
    assert out.shape == (7, 2)
    torch.testing.assert_close(out.exp().sum(1), torch.ones(7))


# ---------------------------------------------------------------- end to end
SMALL_V = {"k": 10, "steps": 150, "hidden_dim": 32, "mlp_dim": 32, "batch_size": None, "lr": 0.05}
SMALL_E = {"k": 20, "epochs": 3, "batch_size": 8, "dims": [32, 32], "mlp_dim": 16, "lr": 0.01,
           "cross_fit": 0}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("gcn")
    x, y = _clusters(n_per=30, n_clusters=3, seed=0)
    vmeta = train_gcn_v_model(x, y, out, seed=5, **SMALL_V)
    emeta = train_gcn_e_model(x, y, out, seed=5, **SMALL_E)
    return out, vmeta, emeta


def test_training_reduces_loss_and_is_deterministic(trained, tmp_path):
    out, vmeta, emeta = trained
    assert vmeta["losses"][-1] < 0.5 * vmeta["losses"][0]
    assert emeta["losses"][-1] < emeta["losses"][0]
    x, y = _clusters(n_per=30, n_clusters=3, seed=0)
    train_gcn_v_model(x, y, tmp_path, seed=5, **SMALL_V)
    a, _ = load_gcn_v(out)
    b, _ = load_gcn_v(tmp_path)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb and torch.equal(va, vb)


@pytest.mark.parametrize("partition", ["tree", "linkage"])
@pytest.mark.parametrize("method", ["gcn-v", "gcn-ve"])
def test_end_to_end_separates_clusters(trained, method, partition):
    out, _, _ = trained
    x, y = _clusters(n_per=25, n_clusters=2, seed=11)  # unseen identities
    est = get_method(method)(model=str(out), tau=0.7, partition=partition)
    labels = est.fit_predict(x)
    m = evaluate(y, labels)
    assert m["pairwise_precision"] == 1.0
    assert m["bcubed_f"] > 0.8
    assert est.confidence_.shape == (len(x),)


def test_linkage_partition_refuses_a_bridge_the_tree_keeps():
    """One wrong node -> peak edge joins two people in the tree at any tau below its
    cosine; auto's average linkage (label-free threshold) keeps them apart."""
    from faceclust.methods._gcn import linkage_partition
    from faceclust.stages.confidence import deduce_tree

    x, y = _clusters(n_per=20, n_clusters=2, d=16, noise=0.05, seed=3)
    a, b = np.flatnonzero(y == 0), np.flatnonzero(y == 1)
    peak = np.full(len(y), -1)
    peak[a[1:]], peak[b[1:]] = a[0], b[0]  # everyone points at its person's first photo
    peak[b[0]] = a[0]  # the bridge: B's root -> A's root
    sim = np.einsum("ij,ij->i", x, x[np.maximum(peak, 0)]).astype(np.float32)
    bridge = float(sim[b[0]])
    assert len(np.unique(deduce_tree(peak, sim, bridge - 1e-3))) == 1
    labels, est = linkage_partition(x, peak)
    assert evaluate(y, labels)["pairwise_f"] == 1.0
    assert est.threshold > bridge
    # no edges at all: nothing can join (the attach step needs a cluster to join)
    alone, _ = linkage_partition(x, np.full(len(y), -1))
    assert len(np.unique(alone)) == len(y)


def test_partition_parameter(trained):
    out, _, _ = trained
    x, _ = _clusters(n_per=25, n_clusters=2, seed=11)
    est = get_method("gcn-v")(model=str(out)).fit(x)  # default: linkage
    assert est.partition == "linkage" and est.tau_used_ == pytest.approx(est.estimate_.threshold)
    for method in ("gcn-v", "gcn-ve"):
        with pytest.raises(ParameterError, match="partition"):
            get_method(method)(model=str(out), partition="chain").fit(x)


def test_gcn_v_first_pass_threshold(trained):
    out, _, _ = trained
    x, y = _clusters(n_per=25, n_clusters=2, seed=11)
    labels = get_method("gcn-v")(model=str(out), use_gcn_feat=False, tau_0=0.6,
                                 partition="tree").fit_predict(x)
    assert evaluate(y, labels)["pairwise_precision"] == 1.0
    # a threshold above every similarity leaves only singletons
    single = get_method("gcn-v")(model=str(out), use_gcn_feat=False, tau_0=1.0,
                                 partition="tree").fit_predict(x)
    assert len(np.unique(single)) == len(x)


def test_estimator_errors(trained, tmp_path):
    out, _, _ = trained
    x, _ = _clusters(n_per=10, n_clusters=2, seed=1)
    with pytest.raises(ParameterError, match="model=DIR"):
        get_method("gcn-v")().fit(x)
    with pytest.raises(InputError, match="not found"):
        get_method("gcn-v")(model=str(tmp_path / "missing")).fit(x)
    with pytest.raises(InputError, match="dimension"):
        get_method("gcn-v")(model=str(out)).fit(np.hstack([x, x]))
    with pytest.raises(ParameterError, match="tau"):
        get_method("gcn-ve")(model=str(out), tau=2.0).fit(x)
    save_gcn_v(GCNV(16, hidden_dim=32, mlp_dim=32), tmp_path, {})
    with pytest.raises(InputError, match="gcn_e"):  # GCN-V only: no GCN-E checkpoint
        get_method("gcn-ve")(model=str(tmp_path)).fit(x)
    with pytest.raises(ParameterError, match="unknown"):
        train_gcn_v_model(x, np.repeat([0, 1], 10), tmp_path, stepz=3)
    with pytest.raises(InputError, match="folds"):
        train_gcn_e_model(x, np.zeros(20, int), out, cross_fit=2)


def test_training_selects_thresholds(trained):
    out, vmeta, _ = trained
    assert -1.0 <= vmeta["tau_0"] <= 1.0 and -1.0 <= vmeta["tau"] <= 1.0
    assert vmeta["tau_selection"]["f_tau"] > 0.9
    assert "cross-fitted" in vmeta["tau_selection"]["on"]
    x, y = _clusters(n_per=25, n_clusters=2, seed=11)
    # tau=None: the training-time choice (GCN-feature space)
    est = get_method("gcn-v")(model=str(out), use_gcn_feat=True, partition="tree")
    labels = est.fit_predict(x)
    assert est.tau_used_ == pytest.approx(vmeta["tau"])
    assert evaluate(y, labels)["pairwise_precision"] == 1.0
    est0 = get_method("gcn-v")(model=str(out), partition="tree").fit(x)  # input kNN, tau_0
    assert est0.tau_used_ == pytest.approx(vmeta["tau_0"])
    assert vmeta["link_roots"] is True


def test_gcn_ve_deterministic(trained):
    out, _, _ = trained
    x, _ = _clusters(n_per=25, n_clusters=2, seed=11)
    a = get_method("gcn-ve")(model=str(out), tau=0.7).fit_predict(x)
    b = get_method("gcn-ve")(model=str(out), tau=0.7).fit_predict(x)
    assert np.array_equal(a, b)


def test_cli_train_gcn_ve_one_command_and_reuse(tmp_path):
    """gcn-ve trains both networks in one call; gcn_v=DIR reuses a trained GCN-V."""
    x, y = _clusters(n_per=20, n_clusters=3, seed=2)
    np.save(tmp_path / "x.npy", x)
    (tmp_path / "y.meta").write_text("\n".join(map(str, y)) + "\n")
    runner = CliRunner()
    common = [str(tmp_path / "x.npy"), str(tmp_path / "y.meta")]
    small = ["--set", "k=10", "--set", "steps=30", "--set", "hidden_dim=16", "--set", "mlp_dim=16",
             "--set", "tau_folds=0"]
    r = runner.invoke(main, ["train", "--method", "gcn-v", *common, "--out", str(tmp_path / "v"),
                             *small, "--seed", "3"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["train", "--method", "gcn-ve", *common, "--out", str(tmp_path / "ve"),
                             "--set", f"gcn_v={tmp_path / 'v'}", "--set", "e_k=15",
                             "--set", "e_epochs=1", "--set", "e_dims=[16,16]",
                             "--set", "e_mlp_dim=8", "--set", "e_cross_fit=0"])
    assert r.exit_code == 0, r.output
    a, _ = load_gcn_v(tmp_path / "v")
    b, _ = load_gcn_v(tmp_path / "ve")  # copied, not retrained
    assert all(torch.equal(a.state_dict()[n], b.state_dict()[n]) for n in a.state_dict())
    info = json.loads((tmp_path / "ve" / "training.json").read_text())
    assert info["method"] == "gcn-ve" and info["params"]["e_k"] == 15
    r = runner.invoke(main, ["train", "--method", "gcn-ve", *common, "--out", str(tmp_path / "x2"),
                             "--set", f"gcn_v={tmp_path / 'missing'}"])
    assert r.exit_code == 2 and "GCN-V" in r.output


def test_training_resumes_after_interrupt_to_the_same_model(tmp_path):
    """Ctrl-C mid-training saves a state; the same call continues to the same weights."""
    from faceclust.nn.gcn_v import train_gcn_v
    from faceclust.nn.train import RESUME_DIR, Resume, clear_resume

    x, y = _clusters(n_per=20, n_clusters=3, seed=4)
    params = {"k": 10, "steps": 40, "hidden_dim": 16, "mlp_dim": 16, "batch_size": 16}
    ref, _ = train_gcn_v(x, y, seed=3, **params)
    resume = Resume(tmp_path, "gcn_v", "fp1")
    calls = {"n": 0}
    real = torch.nn.functional.mse_loss

    def flaky(*a, **kw):
        calls["n"] += 1
        if calls["n"] == 17:
            raise KeyboardInterrupt
        return real(*a, **kw)

    torch.nn.functional.mse_loss = flaky
    try:
        with pytest.raises(KeyboardInterrupt):
            train_gcn_v(x, y, seed=3, resume=resume, **params)
    finally:
        torch.nn.functional.mse_loss = real
    state = json.loads((tmp_path / RESUME_DIR / "gcn_v.json").read_text())
    assert state["step"] == 16 and not state["done"]
    again, meta = train_gcn_v(x, y, seed=3, resume=resume, **params)
    for name, v in ref.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], v)
    assert len(meta["losses"]) >= 4
    # a finished state is reused as is; another fingerprint starts afresh
    assert json.loads((tmp_path / RESUME_DIR / "gcn_v.json").read_text())["done"]
    other, _ = train_gcn_v(x, y, seed=3, resume=Resume(tmp_path, "gcn_v", "fp2"),
                           **{**params, "steps": 5})
    assert not torch.equal(other.conv.weight, ref.conv.weight)
    clear_resume(tmp_path)
    assert not (tmp_path / RESUME_DIR).exists()


def test_gcn_ve_input_candidates(trained):
    """candidates="input": GCN-E's candidates from the input kNN; with every node ignored
    (ignore_ratio=1) each node links to its nearest higher-confidence input neighbour."""
    from faceclust.stages.confidence import deduce_tree, find_peaks

    out, _, emeta = trained
    x, y = _clusters(n_per=25, n_clusters=2, seed=11)
    est = get_method("gcn-ve")(model=str(out), candidates="input", ignore_ratio=1.0,
                               partition="tree", tau=-1.0)
    labels = est.fit_predict(x)
    g = build_knn(x, k=min(int(emeta["k"]), len(x) - 1))
    peak, sim = find_peaks(g.ids, g.sims, est.confidence_)
    expect = deduce_tree(peak, sim, -1.0)
    # same partition (labels may be numbered differently)
    pairs = set(zip(labels.tolist(), expect.tolist(), strict=True))
    assert len(pairs) == len(set(labels.tolist())) == len(set(expect.tolist()))
    # with GCN-E deciding the most confident nodes it still separates the two people
    est2 = get_method("gcn-ve")(model=str(out), candidates="input", ignore_ratio=0.5)
    assert evaluate(y, est2.fit_predict(x))["pairwise_precision"] == 1.0
    with pytest.raises(ParameterError, match="candidates"):
        get_method("gcn-ve")(model=str(out), candidates="pixels").fit(x)


def test_train_gcn_v_builds_the_input_knn_once(tmp_path, monkeypatch):
    """tau_folds=0: training and the tau choice share one input kNN (built once at 576K it
    is minutes), and the stored taus are those of the peaks on a freshly built graph."""
    from faceclust.methods import _gcn
    from faceclust.nn import gcn_v as gcn_v_mod
    from faceclust.stages.confidence import choose_tau

    x, y = _clusters(n_per=30, n_clusters=3, seed=1)
    calls = []

    def counting(features, *a, **kw):
        if np.array_equal(np.asarray(features), x):
            calls.append(kw.get("k"))
        return build_knn(features, *a, **kw)

    monkeypatch.setattr(_gcn, "build_knn", counting)
    monkeypatch.setattr(gcn_v_mod, "build_knn", counting)
    meta = train_gcn_v_model(x, y, tmp_path, seed=5, tau_folds=0, **SMALL_V)
    assert calls == [SMALL_V["k"]]
    model, _ = load_gcn_v(tmp_path)
    pk0, pk1 = _gcn._peaks_both(model, x, SMALL_V["k"], 0.0, meta["k_feat"], True)
    assert meta["tau_0"] == round(choose_tau(*pk0, y)[0], 6)
    assert meta["tau"] == round(choose_tau(*pk1, y)[0], 6)
