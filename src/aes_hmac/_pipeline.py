"""encrypt_stream / decrypt_stream: chunks through a bounded thread pool, written out in order.

Chunks are independent (own IV, own tag), so several can be sealed or opened at once; the
``cryptography`` calls release the GIL, so threads use every core. The calling thread reads,
hands chunks to the workers, and writes results in stream order; at most ``_inflight`` chunks
(each one input and one output buffer, reused) exist at a time, so memory does not grow with the
stream. The whole-file helpers pass their own temporary file's descriptor instead: there every
chunk's place in the output is known in advance, so each worker writes its own result with
``pwrite`` and the calling thread only reads (one thread writing was the serial bottleneck).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, Final

from ._errors import StreamDamaged
from ._kdf import (
    DEFAULT_KDF,
    DEFAULT_LIMITS,
    Credential,
    Kdf,
    KdfLimits,
    check_kdf,
    check_limits_arg,
    encode_password,
)
from ._primitives import BLOCK_SIZE, IV_SIZE, KEY_SIZE, SALT_SIZE, BytesLike, random_bytes
from ._stream import (
    CHUNK_OVERHEAD,
    DEFAULT_CHUNK_SIZE,
    STREAM_ID_SIZE,
    ChunkCodec,
    chunk_log2_of,
    encode_prefix,
    open_header,
    read_full,
    read_header,
    seal_header,
    seal_slot,
)

Progress = Callable[[int, int | None], None]
"""progress(bytes of input consumed so far, total or None)."""

_MAX_WORKERS: Final = 8
_BUFFER_BUDGET: Final = 24 << 20
"""Bytes of chunk buffers in flight at most (but always two chunks): with the interpreter's
~32 MiB this keeps peak RSS under 64 MiB at the default chunk size for any worker count."""


def make_credential(
    password: str | bytes | None, key: bytes | None, kdf: Kdf = DEFAULT_KDF
) -> Credential:
    """Exactly one of ``password`` and ``key``; checks types and sizes, naming the argument.

    On decryption ``kdf`` is only a marker that this is a password: each slot names its own KDF.
    """
    if password is not None and key is not None:
        raise TypeError("give a password or a key, not both")
    if key is not None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise TypeError(f"key must be bytes, not {type(key).__name__}")
        if len(key) != KEY_SIZE:
            raise ValueError(f"key must be {KEY_SIZE} bytes, got {len(key)}")
        return Credential(bytes(key), None)
    if password is None:
        raise TypeError("give a password or a key")
    return Credential(encode_password(password), check_kdf(kdf))


def check_file(obj: object, name: str, method: str) -> None:
    """``TypeError`` naming the argument when ``obj`` is not a file object with ``method``."""
    if not callable(getattr(obj, method, None)):
        raise TypeError(
            f"{name} must be a binary file object with {method}(), not {type(obj).__name__}"
        )


def resolve_workers(workers: int | None) -> int:
    """``None`` means one per CPU (capped); 1 means no threads at all."""
    if workers is None:
        return max(1, min(os.cpu_count() or 1, _MAX_WORKERS))
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be an int or None, not {type(workers).__name__}")
    if not 1 <= workers <= 64:
        raise ValueError(f"workers must be between 1 and 64, got {workers}")
    return workers


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


class _InOrder:
    """Results written by the calling thread in stream order: any file object, pipes, sockets."""

    __slots__ = ("_dst",)

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst

    def in_worker(self, index: int, data: memoryview) -> None:
        pass

    def in_order(self, data: memoryview) -> None:
        write_all(self._dst, data)

    def final(self, index: int, data: BytesLike) -> None:
        write_all(self._dst, data)


class _AtOffsets:
    """Results written by the workers themselves at ``base + index * step`` of ``fd``.

    Only for a fresh file nobody else sees (the whole-file helpers' temporary file, deleted on
    any failure): chunks land out of order, and a later chunk may be written before an earlier
    one fails. ``final`` also sets the file's exact length.
    """

    __slots__ = ("_base", "_fd", "_step")

    def __init__(self, fd: int, base: int, step: int) -> None:
        self._fd = fd
        self._base = base
        self._step = step

    def in_worker(self, index: int, data: memoryview) -> None:
        at = self._base + index * self._step
        pwrite_all(self._fd, data, at)
        if _START_WRITEBACK is not None:
            # On Linux this starts writing the chunk to disk now (pages still dirty stay
            # cached), so the caller's final fsync does not do all the disk work alone at the
            # end. Only a hint: a file system that refuses it changes nothing.
            try:
                _START_WRITEBACK(self._fd, at, len(data), os.POSIX_FADV_DONTNEED)
            except OSError:
                pass

    def in_order(self, data: memoryview) -> None:
        pass

    def final(self, index: int, data: BytesLike) -> None:
        at = self._base + index * self._step
        pwrite_all(self._fd, data, at)
        os.ftruncate(self._fd, at + len(memoryview(data).cast("B")))


_Sink = _InOrder | _AtOffsets
_START_WRITEBACK: Final = getattr(os, "posix_fadvise", None)  # absent on Windows and macOS


def _inflight(workers: int, chunk_size: int) -> int:
    return max(2, min(2 * workers, _BUFFER_BUDGET // (2 * chunk_size)))


class _Counter:
    """Reports progress after each chunk; keeps the running totals in one place."""

    __slots__ = ("done", "progress", "total")

    def __init__(self, progress: Progress | None, total: int | None) -> None:
        self.progress = progress
        self.total = total
        self.done = 0

    def add(self, n: int) -> None:
        self.done += n
        if self.progress is not None:
            self.progress(self.done, self.total)


def random_iv() -> bytes:
    """A fresh random IV: every chunk and slot gets one (only the vectors' hook fixes them)."""
    return random_bytes(IV_SIZE)


def start_stream(
    credentials: Sequence[Credential],
    *,
    chunk_log2: int,
    stream_id: bytes,
    file_key: bytes,
    salts: Sequence[bytes],
    slot_ivs: Sequence[bytes],
) -> tuple[bytes, ChunkCodec]:
    """A new stream's header bytes (one slot per credential) and the codec for its chunks."""
    prefix = encode_prefix(chunk_log2, stream_id)
    slots = [
        seal_slot(prefix, c, file_key, salt, iv)
        for c, salt, iv in zip(credentials, salts, slot_ivs, strict=True)
    ]
    header = seal_header(chunk_log2, stream_id, file_key, slots)
    return header, ChunkCodec(file_key, prefix, 1 << chunk_log2)


def new_stream(credential: Credential, chunk_size: int) -> tuple[bytes, ChunkCodec]:
    """``start_stream`` for one credential with fresh random stream id, file key, salt and IV."""
    return start_stream(
        [credential],
        chunk_log2=chunk_log2_of(chunk_size),
        stream_id=random_bytes(STREAM_ID_SIZE),
        file_key=random_bytes(KEY_SIZE),
        salts=[random_bytes(SALT_SIZE)],
        slot_ivs=[random_iv()],
    )


def seal_stream(
    src: BinaryIO,
    dst: BinaryIO,
    credentials: Sequence[Credential],
    *,
    chunk_log2: int,
    stream_id: bytes,
    file_key: bytes,
    salts: Sequence[bytes],
    slot_ivs: Sequence[bytes],
    next_iv: Callable[[], bytes],
    workers: int,
    progress: Progress | None,
    total: int | None,
) -> int:
    """The encryption engine with every random value supplied (the vectors' private hook)."""
    header, codec = start_stream(
        credentials,
        chunk_log2=chunk_log2,
        stream_id=stream_id,
        file_key=file_key,
        salts=salts,
        slot_ivs=slot_ivs,
    )
    return _seal_chunks(src, dst, header, codec, next_iv, workers, _Counter(progress, total))


def _seal_chunks(
    src: BinaryIO,
    dst: BinaryIO,
    header: bytes,
    codec: ChunkCodec,
    next_iv: Callable[[], bytes],
    workers: int,
    counter: _Counter,
    fd: int | None = None,
) -> int:
    if workers == 1 or fd is None:
        write_all(dst, header)
    if workers == 1:
        _seal_serial(src, ChunkSealer(dst, codec, next_iv), counter)
        return counter.done
    sink: _Sink = _InOrder(dst)
    if fd is not None:
        pwrite_all(fd, header, 0)
        sink = _AtOffsets(fd, len(header), codec.chunk_size + CHUNK_OVERHEAD)
    _seal_parallel(src, sink, codec, next_iv, counter, workers)
    return counter.done


def _out_buffer(chunk_size: int) -> bytearray:
    # update_into wants block_size - 1 bytes of slack after the ciphertext.
    return bytearray(chunk_size + CHUNK_OVERHEAD + BLOCK_SIZE - 1)


class ChunkSealer:
    """Seals one stream's chunks in order into ``dst``: the serial engine and ``StreamWriter``.

    Full chunks are sealed into one reused output buffer; ``write_final`` seals the last chunk.
    """

    __slots__ = ("_codec", "_dst", "_next_iv", "_out", "_view", "index")

    def __init__(
        self, dst: BinaryIO, codec: ChunkCodec, next_iv: Callable[[], bytes] = random_iv
    ) -> None:
        self._dst = dst
        self._codec = codec
        self._next_iv = next_iv
        self._out = _out_buffer(codec.chunk_size)
        self._view = memoryview(self._out)
        self.index = 0

    @property
    def chunk_size(self) -> int:
        return self._codec.chunk_size

    def write_full(self, data: BytesLike) -> None:
        """Seal and write a full (non-final) chunk of exactly ``chunk_size`` bytes."""
        m = self._codec.seal_into(self.index, self._next_iv(), data, self._out)
        write_all(self._dst, self._view[:m])
        self.index += 1

    def write_final(self, data: BytesLike) -> None:
        """Seal and write the final chunk (0 to chunk_size - 1 bytes)."""
        write_all(self._dst, self._codec.seal_final(self.index, self._next_iv(), data))


def _seal_serial(src: BinaryIO, sealer: ChunkSealer, c: _Counter) -> None:
    size = sealer.chunk_size
    inbuf = memoryview(bytearray(size))
    while True:
        n = read_full(src, inbuf)
        if n < size:
            sealer.write_final(inbuf[:n])
            c.add(n)
            return
        sealer.write_full(inbuf)
        c.add(n)


def _seal_parallel(
    src: BinaryIO,
    sink: _Sink,
    codec: ChunkCodec,
    next_iv: Callable[[], bytes],
    c: _Counter,
    workers: int,
) -> None:
    size = codec.chunk_size
    free = [
        (memoryview(bytearray(size)), _out_buffer(size)) for _ in range(_inflight(workers, size))
    ]
    pending: deque[tuple[Future[int], tuple[memoryview, bytearray]]] = deque()

    def work(index: int, iv: bytes, data: memoryview, out: bytearray) -> int:
        m = codec.seal_into(index, iv, data, out)
        sink.in_worker(index, memoryview(out)[:m])
        return m

    def retire() -> None:
        future, pair = pending.popleft()
        m = future.result()
        sink.in_order(memoryview(pair[1])[:m])
        c.add(size)
        free.append(pair)

    with ThreadPoolExecutor(workers, thread_name_prefix="aes-hmac") as pool:
        try:
            index = 0
            while True:
                if not free:
                    retire()
                pair = free.pop()
                n = read_full(src, pair[0])
                if n < size:
                    while pending:
                        retire()
                    sink.final(index, codec.seal_final(index, next_iv(), pair[0][:n]))
                    c.add(n)
                    return
                pending.append((pool.submit(work, index, next_iv(), *pair), pair))
                index += 1
        finally:
            for future, _ in pending:
                future.cancel()


def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    password: str | bytes | None = None,
    *,
    key: bytes | None = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    progress: Progress | None = None,
    total: int | None = None,
) -> int:
    """Encrypt everything ``src`` yields into ``dst`` as one stream; returns plaintext bytes.

    Works on pipes and sockets (never seeks). Give a ``password`` (stretched by ``kdf``) or a raw
    32-byte ``key``. ``workers`` threads seal chunks in parallel (1: no threads). ``progress`` is
    called after each chunk with (bytes read so far, ``total``).
    """
    return encrypt_to(
        src,
        dst,
        None,
        password,
        key=key,
        kdf=kdf,
        chunk_size=chunk_size,
        workers=workers,
        progress=progress,
        total=total,
    )


