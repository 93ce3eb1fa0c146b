"""Reading ahead for the seekable reader, the threads every reader shares, and scratch buffers.

Once reads at a reader's position follow each other, the chunks after them are opened on the
process's shared reader threads in pieces (one ``read_at`` per piece), before they are asked
for; a reader that jumps about (a Parquet column read) fetches nothing it won't use. A chunk
opened ahead is handed over once; a piece's buffer is reused after every chunk of it was used up,
since fresh buffers cost page faults (a third of a sequential reader's system time).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final

from .._errors import StreamDamaged
from .._primitives import BLOCK_SIZE
from .parallel import resolve_workers

PIECE_BYTES: Final = 1 << 20
"""Smallest share of work handed to one thread: below it a thread handoff costs more than the
verify and decrypt it saves."""
READ_AHEAD_BYTES: Final = 8 << 20
"""How far reads that follow each other are opened ahead (at least four pieces)."""

OpenPiece = Callable[[int, int, memoryview, bool], tuple[int, StreamDamaged | None]]
"""open_piece(index, count, out, slack): open ``count`` chunks from ``index`` into ``out``; how
many opened and the failure that stopped it (the reader's ``_open_piece``)."""
Result = memoryview | StreamDamaged | None
"""A chunk opened ahead: its verified plaintext, why it failed (raised when it is read), or
``None`` when an earlier chunk of its piece failed first (the reader opens it itself)."""
Piece = Future[tuple[bytearray, list[Result]]]
"""A piece opened ahead: its buffer and one result per chunk."""


class ReadAhead:
    """The chunks one reader has opened, or is opening, ahead of its position."""

    def __init__(
        self,
        open_piece: OpenPiece,
        chunk_size: int,
        final_index: int,
        piece_bytes: int = PIECE_BYTES,
    ) -> None:
        # Weak: the reader owns this object, and a cycle would keep a closed reader (and its
        # buffers) alive until a garbage collection.
        self._open_piece = weakref.WeakMethod(open_piece)
        self._chunk_size = chunk_size
        self._piece_bytes = piece_bytes  # larger where each read_at is a round trip
        self._final = final_index  # never opened ahead: the reader holds the final chunk
        self._lock = threading.Lock()
        self._chunks: dict[int, tuple[Piece, int]] = {}
        self._end = 0
        self._next = -1
        self._streak = 0
        self._used: weakref.WeakKeyDictionary[Piece, int] = weakref.WeakKeyDictionary()
        self._spare: list[bytearray] = []

    def plan(self, offset: int, end: int) -> None:
        """Note a read at the position; once reads follow each other, keep the chunks after it
        being opened, in whole pieces: one piece after the first read in order, then
        ``READ_AHEAD_BYTES``. Called under the reader's position lock."""
        if offset == self._next:
            self._streak += 1
        else:
            self._streak = 0
            self.drop()
        self._next = end
        pool, _ = shared_pool()
        if not self._streak or pool is None:
            return
        cs = self._chunk_size
        per_piece = max(1, self._piece_bytes // cs)
        ahead = max(READ_AHEAD_BYTES // cs, 4 * per_piece)
        window = per_piece if self._streak == 1 else ahead
        start = max(self._end, (end - 1) // cs + 1)
        stop = min(self._final, (end - 1) // cs + 1 + window)
        with self._lock:
            while start < stop and (start + per_piece <= stop or stop == self._final):
                count = min(per_piece, stop - start)
                piece = pool.submit(self._open, start, count)
                for k in range(count):
                    self._chunks[start + k] = (piece, k)
                start += count
            self._end = max(self._end, start)

    def take(self, index: int) -> tuple[memoryview, Piece] | None:
        """The chunk, if it was opened ahead (waited for when a thread is on it), with its piece
        for ``release``; ``None`` if not (a piece no thread started is cancelled: the caller
        opens the chunk itself rather than wait). A chunk that failed raises here."""
        with self._lock:
            piece, k = self._chunks.pop(index, (None, 0))
        if piece is None or piece.cancel():
            return None
        result = piece.result()[1][k]
        if isinstance(result, StreamDamaged):
            raise result
        return None if result is None else (result, piece)

    def release(self, piece: Piece) -> None:
        """One chunk of ``piece`` taken is used up (copied out, or left behind by the position);
        after the last, its buffer is spare. A chunk kept (cached) is never released."""
        buf, results = piece.result()
        with self._lock:
            used = self._used.pop(piece, 0) + 1
            if used < len(results):
                self._used[piece] = used
            elif len(self._spare) < 2 * shared_pool()[1]:
                self._spare.append(buf)

    def drop(self) -> None:
        """Forget the chunks opened ahead (pieces not started are cancelled)."""
        with self._lock:
            for piece, _ in self._chunks.values():
                piece.cancel()
            self._chunks.clear()
            self._end = 0

    def _open(self, index: int, count: int) -> tuple[bytearray, list[Result]]:
        """Open ``count`` chunks from ``index`` into a buffer of their own (on a shared thread)."""
        cs = self._chunk_size
        size = count * cs + BLOCK_SIZE - 1
        with self._lock:
            buf = next((b for b in self._spare if len(b) == size), None)
            if buf is not None:
                self._spare.remove(buf)
        buf = bytearray(size) if buf is None else buf
        out = memoryview(buf)
        open_piece = self._open_piece()
        if open_piece is None:  # the reader is gone: nobody will take these
            return buf, [None] * count
        done, error = open_piece(index, count, out, True)
        results: list[Result] = [out[k * cs : (k + 1) * cs] for k in range(done)]
        if error is not None:
            results.append(error)
            results += [None] * (count - len(results))
        return buf, results


class _Scratch(threading.local):
    """One thread's spare buffers, by kind: encrypted input, a chunk's plaintext."""

    def __init__(self) -> None:
        self.spare: dict[str, list[bytearray]] = {}


_SCRATCH = _Scratch()
_SCRATCH_SPARES: Final = 4
"""Spare buffers a thread keeps of each kind: one per reader nested in another that it runs
(a stream inside a stream needs two); more nesting than that allocates."""
_POOL: ThreadPoolExecutor | None = None
_POOL_PID = 0
_POOL_WORKERS = 1
_POOL_LOCK = threading.Lock()


def take_scratch(kind: str, n: int) -> bytearray:
    """A buffer of at least ``n`` bytes of this thread's ``kind``, reused from an earlier read
    (fresh buffers cost page faults), to hand back with ``give_scratch``. Until then it is the
    caller's alone: a reader whose source is another reader (a stream inside a stream) takes
    another buffer on the same thread, so neither overwrites the other's bytes."""
    spare = _SCRATCH.spare.get(kind)
    buf = spare.pop() if spare else None
    return buf if buf is not None and len(buf) >= n else bytearray(n)


def give_scratch(kind: str, buf: bytearray) -> None:
    """Hand back a buffer from ``take_scratch`` for this thread's next read to reuse."""
    spare = _SCRATCH.spare.setdefault(kind, [])
    if len(spare) < _SCRATCH_SPARES:
        spare.append(buf)


def shared_pool() -> tuple[ThreadPoolExecutor | None, int]:
    """The reader threads of this process and how many (one per CPU, capped), shared by every
    reader so no read pays for starting threads or counting CPUs; ``None`` with one CPU. A
    forked child starts its own (it has none of its parent's threads)."""
    global _POOL, _POOL_PID, _POOL_WORKERS
    pid = os.getpid()
    if _POOL_PID != pid:
        with _POOL_LOCK:
            if _POOL_PID != pid:
                _POOL_WORKERS = resolve_workers(None)
                _POOL = None
                if _POOL_WORKERS > 1:
                    _POOL = ThreadPoolExecutor(_POOL_WORKERS, thread_name_prefix="aes-hmac-read")
                _POOL_PID = pid
    return _POOL, _POOL_WORKERS
