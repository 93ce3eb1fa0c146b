"""What every CLI module shares: the program name, exit statuses, failure kinds, safe messages.

Also the standard streams as the process found them: a closed stdin, stdout or stderr (``<&-``,
``>&-``, ``2>&-``) is noted once at start and its descriptor pointed at /dev/null, so a file the
command opens never lands on descriptor 0, 1 or 2 by accident.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final

from _aes_hmac_cli import EXIT_SIGNAL_BASE as EXIT_SIGNAL_BASE
from _aes_hmac_cli import PROG as PROG

EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2
TERMINATING_SIGNALS: Final = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
    if hasattr(signal, name)
)
"""Catchable signals that end the command: each removes temporary output first (SIGPIPE stays
ignored, as Python sets it, and shows as a broken pipe)."""

STDIN: Final = 0
STDOUT: Final = 1
STDERR: Final = 2
closed_std_fds: set[int] = set()
"""Standard descriptors that were closed when the command started (filled by ``guard_std_fds``)."""


class CliError(Exception):
    """A failure to report as one ``aes-hmac: error:`` line; exit status 1."""


class UsageError(CliError):
    """A mistake in the command line; exit status 2."""


class Interrupted(BaseException):
    """A terminating signal arrived; unwinds like ``KeyboardInterrupt`` so cleanup runs."""

    def __init__(self, signum: int, message: str = "") -> None:
        super().__init__(signum)
        self.signum = signum
        self.message = message

    @property
    def status(self) -> int:
        return EXIT_SIGNAL_BASE + self.signum

    def __str__(self) -> str:
        if self.message:
            return self.message
        return "interrupted" if self.signum == signal.SIGINT else f"stopped by {self.name}"

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def ignore_signals() -> None:
    """Ignore every terminating signal from now on: the command's outcome is already decided."""
    for signum in TERMINATING_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)


def _on_signal(signum: int, _frame: object) -> None:
    # The first signal decides the exit; more while cleaning up would leave a temporary file.
    ignore_signals()
    raise Interrupted(signum)


def handle_signals() -> None:
    """Turn every terminating signal into ``Interrupted`` (main thread only)."""
    for signum in TERMINATING_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # nohup's choice is kept
            signal.signal(signum, _on_signal)


def guard_std_fds() -> None:
    """Note closed standard descriptors and point them at /dev/null (see the module doc)."""
    for fd in (STDIN, STDOUT, STDERR):
        try:
            os.fstat(fd)
        except OSError:
            closed_std_fds.add(fd)
            null = os.open(os.devnull, os.O_RDWR)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)


def stdin_binary() -> BinaryIO:
    if STDIN in closed_std_fds or sys.stdin is None:
        raise CliError("stdin is closed: give an input file")
    return sys.stdin.buffer


def stdout_binary() -> BinaryIO:
    if STDOUT in closed_std_fds or sys.stdout is None:
        raise CliError("stdout is closed: give an output file with -o")
    return sys.stdout.buffer


def write_failed(exc: OSError, output: str = "stdout") -> CliError:
    """The one line for an output that could not be written (a full disk, an I/O error)."""
    return CliError(f"cannot write {output}: {exc.strerror or exc}")


def write_stdout(text: str) -> None:
    """Text on stdout (flushed), or the error that says stdout is closed or failed."""
    out = stdout_binary()
    try:
        out.write(text.encode("utf-8", "surrogateescape"))
        out.flush()
    except BrokenPipeError:
        raise  # '| head': main's quiet exit 1
    except OSError as exc:
        raise write_failed(exc) from None


_UNSAFE: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ud800-\udfff]"
)
"""C0 and C1 controls, DEL, bidirectional and line-separator marks, and undecodable bytes."""
_NAMED: Final = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    if char in _NAMED:
        return _NAMED[char]
    if 0xDC80 <= code <= 0xDCFF:  # a byte of a file name that is not UTF-8 (surrogateescape)
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def shown(text: str) -> str:
    """``text`` safe to print on a terminal: control characters escaped as in ``repr``."""
    return _UNSAFE.sub(_escape, text)


def emit(line: str) -> None:
    """One line on stderr, escaped; nothing when stderr is closed or gone (a hung-up terminal)."""
    if STDERR in closed_std_fds or sys.stderr is None:
        return
    try:
        sys.stderr.write(shown(line) + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def note(message: str) -> None:
    """One ``aes-hmac: ...`` line on stderr (warnings, hints)."""
    emit(f"{PROG}: {message}")


@dataclass(frozen=True)
class Command:
    """One subcommand: its help, the arguments it declares, and what it runs.

    Each command module defines one ``COMMAND``; ``app.COMMANDS`` lists them in help order.
    """

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    epilog: str = ""
