"""File-system helpers every writer in faceclust uses: atomic writes and output-path checks.

Every file faceclust writes (features, labels, kNN graphs, caches, reports,
galleries) goes through :func:`atomic_write` (a temporary file in the target
directory, then :func:`os.replace`), so a failed or interrupted write never
leaves a half-written file or damages an existing one; :func:`check_output_path`
refuses to overwrite an input.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from .errors import InputError

PathLike = str | os.PathLike


def _umask() -> int:
    """The process umask, read without changing it where /proc allows (thread-safe)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside ``path``; on success move it onto ``path``.

    The temporary file lives in the same directory (so :func:`os.replace` is an
    atomic rename on one file system), is flushed and fsync'ed before the
    rename, and gets the usual ``0666 & ~umask`` permissions. If the body
    raises, the temporary file is removed and any existing ``path`` is left
    untouched. Writers pass the yielded file object to numpy (``np.save`` /
    ``np.savez`` would otherwise append ``.npy``/``.npz`` to a bare name).
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (:func:`atomic_write`), creating missing parent
    directories; for result files (JSON, Markdown) of the CLI and the benchmarks."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "w") as f:
        f.write(text)
    return path


def check_output_path(out: PathLike, inputs: Iterable[PathLike | None] = ()) -> Path:
    """Check that ``out`` can be written: its directory exists and it is none of ``inputs``.

    Raises :class:`InputError` ("refusing to overwrite input file X") when
    ``out`` resolves to the same file as an input (symlinks and hard links
    included), when ``out`` is a directory, or when its directory is missing.
    Returns ``out`` as a :class:`~pathlib.Path`.
    """
    out = Path(out)
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{out}: output directory {parent} does not exist")
    if out.is_dir():
        raise InputError(f"{out}: output path is a directory, expected a file name")
    out_resolved = out.resolve()
    for inp in inputs:
        if inp is None:
            continue
        inp = Path(inp)
        same = out_resolved == inp.resolve()
        if not same and out.exists() and inp.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(out, inp)
        if same:
            raise InputError(f"{out}: refusing to overwrite input file {inp}")
    return out


def write_file(path: Path, write: Callable[[IO], object]) -> None:
    """Call ``write(fileobj)`` on a temp file beside ``path``, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as fh:
        write(fh)
