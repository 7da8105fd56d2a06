"""GCN-V: vertex-confidence estimation on the full kNN graph (learn-to-cluster, CVPR'20).

Model: one :class:`~faceclust.nn.layers.GraphConv` ``D -> hidden`` (ReLU) whose
output is the "GCN feature", then ``Linear(hidden, mlp) -> PReLU -> Linear(mlp, 1)``
giving one confidence per node. Trained full-batch with MSE against the
s_nbr target (:func:`faceclust.stages.confidence.snbr_confidence`).

Inference is row-chunked after one sparse product ``A X``, so the memory is
about ``N * (2 D + hidden)`` floats plus the adjacency.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._validation import check_features, check_labels
from ..errors import InputError, ParameterError
from ..knn import KnnGraph, build_knn
from ..stages.confidence import snbr_confidence
from .checkpoint import load_model, save_checkpoint
from .layers import GraphConv, knn_adjacency, to_torch_sparse
from .train import Resume, SgdSchedule, seeded, train_steps

__all__ = [
    "CHECKPOINT_NAME",
    "GCNV",
    "load_gcn_v",
    "predict_gcn_v",
    "save_gcn_v",
    "train_gcn_v",
]

CHECKPOINT_NAME = "gcn_v"
KIND = "gcn-v"
_CONFIG_SPEC = {"in_dim": int, "hidden_dim": int, "mlp_dim": int}

#: Training defaults sized for a 2-core CPU (the original runs 80,000 iterations on a GPU);
#: see the module docstring of :mod:`faceclust.methods._gcn` for the measured loss curves.
DEFAULT_STEPS = 1500


class GCNV(nn.Module):
    """Confidence network: ``x [N, in_dim]``, ``adj [N, N]`` -> ``(conf [N], feat [N, hidden_dim])``."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, mlp_dim: int = 512) -> None:
        super().__init__()
        for name, v in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("mlp_dim", mlp_dim)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"GCN-V {name} must be a positive integer, got {v!r}")
        self.in_dim = in_dim
        self.hidden_dim = hidden_dim
        self.mlp_dim = mlp_dim
        self.conv = GraphConv(in_dim, hidden_dim)
        self.head = nn.Sequential(
            nn.Linear(hidden_dim, mlp_dim), nn.PReLU(mlp_dim), nn.Linear(mlp_dim, 1)
        )

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "hidden_dim": self.hidden_dim, "mlp_dim": self.mlp_dim}

    def forward(
        self, x: torch.Tensor, adj: torch.Tensor | None = None, *, agg: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.conv(x, adj, agg=agg)
        return self.head(feat).squeeze(-1), feat


def _graph(x: np.ndarray, k: int, knn: KnnGraph | None) -> KnnGraph:
    if knn is not None:
        return knn.truncate(min(k, knn.k))
    return build_knn(x, k=min(k, x.shape[0] - 1))


def train_gcn_v(
    features: np.ndarray,
    labels: np.ndarray,
    *,
    k: int = 80,
    min_sim: float = 0.0,
    hidden_dim: int = 512,
    mlp_dim: int = 512,
    steps: int = DEFAULT_STEPS,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-5,
    seed: int = 42,
    batch_size: int | None = None,
    knn: KnnGraph | None = None,
    log_every: int = 50,
    resume: Resume | None = None,
) -> tuple[GCNV, dict[str, Any]]:
    """Train GCN-V on one labelled set; return ``(model, meta)``.

    ``batch_size=None`` trains full-graph (every step sees all N nodes, as the
    original); an integer samples that many nodes per step instead (same
    model; ``A X`` is precomputed either way, so a node's prediction never
    depends on which other nodes are in the batch).

    ``meta`` records the graph parameters (``k``, ``min_sim``, used again at
    inference), the schedule, the loss curve and the wall time. The batch of
    step ``s`` depends only on ``(seed, s)``, so with ``resume`` an
    interrupted run continues to the same model (:class:`~faceclust.nn.train.Resume`).
    """
    x = check_features(features, source="features")
    y = check_labels(labels, x.shape[0], source="labels")
    if not 2 <= k:
        raise ParameterError(f"k must be >= 2, got {k}")
    if steps < 1:
        raise ParameterError(f"steps must be >= 1, got {steps}")
    t0 = time.perf_counter()
    graph = _graph(x, k, knn)
    target = snbr_confidence(graph.ids, graph.sims, y)
    adj = to_torch_sparse(knn_adjacency(graph.ids, graph.sims, min_sim))
    xt = torch.from_numpy(np.ascontiguousarray(x))
    # The only graph convolution sees the constant input X, so A X is computed once:
    # every full-graph step is then two dense products, exactly the same model and loss.
    agg = torch.sparse.mm(adj, xt)
    t_prep = time.perf_counter() - t0
    tt = torch.from_numpy(target)
    n = x.shape[0]
    if batch_size is not None and not 1 <= batch_size:
        raise ParameterError(f"batch_size must be >= 1 or None (full graph), got {batch_size}")
    full = batch_size is None or batch_size >= n
    sched = SgdSchedule(steps=steps, lr=lr, momentum=momentum, weight_decay=weight_decay)
    with seeded(seed):
        model = GCNV(x.shape[1], hidden_dim, mlp_dim)
        gen = torch.Generator().manual_seed(seed)

        def loss_fn(_step: int) -> torch.Tensor:
            if full:
                pred, _ = model(xt, agg=agg)
                return nn.functional.mse_loss(pred, tt)
            gen.manual_seed(seed * 1_000_003 + _step)  # the batch is a function of the step
            rows = torch.randint(0, n, (int(batch_size),), generator=gen)
            pred, _ = model(xt[rows], agg=agg[rows])
            return nn.functional.mse_loss(pred, tt[rows])

        log = train_steps(model, loss_fn, sched, log_every=log_every, desc="GCN-V train",
                          resume=resume)
    meta = {
        "k": graph.k,
        "min_sim": float(min_sim),
        "n_train": int(x.shape[0]),
        "n_identities": int(len(np.unique(y))),
        "seed": seed,
        "batch_size": batch_size,
        "schedule": {
            "steps": steps, "lr": lr, "momentum": momentum, "weight_decay": weight_decay,
            "milestones": list(sched.milestones),
        },
        "prep_seconds": round(t_prep, 2),
        **log.as_meta(),
    }
    return model, meta


@torch.no_grad()
def predict_gcn_v(
    model: GCNV, features: np.ndarray, adj: sp.spmatrix, *, chunk: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence ``[N]`` and GCN features ``[N, hidden]`` (float32) for every node.

    ``adj`` is the normalised adjacency of :func:`~faceclust.nn.layers.knn_adjacency`.
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(
            f"features have dimension {x.shape[1]} but the GCN-V model was trained on "
            f"dimension {model.in_dim}"
        )
    model.eval()
    n = x.shape[0]
    xt = torch.from_numpy(x)
    agg = torch.sparse.mm(to_torch_sparse(adj), xt)
    conv = model.conv
    w_self, w_nbr = conv.weight[: conv.in_dim], conv.weight[conv.in_dim :]
    conf = np.empty(n, dtype=np.float32)
    feat = np.empty((n, model.hidden_dim), dtype=np.float32)
    for start in range(0, n, chunk):
        h = torch.relu(xt[start : start + chunk] @ w_self + agg[start : start + chunk] @ w_nbr
                       + conv.bias)
        feat[start : start + chunk] = h.numpy()
        conf[start : start + chunk] = model.head(h).squeeze(-1).numpy()
    return conf, feat


def save_gcn_v(model: GCNV, directory: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Write ``gcn_v.safetensors`` + ``gcn_v.json`` into ``directory``."""
    save_checkpoint(directory, CHECKPOINT_NAME, model, kind=KIND, config=model.config(), meta=meta)


def load_gcn_v(directory: str | os.PathLike) -> tuple[GCNV, dict[str, Any]]:
    """Load a GCN-V model (validated) and its training ``meta`` from ``directory``."""
    return load_model(directory, CHECKPOINT_NAME, GCNV, kind=KIND, spec=_CONFIG_SPEC)


def normalize_rows(feat: np.ndarray) -> np.ndarray:
    """L2-normalise rows; an all-zero row (every ReLU unit off) becomes a tiny uniform vector."""
    feat = np.asarray(feat, dtype=np.float32)
    norm = np.linalg.norm(feat, axis=1, keepdims=True)
    zero = norm[:, 0] <= 1e-12
    if zero.any():
        feat = feat.copy()
        feat[zero] = 1.0
        norm[zero] = np.sqrt(feat.shape[1])
    return feat / norm


def gcn_v_outputs(
    model: GCNV,
    features: np.ndarray,
    *,
    k: int,
    min_sim: float,
    knn: KnnGraph | None = None,
    chunk: int = 65536,
) -> tuple[np.ndarray, np.ndarray, KnnGraph]:
    """Run GCN-V on raw features: ``(confidence [N], L2-normalised GCN features [N, H], kNN graph)``.

    The kNN graph (``knn`` truncated to ``k``, or an exact build) and its
    adjacency are made exactly as in training.
    """
    x = check_features(features, source="features")
    if x.shape[1] != model.in_dim:
        raise InputError(
            f"features have dimension {x.shape[1]} but the GCN-V model was trained on "
            f"dimension {model.in_dim}"
        )
    graph = _graph(x, k, knn)
    adj = knn_adjacency(graph.ids, graph.sims, min_sim)
    conf, feat = predict_gcn_v(model, x, adj, chunk=chunk)
    return conf, normalize_rows(feat), graph
