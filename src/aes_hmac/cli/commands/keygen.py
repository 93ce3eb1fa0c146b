"""``aes-hmac keygen``: a new random key in a key file (mode 0600, never overwritten)."""

from __future__ import annotations

import argparse
import os

import aes_hmac

from ..common import EXIT_OK, CliError, Command, note, write_stdout
from ..io_policy import check_output, path_arg


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o", "--output", metavar="PATH", help="key file to create ('-' or default: stdout)"
    )


def run(args: argparse.Namespace) -> int:
    dst = path_arg(args.output)
    text = aes_hmac.Key.generate().to_text() + "\n"
    if dst is None:
        write_stdout(text)
        return EXIT_OK
    check_output(dst)
    try:
        if os.path.lexists(dst):  # a device or FIFO too: the library would call it "not regular"
            raise FileExistsError
        # A new file gets mode 0600; an existing one is never replaced (no --force: a key
        # file overwritten by mistake loses every file it opens).
        with aes_hmac.atomic_output(dst, overwrite=False) as out:
            out.write(text.encode("ascii"))
    except FileExistsError:
        raise CliError(f"{dst} exists: a key file is never overwritten") from None
    except OSError as exc:
        raise CliError(f"cannot write {dst}: {exc.strerror or exc}") from None
    note(f"key written to {dst}: keep it secret and keep a copy, the files it opens need it")
    return EXIT_OK


COMMAND = Command(
    name="keygen",
    help="Make a key file: a random 256-bit key to use with --key-file instead of a password.",
    epilog="The file holds one line, 'aes-hmac-key-1:' and 43 base64url characters; it is"
    " created with mode 0600 and an existing file is never overwritten. Whoever reads it"
    " decrypts every file it encrypts: store it like a password.\n"
    "Example:\n  aes-hmac keygen -o backup.key\n  aes-hmac encrypt --key-file backup.key data.db",
    add_arguments=add_arguments,
    run=run,
)
