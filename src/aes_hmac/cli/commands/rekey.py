"""``aes-hmac rekey``: change, add or remove a password slot; the payload is not re-encrypted."""

from __future__ import annotations

import argparse

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
    # The library edits binary and armored files alike, under its per-file edit lock.
    if args.remove:
        aes_hmac.remove_password(path, old, limits=limits)
    else:
        new = read_new_secret(new_source, quiet=args.quiet, what="New password")
        slot_edit = aes_hmac.add_password if args.add else aes_hmac.change_password
        slot_edit(path, old, new, kdf=kdf, limits=limits)
    return EXIT_OK


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
