"""The writer lifecycle, the one rule of every writer (``StreamWriter``, ``open(path, "wb")``,
``atomic_output``, the fsspec writer): output becomes visible under its name only through an
explicit, successful close on the normal path.

A ``with`` block left by an exception, ``close()`` called while an exception is propagating or
being handled (fsspec's ``OpenFile.__exit__`` and pandas' handle cleanup call plain ``close()``
then), garbage collection of an unclosed writer: each discards. A signal or a kill leaves no
file either: the output is a ``PendingFile`` (``atomic``) that only ``commit`` names.
"""

from __future__ import annotations

import sys
from typing import Protocol


class Output(Protocol):
    """Where a writer's bytes go until it is closed: the file to write, then exactly one of
    ``commit`` (make it appear under its name) or ``discard`` (it never appears; never raises)."""

    def commit(self) -> None: ...

    def discard(self) -> None: ...


class Lifecycle:
    """When a writer opened (an exception already being handled then is not a failure of the
    writer's: a writer may be opened and closed inside an ``except`` block) and whether its
    ``close()`` is the clean close that commits."""

    __slots__ = ("_handled_at_open",)

    def __init__(self) -> None:
        self._handled_at_open = sys.exc_info()[1]

    def failing(self) -> bool:
        """True when an exception raised since the writer opened is propagating or being
        handled: a ``close()`` now is cleanup after a failure, not the end of the data."""
        current = sys.exc_info()[1]
        return current is not None and current is not self._handled_at_open

    def forget(self) -> None:
        """Drop the reference to the exception handled at open (it holds frames alive)."""
        self._handled_at_open = None
