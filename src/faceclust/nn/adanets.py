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
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._progress import progress
from ..errors import InputError, ParameterError
from .checkpoint import load_model, save_checkpoint
from .layers import to_torch_sparse
from .train import SgdSchedule, seeded, train_steps

__all__ = [
    "AdaGCN",
    "AdaptiveFilter",
    "SimilarityFilter",
    "cluster_loss",
    "gcn_operator",
    "two_hop_mean",
    "load_adanets",
    "predict_filter",
    "predict_gcn",
    "predict_k",
    "predict_sim_filter",
    "relative_huber",
    "save_adanets",
    "train_filter",
    "train_gcn",
    "train_sim_filter",
]

FILTER_NAME, FILTER_KIND = "ada_filter", "ada-nets-filter"
GCN_NAME, GCN_KIND = "ada_gcn", "ada-nets-gcn"
_FILTER_SPEC = {"in_dim": int, "hidden_dim": int, "mlp_dim": int, "k": int}
_GCN_SPEC = {"in_dim": int, "hidden_dim": int, "out_dim": int, "residual": bool}
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

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The LSTM's input projections (both directions, biases included) of nodes ``x``."""
        lstm = self.lstm
        out = []
        for sfx in ("", "_reverse"):
            w_ih = getattr(lstm, f"weight_ih_l0{sfx}")
            bias = getattr(lstm, f"bias_ih_l0{sfx}") + getattr(lstm, f"bias_hh_l0{sfx}")
            out.append(x @ w_ih.t() + bias)
        return out[0], out[1]

    def forward(self, x: torch.Tensor, seq: torch.Tensor,
                proj: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``k_hat / k`` for each row of ``seq [B, k]`` (indices into ``x``); ``proj`` =
        :meth:`project` of ``x`` when already computed (inference over a whole set)."""
        g_fwd, g_bwd = self.project(x) if proj is None else proj  # once per node
        parts = [self._direction(g_fwd[seq], False), self._direction(g_bwd[seq], True)]
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


def _shuffled_batches(rng: np.random.Generator, n: int, batch_size: int) -> Iterator[np.ndarray]:
    """Row batches of ``batch_size`` from epochs of shuffled ``0..n-1``, endlessly (a batch
    that crosses an epoch's end is completed from the next epoch's shuffle)."""
    order: list[int] = []
    while True:
        if len(order) < batch_size:
            order = order + rng.permutation(n).tolist()
        rows, order = order[:batch_size], order[batch_size:]
        yield np.asarray(rows, dtype=np.int64)


def train_filter(
    features: np.ndarray, ss_ids: np.ndarray, target: np.ndarray, *, hidden_dim: int = 64,
    mlp_dim: int = 512, steps: int = 400, batch_size: int = 256, lr: float = 0.01,
    momentum: float = 0.9, weight_decay: float = 1e-5, warmup: int = 128, seed: int = 42,
    optimizer: str = "sgd",
) -> tuple[AdaptiveFilter, dict[str, Any]]:
    """Train the Adaptive Filter on ``ss_ids [N, k]`` (structure-space lists) against
    ``target = k*/k [N]`` (:func:`faceclust.stages.neighbours.filter_targets`).

    SGD with momentum (the original; ``optimizer="adam"``: Adam), cosine decay
    after a linear warm-up, shuffled node batches (original: 40,000 steps of
    1,024 nodes on a GPU). The LSTM input projection of a batch costs one
    product per distinct node read, so large batches cost little more than small.
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
                        decay="cosine", warmup=min(warmup, steps // 2), optimizer=optimizer)
    batches = _shuffled_batches(np.random.default_rng(seed), n, batch_size)
    with seeded(seed):
        model = AdaptiveFilter(x.shape[1], hidden_dim, mlp_dim, k)

        def loss_fn(_step: int) -> torch.Tensor:
            rows = next(batches)
            xb, seq = _seq_batch(x, ss_ids[rows])
            return relative_huber(model(xb, seq), torch.from_numpy(target[rows]))

        log = train_steps(model, loss_fn, sched, desc="Ada-NETS filter train")
    meta = {"steps": steps, "batch_size": batch_size, "lr": lr, "momentum": momentum,
            "weight_decay": weight_decay, "warmup": sched.warmup, "optimizer": optimizer,
            "seed": seed, **log.as_meta()}
    return model, meta


@torch.no_grad()
def predict_filter(
    model: AdaptiveFilter, features: np.ndarray, ss_ids: np.ndarray, *, chunk: int = 2048,
    proj_bytes: int = 1 << 30,
) -> np.ndarray:
    """``k_hat [N]`` int64 in ``[1, k]``: ``round(pred * k)`` clipped, per node (row chunks).

    The LSTM input projection of every node is computed once when its two
    ``[N, 4 hidden]`` float32 tables fit in ``proj_bytes`` (1 GiB: 584K nodes at
    hidden 64), else per chunk.
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(f"features have dimension {x.shape[1]}, the Adaptive Filter "
                         f"was trained on {model.in_dim}")
    model.eval()
    n, k = ss_ids.shape
    out = np.empty(n, dtype=np.int64)
    # Project every node once (2 x [N, 4H] float32) unless that exceeds proj_bytes;
    # then each chunk projects the nodes it reads (k rows per node at most).
    full = n * 8 * model.hidden_dim * 4 <= proj_bytes
    xt = torch.from_numpy(x)
    proj = model.project(xt) if full else None
    with progress(total=n, desc="Ada-NETS filter", unit="node") as bar:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            if full:
                seq_np = np.asarray(ss_ids[lo:hi])
                seq = torch.from_numpy(np.where(seq_np >= 0, seq_np, seq_np[:, :1]).astype(np.int64))
                pred = model(xt, seq, proj).numpy().astype(np.float64)
            else:
                xb, seq = _seq_batch(x, np.asarray(ss_ids[lo:hi]))
                pred = model(xb, seq).numpy().astype(np.float64)
            out[lo:hi] = np.clip(np.round(pred * model.k), 1, k)
            bar.update(hi - lo)
    return out


# ------------------------------------------------------- similarity-sequence filter
SIM_FILTER_KIND = "ada-nets-filter-sim"
_SIM_FILTER_SPEC = {"channels": int, "hidden_dim": int, "mlp_dim": int, "k": int}


#: Rows of :func:`similarity_sequences` gathered at once (2048 x 80 x 256 floats: 168 MB; all
#: 463K training rows of a 576K synth set at once needed 35 GB).
_SEQ_BLOCK = 2048


def similarity_sequences(features: np.ndarray, ss_ids: np.ndarray, nd: np.ndarray) -> np.ndarray:
    """``[B, k, 2]`` float32 per structure-space candidate: ``(1 - nd, cos)`` to the row's node.

    Missing candidates (id -1) get ``(0, -1)``. Rows of ``ss_ids`` / ``nd`` are nodes of
    ``features`` (column 0 = the node itself).
    """
    x = np.asarray(features, dtype=np.float32)
    ids = np.asarray(ss_ids)
    ok = ids >= 0
    safe = np.where(ok, ids, ids[:, :1])
    cos = np.empty(ids.shape, dtype=np.float32)
    for lo in range(0, len(ids), _SEQ_BLOCK):  # the gathered rows are block x k x D floats
        blk = safe[lo:lo + _SEQ_BLOCK]
        cos[lo:lo + _SEQ_BLOCK] = np.einsum("bd,bkd->bk", x[blk[:, 0]], x[blk])
    s = np.where(ok, 1.0 - np.asarray(nd, dtype=np.float32), 0.0)
    out = np.stack([s, np.where(ok, cos, -1.0)], axis=2).astype(np.float32)
    return np.ascontiguousarray(out)


class SimilarityFilter(nn.Module):
    """Adaptive Filter over a candidate list's *similarities*: ``[B, k, C] -> log k_hat [B]``.

    BiLSTM(C -> hidden) over the k structure-space candidates (self first), the
    mean of its outputs and the output at position 0, then MLP(4 hidden -> mlp ->
    1). Reads ``(1 - nd, cos)`` per candidate (:func:`similarity_sequences`) instead
    of the candidates' D-dimensional features: the sequence model of Ada-NETS's AND
    at a tiny fraction of its cost, and trained on ``log k*`` (see
    :func:`log_huber`): the original's relative error drives predictions to k = 1.
    """

    def __init__(self, channels: int = 2, hidden_dim: int = 32, mlp_dim: int = 64,
                 k: int = 80) -> None:
        super().__init__()
        for name, v in (("channels", channels), ("hidden_dim", hidden_dim),
                        ("mlp_dim", mlp_dim), ("k", k)):
            _positive(f"Adaptive Filter {name}", v)
        self.channels, self.hidden_dim, self.mlp_dim, self.k = channels, hidden_dim, mlp_dim, k
        self.lstm = nn.LSTM(channels, hidden_dim, batch_first=True, bidirectional=True)
        self.mlp = nn.Sequential(nn.Linear(4 * hidden_dim, mlp_dim), nn.PReLU(mlp_dim),
                                 nn.Linear(mlp_dim, 1))

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"channels": self.channels, "hidden_dim": self.hidden_dim,
                "mlp_dim": self.mlp_dim, "k": self.k}

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        h, _ = self.lstm(seq)
        return self.mlp(torch.cat([h.mean(dim=1), h[:, 0]], dim=1)).squeeze(-1)


def log_huber(pred_log: torch.Tensor, k_star: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Huber loss (``delta``) of ``pred_log - log k*``: over- and under-estimating ``k*`` by
    the same factor cost the same (a relative error bounds under- but not over-estimates)."""
    return nn.functional.huber_loss(pred_log, torch.log(k_star), delta=delta)


def train_sim_filter(
    features: np.ndarray, ss_ids: np.ndarray, nd: np.ndarray, k_star: np.ndarray, *,
    hidden_dim: int = 32, mlp_dim: int = 64, steps: int = 300, batch_size: int = 512,
    lr: float = 0.003, weight_decay: float = 1e-5, warmup: int = 20, seed: int = 42,
) -> tuple[SimilarityFilter, dict[str, Any]]:
    """Train a :class:`SimilarityFilter` on structure-space lists against the true ``k* [N]``.

    Adam, cosine decay after a linear warm-up, shuffled node batches.
    """
    n, k = np.asarray(ss_ids).shape
    k_star = np.asarray(k_star, dtype=np.float32)
    if k_star.shape != (n,) or not np.all(k_star >= 1):
        raise InputError("Adaptive Filter targets must be N values k* >= 1")
    _positive("steps", steps)
    _positive("batch_size", batch_size)
    seqs = torch.from_numpy(similarity_sequences(features, ss_ids, nd))
    kt = torch.from_numpy(k_star)
    sched = SgdSchedule(steps=steps, lr=lr, weight_decay=weight_decay, decay="cosine",
                        warmup=min(warmup, steps // 2), optimizer="adam")
    batches = _shuffled_batches(np.random.default_rng(seed), n, batch_size)
    with seeded(seed):
        model = SimilarityFilter(seqs.shape[2], hidden_dim, mlp_dim, k)

        def loss_fn(_step: int) -> torch.Tensor:
            rows = torch.from_numpy(next(batches))
            return log_huber(model(seqs[rows]), kt[rows])

        log = train_steps(model, loss_fn, sched, desc="Ada-NETS filter train")
    meta = {"inputs": "similarities", "steps": steps, "batch_size": batch_size, "lr": lr,
            "weight_decay": weight_decay, "warmup": sched.warmup, "optimizer": "adam",
            "loss": "log-huber", "seed": seed, **log.as_meta()}
    return model, meta


@torch.no_grad()
def predict_sim_filter(
    model: SimilarityFilter, features: np.ndarray, ss_ids: np.ndarray, nd: np.ndarray, *,
    chunk: int = 8192,
) -> np.ndarray:
    """``k_hat [N]`` int64 in ``[1, k]``: ``round(exp(pred))`` clipped, in row chunks."""
    model.eval()
    n, k = np.asarray(ss_ids).shape
    out = np.empty(n, dtype=np.int64)
    with progress(total=n, desc="Ada-NETS filter", unit="node") as bar:
        for lo in range(0, n, chunk):
            hi = min(n, lo + chunk)
            seq = similarity_sequences(features, ss_ids[lo:hi], nd[lo:hi])
            pred = model(torch.from_numpy(seq)).numpy().astype(np.float64)
            out[lo:hi] = np.clip(np.round(np.exp(np.clip(pred, 0.0, 10.0))), 1, k)
            bar.update(hi - lo)
    return out


def predict_k(model: nn.Module, features: np.ndarray, ss_ids: np.ndarray,
              nd: np.ndarray) -> np.ndarray:
    """``k_hat [N]`` from either filter (:class:`SimilarityFilter` or :class:`AdaptiveFilter`)."""
    if isinstance(model, SimilarityFilter):
        return predict_sim_filter(model, features, ss_ids, nd)
    return predict_filter(model, features, ss_ids)


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

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 512,
                 residual: bool = False) -> None:
        super().__init__()
        for name, v in (("in_dim", in_dim), ("hidden_dim", hidden_dim), ("out_dim", out_dim)):
            _positive(f"Ada-NETS GCN {name}", v)
        if residual and out_dim != in_dim:
            raise ParameterError(f"a residual Ada-NETS GCN needs out_dim == in_dim ({in_dim}), "
                                 f"got {out_dim}")
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.residual = bool(residual)
        self.conv1 = nn.Linear(in_dim, hidden_dim)
        self.conv2 = nn.Linear(hidden_dim, hidden_dim)
        self.fc = nn.Linear(hidden_dim, out_dim)
        self.act = nn.PReLU(out_dim)
        if self.residual:  # start as the parameter-free two-hop mean (see class doc)
            nn.init.zeros_(self.fc.weight)
            nn.init.zeros_(self.fc.bias)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "hidden_dim": self.hidden_dim, "out_dim": self.out_dim,
                "residual": self.residual}

    def layer1(self, mx: torch.Tensor) -> torch.Tensor:
        """First layer from the aggregated input ``M X`` (L2-normalised output)."""
        return nn.functional.normalize(torch.relu(self.conv1(mx)), dim=1)

    def head(self, mh: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        """Second layer from ``M H1``, then the FC head (L2-normalised enhanced features);
        ``skip`` (residual model) = :func:`two_hop_mean` rows added before the norm."""
        z = self.act(self.fc(torch.relu(self.conv2(mh))))
        if self.residual:
            if skip is None:
                raise ValueError("a residual Ada-NETS GCN needs the two-hop mean (skip)")
            z = z + skip
        return nn.functional.normalize(z, dim=1)


def cluster_loss(
    feat: torch.Tensor, labels: torch.Tensor, *, pmargin: float = 0.9, margin: float = 1.0,
    kind: str = "allmax", nmargin: float = 0.5,
) -> torch.Tensor:
    """GCN loss over a batch's pairs.

    ``allmax`` (the original): mean ``relu(pmargin - cos)`` over same-label
    pairs (diagonal included) plus ``relu(margin + max cos)`` over the single
    hardest different-label pair. ``hinge``: mean ``relu(pmargin - cos)`` over the
    same-label pairs (diagonal excluded) that violate it plus mean
    ``relu(cos - nmargin)`` over the different-label pairs that violate theirs
    (every violating pair counts, each side averaged over its violators).
    """
    sim = feat @ feat.t()
    same = labels[:, None] == labels[None, :]
    diff = ~same
    if kind == "allmax":
        pos = torch.relu(pmargin - sim[same]).mean() if bool(same.any()) else sim.new_zeros(())
        neg = torch.relu(margin + sim[diff].max()) if bool(diff.any()) else sim.new_zeros(())
        return pos + neg
    if kind != "hinge":
        raise ParameterError(f"loss must be 'allmax' or 'hinge', got {kind!r}")
    same = same & ~torch.eye(len(labels), dtype=torch.bool)
    vp = torch.relu(pmargin - sim[same])
    vn = torch.relu(sim[diff] - nmargin)
    pos = vp.sum() / (vp > 0).sum().clamp(min=1)
    neg = vn.sum() / (vn > 0).sum().clamp(min=1)
    return pos + neg


def two_hop_mean(m: sp.spmatrix, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(A1, A2)``: ``A1 = L2(M X)``, ``A2 = L2(M A1)`` float32 (the residual GCN's skip).

    With the Ada-NETS graph of the true ``k*`` this parameter-free feature alone
    clusters unseen LFW people at pairwise F 0.99 (docs/adanets.md).
    """
    a1 = np.asarray(m @ x, dtype=np.float32)
    a1 /= np.maximum(np.linalg.norm(a1, axis=1, keepdims=True), 1e-12)
    a2 = np.asarray(m @ a1, dtype=np.float32)
    a2 /= np.maximum(np.linalg.norm(a2, axis=1, keepdims=True), 1e-12)
    return a1, a2


def train_gcn(
    features: np.ndarray, labels: np.ndarray, adj: sp.spmatrix, *, hidden_dim: int = 512,
    out_dim: int = 512, steps: int = 600, sample: int = 128, seeds_per_step: int = 1,
    lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 1e-5, warmup: int = 100,
    weighted: bool = False, seed: int = 42, order_adj: sp.spmatrix | None = None,
    residual: bool = False, loss: str = "allmax", pmargin: float = 0.9, nmargin: float = 0.5,
    optimizer: str = "sgd",
) -> tuple[AdaGCN, dict[str, Any]]:
    """Train the GCN on graph ``adj`` (``[N, N]``, e.g. the plain kNN graph); return ``(model, meta)``.

    Each step takes ``seeds_per_step`` random seed nodes and, per seed, up to
    ``sample`` of its neighbours on the *order* graph ``order_adj`` (default
    ``adj``; the original's ``train_orderadjfile``) without replacement: the loss is
    :func:`cluster_loss` over those ~129 output nodes, as the original's
    one-seed sampler. Unlike the original (80 sampled neighbours per layer),
    the two aggregations use every neighbour -- the same operator as at
    inference; ``M X`` is computed once. ``residual=True`` adds the
    parameter-free two-hop mean :func:`two_hop_mean` to the head's output (the
    head starts at zero); ``loss`` / ``pmargin`` / ``nmargin``: :func:`cluster_loss`.
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    y = np.asarray(labels)
    n = x.shape[0]
    _positive("steps", steps)
    _positive("sample", sample)
    _positive("seeds_per_step", seeds_per_step)
    m = gcn_operator(adj, weighted=weighted)
    mx = torch.from_numpy(np.ascontiguousarray(m @ x, dtype=np.float32))
    a1 = torch.from_numpy(two_hop_mean(m, x)[0]) if residual else None
    pattern = sp.csr_matrix(adj if order_adj is None else order_adj)
    _, codes = np.unique(y, return_inverse=True)
    yt = torch.from_numpy(codes.astype(np.int64))
    rng = np.random.default_rng(seed)
    sched = SgdSchedule(steps=steps, lr=lr, momentum=momentum, weight_decay=weight_decay,
                        decay="cosine", warmup=min(warmup, steps // 2), optimizer=optimizer)
    with seeded(seed):
        model = AdaGCN(x.shape[1], hidden_dim, x.shape[1] if residual else out_dim, residual)

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
            need_t = torch.from_numpy(need)
            sub_t = to_torch_sparse(sub)
            h1 = model.layer1(mx[need_t])
            mh = torch.sparse.mm(sub_t, h1)
            skip = None
            if a1 is not None:
                skip = nn.functional.normalize(torch.sparse.mm(sub_t, a1[need_t]), dim=1)
            feat = model.head(mh, skip)
            return cluster_loss(feat, yt[torch.from_numpy(out_nodes)], kind=loss,
                                pmargin=pmargin, nmargin=nmargin)

        log = train_steps(model, loss_fn, sched, desc="Ada-NETS GCN train")
    meta = {"steps": steps, "sample": sample, "seeds_per_step": seeds_per_step, "lr": lr,
            "momentum": momentum, "weight_decay": weight_decay, "warmup": sched.warmup,
            "weighted": weighted, "residual": residual, "loss": loss, "pmargin": pmargin,
            "nmargin": nmargin, "optimizer": optimizer, "seed": seed, **log.as_meta()}
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
    a1 = np.empty_like(x) if model.residual else None
    for lo in range(0, n, chunk):
        mx = np.ascontiguousarray(m[lo : lo + chunk] @ x, dtype=np.float32)
        h1[lo : lo + chunk] = model.layer1(torch.from_numpy(mx)).numpy()
        if a1 is not None:
            a1[lo : lo + chunk] = mx / np.maximum(np.linalg.norm(mx, axis=1, keepdims=True), 1e-12)
    out = np.empty((n, model.out_dim), dtype=np.float32)
    for lo in range(0, n, chunk):
        mh = torch.from_numpy(np.ascontiguousarray(m[lo : lo + chunk] @ h1, dtype=np.float32))
        skip = None
        if a1 is not None:
            a2 = np.ascontiguousarray(m[lo : lo + chunk] @ a1, dtype=np.float32)
            a2 /= np.maximum(np.linalg.norm(a2, axis=1, keepdims=True), 1e-12)
            skip = torch.from_numpy(a2)
        out[lo : lo + chunk] = model.head(mh, skip).numpy()
    return out


# -------------------------------------------------------------------- checkpoints
def save_adanets(directory: str | os.PathLike, filt: AdaptiveFilter, gcn: AdaGCN,
                 meta: dict[str, Any]) -> None:
    """Write both networks (``ada_filter.*``, ``ada_gcn.*``; the JSON ``meta`` on the GCN's)."""
    kind = SIM_FILTER_KIND if isinstance(filt, SimilarityFilter) else FILTER_KIND
    save_checkpoint(directory, FILTER_NAME, filt, kind=kind, config=filt.config(),
                    meta={"see": f"{GCN_NAME}.json"})
    save_checkpoint(directory, GCN_NAME, gcn, kind=GCN_KIND, config=gcn.config(), meta=meta)


def load_adanets(directory: str | os.PathLike) -> tuple[nn.Module, AdaGCN, dict[str, Any]]:
    """Load ``(filter, gcn, meta)`` from a model directory (validated; ``InputError`` if absent).

    The filter is a :class:`SimilarityFilter` or an :class:`AdaptiveFilter` (by its kind).
    """
    import json
    from pathlib import Path

    try:
        doc = json.loads((Path(directory) / f"{FILTER_NAME}.json").read_text())
    except (OSError, ValueError):
        doc = {}
    sim = isinstance(doc, dict) and doc.get("kind") == SIM_FILTER_KIND
    out = []
    meta: dict[str, Any] = {}
    for name, kind, spec, cls in (
        (FILTER_NAME, SIM_FILTER_KIND if sim else FILTER_KIND,
         _SIM_FILTER_SPEC if sim else _FILTER_SPEC, SimilarityFilter if sim else AdaptiveFilter),
        (GCN_NAME, GCN_KIND, _GCN_SPEC, AdaGCN),
    ):
        model, meta = load_model(directory, name, cls, kind=kind, spec=spec)
        out.append(model)
    return out[0], out[1], meta


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    """``(fn(*args, **kwargs), seconds)``."""
    t0 = time.perf_counter()
    res = fn(*args, **kwargs)
    return res, time.perf_counter() - t0
