"""PCENet (LCE-PCENet, CVPR'23): same-identity probability of a pair of nodes (i, j).

Input: the k kNN neighbours of i (self first) stacked on the k of j, 2k tokens
``[f || A_row]`` with ``A`` the ``[2k, 2k]`` cosine matrix of those rows; pre-norm
Transformer layers; the encoded tokens 0 (i) and k (j) each pass an "adjust" MLP
``Linear(W, D) -> PReLU -> Linear(D, D)``; the classifier reads
``[f_i || x_i || f_j || x_j]`` through ``Linear(4D, M) -> PReLU -> Linear(M, M) ->
PReLU -> Linear(M, 2)``. Upstream: ``W = D + 2k``, 3 layers, 8 heads, FF 1024,
``M = 2048`` (``width=None, mlp_dim=2048``). The same architecture is FC-ESER's
edge-recall model.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from .._progress import progress
from ..errors import InputError
from .checkpoint import load_model, save_checkpoint
from .lcenet import (
    SplitProjection,
    TokenEncoder,
    centred,
    neighbour_ids_for,
    neighbour_tokens,
    positive_int,
    projected_tokens,
    run_precision,
)

__all__ = ["PCENet", "load_pcenet", "pair_inputs", "predict_pairs", "save_pcenet"]

KIND = "pcenet"
_CONFIG_SPEC = {
    "in_dim": int, "k": int, "width": int, "depth": int, "heads": int, "ff_dim": int,
    "dropout": float, "mlp_dim": int,
}


class PCENet(nn.Module):
    """``tokens [B, 2k, D + 2k]``, ``pad [B, 2k]``, ``f_i, f_j [B, D]`` -> logits ``[B, 2]``."""

    def __init__(self, in_dim: int, k: int, width: int | None = None, depth: int = 3,
                 heads: int = 8, ff_dim: int = 1024, dropout: float = 0.1,
                 mlp_dim: int = 2048) -> None:
        super().__init__()
        self.in_dim = positive_int("in_dim", in_dim)
        self.k = positive_int("k", k)
        token_dim = in_dim + 2 * k
        self.width = token_dim if width is None else positive_int("width", width)
        self.depth, self.heads, self.ff_dim = depth, heads, ff_dim
        self.dropout = float(dropout)
        self.mlp_dim = positive_int("mlp_dim", mlp_dim)
        self.encoder = TokenEncoder(token_dim, self.width, depth, heads, ff_dim, self.dropout)
        self.adjust = nn.Sequential(
            nn.Linear(self.width, in_dim), nn.PReLU(), nn.Linear(in_dim, in_dim)
        )
        self.classifier = nn.Sequential(
            nn.Linear(4 * in_dim, mlp_dim), nn.PReLU(), nn.Linear(mlp_dim, mlp_dim), nn.PReLU(),
            nn.Linear(mlp_dim, 2),
        )
        self.register_buffer("center", torch.zeros(in_dim))  # see faceclust.nn.lcenet.centred

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "k": self.k, "width": self.width, "depth": self.depth,
                "heads": self.heads, "ff_dim": self.ff_dim, "dropout": self.dropout,
                "mlp_dim": self.mlp_dim}

    def forward(self, tokens: torch.Tensor, pad: torch.Tensor, f_i: torch.Tensor,
                f_j: torch.Tensor, projected: bool = False) -> torch.Tensor:
        h = self.encoder(tokens, pad, projected)
        a_i = self.adjust(h[:, 0])
        a_j = self.adjust(h[:, self.k])
        return self.classifier(torch.cat([f_i, a_i, f_j, a_j], dim=-1))


def pair_inputs(
    xt: torch.Tensor, nbr: np.ndarray, src: np.ndarray, dst: np.ndarray,
    split: SplitProjection | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """PCENet inputs of pairs ``(src, dst)``: tokens, pad mask, ``f_i``, ``f_j``.

    ``nbr [N, k]`` are the (cut/padded) kNN ids, self first. With ``split`` the
    tokens come already projected (:func:`~faceclust.nn.lcenet.projected_tokens`).
    """
    both = torch.from_numpy(np.concatenate([nbr[src], nbr[dst]], axis=1))
    if split is None:
        tok, pad = neighbour_tokens(xt, both)
    else:
        tok, pad = projected_tokens(xt, both, split)
    return tok, pad, xt[torch.from_numpy(src)], xt[torch.from_numpy(dst)]


def predict_pairs(
    model: PCENet, x: np.ndarray, ids: np.ndarray, src: np.ndarray, dst: np.ndarray, *,
    batch_size: int = 512, precision: str = "fp32", desc: str = "PCENet",
) -> np.ndarray:
    """``prob [M]`` float32: P(same identity) of each pair ``(src[m], dst[m])``.

    ``ids`` is the kNN table (self first), cut or padded to the model's k.
    Pairs are processed ``batch_size`` at a time in ``torch.inference_mode``.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(f"PCENet expects {model.in_dim}-d features, got {x.shape[1]}-d")
    x = centred(x, model.center)
    src = np.asarray(src, dtype=np.int64)
    dst = np.asarray(dst, dtype=np.int64)
    nbr = neighbour_ids_for(np.asarray(ids), model.k)
    out = np.zeros(len(src), dtype=np.float32)
    net, ctx = run_precision(model.eval(), precision)
    xt = torch.from_numpy(x)
    with torch.inference_mode(), progress(total=len(src), desc=desc, unit="pair") as bar:
        split = SplitProjection.of(net.encoder, xt)
        for s in range(0, len(src), batch_size):
            with ctx():
                tok, pad, fi, fj = pair_inputs(xt, nbr, src[s : s + batch_size],
                                               dst[s : s + batch_size], split)
                logits = net(tok, pad, fi, fj, split is not None)
            out[s : s + len(fi)] = torch.softmax(logits.float(), dim=-1)[:, 1].numpy()
            bar.update(len(fi))
    return out


def save_pcenet(model: PCENet, directory: str | os.PathLike, name: str,
                meta: dict[str, Any]) -> None:
    """Write ``<name>.safetensors`` + ``<name>.json`` into ``directory``."""
    save_checkpoint(directory, name, model, kind=KIND, config=model.config(), meta=meta)


def load_pcenet(directory: str | os.PathLike, name: str) -> tuple[PCENet, dict[str, Any]]:
    """Load a PCENet checkpoint ``name`` (validated) and its training ``meta``."""
    return load_model(directory, name, PCENet, kind=KIND, spec=_CONFIG_SPEC)
