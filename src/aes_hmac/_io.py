"""Small I/O helpers shared by streams, files and importers: full reads, full writes, checks.

Raw files, pipes and sockets may move fewer bytes per call than asked; every reader and writer
here loops until done, so callers never see a short read except at the end of input.
"""

from __future__ import annotations

import io
import os
import stat
from typing import BinaryIO, Final

from ._primitives import BytesLike

WOULD_BLOCK: Final = "src has no data yet: non-blocking inputs are not supported"

_PLAIN_FILE_TYPES: Final = (io.FileIO, io.BufferedWriter, io.BufferedRandom)
"""File objects whose ``write`` only writes to their descriptor: writing that descriptor directly
skips nothing a caller could rely on. Wrappers and subclasses (hashing, progress, fault
injection) must see every write, so they get ``write`` calls."""


def check_file(obj: object, name: str, method: str) -> None:
    """``TypeError`` naming the argument when ``obj`` is not a file object with ``method``."""
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
