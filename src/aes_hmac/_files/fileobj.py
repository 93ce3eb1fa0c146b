"""``open()``: an encrypted stream as a file object (``StreamWriter`` for "wb", ``StreamReader``
for "rb"), built on the serial chunk loop of ``engine``."""

from __future__ import annotations

import builtins
import io
import os
import threading
from functools import partial
from types import TracebackType
from typing import BinaryIO, Literal, overload

from .._errors import AesHmacError, StreamDamaged
from .._kdf import DEFAULT_KDF, DEFAULT_LIMITS, Credential, Kdf, KdfLimits, check_limits_arg
from .._keys.credentials import RawKey, Secret, to_credential
from .._stream.engine import ChunkSealer, iter_plain, new_stream
from .._stream.format import DEFAULT_CHUNK_SIZE, chunk_log2_of, open_codec, read_header
from .._stream.io import TextPath, path_or_file, read_full_bytes, write_all
from .._stream.seekable import SeekableReader, file_read_at, is_seekable
from .atomic import PendingFile
from .lifecycle import Lifecycle, Output, warn_discarded


class StreamWriter(io.BufferedIOBase):
    """Write side of ``open(..., "wb")``: buffers one chunk, seals each full chunk as it fills.

    The writer lifecycle (``lifecycle``): only a clean ``close()`` (or a ``with`` block left
    normally) seals the final chunk (last-chunk flag) and, given ``output``, makes the file
    appear under its name. Leaving a ``with`` block by an exception, ``close()`` while an
    exception raised since the writer opened is propagating or being handled (also through a
    wrapper such as ``io.TextIOWrapper``; it warns ``WriterDiscardedWarning``), ``abort()`` and
    garbage collection of an unclosed writer or of a wrapper around it (``io.TextIOWrapper``,
    ``io.BufferedWriter``: their finalizer calls ``_dealloc_warn`` first) do not finalize:
    ``output`` is discarded, and a caller's file object is left without its final chunk, so it
    reads as truncated instead of as a complete stream. ``shown`` names the output in warnings.
    """

    def __init__(
        self,
        dst: BinaryIO,
        credential: Credential,
        chunk_size: int,
        close_dst: bool,
        output: Output | None = None,
        shown: str | None = None,
    ) -> None:
        super().__init__()
        self._shown = f"stream to a {type(dst).__name__}" if shown is None else shown
        # Until the header is out, a close (also from __del__) must not write a final chunk.
        self._aborted = True
        self._output = output
        self._lifecycle = Lifecycle()
        header, codec = new_stream(credential, chunk_size)
        self._dst = dst
        self._close_dst = close_dst
        self._chunks = ChunkSealer(dst, codec)
        self._buf = bytearray(chunk_size)
        self._fill = 0
        write_all(dst, header)
        self._aborted = False

    def __del__(self) -> None:
        if "_fill" not in self.__dict__:
            output: Output | None = self.__dict__.get("_output")
            if output is not None:
                output.discard()  # __init__ failed: nothing was written worth keeping
            return
        # Nobody closed this writer: the stream was not finished, so it must read as truncated.
        if not self.closed:
            self._aborted = True
        super().__del__()

    def _dealloc_warn(self, source: object) -> None:
        """Called by the finalizer of a C ``io.TextIOWrapper`` or ``io.BufferedWriter`` around
        this writer just before it closes it: that close is garbage collection of an abandoned
        writer, never the end of the data, so it must discard."""
        if not self.closed:
            self._aborted = True

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        """Take every byte of ``b``; full chunks are sealed and written at once."""
        if self.closed:
            raise ValueError("write to a closed stream")
        view = memoryview(b).cast("B")
        size = len(self._buf)
        taken = 0
        while taken < len(view):
            n = min(size - self._fill, len(view) - taken)
            self._buf[self._fill : self._fill + n] = view[taken : taken + n]
            self._fill += n
            taken += n
            if self._fill == size:
                self._chunks.write_full(self._buf)
                self._fill = 0
        return taken

    def flush(self) -> None:
        """Flush the underlying file; a partial chunk stays buffered until it fills or close."""
        if not self.closed:
            self._dst.flush()

    def abort(self) -> None:
        """Close without the final chunk: the output is discarded (or, on a caller's file
        object, detected as truncated)."""
        self._aborted = True
        self.close()

    def close(self) -> None:
        """Seal the final chunk and commit the output, unless this close is cleanup after a
        failure (see the class): then discard, and warn when the failure was inferred from an
        exception in flight (``close()`` while an exception is being handled discards; to
        commit inside an ``except`` block, open the writer there)."""
        if self.closed:
            return
        in_flight = None if self._aborted else self._lifecycle.in_flight()
        if in_flight is not None:
            self._aborted = True
        self._lifecycle.forget()
        sealed = False
        try:
            if not self._aborted:
                self._chunks.write_final(self._buf[: self._fill])
                self._dst.flush()
                sealed = True
        finally:
            self._buf[:] = bytes(len(self._buf))
            try:
                super().close()  # flushes dst: it must still be open
            except BaseException:
                sealed = False
                raise
            finally:
                self._release(sealed)
        if in_flight is not None:  # after the discard: a warning turned error cannot undo it
            warn_discarded(self._shown, in_flight)

    def _release(self, sealed: bool) -> None:
        """Hand the output over: committed when the stream was sealed, else discarded."""
        if self._output is not None:
            output, self._output = self._output, None
            if sealed:
                output.commit()
            else:
                output.discard()
        elif self._close_dst:
            self._dst.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class StreamReader(io.RawIOBase):
    """Read side of ``open(..., "rb")``: releases a chunk's plaintext only after its tag verified.

    The header is opened by the constructor (``HeaderError`` there). The first failure is kept
    and every later read raises it, so no caller can read past damage or take a cut stream for a
    complete one. The kept error is always the library's: damage is a ``StreamDamaged``; any
    other failure part way through a chunk (an ``OSError`` from the source, an interrupt) is
    raised as itself once, then kept as a ``StreamDamaged`` chained to it. Threads may share a
    reader: reads take turns under a lock.
    """

    def __init__(
        self, src: BinaryIO, credential: Credential, limits: KdfLimits, close_src: bool
    ) -> None:
        super().__init__()
        self._src = src
        self._close_src = close_src
        header = read_header(partial(read_full_bytes, src))
        codec = open_codec(header, credential, limits)
        self._chunks = iter_plain(src, codec, header.size)
        self._offset = header.size
        self._plain: memoryview = memoryview(b"")
        self._error: AesHmacError | None = None
        self._eof = False
        self._lock = threading.Lock()

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        """Copy verified plaintext into ``b``; 0 only at the authenticated end of the stream."""
        with self._lock:
            return self._readinto(b)

    def _readinto(self, b: bytes | bytearray | memoryview) -> int:
        if self.closed:
            raise ValueError("read from a closed stream")
        if self._error is not None:
            raise self._error
        while not self._plain and not self._eof:
            try:
                self._plain, consumed = next(self._chunks)
            except StopIteration:
                self._eof = True
            except AesHmacError as exc:
                self._error = exc
                raise
            except BaseException as exc:
                # The chunk generator is finished now, and only the authenticated end may read
                # as EOF: later reads get a library error that says why.
                kept = StreamDamaged(
                    f"stream unreadable after a failed read at byte {self._offset} "
                    f"({type(exc).__name__})",
                    self._offset,
                )
                kept.__cause__ = exc
                self._error = kept
                raise
            else:
                self._offset += consumed
        view = memoryview(b).cast("B")
        n = min(len(view), len(self._plain))
        view[:n] = self._plain[:n]
        self._plain = self._plain[n:]
        return n

    def close(self) -> None:
        if not self.closed and self._close_src:
            self._src.close()
        super().close()


