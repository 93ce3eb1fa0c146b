"""Random access to a stream on a seekable source: only the chunks a read touches are verified.

A non-final chunk always holds exactly ``chunk_size`` plaintext bytes, so a plaintext offset names
its chunk by division and the chunk's place in the encrypted stream by multiplication (FORMAT.md,
"Random access"). The final chunk is read and verified when the reader opens: that fixes the
plaintext size and refuses a truncated or extended stream before any byte is returned. Every
other chunk is verified when a read first touches it; a chunk that fails its tag fails only the
reads that touch it.

A read fetches the encrypted bytes of the whole chunks it covers in pieces of up to a few MiB (one
``read_at`` each: one ``preadv``, or one range request on a remote filesystem) and verifies and
decrypts them straight into the caller's buffer, a long read's pieces on the process's shared
reader threads. Chunks a read covers only in part go through a small cache of verified plaintext
(random small reads, boundaries); reads that follow each other are served ahead of time.
"""

from __future__ import annotations

import atexit
import builtins
import gc
import io
import os
import sys
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO, Final, cast

from .._errors import StreamDamaged
from .._kdf import DEFAULT_LIMITS, Credential, KdfLimits, check_limits_arg
from .._keys.credentials import to_credential
from .._primitives import BLOCK_SIZE
from .format import CHUNK_OVERHEAD, open_codec, read_header
from .io import TextPath, check_file, read_full
from .readahead import PIECE_BYTES, Piece, ReadAhead, give_scratch, shared_pool, take_scratch

Allocate = Callable[[int], memoryview]
"""allocate(n): a writable byte view of ``n`` bytes for ``read_buffer`` to fill and hand over
(its previous contents never show: every byte is overwritten)."""
ReadAt = Callable[[int, memoryview], int]
"""read_at(offset, buf): fill ``buf`` from ``offset`` of the encrypted stream, fewer bytes only at
its end; returns the bytes read. Must be thread-safe."""

