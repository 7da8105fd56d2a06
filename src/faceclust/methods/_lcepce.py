"""LCE-PCENet (Shin et al., CVPR'23) and FC-ESER (Liu, arXiv 2408.13431): pair verification.

``lce-pce``: kNN -> LCENet connectivity of every slot -> symmetrised connectivity,
LCE density, density-ascending E_d (one per node) and similarity E_s edges
(:mod:`faceclust.stages.density`) -> PCENet verifies E_d (``p > 0.5``,
:mod:`faceclust.stages.verify`) -> connected components of verified E_d + E_s.

``fc-eser``: ``fc-es`` (NEP, early stop, directed Infomap; the same class and
stages) plus edge recall: from each node's stop point on, neighbours with
NEP >= ``delta`` become links weighted by a PCENet-architecture pair model's
probability when it is >= ``eta``.

Upstream LCE-PCENet ships inference only; the training here is our own
(recipe: :mod:`faceclust.nn.pairtrain`). Both ``train`` class methods hold out
a validation split of the *training* people (by identity) for checkpoint
selection; FC-ESER's reference selected on its test split, we do not.
torch is imported only when a model is trained or run.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import numpy as np

from .._validation import check_features, check_labels
from ..errors import InputError, ParameterError
from ..graph import connected_components
from ..knn import KnnGraph, build_knn
from ..stages.confidence import split_by_identity
from ..stages.density import density_edges, lce_density, symmetric_connectivity, tau_s_top3
from ..stages.verify import recall_candidates, verify_edges
from ._base import BaseClusterer, Constraint, OneOf, Param, check_param, register
from ._fces import FCES
from ._modeldir import model_dir

__all__ = ["FCESER", "FCESER_TRAIN_DEFAULTS", "LCE_PCE_TRAIN_DEFAULTS", "LcePce"]

LCE_CKPT, PCE_CKPT, RECALL_CKPT = "lcenet", "pcenet", "pcenet_recall"
_PRECISIONS = ("fp32", "bf16", "int8")  # as faceclust.nn.lcenet.PRECISIONS (no torch import here)

#: Shared pair-model (PCENet) training defaults: a small model that trains in minutes
#: on 2 CPU cores. Upstream size: pce_width=None (D + 2k), pce_depth=3, pce_heads=8,
#: pce_ff_dim=1024, pce_mlp_dim=2048.
_PCE_DEFAULTS: dict[str, Any] = {
    "pce_k": 10, "pce_width": 64, "pce_depth": 2, "pce_heads": 4, "pce_ff_dim": 128,
    "pce_dropout": 0.1, "pce_mlp_dim": 128, "pce_epochs": 6, "pce_pairs_per_epoch": 4096,
    "pce_batch_size": 128, "pce_lr": 1e-3, "pce_weight_decay": 1e-4, "pce_val_pairs": 8192,
    "center": True,
}

#: ``lce-pce`` training defaults. Upstream LCENet size: width=None (D + k), depth=3,
#: heads=8, ff_dim=1024, k=80. ``pool_k``: PCENet trains on pairs (i, j-th neighbour),
#: j = 1..pool_k, where E_d edges come from.
LCE_PCE_TRAIN_DEFAULTS: dict[str, Any] = {
    "k": 30, "width": 64, "depth": 2, "heads": 4, "ff_dim": 128, "dropout": 0.1,
    "head_dim": 64, "epochs": 6, "batch_size": 64, "lr": 1e-3, "weight_decay": 1e-4,
    "val_fraction": 0.2, "pool_k": 10, "nodes_per_epoch": None, "val_nodes": None,
    **_PCE_DEFAULTS,
}

#: ``fc-eser`` training defaults: the recall model trains on FC-ESER's recall
#: candidates of the training people (NEP graph ``k``/``sigma``/``theta``/``delta``).
FCESER_TRAIN_DEFAULTS: dict[str, Any] = {
    "k": 80, "sigma": 0.5, "theta": 0.22, "delta": 0.12, "val_fraction": 0.2,
    "min_class_pairs": 50, **_PCE_DEFAULTS,
}


def _params(params: dict[str, Any], defaults: dict[str, Any], what: str) -> dict[str, Any]:
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        raise ParameterError(
            f"{what}: unknown parameter(s) {', '.join(unknown)}; known: {', '.join(sorted(defaults))}"
        )
    p = {**defaults, **params}
    check_param("val_fraction", p["val_fraction"], (int, float), 0.0, 1.0, lo_open=True, hi_open=True)
    for key in ("k", "pce_k", "pce_epochs", "pce_pairs_per_epoch", "pce_batch_size",
                "pce_val_pairs"):
        check_param(key, p[key], int, 1)
    return p


def split_graphs(x: np.ndarray, y: np.ndarray, val_fraction: float, k: int, seed: int,
                 what: str) -> tuple[np.ndarray, np.ndarray, list[KnnGraph]]:
    """Training / validation people (by identity: ``val_fraction`` of them held out, drawn
    with ``seed``) and the kNN graph (``k``, self included) of each side: the one split
    lce-pce, fc-eser, chen-dpc and nsr-fc select their checkpoints on, so that nsr-fc can
    hand its own to its LCE-PCENet stage."""
    check_param("val_fraction", val_fraction, (int, float), 0.0, 1.0, lo_open=True, hi_open=True)
    tr, va = split_by_identity(y, float(val_fraction), seed=seed)
    if len(tr) < 3 or len(va) < 3:
        raise InputError(f"{what}: too few samples to hold out validation people ({len(tr)}/{len(va)})")
    return tr, va, [build_knn(x[i], k=min(k, len(i) - 1)) for i in (tr, va)]


def _pair_kwargs(p: dict[str, Any], seed: int) -> dict[str, Any]:
    return {
        "k": p["pce_k"], "width": p["pce_width"], "depth": p["pce_depth"],
        "heads": p["pce_heads"], "ff_dim": p["pce_ff_dim"], "dropout": float(p["pce_dropout"]),
        "mlp_dim": p["pce_mlp_dim"], "epochs": p["pce_epochs"],
        "pairs_per_epoch": p["pce_pairs_per_epoch"], "batch_size": p["pce_batch_size"],
        "lr": float(p["pce_lr"]), "weight_decay": float(p["pce_weight_decay"]), "seed": seed,
        "center": bool(p["center"]), "val_pairs": p["pce_val_pairs"],
    }


def _top_pairs(ids: np.ndarray, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(i, ids[i, j])`` for j = 1..m (present, non-self)."""
    sub = ids[:, 1 : m + 1]
    rows = np.repeat(np.arange(len(ids)), sub.shape[1]).reshape(sub.shape)
    keep = (sub >= 0) & (sub != rows)
    return rows[keep].astype(np.int64), sub[keep].astype(np.int64)


