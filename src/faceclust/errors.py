"""Exceptions raised for bad input or parameters.

Every problem a user can cause (a malformed file, NaN rows, k >= N, a bad
parameter) is raised as a :class:`FaceclustError` subclass whose message is one
line naming the file or argument and the problem; the CLI prints that line
and exits non-zero instead of showing a traceback.
"""

from __future__ import annotations


class FaceclustError(Exception):
    """Base class for every error faceclust raises on purpose."""


class InputError(FaceclustError, ValueError):
    """Input data (an array or a file) is malformed or inconsistent."""


class ParameterError(FaceclustError, ValueError):
    """A parameter value is out of range or of the wrong kind."""


class MissingDependencyError(FaceclustError, ImportError):
    """An optional dependency (an extra such as ``faceclust[learn]``) is not installed."""


class FaceclustWarning(UserWarning):
    """Something the user should know that did not stop the run (e.g. a memory-bound change)."""