_HEADER_PROBE: Final = 2048
"""One read that holds any header (at most 1,819 bytes), so opening costs one range request."""
_CACHE_BYTES: Final = 16 << 20
"""Plaintext kept in the verified-chunk cache, at least two chunks whatever the chunk size."""
_PIECE_MAX: Final = 8 << 20
"""Largest piece fetched at once (an input scratch buffer), so memory stays bounded."""
EXIT_GRACE: Final = 1.0
"""Longest wait at exit for other libraries' threads to let go of readers (``_let_go_at_exit``):
they need milliseconds; a reader some C object keeps for good only delays the exit this long."""
EXIT_POLL: Final = 0.001
"""How often the exit wait looks again (seconds), the GIL released in between."""


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
    reader stays usable for the other chunks. ``pread`` may be called from several threads;
    ``read``, ``readinto``, ``seek`` and ``tell`` share one position under a lock, so each call
    is atomic, but threads sharing a position see each other's moves: give each its ``pread``.
    ``piece_bytes``: what one ``read_at`` of reads in order fetches (larger for remote sources).
    """

    def __init__(
        self,
        read_at: ReadAt,
        size: int,
        credential: Credential,
        limits: KdfLimits,
        close: Callable[[], None] | None = None,
        allocate: Allocate | None = None,
        piece_bytes: int = PIECE_BYTES,
    ) -> None:
        super().__init__()
        self._read_at = read_at
        self._close_src = close
        self._allocate = allocate or _new_buffer
        probe = memoryview(bytearray(min(size, _HEADER_PROBE)))
        header = read_header(io.BytesIO(probe[: read_at(0, probe)]).read)
        self._codec = open_codec(header, credential, limits)
        self._chunk_size = cs = header.chunk_size
        self._header_size = header.size
        self._full = cs + CHUNK_OVERHEAD
        if size <= header.size:
            raise StreamDamaged(f"data truncated at byte {header.size}", header.size)
        self._last, final = self._open_final(size)
        self._final = memoryview(final)
        self._size = self._last * cs + len(final)
        self._cache: OrderedDict[int, memoryview] = OrderedDict()
        self._cache_chunks = max(2, _CACHE_BYTES // cs)
        self._ahead = ReadAhead(self._open_piece, cs, self._last, piece_bytes)
        self._lock = threading.Lock()  # the cache and the chunks opened ahead
        self._pos_lock = threading.Lock()  # the position and the run of reads in order
        self._pos = 0
        # The chunk small reads at the position are going through, taken from a piece opened
        # ahead and kept out of the cache (``pread`` never sees it), so that piece's buffer
        # can be reused once the position leaves it.
        self._current: tuple[int, memoryview, Piece | None] | None = None
        _READERS.add(self)

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
        with self._pos_lock:
            return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._check_open()
        if whence not in (os.SEEK_SET, os.SEEK_CUR, os.SEEK_END):
            raise ValueError(f"whence must be 0, 1 or 2, got {whence}")
        with self._pos_lock:
            base = (0, self._pos, self._size)[whence]
            if base + offset < 0:
                raise ValueError(f"negative seek position {base + offset}")
            self._pos = base + offset
            return self._pos

    def readinto(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        """Copy verified plaintext from the current position into ``b``; 0 at the end."""
        self._check_open()
        view = memoryview(b).cast("B")
        with self._pos_lock:
            n = self._read_into(self._pos, view, sequential=True)
            self._pos += n
            return n

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        with self._pos_lock:
            pos, cs = self._pos, self._chunk_size
            n = max(0, self._size - pos)
            if size is not None and 0 <= size < n:
                n = size
            index, within = divmod(pos, cs)
            if n and within + n <= cs:
                # Inside one chunk: one copy out of the chunk's plaintext, no zeroed buffer.
                self._ahead.plan(pos, pos + n)
                data = bytes(self._current_chunk(index)[within : within + n])
                self._pos += n
                return data
        return bytes(self.read_buffer(n))

    def readall(self) -> bytes:
        return self.read()

    def read_buffer(self, size: int = -1) -> memoryview:
        """``read`` into a new buffer (``allocate``), without the copy into ``bytes``: pyarrow's
        Python file wrapper calls this when present and uses the buffer in place."""
        self._check_open()
        with self._pos_lock:
            want = max(0, self._size - self._pos)
            buf = self._allocate(want if size < 0 else min(size, want))
            self._pos += self._read_into(self._pos, buf, sequential=True)
            return buf

    def pread(self, offset: int, length: int) -> bytes:
        """Up to ``length`` plaintext bytes from ``offset`` (fewer only at the end); leaves the
        position alone, so several threads may call it at once."""
        self._check_open()
        if offset < 0 or length < 0:
            raise ValueError(f"offset and length must be >= 0, got {offset} and {length}")
        buf = bytearray(max(0, min(length, self._size - offset)))
        self._read_into(offset, memoryview(buf), sequential=False)
        return bytes(buf)

    def close(self) -> None:
        if self.closed:
            return
        try:
            self._ahead.drop()
            if self._close_src is not None:
                self._close_src()
        finally:
            with self._lock:
                self._cache.clear()
            super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on a closed file")

    def _open_final(self, size: int) -> tuple[int, bytes]:
        """Index and plaintext of the final chunk, placed by the stream's size alone.

        Bytes appended after the final chunk make that place hold more than a chunk: the codec
        then finds the authentic final chunk inside it and says "trailing data" (as sequential
        readers do). When the appended bytes spill past the end of the final chunk's place, the
        size points one place too far, so the place before is tried the same way; appended data
        longer than that reads as damage (or a cut) at the place the size points to.
        """
        last, offset = chunk_layout(self._header_size, self._chunk_size, size)
        try:
            with self._fetched(offset, size - offset) as data:
                return last, self._codec.open_final(last, offset, data)
        except StreamDamaged as exc:
            if str(exc).startswith("trailing data") or not last:
                raise
            before = offset - self._full
            try:
                with self._fetched(before, self._full) as data:
                    self._codec.open_final(last - 1, before, data)
            except StreamDamaged as spilled:
                if str(spilled).startswith("trailing data"):
                    raise spilled from None
                raise exc from None
            # The final chunk fills its place exactly and everything after it was appended.
            message = f"trailing data after the final chunk at byte {before}"
            raise StreamDamaged(message, before) from None

    def _read_into(self, offset: int, out: memoryview, sequential: bool) -> int:
        """Fill ``out`` with verified plaintext from ``offset`` (up to the end); bytes copied.

        Whole chunks not yet verified are opened straight into ``out``; the rest (the final
        chunk, chunks in the cache or opened ahead, chunks ``out`` covers only in part) are
        copied. On failure ``StreamDamaged`` for the first bad chunk, nothing else is lost.
        """
        end = min(offset + len(out), self._size)
        if offset >= end:
            return 0
        cs = self._chunk_size
        first, last = offset // cs, (end - 1) // cs
        if sequential:
            self._ahead.plan(offset, end)
        direct: list[tuple[int, int]] = []
        partial: list[tuple[int, int, memoryview]] = []
        for index in range(first, last + 1):
            lo = max(offset, index * cs)
            dest = out[lo - offset : min(end, (index + 1) * cs) - offset]
            current = self._current if sequential else None
            plain: memoryview | None
            if current is not None and current[0] == index:
                plain, piece = current[1], None
            else:
                plain, piece = self._known(index, cache=len(dest) < cs)
            if plain is not None:
                dest[:] = plain[lo - index * cs : lo - index * cs + len(dest)]
                if piece is not None:
                    self._ahead.release(piece)
            elif len(dest) == cs:
                direct.append((index, lo - offset))
            else:
                partial.append((index, lo - index * cs, dest))
        self._open_direct(out, direct)
        for index, within, dest in partial:
            dest[:] = self._chunk(index)[within : within + len(dest)]
        return end - offset

    def _known(self, index: int, cache: bool) -> tuple[memoryview | None, Piece | None]:
        """The chunk's verified plaintext if it is at hand (final, cached, or opened ahead),
        else ``None``. A chunk opened ahead goes to the ``cache``, or else comes with its
        piece, which the caller releases once it used the chunk up."""
        if index == self._last:
            return self._final, None
        with self._lock:
            plain = self._cache.get(index)
            if plain is not None:
                self._cache.move_to_end(index)
                return plain, None
        taken = self._ahead.take(index)
        if taken is None or not cache:
            return taken or (None, None)
        self._remember(index, taken[0])
        return taken[0], None

    def _chunk(self, index: int) -> memoryview:
        """A chunk read in part: from the cache, or opened on this thread and cached."""
        plain, _ = self._known(index, cache=True)
        if plain is None:
            buf = memoryview(bytearray(self._chunk_size + BLOCK_SIZE - 1))
            _, error = self._open_piece(index, 1, buf, slack=True)
            if error is not None:
                raise error
            plain = buf[: self._chunk_size]
            self._remember(index, plain)
        return plain

    def _current_chunk(self, index: int) -> memoryview:
        """The chunk for reads at the position (under its lock): kept until they leave it."""
        current = self._current
        if current is not None and current[0] == index:
            return current[1]
        plain, piece = self._known(index, cache=False)
        if plain is None:
            plain = self._chunk(index)
        self._current = (index, plain, piece)
        if current is not None and current[2] is not None:
            self._ahead.release(current[2])
        return plain

    def _remember(self, index: int, plain: memoryview) -> None:
        with self._lock:
            self._cache[index] = plain
            while len(self._cache) > self._cache_chunks:
                self._cache.popitem(last=False)

    def _open_direct(self, out: memoryview, direct: list[tuple[int, int]]) -> None:
        """Open whole chunks into their places in the caller's buffer, a long run in pieces on
        this thread and the shared ones; ``StreamDamaged`` for the first chunk that fails."""
        if not direct:
            return
        pool, workers = shared_pool()
        per_piece = min(
            max(1, _PIECE_MAX // self._chunk_size),
            max(-(-len(direct) // workers), PIECE_BYTES // self._chunk_size, 1),
        )
        pieces: deque[tuple[int, int, memoryview]] = deque()
        run = 0
        while run < len(direct):
            index, pos = direct[run]
            count = 1
            # Consecutive chunks have consecutive places in ``out``: one view spans a run.
            while (
                count < per_piece
                and run + count < len(direct)
                and direct[run + count][0] == index + count
            ):
                count += 1
            pieces.append((index, count, out[pos : pos + count * self._chunk_size]))
            run += count
        errors: list[StreamDamaged] = []

        def drain() -> None:
            while True:
                try:
                    index, count, dest = pieces.popleft()
                except IndexError:
                    return
                _, error = self._open_piece(index, count, dest, slack=False)
                if error is not None:
                    errors.append(error)

        helpers = [pool.submit(drain) for _ in range(min(workers, len(pieces)) - 1)] if pool else []
        try:
            drain()
        finally:
            pieces.clear()
            # A helper that started may still be writing into the caller's buffer: wait for it.
            for helper in helpers:
                if not helper.cancel():
                    helper.result()
        if errors:
            raise min(errors, key=lambda e: e.offset or 0)

    def _open_piece(
        self, index: int, count: int, out: memoryview, slack: bool
    ) -> tuple[int, StreamDamaged | None]:
        """Fetch ``count`` chunks from ``index`` in one read and open them into ``out`` in turn:
        how many opened, and the failure that stopped it (if one did). ``slack``: ``out`` has 15
        bytes to spare after the last chunk; otherwise the last chunk goes through a scratch
        buffer, since the bytes after it may belong to another thread's piece."""
        cs, full = self._chunk_size, self._full
        base = self._header_size + index * full
        data = take_scratch("input", count * full)
        plain: bytearray | None = None
        try:
            fetched = self._fetch_into(base, memoryview(data)[: count * full])
            for k in range(count):
                offset = base + k * full
                chunk = fetched[k * full : (k + 1) * full]
                # Decrypting needs 15 spare bytes after a chunk's place: the next chunk's place,
                # which this thread fills afterwards anyway.
                if k < count - 1 or slack:
                    dest = out[k * cs : (k + 1) * cs + BLOCK_SIZE - 1]
                else:
                    plain = take_scratch("plain", cs + BLOCK_SIZE - 1)
                    dest = memoryview(plain)[: cs + BLOCK_SIZE - 1]
                try:
                    # open_into only writes through a memoryview of ``dest``: any buffer will do.
                    self._codec.open_into(index + k, offset, chunk, cast(bytearray, dest))
                except StreamDamaged as exc:
                    return k, exc
                if dest.obj is not out.obj:
                    out[k * cs : (k + 1) * cs] = dest[:cs]
            return count, None
        finally:
            give_scratch("input", data)
            if plain is not None:
                give_scratch("plain", plain)

    @contextmanager
    def _fetched(self, offset: int, n: int) -> Iterator[memoryview]:
        """``n`` encrypted bytes at ``offset``, in a scratch buffer of this thread's for the
        ``with`` block."""
        buf = take_scratch("input", n)
        try:
            yield self._fetch_into(offset, memoryview(buf)[:n])
        finally:
            give_scratch("input", buf)

    def _fetch_into(self, offset: int, view: memoryview) -> memoryview:
        """Fill ``view`` with the encrypted bytes at ``offset``; ``view`` itself."""
        if self._read_at(offset, view) != len(view):
            # The source shrank after the final chunk was verified.
            raise StreamDamaged(f"data truncated at byte {offset}", offset)
        return view


