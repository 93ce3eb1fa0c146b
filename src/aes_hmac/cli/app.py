"""The parser, built from the command registry, and the entry point that tells every failure.

Exit status 0 success, 1 failure, 2 usage error; a failure is one ``aes-hmac: error: ...`` line.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import IO, Final, NoReturn

import aes_hmac

from .commands import decrypt, encrypt, import_, inspect, rekey
from .common import EXIT_FAILURE, EXIT_USAGE, PROG, CliError, Command, UsageError
from .messages import describe

COMMANDS: Final[tuple[Command, ...]] = (
    encrypt.COMMAND,
    decrypt.COMMAND,
    inspect.COMMAND,
    rekey.COMMAND,
    import_.COMMAND,
)
"""Every subcommand, in help order: a new one is a new module in ``commands`` and a line here."""

EXIT_HELP: Final = (
    "exit status: 0 success, 1 failure (wrong password, damaged or truncated data, I/O error; also,"
    " without a message, when the reader of the output pipe goes away, as in '| head'),"
    " 2 usage error"
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as the tool's single error line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar; ``--help`` of each command documents it."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Password-based authenticated encryption of files and pipes "
            "(AES-256-CBC + HMAC-SHA256, encrypt-then-MAC)."
        ),
        epilog=EXIT_HELP
        + ". Passwords are never command-line values: use a prompt, a file, a descriptor or an"
        " environment variable.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {aes_hmac.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.name,
            help=command.help,
            description=command.help,
            epilog=(command.epilog + "\n\n" if command.epilog else "") + EXIT_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 usage)."""
    parser = build_parser()
    stream: IO[str] = sys.stderr
    try:
        args = parser.parse_args(argv)
        status: int = args.run(args)
        return status
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=stream)
        return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"\n{PROG}: error: interrupted", file=stream)
        return EXIT_FAILURE
    except (CliError, aes_hmac.AesHmacError, OSError) as exc:
        print(f"{PROG}: error: {describe(exc)}", file=stream)
        return EXIT_FAILURE
    except (TypeError, ValueError) as exc:
        # The library's caller-mistake errors (chunk size, last slot): they name the argument,
        # never a secret.
        print(f"{PROG}: error: {describe(exc)}", file=stream)
        return EXIT_FAILURE