def _supplement(pool, ids, y, min_class, seed):
    """``pool`` pairs plus stand-ins for a class (same / different identity) that has
    fewer than ``min_class`` pairs in it; returns ``(src, dst, n_added)``.

    Candidate pools can lack a class on small or sparse sets (FC-ESER's recall
    candidates on people with few photos are nearly all negative; a kNN list of
    well-separated people holds no negative). The missing class is filled
    first from every kNN pair of the graph ``ids`` of that class, then, if still
    short, from random pairs of that class (``min_class`` of them).
    """
    src, dst = pool
    parts_s, parts_d = [src], [dst]
    ksrc, kdst = _top_pairs(ids, ids.shape[1] - 1)
    rng = np.random.default_rng(seed)
    for positive in (True, False):
        have = int(((y[src] == y[dst]) == positive).sum())
        if have >= min_class:
            continue
        sel = (y[ksrc] == y[kdst]) == positive
        parts_s.append(ksrc[sel])
        parts_d.append(kdst[sel])
        have += int(sel.sum())
        if have < min_class:
            rs, rd = _random_pairs(y, positive, min_class, rng)
            parts_s.append(rs)
            parts_d.append(rd)
    out_s, out_d = np.concatenate(parts_s), np.concatenate(parts_d)
    return out_s, out_d, int(len(out_s) - len(src))


