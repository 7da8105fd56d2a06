"""L-GCN: linkage prediction on instance-pivot sub-graphs ("Linkage-based Face Clustering via
Graph Convolution Network", Wang et al., CVPR'19; learn-to-cluster's re-implementation).

For a pivot ``c`` the sub-graph (:func:`~faceclust.stages.subgraphs.pivot_subgraphs`) holds
its 1-hop and 2-hop neighbours with features ``x_v - x_c``; the network predicts for every
1-hop node whether it has the pivot's identity. Batches of sub-graphs are one
block-diagonal sparse matrix, so memory is bounded by the batch size, not by N.

Model: ``BatchNorm1d(D, affine=False)`` -> four :class:`~faceclust.nn.layers.GraphConv`
(``ReLU([H || A H] W + b)``, ``A`` row-normalised) -> the 1-hop rows -> ``Linear -> PReLU
-> Linear(., 2)``; cross-entropy over all (pivot, 1-hop) pairs. Reference sizes
512-512-256-256 on 256-d input; the CPU defaults are smaller (``dims``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .._progress import progress
from ..errors import InputError, ParameterError
from ..stages.subgraphs import PivotSubgraphs, pivot_subgraphs
from .checkpoint import load_model, save_checkpoint
from .layers import GraphConv, row_normalize, to_torch_sparse
from .train import Resume, SgdSchedule, seeded, train_steps

__all__ = ["CHECKPOINT_NAME", "LGCN", "batch_inputs", "link_loss", "load_lgcn",
           "predict_linkage", "save_lgcn", "train_lgcn"]

CHECKPOINT_NAME = "lgcn"
KIND = "lgcn"
_CONFIG_SPEC = {"in_dim": int, "dims": list[int], "mlp_dim": int, "sim_feature": bool}


class LGCN(nn.Module):
    """Linkage classifier: member features ``[M, D]``, adjacency ``[M, M]``, 1-hop rows -> logits ``[Q, 2]``."""

    def __init__(self, in_dim: int, dims: list[int] | tuple[int, ...] = (64, 64, 32, 32),
                 mlp_dim: int = 32, sim_feature: bool = False) -> None:
        super().__init__()
        dims = list(dims)
        for name, v in [("in_dim", in_dim), ("mlp_dim", mlp_dim)] + [("dims", d) for d in dims]:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"L-GCN {name} must hold positive integers, got {v!r}")
        if not dims:
            raise ParameterError("L-GCN needs at least one graph convolution (dims is empty)")
        self.in_dim, self.dims, self.mlp_dim = in_dim, dims, mlp_dim
        self.sim_feature = bool(sim_feature)
        width = in_dim + (1 if self.sim_feature else 0)
        self.norm = nn.BatchNorm1d(width, affine=False)
        sizes = [width, *dims]
        self.convs = nn.ModuleList(GraphConv(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.head = nn.Sequential(nn.Linear(dims[-1], mlp_dim), nn.PReLU(mlp_dim),
                                  nn.Linear(mlp_dim, 2))

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "dims": list(self.dims), "mlp_dim": self.mlp_dim,
                "sim_feature": self.sim_feature}

    def forward(self, x: torch.Tensor, adj: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        for conv in self.convs:
            h = conv(h, adj)
        return self.head(h[rows])


def batch_inputs(sg: PivotSubgraphs, x: np.ndarray, sim_feature: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """``(features x_v - x_pivot [M, D] (+ cosine to the pivot with ``sim_feature``),
    row-normalised adjacency, 1-hop rows [Q], (b, j) of each [Q, 2])``."""
    own = sg.owner
    xv, xc = x[sg.nodes], x[sg.nodes[sg.pivot_pos]][own]
    feats = xv - xc
    if sim_feature:
        feats = np.hstack([feats, np.einsum("ij,ij->i", xv, xc)[:, None]])
    b, j = np.nonzero(sg.hop1_pos >= 0)
    rows = sg.hop1_pos[b, j]
    adj = to_torch_sparse(row_normalize(sg.adj))
    return (torch.from_numpy(np.ascontiguousarray(feats, np.float32)), adj, rows,
            np.stack([b, j], axis=1))


def link_loss(logits: torch.Tensor, target: np.ndarray, balanced: bool = False) -> torch.Tensor:
    """Cross-entropy over the (pivot, 1-hop) links; ``balanced``: the mean of the two
    classes' mean losses (each class half the loss whatever its share: with 20 of a
    person's many photos in the 1-hop set, 98.6 % of the links are positive)."""
    t = torch.from_numpy(np.asarray(target, dtype=np.int64))
    if not balanced:
        return nn.functional.cross_entropy(logits, t)
    counts = np.bincount(np.asarray(target), minlength=2)
    weight = np.where(counts > 0, len(target) / (2.0 * np.maximum(counts, 1)), 0.0)
    return nn.functional.cross_entropy(logits, t, weight=torch.tensor(weight, dtype=logits.dtype))


