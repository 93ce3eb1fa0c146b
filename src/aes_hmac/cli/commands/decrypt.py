"""``aes-hmac decrypt``: binary or armored input (detected) to a file or stdout."""

from __future__ import annotations

import argparse
import stat
from typing import Any

import aes_hmac
from aes_hmac import armor

from .. import options
from ..common import EXIT_OK, CliError, Command
from ..io_policy import (
    CountingWriter,
    Progress,
    check_paths,
    open_input,
    open_output,
    output_error,
    path_arg,
    size_of,
)
from ..messages import describe
from ..passwords import read_old_password

PASSWORD = options.PasswordOptions()
LIMITS = options.LimitOptions()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_input(parser)
    options.add_output(parser)
    options.add_workers(parser)
    PASSWORD.add(parser)
    LIMITS.add(parser)


def run(args: argparse.Namespace) -> int:
    src, dst = path_arg(args.input), path_arg(args.output)
    source = PASSWORD.read(args)
    options.refuse_stdin_password(source, src)
    paths = check_paths(src, dst, force=args.force)
    src_stat = paths.src_stat
    limits = LIMITS.read(args)
    progress: Progress | None = None
    counter: CountingWriter | None = None
    try:
        with open_input(src) as fin:
            stream, armored = armor.sniff(fin)
            password = read_old_password(source)
            total = None if armored else size_of(src_stat)
            # After the prompt: a bar drawn first would share the prompt's line.
            progress = Progress(quiet=args.quiet, total=total, label="decrypt")
            # decrypt_file reopens the path: only a regular file can be read twice (a <(...)
            # pipe path has lost the bytes sniff consumed).
            if (
                src is not None
                and dst is not None
                and not paths.in_place
                and not armored
                and stat.S_ISREG(src_stat.st_mode)
            ):
                aes_hmac.decrypt_file(
                    src,
                    dst,
                    password,
                    limits=limits,
                    overwrite=args.force,
                    progress=progress.callback,
                    workers=args.workers,
                )
                return EXIT_OK
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
                    total=total,
                )
                out.flush()
    except (aes_hmac.AesHmacError, OSError, KeyboardInterrupt) as exc:
        if counter is not None and counter.written and not isinstance(exc, BrokenPipeError):
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else describe(exc)
            raise CliError(
                f"{reason}; the {counter.written} bytes already written to {dst or 'stdout'} are "
                "incomplete and must be discarded"
            ) from None
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
    epilog="Example: aes-hmac decrypt DIR.tgz.ahm | tar xz",
    add_arguments=add_arguments,
    run=run,
)
