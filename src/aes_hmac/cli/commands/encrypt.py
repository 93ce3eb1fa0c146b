"""``aes-hmac encrypt``: a file or stdin to a file or stdout, binary or armored."""

from __future__ import annotations

import argparse
from typing import BinaryIO

import aes_hmac
from aes_hmac import armor

from .. import options, tree
from ..common import EXIT_OK, CliError, Command, UsageError, stdout_binary
from ..io_policy import (
    EXTENSION,
    Progress,
    check_paths,
    encrypted_name,
    file_arg,
    open_input,
    open_output,
    output_error,
    size_of,
)
from ..messages import new_slot
from ..options import Kdf
from ..passwords import PasswordSource, read_new_secret

PASSWORD = options.PasswordOptions(key_file=True)
KDF = options.KdfOptions()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_input(parser)
    options.add_output(
        parser,
        output_help=f"output file ('-': stdout; default: INPUT{EXTENSION}, or stdout for stdin)",
    )
    options.add_workers(parser)
    parser.add_argument("-a", "--armor", action="store_true", help="write the PEM-like text form")
    parser.add_argument(
        "--chunk-size",
        type=options.chunk_size,
        metavar="SIZE",
        help="plaintext bytes per chunk, a power of two from 4K to 16M (default 1M)",
    )
    tree.add_arguments(parser)
    PASSWORD.add(parser)
    KDF.add(parser)


def run(args: argparse.Namespace) -> int:
    if tree.check(args):
        return _run_tree(args)
    src = file_arg(args.input, "encrypt")
    dst = encrypted_name(src, args.output)
    source = PASSWORD.read(args)
    options.refuse_stdin_password(source, src)
    paths = check_paths(src, dst, force=args.force)
    if dst is None and not args.armor and stdout_binary().isatty():
        raise CliError("refusing to write binary ciphertext to a terminal: use --armor or -o FILE")
    kdf = _kdf(args, source)
    password = read_new_secret(source, quiet=args.quiet)
    chunk_size: int = args.chunk_size or aes_hmac.DEFAULT_CHUNK_SIZE
    total = size_of(paths.src_stat)
    progress = Progress(quiet=args.quiet, total=total, label="encrypt", piped=paths.piped)
    with new_slot(kdf):
        try:
            if src is not None and dst is not None and not paths.in_place and not args.armor:
                aes_hmac.encrypt_file(
                    src,
                    dst,
                    password,
                    overwrite=args.force,
                    progress=progress.callback,
                    workers=args.workers,
                    kdf=kdf,
                    chunk_size=chunk_size,
                )
                return EXIT_OK
            with open_input(src) as fin, open_output(dst, paths, force=args.force) as out:
                sink: BinaryIO = armor.ArmorWriter(out) if args.armor else out  # type: ignore[assignment]
                aes_hmac.encrypt_stream(
                    fin,
                    sink,
                    password,
                    progress=progress.callback,
                    total=total,
                    workers=args.workers,
                    kdf=kdf,
                    chunk_size=chunk_size,
                )
                if args.armor:
                    sink.close()
                out.flush()
        except OSError as exc:
            raise output_error(exc, dst) or exc from None
        finally:
            progress.close()
    return EXIT_OK


def _kdf(args: argparse.Namespace, source: PasswordSource) -> Kdf:
    """The KDF options, checked before any prompt (a key file takes none); warns when readers
    will need a raised limit."""
    if source.key_file is not None and KDF.given(args):
        raise UsageError("--key-file makes a raw-key slot: it takes no KDF options")
    kdf = KDF.read(args)
    options.warn_beyond_default_limits(kdf)
    return kdf


def _run_tree(args: argparse.Namespace) -> int:
    if args.armor:
        raise UsageError("-r writes binary files: --armor is for one file or stdout")
    source = PASSWORD.read(args)
    kdf = _kdf(args, source)
    password = read_new_secret(source, quiet=args.quiet)
    chunk_size: int = args.chunk_size or aes_hmac.DEFAULT_CHUNK_SIZE
    with new_slot(kdf):
        return tree.run(
            args,
            "encrypt",
            aes_hmac.encrypt_tree,
            password=password,
            kdf=kdf,
            chunk_size=chunk_size,
        )


COMMAND = Command(
    name="encrypt",
    help="Encrypt a file or stdin.",
    epilog="Without a password option or --key-file, asks twice on the terminal; an empty answer"
    " generates a passphrase and shows it once there; a weak password is warned about and asked"
    " again before any work.\n"
    + options.SOURCE_FILE_NOTE
    + "\nExamples:\n  aes-hmac encrypt notes.txt          # writes notes.txt.ahm\n"
    "  tar cz DIR | aes-hmac encrypt > DIR.tgz.ahm\n"
    "  aes-hmac encrypt -r photos -o vault       # every file, one derivation\n"
    "  aes-hmac encrypt --key-file my.key data.db",
    add_arguments=add_arguments,
    run=run,
)
