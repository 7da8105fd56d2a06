"""LCENet (LCE-PCENet, CVPR'23): same-identity probability of every kNN neighbour of a node.

Input of node i: one token per kNN slot t (self first), ``[f(nbr_t) || A_t]`` where
``f`` is the L2-normalised feature and ``A = F F^T`` the ``[k, k]`` cosine matrix of
the k neighbours (row t). Encoder: pre-norm Transformer layers (ReLU, no positional
encoding, no final norm). Head per token t: ``[h_0 || h_t] -> Linear(2W, D) -> PReLU
-> Linear(D, 2)``; softmax column 1 is ``P(nbr_t has i's identity)``.

Upstream uses ``W = D + k`` tokens straight (3 layers, 8 heads, FF 1024): set
``width=None``. ``width``/``depth``/``heads``/``ff_dim`` are parameters so a small
model (an input ``Linear(D + k, W)`` projection first) can trade quality for speed.

Inference (:func:`predict_connectivity`) runs in ``torch.inference_mode`` over
node chunks (memory ``O(batch * k * (D + k + ff_dim))``), with a tqdm bar, in
``fp32``, ``bf16`` (autocast) or ``int8`` (dynamic quantisation of the Linear
layers, :func:`quantized`).
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from .._progress import progress
from ..errors import InputError, ParameterError
from .checkpoint import load_model, save_checkpoint

__all__ = [
    "CHECKPOINT_NAME",
    "PRECISIONS",
    "LCENet",
    "SplitProjection",
    "TokenEncoder",
    "centred",
    "load_lcenet",
    "neighbour_tokens",
    "predict_connectivity",
    "projected_tokens",
    "quantized",
    "run_precision",
    "save_lcenet",
]

CHECKPOINT_NAME = "lcenet"
KIND = "lcenet"
PRECISIONS = ("fp32", "bf16", "int8")
_CONFIG_SPEC = {
    "in_dim": int, "k": int, "width": int, "depth": int, "heads": int, "ff_dim": int,
    "dropout": float, "head_dim": int,
}


def positive_int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ParameterError(f"{name} must be a positive integer, got {v!r}")
    return v


class TokenEncoder(nn.Module):
    """Optional ``Linear(token_dim, width)`` then ``depth`` Transformer layers (pre-norm;
    ``norm_first=False``: post-norm, as Chen et al.'s DETR-style layer).

    ``forward(tokens [B, m, token_dim], pad [B, m] bool) -> [B, m, width]``;
    ``pad`` marks missing neighbours (masked as attention keys).
    """

    def __init__(self, token_dim: int, width: int, depth: int, heads: int, ff_dim: int,
                 dropout: float, norm_first: bool = True) -> None:
        super().__init__()
        for name, v in (("token_dim", token_dim), ("width", width), ("depth", depth),
                        ("heads", heads), ("ff_dim", ff_dim)):
            positive_int(name, v)
        if width % heads:
            raise ParameterError(f"width {width} must be divisible by heads {heads}")
        if not 0.0 <= dropout < 1.0:
            raise ParameterError(f"dropout must lie in [0, 1), got {dropout!r}")
        self.proj = nn.Identity() if width == token_dim else nn.Linear(token_dim, width)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(width, heads, ff_dim, dropout, batch_first=True,
                                       norm_first=norm_first)
            for _ in range(depth)
        )

    def forward(self, tokens: torch.Tensor, pad: torch.Tensor,
                projected: bool = False) -> torch.Tensor:
        """``projected``: ``tokens`` already went through ``proj`` (:func:`projected_tokens`)."""
        h = tokens if projected else self.proj(tokens)
        mask = pad if bool(pad.any()) else None
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=mask)
        if mask is not None:  # the fast path returns padded rows as zeros, the slow path not
            h = h.masked_fill(pad[..., None], 0.0)
        return h


def neighbour_tokens(x: torch.Tensor, nbr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokens ``[B, m, D + m]`` = ``[f(nbr) || F F^T]`` and the pad mask ``[B, m]`` (-1 ids).

    Missing neighbours get a zero feature, so their rows and columns of the
    cosine block are 0.
    """
    pad = nbr < 0
    f = x[nbr.clamp_min(0)].masked_fill(pad[..., None], 0.0)
    a = torch.bmm(f, f.transpose(1, 2))
    return torch.cat([f, a], dim=-1), pad


class SplitProjection:
    """The input projection of a :class:`TokenEncoder` split over the token's two parts.

    ``proj([f || A_row]) = f W_f^T + A_row W_A^T + b``: ``f W_f^T`` is computed once
    per node (``[N, W]``) and gathered, so inference never builds the ``[B, m, D + m]``
    token tensor nor multiplies its D columns once per slot (D = 512: ~95 % of the
    projection's work and the largest copies of the hot path). Same numbers as the
    plain path up to float rounding. None (:meth:`of`) when the encoder has no
    plain ``Linear`` projection (``width=None``, or an int8-quantised copy).
    """

    def __init__(self, xp: torch.Tensor, w_a: torch.Tensor, bias: torch.Tensor) -> None:
        self.xp, self.w_a, self.bias = xp, w_a, bias

    @classmethod
    def of(cls, encoder: TokenEncoder, xt: torch.Tensor) -> SplitProjection | None:
        proj = encoder.proj
        if type(proj) is not nn.Linear:
            return None
        d = xt.shape[1]
        w = proj.weight.detach()
        return cls(xt @ w[:, :d].T, w[:, d:].T.contiguous(), proj.bias.detach())


def projected_tokens(
    xt: torch.Tensor, nbr: torch.Tensor, split: SplitProjection
) -> tuple[torch.Tensor, torch.Tensor]:
    """``proj(neighbour_tokens(xt, nbr))`` through ``split`` and the pad mask."""
    pad = nbr < 0
    has_pad = bool(pad.any())
    idx = nbr.clamp_min(0) if has_pad else nbr
    f = xt[idx]
    hp = split.xp[idx]
    if has_pad:
        f = f.masked_fill(pad[..., None], 0.0)
        hp = hp.masked_fill(pad[..., None], 0.0)
    a = torch.bmm(f, f.transpose(1, 2))
    return torch.baddbmm(hp + split.bias, a, split.w_a.expand(len(a), -1, -1)), pad


def centred(x: np.ndarray, center: torch.Tensor) -> np.ndarray:
    """Rows of ``x`` minus ``center``, L2-normalised again (float32): the networks' input space.

    ``center`` is the training features' mean, stored with the model (zeros = off).
    dlib-like embeddings sit in a narrow cone (different people at cosine ~0.83),
    so raw features and cosine rows barely vary and the networks learn slowly;
    centring spreads them, and leaves ArcFace-like (zero-mean) features almost as
    they are. Only the networks' inputs change, never the kNN graph.
    """
    c = center.detach().numpy().astype(np.float32)
    if not c.any():
        return np.ascontiguousarray(x, dtype=np.float32)
    out = np.asarray(x, dtype=np.float32) - c
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.maximum(norm, 1e-12)


class LCENet(nn.Module):
    """``tokens [B, k, D + k]``, ``pad [B, k]`` -> logits ``[B, k, 2]`` (column 1 = same identity).

    Feed it features through :func:`centred` with its ``center`` buffer.
    """

    def __init__(self, in_dim: int, k: int, width: int | None = None, depth: int = 3,
                 heads: int = 8, ff_dim: int = 1024, dropout: float = 0.1,
                 head_dim: int | None = None) -> None:
        super().__init__()
        self.in_dim = positive_int("in_dim", in_dim)
        self.k = positive_int("k", k)
        self.width = in_dim + k if width is None else positive_int("width", width)
        self.depth, self.heads, self.ff_dim = depth, heads, ff_dim
        self.dropout = float(dropout)
        self.head_dim = in_dim if head_dim is None else positive_int("head_dim", head_dim)
        self.encoder = TokenEncoder(in_dim + k, self.width, depth, heads, ff_dim, self.dropout)
        self.head = nn.Sequential(
            nn.Linear(2 * self.width, self.head_dim), nn.PReLU(), nn.Linear(self.head_dim, 2)
        )
        self.register_buffer("center", torch.zeros(in_dim))

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "k": self.k, "width": self.width, "depth": self.depth,
                "heads": self.heads, "ff_dim": self.ff_dim, "dropout": self.dropout,
                "head_dim": self.head_dim}

    def forward(self, tokens: torch.Tensor, pad: torch.Tensor,
                projected: bool = False) -> torch.Tensor:
        h = self.encoder(tokens, pad, projected)
        h0 = h[:, :1].expand_as(h)
        return self.head(torch.cat([h0, h], dim=-1))


