"""The ``aes-hmac`` console script's first code: a Ctrl-C while the program loads is told as one
line, exit 130, never a ``KeyboardInterrupt`` traceback.

Loading ``aes_hmac`` and its command line (``cryptography`` among them) takes a few hundred
milliseconds, and a script importing the entry point from the package would run all of it
before any of our code could catch anything. This module lives outside the ``aes_hmac`` package
and imports nothing before its ``try`` (``sys`` is built in), so the whole load runs inside it;
from there on ``aes_hmac.cli`` handles every signal itself. What remains is the interpreter's own
start (its ``io`` and ``site`` imports, about 10 ms), before any code of this program runs.
"""

import sys

# No ``from __future__`` and no ``typing`` at run time: every import here runs outside the
# ``try`` below (typing takes milliseconds), so the annotations are strings.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final, NoReturn

PROG: "Final" = "aes-hmac"
"""The program name in every message (``aes_hmac.cli.common`` takes it from here)."""
EXIT_SIGNAL_BASE: "Final" = 128
"""A command stopped by signal N exits 128 + N, as a shell reports it (``aes_hmac.cli.common``
takes it from here)."""
INTERRUPTED: "Final" = f"{PROG}: error: interrupted\n"
"""What a Ctrl-C says, as ``aes_hmac.cli`` says it once its own handlers run."""


def entry() -> "NoReturn":
    """Run ``aes_hmac.cli``'s ``entry``; a Ctrl-C before it took over exits 130 with one line."""
    try:
        from aes_hmac.cli.app import entry as run

        run()
    except KeyboardInterrupt:
        _interrupted()


def _interrupted() -> "NoReturn":
    import signal  # after the interrupt: nothing may be loaded before the ``try`` above

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while leaving: no traceback
    try:
        sys.stderr.write(INTERRUPTED)
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):  # stderr closed or gone
        pass
    raise SystemExit(EXIT_SIGNAL_BASE + signal.SIGINT)
