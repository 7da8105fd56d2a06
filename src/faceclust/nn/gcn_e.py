"""GCN-E: edge-connectivity estimation on candidate sub-graphs (learn-to-cluster, CVPR'20).

For a node ``i`` its **candidates** are the kNN neighbours with strictly higher
confidence (in kNN order). Nodes with no candidate are roots; nodes with one
candidate, or in the low-confidence ``ignore`` set, link to the nearest
candidate (as GCN-V). Every other node is a **pivot**: its candidates form a
sub-graph with features ``x_j - x_i`` and the global normalised adjacency
restricted to them and row-normalised again; the network scores each
candidate ("same identity as the pivot?") and the pivot links to the best one.

Sub-graphs are processed in batches as one block-diagonal sparse matrix, so
memory is bounded by the batch size, not by N.

Model: four :class:`~faceclust.nn.layers.GraphConv` layers
``D -> 512 -> 512 -> 256 -> 256`` (ReLU), then ``Linear(256, 256) -> PReLU ->
Linear(256, 2) -> log_softmax``; NLL loss averaged per sub-graph, then over
the batch (the original's batch-1 + gradient accumulation over 32).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from .._progress import progress
from ..errors import InputError, ParameterError
from ..stages.confidence import candidate_mask, ignore_mask
from .checkpoint import load_model, save_checkpoint
from .layers import GraphConv, row_normalize, to_torch_sparse
from .train import Resume, SgdSchedule, seeded, train_steps

__all__ = [
    "CHECKPOINT_NAME",
    "GCNE",
    "Candidates",
    "build_batch",
    "edge_candidates",
    "load_gcn_e",
    "predict_links",
    "save_gcn_e",
    "train_gcn_e",
]

CHECKPOINT_NAME = "gcn_e"
KIND = "gcn-e"
_CONFIG_SPEC = {"in_dim": int, "dims": list[int], "mlp_dim": int}
_CHUNK = 1 << 15


class GCNE(nn.Module):
    """Edge classifier: ``x [M, in_dim]``, block-diagonal ``adj [M, M]`` -> log-probs ``[M, 2]``.

    Column 1 is log P(candidate has the pivot's identity).
    """

    def __init__(
        self, in_dim: int, dims: list[int] | tuple[int, ...] = (512, 512, 256, 256),
        mlp_dim: int = 256,
    ) -> None:
        super().__init__()
        dims = list(dims)
        for name, v in [("in_dim", in_dim), ("mlp_dim", mlp_dim)] + [("dims", d) for d in dims]:
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ParameterError(f"GCN-E {name} must hold positive integers, got {v!r}")
        if not dims:
            raise ParameterError("GCN-E needs at least one graph convolution (dims is empty)")
        self.in_dim = in_dim
        self.dims = dims
        self.mlp_dim = mlp_dim
        sizes = [in_dim, *dims]
        self.convs = nn.ModuleList(GraphConv(a, b) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        self.head = nn.Sequential(
            nn.Linear(dims[-1], mlp_dim), nn.PReLU(mlp_dim), nn.Linear(mlp_dim, 2)
        )

    def config(self) -> dict[str, Any]:
        """Constructor arguments (stored in the checkpoint JSON)."""
        return {"in_dim": self.in_dim, "dims": list(self.dims), "mlp_dim": self.mlp_dim}

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        h = x
        for conv in self.convs:
            h = conv(h, adj)
        return torch.log_softmax(self.head(h), dim=-1)


# ------------------------------------------------------------------ candidates
@dataclass
class Candidates:
    """Result of :func:`edge_candidates` for N nodes.

    ``peak``/``peak_sim``: the direct link of every non-pivot node (-1 / -inf
    for roots and for pivots). Pivots ``pivots [P]`` have candidate lists
    ``nodes[ptr[p]:ptr[p+1]]`` (global ids, kNN order) with similarities
    ``sims`` in the same layout.
    """

    peak: np.ndarray
    peak_sim: np.ndarray
    pivots: np.ndarray
    ptr: np.ndarray
    nodes: np.ndarray
    sims: np.ndarray


def edge_candidates(
    ids: np.ndarray, sims: np.ndarray, conf: np.ndarray, ignore_ratio: float
) -> Candidates:
    """Split nodes into roots, direct links and GCN-E pivots (see the module docstring)."""
    ids = np.asarray(ids)
    n = ids.shape[0]
    conf = np.asarray(conf, dtype=np.float32)
    if conf.shape != (n,):
        raise InputError(f"confidence: expected shape ({n},), got {conf.shape}")
    ignored = ignore_mask(conf, ignore_ratio)
    peak = np.full(n, -1, dtype=np.int64)
    peak_sim = np.full(n, -np.inf, dtype=np.float32)
    piv_parts, cnt_parts, node_parts, sim_parts = [], [], [], []
    for start in range(0, n, _CHUNK):
        i = ids[start : start + _CHUNK]
        s = sims[start : start + _CHUNK]
        mask = candidate_mask(i, conf, start)
        count = mask.sum(axis=1)
        first = mask.argmax(axis=1)
        rows = np.arange(len(i))
        direct = (count == 1) | ((count >= 1) & ignored[start : start + len(i)])
        d = rows[direct]
        peak[start + d] = i[d, first[d]]
        peak_sim[start + d] = s[d, first[d]]
        piv = (count >= 2) & ~direct
        if piv.any():
            m = mask & piv[:, None]
            piv_parts.append(start + rows[piv])
            cnt_parts.append(count[piv])
            node_parts.append(i[m].astype(np.int64))  # row-major: kNN order within a row
            sim_parts.append(s[m].astype(np.float32))
    if piv_parts:
        pivots = np.concatenate(piv_parts)
        ptr = np.concatenate([[0], np.cumsum(np.concatenate(cnt_parts))]).astype(np.int64)
        nodes = np.concatenate(node_parts)
        csims = np.concatenate(sim_parts)
    else:
        pivots = np.zeros(0, np.int64)
        ptr = np.zeros(1, np.int64)
        nodes = np.zeros(0, np.int64)
        csims = np.zeros(0, np.float32)
    return Candidates(peak, peak_sim, pivots, ptr, nodes, csims)


@numba.njit(cache=True)
def _block_entries(indptr, indices, data, nodes, ptr, loc):  # pragma: no cover - numba
    """COO entries of the block-diagonal matrix of A restricted to each sub-graph."""
    total = 0
    for r in range(len(nodes)):
        u = nodes[r]
        total += indptr[u + 1] - indptr[u]
    rows = np.empty(total, np.int64)
    cols = np.empty(total, np.int64)
    vals = np.empty(total, np.float32)
    cnt = 0
    for g in range(len(ptr) - 1):
        for r in range(ptr[g], ptr[g + 1]):
            loc[nodes[r]] = r
        for r in range(ptr[g], ptr[g + 1]):
            u = nodes[r]
            for p in range(indptr[u], indptr[u + 1]):
                c = loc[indices[p]]
                if c >= 0:
                    rows[cnt] = r
                    cols[cnt] = c
                    vals[cnt] = data[p]
                    cnt += 1
        for r in range(ptr[g], ptr[g + 1]):
            loc[nodes[r]] = -1
    return rows[:cnt], cols[:cnt], vals[:cnt]


def build_batch(
    cand: Candidates,
    which: np.ndarray,
    features: np.ndarray,
    adj: sp.csr_matrix,
    loc: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, np.ndarray, np.ndarray]:
    """Inputs for the sub-graphs of pivots ``cand.pivots[which]``.

    Returns ``x [M, D]`` (``x_j - x_pivot``), the row-normalised block-diagonal
    adjacency ``[M, M]`` (torch sparse), the batch-local offsets ``ptr [B+1]``
    and the positions of the rows in ``cand.nodes`` ``[M]``. ``loc`` is an
    ``[N]`` int64 scratch array filled with -1 (left as found).
    """
    starts = cand.ptr[which]
    sizes = cand.ptr[which + 1] - starts
    ptr = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    pos = np.repeat(starts - ptr[:-1], sizes) + np.arange(ptr[-1])
    nodes = cand.nodes[pos]
    pivot_rows = np.repeat(cand.pivots[which], sizes)
    x = features[nodes] - features[pivot_rows]
    r, c, v = _block_entries(adj.indptr, adj.indices, adj.data, nodes, ptr, loc)
    m = len(nodes)
    block = row_normalize(sp.csr_matrix((v, (r, c)), shape=(m, m)))
    return torch.from_numpy(np.ascontiguousarray(x, np.float32)), to_torch_sparse(block), ptr, pos


def _csr(adj: sp.spmatrix) -> sp.csr_matrix:
    a = sp.csr_matrix(adj, dtype=np.float32)
    a.sort_indices()
    return a


# ------------------------------------------------------------------ training
def train_gcn_e(
    features: np.ndarray,
    labels: np.ndarray,
    ids: np.ndarray,
    sims: np.ndarray,
    adj: sp.spmatrix,
    conf: np.ndarray,
    *,
    ignore_ratio: float = 0.7,
    dims: tuple[int, ...] = (512, 512, 256, 256),
    mlp_dim: int = 256,
    epochs: int = 4,
    batch_size: int = 32,
    lr: float = 0.1,
    momentum: float = 0.9,
    weight_decay: float = 1e-5,
    optimizer: str = "sgd",
    seed: int = 42,
    log_every: int = 10,
    resume: Resume | None = None,
) -> tuple[GCNE, dict[str, Any]]:
    """Train GCN-E on the candidate sub-graphs of a labelled set; return ``(model, meta)``.

    ``features`` are the L2-normalised GCN-V features, ``ids``/``sims`` their
    kNN graph, ``adj`` its normalised adjacency and ``conf`` the GCN-V
    confidences. Each step averages the per-sub-graph NLL over ``batch_size``
    sub-graphs (the original's gradient accumulation over 32). The batch order
    of epoch ``e`` depends only on ``(seed, e)``, so ``resume`` continues an
    interrupted run to the same model.
    """
    labels = np.asarray(labels)
    x = np.ascontiguousarray(features, dtype=np.float32)
    n = x.shape[0]
    if labels.shape != (n,):
        raise InputError(f"labels: expected shape ({n},), got {labels.shape}")
    if epochs < 1 or batch_size < 1:
        raise ParameterError(f"epochs and batch_size must be >= 1, got {epochs}, {batch_size}")
    cand = edge_candidates(ids, sims, conf, ignore_ratio)
    p = len(cand.pivots)
    if p == 0:
        raise InputError("GCN-E training: no pivot has two or more candidates (data too small?)")
    a = _csr(adj)
    per_epoch = -(-p // batch_size)
    steps = epochs * per_epoch
    sched = SgdSchedule(steps=steps, lr=lr, momentum=momentum, weight_decay=weight_decay,
                        optimizer=optimizer)
    target_all = (labels[cand.nodes] == np.repeat(labels[cand.pivots], np.diff(cand.ptr))).astype(
        np.int64
    )
    loc = np.full(n, -1, dtype=np.int64)
    order: list[np.ndarray] = []
    with seeded(seed):
        model = GCNE(x.shape[1], dims, mlp_dim)

        def loss_fn(step: int) -> torch.Tensor:
            if step % per_epoch == 0 or not order:
                order[:] = [np.random.default_rng([seed, step // per_epoch]).permutation(p)]
            j = step % per_epoch
            which = np.sort(order[0][j * batch_size : (j + 1) * batch_size])
            xb, ab, ptr, pos = build_batch(cand, which, x, a, loc)
            logp = model(xb, ab)
            tgt = torch.from_numpy(target_all[pos])
            nll = -logp.gather(1, tgt[:, None]).squeeze(1)
            sizes = np.diff(ptr)
            w = torch.from_numpy((1.0 / np.repeat(sizes, sizes)).astype(np.float32))
            return (nll * w).sum() / len(sizes)

        log = train_steps(model, loss_fn, sched, log_every=log_every, desc="GCN-E train",
                          resume=resume)
    meta = {
        "k": int(np.asarray(ids).shape[1]),
        "ignore_ratio": ignore_ratio,
        "n_train": n,
        "n_subgraphs": p,
        "positive_fraction": round(float(target_all.mean()), 4),
        "seed": seed,
        "schedule": {
            "optimizer": optimizer, "epochs": epochs, "batch_size": batch_size, "steps": steps,
            "lr": lr,
            "momentum": momentum, "weight_decay": weight_decay,
            "milestones": list(sched.milestones),
        },
        **log.as_meta(),
    }
    return model, meta


@torch.no_grad()
def predict_links(
    model: GCNE,
    features: np.ndarray,
    cand: Candidates,
    adj: sp.spmatrix,
    *,
    batch_size: int = 256,
) -> tuple[np.ndarray, np.ndarray]:
    """Peaks of all nodes: direct links plus, for each pivot, its most probable candidate.

    Ties in P(link) go to the nearest candidate (the original breaks them at
    random). Returns ``(peak [N] int64, peak_sim [N] float32)`` ready for
    :func:`~faceclust.stages.confidence.deduce_tree`.
    """
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.shape[1] != model.in_dim:
        raise InputError(
            f"GCN-E model expects {model.in_dim}-d GCN features, got {x.shape[1]}-d"
        )
    model.eval()
    peak = cand.peak.copy()
    peak_sim = cand.peak_sim.copy()
    p = len(cand.pivots)
    a = _csr(adj)
    loc = np.full(x.shape[0], -1, dtype=np.int64)
    with progress(total=p, desc="GCN-E sub-graphs", unit="sg") as bar:
        for start in range(0, p, batch_size):
            which = np.arange(start, min(p, start + batch_size))
            xb, ab, ptr, pos = build_batch(cand, which, x, a, loc)
            prob = model(xb, ab)[:, 1].numpy()
            seg_max = np.maximum.reduceat(prob, ptr[:-1])
            is_max = prob >= np.repeat(seg_max, np.diff(ptr))
            # first (nearest) maximum of each segment
            first = np.flatnonzero(is_max)
            seg = np.searchsorted(ptr, first, side="right") - 1
            keep = np.concatenate([[True], seg[1:] != seg[:-1]])
            best = first[keep]
            peak[cand.pivots[which]] = cand.nodes[pos[best]]
            peak_sim[cand.pivots[which]] = cand.sims[pos[best]]
            bar.update(len(which))
    return peak, peak_sim


def save_gcn_e(model: GCNE, directory: str | os.PathLike, meta: dict[str, Any]) -> None:
    """Write ``gcn_e.safetensors`` + ``gcn_e.json`` into ``directory``."""
    save_checkpoint(directory, CHECKPOINT_NAME, model, kind=KIND, config=model.config(), meta=meta)


def load_gcn_e(directory: str | os.PathLike) -> tuple[GCNE, dict[str, Any]]:
    """Load a GCN-E model (validated) and its training ``meta`` from ``directory``."""
    return load_model(directory, CHECKPOINT_NAME, GCNE, kind=KIND, spec=_CONFIG_SPEC)
