"""``encrypt -r DIR -o OUTDIR`` and ``decrypt -r``: whole folders through the library's
``encrypt_tree``/``decrypt_tree`` (one password derivation per folder), with the CLI's policy:
a folder in, a folder out, one progress bar over all bytes, a summary line, exit 1 on failure."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import Any

import aes_hmac

from .common import EXIT_FAILURE, EXIT_OK, UsageError, note
from .io_policy import Progress
from .messages import describe


def add_arguments(parser: argparse.ArgumentParser, *, decrypt: bool = False) -> None:
    """``-r``, ``--skip-existing`` and ``--fail-fast`` (``--force`` replaces existing outputs);
    for ``decrypt`` also ``--no-manifest``."""
    parser.add_argument(
        "-r",
        "--recursive",
        action="store_true",
        help="INPUT is a folder: mirror it into the folder -o OUTDIR (symlinks are never"
        " followed; one password derivation for the whole folder)",
    )
    parser.add_argument(
        "--skip-existing", action="store_true", help="with -r: leave existing outputs as they are"
    )
    parser.add_argument(
        "--fail-fast", action="store_true", help="with -r: stop at the first file that fails"
    )
    if decrypt:
        parser.add_argument(
            "--no-manifest",
            action="store_true",
            help="with -r: decrypt a folder written before manifests existed, without checking"
            " that each file is the one its folder's manifest lists at that path",
        )


def check(args: argparse.Namespace) -> bool:
    """Whether this is a folder run; usage errors for folder options used wrongly."""
    if not args.recursive:
        if args.skip_existing or args.fail_fast or getattr(args, "no_manifest", False):
            raise UsageError("--skip-existing, --fail-fast and --no-manifest need -r")
        return False
    if args.input in (None, "-") or not os.path.isdir(args.input):
        raise UsageError("-r needs a folder as INPUT")
    if args.output in (None, "-"):
        raise UsageError("-r needs an output folder: -o OUTDIR")
    if args.skip_existing and args.force:
        raise UsageError("--skip-existing and --force exclude each other")
    return True


def run(
    args: argparse.Namespace, label: str, job: Callable[..., aes_hmac.TreeResult], **kw: Any
) -> int:
    """Run ``job`` (``encrypt_tree`` or ``decrypt_tree``) over the folder; print the summary."""
    existing = "overwrite" if args.force else "skip" if args.skip_existing else "error"
    progress = Progress(quiet=args.quiet, total=None, label=label, piped=False)
    try:
        result = job(
            args.input,
            args.output,
            existing=existing,
            stop_on_error=args.fail_fast,
            progress=progress.callback,
            **kw,
        )
    finally:
        progress.close()
    for path, exc in result.failures:
        message = describe(exc)
        note(message if path in message else f"{path}: {message}")
    skipped = f", {result.skipped} skipped" if result.skipped else ""
    if not args.quiet or result.failures:
        note(
            f"{label}: {result.files} files, {result.bytes} bytes{skipped},"
            f" {len(result.failures)} failed"
        )
    return EXIT_OK if result.ok else EXIT_FAILURE