@overload
def open(
    file: TextPath | BinaryIO,
    mode: Literal["rb"] = "rb",
    *,
    password: Secret | None = None,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> StreamReader | SeekableReader: ...
@overload
def open(
    file: TextPath | BinaryIO,
    mode: Literal["wb"],
    *,
    password: Secret | None = None,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> StreamWriter: ...
def open(
    file: TextPath | BinaryIO,
    mode: Literal["rb", "wb"] = "rb",
    *,
    password: Secret | None = None,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> StreamWriter | StreamReader | SeekableReader:
    """Open an encrypted stream as a file object: "wb" encrypts what is written, "rb" decrypts.

    ``file`` is a path (opened and closed here) or a binary file object (left open). "wb" to a
    path is atomic, like ``atomic_output`` with ``overwrite=True``: the file appears (or
    replaces the old one, keeping its mode) only when the writer is closed cleanly; an
    exception, garbage collection or a kill leaves the path as it was. Give ``password`` (str,
    bytes, ``Key`` or ``PasswordKey``) or ``key`` (32 bytes or ``Key``). "rb" on a seekable
    source gives a ``SeekableReader`` (random access; the final chunk is verified at open, so a
    truncated file fails here); on a pipe or socket a sequential ``StreamReader``.
    """
    if mode not in ("rb", "wb"):
        raise ValueError(f"mode must be 'rb' or 'wb', got {mode!r}")
    credential = to_credential(password, key, kdf=kdf)
    if mode == "wb":
        chunk_log2_of(chunk_size)
    else:
        check_limits_arg(limits)
    path = path_or_file(file, "file", "write" if mode == "wb" else "read")
    if mode == "wb":
        if path is None:
            return StreamWriter(file, credential, chunk_size, False)  # type: ignore[arg-type]
        output = PendingFile(path, overwrite=True, name="file")
        try:
            return StreamWriter(output.file, credential, chunk_size, False, output, os.fspath(path))
        except BaseException:
            output.discard()
            raise
    owned = path is not None
    fileobj: BinaryIO = file if path is None else builtins.open(path, mode)  # type: ignore[assignment]
    try:
        if is_seekable(fileobj):
            read_at, size = file_read_at(fileobj)
            return SeekableReader(
                read_at, size, credential, limits, fileobj.close if owned else None
            )
        return StreamReader(fileobj, credential, limits, owned)
    except BaseException:
        if owned:
            fileobj.close()
        raise
