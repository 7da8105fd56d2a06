"""Published clustering methods, each a short composition of :mod:`faceclust.stages`.

Importing this package registers every method in :data:`METHODS` (name ->
estimator class); ``faceclust methods`` lists them.
"""

from __future__ import annotations

from . import _knn_graph_baselines  # noqa: F401  (registers knn-cc, infomap)
from ._adanets import AdaNets  # noqa: F401  (registers ada-nets)
from ._aro import ApproxRankOrder  # noqa: F401
from ._auto import AutoClusterer  # noqa: F401  (registers auto, the default method)
from ._base import METHODS, BaseClusterer, get_method, make_method, register
from ._baselines import ChineseWhispers, KnnDbscan, KnnHac, MiniBatchKMeansClusterer  # noqa: F401
from ._cdp import CDP  # noqa: F401
from ._dsgcn import GcnD, GcnDS  # noqa: F401  (registers gcn-d, gcn-ds)
from ._fces import FCES  # noqa: F401
from ._gcn import GcnV, GcnVE  # noqa: F401  (registers gcn-v, gcn-ve)
from ._incremental import IncrementalClusterer  # noqa: F401  (registers incremental)
from ._knn_graph_baselines import KnnConnectedComponents, KnnInfomap
from ._lcepce import FCESER, LcePce  # noqa: F401  (registers lce-pce, fc-eser)
from ._lgcn import LGcn  # noqa: F401  (registers lgcn)
from ._nsrfc import ChenDpc, NsrFc  # noqa: F401  (registers chen-dpc, nsr-fc)

__all__ = [
    "METHODS",
    "BaseClusterer",
    "KnnConnectedComponents",
    "KnnInfomap",
    "get_method",
    "make_method",
    "register",
]
