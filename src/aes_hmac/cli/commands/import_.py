"""``aes-hmac import --from SOURCE``: convert another tool's data.

The sources, their guarantees (verified before output or not), their own options and their
conversions are the table in ``import_sources``; this module reads and checks what every source
shares (paths, the source secret, the new password, the KDF) and each source's own flags.
"""

from __future__ import annotations

import argparse

from .. import options
from ..common import EXIT_OK, Command, UsageError
from ..import_sources import SOURCES, ImportJob, ImportSource, SourceOption, epilog, title
from ..io_policy import check_paths, path_arg
from ..messages import new_slot
from ..passwords import read_new_password, read_old_password

PASSWORD = options.PasswordOptions(what="source ")
NEW_PASSWORD = options.PasswordOptions("new-", "new ")
KDF = options.KdfOptions()


def _dest(source: ImportSource, option: SourceOption) -> str:
    return f"from_{source.name}_{option.field}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--from", dest="source", choices=list(SOURCES), required=True, help="input format"
    )
    options.add_input(parser)
    options.add_output(parser, quiet_help="no password warnings")
    PASSWORD.add(parser)
    NEW_PASSWORD.add(parser)
    KDF.add(parser)
    for source in SOURCES.values():
        if not source.options:
            continue
        group = parser.add_argument_group(f"--from {source.name}")
        for option in source.options:
            group.add_argument(
                option.flag,
                dest=_dest(source, option),
                type=option.parse,
                metavar=option.metavar,
                help=f"{option.help} (default {option.default})",
            )


def read_source_options(source: ImportSource, args: argparse.Namespace) -> dict[str, int]:
    """``source``'s options by field, defaults filled in; another source's flag is refused."""
    values = {option.field: option.default for option in source.options}
    for other in SOURCES.values():
        for option in other.options:
            value = getattr(args, _dest(other, option))
            if value is None:
                continue
            if other is not source:
                raise UsageError(f"{option.flag} needs --from {other.name}")
            values[option.field] = value
    return values


def run(args: argparse.Namespace) -> int:
    source = SOURCES[args.source]
    source_options = read_source_options(source, args)
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
        source.run(ImportJob(src, dst, paths, args.force, secret, new, kdf, source_options))
    return EXIT_OK


COMMAND = Command(
    name="import",
    help=title(SOURCES.values()),
    epilog=epilog(SOURCES.values()),
    add_arguments=add_arguments,
    run=run,
)
