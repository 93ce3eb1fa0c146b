"""encrypt_stream / decrypt_stream: the serial loop, and the parallel engine (``parallel``).

Chunks are independent (own IV, own tag), so several can be sealed or opened at once; the
``cryptography`` calls release the GIL, so threads use every core. In the parallel engine every
worker (the calling thread is one) takes the next chunk from the source, seals or opens it, and
writes it itself when its turn comes: no thread does all the waiting and writing, so reading,
sealing and writing overlap across workers. Two sinks:

* in order (any file object, pipe or socket): a worker writes once the chunk before is written;
* at offsets (a plain regular file, found by ``positional_target``): a worker ``pwrite``s its
  chunk at its known place once the chunk before has been released, so writes overlap too.

Either way a chunk is written only after every earlier chunk sealed or verified: on a failure
the output holds verified chunks only, each at its place, and the error is the first one in
stream order. Each worker owns one input and one output buffer, so memory stays bounded.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import BinaryIO

from .._errors import StreamDamaged
from .._kdf import DEFAULT_KDF, DEFAULT_LIMITS, Credential, Kdf, KdfLimits, check_limits_arg
from .._keys.credentials import RawKey, Secret, to_credential
from .._primitives import BLOCK_SIZE, IV_SIZE, KEY_SIZE, BytesLike, random_bytes
from .format import (
    CHUNK_OVERHEAD,
    DEFAULT_CHUNK_SIZE,
    STREAM_ID_SIZE,
    ChunkCodec,
    Header,
    StreamInfo,
    chunk_log2_of,
    encode_prefix,
    open_codec,
    read_header,
    seal_header,
    seal_slot,
)
from .io import (
    check_file,
    read_full,
    read_full_bytes,
    write_all,
)
from .parallel import (
    Counter,
    Progress,
    Source,
    choose_sink,
    resolve_workers,
    run_parallel,
    workers_for,
)


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


def new_stream(
    credential: Credential,
    chunk_size: int,
    salt: bytes | None = None,
    stream_id: bytes | None = None,
) -> tuple[bytes, ChunkCodec]:
    """``start_stream`` for one credential with fresh random stream id, file key, slot IV and
    salt (unless ``salt`` is given, or the credential has a write batch: a batch shares one
    salt, so its password is derived once; and unless ``stream_id`` is given: a folder batch
    draws each file's id up front to list it in its manifest)."""
    return start_stream(
        [credential],
        chunk_log2=chunk_log2_of(chunk_size),
        stream_id=random_bytes(STREAM_ID_SIZE) if stream_id is None else stream_id,
        file_key=random_bytes(KEY_SIZE),
        salts=[credential.new_salt() if salt is None else salt],
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
) -> int:
    """The serial encryption loop with every random value supplied (the vectors' private hook)."""
    header, codec = start_stream(
        credentials,
        chunk_log2=chunk_log2,
        stream_id=stream_id,
        file_key=file_key,
        salts=salts,
        slot_ivs=slot_ivs,
    )
    write_all(dst, header)
    counter = Counter(None, None)
    _seal_serial(src, ChunkSealer(dst, codec, next_iv), counter)
    return counter.done


def out_buffer(chunk_size: int) -> bytearray:
    """An output buffer for one chunk: ``update_into`` wants block_size - 1 bytes of slack."""
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
        self._out = out_buffer(codec.chunk_size)
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


def _seal_serial(src: BinaryIO, sealer: ChunkSealer, c: Counter) -> None:
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


def iter_plain(src: BinaryIO, codec: ChunkCodec, offset: int) -> Iterator[tuple[memoryview, int]]:
    """Each chunk's verified plaintext, in order, with the ``src`` bytes it took; ``offset`` is
    where the first chunk starts (the header size). A chunk is known to be the last only once
    the next read finds nothing, so one chunk is read ahead. A view is valid until the next.

    ``StreamDamaged`` at the first chunk that fails, before any of its plaintext is yielded.
    """
    full = codec.chunk_size + CHUNK_OVERHEAD
    cur, nxt = memoryview(bytearray(full)), memoryview(bytearray(full))
    out = out_buffer(codec.chunk_size)
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


def _open_serial(src: BinaryIO, dst: BinaryIO, codec: ChunkCodec, offset: int, c: Counter) -> int:
    written = 0
    for plain, consumed in iter_plain(src, codec, offset):
        write_all(dst, plain)
        written += len(plain)
        c.add(consumed)
    return written


def encrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    password: Secret | None = None,
    *,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    workers: int | None = None,
    progress: Progress | None = None,
    total: int | None = None,
) -> int:
    """Encrypt everything ``src`` yields into ``dst`` as one stream; returns plaintext bytes.

    Give a ``password`` (str/bytes stretched by ``kdf``, a ``PasswordKey``, or a ``Key``) or a raw
    ``key`` (32 bytes or ``Key``). Works on pipes and sockets; a plain regular file is written at
    known offsets from its current position, which ends right after the stream. ``workers``
    threads seal chunks in parallel (1: no threads). ``progress`` is called after each chunk with
    (bytes read so far, ``total``), from one thread at a time, not always the caller's.
    """
    credential = to_credential(password, key, kdf=kdf)
    chunk_log2_of(chunk_size)
    n_workers = resolve_workers(workers)
    check_file(src, "src", "read")
    check_file(dst, "dst", "write")
    header, codec = new_stream(credential, chunk_size)
    return seal_chunks(src, dst, header, codec, workers=n_workers, progress=progress, total=total)


