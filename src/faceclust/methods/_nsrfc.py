"""Chen et al. (ECCV'22) density-peak clustering and NSR-FC (neighbour-structure refinement).

``chen-dpc`` (echoanran/On-Mitigating-Hard-Clusters): kNN -> transformer
similarity of every slot (:mod:`faceclust.nn.chen`), ``d = 1 - p`` -> rows
re-sorted by ``d`` -> NDDe density (first 20 slots, sigma 0.5) -> TPDi distance
(all k slots, sigma 0.05) -> DPC: each node links to its TPDi-nearest
neighbour of density >= its own when TPDi < tau (0.7) -> connected components
(the reference's union-find). Stages: :mod:`faceclust.stages.density`.

``nsr-fc`` (jiacut/NSR-FC), four stages trained in order by one ``train``:

1. k-reciprocal re-ranking: :func:`faceclust.stages.refine.structure_space`
   (the Ada-NETS stage) with ``lam=0`` (pure Jaccard of the expanded
   k-reciprocal sets, as NSR-FC's ``re-ranking.py``);
2. C-GCN feature refinement on two-hop sub-graphs of the re-ranked lists
   (:mod:`faceclust.nn.cgcn`, :mod:`faceclust.stages.subgraphs`);
3. Chen et al.'s transformer similarity on the refined features;
4. LCE density graph + PCENet global connectivity + BFS (connected
   components) on the stage-3 similarities, ``tau_s`` = mean over nodes of
   ``0.7 s(1) + 0.2 s(2) + 0.1 s(3)`` (:func:`~faceclust.stages.density.tau_s_weighted`).

Ambiguities of the reference, resolved here:

* **Which kNN graph stages 3 and 4 use**: the *original* kNN graph of the
  input features (k = ``k``), for both. The reference loads the original
  faiss kNN file when it exists (its README's "get new knn" step is not forced
  by the code); stage 4 must read the same graph as stage 3, and LCENet/PCENet
  read the original features on it.
* **Re-ranking candidates**: the shared stage re-sorts each row's ``k``
  candidates; NSR-FC also scores the neighbours' first 10 neighbours as
  candidates -- not done (the set is not enlarged).
* **Sub-graphs** use the re-ranked lists (hop 1 ``cgcn_k1``, hop 2 ``cgcn_k2``;
  reference 80 / 10, 5 / 3 here for CPU: a 21-node sub-graph instead of
  801); the local adjacency uses the original kNN (first ``cgcn_k_local`` =
  10, cosine weights), as the reference. Training sub-graphs are not filled
  with nearest-class samples (padding is masked instead).
* **tau_s rows**: the refined similarities keep the kNN order, so the three
  largest are found per row (the reference sorts them); self excluded.
* **LCENet / PCENet**: NSR-FC reuses LCE-PCENet's released weights; here they
  are trained by :meth:`LcePce.train` on the same training people (original
  features), with the NSR-FC ``k``.
* **Model selection** of every stage on validation people carved from the
  training people by identity (the reference saves one checkpoint per epoch
  and states no selection rule).

Ablations (one stage removed each; training keyword arguments, stored in the
model, followed at clustering): ``rerank=False`` -- sub-graphs from the
original kNN; ``refine=False`` -- stage 3 on the input features;
``transformer=False`` -- stage 4 reads the cosine of the (refined) features;
``lce=False`` -- stage 4 replaced by Chen et al.'s NDDe/TPDi/DPC on ``1 - s``.
torch is imported only when a model is trained or run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .._validation import check_features, check_labels
from ..errors import InputError, ParameterError
from ..graph import connected_components
from ..knn import KnnGraph
from ..stages.density import (
    density_edges,
    dpc_links,
    lce_density,
    ndde_density,
    sort_rows,
    symmetric_connectivity,
    tau_s_weighted,
    tpdi_distance,
)
from ..stages.refine import structure_space
from ..stages.verify import verify_edges
from ._base import BaseClusterer, Constraint, OneOf, Param, check_param, register
from ._lcepce import (
    LCE_PCE_TRAIN_DEFAULTS,
    check_model_input,
    split_graphs,
    train_lce_pce_split,
)
from ._modeldir import model_dir

__all__ = ["ChenDpc", "NsrFc", "chen_dpc_labels"]

CHEN_CKPT, CGCN_CKPT, NSR_FILE = "chen", "cgcn", "nsrfc.json"
_PRECISIONS = ("fp32", "bf16", "int8")
_STAGES = ("rerank", "refine", "transformer", "lce")


def chen_dpc_labels(ids: np.ndarray, sim: np.ndarray, *, tau: float = 0.7,
                    density_sigma: float = 0.5, density_k: int = 20,
                    tpdi_sigma: float = 0.05) -> tuple[np.ndarray, dict[str, Any]]:
    """Chen et al.'s clustering of a kNN table ``ids`` with same-identity probabilities ``sim``.

    ``d = 1 - sim`` (missing slots inf), rows sorted by ``d``; NDDe density over
    the first ``density_k`` slots; TPDi over all; DPC links (``tau``); connected
    components. Returns labels and a few counts.
    """
    d = np.where(ids >= 0, 1.0 - np.asarray(sim, np.float32), np.inf).astype(np.float32)
    sids, sd = sort_rows(ids, d)
    rho = ndde_density(sids, sd, density_sigma, density_k)
    t = tpdi_distance(sids, sd, tpdi_sigma)
    src, dst, _ = dpc_links(sids, t, rho, tau)
    labels = connected_components(src, dst, len(ids))
    return labels, {"links": int(len(src)), "peaks": int(len(ids) - len(src))}


def _pad_ids(graph: KnnGraph, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``graph``'s ids / sims cut or padded (-1 / -inf) to ``k`` columns."""
    n, kk = graph.ids.shape
    ids = np.full((n, k), -1, dtype=np.int64)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    m = min(k, kk)
    ids[:, :m], sims[:, :m] = graph.ids[:, :m], graph.sims[:, :m]
    return ids, sims


