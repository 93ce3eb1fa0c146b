"""Input and output policy: stdin/stdout or paths, what may be overwritten, and how.

Regular output files are written through a temporary file renamed into place (never half
written); stdout, devices and FIFOs are written directly, like a shell redirection. Also the
progress bar and the counting wrapper that tells whether plaintext already left.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import io
import os
import secrets
import stat
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO, Final

from .common import CliError

PROGRESS_MIN_BYTES: Final = 4 << 20
"""Inputs at least this big (or of unknown size) get a progress bar on a terminal."""
TMP_MARK: Final = ".aes-hmac-tmp-"
"""In the names of temporary outputs, as the library's own, so a leftover is recognisable."""


class Progress:
    """Progress callback for the library: a tqdm bar on stderr, or nothing."""

    def __init__(self, *, quiet: bool, total: int | None, label: str) -> None:
        self._bar: Any = None
        self._done = 0
        if quiet or not sys.stderr.isatty():
            return
        if total is not None and total < PROGRESS_MIN_BYTES:
            return
        try:
            tqdm: Any = importlib.import_module("tqdm")
        except ImportError:
            return
        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns
        except OSError:
            width = 0
        self._bar = tqdm.tqdm(
            # A terminal reporting a 0x0 size (a pty nobody sized) makes tqdm hide its bar.
            ncols=None if width else 80,
            nrows=None if width else 24,
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            leave=False,
            desc=label,
        )

    @property
    def callback(self) -> Callable[[int, int | None], None] | None:
        return self._update if self._bar is not None else None

    def _update(self, done: int, total: int | None) -> None:
        if total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class CountingWriter:
    """Wraps stdout to know whether any plaintext already left when decryption fails."""

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self.written = 0

    def write(self, data: bytes) -> int:
        n = self._dst.write(data)
        self.written += len(data)
        return n

    def flush(self) -> None:
        self._dst.flush()


def path_arg(arg: str | None) -> str | None:
    """A path argument, or ``None`` for stdin/stdout (nothing or ``-``)."""
    return None if arg is None or arg == "-" else arg


def _input_stat(path: str | None) -> os.stat_result:
    try:
        return os.fstat(0) if path is None else os.stat(path)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class Paths:
    """What ``check_paths`` learned: the input's stat, and whether output is written in place.

    In place means stdout, or an existing output that is not a regular file (a device such as
    /dev/null, a FIFO): it is opened and written like a shell redirection, because renaming a
    temporary file over it would replace the device or FIFO instead of writing to it.
    """

    src_stat: os.stat_result
    in_place: bool


def check_paths(src: str | None, dst: str | None, *, force: bool) -> Paths:
    """Refuse same input and output, a folder, an existing regular output without --force."""
    src_stat = _input_stat(src)
    try:
        dst_stat: os.stat_result | None = os.fstat(1) if dst is None else os.stat(dst)
    except FileNotFoundError:
        dst_stat = None
    if (
        dst_stat is not None
        and stat.S_ISREG(src_stat.st_mode)
        and (src_stat.st_dev, src_stat.st_ino) == (dst_stat.st_dev, dst_stat.st_ino)
    ):
        raise CliError("input and output are the same file")
    if dst is None:
        return Paths(src_stat, in_place=True)
    if dst_stat is None:
        if os.path.islink(dst) and not force:  # a dangling link: its target would be created
            raise CliError(f"output file {dst} exists: use --force to overwrite it")
        return Paths(src_stat, in_place=False)
    if stat.S_ISDIR(dst_stat.st_mode):
        raise CliError(f"output {dst} is a folder")
    if not stat.S_ISREG(dst_stat.st_mode):
        return Paths(src_stat, in_place=True)
    if not force:
        raise CliError(f"output file {dst} exists: use --force to overwrite it")
    return Paths(src_stat, in_place=False)


