"""Command-line interface: ``faceclust COMMAND ...`` (see ``faceclust --help``)."""

from __future__ import annotations

from . import _core  # noqa: F401  (knn, cluster, eval, methods, demo)
from ._app import main
from ._bench import bench_cmd  # noqa: F401  (bench)
from ._library import library  # noqa: F401  (library scan|serve|export|status)
from ._photos import embed_cmd  # noqa: F401  (embed, gallery, add)
from ._synth import synth_cmd  # noqa: F401  (synth)
from ._train import train_cmd  # noqa: F401  (train)

__all__ = ["main"]
