"""What every CLI module shares: the program name, exit statuses, the two failure kinds, notes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

PROG: Final = "aes-hmac"
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2


class CliError(Exception):
    """A failure to report as one ``aes-hmac: error:`` line; exit status 1."""


class UsageError(CliError):
    """A mistake in the command line; exit status 2."""


def note(message: str) -> None:
    """One ``aes-hmac: ...`` line on stderr (warnings, the generated passphrase)."""
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


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