def _chen_kwargs(p: dict[str, Any], prefix: str, seed: int) -> dict[str, Any]:
    g = {n: p[prefix + n] for n in ("width", "depth", "heads", "ff_dim", "dropout", "head_dim",
                                    "epochs", "batch_size", "lr", "weight_decay",
                                    "nodes_per_epoch", "val_nodes")}
    g["dropout"], g["lr"], g["weight_decay"] = (float(g[n]) for n in ("dropout", "lr",
                                                                      "weight_decay"))
    return {**g, "seed": seed, "center": bool(p["center"])}


@register("chen-dpc")
class ChenDpc(BaseClusterer):
    """Chen et al.: learned neighbour similarity, NDDe density, TPDi distance, DPC linking.

    The reference's training loop calls ``optimizer.step()`` twice per batch;
    ours steps once (see :mod:`faceclust.nn.chen`).

    Parameters
    ----------
    model : str
        Model directory from ``faceclust train --method chen-dpc``; the kNN size
        is the model's ``k`` (80 by default), capped at N - 1.
    tau : float
        DPC: link to the nearest denser-or-equal neighbour only when its TPDi
        distance is < tau (0.7).
    density_sigma, density_k : float, int
        NDDe: ``exp(-d / sigma)`` over the first ``density_k`` slots (0.5, 20).
    tpdi_sigma : float
        TPDi transition temperature (0.05).
    batch_size : int
        Nodes per forward pass; bounds memory.
    precision : {"fp32", "bf16", "int8"}
        Inference arithmetic of the similarity model.
    """

    needs_model: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "tau": Param((int, float), 0.0, 2.0),
        "density_sigma": Param((int, float), 0.0, lo_open=True),
        "density_k": Param(int, 1),
        "tpdi_sigma": Param((int, float), 0.0, lo_open=True),
        "batch_size": Param(int, 1),
        "precision": (Param(str), OneOf(_PRECISIONS)),
    }

    def __init__(self, model: str | None = None, tau: float = 0.7, density_sigma: float = 0.5,
                 density_k: int = 20, tpdi_sigma: float = 0.05, batch_size: int = 512,
                 precision: str = "fp32") -> None:
        self.model = model
        self.tau = tau
        self.density_sigma = density_sigma
        self.density_k = density_k
        self.tpdi_sigma = tpdi_sigma
        self.batch_size = batch_size
        self.precision = precision

    @classmethod
    def train(cls, X: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike, *,
              seed: int = 42, k: int = 80, width: int | None = 64, depth: int = 1,
              heads: int = 4, ff_dim: int = 128, dropout: float = 0.2,
              head_dim: int | None = 64, epochs: int = 4, batch_size: int = 64,
              lr: float = 1e-3, weight_decay: float = 5e-4, val_fraction: float = 0.2,
              center: bool = True, nodes_per_epoch: int | None = None,
              val_nodes: int | None = None) -> dict[str, Any]:
        """Train the similarity transformer on ``X`` / ``labels``; write it to ``out_dir``.

        ``k``: neighbours per node, self included (80 upstream). Upstream size:
        ``width=None`` (= D + k tokens), depth 1, heads 8, ff_dim 2048, dropout 0.2,
        ``head_dim=None`` (= D); Adam lr 1e-4, weight decay 5e-4, batch 512, 10
        epochs. Defaults here are a small model that trains in minutes on 2
        cores (AdamW lr 1e-3 with warm-up/cosine). ``val_fraction`` of the
        identities are validation people (checkpoint selection). ``center``:
        the network reads features centred on the training mean.
        ``nodes_per_epoch`` / ``val_nodes``: epochs of that many random training
        nodes / validation on at most that many validation nodes (None: all; for
        training at scale).
        """
        from ..nn.chen import save_chen, train_chen

        t0 = time.perf_counter()
        check_param("k", k, int, 2)
        p = {n: v for n, v in locals().items() if n in _CHEN_KEYS}
        x = check_features(X, source="features")
        y = check_labels(labels, x.shape[0], source="labels")
        tr, va, (gt, gv) = split_graphs(x, y, val_fraction, k, seed, "train chen-dpc")
        model, meta = train_chen(x[tr], y[tr], gt.ids, (x[va], y[va], gv.ids), k=k,
                                 **_chen_kwargs({**p, **{"center": center}}, "", seed))
        save_chen(model, out_dir, CHEN_CKPT, meta)
        return {"method": "chen-dpc", "params": p, "seed": seed, "n": int(x.shape[0]),
                "n_val": int(len(va)), "chen": meta,
                "seconds": round(time.perf_counter() - t0, 2)}

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        from ..nn.chen import load_chen, predict_similarity

        directory = model_dir(self.model, self.method_name)
        with self._stage("load"):
            net, _ = load_chen(directory, CHEN_CKPT)
        x = check_model_input(x, net.in_dim, directory, self.method_name)
        graph = self._knn(x, knn, min(net.k, x.shape[0] - 1))
        ids, _ = _pad_ids(graph, net.k)
        with self._stage("similarity"):
            sim = predict_similarity(net, x, ids, batch_size=self.batch_size,
                                     precision=self.precision)
        with self._stage("dpc"):
            labels, info = chen_dpc_labels(
                ids, sim, tau=float(self.tau), density_sigma=float(self.density_sigma),
                density_k=self.density_k, tpdi_sigma=float(self.tpdi_sigma))
        self.n_links_ = info["links"]
        return labels


