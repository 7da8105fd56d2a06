"""Ada-NETS networks (ICLR'22): the Adaptive Filter ("AND") and the GCN, plain torch on CPU.

* :class:`AdaptiveFilter` -- reads a node's structure-space candidate list (the
  features of its k re-ranked neighbours, self first) with a bidirectional LSTM
  and predicts ``k_hat / k``, how many candidates to keep (``AND/net/gcn_v.py``).
  The LSTM's input projection is applied once per *node* and gathered per
  sequence position (the same arithmetic as ``nn.LSTM``, which would project
  every one of the ``N k`` positions): inference cost is the recurrence only.
* :class:`AdaGCN` -- two DGL-style ``SAGEConv(aggregator='gcn')`` layers and an
  FC + PReLU head; its L2-normalised output is the enhanced feature that the
  final rule clusters (``GCN/net/gat.py``).
* :func:`cluster_loss` (``allmax``) and :func:`relative_huber` -- the two losses.

The graph operator of the GCN is :func:`gcn_operator`: as in the original, DGL
drops the adjacency's weights, so only its sparsity pattern (with the self
loop) counts, and the ``gcn`` aggregator averages ``{i} + N_in(i)``.
"""

from __future__ import annotations

import math
import os
import time
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._progress import progress
from ..errors import InputError, ParameterError
from .checkpoint import check_config, load_checkpoint, load_state, save_checkpoint
from .layers import to_torch_sparse
from .train import SgdSchedule, seeded, train_steps

__all__ = [
    "AdaGCN",
    "AdaptiveFilter",
    "cluster_loss",
    "gcn_operator",
    "load_adanets",
    "predict_filter",
    "predict_gcn",
    "relative_huber",
    "save_adanets",
    "train_filter",
    "train_gcn",
]

FILTER_NAME, FILTER_KIND = "ada_filter", "ada-nets-filter"
GCN_NAME, GCN_KIND = "ada_gcn", "ada-nets-gcn"
_FILTER_SPEC = {"in_dim": int, "hidden_dim": int, "mlp_dim": int, "k": int}
_GCN_SPEC = {"in_dim": int, "hidden_dim": int, "out_dim": int}
_SQRT_HALF = 1.0 / math.sqrt(2.0)