def seal_chunks(
    src: BinaryIO,
    dst: BinaryIO,
    header: bytes,
    codec: ChunkCodec,
    *,
    workers: int,
    progress: Progress | None = None,
    total: int | None = None,
) -> int:
    """Write ``header``, then every chunk of ``src`` sealed by ``codec``; returns plaintext
    bytes. The one encryption engine: ``encrypt_stream`` and folder batches (which share a
    salt) call it with a header they built."""
    counter = Counter(progress, total)
    chunk_size = codec.chunk_size
    if workers == 1:
        write_all(dst, header)
        _seal_serial(src, ChunkSealer(dst, codec), counter)
        return counter.done
    full = chunk_size + CHUNK_OVERHEAD
    sink = choose_sink(dst, len(header), full, counter)
    sink.head(header)

    def seal(index: int, data: memoryview, n: int, last: bool, out: bytearray) -> memoryview:
        if last:
            return memoryview(codec.seal_final(index, random_iv(), data[:n]))
        return memoryview(out)[: codec.seal_into(index, random_iv(), data, out)]

    run_parallel(
        Source(src, chunk_size, peek=False),
        sink,
        seal,
        chunk_size,
        len(out_buffer(chunk_size)),
        workers_for(workers, full),
    )
    return counter.done


class StreamHeader:
    """A stream's header as ``read_stream_header`` read and parsed it; not yet authenticated.

    ``info`` says what it holds (as ``inspect_stream`` does) before any secret is asked for, and
    ``decrypt_stream(src, ..., header=it)`` goes on from where the read stopped: the header is
    read and parsed once, by whoever looks at it first (the CLI, to refuse an input early).
    """

    __slots__ = ("_parsed", "info")

    def __init__(self, parsed: Header) -> None:
        self._parsed = parsed
        self.info: StreamInfo = parsed.info()

    def __repr__(self) -> str:
        info = self.info
        return (
            f"<aes_hmac.StreamHeader version {info.version}, {info.header_size} bytes, "
            f"{len(info.slots)} slot(s)>"
        )


def read_stream_header(src: BinaryIO) -> StreamHeader:
    """Read and parse the stream header at ``src``'s position, reading exactly its bytes (pipes
    included), so ``src`` is left at the first chunk for ``decrypt_stream(..., header=)``.

    ``HeaderError`` when it is not a stream header or is malformed. Nothing is authenticated
    yet: that needs the secret, in ``decrypt_stream``.
    """
    check_file(src, "src", "read")
    return StreamHeader(read_header(partial(read_full_bytes, src)))


def _given_header(header: object) -> Header:
    if not isinstance(header, StreamHeader):
        raise TypeError(
            f"header must be a StreamHeader from read_stream_header, not {type(header).__name__}"
        )
    return header._parsed


def decrypt_stream(
    src: BinaryIO,
    dst: BinaryIO,
    password: Secret | None = None,
    *,
    key: RawKey | None = None,
    limits: KdfLimits = DEFAULT_LIMITS,
    workers: int | None = None,
    progress: Progress | None = None,
    total: int | None = None,
    header: StreamHeader | None = None,
) -> int:
    """Decrypt a stream from ``src`` into ``dst``; returns plaintext bytes written.

    ``HeaderError`` before any payload byte is read when no slot opens (wrong password or damaged
    header). ``StreamDamaged(offset)`` at the first chunk that fails; every byte written before it
    belongs to chunks that verified, at their places. Plaintext of a chunk is written only after
    its tag and every earlier chunk's tag verified. ``progress`` gets (bytes of ``src`` consumed
    so far, the header's included, ``total``), from one thread at a time. ``header``: what
    ``read_stream_header(src)`` returned, ``src`` still where it left it; the header is then
    not read again (it is authenticated here all the same).
    """
    credential = to_credential(password, key)
    n_workers = resolve_workers(workers)
    check_limits_arg(limits)
    check_file(src, "src", "read")
    check_file(dst, "dst", "write")
    if header is None:
        parsed = read_header(partial(read_full_bytes, src))
    else:
        parsed = _given_header(header)
    codec = open_codec(parsed, credential, limits)
    counter = Counter(progress, total)
    counter.add(parsed.size)
    if n_workers == 1:
        return _open_serial(src, dst, codec, parsed.size, counter)
    size = codec.chunk_size
    full = size + CHUNK_OVERHEAD
    written = 0
    lock = threading.Lock()

    def open_chunk(index: int, data: memoryview, n: int, last: bool, out: bytearray) -> memoryview:
        nonlocal written
        offset = parsed.size + index * full
        if not last:
            plain = memoryview(out)[: codec.open_into(index, offset, data, out)]
        elif n == 0:
            raise StreamDamaged(f"data truncated at byte {offset}", offset)
        else:
            plain = memoryview(codec.open_final(index, offset, data[:n]))
        with lock:
            written += len(plain)
        return plain

    run_parallel(
        Source(src, full, peek=True),
        choose_sink(dst, 0, size, counter),
        open_chunk,
        full,
        len(out_buffer(size)),
        workers_for(n_workers, full),
    )
    return written