_CHEN_KEYS = ("k", "width", "depth", "heads", "ff_dim", "dropout", "head_dim", "epochs",
              "batch_size", "lr", "weight_decay", "val_fraction", "center", "nodes_per_epoch",
              "val_nodes")


def _cosine_rows(x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """``[N, k]`` float32 cosine of each row's slots (rows of ``x`` L2-normalised; missing 0)."""
    out = np.zeros(ids.shape, dtype=np.float32)
    for s in range(0, len(ids), 8192):
        i = ids[s : s + 8192]
        f = x[np.where(i >= 0, i, 0)]
        out[s : s + 8192] = np.where(i >= 0, np.einsum("nkd,nd->nk", f, x[s : s + 8192]), 0.0)
    return out


def _l2(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


@register("nsr-fc")
class NsrFc(BaseClusterer):
    """NSR-FC: re-ranking, C-GCN refinement, transformer similarity, LCE-PCENet on it.

    Which stages run is fixed by the model (its training keyword arguments
    ``rerank``, ``refine``, ``transformer``, ``lce``; ablations). See the module
    docstring for the choices made where the reference is ambiguous.

    Parameters
    ----------
    model : str
        Model directory from ``faceclust train --method nsr-fc``.
    threshold : float
        PCENet acceptance of an E_d edge, strict (0.5).
    tau_s : float or None
        E_s threshold on ``c * s``; None: NSR-FC's weighted top-3 rule.
    tau : float
        DPC threshold when the model has no stage 4 (``lce=False``; 0.7).
    batch_size : int
        Nodes / pairs / sub-graphs per forward pass; bounds memory.
    precision : {"fp32", "bf16", "int8"}
        Inference arithmetic of the transformers.
    """

    needs_model: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "threshold": Param((int, float), 0.0, 1.0),
        "tau_s": Param((int, float), optional=True),
        "tau": Param((int, float), 0.0, 2.0),
        "batch_size": Param(int, 1),
        "precision": (Param(str), OneOf(_PRECISIONS)),
    }

    def __init__(self, model: str | None = None, threshold: float = 0.5,
                 tau_s: float | None = None, tau: float = 0.7, batch_size: int = 256,
                 precision: str = "fp32") -> None:
        self.model = model
        self.threshold = threshold
        self.tau_s = tau_s
        self.tau = tau
        self.batch_size = batch_size
        self.precision = precision

    @classmethod
    def train(cls, X: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike, *,
              seed: int = 42, k: int = 20, rerank: bool = True, refine: bool = True,
              transformer: bool = True, lce: bool = True, cgcn_hidden: int = 64,
              cgcn_k1: int = 5, cgcn_k2: int = 3, cgcn_k_local: int = 10,
              cgcn_epochs: int = 3, cgcn_centres_per_epoch: int = 1024,
              cgcn_batch_size: int = 32, cgcn_lr: float = 1e-3, cgcn_weight_decay: float = 1e-4,
              tf_width: int | None = 64, tf_depth: int = 1, tf_heads: int = 4,
              tf_ff_dim: int = 128, tf_dropout: float = 0.2, tf_head_dim: int | None = 64,
              tf_epochs: int = 3, tf_batch_size: int = 64, tf_lr: float = 1e-3,
              tf_weight_decay: float = 5e-4, tf_nodes_per_epoch: int | None = None,
              tf_val_nodes: int | None = None, lce_params: dict[str, Any] | None = None,
              val_fraction: float = 0.2, center: bool = True) -> dict[str, Any]:
        """Train NSR-FC's stages in order on ``X`` / ``labels``; write them to ``out_dir``.

        ``k``: the kNN size of every stage (80 upstream; 20 here so LCENet/the
        transformer train in minutes on 2 shared cores). ``rerank`` / ``refine`` /
        ``transformer`` / ``lce``: keep that stage (False: the ablation, stored
        in the model). ``cgcn_*``: C-GCN (hidden width, hop-1 / hop-2 sizes --
        upstream 80 / 10 --, local-graph k, epochs of ``cgcn_centres_per_epoch``
        random centres, batch of sub-graphs, AdamW). ``tf_*``: stage 3, as
        ``chen-dpc``'s parameters. ``lce_params``: overrides of
        :meth:`LcePce.train`'s parameters for stage 4 (its ``k`` is ``k``).
        Every stage selects its checkpoint on the same validation people
        (``val_fraction`` of the identities).
        """
        from ..nn.cgcn import refine_features, save_cgcn, train_cgcn
        from ..nn.chen import save_chen, train_chen

        t0 = time.perf_counter()
        p = {n: v for n, v in locals().items() if n in _NSR_KEYS}
        check_param("k", k, int, 2)
        for n in _STAGES:
            check_param(n, p[n], bool)
        if lce_params is not None and not isinstance(lce_params, dict):
            raise ParameterError(f"lce_params must be a mapping, got {lce_params!r}")
        bad = sorted(set(lce_params or {}) - set(LCE_PCE_TRAIN_DEFAULTS) | (
            set(lce_params or {}) & {"k", "val_fraction", "center"}))
        if bad:
            raise ParameterError(f"lce_params: unknown or fixed parameter(s) {', '.join(bad)}")
        x = check_features(X, source="features")
        y = check_labels(labels, x.shape[0], source="labels")
        tr, va, (gt, gv) = split_graphs(x, y, val_fraction, k, seed, "train nsr-fc")
        out: dict[str, Any] = {"method": "nsr-fc", "params": p, "seed": seed,
                               "n": int(x.shape[0]), "n_val": int(len(va)), "stage_seconds": {}}
        xs = [x[tr], x[va]]
        rr = [g.ids for g in (gt, gv)]
        if rerank and refine:
            t = time.perf_counter()
            rr = [structure_space(g, lam=0.0)[0] for g in (gt, gv)]
            out["stage_seconds"]["rerank"] = round(time.perf_counter() - t, 2)
        if refine:
            t = time.perf_counter()
            cg, cmeta = train_cgcn(
                xs[0], y[tr], rr[0], gt.ids, gt.sims, (xs[1], y[va], rr[1], gv.ids, gv.sims),
                hidden=cgcn_hidden, k1=cgcn_k1, k2=cgcn_k2, k_local=cgcn_k_local,
                epochs=cgcn_epochs, centres_per_epoch=cgcn_centres_per_epoch,
                batch_size=cgcn_batch_size, lr=float(cgcn_lr),
                weight_decay=float(cgcn_weight_decay), seed=seed)
            save_cgcn(cg, out_dir, CGCN_CKPT, cmeta)
            xs = [refine_features(cg, xi, r, g.ids, g.sims)
                  for xi, r, g in zip(xs, rr, (gt, gv), strict=True)]
            out["cgcn"] = cmeta
            out["stage_seconds"]["refine"] = round(time.perf_counter() - t, 2)
        if transformer:
            t = time.perf_counter()
            tf, tmeta = train_chen(xs[0], y[tr], gt.ids, (xs[1], y[va], gv.ids), k=k,
                                   **_chen_kwargs(p, "tf_", seed + 2),
                                   desc="stage-3 similarity train")
            save_chen(tf, out_dir, CHEN_CKPT, tmeta)
            out["transformer"] = tmeta
            out["stage_seconds"]["transformer"] = round(time.perf_counter() - t, 2)
        if lce:
            t = time.perf_counter()
            # the same people split (seed, val_fraction) and kNN size: its graphs are reused
            out["lce"] = train_lce_pce_split(
                x, y, out_dir, {**(lce_params or {}), "k": k, "val_fraction": val_fraction,
                                "center": center}, seed, (tr, va, [gt, gv]), t)
            out["stage_seconds"]["lce"] = round(time.perf_counter() - t, 2)
        from .. import fsutil

        fsutil.write_text(Path(out_dir) / NSR_FILE, json.dumps(
            {"format": "faceclust-nsrfc", "in_dim": int(x.shape[1]), "k": k,
             "stages": {n: bool(p[n]) for n in _STAGES}}, indent=1) + "\n")
        out["seconds"] = round(time.perf_counter() - t0, 2)
        return out

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        from ..nn.cgcn import load_cgcn, refine_features
        from ..nn.chen import load_chen, predict_similarity
        from ..nn.lcenet import load_lcenet, predict_connectivity
        from ..nn.pcenet import load_pcenet, predict_pairs

        directory = model_dir(self.model, self.method_name)
        path = Path(directory) / NSR_FILE
        try:
            cfg = json.loads(path.read_text(encoding="utf-8"))
            stages, k, in_dim = cfg["stages"], int(cfg["k"]), int(cfg["in_dim"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path}: unreadable NSR-FC model record ({exc})") from None
        x = check_model_input(x, in_dim, directory, self.method_name)
        x = _l2(np.asarray(x, dtype=np.float32))
        graph = self._knn(x, knn, min(k, x.shape[0] - 1))
        ids, sims = _pad_ids(graph, k)
        xr = x
        if stages["refine"]:
            with self._stage("rerank"):
                rr = structure_space(graph, lam=0.0)[0] if stages["rerank"] else graph.ids
            with self._stage("refine"):
                cg, _ = load_cgcn(directory, CGCN_CKPT)
                xr = refine_features(cg, x, rr, graph.ids, graph.sims,
                                     batch_size=self.batch_size)
        with self._stage("similarity"):
            if stages["transformer"]:
                tf, _ = load_chen(directory, CHEN_CKPT)
                s = predict_similarity(tf, xr, ids, batch_size=self.batch_size,
                                       precision=self.precision)
            else:
                s = sims.copy() if xr is x else _cosine_rows(xr, ids)
                s[ids < 0] = 0.0
        self.similarity_ = s
        if not stages["lce"]:
            with self._stage("dpc"):
                labels, _ = chen_dpc_labels(ids, s, tau=float(self.tau))
            return labels
        with self._stage("lcenet"):
            lce, _ = load_lcenet(directory)
            pce, _ = load_pcenet(directory, "pcenet")
            if lce.k != k:
                raise InputError(f"{directory}: LCENet k {lce.k} differs from the NSR-FC k {k}")
            conn = predict_connectivity(lce, x, ids, batch_size=self.batch_size,
                                        precision=self.precision)
        with self._stage("density"):
            c = symmetric_connectivity(ids, conn)
            rho = lce_density(ids, s, c)
            tau = tau_s_weighted(ids, s) if self.tau_s is None else float(self.tau_s)
            (d_src, d_dst, _), (s_src, s_dst, _) = density_edges(ids, s, c, rho, tau)
        n_ed = len(d_src)
        with self._stage("pcenet"):
            if len(d_src):
                prob = predict_pairs(pce, x, graph.ids, d_src, d_dst,
                                     batch_size=self.batch_size, precision=self.precision)
                d_src, d_dst, _ = verify_edges(d_src, d_dst, prob, float(self.threshold))
        self.tau_s_ = tau
        self.n_edges_ = {"E_d": n_ed, "E_d_verified": int(len(d_src)), "E_s": int(len(s_src))}
        with self._stage("partition"):
            return connected_components(np.concatenate([d_src, s_src]),
                                        np.concatenate([d_dst, s_dst]), graph.n)


_NSR_KEYS = ("k", *_STAGES, "cgcn_hidden", "cgcn_k1", "cgcn_k2", "cgcn_k_local", "cgcn_epochs",
             "cgcn_centres_per_epoch", "cgcn_batch_size", "cgcn_lr", "cgcn_weight_decay",
             "tf_width", "tf_depth", "tf_heads", "tf_ff_dim", "tf_dropout", "tf_head_dim",
             "tf_epochs", "tf_batch_size", "tf_lr", "tf_weight_decay", "tf_nodes_per_epoch",
             "tf_val_nodes", "lce_params",
             "val_fraction", "center")