def _positive(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ParameterError(f"{name} must be a positive integer, got {v!r}")
    return v


# ----------------------------------------------------------------- Adaptive Filter
class AdaptiveFilter(nn.Module):
    """``X [M, D]`` (rows the sequences index) and ``seq [B, k]`` row indices -> ``k_hat/k [B]``.

    BiLSTM(D -> hidden, both directions) -> Linear(2 hidden -> D); residual
    ``(proj + x) / sqrt 2``; L2-normalise each position, mean over the k
    positions, L2-normalise; MLP ``D -> mlp -> D`` (PReLU, dropout 0.5) with the
    residual ``(r + mlp(r)) / sqrt 2``; Linear(D -> 1). The original has D = 256,
    hidden 256, mlp 512.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 64, mlp_dim: int = 512, k: int = 80) -> None:
        super().__init__()
        for name, v in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("mlp_dim", mlp_dim),
                        ("k", k)):
            _positive(f"Adaptive Filter {name}", v)
        self.in_dim, self.hidden_dim, self.mlp_dim, self.k = in_dim, hidden_dim, mlp_dim, k
        self.lstm = nn.LSTM(in_dim, hidden_dim, batch_first=True, bidirectional=True)
        self.proj = nn.Linear(2 * hidden_dim, in_dim)
        self.mlp = nn.Sequential(
            nn.Linear(in_dim, mlp_dim), nn.PReLU(mlp_dim), nn.Dropout(0.5),
            nn.Linear(mlp_dim, in_dim), nn.PReLU(in_dim), nn.Dropout(0.5),
        )
        self.out = nn.Linear(in_dim, 1)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "hidden_dim": self.hidden_dim, "mlp_dim": self.mlp_dim,
                "k": self.k}

    def _direction(self, gin: torch.Tensor, reverse: bool) -> torch.Tensor:
        """LSTM recurrence over ``gin [B, L, 4H]`` (input projection + both biases)."""
        sfx = "_reverse" if reverse else ""
        w_hh = getattr(self.lstm, f"weight_hh_l0{sfx}")
        b, length, _ = gin.shape
        h = gin.new_zeros(b, self.hidden_dim)
        c = gin.new_zeros(b, self.hidden_dim)
        outs: list[torch.Tensor] = [h] * length
        steps = range(length - 1, -1, -1) if reverse else range(length)
        for t in steps:
            i, f, g, o = (gin[:, t] + h @ w_hh.t()).chunk(4, dim=1)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
            h = torch.sigmoid(o) * torch.tanh(c)
            outs[t] = h
        return torch.stack(outs, dim=1)

    def forward(self, x: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        lstm = self.lstm
        parts = []
        for sfx, rev in (("", False), ("_reverse", True)):
            w_ih = getattr(lstm, f"weight_ih_l0{sfx}")
            bias = getattr(lstm, f"bias_ih_l0{sfx}") + getattr(lstm, f"bias_hh_l0{sfx}")
            g = x @ w_ih.t() + bias  # once per node, gathered per position below
            parts.append(self._direction(g[seq], rev))
        xs = x[seq]
        h = (self.proj(torch.cat(parts, dim=2)) + xs) * _SQRT_HALF
        r = nn.functional.normalize(nn.functional.normalize(h, dim=2).mean(dim=1), dim=1)
        o = (r + self.mlp(r)) * _SQRT_HALF
        return self.out(o).squeeze(-1)


def relative_huber(pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber loss (``delta``) of the relative error ``pred / target - 1``, averaged (AND's loss)."""
    e = pred / target - 1.0
    a = e.abs()
    return torch.where(a <= delta, 0.5 * e * e, delta * (a - 0.5 * delta)).mean()


def _seq_batch(x: np.ndarray, seq_ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows used by ``seq_ids [B, k]`` (-1 -> the row's own node) and the re-indexed sequences."""
    seq = np.where(seq_ids >= 0, seq_ids, seq_ids[:, :1])
    uniq, inv = np.unique(seq, return_inverse=True)
    return torch.from_numpy(x[uniq]), torch.from_numpy(inv.reshape(seq.shape).astype(np.int64))


def train_filter(
    features: np.ndarray, ss_ids: np.ndarray, target: np.ndarray, *, hidden_dim: int = 64,
    mlp_dim: int = 512, steps: int = 400, batch_size: int = 256, lr: float = 0.01,
    momentum: float = 0.9, weight_decay: float = 1e-5, warmup: int = 128, seed: int = 42,
) -> tuple[AdaptiveFilter, dict[str, Any]]:
    """Train the Adaptive Filter on ``ss_ids [N, k]`` (structure-space lists) against
    ``target = k*/k [N]`` (:func:`faceclust.stages.neighbours.filter_targets`).

    SGD with momentum, cosine decay after a linear warm-up, shuffled node
    batches (original: 40,000 steps of 1,024 nodes on a GPU).
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    ss_ids = np.asarray(ss_ids)
    target = np.asarray(target, dtype=np.float32)
    n, k = ss_ids.shape
    if target.shape != (n,) or not np.all(target > 0):
        raise InputError("Adaptive Filter targets must be N positive values (k*/k)")
    _positive("steps", steps)
    _positive("batch_size", batch_size)
    sched = SgdSchedule(steps=steps, lr=lr, momentum=momentum, weight_decay=weight_decay,
                        decay="cosine", warmup=min(warmup, steps // 2))
    rng = np.random.default_rng(seed)
    order: list[int] = []
    with seeded(seed):
        model = AdaptiveFilter(x.shape[1], hidden_dim, mlp_dim, k)

        def loss_fn(_step: int) -> torch.Tensor:
            nonlocal order
            if len(order) < batch_size:  # epochs of shuffled nodes
                order = order + rng.permutation(n).tolist()
            rows, order = np.asarray(order[:batch_size]), order[batch_size:]
            xb, seq = _seq_batch(x, ss_ids[rows])
            return relative_huber(model(xb, seq), torch.from_numpy(target[rows]))

        log = train_steps(model, loss_fn, sched, desc="Ada-NETS filter train")
    meta = {"steps": steps, "batch_size": batch_size, "lr": lr, "momentum": momentum,
            "weight_decay": weight_decay, "warmup": sched.warmup, "seed": seed, **log.as_meta()}
    return model, meta


@torch.no_grad()
def predict_filter(
    model: AdaptiveFilter, features: np.ndarray, ss_ids: np.ndarray, *, chunk: int = 1024
) -> np.ndarray:
    """``k_hat [N]`` int64 in ``[1, k]``: ``round(pred * k)`` clipped, per node (row chunks)."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(f"features have dimension {x.shape[1]}, the Adaptive Filter "
                         f"was trained on {model.in_dim}")
    model.eval()
    n, k = ss_ids.shape
    out = np.empty(n, dtype=np.int64)
    with progress(total=n, desc="Ada-NETS filter", unit="node") as bar:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            xb, seq = _seq_batch(x, np.asarray(ss_ids[lo:hi]))
            pred = model(xb, seq).numpy().astype(np.float64)
            out[lo:hi] = np.clip(np.round(pred * model.k), 1, k)
            bar.update(hi - lo)
    return out


# --------------------------------------------------------------------------- GCN
def gcn_operator(adj: sp.spmatrix, *, weighted: bool = False) -> sp.csr_matrix:
    """The aggregation matrix of the GCN: ``D^-1 (B + I)`` with ``B`` = ``adj``'s pattern.

    ``adj`` holds a self loop on every row (``max(S, S^T) + I``); DGL's
    ``SAGEConv('gcn')`` averages the in-neighbours *and* the node itself, so
    the self term counts twice, as in the original. ``weighted=True`` uses
    ``adj``'s (row-normalised) values instead (the "fixed" mode the spec names).
    """
    a = sp.csr_matrix(adj, dtype=np.float32)
    if weighted:
        return a
    b = a.copy()
    b.data[:] = 1.0
    b = b + sp.identity(a.shape[0], dtype=np.float32, format="csr")
    deg = np.asarray(b.sum(axis=1)).reshape(-1)
    out = sp.csr_matrix(sp.diags((1.0 / deg).astype(np.float32)) @ b, dtype=np.float32)
    out.sort_indices()
    return out


class AdaGCN(nn.Module):
    """Enhanced features: ``SAGE-gcn(D -> hidden) -> L2 -> SAGE-gcn(hidden -> hidden) -> FC + PReLU -> L2``.

    Each SAGE-gcn layer is ``ReLU(W (M h) + b)`` with ``M`` from :func:`gcn_operator`.
    """

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 512) -> None:
        super().__init__()
        for name, v in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
            _positive(f"Ada-NETS GCN {name}", v)
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.conv1 = nn.Linear(in_dim, hidden_dim)
        self.conv2 = nn.Linear(hidden_dim, hidden_dim)
        self.fc = nn.Linear(hidden_dim, out_dim)
        self.act = nn.PReLU(out_dim)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "hidden_dim": self.hidden_dim, "out_dim": self.out_dim}

    def layer1(self, mx: torch.Tensor) -> torch.Tensor:
        """First layer from the aggregated input ``M X`` (L2-normalised output)."""
        return nn.functional.normalize(torch.relu(self.conv1(mx)), dim=1)

    def head(self, mh: torch.Tensor) -> torch.Tensor:
        """Second layer from ``M H1``, then the FC head (L2-normalised enhanced features)."""
        return nn.functional.normalize(self.act(self.fc(torch.relu(self.conv2(mh)))), dim=1)