_READERS: weakref.WeakSet[SeekableReader] = weakref.WeakSet()
"""Every reader alive, for ``_let_go_at_exit``."""


def hidden_references(obj: object) -> int:
    """References to ``obj`` that no object the garbage collector tracks accounts for: those of
    C++ objects, such as pyarrow's wrapper of a Python file (``PyReadableFile``). A pyarrow
    ``PythonFile`` accounts for its wrapper's reference too (both go together)."""
    visible = 0
    for holder in gc.get_referrers(obj):
        if isinstance(holder, dict):
            visible += sum(1 for value in holder.values() if value is obj)
        elif isinstance(holder, list | tuple):
            visible += sum(1 for item in holder if item is obj)
        elif type(holder).__module__ == "pyarrow.lib" and type(holder).__name__ == "PythonFile":
            visible += 2
        else:
            visible += 1
    # getrefcount's argument; this frame's own reference is the generator expressions' cell
    # for ``obj``, a referrer counted above.
    return sys.getrefcount(obj) - 1 - visible


def _let_go_at_exit() -> None:
    """Before the interpreter finalizes, wait (GIL released) until no C++ object holds a reader.

    pyarrow's threads keep its wrapper of a Python file object a little after a read returns,
    and the wrapper's destructor takes the GIL to drop its reference. Once finalization has
    begun, a thread that takes the GIL is ended by ``pthread_exit``, which unwinds through that
    ``noexcept`` destructor: ``std::terminate``, "terminate called without an active
    exception", exit status 134 (apache/arrow#39162). ``atexit`` functions run after every
    non-daemon thread is joined and before finalization, so the wrapper goes while it still
    can. Only a process that loaded pyarrow waits, at most ``EXIT_GRACE``.
    """
    if "pyarrow" in sys.modules:
        wait_until_released(list(_READERS))


def wait_until_released(held: list[object]) -> None:
    """Wait, GIL released, until no C++ object holds any of ``held`` (at most ``EXIT_GRACE``).

    The one exit wait, for readers here and for pyarrow's handlers of fsspec filesystems."""
    deadline = time.monotonic() + EXIT_GRACE
    # Each check scans the collector's objects: many objects alive at exit cost time too.
    while held and time.monotonic() < deadline:
        # Passed straight from the list: a name of ours for one would count as hidden.
        if hidden_references(held[-1]) <= 0:
            held.pop()
        else:
            time.sleep(EXIT_POLL)


atexit.register(_let_go_at_exit)


def _new_buffer(n: int) -> memoryview:
    return memoryview(bytearray(n))


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
    file: TextPath | BinaryIO,
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


def seekable_path(
    path: TextPath, credential: Credential, limits: KdfLimits, allocate: Allocate | None = None
) -> SeekableReader:
    """``open_seekable`` on a path with a credential already built (the file is closed with
    the reader)."""
    fileobj: BinaryIO = builtins.open(path, "rb")
    try:
        read_at, size = file_read_at(fileobj)
        return SeekableReader(read_at, size, credential, limits, fileobj.close, allocate)
    except BaseException:
        fileobj.close()
        raise