@contextlib.contextmanager
def open_input(path: str | None) -> Iterator[BinaryIO]:
    if path is None:
        yield sys.stdin.buffer
        return
    try:
        src = open(path, "rb")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    with src:
        yield src


@contextlib.contextmanager
def open_output(dst: str | None, paths: Paths, *, force: bool) -> Iterator[BinaryIO]:
    """stdout, an in-place output opened directly, or an atomic temporary file for ``dst``."""
    if dst is None:
        yield sys.stdout.buffer
        return
    if not paths.in_place:
        with atomic_output(dst, overwrite=force) as out:
            yield out
        return
    try:
        out = open(dst, "wb")
    except OSError as exc:
        raise CliError(f"cannot write {dst}: {exc.strerror}") from None
    with out:
        yield out


@contextlib.contextmanager
def atomic_output(dst: str, *, overwrite: bool) -> Iterator[BinaryIO]:
    """A temporary file beside ``dst``, fsynced and renamed there on success, else removed.

    A symlink is followed (its target is replaced, the link stays); a replaced file keeps its
    permission bits, a new one gets 0600. Without ``overwrite`` an existing ``dst`` is never
    replaced, even one that appears meanwhile. The temporary name is chosen before the file is
    created, so an interrupt at any point still removes it.
    """
    target = os.path.realpath(dst)
    try:
        mode: int | None = stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mode = None
    if not overwrite and os.path.lexists(dst):
        raise FileExistsError(f"{dst} exists")
    folder = os.path.dirname(target)
    tmp = os.path.join(folder, f".{os.path.basename(target)}{TMP_MARK}{secrets.token_hex(6)}")
    try:
        fd = os.open(tmp, _CREATE_FLAGS, 0o600)
        with open(fd, "wb") as out:
            if mode is not None:
                os.chmod(out.fileno(), mode)
            yield out
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_no_clobber(tmp, target)
        _fsync_folder(folder)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _link_no_clobber(tmp: str, dst: str) -> None:
    """Move ``tmp`` to ``dst`` unless ``dst`` appeared meanwhile (a hard link never replaces)."""
    try:
        os.link(tmp, dst)
    except FileExistsError:
        raise FileExistsError(f"{dst} exists") from None
    except OSError:
        # File systems without hard links: re-check, then rename (a narrow race remains).
        if os.path.lexists(dst):
            raise FileExistsError(f"{dst} exists") from None
        os.replace(tmp, dst)
        return
    os.unlink(tmp)


def _fsync_folder(folder: str) -> None:
    """Make the rename durable; platforms without folder handles (Windows) skip it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_WRITE_ONLY_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""Errors that only a write raises: without a file name they still belong to the output."""


def output_error(exc: OSError, dst: str | None) -> CliError | None:
    """Name the output (file or stdout) when writing it failed, not a temporary file beside it."""
    if not exc.filename:
        if exc.errno in _WRITE_ONLY_ERRNOS:
            return CliError(f"cannot write {dst or 'stdout'}: {exc.strerror or exc}")
        return None
    if dst is None:
        return None
    temp_prefix = "." + os.path.basename(os.path.realpath(dst))  # atomic_output follows links
    if os.path.basename(os.fsdecode(exc.filename)).startswith(temp_prefix):
        return CliError(f"cannot write {dst}: {exc.strerror or exc}")
    return None


def size_of(src_stat: os.stat_result) -> int | None:
    return src_stat.st_size if stat.S_ISREG(src_stat.st_mode) else None


class PipeView(io.RawIOBase):
    """A non-seekable view of an input, so ``import_aescrypt`` spools its ciphertext privately.

    Bytes sent to stdout cannot be taken back: reading a file twice would let a change between
    the verify pass and the convert pass reach stdout; the private spool cannot change.
    """

    def __init__(self, src: BinaryIO) -> None:
        super().__init__()
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._src.read(len(view))
        view[: len(data)] = data
        return len(data)
