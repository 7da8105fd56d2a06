"""The ``faceclust`` command group and its error handling.

Every command module under :mod:`faceclust.cli` attaches its commands to
:data:`main`. A :class:`~faceclust.errors.FaceclustError` (or any ``OSError``:
a missing file, a full disk) is printed as one line ``faceclust: error: ...`` with exit status 2; with
``--debug`` the traceback is shown instead.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path

import click

from ..errors import FaceclustError, FaceclustWarning


def _warning_printer(default):
    """``warnings.showwarning`` that prints faceclust's own warnings as one
    ``faceclust: warning: ...`` line and passes others to ``default``."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, FaceclustWarning):
            click.echo(f"faceclust: warning: {_one_line_text(str(message))}", err=True)
        else:
            default(message, category, filename, lineno, file, line)

    return show


class _Group(click.Group):
    def invoke(self, ctx: click.Context):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _warning_printer(warnings.showwarning)
                return super().invoke(ctx)
        except (FaceclustError, OSError) as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"faceclust: error: {_one_line(exc)}", err=True)
            sys.exit(2)
        except click.UsageError as exc:  # bad option values: one line too, not a usage block
            if ctx.obj and ctx.obj.get("debug") or type(exc).__name__ == "NoArgsIsHelpError":
                raise
            where = f" (see {exc.ctx.command_path} --help)" if exc.ctx is not None else ""
            click.echo(f"faceclust: error: {_one_line_text(exc.format_message())}{where}",
                       err=True)
            sys.exit(2)
        except MemoryError:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo("faceclust: error: out of memory (try a smaller k or an IVF/HNSW index)", err=True)
            sys.exit(2)


#: atomic_write's temporary file ``DIR/.NAME.RANDOM.tmp``: errors name the user's ``DIR/NAME``.
_TMP_NAME = re.compile(r"^\.(?P<name>.+)\.[^.]+\.tmp$")


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename:
        path = Path(os.fsdecode(exc.filename))
        m = _TMP_NAME.match(path.name)
        if m:
            path = path.with_name(m.group("name"))
        return f"{path}: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        return f"cannot read or write a file: {exc.strerror or exc}"
    return _one_line_text(str(exc))


def _one_line_text(text: str) -> str:
    return " ".join(text.split())


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.version_option(package_name="faceclust")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """faceclust: cluster face embeddings by identity on a CPU."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
