"""Ada-NETS ("Face Clustering via Adaptive Neighbour Discovery in the Structure Space",
ICLR'22): supervised, both networks trained by one ``AdaNets.train`` call.

Pipeline (``fit``): cosine kNN (k = 80) -> structure space (k-reciprocal Jaccard
re-ranking, lambda = 0.3, :func:`~faceclust.stages.refine.structure_space`) ->
Adaptive Filter predicts how many re-ranked candidates each node keeps (``k_hat``) ->
Ada-NETS graph ``row_normalize(max(S, S^T) + I)`` over the kept candidates ->
GCN -> enhanced features -> pairs among each node's ``top_n = 121`` nearest in the
enhanced space with cosine ``>= threshold`` -> connected components (the rule the
original's crashing ``cluster.py`` intended).

Threshold. The original uses 0.96 on MS-Celeb-1M GCN features. ``train`` holds out a
validation split of the *training* identities (``val_fraction``, by person), trains
both networks on the rest and chooses the threshold maximising pairwise F on the
validation people (:func:`choose_threshold`); ``fit`` uses it when
``threshold=None`` (default). See docs/supervised.md (Ada-NETS) for the numbers
behind this default.

Training recipe (docs/adanets.md has the numbers). The Adaptive Filter reads each
candidate's ``(1 - nd, cos)`` (``filter_inputs="similarities"``, default; the
original's 512-d feature LSTM, ``"features"``, costs ~2 s a step on one core and its
relative-error loss drives every k_hat to 1) and learns ``log k*``; the GCN is
residual (it starts as the parameter-free two-hop mean over the graph, which on the
true-k* graph already clusters unseen LFW people at pairwise F 0.99) and is trained
with Adam on a hinge over every violating pair of a batch of 4 seeds x 128 kNN
neighbours.

Training graph. The original trains the GCN on a plain cosine 256-NN graph and
runs it on the adaptive graph (``train_graph="knn"``); ``train_graph="adaptive"``
(default) aggregates on the Ada-NETS graph built from the filter's own predictions
instead (batches are sampled on the kNN graph either way). On unseen LFW people
(dlib) the mismatch hurt: pairwise F 0.059 with it, 0.923 without (same filter;
docs/adanets.md), so it is not the default.
Ablation: the plain kNN graph instead of the adaptive one. ``graph="knn"`` at
``fit`` replaces the adaptive graph by the plain cosine ``train_k``-NN graph for
one run; training with ``graph="knn"`` (``faceclust train --set graph=knn``)
makes the whole model the ablation: the GCN is trained on the plain kNN graph
(``train_graph`` follows ``graph`` unless given) and ``fit`` runs on it by
default, with the threshold chosen for that graph.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import numpy as np

from .._validation import check_features, check_labels
from ..errors import InputError, ParameterError
from ..knn import KnnGraph, build_knn
from ..stages.neighbours import (
    adaptive_keep,
    filter_targets,
    similarity_adjacency,
    threshold_components,
)
from ..stages.refine import STRUCTURE_LAMBDA, structure_space
from ._base import BaseClusterer, Constraint, OneOf, Param, check_param, register
from ._modeldir import model_dir

__all__ = ["ADANETS_TRAIN_DEFAULTS", "AdaNets", "choose_threshold"]

#: Training defaults, sized for a 2-core CPU (original: 40,000 filter steps of 1,024
#: nodes and 35,000 GCN steps on a GPU). ``filter_inputs="features"`` with
#: ``filter_optimizer="sgd", filter_lr=0.01, filter_hidden=64, filter_mlp=512`` and
#: ``gcn_residual=False, gcn_loss="allmax", gcn_optimizer="sgd", gcn_lr=0.1,
#: gcn_seeds=1`` is the original's recipe (see docs/adanets.md).
ADANETS_TRAIN_DEFAULTS: dict[str, Any] = {
    "k": 80, "lam": STRUCTURE_LAMBDA, "beta": 0.5, "graph": "adaptive", "train_graph": None,
    "train_k": 256,
    "filter_inputs": "similarities", "filter_hidden": 32, "filter_mlp": 64,
    "filter_steps": 300, "filter_batch": 512, "filter_lr": 0.003, "filter_optimizer": "adam", "gcn_hidden": 512, "gcn_out": 512,
    "gcn_steps": 300, "gcn_lr": 0.001, "gcn_optimizer": "adam", "gcn_sample": 128, "gcn_seeds": 4,
    "gcn_residual": True, "gcn_loss": "hinge", "gcn_pmargin": 0.9, "gcn_nmargin": 0.5,
    "weighted": False, "top_n": 121, "val_fraction": 0.2,
}
ORIGINAL_THRESHOLD = 0.96
GRAPHS = ("adaptive", "knn")


def _graph(x: np.ndarray, k: int, knn: KnnGraph | None = None) -> KnnGraph:
    k = min(k, x.shape[0] - 1) if knn is None else min(k, knn.k)
    if knn is not None:
        return knn.truncate(k)
    return build_knn(x, k=max(2, k))


def enhanced_features(
    filt, gcn, x: np.ndarray, *, k: int, lam: float, graph: str, knn_k: int,
    weighted: bool = False, knn: KnnGraph | None = None, times: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """GCN features of ``x`` on the adaptive (or plain kNN) graph; also ``k_hat`` (adaptive)."""
    from ..nn.adanets import predict_gcn, predict_k

    times = {} if times is None else times
    t0 = time.perf_counter()
    k_hat = None
    if graph == "adaptive":
        g = _graph(x, k, knn)
        times["knn"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ss_ids, nd = structure_space(g, lam)
        times["structure-space"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        k_hat = predict_k(filt, x, ss_ids, nd)
        times["filter"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        adj = similarity_adjacency(ss_ids, 1.0 - nd, keep=adaptive_keep(k_hat, ss_ids.shape[1]))
    else:
        g = _graph(x, knn_k, knn)
        times["knn"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        adj = similarity_adjacency(g.ids, g.sims)
    feat = predict_gcn(gcn, x, adj, weighted=weighted)
    times["gcn"] = time.perf_counter() - t0
    return feat, k_hat


def choose_threshold(
    feat: np.ndarray, labels: np.ndarray, top_n: int, *, n_grid: int = 60
) -> tuple[float, float, KnnGraph]:
    """The final rule's cosine threshold maximising pairwise F on labelled ``feat``.

    Candidates: ``n_grid`` quantiles of the kNN similarities (top ``top_n``,
    self excluded), so the grid follows the feature space's scale. Ties go to
    the highest threshold. Returns ``(threshold, F, feature kNN graph)``.
    """
    from ..metrics import pairwise

    g = build_knn(feat, k=max(2, min(top_n, feat.shape[0] - 1)))
    present = g.sims[:, 1:][g.ids[:, 1:] >= 0]
    grid = np.unique(np.quantile(present, np.linspace(0.0, 1.0, n_grid)))
    best_t, best_f = ORIGINAL_THRESHOLD, -1.0
    for t in grid[::-1]:
        f = pairwise(labels, threshold_components(g.ids, g.sims, float(t)))[2]
        if f > best_f + 1e-12:
            best_t, best_f = float(t), float(f)
    return best_t, best_f, g


@register("ada-nets")
class AdaNets(BaseClusterer):
    """Ada-NETS: structure space, adaptive neighbours, GCN, threshold rule (needs model=DIR).

    Parameters
    ----------
    model : str
        Model directory written by ``AdaNets.train`` / ``faceclust train --method ada-nets``.
    k, lam : int, float or None
        Structure-space candidates (self included) and cosine weight; None = as trained (80, 0.3).
    graph : {"adaptive", "knn"} or None
        GCN graph at inference: the Ada-NETS graph or the plain cosine kNN graph
        of ``knn_k`` (the ablation; the original's training graph). None (default):
        the graph the model was trained for (``train --set graph=...``; "adaptive").
    knn_k : int or None
        k of the plain kNN graph (None = as trained, 256).
    threshold : float or None
        Cosine threshold of the final rule on the enhanced features; None = the
        value chosen on validation people at training time (else 0.96).
    top_n : int
        Neighbours of each node (self included) the final rule looks at (121).
    """

    needs_model: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "k": Param(int, 2, optional=True),
        "lam": Param((int, float), 0.0, 1.0, optional=True),
        "graph": OneOf((*GRAPHS, None)),
        "knn_k": Param(int, 2, optional=True),
        "threshold": Param((int, float), -1.0, 1.0, optional=True),
        "top_n": Param(int, 2),
    }

    def __init__(self, model: str | None = None, k: int | None = None,
                 lam: float | None = None, graph: str | None = None, knn_k: int | None = None,
                 threshold: float | None = None, top_n: int = 121) -> None:
        self.model = model
        self.k = k
        self.lam = lam
        self.graph = graph
        self.knn_k = knn_k
        self.threshold = threshold
        self.top_n = top_n

    def _validate_params(self) -> None:
        if self.model is not None and not isinstance(self.model, str | os.PathLike):
            raise ParameterError(f"model must be a directory path, got {self.model!r}")
        super()._validate_params()

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        from ..nn.adanets import load_adanets

        directory = model_dir(self.model, self.method_name)
        if x is None:
            raise InputError("ada-nets: features X are required (the networks read them)")
        with self._stage("load"):
            filt, gcn, meta = load_adanets(directory)
        if x.shape[1] != gcn.in_dim:
            raise InputError(f"ada-nets: features have dimension {x.shape[1]} but the model in "
                             f"{directory} was trained on dimension {gcn.in_dim}")
        if x.shape[0] < 3:
            return np.arange(x.shape[0], dtype=np.int64)
        k = int(self.k if self.k is not None else meta.get("k", 80))
        lam = float(self.lam if self.lam is not None else meta.get("lam", STRUCTURE_LAMBDA))
        knn_k = int(self.knn_k if self.knn_k is not None else meta.get("train_k", 256))
        graph = self.graph if self.graph is not None else meta.get("graph", "adaptive")
        self.graph_ = graph
        times: dict[str, float] = {}
        feat, k_hat = enhanced_features(
            filt, gcn, x, k=k, lam=lam, graph=graph, knn_k=knn_k,
            weighted=bool(meta.get("weighted", False)), knn=knn, times=times)
        for name, secs in times.items():
            self.stage_seconds_[name] = self.stage_seconds_.get(name, 0.0) + secs
        self.k_hat_ = k_hat
        key = "threshold" if graph == "adaptive" else "threshold_knn"
        th = self.threshold if self.threshold is not None else meta.get(key, ORIGINAL_THRESHOLD)
        self.threshold_ = float(th)
        with self._stage("final-knn"):
            g2 = build_knn(feat, k=max(2, min(self.top_n, x.shape[0] - 1)))
        with self._stage("partition"):
            return threshold_components(g2.ids, g2.sims, self.threshold_, self.top_n)

    # ---------------------------------------------------------------- training
    @classmethod
    def train(cls, X: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike, *,
              seed: int = 42, **params: Any) -> dict[str, Any]:
        """Train the Adaptive Filter and the GCN on labelled ``X``; save both into ``out_dir``.

        Parameters are the keys of :data:`ADANETS_TRAIN_DEFAULTS`. With
        ``val_fraction > 0`` (default 0.2) that share of the training
        *identities* is held out: the networks learn on the rest and the final
        rule's threshold is chosen on the held-out people (pairwise F), for the
        adaptive graph (``threshold``) and the plain kNN graph (``threshold_knn``).
        ``val_fraction=0`` trains on everything and keeps the original 0.96.
        ``graph`` is the graph the model runs on by default ("adaptive"; "knn":
        the plain-kNN ablation); the GCN trains on ``train_graph`` (None: the
        same as ``graph``; "knn" with ``graph="adaptive"`` is the original's
        train/test mismatch). Returns the JSON-able meta written into ``out_dir/ada_gcn.json``.
        """
        from ..nn.adanets import (
            predict_k,
            save_adanets,
            train_filter,
            train_gcn,
            train_sim_filter,
        )
        from ..stages.confidence import split_by_identity

        unknown = sorted(set(params) - set(ADANETS_TRAIN_DEFAULTS))
        if unknown:
            raise ParameterError(f"train ada-nets: unknown parameter(s) {', '.join(unknown)}; "
                                 f"known: {', '.join(sorted(ADANETS_TRAIN_DEFAULTS))}")
        p = {**ADANETS_TRAIN_DEFAULTS, **params}
        for name in ("k", "train_k", "top_n"):
            check_param(name, p[name], int, 2)
        for name in ("filter_hidden", "filter_mlp", "filter_steps", "filter_batch", "gcn_hidden",
                     "gcn_out", "gcn_steps", "gcn_sample"):
            check_param(name, p[name], int, 1)
        check_param("lam", p["lam"], (int, float), 0.0, 1.0)
        check_param("beta", p["beta"], (int, float), 0.0, lo_open=True)
        check_param("val_fraction", p["val_fraction"], (int, float), 0.0, 1.0, hi_open=True)
        check_param("filter_lr", p["filter_lr"], (int, float), 0.0, lo_open=True)
        check_param("gcn_lr", p["gcn_lr"], (int, float), 0.0, lo_open=True)
        check_param("weighted", p["weighted"], bool)
        check_param("gcn_residual", p["gcn_residual"], bool)
        check_param("gcn_seeds", p["gcn_seeds"], int, 1)
        check_param("gcn_pmargin", p["gcn_pmargin"], (int, float), -1.0, 1.0)
        check_param("gcn_nmargin", p["gcn_nmargin"], (int, float), -1.0, 1.0)
        for name, options in (("filter_inputs", ("similarities", "features")),
                              ("filter_optimizer", ("sgd", "adam")),
                              ("gcn_optimizer", ("sgd", "adam")), ("gcn_loss", ("allmax", "hinge"))):
            if p[name] not in options:
                raise ParameterError(f"{name} must be one of {', '.join(options)}, "
                                     f"got {p[name]!r}")
        for name in ("graph", "train_graph"):
            if p[name] not in GRAPHS and (name == "graph" or p[name] is not None):
                raise ParameterError(f"{name} must be one of {', '.join(GRAPHS)}, "
                                     f"got {p[name]!r}")
        if p["train_graph"] is None:  # the GCN learns on the graph it will run on
            p["train_graph"] = p["graph"]
        x = check_features(X, source="features")
        y = check_labels(labels, x.shape[0], source="labels")
        if x.shape[0] < 4:
            raise InputError(f"train ada-nets: needs at least 4 samples, got {x.shape[0]}")
        t_all = time.perf_counter()
        if p["val_fraction"] > 0:
            fit_idx, val_idx = split_by_identity(y, float(p["val_fraction"]), seed=seed)
            if len(fit_idx) < 4 or len(val_idx) < 3:
                raise InputError("train ada-nets: too few samples for a validation split; "
                                 "pass val_fraction=0")
        else:
            fit_idx, val_idx = np.arange(x.shape[0]), np.zeros(0, dtype=np.int64)
        xf, yf = x[fit_idx], y[fit_idx]
        k = min(int(p["k"]), xf.shape[0] - 1)
        secs: dict[str, float] = {}

        t0 = time.perf_counter()
        g = build_knn(xf, k=max(2, min(max(k, int(p["train_k"])), xf.shape[0] - 1)))
        ss_ids, nd = structure_space(g, float(p["lam"]), k)
        target = filter_targets(ss_ids, yf, float(p["beta"]))
        secs["prepare"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        if p["filter_inputs"] == "similarities":
            filt, fmeta = train_sim_filter(
                xf, ss_ids, nd, target * ss_ids.shape[1], hidden_dim=p["filter_hidden"],
                mlp_dim=p["filter_mlp"], steps=p["filter_steps"], batch_size=p["filter_batch"],
                lr=float(p["filter_lr"]), seed=seed)
        else:
            filt, fmeta = train_filter(
                xf, ss_ids, target, hidden_dim=p["filter_hidden"], mlp_dim=p["filter_mlp"],
                steps=p["filter_steps"], batch_size=p["filter_batch"], lr=float(p["filter_lr"]),
                optimizer=p["filter_optimizer"], seed=seed)
        secs["filter"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        tk = min(int(p["train_k"]), g.k)
        order_adj = similarity_adjacency(g.ids[:, :tk], g.sims[:, :tk])
        if p["train_graph"] == "knn":
            adj = order_adj
        else:
            k_hat = predict_k(filt, xf, ss_ids, nd)
            adj = similarity_adjacency(ss_ids, 1.0 - nd, keep=adaptive_keep(k_hat, k))
        gcn, gmeta = train_gcn(
            xf, yf, adj, hidden_dim=p["gcn_hidden"], out_dim=p["gcn_out"], steps=p["gcn_steps"],
            sample=p["gcn_sample"], seeds_per_step=p["gcn_seeds"], lr=float(p["gcn_lr"]),
            weighted=p["weighted"], seed=seed, order_adj=order_adj, residual=p["gcn_residual"],
            loss=p["gcn_loss"], pmargin=float(p["gcn_pmargin"]),
            nmargin=float(p["gcn_nmargin"]), optimizer=p["gcn_optimizer"])
        secs["gcn"] = time.perf_counter() - t0

        k_true = target * ss_ids.shape[1]
        meta: dict[str, Any] = {
            **{key: p[key] for key in ("lam", "beta", "graph", "train_graph", "train_k",
                                       "weighted", "top_n", "val_fraction")},
            "k": int(ss_ids.shape[1]), "seed": seed, "n_train": int(x.shape[0]),
            "n_fit": int(len(fit_idx)), "n_val": int(len(val_idx)),
            "n_identities": int(len(np.unique(y))),
            "k_star_mean": round(float(k_true.mean()), 2),
            "filter": fmeta, "gcn": gmeta,
            "threshold": ORIGINAL_THRESHOLD, "threshold_knn": ORIGINAL_THRESHOLD,
        }
        if len(val_idx):
            t0 = time.perf_counter()
            xv, yv = x[val_idx], y[val_idx]
            sel = {"metric": "pairwise F", "on": f"{len(val_idx)} held-out training faces of "
                   f"{len(np.unique(yv))} identities"}
            for graph, key in (("adaptive", "threshold"), ("knn", "threshold_knn")):
                feat, _ = enhanced_features(filt, gcn, xv, k=k, lam=float(p["lam"]), graph=graph,
                                            knn_k=int(p["train_k"]), weighted=p["weighted"])
                th, f, _ = choose_threshold(feat, yv, int(p["top_n"]))
                meta[key] = round(th, 6)
                sel[f"f_{key}"] = round(f, 4)
            secs["select"] = time.perf_counter() - t0
            meta["threshold_selection"] = sel
        secs["total"] = time.perf_counter() - t_all
        meta["seconds"] = {key: round(v, 2) for key, v in secs.items()}
        save_adanets(out_dir, filt, gcn, meta)
        return meta
