"""``aes-hmac rekey``: change, add or remove a password slot; the payload is not re-encrypted."""

from __future__ import annotations

import argparse
import os

import aes_hmac
from aes_hmac import armor

from .. import options
from ..common import EXIT_OK, CliError, Command, Interrupted, UsageError, ignore_signals, note
from ..io_policy import open_input
from ..messages import new_slot
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
        _, armored, header = open_encrypted(fin)
    check_input(header.info, key_file=old_source.key_file is not None)
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
    new = (
        None if args.remove else read_new_secret(new_source, quiet=args.quiet, what="New password")
    )
    before = os.stat(path)  # the file the edit replaces (a symlink's target, as the edit does)
    try:
        # The library edits binary and armored files alike, under its per-file edit lock.
        if new is None:
            aes_hmac.remove_password(path, old, limits=limits)
        else:
            slot_edit = aes_hmac.add_password if args.add else aes_hmac.change_password
            with new_slot(kdf):
                slot_edit(path, old, new, kdf=kdf, limits=limits)
        ignore_signals()  # committed: from here on a signal cannot turn it into a failure
    except Interrupted as exc:
        if not _replaced(path, before):
            raise
        # The signal came after the rename that commits the edit: it is done, say so.
        note(f"{exc} after the change was saved: {path} has its new key slots")
    return EXIT_OK


def _replaced(path: str, before: os.stat_result) -> bool:
    """Whether ``path`` now names another file than ``before``: the edit's rename happened.

    While the edit runs it holds the file's edit lock, so no other edit renames over the file,
    and a file replaced by a program that ignores the lock fails the edit's check before its
    rename. Two exceptions are taken for the edit: such a program replacing the file in the
    instant between the interrupt and this check, and another edit that this one waited for
    (``before`` is taken before the lock) committing before an interrupt that stops this one.
    """
    try:
        return not os.path.samestat(os.stat(path), before)
    except OSError:
        return False


COMMAND = Command(
    name="rekey",
    help="Change, add (--add) or remove (--remove) a password or key file slot of an encrypted"
    " file.",
    epilog="The payload is not re-encrypted, but the whole file is copied: a new file with the new"
    " header and the payload bytes unchanged replaces the old one atomically (a new inode: hard"
    " links to the old file keep the old header; a symlink keeps pointing at the new file).\n"
    "Passwords and key files mix: --add --new-key-file K gives a password-encrypted file a key"
    " file slot, so it opens with either.\n"
    "Interrupted (Ctrl-C, SIGTERM) before the new file replaces the old one, the file is left"
    " unchanged and the exit status is 128+N; a signal that arrives after that point cannot undo"
    " the change: it is reported on stderr and the exit status is 0.",
    add_arguments=add_arguments,
    run=run,
)