def encrypt_to(
    src: BinaryIO,
    dst: BinaryIO,
    fd: int | None,
    password: str | bytes | None = None,
    *,
    key: bytes | None = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    progress: Progress | None = None,
    total: int | None = None,
) -> int:
    """``encrypt_stream``; with ``fd`` (``dst``'s descriptor: an empty regular file only this
    call writes, removed by the caller on failure) the workers ``pwrite`` their own chunks."""
    credential = make_credential(password, key, kdf)
    chunk_log2_of(chunk_size)
    n_workers = resolve_workers(workers)
    check_file(src, "src", "read")
    check_file(dst, "dst", "write")
    header, codec = new_stream(credential, chunk_size)
    counter = _Counter(progress, total)
    return _seal_chunks(src, dst, header, codec, random_iv, n_workers, counter, fd)


def decrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    password: str | bytes | None = None,
    *,
    key: bytes | None = None,
    limits: KdfLimits = DEFAULT_LIMITS,
    workers: int | None = None,
    progress: Progress | None = None,
    total: int | None = None,
) -> int:
    """Decrypt a stream from ``src`` into ``dst``; returns plaintext bytes written.

    ``HeaderError`` before any payload byte is read when no slot opens (wrong password or damaged
    header). ``StreamDamaged(offset)`` at the first chunk that fails; every byte written before it
    belongs to chunks that verified. Plaintext of a chunk is written only after its tag verified.
    ``progress`` gets (bytes of ``src`` consumed so far, ``total``).
    """
    return decrypt_to(
        src,
        dst,
        None,
        password,
        key=key,
        limits=limits,
        workers=workers,
        progress=progress,
        total=total,
    )


