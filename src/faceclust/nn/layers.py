"""Graph building blocks shared by the GCN methods: normalised kNN adjacency and GraphConv.

Shapes use N = nodes, D = input feature dimension, E = stored adjacency entries.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ..errors import InputError

__all__ = ["GraphConv", "knn_adjacency", "row_normalize", "to_torch_sparse"]


def row_normalize(a: sp.spmatrix) -> sp.csr_matrix:
    """``D^-1 A`` for a non-negative sparse matrix; rows summing to <= 0 are left unchanged."""
    a = sp.csr_matrix(a, dtype=np.float32)
    rowsum = np.asarray(a.sum(axis=1)).reshape(-1)
    scale = np.where(rowsum > 0, 1.0 / np.where(rowsum > 0, rowsum, 1.0), 1.0).astype(np.float32)
    return sp.csr_matrix(sp.diags(scale) @ a, dtype=np.float32)


def knn_adjacency(ids: np.ndarray, sims: np.ndarray, min_sim: float = 0.0) -> sp.csr_matrix:
    """Symmetric, row-normalised kNN adjacency ``row_normalize(max(S, S^T) + I)`` as ``[N, N]`` CSR.

    ``S_ij = sim_ij`` for every neighbour j != i in row i with ``sim_ij >= min_sim``
    (inclusive; 0 drops negative similarities, as learn-to-cluster's th_sim=0).
    The sparsity pattern is symmetric; rows sum to 1; column indices are sorted.
    """
    ids = np.asarray(ids)
    sims = np.asarray(sims, dtype=np.float32)
    if ids.ndim != 2 or ids.shape != sims.shape:
        raise InputError(f"kNN arrays: ids and sims must be 2-D of one shape, got {ids.shape}, {sims.shape}")
    n, k = ids.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    cols = ids.reshape(-1).astype(np.int64)
    vals = sims.reshape(-1)
    keep = (cols >= 0) & (cols != rows) & (vals >= min_sim)
    s = sp.csr_matrix((vals[keep], (rows[keep], cols[keep])), shape=(n, n), dtype=np.float32)
    s.sum_duplicates()
    sym = s.maximum(s.T.tocsr()) + sp.identity(n, dtype=np.float32, format="csr")
    out = row_normalize(sym)
    out.sort_indices()
    return out


def to_torch_sparse(a: sp.spmatrix) -> torch.Tensor:
    """A scipy sparse matrix as a float32 torch CSR tensor (constant; no grad).

    CSR straight from scipy's arrays: no sort or coalesce, and about half the
    memory of a COO tensor (one int64 index per entry instead of two).
    """
    csr = sp.csr_matrix(a, dtype=np.float32)
    csr.sum_duplicates()
    with warnings.catch_warnings():  # "CSR support is in beta": mm / backward are what we use
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(csr.indptr.astype(np.int64)),
            torch.from_numpy(csr.indices.astype(np.int64)),
            torch.from_numpy(csr.data),
            size=csr.shape,
            check_invariants=False,
        )


class GraphConv(nn.Module):
    """Mean-aggregator graph convolution ``ReLU([H || A H] W + b)``.

    Parameters
    ----------
    in_dim, out_dim : int
        Feature sizes; ``W`` is ``[2 * in_dim, out_dim]`` (Xavier-uniform),
        ``b`` is ``[out_dim]`` (zeros).
    activation : bool
        Apply ReLU (True for every layer of GCN-V / GCN-E).

    Forward: ``h [N, in_dim]``, ``adj`` sparse or dense ``[N, N]`` -> ``[N, out_dim]``.
    Computed as ``H W_top + (A H) W_bottom`` (same result, no ``[N, 2 D]`` concat).
    When ``H`` is a constant input (the first layer), ``A H`` can be computed
    once and passed as ``agg``: training then needs no sparse product at all.
    """

    def __init__(self, in_dim: int, out_dim: int, activation: bool = True) -> None:
        super().__init__()
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.activation = activation
        self.weight = nn.Parameter(torch.empty(2 * in_dim, out_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        nn.init.xavier_uniform_(self.weight)

    def forward(
        self, h: torch.Tensor, adj: torch.Tensor | None = None, *, agg: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``h [N, in_dim]`` and either ``adj [N, N]`` or a precomputed ``agg = A h``."""
        if agg is None:
            if adj is None:
                raise ValueError("GraphConv needs adj or agg")
            sparse = adj.layout in (torch.sparse_coo, torch.sparse_csr)
            agg = torch.sparse.mm(adj, h) if sparse else adj @ h
        out = h @ self.weight[: self.in_dim] + agg @ self.weight[self.in_dim :] + self.bias
        return torch.relu(out) if self.activation else out