def train_lgcn(
    features: np.ndarray, labels: np.ndarray, ids: np.ndarray, *,
    k1: int = 20, k2: int = 5, active: int = 5, dims: tuple[int, ...] = (64, 64, 32, 32),
    mlp_dim: int = 32, steps: int = 300, batch_size: int = 32, lr: float = 1e-3,
    weight_decay: float = 1e-4, optimizer: str = "adam", sim_feature: bool = False,
    balanced: bool = False, seed: int = 42, log_every: int = 20, resume: Resume | None = None,
) -> tuple[LGCN, dict[str, Any]]:
    """Train L-GCN on random batches of pivots of a labelled set; return ``(model, meta)``.

    ``ids`` is the kNN graph (column 0 = self). Each step draws ``batch_size`` pivots
    from a permutation that depends only on ``(seed, epoch)`` (resumable).
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    y = np.asarray(labels)
    n = x.shape[0]
    if y.shape != (n,):
        raise InputError(f"labels: expected shape ({n},), got {y.shape}")
    if steps < 1 or batch_size < 1:
        raise ParameterError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    per_epoch = -(-n // batch_size)
    sched = SgdSchedule(steps=steps, lr=lr, weight_decay=weight_decay, optimizer=optimizer)
    pos_frac: list[float] = []
    with seeded(seed):
        model = LGCN(x.shape[1], dims, mlp_dim, sim_feature)

        def loss_fn(step: int) -> torch.Tensor:
            perm = np.random.default_rng([seed, step // per_epoch]).permutation(n)
            j = step % per_epoch
            piv = perm[j * batch_size : (j + 1) * batch_size]
            sg = pivot_subgraphs(ids, piv, k1, k2, active)
            xb, ab, rows, bj = batch_inputs(sg, x, sim_feature)
            tgt = (y[sg.hop1[bj[:, 0], bj[:, 1]]] == y[piv[bj[:, 0]]]).astype(np.int64)
            if len(pos_frac) < 50:
                pos_frac.append(float(tgt.mean()) if len(tgt) else 0.0)
            return link_loss(model(xb, ab, torch.from_numpy(rows)), tgt, balanced)

        log = train_steps(model, loss_fn, sched, log_every=log_every, desc="L-GCN train",
                          resume=resume)
    meta = {
        "k": int(np.asarray(ids).shape[1]), "k1": k1, "k2": k2, "active": active,
        "n_train": n, "seed": seed, "sim_feature": sim_feature, "balanced": balanced,
        "positive_fraction": round(float(np.mean(pos_frac)), 4),
        "schedule": {"optimizer": optimizer, "steps": steps, "batch_size": batch_size, "lr": lr,
                     "weight_decay": weight_decay, "milestones": list(sched.milestones)},
        **log.as_meta(),
    }
    return model, meta


@torch.no_grad()
def predict_linkage(model: LGCN, features: np.ndarray, ids: np.ndarray, *, k1: int, k2: int,
                    active: int, batch_size: int = 256
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every node as a pivot: ``(src, dst, P(link))`` for each (pivot, 1-hop) pair, both
    directions present; streamed over pivot batches of ``batch_size``."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(f"L-GCN model expects {model.in_dim}-d features, got {x.shape[1]}-d")
    model.eval()
    n = x.shape[0]
    srcs, dsts, probs = [], [], []
    with progress(total=n, desc="L-GCN sub-graphs", unit="pivot") as bar:
        for start in range(0, n, batch_size):
            piv = np.arange(start, min(n, start + batch_size), dtype=np.int64)
            sg = pivot_subgraphs(ids, piv, k1, k2, active)
            xb, ab, rows, bj = batch_inputs(sg, x, model.sim_feature)
            p = torch.softmax(model(xb, ab, torch.from_numpy(rows)), dim=1)[:, 1].numpy()
            srcs.append(piv[bj[:, 0]])
            dsts.append(sg.hop1[bj[:, 0], bj[:, 1]])
            probs.append(p.astype(np.float32))
            bar.update(len(piv))
    return (np.concatenate(srcs), np.concatenate(dsts).astype(np.int64),
            np.concatenate(probs))


def save_lgcn(model: LGCN, directory: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Write ``lgcn.safetensors`` + ``lgcn.json`` into ``directory``."""
    save_checkpoint(directory, CHECKPOINT_NAME, model, kind=KIND, config=model.config(), meta=meta)


def load_lgcn(directory: str | os.PathLike) -> tuple[LGCN, dict[str, Any]]:
    """Load an L-GCN model (validated) and its training ``meta`` from ``directory``."""
    # sim_feature: models saved before the option existed
    return load_model(directory, CHECKPOINT_NAME, LGCN, kind=KIND, spec=_CONFIG_SPEC,
                      defaults={"sim_feature": False})
