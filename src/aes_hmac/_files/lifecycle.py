"""The writer lifecycle, the one rule of every writer (``StreamWriter``, ``open(path, "wb")``,
``atomic_output``, the fsspec writer): output becomes visible under its name only through an
explicit, successful close on the normal path.

A ``with`` block left by an exception, ``close()`` called while an exception is propagating or
being handled (fsspec's ``OpenFile.__exit__`` and pandas' handle cleanup call plain ``close()``
then), garbage collection of an unclosed writer (also of a wrapper around it, such as
``io.TextIOWrapper`` or ``io.BufferedWriter``): each discards. A signal or a kill leaves no
file either: the output is a ``PendingFile`` (``atomic``) that only ``commit`` names.

"An exception is in flight" is inferred from ``sys.exc_info()``, which cannot tell an
exception propagating through a ``with`` block or a ``finally`` from one handled in an
unrelated ``except`` block. So ``close()`` while an exception is being handled discards, and
says so with a ``WriterDiscardedWarning``: to commit inside an ``except`` block, open the writer
there. The exception being handled when the writer opened is exempt, until it is raised again.
"""

from __future__ import annotations

import sys
import warnings
from types import TracebackType
from typing import Protocol


class WriterDiscardedWarning(UserWarning):
    """A writer's ``close()`` discarded its output because an exception was in flight.

    The message names the output and the exception's type only, never data or secrets.
    """


class Output(Protocol):
    """Where a writer's bytes go until it is closed: the file to write, then exactly one of
    ``commit`` (make it appear under its name) or ``discard`` (it never appears; never raises)."""

    def commit(self) -> None: ...

    def discard(self) -> None: ...


class Lifecycle:
    """When a writer opened and whether its ``close()`` is the clean close that commits.

    An exception already being handled at open is not a failure of the writer's (a writer may
    be opened and closed inside an ``except`` block), as long as it is the same handling: its
    traceback object is remembered too, because raising that exception again (``raise`` in the
    handler, ``raise e``) gives it a new traceback, and then it counts as in flight.
    """

    __slots__ = ("_handled_at_open", "_traceback_at_open")

    def __init__(self) -> None:
        self._handled_at_open = sys.exc_info()[1]
        self._traceback_at_open: TracebackType | None = (
            None if self._handled_at_open is None else self._handled_at_open.__traceback__
        )

    def in_flight(self) -> BaseException | None:
        """The exception raised (or raised again) since the writer opened that is propagating
        or being handled now, else None: a ``close()`` now is cleanup after a failure, not the
        end of the data."""
        current = sys.exc_info()[1]
        if current is None:
            return None
        if current is self._handled_at_open and current.__traceback__ is self._traceback_at_open:
            return None
        return current

    def forget(self) -> None:
        """Drop the exception handled at open and its traceback (they hold frames alive)."""
        self._handled_at_open = None
        self._traceback_at_open = None


def warn_discarded(shown: str, exc: BaseException) -> None:
    """Say that ``close()`` discarded ``shown`` because ``exc`` was in flight, so that a close
    inside an unrelated ``except`` block never drops output silently."""
    warnings.warn(
        WriterDiscardedWarning(
            f"{shown}: output discarded, not committed: close() was called while "
            f"{type(exc).__name__} was propagating or being handled (to commit inside an "
            "except block, open the writer there)"
        ),
        stacklevel=3,
    )