def _random_pairs(y, positive, m, rng):
    """Up to ``m`` random pairs of distinct rows with equal (``positive``) or different labels."""
    n = len(y)
    if positive:
        order = np.argsort(y, kind="stable")
        ys = y[order]
        starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
        sizes = np.diff(np.r_[starts, n])
        multi = np.flatnonzero(sizes >= 2)
        if len(multi) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        g = rng.choice(multi, m)
        a = rng.integers(0, sizes[g])
        b = (a + rng.integers(1, sizes[g])) % sizes[g]
        return order[starts[g] + a].astype(np.int64), order[starts[g] + b].astype(np.int64)
    i, j = rng.integers(0, n, 4 * m), rng.integers(0, n, 4 * m)
    keep = y[i] != y[j]
    return i[keep][:m].astype(np.int64), j[keep][:m].astype(np.int64)


def _padded(graph: KnnGraph, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``graph``'s ids and sims cut or padded (-1 / -inf) to ``k`` columns."""
    n, kk = graph.ids.shape
    if kk >= k:
        return np.ascontiguousarray(graph.ids[:, :k]), np.ascontiguousarray(graph.sims[:, :k])
    ids = np.full((n, k), -1, dtype=graph.ids.dtype)
    sims = np.full((n, k), -np.inf, dtype=np.float32)
    ids[:, :kk], sims[:, :kk] = graph.ids, graph.sims
    return ids, sims


def check_model_input(x: np.ndarray | None, in_dim: int, directory: str,
                      method: str) -> np.ndarray:
    """``x`` if present and of the model's dimension (lce-pce, fc-eser, chen-dpc, nsr-fc)."""
    if x is None:
        raise InputError(f"{method}: features X are required (the networks read them)")
    if x.shape[1] != in_dim:
        raise InputError(
            f"{method}: features have dimension {x.shape[1]} but the model in {directory} "
            f"was trained on dimension {in_dim}"
        )
    return x


def train_lce_pce_split(x: np.ndarray, y: np.ndarray, out_dir: str | os.PathLike,
                        params: dict[str, Any], seed: int, split: tuple | None = None,
                        t0: float | None = None) -> dict[str, Any]:
    """:meth:`LcePce.train` on checked features ``x`` / labels ``y`` with training parameters
    ``params`` (checked here). ``split`` = ``(train idx, validation idx, [train kNN,
    validation kNN])`` of the same people split (``seed``, ``val_fraction``) is used when its
    graphs have at least ``max(k, pce_k)`` columns, so that NSR-FC (whose stage 4 this is)
    does not build the graphs of its own identical split again."""
    from ..nn.lcenet import save_lcenet
    from ..nn.pairtrain import train_lcenet, train_pcenet
    from ..nn.pcenet import save_pcenet

    t0 = time.perf_counter() if t0 is None else t0
    p = _params(params, LCE_PCE_TRAIN_DEFAULTS, "train lce-pce")
    check_param("pool_k", p["pool_k"], int, 1)
    need = max(int(p["k"]), int(p["pce_k"]))
    if split is None or any(g.k < min(need, len(i) - 1)
                            for g, i in zip(split[2], split[:2], strict=True)):
        split = split_graphs(x, y, p["val_fraction"], need, seed, "train lce-pce")
    tr, va, (gt, gv) = split
    lce, lmeta = train_lcenet(
        x[tr], y[tr], gt.ids, (x[va], y[va], gv.ids), k=p["k"], width=p["width"],
        depth=p["depth"], heads=p["heads"], ff_dim=p["ff_dim"], dropout=float(p["dropout"]),
        head_dim=p["head_dim"], epochs=p["epochs"], batch_size=p["batch_size"],
        lr=float(p["lr"]), weight_decay=float(p["weight_decay"]), seed=seed,
        center=bool(p["center"]), nodes_per_epoch=p["nodes_per_epoch"],
        val_nodes=p["val_nodes"],
    )
    pool, vpool = (_supplement(_top_pairs(g.ids, p["pool_k"]), g.ids, y[i], 1, seed)[:2]
                   for g, i in ((gt, tr), (gv, va)))
    pce, pmeta = train_pcenet(x[tr], y[tr], gt.ids, pool, (x[va], y[va], gv.ids, vpool),
                              **_pair_kwargs(p, seed + 1))
    pmeta["pool_k"] = p["pool_k"]
    save_lcenet(lce, out_dir, lmeta)
    save_pcenet(pce, out_dir, PCE_CKPT, pmeta)
    return {"method": "lce-pce", "params": p, "seed": seed, "n": int(x.shape[0]),
            "n_val": int(len(va)), "lcenet": lmeta, "pcenet": pmeta,
            "seconds": round(time.perf_counter() - t0, 2)}


@register("lce-pce")
class LcePce(BaseClusterer):
    """LCE-PCENet: learned connectivity, density-ascending edges, PCENet verification.

    Parameters
    ----------
    model : str
        Model directory from ``faceclust train --method lce-pce`` (``lcenet`` and
        ``pcenet`` checkpoints). The kNN size is the LCENet's trained ``k``.
    threshold : float
        PCENet acceptance of an E_d edge, strict (``p > 0.5`` upstream).
    tau_s : float or None
        E_s threshold on ``c * s``; None: mean of each node's top-3 non-self
        similarities, averaged over nodes (upstream).
    verify : bool
        Run PCENet on E_d (False keeps every E_d edge: an ablation).
    batch_size : int
        Nodes (LCENet) / pairs (PCENet) per forward pass; bounds memory.
    precision : {"fp32", "bf16", "int8"}
        Inference arithmetic: fp32, bfloat16 autocast, or dynamic int8 Linear layers.
    """

    needs_model: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "threshold": Param((int, float), 0.0, 1.0),
        "tau_s": Param((int, float), optional=True),
        "verify": Param(bool),
        "batch_size": Param(int, 1),
        "precision": (Param(str), OneOf(_PRECISIONS)),
    }

    def __init__(self, model: str | None = None, threshold: float = 0.5,
                 tau_s: float | None = None, verify: bool = True, batch_size: int = 512,
                 precision: str = "fp32") -> None:
        self.model = model
        self.threshold = threshold
        self.tau_s = tau_s
        self.verify = verify
        self.batch_size = batch_size
        self.precision = precision

    @classmethod
    def train(cls, X: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike, *,
              seed: int = 42, k: int = 30, width: int | None = 64, depth: int = 2,
              heads: int = 4, ff_dim: int = 128, dropout: float = 0.1,
              head_dim: int | None = 64, epochs: int = 6, batch_size: int = 64,
              lr: float = 1e-3, weight_decay: float = 1e-4, val_fraction: float = 0.2,
              pool_k: int = 10, nodes_per_epoch: int | None = None,
              val_nodes: int | None = None, pce_k: int = 10, pce_width: int | None = 64,
              pce_depth: int = 2, pce_heads: int = 4, pce_ff_dim: int = 128,
              pce_dropout: float = 0.1, pce_mlp_dim: int = 128, pce_epochs: int = 6,
              pce_pairs_per_epoch: int = 4096, pce_batch_size: int = 128,
              pce_lr: float = 1e-3, pce_weight_decay: float = 1e-4,
              pce_val_pairs: int = 8192, center: bool = True) -> dict[str, Any]:
        """Train LCENet then PCENet on ``X`` / ``labels``; write both to ``out_dir``.

        ``k``: the LCENet's neighbours (self included; fixed by the model, used at
        clustering time). Unprefixed parameters are LCENet's, ``pce_*`` PCENet's;
        ``width=None`` / ``pce_width=None`` is upstream's token width (D + k,
        D + 2k; upstream also depth 3, heads 8, ff_dim 1024, pce_mlp_dim 2048,
        k 80). PCENet trains on the pairs (i, j-th neighbour), j = 1..``pool_k``,
        where E_d edges come from. ``val_fraction`` of the identities are held out
        as validation people for checkpoint selection. ``nodes_per_epoch`` /
        ``val_nodes``: LCENet epochs of that many random training nodes / validation
        on at most that many validation nodes (None: all; for training at scale). ``center``: networks read
        features centred on the training mean (stored in the model); needed for
        dlib-like embeddings. Recipe:
        :mod:`faceclust.nn.pairtrain`. Returns the parameters used, losses per
        epoch and seconds.
        """
        t0 = time.perf_counter()
        p = {n: v for n, v in locals().items() if n in LCE_PCE_TRAIN_DEFAULTS}
        x = check_features(X, source="features")
        y = check_labels(labels, x.shape[0], source="labels")
        return train_lce_pce_split(x, y, out_dir, p, seed, t0=t0)

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        from ..nn.lcenet import load_lcenet, predict_connectivity
        from ..nn.pcenet import load_pcenet, predict_pairs

        directory = model_dir(self.model, self.method_name)
        with self._stage("load"):
            lce, _ = load_lcenet(directory)
            pce, _ = load_pcenet(directory, PCE_CKPT)
        x = check_model_input(x, lce.in_dim, directory, self.method_name)
        if pce.in_dim != lce.in_dim:
            raise InputError(f"{directory}: LCENet and PCENet were trained on different dimensions")
        graph = self._knn(x, knn, min(max(lce.k, pce.k), x.shape[0] - 1))
        ids, sims = _padded(graph, lce.k)
        with self._stage("lcenet"):
            conn = predict_connectivity(lce, x, ids, batch_size=self.batch_size,
                                        precision=self.precision)
        with self._stage("density"):
            c = symmetric_connectivity(ids, conn)
            rho = lce_density(ids, sims, c)
            tau = tau_s_top3(ids, sims) if self.tau_s is None else float(self.tau_s)
            (d_src, d_dst, _), (s_src, s_dst, _) = density_edges(ids, sims, c, rho, tau)
        n_ed = len(d_src)
        with self._stage("pcenet"):
            if self.verify and len(d_src):
                prob = predict_pairs(pce, x, graph.ids, d_src, d_dst,
                                     batch_size=self.batch_size, precision=self.precision)
                d_src, d_dst, _ = verify_edges(d_src, d_dst, prob, float(self.threshold))
        self.tau_s_ = tau
        self.density_ = rho
        self.n_edges_ = {"E_d": n_ed, "E_d_verified": int(len(d_src)), "E_s": int(len(s_src))}
        with self._stage("partition"):
            return connected_components(np.concatenate([d_src, s_src]),
                                        np.concatenate([d_dst, s_dst]), graph.n)