def decrypt_to(
    src: BinaryIO,
    dst: BinaryIO,
    fd: int | None,
    password: str | bytes | None = None,
    *,
    key: bytes | None = None,
    limits: KdfLimits = DEFAULT_LIMITS,
    workers: int | None = None,
    progress: Progress | None = None,
    total: int | None = None,
) -> int:
    """``decrypt_stream``; with ``fd`` (as for ``encrypt_to``) the workers ``pwrite`` each
    chunk's plaintext, after its tag verified, at its place; a later chunk may land before an
    earlier one fails, which is why only a temporary file the caller deletes may be given."""
    credential = make_credential(password, key)
    n_workers = resolve_workers(workers)
    check_limits_arg(limits)
    check_file(src, "src", "read")
    check_file(dst, "dst", "write")
    header = read_header(src)
    file_key, _ = open_header(header, credential, limits)
    codec = ChunkCodec(file_key, header.prefix, header.chunk_size)
    counter = _Counter(progress, total)
    counter.add(header.size)
    if n_workers == 1:
        return _open_serial(src, dst, codec, header.size, counter)
    sink: _Sink = _InOrder(dst) if fd is None else _AtOffsets(fd, 0, codec.chunk_size)
    return _open_parallel(src, sink, codec, header.size, counter, n_workers)


