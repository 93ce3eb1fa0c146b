"""``aes-hmac decrypt``: binary or armored input (detected) to a file or stdout."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

import aes_hmac

from .. import options, tree
from ..common import EXIT_OK, CliError, Command, Interrupted
from ..io_policy import (
    EXTENSION,
    CountingWriter,
    Progress,
    check_paths,
    decrypted_name,
    file_arg,
    open_input,
    open_output,
    output_error,
    size_of,
)
from ..messages import describe
from ..passwords import read_old_secret
from ..sniffing import check_input, open_encrypted

PASSWORD = options.PasswordOptions(key_file=True)
LIMITS = options.LimitOptions()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_input(parser)
    options.add_output(
        parser,
        output_help=f"output file ('-': stdout; default: INPUT without {EXTENSION}, or stdout"
        " for stdin)",
    )
    options.add_workers(parser)
    tree.add_arguments(parser, decrypt=True)
    PASSWORD.add(parser)
    LIMITS.add(parser)


def plaintext_counter(info: aes_hmac.StreamInfo) -> Callable[[int], int]:
    """Turns ciphertext bytes read into plaintext bytes (within a chunk), from the header."""
    size, chunk = info.header_size, info.chunk_size
    return lambda n: max(0, n - size) * chunk // (chunk + aes_hmac.CHUNK_OVERHEAD)


def run(args: argparse.Namespace) -> int:
    if tree.check(args):
        source = PASSWORD.read(args)
        limits = LIMITS.read(args)
        password = read_old_secret(source)
        return tree.run(
            args,
            "decrypt",
            aes_hmac.decrypt_tree,
            password=password,
            limits=limits,
            manifest=not args.no_manifest,
        )
    src = file_arg(args.input, "decrypt")
    dst = decrypted_name(src, args.output)
    source = PASSWORD.read(args)
    options.refuse_stdin_password(source, src)
    paths = check_paths(src, dst, force=args.force)
    src_stat = paths.src_stat
    limits = LIMITS.read(args)
    progress: Progress | None = None
    counter: CountingWriter | None = None
    try:
        with open_input(src) as fin:
            # The header is read and parsed once, here; decrypt_stream goes on from it.
            stream, armored, header = open_encrypted(fin)
            info = check_input(header.info, key_file=source.key_file is not None)
            password = read_old_secret(source)
            to_plain = plaintext_counter(info)
            size = None if armored else size_of(src_stat)
            total = None if size is None else to_plain(size)
            # After the prompt: a line drawn first would share the prompt's line.
            progress = Progress(
                quiet=args.quiet, total=total, label="decrypt", piped=paths.piped, to_plain=to_plain
            )
            with open_output(dst, paths, force=args.force) as opened:
                out: Any = opened
                if paths.in_place:
                    out = counter = CountingWriter(opened)
                aes_hmac.decrypt_stream(
                    stream,
                    out,
                    password,
                    limits=limits,
                    workers=args.workers,
                    progress=progress.callback,
                    total=None,
                    header=header,
                )
                out.flush()
    except (aes_hmac.AesHmacError, OSError, KeyboardInterrupt, Interrupted) as exc:
        if counter is not None and counter.written and not isinstance(exc, BrokenPipeError):
            reason = str(exc) if isinstance(exc, Interrupted) else describe(exc)
            if isinstance(exc, KeyboardInterrupt):
                reason = "interrupted"
            message = (
                f"{reason}; the {counter.written} bytes already written to {dst or 'stdout'} are "
                "incomplete and must be discarded"
            )
            if isinstance(exc, Interrupted):
                raise Interrupted(exc.signum, message) from None
            raise CliError(message) from None
        if isinstance(exc, OSError):
            raise output_error(exc, dst) or exc from None
        raise
    finally:
        if progress is not None:
            progress.close()
    return EXIT_OK


COMMAND = Command(
    name="decrypt",
    help="Decrypt a file or stdin (binary or armored, detected).",
    epilog="Armor is found after leading text (an e-mail). Without a password option or"
    " --key-file, asks once on the terminal.\n"
    + options.SOURCE_FILE_NOTE
    + "\nExamples:\n  aes-hmac decrypt notes.txt.ahm      # writes notes.txt\n"
    "  aes-hmac decrypt -o - DIR.tgz.ahm | tar xz\n"
    "  aes-hmac decrypt -r vault -o photos      # every *.ahm file of a folder",
    add_arguments=add_arguments,
    run=run,
)
