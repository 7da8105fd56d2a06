"""Chen et al. (ECCV'22, "On Mitigating Hard Clusters"): transformer similarity over neighbour tokens.

Input of node i: one token per kNN neighbour (self first), ``[f(nbr_t) || A_t]``
as LCENet's (:func:`faceclust.nn.lcenet.neighbour_tokens`: the centred,
L2-normalised feature and the row of the neighbours' cosine matrix), projected
to the model width, plus a sinusoidal encoding of the neighbour's rank.
Encoder: :class:`~faceclust.nn.lcenet.TokenEncoder` in post-norm form (the
reference's DETR-style layer; upstream 1 layer, 8 heads, FF 2048, dropout 0.2).
Pair head per token t: ``[h_0 || h_t] -> Linear(2W, H) -> ReLU -> Linear(H, H/2)
-> ReLU -> Linear(H/2, 1)``: the logit of "neighbour t has i's identity".

Deviations, on purpose: the reference's tokens are the features alone; with
them the small CPU-sized model did not learn (LFW ArcFace, 4 epochs: validation
balanced accuracy 0.50-0.57), so the tokens carry the cosine rows as LCENet's
do. The reference adds the rank encoding to queries and keys only (DETR); here
it is added to the tokens (so values see it too), which keeps the stock
``nn.TransformerEncoderLayer``. Training (:func:`train_chen`):
BCE-with-logits on every present non-self slot, AdamW + warm-up/cosine with
checkpoint selection on validation people (:func:`faceclust.nn.pairtrain.train_slot_model`);
the reference's Adam loop calls ``optimizer.step()`` twice per batch (the
second step re-applies stale gradients) -- not reproduced: one step per batch.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .._progress import progress
from ..errors import InputError
from .checkpoint import load_model, save_checkpoint
from .lcenet import (
    TokenEncoder,
    centred,
    neighbour_ids_for,
    neighbour_tokens,
    positive_int,
    run_precision,
)
from .pairtrain import train_slot_model

__all__ = ["ChenNet", "load_chen", "predict_similarity", "save_chen", "train_chen"]

KIND = "chen-similarity"
_CONFIG_SPEC = {
    "in_dim": int, "k": int, "width": int, "depth": int, "heads": int, "ff_dim": int,
    "dropout": float, "head_dim": int,
}


def rank_encoding(k: int, width: int) -> torch.Tensor:
    """``[k, width]`` sinusoidal encoding of ranks 0..k-1 (Transformer / DETR form)."""
    pos = torch.arange(k, dtype=torch.float32)[:, None]
    div = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10000.0) / width))
    pe = torch.zeros(k, width)
    pe[:, 0::2] = torch.sin(pos * div)
    pe[:, 1::2] = torch.cos(pos * div)[:, : width // 2]
    return pe


class ChenNet(nn.Module):
    """``tokens [B, k, D + k]`` (:func:`~faceclust.nn.lcenet.neighbour_tokens`), ``pad [B, k]``
    -> logits ``[B, k]``. ``width=None``: the token width ``D + k``."""

    def __init__(self, in_dim: int, k: int, width: int | None = None, depth: int = 1,
                 heads: int = 8, ff_dim: int = 2048, dropout: float = 0.2,
                 head_dim: int | None = None) -> None:
        super().__init__()
        self.in_dim = positive_int("in_dim", in_dim)
        self.k = positive_int("k", k)
        token_dim = in_dim + self.k
        self.width = token_dim if width is None else positive_int("width", width)
        self.depth, self.heads, self.ff_dim = depth, heads, ff_dim
        self.dropout = float(dropout)
        self.head_dim = in_dim if head_dim is None else positive_int("head_dim", head_dim)
        self.proj = nn.Identity() if self.width == token_dim else nn.Linear(token_dim, self.width)
        self.encoder = TokenEncoder(self.width, self.width, depth, heads, ff_dim, self.dropout,
                                    norm_first=False)
        h = self.head_dim
        self.head = nn.Sequential(nn.Linear(2 * self.width, h), nn.ReLU(),
                                  nn.Linear(h, max(1, h // 2)), nn.ReLU(),
                                  nn.Linear(max(1, h // 2), 1))
        self.register_buffer("pe", rank_encoding(self.k, self.width), persistent=False)
        self.register_buffer("center", torch.zeros(in_dim))

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "k": self.k, "width": self.width, "depth": self.depth,
                "heads": self.heads, "ff_dim": self.ff_dim, "dropout": self.dropout,
                "head_dim": self.head_dim}

    def forward(self, feats: torch.Tensor, pad: torch.Tensor) -> torch.Tensor:
        h = self.proj(feats) + self.pe[: feats.shape[1]]
        h = self.encoder(h, pad)
        h0 = h[:, :1].expand_as(h)
        return self.head(torch.cat([h0, h], dim=-1)).squeeze(-1)


def _tokens(xt: torch.Tensor, nbr: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    return neighbour_tokens(xt, torch.from_numpy(nbr))


def train_chen(
    x: np.ndarray, y: np.ndarray, ids: np.ndarray,
    val: tuple[np.ndarray, np.ndarray, np.ndarray], *,
    k: int, width: int | None, depth: int, heads: int, ff_dim: int, dropout: float,
    head_dim: int | None, epochs: int, batch_size: int, lr: float, weight_decay: float,
    seed: int, center: bool = True, desc: str = "Chen similarity train",
    nodes_per_epoch: int | None = None, val_nodes: int | None = None,
) -> tuple[ChenNet, dict[str, Any]]:
    """Train :class:`ChenNet` on ``(x, y)`` with kNN ``ids`` (self first); select on
    ``val = (x, y, ids)`` of other people (lowest validation BCE). ``center``,
    ``nodes_per_epoch``, ``val_nodes``: as :func:`faceclust.nn.pairtrain.train_slot_model`."""
    return train_slot_model(
        lambda: ChenNet(x.shape[1], k, width, depth, heads, ff_dim, dropout, head_dim),
        x, y, ids, val, k=k, two_class=False, epochs=epochs, batch_size=batch_size, lr=lr,
        weight_decay=weight_decay, seed=seed, center=center,
        loss_name="BCE-with-logits per slot", optimizer_name="adamw (one step per batch)",
        desc=desc, nodes_per_epoch=nodes_per_epoch, val_nodes=val_nodes,
    )


def predict_similarity(
    model: ChenNet, x: np.ndarray, ids: np.ndarray, *, batch_size: int = 512,
    precision: str = "fp32", desc: str = "Chen similarity",
) -> np.ndarray:
    """``[N, k_model]`` float32: ``sigmoid(logit)`` = P(same identity) of each slot of ``ids``
    (cut or padded with -1 to the model's k); missing slots 0, the self slot 1."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(f"similarity model expects {model.in_dim}-d features, got {x.shape[1]}-d")
    xt = torch.from_numpy(centred(x, model.center))
    nbr = neighbour_ids_for(np.asarray(ids), model.k)
    n = len(nbr)
    out = np.zeros((n, model.k), dtype=np.float32)
    net, ctx = run_precision(model.eval(), precision)
    with torch.inference_mode(), progress(total=n, desc=desc, unit="node") as bar:
        for s in range(0, n, batch_size):
            f, pad = _tokens(xt, nbr[s : s + batch_size])
            with ctx():
                lg = net(f, pad)
            out[s : s + len(f)] = torch.sigmoid(lg.float()).masked_fill(pad, 0.0).numpy()
            bar.update(len(f))
    out[:, 0] = np.where(nbr[:, 0] >= 0, 1.0, 0.0)
    return out


def save_chen(model: ChenNet, directory: str | os.PathLike, name: str,
              meta: dict[str, Any]) -> None:
    """Write ``<name>.safetensors`` + ``<name>.json`` into ``directory``."""
    save_checkpoint(directory, name, model, kind=KIND, config=model.config(), meta=meta)


def load_chen(directory: str | os.PathLike, name: str) -> tuple[ChenNet, dict[str, Any]]:
    """Load a :class:`ChenNet` checkpoint ``name`` (validated) and its training ``meta``."""
    return load_model(directory, name, ChenNet, kind=KIND, spec=_CONFIG_SPEC)
