"""A people catalogue for a growing photo folder: SQLite catalogue, incremental scans,
a local web app to name, merge, split and review, corrections that stick.

* :mod:`.catalogue` -- the SQLite file (WAL) and its schema;
* :mod:`.scan` -- ``faceclust library scan``: new/changed/moved/deleted photos, face
  quality, incremental placement;
* :mod:`.people` -- clusters -> stable person ids honouring the user's corrections;
* :mod:`.app` -- ``faceclust library serve`` (Starlette + uvicorn, server-rendered);
* :mod:`.export` -- per-person folders of links, CSV/JSON photo -> people.

See ``docs/library.md``.
"""

from __future__ import annotations

from .catalogue import connect, default_db, status
from .scan import DEFAULT_QUALITY, ScanReport, scan

__all__ = ["DEFAULT_QUALITY", "ScanReport", "connect", "default_db", "scan", "status"]
