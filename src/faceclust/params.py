"""``key=value`` settings as the command line and the benchmarks take them.

One parser for ``faceclust cluster|train|bench --set key=value`` and for the
``key=value`` arguments of the scripts in ``benchmarks/``, so a value means the
same everywhere (``3`` an int, ``0.5`` a float, ``true``/``none`` a bool/None,
anything else a string).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from .errors import ParameterError


def parse_set(items: Iterable[str]) -> dict[str, object]:
    """``key=value`` strings to a dict; values parsed as Python literals where possible.

    ``true``/``false`` (any case) become bools and ``none``/``null`` None; a value
    that is no Python literal stays a string. A later key overrides an earlier one.
    An item without ``=`` or without a key is a :class:`ParameterError`.
    """
    out: dict[str, object] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParameterError(f"--set expects key=value, got {item!r}")
        low = raw.strip().lower()
        if low in ("true", "false"):
            value: object = low == "true"
        elif low in ("none", "null"):
            value = None
        else:
            try:
                value = ast.literal_eval(raw.strip())
            except (ValueError, SyntaxError):
                value = raw.strip()
        out[key] = value
    return out
