"""``aes-hmac import --from SOURCE``: convert another tool's data; nothing is written unverified.

The sources and their conversions are the table in ``import_sources``; this module reads and
checks what every source shares (paths, the source secret, the new password, the KDF).
"""

from __future__ import annotations

import argparse

from .. import options
from ..common import EXIT_OK, Command, UsageError
from ..import_sources import SOURCES, ImportJob
from ..io_policy import check_paths, path_arg
from ..messages import new_slot
from ..passwords import read_new_password, read_old_password

PASSWORD = options.PasswordOptions(what="source ")
NEW_PASSWORD = options.PasswordOptions("new-", "new ")
KDF = options.KdfOptions()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="source", choices=list(SOURCES), required=True, help="input format"
    )
    options.add_input(parser)
    options.add_output(parser, quiet_help="no password warnings")
    PASSWORD.add(parser)
    NEW_PASSWORD.add(parser)
    KDF.add(parser)


def run(args: argparse.Namespace) -> int:
    source = SOURCES[args.source]
    src, dst = path_arg(args.input), path_arg(args.output)
    secret_source = PASSWORD.read(args)
    options.refuse_stdin_password(secret_source, src)
    paths = check_paths(src, dst, force=args.force)
    kdf = KDF.read(args)
    options.warn_beyond_default_limits(kdf)
    secret = read_old_password(secret_source, source.prompt)
    if source.check_secret is not None:
        source.check_secret(secret)
    new_source = NEW_PASSWORD.read(args)
    new = secret
    if not source.new_password and new_source.given:
        raise UsageError(f"--from {source.name} keeps the password: it takes no new password")
    if source.new_password:
        new = read_new_password(new_source, quiet=args.quiet, what="New password")
    with new_slot(kdf):
        source.run(ImportJob(src, dst, paths, args.force, secret, new, kdf))
    return EXIT_OK


COMMAND = Command(
    name="import",
    help="Convert data made by other tools: "
    + ", ".join(source.title for source in SOURCES.values())
    + ".",
    epilog="".join(f"--from {source.name}: {source.help}\n" for source in SOURCES.values())
    + "Everything is verified before output is written; a failed import leaves no output file.",
    add_arguments=add_arguments,
    run=run,
)
