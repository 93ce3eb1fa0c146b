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
        help="INPUT is a folder: mirror it into the folder -o OUTDIR, empty folders included"
        " (symlinks, FIFOs and devices are skipped, never followed or read; one password"
        " derivation for the whole folder)",
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
    if not args.quiet:
        for path, reason in result.skipped_entries:
            note(f"{path}: skipped ({reason})")
    for path, exc in result.failures:
        note(_failure_line(path, exc))
    if not args.quiet or result.failures:
        note(_summary(label, result))
    return EXIT_OK if result.ok else EXIT_FAILURE


def _failure_line(path: str, exc: BaseException) -> str:
    """One line per failed file, naming the side at fault: an existing output is named itself
    (the library's message says which) with the options that decide about it."""
    if isinstance(exc, FileExistsError) and exc.filename is None:
        return f"{exc} (use --skip-existing or --force)"
    message = describe(exc)
    return message if path in message else f"{path}: {message}"


def _summary(label: str, result: aes_hmac.TreeResult) -> str:
    """``encrypt: 3 files, 70006 bytes, 1 skipped (exists), 2 not regular files skipped, 0
    failed``: existing outputs and links/FIFOs/devices counted apart from failures."""
    parts = [f"{result.files} files", f"{result.bytes} bytes"]
    if result.skipped:
        parts.append(f"{result.skipped} skipped (output exists)")
    if result.skipped_entries:
        parts.append(f"{len(result.skipped_entries)} links or special files skipped")
    parts.append(f"{len(result.failures)} failed")
    return f"{label}: {', '.join(parts)}"