@register("fc-eser")
class FCESER(FCES):
    """FC-ESER: FC-ES plus edge recall verified by a PCENet-architecture pair model.

    Every ``fc-es`` parameter (``sigma``, ``theta``, ``singletons``, ``seed``,
    ``num_trials``, ``max_links``) means the same here; in addition:

    Parameters
    ----------
    model : str
        Model directory from ``faceclust train --method fc-eser`` (``pcenet_recall``).
    k : int or None
        Neighbours per point, self included; None: the ``k`` the model's recall
        candidates were made with at training (80 by default), capped at N - 1.
    delta : float
        Recall floor: from a node's stop point on, neighbours with NEP >= delta
        are candidates (0.12).
    eta : float
        A candidate becomes a link (weight = probability) when the pair model's
        probability is >= eta (0.60).
    batch_size : int
        Pairs per forward pass.
    precision : {"fp32", "bf16", "int8"}
        Inference arithmetic of the pair model.
    """

    needs_model: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **FCES._parameter_constraints,
        "k": Param(int, 2, optional=True),
        "delta": Param((int, float), 0.0, 1.0),
        "eta": Param((int, float), 0.0, 1.0),
        "batch_size": Param(int, 1),
        "precision": (Param(str), OneOf(_PRECISIONS)),
    }

    def __init__(self, model: str | None = None, k: int | None = None, sigma: float = 0.5,
                 theta: float = 0.22, delta: float = 0.12, eta: float = 0.60,
                 singletons: str = "fc-es", seed: int = 123, num_trials: int = 1,
                 max_links: int | None = None, batch_size: int = 512,
                 precision: str = "fp32") -> None:
        super().__init__(k=k, sigma=sigma, theta=theta, singletons=singletons, seed=seed,
                         num_trials=num_trials, max_links=max_links)
        self.model = model
        self.delta = delta
        self.eta = eta
        self.batch_size = batch_size
        self.precision = precision

    @classmethod
    def train(cls, X: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike, *,
              seed: int = 42, k: int = 80, sigma: float = 0.5, theta: float = 0.22,
              delta: float = 0.12, val_fraction: float = 0.2, min_class_pairs: int = 50, pce_k: int = 10, pce_width: int | None = 64,
              pce_depth: int = 2, pce_heads: int = 4, pce_ff_dim: int = 128,
              pce_dropout: float = 0.1, pce_mlp_dim: int = 128, pce_epochs: int = 6,
              pce_pairs_per_epoch: int = 4096, pce_batch_size: int = 128,
              pce_lr: float = 1e-3, pce_weight_decay: float = 1e-4,
              pce_val_pairs: int = 8192, center: bool = True) -> dict[str, Any]:
        """Train the edge-recall pair model on FC-ESER's recall candidates of ``X``.

        Candidates come from the training people's own NEP graph (``k``,
        ``sigma``, ``theta``, ``delta``), as the reference; when they hold fewer
        than ``min_class_pairs`` positive (or negative) pairs, kNN pairs (then
        random pairs) of that class are added. Validation people (``val_fraction``)
        choose the checkpoint.
        ``pce_*``: the pair model (a PCENet; upstream size ``pce_width=None``,
        depth 3, heads 8, ff_dim 1024, mlp_dim 2048, ``pce_k`` 80). Recipe:
        :mod:`faceclust.nn.pairtrain`.
        """
        from ..nn.pairtrain import train_pcenet
        from ..nn.pcenet import save_pcenet
        from ..stages.refine import nep

        t0 = time.perf_counter()
        p = _params({n: v for n, v in locals().items() if n in FCESER_TRAIN_DEFAULTS},
                    FCESER_TRAIN_DEFAULTS, "train fc-eser")
        x = check_features(X, source="features")
        y = check_labels(labels, x.shape[0], source="labels")
        tr, va, graphs = split_graphs(x, y, p["val_fraction"], max(int(p["k"]), int(p["pce_k"])),
                                      seed, "train fc-eser")
        check_param("min_class_pairs", p["min_class_pairs"], int, 0)
        pools, added = [], []
        for g, idx in zip(graphs, (tr, va), strict=True):
            g = g.truncate(min(p["k"], g.k))
            src, dst, _ = recall_candidates(g.ids, nep(g, float(p["sigma"])), float(p["theta"]),
                                            float(p["delta"]))
            src, dst, extra = _supplement((src, dst), g.ids, y[idx], p["min_class_pairs"], seed)
            pools.append((src, dst))
            added.append(extra)
        model, meta = train_pcenet(x[tr], y[tr], graphs[0].ids, pools[0],
                                   (x[va], y[va], graphs[1].ids, pools[1]),
                                   **_pair_kwargs(p, seed), desc="recall PCENet train")
        meta.update(candidates={"k": p["k"], "sigma": p["sigma"], "theta": p["theta"],
                                "delta": p["delta"], "supplement_train": added[0],
                                "supplement_val": added[1]})
        save_pcenet(model, out_dir, RECALL_CKPT, meta)
        return {"method": "fc-eser", "params": p, "seed": seed, "n": int(x.shape[0]),
                "n_val": int(len(va)), "pcenet_recall": meta,
                "seconds": round(time.perf_counter() - t0, 2)}

    def _graph_k(self, x: np.ndarray | None, knn: KnnGraph | None) -> int:
        """Load the pair model; ``k`` or, when None, the model's candidate k (capped at N - 1)."""
        from ..nn.pcenet import load_pcenet

        directory = model_dir(self.model, self.method_name)
        with self._stage("load"):
            self._pce, meta = load_pcenet(directory, RECALL_CKPT)
        check_model_input(x, self._pce.in_dim, directory, self.method_name)
        if self.k is not None:
            return self.k
        k = int(meta.get("candidates", {}).get("k", 80))
        n = knn.n if knn is not None else x.shape[0]  # type: ignore[union-attr]
        return max(2, min(k, n - 1))

    def _recall(self, x, order, graph, scores, src, dst, w, single):
        """Add recalled links: candidates after each stop point with probability >= eta."""
        from ..nn.pcenet import predict_pairs

        pce = self._pce
        with self._stage("recall"):
            c_src, c_dst, _ = recall_candidates(graph.ids, scores, float(self.theta),
                                                float(self.delta), self.max_links)
            xl = x[order]  # the graph is renumbered for locality
            prob = predict_pairs(pce, xl, graph.ids, c_src, c_dst, batch_size=self.batch_size,
                                 precision=self.precision, desc="recall PCENet")
            r_src, r_dst, r_w = verify_edges(c_src, c_dst, prob, float(self.eta), strict=False)
        self.n_candidates_ = int(len(c_src))
        self.n_recalled_ = int(len(r_src))
        self.k_used_ = graph.k
        del self._pce
        single = single.copy()
        single[r_src] = False
        return (np.concatenate([src, r_src]), np.concatenate([dst, r_dst]),
                np.concatenate([w, r_w]).astype(np.float32), single)
