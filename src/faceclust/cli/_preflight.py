"""Checks of output locations *before* any work, and write errors as one line.

A command that computes for minutes and then cannot write its result wastes the
user's time; a disk-full ``OSError`` from inside :func:`~faceclust.fsutil.atomic_write`
names a hidden ``.NAME.xxxx.tmp`` file the user never asked for. So each command
calls :func:`check_out_file` / :func:`check_out_dir` first (folder exists and is
writable, output is none of the inputs, free space where the size is known) and
wraps its writes in :func:`writing`, which reports the user's path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import InputError
from ..fsutil import check_output_path

#: Headroom over a known output size when checking free space.
_SPACE_MARGIN = 1.05


def probe_writable(folder: Path, out: object) -> None:
    """Create and remove a temporary file in ``folder``; InputError naming ``out`` if that fails.

    A real write is the only test that holds for root (which ``os.access`` lets
    write into read-only folders), read-only mounts and quota limits.
    """
    try:
        fd, tmp = tempfile.mkstemp(prefix=".faceclust-probe-", dir=folder)
    except OSError as exc:
        raise InputError(f"{out}: cannot write in {folder}: {exc.strerror or exc}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)


def check_space(folder: Path, out: object, size: int | None) -> None:
    """InputError when ``folder``'s file system has less than ``size`` bytes (+5 %) free."""
    if not size:
        return
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < size * _SPACE_MARGIN:
        raise InputError(
            f"{out}: needs about {_mb(size)} but only {_mb(free)} is free in {folder}"
        )


def check_out_file(out: str | os.PathLike, inputs: Iterable[str | os.PathLike | None] = (), *,
                   force: bool = True, size: int | None = None,
                   exts: tuple[str, ...] | None = None, what: str = "output") -> Path:
    """Check an output file before the work that produces it.

    Its folder exists and is writable, it is none of ``inputs`` (symlinks and hard
    links included), it has one of ``exts``, it does not exist unless ``force``, and
    the folder's file system has ``size`` bytes free when the size is known.
    """
    path = check_output_path(out, inputs)
    if exts is not None and path.suffix.lower() not in exts:
        raise InputError(f"{out}: {what} must end in {' or '.join(exts)}")
    if not force and (path.exists() or path.is_symlink()):
        raise InputError(f"{out}: already exists (pass --force to replace it)")
    folder = path.parent if str(path.parent) else Path(".")
    probe_writable(folder, out)
    check_space(folder, out, size)
    return path


def check_out_dir(out: str | os.PathLike, *, size: int | None = None) -> Path:
    """Check an output folder before the work: created if missing, writable, ``size`` free."""
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise InputError(f"{out}: exists and is not a directory")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{out}: cannot create the output folder: {exc.strerror or exc}") from None
    probe_writable(path, out)
    check_space(path, out, size)
    return path


@contextlib.contextmanager
def writing(out: str | os.PathLike) -> Iterator[None]:
    """Turn any ``OSError`` while writing ``out`` (disk full, permissions) into one line."""
    try:
        yield
    except OSError as exc:
        raise InputError(f"{out}: cannot write: {exc.strerror or exc}") from None


def _mb(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"