def cluster_loss(
    feat: torch.Tensor, labels: torch.Tensor, *, pmargin: float = 0.9, margin: float = 1.0
) -> torch.Tensor:
    """``allmax`` loss: mean ``relu(pmargin - cos)`` over same-label pairs (diagonal included)
    plus ``relu(margin + max cos)`` over the single hardest different-label pair."""
    sim = feat @ feat.t()
    same = labels[:, None] == labels[None, :]
    pos = torch.relu(pmargin - sim[same]).mean() if bool(same.any()) else sim.new_zeros(())
    diff = ~same
    neg = torch.relu(margin + sim[diff].max()) if bool(diff.any()) else sim.new_zeros(())
    return pos + neg


def train_gcn(
    features: np.ndarray, labels: np.ndarray, adj: sp.spmatrix, *, hidden_dim: int = 512,
    out_dim: int = 512, steps: int = 600, sample: int = 128, seeds_per_step: int = 1,
    lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 1e-5, warmup: int = 100,
    weighted: bool = False, seed: int = 42, order_adj: sp.spmatrix | None = None,
) -> tuple[AdaGCN, dict[str, Any]]:
    """Train the GCN on graph ``adj`` (``[N, N]``, e.g. the plain kNN graph); return ``(model, meta)``.

    Each step takes ``seeds_per_step`` random seed nodes and, per seed, up to
    ``sample`` of its neighbours on the *order* graph ``order_adj`` (default
    ``adj``; the original's ``train_orderadjfile``) without replacement: the loss is
    :func:`cluster_loss` over those ~129 output nodes, as the original's
    one-seed sampler. Unlike the original (80 sampled neighbours per layer),
    the two aggregations use every neighbour -- the same operator as at
    inference; ``M X`` is computed once.
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    y = np.asarray(labels)
    n = x.shape[0]
    _positive("steps", steps)
    _positive("sample", sample)
    _positive("seeds_per_step", seeds_per_step)
    m = gcn_operator(adj, weighted=weighted)
    mx = torch.from_numpy(np.ascontiguousarray(m @ x, dtype=np.float32))
    pattern = sp.csr_matrix(adj if order_adj is None else order_adj)
    _, codes = np.unique(y, return_inverse=True)
    yt = torch.from_numpy(codes.astype(np.int64))
    rng = np.random.default_rng(seed)
    sched = SgdSchedule(steps=steps, lr=lr, momentum=momentum, weight_decay=weight_decay,
                        decay="cosine", warmup=min(warmup, steps // 2))
    with seeded(seed):
        model = AdaGCN(x.shape[1], hidden_dim, out_dim)

        def loss_fn(_step: int) -> torch.Tensor:
            outs = []
            for s in rng.integers(0, n, size=seeds_per_step):
                nb = pattern.indices[pattern.indptr[s] : pattern.indptr[s + 1]]
                nb = nb[nb != s]
                if len(nb) > sample:
                    nb = rng.choice(nb, size=sample, replace=False)
                outs.append(np.concatenate([[s], nb]))
            out_nodes = np.unique(np.concatenate(outs))
            sub = m[out_nodes]
            need = np.unique(sub.indices)
            sub = sub[:, need]  # [|out|, |need|]
            h1 = model.layer1(mx[torch.from_numpy(need)])
            mh = torch.sparse.mm(to_torch_sparse(sub), h1)
            feat = model.head(mh)
            return cluster_loss(feat, yt[torch.from_numpy(out_nodes)])

        log = train_steps(model, loss_fn, sched, desc="Ada-NETS GCN train")
    meta = {"steps": steps, "sample": sample, "seeds_per_step": seeds_per_step, "lr": lr,
            "momentum": momentum, "weight_decay": weight_decay, "warmup": sched.warmup,
            "weighted": weighted, "seed": seed, **log.as_meta()}
    return model, meta


@torch.no_grad()
def predict_gcn(
    model: AdaGCN, features: np.ndarray, adj: sp.spmatrix, *, weighted: bool = False,
    chunk: int = 65536,
) -> np.ndarray:
    """Enhanced (L2-normalised) features ``[N, out_dim]`` float32 on graph ``adj`` (full neighbourhoods)."""
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(f"features have dimension {x.shape[1]}, the Ada-NETS GCN "
                         f"was trained on {model.in_dim}")
    model.eval()
    m = gcn_operator(adj, weighted=weighted)
    n = x.shape[0]
    h1 = np.empty((n, model.hidden_dim), dtype=np.float32)
    for lo in range(0, n, chunk):
        mx = torch.from_numpy(np.ascontiguousarray(m[lo : lo + chunk] @ x, dtype=np.float32))
        h1[lo : lo + chunk] = model.layer1(mx).numpy()
    out = np.empty((n, model.out_dim), dtype=np.float32)
    for lo in range(0, n, chunk):
        mh = torch.from_numpy(np.ascontiguousarray(m[lo : lo + chunk] @ h1, dtype=np.float32))
        out[lo : lo + chunk] = model.head(mh).numpy()
    return out


# -------------------------------------------------------------------- checkpoints
def save_adanets(directory: str | os.PathLike, filt: AdaptiveFilter, gcn: AdaGCN,
                 meta: dict[str, Any]) -> None:
    """Write both networks (``ada_filter.*``, ``ada_gcn.*``; the JSON ``meta`` on the GCN's)."""
    save_checkpoint(directory, FILTER_NAME, filt, kind=FILTER_KIND, config=filt.config(),
                    meta={"see": f"{GCN_NAME}.json"})
    save_checkpoint(directory, GCN_NAME, gcn, kind=GCN_KIND, config=gcn.config(), meta=meta)


def load_adanets(directory: str | os.PathLike) -> tuple[AdaptiveFilter, AdaGCN, dict[str, Any]]:
    """Load ``(filter, gcn, meta)`` from a model directory (validated; ``InputError`` if absent)."""
    out = []
    meta: dict[str, Any] = {}
    for name, kind, spec, cls in ((FILTER_NAME, FILTER_KIND, _FILTER_SPEC, AdaptiveFilter),
                                  (GCN_NAME, GCN_KIND, _GCN_SPEC, AdaGCN)):
        config, tensors, meta = load_checkpoint(directory, name, kind=kind)
        model = cls(**check_config(config, spec, source=f"{directory}/{name}.json"))
        out.append(load_state(model, tensors, source=f"{directory}/{name}.safetensors"))
    return out[0], out[1], meta


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)``."""
    t0 = time.perf_counter()
    res = fn(*args, **kwargs)
    return res, time.perf_counter() - t0