# ------------------------------------------------------------------ inference
def quantized(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with its Linear layers dynamically quantised to int8 (CPU)."""
    import warnings

    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():  # torch 2.x deprecates torch.ao in favour of torchao
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8)


def run_precision(model: nn.Module, precision: str) -> tuple[nn.Module, Any]:
    """``(model to run, context manager factory)`` for ``precision`` in :data:`PRECISIONS`."""
    if precision == "fp32":
        return model, contextlib.nullcontext
    if precision == "bf16":
        return model, lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    if precision == "int8":
        return quantized(model), _no_fastpath
    raise ParameterError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")


@contextlib.contextmanager
def _no_fastpath() -> Iterator[None]:
    """Run Transformer layers on the plain path: the fused one reads ``linear.weight`` as
    a tensor, which a dynamically quantised Linear does not have."""
    old = torch.backends.mha.get_fastpath_enabled()
    torch.backends.mha.set_fastpath_enabled(False)
    try:
        yield
    finally:
        torch.backends.mha.set_fastpath_enabled(old)


def neighbour_ids_for(ids: np.ndarray, k: int) -> np.ndarray:
    """``ids`` cut or padded (with -1) to exactly ``k`` columns."""
    n, kk = ids.shape
    if kk >= k:
        return np.ascontiguousarray(ids[:, :k], dtype=np.int64)
    out = np.full((n, k), -1, dtype=np.int64)
    out[:, :kk] = ids
    return out


def predict_connectivity(
    model: LCENet, x: np.ndarray, ids: np.ndarray, *, batch_size: int = 512,
    precision: str = "fp32", desc: str = "LCENet",
) -> np.ndarray:
    """``conn [N, k_model]`` float32: P(same identity) of each slot of ``ids`` (self first).

    ``ids`` is cut or padded with -1 to the model's k; missing slots get 0.
    Rows are processed ``batch_size`` at a time (bounded memory).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(f"LCENet expects {model.in_dim}-d features, got {x.shape[1]}-d")
    x = centred(x, model.center)
    nbr = neighbour_ids_for(np.asarray(ids), model.k)
    n = nbr.shape[0]
    out = np.zeros((n, model.k), dtype=np.float32)
    net, ctx = run_precision(model.eval(), precision)
    xt = torch.from_numpy(x)
    with torch.inference_mode(), progress(total=n, desc=desc, unit="node") as bar:
        split = SplitProjection.of(net.encoder, xt)
        for s in range(0, n, batch_size):
            b = torch.from_numpy(nbr[s : s + batch_size])
            with ctx():
                if split is None:
                    tok, pad = neighbour_tokens(xt, b)
                else:
                    tok, pad = projected_tokens(xt, b, split)
                logits = net(tok, pad, split is not None)
            p = torch.softmax(logits.float(), dim=-1)[..., 1].masked_fill(pad, 0.0)
            out[s : s + len(b)] = p.numpy()
            bar.update(len(b))
    return out


# ------------------------------------------------------------------ checkpoint
def save_lcenet(model: LCENet, directory: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Write ``lcenet.safetensors`` + ``lcenet.json`` into ``directory``."""
    save_checkpoint(directory, CHECKPOINT_NAME, model, kind=KIND, config=model.config(), meta=meta)


def load_lcenet(directory: str | os.PathLike) -> tuple[LCENet, dict[str, Any]]:
    """Load an LCENet (validated) and its training ``meta`` from ``directory``."""
    return load_model(directory, CHECKPOINT_NAME, LCENet, kind=KIND, spec=_CONFIG_SPEC)
