"""The parser, built from the command registry, and the entry point that tells every failure.

Exit status 0 success, 1 failure, 2 usage error, 128 + N when signal N stopped the command; a
failure is one ``aes-hmac: error: ...`` line (none when stderr is closed), never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Final, NoReturn

import aes_hmac

if TYPE_CHECKING:
    from _typeshed import SupportsWrite

from .commands import completion, decrypt, encrypt, import_, inspect, keygen, rekey, token
from .common import (
    EXIT_FAILURE,
    EXIT_USAGE,
    PROG,
    STDOUT,
    CliError,
    Command,
    Interrupted,
    UsageError,
    closed_std_fds,
    emit,
    guard_std_fds,
    handle_signals,
    ignore_signals,
    write_failed,
)
from .io_policy import EXTENSION, enlarge_pipes
from .messages import describe

COMMANDS: Final[tuple[Command, ...]] = (
    encrypt.COMMAND,
    decrypt.COMMAND,
    inspect.COMMAND,
    rekey.COMMAND,
    import_.COMMAND,
    keygen.COMMAND,
    token.COMMAND,
    completion.COMMAND,
)
"""Every subcommand, in help order: a new one is a new module in ``commands`` and a line here."""

EXIT_HELP: Final = (
    "exit status: 0 success, 1 failure (wrong password, damaged or truncated data, I/O error; also,"
    " without a message, when the reader of the output pipe goes away, as in '| head'),"
    " 2 usage error, 128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP); a"
    " stopped command leaves no temporary or partial output file"
)


MANUAL: Final = f"""\
'{PROG} COMMAND --help' documents each command in full.

files:
  encrypt FILE writes FILE{EXTENSION} and decrypt FILE{EXTENSION} writes FILE (-o names another
  output, -o - is stdout); stdin goes to stdout. An existing file is replaced only with --force,
  through a temporary file renamed into place, so a failed or interrupted command leaves no
  partial output. A symlink to nothing is never written through, and in a shared sticky
  folder such as /tmp only a symlink you own is followed.

secrets:
  Passwords are never command-line values: the prompt (on the terminal, /dev/tty, even when
  stderr is redirected), --password-file PATH, --password-fd N or --password-env NAME. A
  password file's first line is the password; a leading UTF-8 byte-order mark is ignored.
  --key-file PATH uses a key made by '{PROG} keygen' instead; one file may have password and
  key file slots ('{PROG} rekey --add').

progress:
  On a terminal, inputs of 4 MiB or more read from a file show plaintext bytes done in
  binary units (MiB); -q hides it, and a command reading a pipe shows none.

examples:
  {PROG} encrypt notes.txt                       # asks twice, writes notes.txt{EXTENSION}
  {PROG} decrypt notes.txt{EXTENSION}                   # writes notes.txt
  tar cz DIR | {PROG} encrypt --password-file pw > DIR.tgz{EXTENSION}
  {PROG} decrypt --password-file pw -o - DIR.tgz{EXTENSION} | tar xz
  {PROG} keygen -o backup.key && {PROG} encrypt --key-file backup.key db.sqlite
  {PROG} completion bash > ~/.local/share/bash-completion/completions/{PROG}"""
"""The top-level help's body: with every command's --help it is the manual."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as the tool's single error line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")

    def _print_message(self, message: str, file: SupportsWrite[str] | None = None) -> None:
        """argparse's printer (help, version), minus its silence: a write error is a failure.

        argparse ignores ``OSError`` here, so ``--help >/dev/full`` used to exit 0 with nothing
        written. The text is flushed at once so the error surfaces now, as one error line.
        """
        if not message:
            return
        out = file or sys.stderr
        try:
            out.write(message)
            if hasattr(out, "flush"):
                out.flush()
        except BrokenPipeError:
            raise  # '| head': main's quiet exit 1
        except OSError as exc:
            if out is sys.stdout:
                _silence_stdout()  # the unwritten text must not fail again at the final flush
            raise write_failed(exc, "stdout" if out is sys.stdout else "stderr") from None


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar; ``--help`` of each command documents it."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Password-based authenticated encryption of files and pipes "
            "(AES-256-CBC + HMAC-SHA256, encrypt-then-MAC)."
        ),
        epilog=MANUAL + "\n\n" + EXIT_HELP + ".",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-V", "--version", action="version", version=f"{PROG} {aes_hmac.__version__}"
    )
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
        os.dup2(devnull, STDOUT)
    finally:
        os.close(devnull)


def _error(message: str) -> None:
    emit(f"{PROG}: error: {message}")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 usage, 128+N signal)."""
    try:
        # Inside the try: a Ctrl-C before the handlers are installed is told like any other.
        handle_signals()
        guard_std_fds()
        enlarge_pipes()
        parser = build_parser()
        args = parser.parse_args(argv)
        status: int = args.run(args)
        return status
    except UsageError as exc:
        _error(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILURE
    except Interrupted as exc:
        _error(str(exc))
        return exc.status
    except KeyboardInterrupt:  # before the handlers were installed
        _error("interrupted")
        return Interrupted(signal.SIGINT).status
    except (CliError, aes_hmac.AesHmacError, OSError) as exc:
        _error(describe(exc))
        return EXIT_FAILURE
    except (TypeError, ValueError) as exc:
        # The library's caller-mistake errors (chunk size, last slot): they name the argument,
        # never a secret.
        _error(describe(exc))
        return EXIT_FAILURE
    except SystemExit as exc:  # argparse's --help and --version on a closed stdout
        if STDOUT in closed_std_fds and exc.code == 0:
            return EXIT_FAILURE
        raise


def entry() -> NoReturn:
    """The console script and ``python -m aes_hmac``: ``main``, then leave with its status.

    After an interrupt a worker thread may still be blocked reading a pipe nobody closes,
    holding the lock of ``sys.stdin``'s buffer; a normal interpreter shutdown would then abort
    ("could not acquire lock ... daemon threads"). Every output is closed and its temporary file
    removed by now, so such a run leaves at once with ``os._exit``.
    """
    status = main()
    # The outcome is decided and told: a signal from now on must not turn it into a traceback.
    ignore_signals()
    if threading.active_count() > 1:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)
    raise SystemExit(status)
