"""faceclust: cluster face (and other) embeddings by identity, fast, on a CPU."""

from __future__ import annotations

from .errors import FaceclustError, InputError, ParameterError
from .knn import KnnGraph, build_knn

__version__ = "0.1.0"

__all__ = ["FaceclustError", "InputError", "KnnGraph", "ParameterError", "build_knn", "__version__"]
