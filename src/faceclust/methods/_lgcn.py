"""L-GCN (Wang et al., CVPR'19, "Linkage-based Face Clustering via Graph Convolution Network"):
supervised, with a trained model from ``faceclust train --method lgcn``.

Pipeline: kNN graph (k as trained) -> every face a pivot: its instance-pivot sub-graph
(:func:`~faceclust.stages.subgraphs.pivot_subgraphs`: 1-hop ``k1``, 2-hop ``k2``,
``active`` connections) -> the L-GCN network scores each (pivot, 1-hop) link
(:mod:`faceclust.nn.lgcn`) -> pseudo-label propagation
(:func:`~faceclust.stages.subgraphs.linkage_propagation`: size-capped dynamic-threshold
components, the two directions of a link averaged, ``max_size`` 300, ``step`` 0.6).

CPU scaling (the reference: k = 80 with the whole row as 1-hop, 2-hop 10, active 10,
512-512-256-256 convolutions, ~27 h of GPU training): defaults ``k1=20, k2=5, active=5``,
convolutions 64-64-32-32, 300 Adam steps of 32 pivots; all are ``train`` parameters and
the sub-graph sizes can be changed again at clustering time.

Measured on people never seen in training (``benchmarks/supervised_eval.py``, regime 1b,
celeba_wild ArcFace-like, test side 1,378 faces; the machine under heavy load): the link
classifier reaches ROC AUC 0.67 on the test links and the propagation pairwise F 0.17
(``auto``: 0.86). The network memorises the training identities' directions (final
training loss 0.05) instead of learning "how close to the pivot"; ``sim_feature=True``
(beyond the paper: the cosine to the pivot as one more input) gives AUC 0.83 and
pairwise F 0.32 on the same split. The size cap (300) then still lets mixed groups of
up to 300 faces through on data with 10-30 photos per person.

On synthetic faces (``faceclust synth``, 256-d; trained on 6,000 faces of 100 people, tested
on 6,000 of 100 others) the same: the links of the unseen people get ROC AUC **0.21**
(scores *inverted*; on the training people 0.996), where their cosine alone gives 0.993;
pairwise F 0.23 (``auto`` 0.993). With 20 of a person's ~60 photos in the 1-hop set,
98.6 % of the training links are positive and the loss barely moves from a constant
predictor's. ``balanced=True`` (beyond the paper, off: each class half the loss) gives AUC
0.40, ``sim_feature=True`` 0.52, both 0.73 (F 0.69). Trained on the full 576,494-face
synthetic set instead of 50,000 faces the 584K row is no better (0.074 against 0.089,
``docs/supervised.md``): more people do not stop the residual features from being learned
as identity directions.
"""

from __future__ import annotations

import os
import time
from typing import Any, ClassVar

import numpy as np

from .._validation import check_features, check_labels
from ..errors import InputError
from ..knn import KnnGraph, build_knn
from ..stages.subgraphs import linkage_propagation
from ._base import BaseClusterer, Constraint, Param, check_param, register
from ._modeldir import model_dir

__all__ = ["LGcn"]


