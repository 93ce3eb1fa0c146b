"""Small I/O helpers shared by streams, files and importers: full reads, full writes, checks.

Raw files, pipes and sockets may move fewer bytes per call than asked; every reader and writer
here loops until done, so callers never see a short read except at the end of input.
"""

from __future__ import annotations

import builtins
import io
import os
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO, Final

from .._primitives import BytesLike

WOULD_BLOCK: Final = "src has no data yet: non-blocking inputs are not supported"

_PLAIN_FILE_TYPES: Final = (io.FileIO, io.BufferedWriter, io.BufferedRandom)
"""File objects whose ``write`` only writes to their descriptor: writing that descriptor directly
skips nothing a caller could rely on. Wrappers and subclasses (hashing, progress, fault
injection) must see every write, so they get ``write`` calls."""


StrPath = str | bytes | os.PathLike[str] | os.PathLike[bytes]
"""A file system path as the standard library takes it: text, bytes or path-like."""
TextPath = str | os.PathLike[str]
"""A path where a file object is also accepted: ``bytes`` there could be data (``path_or_file``)."""


def fs_path(path: object, name: str) -> str:
    """``path`` as text (bytes decoded as the OS does, ``os.fsdecode``), so one code path serves
    every spelling; ``TypeError`` naming the argument for anything else."""
    if not isinstance(path, str | bytes | os.PathLike):
        raise TypeError(
            f"{name} must be a path (str, bytes or os.PathLike), not {type(path).__name__}"
        )
    return os.fsdecode(os.fspath(path))


def path_or_file(obj: object, name: str, method: str) -> str | None:
    """For arguments that take a path or a file object: the path as text, or ``None`` after
    checking ``obj`` is a binary file object with ``method``. ``bytes`` is refused: it could be
    a path or the data itself, and data taken for a file name would end up in the message."""
    if isinstance(obj, bytes | bytearray | memoryview):
        raise TypeError(
            f"{name} must be a path (str or os.PathLike) or a binary file object with "
            f"{method}(), not {type(obj).__name__} (for a bytes path, pass os.fsdecode(path))"
        )
    if isinstance(obj, str | os.PathLike):
        return fs_path(obj, name)
    check_file(obj, name, method)
    return None


def check_file(obj: object, name: str, method: str) -> None:
    """``TypeError`` naming the argument when ``obj`` is not a binary file object with
    ``method`` (a text-mode file has the method but takes or gives ``str``)."""
    if isinstance(obj, io.TextIOBase):
        raise TypeError(f"{name} must be a binary file object, not a text one (open it with 'b')")
    if not callable(getattr(obj, method, None)):
        raise TypeError(
            f"{name} must be a binary file object with {method}(), not {type(obj).__name__}"
        )


def read_full(src: BinaryIO, buf: memoryview) -> int:
    """Fill ``buf`` from ``src``, looping over short reads; fewer bytes only at end of input."""
    got = 0
    size = len(buf)
    readinto = getattr(src, "readinto", None)
    while got < size:
        if readinto is not None:
            n = readinto(buf[got:])
        else:
            data = src.read(size - got)
            n = None if data is None else len(data)
            if n:
                buf[got : got + n] = data
        if n is None:
            # A non-blocking source with no data yet: treating it as the end would truncate.
            raise BlockingIOError(WOULD_BLOCK)
        if not n:
            break
        got += n
    return got


def read_full_bytes(src: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes, fewer only at end of input: one ``read`` (all of it, for files and
    buffered streams), then ``read_full`` for the rest after a short read (raw pipes)."""
    data = src.read(n)
    if data is None:
        raise BlockingIOError(WOULD_BLOCK)
    if not data or len(data) == n:
        return data
    buf = bytearray(n)
    buf[: len(data)] = data
    got = len(data) + read_full(src, memoryview(buf)[len(data) :])
    return bytes(buf[:got])


def write_all(dst: BinaryIO, data: BytesLike) -> None:
    """Write every byte of ``data``; raw files and sockets may accept only part per call."""
    view = memoryview(data)
    while view:
        n = dst.write(view)
        if n is None:
            raise BlockingIOError("dst would block: non-blocking outputs are not supported")
        view = view[n:]


def pwrite_all(fd: int, data: BytesLike, offset: int) -> None:
    """Write every byte of ``data`` at ``offset`` of ``fd``; ``pwrite`` too may take only part."""
    view = memoryview(data).cast("B")
    while view:
        n = os.pwrite(fd, view, offset)
        view = view[n:]
        offset += n


def positional_target(dst: object) -> tuple[int, int] | None:
    """(descriptor, current offset) when ``dst`` may be written at known offsets, else ``None``.

    Only a plain standard-library file object on a regular, seekable file not opened for
    appending (``pwrite`` ignores the offset under ``O_APPEND`` on Linux), on a platform with
    ``os.pwrite``. Its Python buffer is flushed here, so the offset is where its next write
    would land.
    """
    if type(dst) not in _PLAIN_FILE_TYPES or not hasattr(os, "pwrite"):
        return None
    f: io.FileIO | io.BufferedWriter | io.BufferedRandom = dst  # type: ignore[assignment]
    try:
        if f.closed or not f.seekable():
            return None
        fd = f.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode) or _appending(fd):
            return None
        f.flush()
        return fd, f.tell()
    except (OSError, ValueError):
        return None


def _appending(fd: int) -> bool:
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): no pwrite either, never reached
        return True
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND)


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing ``length`` bytes at ``offset`` to disk now, so a later
    fsync does not do all the disk work at the end. Only a hint: absent on Windows and macOS,
    refused by some file systems; either way nothing changes."""
    fadvise = getattr(os, "posix_fadvise", None)
    if fadvise is None:
        return
    try:
        # DONTNEED starts write-back of dirty pages; pages still dirty stay cached.
        fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


LOCK_SUFFIX: Final = ".aes-hmac-lock"
"""Lock file name ending (``.<name>.aes-hmac-lock`` beside the file) where ``flock`` is absent."""
_LOCK_POLL: Final = 0.05
_LOCK_TIMEOUT: Final = 60.0
"""Seconds to wait for a lock file before saying who holds it (a crash can leave one behind)."""


@contextmanager
def locked_for_edit(path: str, *, portable: bool = sys.platform == "win32") -> Iterator[BinaryIO]:
    """``path`` opened for reading while every other ``locked_for_edit`` of the same file waits.

    With ``flock`` the lock is on the file itself, and an edit replaces the file by rename: a
    waiter that gets the lock on the replaced file sees the name now points elsewhere and locks
    the new file instead, so it always reads what the previous edit wrote. Without ``flock``
    (``portable``, Windows) a lock file beside it, created exclusively, does the same job.
    """
    if portable:
        with _lock_file(path), builtins.open(path, "rb") as f:
            yield f
        return
    import fcntl

    while True:
        f = builtins.open(path, "rb")
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            if os.path.samestat(os.fstat(f.fileno()), os.stat(path)):
                break
        except BaseException:
            f.close()
            raise
        f.close()  # replaced while we waited: lock the file the name points to now
    with f:
        yield f


@contextmanager
def _lock_file(path: str) -> Iterator[None]:
    folder, name = os.path.split(os.path.realpath(path))
    lock = os.path.join(folder, f".{name}{LOCK_SUFFIX}")
    deadline = time.monotonic() + _LOCK_TIMEOUT
    while True:
        try:
            os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"another edit of {path} holds the lock file {lock} "
                    "(delete it if no edit is running)"
                ) from None
            time.sleep(_LOCK_POLL)
    try:
        yield
    finally:
        os.unlink(lock)
