"""GCN-D and GCN-S: detection and segmentation of cluster proposals ("Learning to Cluster
Faces on an Affinity Graph", Yang et al., CVPR'19; learn-to-cluster ``dsgcn``).

A proposal's graph (:func:`~faceclust.stages.subgraphs.proposal_graphs`: kNN links among its
members weighted by cosine, self loops, rows normalised) and its members' features go
through graph convolutions ``H' = ReLU(A H W)`` (no bias) with node-row dropout (the
reference's ``Dropout2d`` on ``[B, N, C]``, written out explicitly). Then

* **GCN-D** (``kind="det"``): max over the proposal's nodes -> ``Linear(., 1)``, a score
  regressed on the proposal's IoU (or IoP) with MSE;
* **GCN-S** (``kind="seg"``): per node ``Linear(., 2)``, log-softmax; input features get
  one more column, the seed-node indicator; NLL against "same identity as the seed".

Proposals of a batch are one block-diagonal sparse matrix (no padding). Reference sizes
``512, 64`` on 256-d features; the CPU defaults are ``64, 32``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .._progress import progress
from ..errors import InputError, ParameterError
from ..stages.proposals import Proposals
from ..stages.subgraphs import proposal_graphs
from .checkpoint import (
    checkpoint_exists,
    load_model,
    save_checkpoint,
)
from .layers import row_normalize, to_torch_sparse
from .train import Resume, SgdSchedule, seeded, train_steps

__all__ = ["DSGCN", "load_dsgcn", "predict_proposals", "save_dsgcn", "seed_nodes",
           "train_dsgcn"]

KIND = "dsgcn"
_CONFIG_SPEC = {"in_dim": int, "dims": list[int], "kind": str, "dropout": float, "seed_input": str}


class DSGCN(nn.Module):
    """GCN-D (``kind="det"``: one score per proposal) or GCN-S (``"seg"``: log-probs per node)."""

    def __init__(self, in_dim: int, dims: list[int] | tuple[int, ...] = (64, 32),
                 kind: str = "det", dropout: float = 0.5, seed_input: str = "indicator") -> None:
        super().__init__()
        dims = list(dims)
        for name, v in [("in_dim", in_dim)] + [("dims", d) for d in dims]:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"GCN-D/S {name} must hold positive integers, got {v!r}")
        if not dims:
            raise ParameterError("GCN-D/S needs at least one graph convolution (dims is empty)")
        if kind not in ("det", "seg"):
            raise ParameterError(f"GCN-D/S kind must be 'det' or 'seg', got {kind!r}")
        if not 0.0 <= dropout < 1.0:
            raise ParameterError(f"dropout must lie in [0, 1), got {dropout!r}")
        if seed_input not in ("indicator", "residual"):
            raise ParameterError(f"seed_input must be 'indicator' or 'residual', got {seed_input!r}")
        self.in_dim, self.dims, self.kind, self.dropout = in_dim, dims, kind, float(dropout)
        self.seed_input = seed_input
        sizes = [in_dim, *dims]
        self.weights = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:], strict=True):
            w = nn.Parameter(torch.empty(a, b))
            nn.init.uniform_(w, -1.0 / b**0.5, 1.0 / b**0.5)
            self.weights.append(w)
        self.head = nn.Linear(dims[-1], 1 if kind == "det" else 2)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "dims": list(self.dims), "kind": self.kind,
                "dropout": self.dropout, "seed_input": self.seed_input}

    @property
    def feature_dim(self) -> int:
        """Dimension of the face features it reads."""
        if self.kind == "det":
            return self.in_dim
        return (self.in_dim - 1) // (2 if self.seed_input == "residual" else 1)

    def forward(self, x: torch.Tensor, adj: torch.Tensor, ptr: np.ndarray) -> torch.Tensor:
        """``x [M, in_dim]``, block-diagonal ``adj [M, M]``, proposal offsets ``ptr [B+1]``
        -> ``[B]`` scores (det) or ``[M, 2]`` log-probs (seg)."""
        h = x
        for w in self.weights:
            h = torch.relu(torch.sparse.mm(adj, h @ w))
            if self.training and self.dropout > 0:
                keep = (torch.rand(h.shape[0], 1) >= self.dropout).to(h.dtype)
                h = h * keep / (1.0 - self.dropout)  # node-row dropout
        if self.kind == "seg":
            return torch.log_softmax(self.head(h), dim=1)
        sizes = torch.from_numpy(np.diff(ptr))
        seg = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
        pooled = torch.full((len(sizes), h.shape[1]), -torch.inf, dtype=h.dtype)
        pooled = pooled.scatter_reduce(0, seg[:, None].expand_as(h), h, reduce="amax",
                                       include_self=True)
        return self.head(pooled).squeeze(1)


def seed_nodes(props: Proposals, adj_rowsum: np.ndarray | None, rule: str,
               rng: np.random.Generator) -> np.ndarray:
    """Row (in ``props.nodes``) of each proposal's seed: a random member (``"random"``, the
    reference) or the member with the largest adjacency row sum (``"max_degree"``)."""
    sizes = props.sizes
    if rule == "random":
        return props.ptr[:-1] + (rng.random(len(sizes)) * sizes).astype(np.int64)
    if rule != "max_degree" or adj_rowsum is None:
        raise ParameterError(f"seed rule must be 'random' or 'max_degree', got {rule!r}")
    own = props.owner()
    order = np.lexsort((-adj_rowsum, own))  # per proposal, largest first
    return order[props.ptr[:-1]]


def _inputs(props: Proposals, x: np.ndarray, ids: np.ndarray, sims: np.ndarray,
            weighted: bool, seeds: np.ndarray | None, seed_input: str = "indicator"):
    """Member features (GCN-S: ``[x, seed one-hot]``, or ``[x, x - x_seed, one-hot]`` with
    ``seed_input="residual"``), the row-normalised block adjacency and its row sums."""
    a = proposal_graphs(props.ptr, props.nodes, ids, sims, weighted=weighted)
    feats = x[props.nodes]
    if seeds is not None:
        col = np.zeros((len(feats), 1), np.float32)
        col[seeds] = 1.0
        parts = [feats]
        if seed_input == "residual":
            parts.append(feats - feats[seeds][props.owner()])
        feats = np.hstack([*parts, col])
    return (torch.from_numpy(np.ascontiguousarray(feats, np.float32)),
            to_torch_sparse(row_normalize(a)), np.asarray(a.sum(axis=1)).reshape(-1))


def train_dsgcn(
    features: np.ndarray, labels: np.ndarray, ids: np.ndarray, sims: np.ndarray,
    props: Proposals, targets: np.ndarray | None, *, kind: str = "det",
    dims: tuple[int, ...] = (64, 32), dropout: float = 0.5, steps: int = 300,
    batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 1e-4, optimizer: str = "adam",
    weighted: bool = True, seed_input: str = "indicator", seed: int = 42, log_every: int = 20,
    resume: Resume | None = None,
) -> tuple[DSGCN, dict[str, Any]]:
    """Train GCN-D (``targets``: IoU or IoP per proposal) or GCN-S (``kind="seg"``: node
    targets from ``labels`` and a random seed member per draw); return ``(model, meta)``."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    y = np.asarray(labels)
    p = len(props)
    if p == 0:
        raise InputError("GCN-D/S training: no proposals (data too small or thresholds too high?)")
    if steps < 1 or batch_size < 1:
        raise ParameterError(f"steps and batch_size must be >= 1, got {steps}, {batch_size}")
    per_epoch = -(-p // batch_size)
    sched = SgdSchedule(steps=steps, lr=lr, weight_decay=weight_decay, optimizer=optimizer)
    in_dim = x.shape[1] * (2 if seed_input == "residual" else 1) + 1 if kind == "seg" else x.shape[1]
    with seeded(seed):
        model = DSGCN(in_dim, dims, kind, dropout, seed_input)

        def loss_fn(step: int) -> torch.Tensor:
            rng = np.random.default_rng([seed, step // per_epoch])
            perm = rng.permutation(p)
            j = step % per_epoch
            which = np.sort(perm[j * batch_size : (j + 1) * batch_size])
            sub = props.select(which)
            if kind == "det":
                xb, ab, _ = _inputs(sub, x, ids, sims, weighted, None)
                pred = model(xb, ab, sub.ptr)
                return nn.functional.mse_loss(pred, torch.from_numpy(targets[which]))
            seeds = seed_nodes(sub, None, "random", np.random.default_rng([seed, step, 1]))
            xb, ab, _ = _inputs(sub, x, ids, sims, weighted, seeds, seed_input)
            own = sub.owner()
            tgt = (y[sub.nodes] == y[sub.nodes[seeds]][own]).astype(np.int64)
            return nn.functional.nll_loss(model(xb, ab, sub.ptr), torch.from_numpy(tgt))

        log = train_steps(model, loss_fn, sched, log_every=log_every,
                          desc=f"GCN-{'D' if kind == 'det' else 'S'} train", resume=resume)
    meta = {
        "kind": kind, "n_proposals": p, "seed": seed, "weighted": weighted,
        "seed_input": seed_input,
        "schedule": {"optimizer": optimizer, "steps": steps, "batch_size": batch_size, "lr": lr,
                     "weight_decay": weight_decay, "milestones": list(sched.milestones)},
        **log.as_meta(),
    }
    return model, meta


@torch.no_grad()
def predict_proposals(model: DSGCN, features: np.ndarray, ids: np.ndarray, sims: np.ndarray,
                      props: Proposals, *, weighted: bool = True, batch_nodes: int = 65536,
                      seeds: np.ndarray | None = None, desc: str = "GCN-D") -> np.ndarray:
    """Scores ``[P]`` (det) or P(same as seed) per member ``[M]`` (seg, ``seeds`` = rows in
    ``props.nodes``), streamed over batches of about ``batch_nodes`` members."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    want = model.feature_dim
    if x.shape[1] != want:
        raise InputError(f"GCN-D/S model expects {want}-d features, got {x.shape[1]}-d")
    model.eval()
    p = len(props)
    out = np.zeros(p if model.kind == "det" else len(props.nodes), np.float32)
    ends = np.searchsorted(props.ptr, np.arange(batch_nodes, props.ptr[-1] + batch_nodes,
                                                batch_nodes), side="right") - 1
    bounds = np.unique(np.concatenate([[0], np.clip(ends, 1, p), [p]])) if p else np.zeros(1, int)
    with progress(total=p, desc=desc, unit="proposal") as bar:
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            which = np.arange(lo, hi)
            sub = props.select(which)
            s = None
            if model.kind == "seg":
                s = seeds[which] - props.ptr[lo] if seeds is not None else None
                if s is None:
                    raise InputError("GCN-S needs the seed rows")
            xb, ab, _ = _inputs(sub, x, ids, sims, weighted, s, model.seed_input)
            r = model(xb, ab, sub.ptr)
            if model.kind == "det":
                out[lo:hi] = r.numpy()
            else:
                out[props.ptr[lo] : props.ptr[hi]] = r[:, 1].exp().numpy()
            bar.update(hi - lo)
    return out


def save_dsgcn(model: DSGCN, directory: str | os.PathLike, name: str, meta: dict[str, Any]) -> None:
    """Write ``<name>.safetensors`` + ``<name>.json`` into ``directory``."""
    save_checkpoint(directory, name, model, kind=KIND, config=model.config(), meta=meta)


def load_dsgcn(directory: str | os.PathLike, name: str) -> tuple[DSGCN, dict[str, Any]]:
    """Load GCN-D/S checkpoint ``name`` (validated) and its ``meta`` from ``directory``."""
    return load_model(directory, name, DSGCN, kind=KIND, spec=_CONFIG_SPEC)


def has_checkpoint(directory: str | os.PathLike, name: str) -> bool:
    """True when checkpoint ``name`` exists in ``directory``."""
    return checkpoint_exists(directory, name)