@register("lgcn")
class LGcn(BaseClusterer):
    """L-GCN: learned linkage on instance-pivot sub-graphs, then size-capped propagation.

    Parameters
    ----------
    model : str
        Model directory written by ``faceclust train --method lgcn``.
    k1, k2, active : int or None
        1-hop size, 2-hop size per 1-hop node, active connections; None = as trained.
    max_size : int
        Largest cluster of the propagation (reference 300).
    step : float
        Threshold step of the propagation: ``th <- th + (1 - th) step`` (reference 0.6).
    batch_size : int
        Pivots per forward pass (bounds memory).
    """

    needs_model: ClassVar[bool] = True
    _parameter_constraints: ClassVar[dict[str, Constraint]] = {
        "k1": Param(int, 1, optional=True),
        "k2": Param(int, 1, optional=True),
        "active": Param(int, 1, optional=True),
        "max_size": Param(int, 1),
        "step": Param((int, float), 0.0, 1.0, lo_open=True),
        "batch_size": Param(int, 1),
    }

    def __init__(self, model: str | None = None, k1: int | None = None, k2: int | None = None,
                 active: int | None = None, max_size: int = 300, step: float = 0.6,
                 batch_size: int = 256) -> None:
        self.model = model
        self.k1 = k1
        self.k2 = k2
        self.active = active
        self.max_size = max_size
        self.step = step
        self.batch_size = batch_size

    @classmethod
    def train(cls, X: np.ndarray, labels: np.ndarray, out_dir: str | os.PathLike, *,
              seed: int = 42, k: int = 40, k1: int = 20, k2: int = 5, active: int = 5,
              dims: tuple[int, ...] = (64, 64, 32, 32), mlp_dim: int = 32, steps: int = 300,
              batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 1e-4,
              optimizer: str = "adam", sim_feature: bool = False,
              balanced: bool = False) -> dict[str, Any]:
        """Train L-GCN into ``out_dir`` (``lgcn.safetensors`` + ``lgcn.json``); return its meta.

        ``k``: kNN size (self included) the sub-graphs are cut from (>= max(k1, k2, active) + 1).
        ``sim_feature`` (beyond the paper, off by default): each member's cosine to the pivot
        as one more input column; ``balanced`` (beyond the paper, off): class-balanced link
        loss (:func:`faceclust.nn.lgcn.link_loss`); see the module docstring for both.
        Interrupted (Ctrl-C), the same call resumes from the last saved state.
        """
        from ..nn.lgcn import save_lgcn, train_lgcn
        from ..nn.train import Resume, clear_resume, fingerprint

        for name, v in (("k", k), ("k1", k1), ("k2", k2), ("active", active), ("steps", steps),
                        ("batch_size", batch_size), ("mlp_dim", mlp_dim)):
            check_param(name, v, int, 1)
        check_param("k", k, int, 2)
        check_param("sim_feature", sim_feature, bool)
        check_param("balanced", balanced, bool)
        if not isinstance(dims, list | tuple) or not dims:
            raise InputError(f"train lgcn: dims must be a list of layer sizes, got {dims!r}")
        dims = [int(d) for d in dims]
        x = check_features(X, source="features")
        y = check_labels(labels, x.shape[0], source="labels")
        if x.shape[0] < 3:
            raise InputError("train lgcn: need at least 3 labelled faces")
        t0 = time.perf_counter()
        graph = build_knn(x, k=min(k, x.shape[0] - 1))
        params = {"k": k, "k1": k1, "k2": k2, "active": active, "dims": dims, "mlp_dim": mlp_dim,
                  "steps": steps, "batch_size": batch_size, "lr": lr,
                  "weight_decay": weight_decay, "optimizer": optimizer, "sim_feature": sim_feature,
                  "balanced": balanced}
        resume = Resume(out_dir, "lgcn", fingerprint("lgcn", params, seed, arrays=[x, y]))
        model, meta = train_lgcn(x, y, graph.ids, k1=k1, k2=k2, active=active, dims=dims,
                                 mlp_dim=mlp_dim, steps=steps, batch_size=batch_size, lr=lr,
                                 weight_decay=weight_decay, optimizer=optimizer,
                                 sim_feature=sim_feature, balanced=balanced, seed=seed,
                                 resume=resume)
        meta["k"] = graph.k
        meta["seconds"] = round(time.perf_counter() - t0, 2)
        save_lgcn(model, out_dir, meta)
        clear_resume(out_dir)
        return meta

    def _fit(self, x: np.ndarray | None, knn: KnnGraph | None) -> np.ndarray:
        from ..nn.lgcn import load_lgcn, predict_linkage

        directory = model_dir(self.model, self.method_name)
        if x is None:
            raise InputError(f"{self.method_name}: features X are required (the GCN reads them)")
        with self._stage("load"):
            model, meta = load_lgcn(directory)
        if x.shape[1] != model.in_dim:
            raise InputError(
                f"{self.method_name}: features have dimension {x.shape[1]} but the model in "
                f"{directory} was trained on dimension {model.in_dim}"
            )
        self.model_meta_ = meta
        k1 = int(self.k1 if self.k1 is not None else meta.get("k1", 20))
        k2 = int(self.k2 if self.k2 is not None else meta.get("k2", 5))
        active = int(self.active if self.active is not None else meta.get("active", 5))
        k = max(int(meta.get("k", 40)), k1 + 1, k2 + 1, active + 1)
        graph = self._knn(x, knn, min(k, x.shape[0] - 1))
        if graph.k < 2:  # two faces: no neighbour besides self to link
            return np.arange(x.shape[0], dtype=np.int64)
        with self._stage("lgcn"):
            src, dst, p = predict_linkage(model, x, graph.ids, k1=k1, k2=k2, active=active,
                                          batch_size=self.batch_size)
        with self._stage("propagation"):
            return linkage_propagation(src, dst, p, x.shape[0], max_size=self.max_size,
                                       step=float(self.step))
