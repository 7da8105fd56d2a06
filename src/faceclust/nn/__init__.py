"""Neural-network pieces of the supervised methods (GCN-V / GCN-E), CPU-only torch.

* :mod:`.layers` -- normalised kNN adjacency, :class:`GraphConv`;
* :mod:`.gcn_v` / :mod:`.gcn_e` -- the two networks, training and inference;
* :mod:`.checkpoint` -- safetensors + JSON checkpoints with validation;
* :mod:`.train` -- seeding, SGD schedule, the shared training loop.
"""

from __future__ import annotations

try:
    import safetensors  # noqa: F401
    import torch  # noqa: F401
except ImportError as exc:  # the learn extra is not installed
    from ..errors import MissingDependencyError

    raise MissingDependencyError(
        f"the supervised methods and `faceclust train` need {exc.name or 'torch'}: "
        'pip install "faceclust[learn]" (CPU-only torch: see README, Install)'
    ) from None

from .checkpoint import load_checkpoint, save_checkpoint
from .gcn_e import GCNE, load_gcn_e, save_gcn_e, train_gcn_e
from .gcn_v import GCNV, load_gcn_v, save_gcn_v, train_gcn_v
from .layers import GraphConv, knn_adjacency

__all__ = [
    "GCNE",
    "GCNV",
    "GraphConv",
    "knn_adjacency",
    "load_checkpoint",
    "load_gcn_e",
    "load_gcn_v",
    "save_checkpoint",
    "save_gcn_e",
    "save_gcn_v",
    "train_gcn_e",
    "train_gcn_v",
]
