"""Command-line interface: ``faceclust COMMAND ...`` (see ``faceclust --help``)."""

from __future__ import annotations

from . import _core  # noqa: F401  (knn, cluster, eval, methods, demo)
from ._app import main

__all__ = ["main"]
