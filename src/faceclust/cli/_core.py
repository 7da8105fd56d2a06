"""Core commands: knn, cluster, eval, methods, demo (filled in by the core issue)."""

from __future__ import annotations

import click

from ..methods import METHODS
from ._app import main


@main.command("methods")
def methods_cmd() -> None:
    """List the available clustering methods, one line each."""
    for name in sorted(METHODS):
        doc = (METHODS[name].__doc__ or "").strip().splitlines()
        click.echo(f"{name:<18} {doc[0] if doc else ''}")
