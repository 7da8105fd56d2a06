"""NSR-FC's cascaded GCN (C-GCN): feature refinement on two-hop sub-graphs.

Per centre node a sub-graph (:func:`faceclust.stages.subgraphs.two_hop_subgraphs`
on the re-ranked kNN) with its local adjacency
(:func:`~faceclust.stages.subgraphs.subgraph_adjacency`). Model (``H`` = hidden):

1. ``LayerNorm(D)``; residual ``r = Linear(D, H)(x)``.
2. Stage a: ``t = MLP(x)`` (kept as ``x_out``); ``t`` <- GraphConv with the local
   adjacency (``ReLU(Linear(2H, H)([t || A t]))``) -> LayerNorm + Linear -> L2
   rows; learned affinity ``S = t t^T`` on present nodes, entries < ``cut``
   (0.5) set to 0, rows normalised (sum + 1e-5); main branch
   ``Linear(D, H)(x)`` -> GraphConv with S -> MLP, plus ``r``: ``x1``.
3. Stage b: the same from ``x1`` (residual ``x1``): ``x2``.
4. Output ``Linear(3H, H)([x2 || x1 || x_out])``, L2 rows.

Deviations (documented choices): LayerNorm instead of BatchNorm (padded
sub-graph rows would bias batch statistics); sub-graphs are not filled up to a
fixed size with samples of the nearest classes at training (padding is masked
instead, and the mining below skips padded rows, which the reference does not).

Loss: per present node of a sub-graph, hardest positive (same identity, lowest
cosine, not itself) and hardest negative (other identity, highest cosine);
``relu(cos_an - cos_ap + margin)`` (margin 0.8 = triplet on ``1 - cos``) plus
the "mean loss" ``relu(cos_an - 0.1) + relu(0.9 - cos_ap)``; anchors without a
positive or a negative in their sub-graph are skipped.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._progress import progress
from ..errors import InputError
from ..stages.subgraphs import subgraph_adjacency, two_hop_subgraphs
from .checkpoint import load_model, save_checkpoint
from .lcenet import positive_int
from .pairtrain import train_epochs
from .train import seeded

__all__ = ["CGCN", "cgcn_loss", "load_cgcn", "refine_features", "save_cgcn", "train_cgcn"]

KIND = "cgcn"
_CONFIG_SPEC = {"in_dim": int, "hidden": int, "k1": int, "k2": int, "k_local": int,
                "cut": float}


class _DenseGraphConv(nn.Module):
    """``ReLU(Linear(2H, H)([h || A h]))`` with a dense batched adjacency ``A [B, S, S]``."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.lin = nn.Linear(2 * dim, dim)

    def forward(self, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return F.relu(self.lin(torch.cat([h, torch.bmm(a, h)], dim=-1)))


class _Stage(nn.Module):
    def __init__(self, in_dim: int, hidden: int, cut: float) -> None:
        super().__init__()
        self.cut = cut
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden))
        self.local = _DenseGraphConv(hidden)
        self.aff = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(in_dim, hidden)
        self.conv = _DenseGraphConv(hidden)
        self.out = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, hidden))

    def forward(self, x: torch.Tensor, a: torch.Tensor, pm: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.mlp(x)
        t_out = t
        t = F.normalize(self.aff(self.local(t, a)), dim=-1)
        s = torch.bmm(t, t.transpose(1, 2)) * pm
        s = torch.where(s < self.cut, torch.zeros_like(s), s)
        s = s / (s.sum(dim=-1, keepdim=True) + 1e-5)
        return self.out(self.conv(self.inp(x), s)), t_out


class CGCN(nn.Module):
    """``x [B, S, D]``, local adjacency ``a [B, S, S]``, present ``mask [B, S]`` -> ``[B, S, H]``
    (L2 rows). ``k1``/``k2``/``k_local`` are the sub-graph sizes it was trained with."""

    def __init__(self, in_dim: int, hidden: int = 64, k1: int = 10, k2: int = 5,
                 k_local: int = 10, cut: float = 0.5) -> None:
        super().__init__()
        self.in_dim = positive_int("in_dim", in_dim)
        self.hidden = positive_int("hidden", hidden)
        self.k1, self.k2 = positive_int("k1", k1), positive_int("k2", k2)
        self.k_local = positive_int("k_local", k_local)
        self.cut = float(cut)
        self.norm = nn.LayerNorm(in_dim)
        self.res = nn.Linear(in_dim, hidden)
        self.stage_a = _Stage(in_dim, hidden, self.cut)
        self.stage_b = _Stage(hidden, hidden, self.cut)
        self.head = nn.Linear(3 * hidden, hidden)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "hidden": self.hidden, "k1": self.k1, "k2": self.k2,
                "k_local": self.k_local, "cut": self.cut}

    def forward(self, x: torch.Tensor, a: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.float()
        pm = m[:, :, None] * m[:, None, :]
        x = self.norm(x) * m[..., None]
        x1, x_out = self.stage_a(x, a, pm)
        x1 = x1 + self.res(x)
        x2, _ = self.stage_b(x1, a, pm)
        x2 = x2 + x1
        return F.normalize(self.head(torch.cat([x2, x1, x_out], dim=-1)), dim=-1)


def cgcn_loss(out: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor,
              margin: float = 0.8) -> torch.Tensor:
    """Triplet (hardest positive / negative in the sub-graph) + mean loss; see the module doc.

    ``out [B, S, H]`` L2 rows, ``labels [B, S]``, ``mask [B, S]`` present nodes.
    """
    cos = torch.bmm(out, out.transpose(1, 2))
    both = mask[:, :, None] & mask[:, None, :]
    same = (labels[:, :, None] == labels[:, None, :]) & both
    eye = torch.eye(out.shape[1], dtype=torch.bool)[None]
    pos = same & ~eye
    neg = both & ~same
    big = torch.tensor(4.0)
    ap = torch.where(pos, cos, big).min(dim=-1).values
    an = torch.where(neg, cos, -big).max(dim=-1).values
    ok = mask & pos.any(-1) & neg.any(-1)
    if not bool(ok.any()):
        return (out * 0.0).sum()
    ap, an = ap[ok], an[ok]
    trip = F.relu(an - ap + margin).mean()
    mean = F.relu(an - 0.1).mean() + F.relu(0.9 - ap).mean()
    return trip + mean


def _batch(x: np.ndarray, nodes: np.ndarray, knn_ids: np.ndarray, knn_sims: np.ndarray,
           k_local: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    mask = nodes >= 0
    f = np.where(mask[..., None], x[np.where(mask, nodes, 0)], 0.0).astype(np.float32)
    a = subgraph_adjacency(nodes, knn_ids, knn_sims, k_local)
    return torch.from_numpy(f), torch.from_numpy(a), torch.from_numpy(mask)


def train_cgcn(
    x: np.ndarray, y: np.ndarray, rr_ids: np.ndarray, knn_ids: np.ndarray,
    knn_sims: np.ndarray, val: tuple[np.ndarray, ...], *, hidden: int, k1: int, k2: int,
    k_local: int, epochs: int, centres_per_epoch: int, batch_size: int, lr: float,
    weight_decay: float, seed: int, margin: float = 0.8,
) -> tuple[CGCN, dict[str, Any]]:
    """Train :class:`CGCN` on sub-graphs of random centres of ``(x, y)``.

    ``rr_ids``: the (re-ranked) kNN table sub-graphs are taken from; ``knn_ids``,
    ``knn_sims``: the original kNN (local adjacency). ``val = (x, y, rr_ids,
    knn_ids, knn_sims)`` of validation people: the epoch with the lowest loss on
    (up to 1,024 of) their sub-graphs is kept.
    """
    rng = np.random.default_rng(seed)
    n = len(x)
    vx, vy, vrr, vids, vsims = val
    vc = np.random.default_rng(seed + 1).permutation(len(vx))[:1024]
    vnodes = two_hop_subgraphs(vrr, vc, k1, k2)
    vf, va, vm = _batch(vx, vnodes, vids, vsims, k_local)
    vlab = torch.from_numpy(np.where(vnodes >= 0, vy[np.where(vnodes >= 0, vnodes, 0)], -1))
    ylab = np.asarray(y)
    per_epoch = min(centres_per_epoch, n)

    with seeded(seed):
        model = CGCN(x.shape[1], hidden, k1, k2, k_local)

        def batches(epoch: int) -> list[np.ndarray]:
            c = rng.permutation(n)[:per_epoch]
            return [c[s : s + batch_size] for s in range(0, len(c), batch_size)]

        def loss_of(c: np.ndarray) -> torch.Tensor:
            nodes = two_hop_subgraphs(rr_ids, c, k1, k2)
            f, a, m = _batch(x, nodes, knn_ids, knn_sims, k_local)
            lab = torch.from_numpy(np.where(nodes >= 0, ylab[np.where(nodes >= 0, nodes, 0)], -1))
            return cgcn_loss(model(f, a, m), lab, m, margin)

        def validate() -> dict[str, float]:
            losses = []
            for s in range(0, len(vc), 256):
                sl = slice(s, s + 256)
                losses.append(float(cgcn_loss(model(vf[sl], va[sl], vm[sl]), vlab[sl], vm[sl],
                                              margin)))
            return {"val_loss": float(np.mean(losses))}

        log = train_epochs(model, batches, loss_of, validate, epochs=epochs,
                           steps_per_epoch=-(-per_epoch // batch_size), lr=lr,
                           weight_decay=weight_decay, select="val_loss", desc="C-GCN train")
    meta = {"n_train": int(n), "n_val": int(len(vx)),
            "recipe": {"loss": f"triplet (margin {margin}) + mean loss, hardest in sub-graph",
                       "optimizer": "adamw", "lr": lr, "weight_decay": weight_decay,
                       "schedule": "warmup 5% + cosine", "epochs": epochs,
                       "centres_per_epoch": per_epoch, "batch_size": batch_size, "seed": seed},
            **log}
    return model, meta


def refine_features(model: CGCN, x: np.ndarray, rr_ids: np.ndarray, knn_ids: np.ndarray,
                    knn_sims: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """``[N, H]`` float32: the centre node's output on its own sub-graph, for every node."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(f"C-GCN expects {model.in_dim}-d features, got {x.shape[1]}-d")
    n = len(x)
    out = np.empty((n, model.hidden), dtype=np.float32)
    model.eval()
    with torch.inference_mode(), progress(total=n, desc="C-GCN refine", unit="node") as bar:
        for s in range(0, n, batch_size):
            c = np.arange(s, min(n, s + batch_size))
            nodes = two_hop_subgraphs(rr_ids, c, model.k1, model.k2)
            f, a, m = _batch(x, nodes, knn_ids, knn_sims, model.k_local)
            out[c] = model(f, a, m)[:, 0].numpy()
            bar.update(len(c))
    return out


def save_cgcn(model: CGCN, directory: str | os.PathLike, name: str, meta: dict[str, Any]) -> None:
    """Write ``<name>.safetensors`` + ``<name>.json`` into ``directory``."""
    save_checkpoint(directory, name, model, kind=KIND, config=model.config(), meta=meta)


def load_cgcn(directory: str | os.PathLike, name: str) -> tuple[CGCN, dict[str, Any]]:
    """Load a :class:`CGCN` checkpoint ``name`` (validated) and its training ``meta``."""
    return load_model(directory, name, CGCN, kind=KIND, spec=_CONFIG_SPEC)
