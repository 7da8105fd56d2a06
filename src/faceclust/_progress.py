"""Progress reporting: tqdm bars on stderr that appear only for work lasting more than ~2 s."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

from tqdm.auto import tqdm

#: Set FACECLUST_PROGRESS=0 to silence every bar (tests, batch jobs); read at each call.
_ENV = "FACECLUST_PROGRESS"


def progress(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    enabled: bool | None = None,
    unit: str = "it",
    initial: int = 0,
) -> tqdm:
    """Return a tqdm bar on stderr that shows itself only after 2 s of work."""
    default = os.environ.get(_ENV, "1") != "0"
    disable = not (default if enabled is None else enabled)
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        file=sys.stderr,
        delay=2.0,
        disable=disable,
        unit=unit,
        initial=initial,
        dynamic_ncols=True,
        leave=False,
    )
