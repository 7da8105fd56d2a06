"""Reading and writing features, labels and kNN graphs in the formats face-clustering code uses.

Supported formats
-----------------
Features (:func:`read_features`, :func:`write_features`)
    ``.npy`` (N, D) float16/32/64; ``.npz`` holding one 2-D array or a key
    ``features``/``feats``/``embeddings``; learn-to-cluster ``.bin``: raw
    little-endian float32, row-major, no header (D from ``dim`` or inferred from
    ``foo.meta`` beside ``foo.bin``).
Labels (:func:`read_labels`, :func:`write_labels`)
    ``.meta``/``.txt``: one integer per line (line i = row i); ``.npy``.
kNN graphs (:func:`read_knn`, :func:`write_knn`)
    learn-to-cluster ``.npz`` key ``data`` of shape (N, 2, k) (ids, cosine
    distance); FC-ESER / LCE-style ``.npz`` with two arrays (``knns``/``nbrs``/
    ``ids`` and ``sims``/``dists``); the cache format of
    :func:`faceclust.knn.build_knn` (``ids``, ``sims``); IJB-B
    ``knn.graph.*.npy`` (N, K+1) integer id arrays (similarities recomputed from
    the features).
Face index pairs (:func:`read_pairs`, must-link / cannot-link constraints)
    text (``.txt``/``.csv``/...): one pair ``i,j`` or ``i j`` a line, ``#``
    comments and blank lines ignored; ``.npy`` integer array of shape (P, 2).

Every problem with a file raises :class:`~faceclust.errors.InputError` with one
line naming the file. Every writer goes through :func:`atomic_write` (a
temporary file in the target directory, then :func:`os.replace`), so a failed
or interrupted write never leaves a half-written file or damages an existing
one, and refuses to overwrite any of the paths given in ``protect``.

One submodule per family: :mod:`.features`, :mod:`.labels`, :mod:`.knn`, :mod:`.pairs`;
the file-system helpers come from :mod:`faceclust.fsutil`.
"""

from ..fsutil import PathLike, atomic_write, check_output_path, write_text
from .features import FEATURE_EXTENSIONS, read_features, write_features
from .knn import KNN_EXTENSIONS, read_knn, write_knn
from .labels import LABEL_EXTENSIONS, read_labels, write_labels
from .pairs import read_pairs

__all__ = [
    "FEATURE_EXTENSIONS",
    "KNN_EXTENSIONS",
    "LABEL_EXTENSIONS",
    "PathLike",
    "atomic_write",
    "check_output_path",
    "read_features",
    "read_knn",
    "read_labels",
    "read_pairs",
    "write_features",
    "write_knn",
    "write_labels",
    "write_text",
]
