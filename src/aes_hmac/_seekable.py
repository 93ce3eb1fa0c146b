"""Random access to a stream on a seekable source: only the chunks a read touches are verified.

A non-final chunk always holds exactly ``chunk_size`` plaintext bytes, so a plaintext offset names
its chunk by division and the chunk's place in the encrypted stream by multiplication (FORMAT.md,
"Random access"). The final chunk is read and verified when the reader opens: that fixes the
plaintext size and refuses a truncated or extended stream before any byte is returned. Every
other chunk is verified when a read first touches it, and kept in a small cache of verified
plaintext; a chunk that fails its tag fails only the reads that touch it.
"""

from __future__ import annotations

import builtins
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Final

from ._credential import to_credential
from ._engine import resolve_workers
from ._errors import StreamDamaged
from ._io import check_file, read_full
from ._kdf import DEFAULT_LIMITS, Credential, KdfLimits, check_limits_arg
from ._primitives import BLOCK_SIZE
from ._stream import (
    CHUNK_OVERHEAD,
    ChunkCodec,
    open_header,
    read_header,
)

StrPath = str | os.PathLike[str]
ReadAt = Callable[[int, memoryview], int]
"""read_at(offset, buf): fill ``buf`` from ``offset`` of the encrypted stream, fewer bytes only at
its end; returns the bytes read. Must be thread-safe."""

_HEADER_PROBE: Final = 2048
"""One read that holds any header (at most 1,819 bytes), so opening costs one range request."""
_CACHE_BYTES: Final = 16 << 20
"""Plaintext kept in the verified-chunk cache, at least two chunks whatever the chunk size."""
_READ_AHEAD_BYTES: Final = 8 << 20
"""How far a sequential reader decrypts ahead of its position, on the worker threads."""


def chunk_layout(header_size: int, chunk_size: int, stream_size: int) -> tuple[int, int]:
    """(index, byte offset) of the final chunk of a stream of ``stream_size`` encrypted bytes.

    Every chunk but the last is ``chunk_size + 48`` bytes and the last is 64 to ``chunk_size + 48``
    bytes, so the number of full chunks is fixed by the payload size alone.
    """
    payload = stream_size - header_size
    if payload <= 0:
        return 0, header_size
    index = (payload - 1) // (chunk_size + CHUNK_OVERHEAD)
    return index, header_size + index * (chunk_size + CHUNK_OVERHEAD)