def iter_plain(src: BinaryIO, codec: ChunkCodec, offset: int) -> Iterator[tuple[memoryview, int]]:
    """Each chunk's verified plaintext, in order, with the ``src`` bytes it took; ``offset`` is
    where the first chunk starts (the header size). A chunk is known to be the last only once
    the next read finds nothing, so one chunk is read ahead. A view is valid until the next.

    ``StreamDamaged`` at the first chunk that fails, before any of its plaintext is yielded.
    """
    full = codec.chunk_size + CHUNK_OVERHEAD
    cur, nxt = memoryview(bytearray(full)), memoryview(bytearray(full))
    out = _out_buffer(codec.chunk_size)
    view = memoryview(out)
    index = 0
    n = read_full(src, cur)
    while n == full:
        m = read_full(src, nxt)
        if m == 0:
            break
        yield view[: codec.open_into(index, offset, cur, out)], full
        offset += full
        index += 1
        cur, nxt, n = nxt, cur, m
    if n == 0:
        raise StreamDamaged(f"data truncated at byte {offset}", offset)
    yield memoryview(codec.open_final(index, offset, cur[:n])), n


def _open_serial(src: BinaryIO, dst: BinaryIO, codec: ChunkCodec, offset: int, c: _Counter) -> int:
    written = 0
    for plain, consumed in iter_plain(src, codec, offset):
        write_all(dst, plain)
        written += len(plain)
        c.add(consumed)
    return written


def _open_parallel(
    src: BinaryIO, sink: _Sink, codec: ChunkCodec, offset: int, c: _Counter, workers: int
) -> int:
    full = codec.chunk_size + CHUNK_OVERHEAD
    # One extra buffer pair: the chunk held back until the next read shows it is not the last.
    free = [
        (memoryview(bytearray(full)), _out_buffer(codec.chunk_size))
        for _ in range(_inflight(workers, codec.chunk_size) + 1)
    ]
    pending: deque[tuple[Future[int], tuple[memoryview, bytearray]]] = deque()
    written = 0

    def work(index: int, offset: int, chunk: memoryview, out: bytearray) -> int:
        p = codec.open_into(index, offset, chunk, out)  # verifies before it decrypts
        sink.in_worker(index, memoryview(out)[:p])
        return p

    def retire() -> None:
        nonlocal written
        future, pair = pending.popleft()
        p = future.result()
        sink.in_order(memoryview(pair[1])[:p])
        written += p
        c.add(full)
        free.append(pair)

    with ThreadPoolExecutor(workers, thread_name_prefix="aes-hmac") as pool:
        try:
            index = 0
            held = free.pop()
            n = read_full(src, held[0])
            while n == full:
                if not free:
                    retire()
                nxt = free.pop()
                m = read_full(src, nxt[0])
                if m == 0:
                    free.append(nxt)
                    break
                job = pool.submit(work, index, offset, held[0], held[1])
                pending.append((job, held))
                offset += full
                index += 1
                held, n = nxt, m
            while pending:
                retire()
        finally:
            for future, _ in pending:
                future.cancel()
    if n == 0:
        raise StreamDamaged(f"data truncated at byte {offset}", offset)
    plain = codec.open_final(index, offset, held[0][:n])
    sink.final(index, plain)
    c.add(n)
    return written + len(plain)
