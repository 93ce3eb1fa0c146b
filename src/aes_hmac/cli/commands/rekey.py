"""``aes-hmac rekey``: change, add or remove a password slot; the payload is not re-encrypted."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from collections.abc import Callable

import aes_hmac
from aes_hmac import armor

from .. import options
from ..common import EXIT_OK, CliError, Command, UsageError
from ..io_policy import open_input
from ..passwords import read_new_secret, read_old_secret
from ..sniffing import HEAD_BYTES, check_input, open_encrypted

PASSWORD = options.PasswordOptions(what="current ", key_file=True)
NEW_PASSWORD = options.PasswordOptions("new-", "new ", key_file=True)
KDF = options.KdfOptions()
LIMITS = options.LimitOptions()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="encrypted file (binary or armored)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--add", action="store_true", help="add the new password, keep the old")
    mode.add_argument(
        "--remove", action="store_true", help="remove the password given (not the last one)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no password warnings")
    PASSWORD.add(parser)
    NEW_PASSWORD.add(parser)
    KDF.add(parser)
    LIMITS.add(parser)


def run(args: argparse.Namespace) -> int:
    path: str = args.file
    if path == "-":
        raise UsageError("rekey needs a file path, not stdin")
    old_source = PASSWORD.read(args)
    with open_input(path) as fin:
        _, armored, head = open_encrypted(fin)
    check_input(head, key_file=old_source.key_file is not None)
    if armored:
        with open_input(path) as fin:
            if not armor.looks_armored(fin.read(HEAD_BYTES)):
                raise CliError(f"{path} has text before its armor: remove that text first")
    new_source = NEW_PASSWORD.read(args)
    if args.remove and new_source.given:
        raise UsageError("--remove takes no new password")
    if args.remove and KDF.given(args):
        raise UsageError("--remove takes no KDF options")
    if new_source.key_file is not None and KDF.given(args):
        raise UsageError("--new-key-file makes a raw-key slot: it takes no KDF options")
    kdf = KDF.read(args)
    options.warn_beyond_default_limits(kdf)
    limits = LIMITS.read(args)
    old = read_old_secret(old_source, "Current password: ")
    edit: Callable[[str], None]
    if args.remove:

        def edit(target: str) -> None:
            aes_hmac.remove_password(target, old, limits=limits)

    else:
        new = read_new_secret(new_source, quiet=args.quiet, what="New password")
        slot_edit = aes_hmac.add_password if args.add else aes_hmac.change_password

        def edit(target: str) -> None:
            slot_edit(target, old, new, kdf=kdf, limits=limits)

    if armored:
        _rekey_armored(path, edit)
    else:
        edit(path)
    return EXIT_OK


def _rekey_armored(path: str, edit: Callable[[str], None]) -> None:
    """Slot edits work on binary files: dearmor to a temporary file, edit it, armor it back.

    Only ciphertext is ever on disk; the armored file is replaced atomically at the end (the
    file a symlink points to, so the link stays and the old password stops working).
    """
    path = os.path.realpath(path)
    folder = os.path.dirname(path)
    with tempfile.TemporaryDirectory(prefix=".aes-hmac-rekey-", dir=folder) as work:
        binary = os.path.join(work, "stream")
        with open_input(path) as fin, open(binary, "xb") as out:
            stream, _ = armor.sniff(fin)
            shutil.copyfileobj(stream, out)
        edit(binary)
        with open(binary, "rb") as src, aes_hmac.atomic_output(path, overwrite=True) as dst:
            writer = armor.ArmorWriter(dst)
            shutil.copyfileobj(src, writer)
            writer.close()


COMMAND = Command(
    name="rekey",
    help="Change, add (--add) or remove (--remove) a password or key file slot of an encrypted"
    " file.",
    epilog="The payload is not re-encrypted, but the whole file is copied: a new file with the new"
    " header and the payload bytes unchanged replaces the old one atomically (a new inode: hard"
    " links to the old file keep the old header; a symlink keeps pointing at the new file).\n"
    "Passwords and key files mix: --add --new-key-file K gives a password-encrypted file a key"
    " file slot, so it opens with either.",
    add_arguments=add_arguments,
    run=run,
)