class SeekableReader(io.RawIOBase):
    """Read side of ``open(..., "rb")`` on a seekable source: ``seek``, ``tell``, ``pread``.

    The header is opened and the final chunk verified by the constructor (``HeaderError`` or
    ``StreamDamaged`` there). ``seek(0, SEEK_END)`` is the plaintext size. A read that touches a
    damaged chunk raises ``StreamDamaged`` with that chunk's offset in the encrypted stream; the
    reader stays usable for the other chunks. ``pread`` may be called from several threads.
    """

    def __init__(
        self,
        read_at: ReadAt,
        size: int,
        credential: Credential,
        limits: KdfLimits,
        close: Callable[[], None] | None = None,
    ) -> None:
        super().__init__()
        self._read_at = read_at
        self._close_src = close
        self._local = threading.local()
        probe = memoryview(bytearray(min(size, _HEADER_PROBE)))
        header = read_header(io.BytesIO(probe[: read_at(0, probe)]).read)
        file_key, _ = open_header(header, credential, limits)
        self._codec = ChunkCodec(file_key, header.prefix, header.chunk_size)
        self._chunk_size = header.chunk_size
        self._header_size = header.size
        self._last, last_offset = chunk_layout(header.size, header.chunk_size, size)
        if size <= header.size:
            raise StreamDamaged(f"data truncated at byte {header.size}", header.size)
        final = self._codec.open_final(
            self._last, last_offset, self._fetch(last_offset, size - last_offset)
        )
        self._size = self._last * self._chunk_size + len(final)
        self._cache: OrderedDict[int, memoryview] = OrderedDict({self._last: memoryview(final)})
        self._cache_chunks = max(2, _CACHE_BYTES // self._chunk_size)
        self._lock = threading.Lock()
        self._pos = 0
        self._pool: _ReadAhead | None = None
        self._ahead_chunks = max(1, _READ_AHEAD_BYTES // self._chunk_size)
        self._prev_index = -1
        self._streak = 0

    def __repr__(self) -> str:
        return f"<SeekableReader size={self._size} chunk_size={self._chunk_size}>"

    @property
    def size(self) -> int:
        """The plaintext size, authenticated by the final chunk."""
        return self._size

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        self._check_open()
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        if whence == os.SEEK_SET:
            pos = offset
        elif whence == os.SEEK_CUR:
            pos = self._pos + offset
        elif whence == os.SEEK_END:
            pos = self._size + offset
        else:
            raise ValueError(f"whence must be 0, 1 or 2, got {whence}")
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        self._pos = pos
        return pos

    def readinto(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        """Copy verified plaintext from the current position into ``b``; 0 at the end."""
        self._check_open()
        view = memoryview(b).cast("B")
        n = self._copy(self._pos, view, sequential=True)
        self._pos += n
        return n

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        if size is None or size < 0:
            size = max(0, self._size - self._pos)
        data = self.pread(self._pos, size, sequential=True)
        self._pos += len(data)
        return data

    def readall(self) -> bytes:
        return self.read()

    def pread(self, offset: int, length: int, *, sequential: bool = False) -> bytes:
        """Up to ``length`` plaintext bytes from ``offset`` (fewer only at the end); leaves the
        position alone, so several threads may call it at once."""
        self._check_open()
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0, got {offset} and {length}")
        return b"".join(self._parts(offset, length, sequential))

    def close(self) -> None:
        if self.closed:
            return
        try:
            if self._pool is not None:
                self._pool.shutdown()
            if self._close_src is not None:
                self._close_src()
        finally:
            with self._lock:
                self._cache.clear()
            super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed file")

    def _copy(self, offset: int, out: memoryview, sequential: bool) -> int:
        done = 0
        for part in self._parts(offset, len(out), sequential):
            out[done : done + len(part)] = part
            done += len(part)
        return done

    def _parts(self, offset: int, length: int, sequential: bool) -> Iterator[memoryview]:
        """Views of verified plaintext covering ``length`` bytes from ``offset`` (to the end)."""
        end = min(offset + length, self._size)
        until = (end - 1) // self._chunk_size  # the last chunk this request needs
        # Only a request inside one chunk leaves the future to guess: a longer one says exactly
        # what it wants (pyarrow reads a whole column chunk at once), so nothing past it is read.
        guess = sequential and until == offset // self._chunk_size
        while offset < end:
            index, within = divmod(offset, self._chunk_size)
            plain = self._chunk(index, until, guess)
            n = min(end - offset, len(plain) - within)
            yield plain[within : within + n]
            offset += n

    def _chunk(self, index: int, until: int, guess: bool) -> memoryview:
        with self._lock:
            plain = self._cache.get(index)
            if plain is not None:
                self._cache.move_to_end(index)
        ahead = until
        if guess and index != self._prev_index:
            # Speculation grows with the run of chunks read in order (as the kernel's read-ahead
            # does), so a reader that jumps about (Parquet columns) fetches little it won't use.
            self._streak = self._streak + 1 if index == self._prev_index + 1 else 0
            self._prev_index = index
            ahead = max(until, index + self._streak)
        if ahead > index:
            self._read_ahead(index, ahead)
        if plain is None:
            plain = self._pool.take(index) if self._pool is not None else None
            if plain is None:
                plain = self._open_chunk(index)
            with self._lock:
                self._cache[index] = plain
                while len(self._cache) > self._cache_chunks:
                    self._cache.popitem(last=False)
        return plain

    def _read_ahead(self, index: int, ahead: int) -> None:
        """Start decrypting the chunks after ``index`` up to ``ahead`` (known to be needed, or
        a sequential reader's next ones) on worker threads, at most ``_READ_AHEAD_BYTES``."""
        ahead = min(self._last - 1, ahead, index + self._ahead_chunks)
        with self._lock:
            wanted = [i for i in range(index + 1, ahead + 1) if i not in self._cache]
        if not wanted:
            return
        if self._pool is None:
            workers = resolve_workers(None)
            if workers == 1:
                return
            self._pool = _ReadAhead(self._open_chunk, workers, self._ahead_chunks + 1)
        self._pool.submit(wanted)

    def _open_chunk(self, index: int) -> memoryview:
        offset = self._header_size + index * (self._chunk_size + CHUNK_OVERHEAD)
        chunk = self._fetch(offset, self._chunk_size + CHUNK_OVERHEAD)
        # A fresh buffer: the cache and other threads' reads keep views of it.
        out = bytearray(self._chunk_size + BLOCK_SIZE - 1)
        n = self._codec.open_into(index, offset, chunk, out)
        return memoryview(out)[:n]

    def _fetch(self, offset: int, n: int) -> memoryview:
        """``n`` encrypted bytes at ``offset`` in this thread's reused input buffer."""
        buf: bytearray | None = getattr(self._local, "buf", None)
        if buf is None or len(buf) < n:
            buf = self._local.buf = bytearray(max(n, self._chunk_size + CHUNK_OVERHEAD))
        view = memoryview(buf)[:n]
        if self._read_at(offset, view) != n:
            # The source shrank after the final chunk was verified.
            raise StreamDamaged(f"data truncated at byte {offset}", offset)
        return view


class _ReadAhead:
    """Chunks decrypted ahead of a sequential reader; each kept until taken or evicted."""

    def __init__(self, open_chunk: Callable[[int], memoryview], workers: int, depth: int) -> None:
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="aes-hmac-read")
        self._open = open_chunk
        self._depth = max(2, depth)
        self._futures: OrderedDict[int, Future[memoryview]] = OrderedDict()
        self._lock = threading.Lock()

    def submit(self, indexes: list[int]) -> None:
        with self._lock:
            for index in indexes:
                if index not in self._futures:
                    self._futures[index] = self._pool.submit(self._open, index)
            while len(self._futures) > self._depth:
                self._futures.popitem(last=False)[1].cancel()

    def take(self, index: int) -> memoryview | None:
        """The chunk's plaintext if a worker has started it (its error, damage, is raised here);
        ``None`` if not, so the caller decrypts it itself instead of waiting idle."""
        with self._lock:
            future = self._futures.pop(index, None)
        if future is None or future.cancel():
            return None
        return future.result()

    def shutdown(self) -> None:
        with self._lock:
            for future in self._futures.values():
                future.cancel()
            self._futures.clear()
        self._pool.shutdown(wait=True)


def file_read_at(fileobj: BinaryIO) -> tuple[ReadAt, int]:
    """A thread-safe ``read_at`` over a seekable file object, and the stream's size.

    The stream starts at the file's current position. A plain file uses ``os.preadv`` (no lock, no
    seek); anything else (``BytesIO``, fsspec files, wrappers whose ``fileno`` is not theirs) is
    read under a lock with ``seek`` + ``readinto``.
    """
    base = fileobj.tell()
    end = fileobj.seek(0, os.SEEK_END)
    fileobj.seek(base)
    if type(fileobj) in (io.BufferedReader, io.FileIO) and hasattr(os, "preadv"):
        fd = fileobj.fileno()

        def pread(offset: int, buf: memoryview) -> int:
            got = 0
            while got < len(buf):
                n = os.preadv(fd, [buf[got:]], base + offset + got)
                if not n:
                    break
                got += n
            return got

        return pread, end - base
    lock = threading.Lock()

    def locked(offset: int, buf: memoryview) -> int:
        with lock:
            fileobj.seek(base + offset)
            return read_full(fileobj, buf)

    return locked, end - base


def is_seekable(fileobj: object) -> bool:
    """True when ``fileobj`` says it can seek (and saying so does not fail)."""
    try:
        return bool(fileobj.seekable())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def open_seekable(
    file: StrPath | BinaryIO,
    *,
    password: object = None,
    key: object = None,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> SeekableReader:
    """Open an encrypted stream for random access: a path, or a seekable binary file object
    (read from its current position, left open). Give ``password`` or ``key``."""
    credential = to_credential(password, key)
    check_limits_arg(limits)
    if isinstance(file, str | os.PathLike):
        return seekable_path(file, credential, limits)
    check_file(file, "file", "read")
    if not is_seekable(file):
        raise ValueError("file must be seekable for random access")
    read_at, size = file_read_at(file)
    return SeekableReader(read_at, size, credential, limits)


def seekable_path(path: StrPath, credential: Credential, limits: KdfLimits) -> SeekableReader:
    """``open_seekable`` on a path with a credential already built (the file is closed with
    the reader)."""
    fileobj: BinaryIO = builtins.open(path, "rb")
    try:
        read_at, size = file_read_at(fileobj)
        return SeekableReader(read_at, size, credential, limits, fileobj.close)
    except BaseException:
        fileobj.close()
        raise
