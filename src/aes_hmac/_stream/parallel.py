"""The parallel engine: workers that read, seal or open, and write their own chunks in order.

Every worker (the calling thread is one) takes the next chunk from the ``Source``, seals or opens
it, and hands it to the sink when its turn comes (``Turns``): no thread does all the waiting and
writing, so reading, sealing and writing overlap across workers. ``choose_sink`` picks
``AtOffsets`` for a plain regular file (workers ``pwrite`` at known places, writes overlap too)
and ``InOrder`` for anything else (file objects, pipes, sockets). A chunk is released only after
every earlier one sealed or verified, and the error raised is the first in stream order.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import BinaryIO, Final

from .io import (
    positional_target,
    pwrite_all,
    read_full,
    read_full_bytes,
    start_writeback,
    write_all,
)

Progress = Callable[[int, int | None], None]
"""progress(bytes of input consumed so far, total or None)."""

BUFFER_BUDGET: Final = 24 << 20
"""Bytes of chunk buffers at most (but always two workers' worth): with the interpreter's
~32 MiB this keeps peak RSS under 64 MiB at the default chunk size for any worker count."""


class Counter:
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


class Source:
    """Hands out chunks in stream order to whichever worker asks; reads under one lock.

    ``peek``: a chunk of full size is the last one only if nothing follows, so one byte is read
    ahead and carried into the next chunk (decryption; an encrypted chunk of full size may be
    the final one). Without ``peek`` a short read ends the stream (encryption).
    """

    def __init__(self, src: BinaryIO, size: int, peek: bool) -> None:
        self._src = src
        self._size = size
        self._peek = peek
        self._carry = b""
        self._lock = threading.Lock()
        self._index = 0
        self._stopped = False

    def stop(self) -> None:
        self._stopped = True

    def take(self, buf: memoryview) -> tuple[int, int, bool, BaseException | None] | None:
        """(index, bytes read into ``buf``, is last, read error) or ``None`` when finished."""
        with self._lock:
            if self._stopped:
                return None
            index = self._index
            self._index += 1
            try:
                n, last = self._read(buf)
            except BaseException as exc:
                self._stopped = True
                return index, 0, True, exc
            if last:
                self._stopped = True
            return index, n, last, None

    def _read(self, buf: memoryview) -> tuple[int, bool]:
        k = len(self._carry)
        buf[:k] = self._carry
        n = k + read_full(self._src, buf[k:])
        if n < self._size or not self._peek:
            return n, n < self._size
        self._carry = read_full_bytes(self._src, 1)
        return n, not self._carry


class Turns:
    """Whose turn it is to release a chunk, and the first failure in stream order."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next = 0
        self.error: BaseException | None = None

    def wait(self, index: int) -> bool:
        """Block until chunk ``index`` may be released; False when the run failed meanwhile."""
        with self._cond:
            while self._next < index and self.error is None:
                self._cond.wait()
            return self.error is None

    def release(self, index: int) -> None:
        with self._cond:
            self._next = index + 1
            self._cond.notify_all()

    def fail(self, index: int, exc: BaseException) -> None:
        """Record ``exc`` once every earlier chunk is released, so the error reported is the
        first in stream order; an interrupt (not an ``Exception``) stops everything at once."""
        try:
            if isinstance(exc, Exception):
                self.wait(index)
        finally:
            self.abort(exc)

    def abort(self, exc: BaseException) -> None:
        """Record ``exc`` now (unless a failure is already recorded) and wake every worker."""
        with self._cond:
            if self.error is None:
                self.error = exc
            self._cond.notify_all()


class InOrder:
    """Any file object, pipe or socket: each worker writes its chunk once the one before is."""

    def __init__(self, dst: BinaryIO, counter: Counter) -> None:
        self._dst = dst
        self._counter = counter

    def head(self, data: bytes) -> None:
        """Write what goes before the chunks (the header), before any worker starts."""
        write_all(self._dst, data)

    def put(self, turns: Turns, index: int, data: memoryview, consumed: int) -> None:
        if turns.wait(index):
            try:
                write_all(self._dst, data)
                self._counter.add(consumed)
            finally:
                turns.release(index)

    def finish(self) -> None:
        pass


class AtOffsets:
    """A plain regular file: chunk ``index`` goes to ``base + index * step`` with ``pwrite``,
    once every earlier chunk was released (verified), so only the writes run out of order.

    ``finish`` leaves the file object's position right after the bytes released in order.
    """

    def __init__(self, dst: BinaryIO, fd: int, base: int, step: int, counter: Counter) -> None:
        self._dst = dst
        self._fd = fd
        self._base = base
        self._step = step
        self._counter = counter
        self._end = base

    def head(self, data: bytes) -> None:
        """Write the header just before ``base``."""
        pwrite_all(self._fd, data, self._base - len(data))

    def put(self, turns: Turns, index: int, data: memoryview, consumed: int) -> None:
        at = self._base + index * self._step
        if not turns.wait(index):
            return
        try:
            self._end = at + len(data)
            self._counter.add(consumed)
        finally:
            turns.release(index)
        pwrite_all(self._fd, data, at)
        start_writeback(self._fd, at, len(data))

    def finish(self) -> None:
        self._dst.seek(self._end)


def choose_sink(dst: BinaryIO, base: int, step: int, counter: Counter) -> InOrder | AtOffsets:
    """The offset sink when ``dst`` allows it (``base`` past its current position), else in
    order."""
    target = positional_target(dst)
    if target is None:
        return InOrder(dst, counter)
    fd, position = target
    return AtOffsets(dst, fd, position + base, step, counter)


_GRACE: Final = 0.5
"""Seconds an interrupted run waits for workers still busy (a chunk being written)."""

Work = Callable[[int, memoryview, int, bool, bytearray], memoryview]
"""work(index, input, bytes read, is last, output buffer) -> the chunk's output bytes."""


def run_parallel(
    source: Source, sink: InOrder | AtOffsets, work: Work, in_size: int, out_size: int, n: int
) -> None:
    """Run ``n`` workers (the calling thread and n - 1 threads) until the source is finished;
    raise the first failure in stream order. Every thread is joined before returning, so no
    write happens after this returns; after an interrupt (``KeyboardInterrupt``,
    ``SystemExit``) a thread blocked in a read is left behind, unable to write."""
    turns = Turns()

    def worker() -> None:
        inbuf = memoryview(bytearray(in_size))
        out = bytearray(out_size)
        while turns.error is None:
            job = source.take(inbuf)
            if job is None:
                return
            index, got, last, error = job
            try:
                if error is not None:
                    raise error
                sink.put(turns, index, work(index, inbuf, got, last, out), got)
            except BaseException as exc:
                source.stop()
                turns.fail(index, exc)
                return
            if last:
                return

    threads = [
        threading.Thread(target=worker, name=f"aes-hmac-{i}", daemon=True) for i in range(1, n)
    ]
    try:
        for t in threads:
            t.start()
        worker()
    except BaseException as exc:  # a thread that would not start, or an interrupt
        source.stop()
        turns.abort(exc)
        raise
    finally:
        # After an interrupt a worker may sit in a read that never returns (a pipe nobody
        # closes): wait only briefly. Such a worker cannot write any more, since every sink
        # checks ``turns`` before it writes, and daemon threads do not keep the process alive.
        grace = None if turns.error is None or isinstance(turns.error, Exception) else _GRACE
        deadline = None if grace is None else time.monotonic() + grace
        for t in threads:
            if t.ident is not None:
                t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        sink.finish()
    if turns.error is not None:
        raise turns.error


DEFAULT_WORKERS_CAP: Final = 8
"""``workers=None`` means one per CPU, but no more than this."""
MAX_WORKERS: Final = 64
"""The most ``workers`` any call takes."""


def resolve_workers(workers: int | None) -> int:
    """``None`` means one per CPU (capped); 1 means no threads at all."""
    if workers is None:
        return max(1, min(os.cpu_count() or 1, DEFAULT_WORKERS_CAP))
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise TypeError(f"workers must be an int or None, not {type(workers).__name__}")
    if not 1 <= workers <= MAX_WORKERS:
        raise ValueError(f"workers must be between 1 and {MAX_WORKERS}, got {workers}")
    return workers


def workers_for(workers: int, buffer_size: int) -> int:
    """Workers to start: at most one per CPU (the work is CPU-bound: more threads than cores
    only contend, measured 0.78-0.83x at 3 and 4 workers on 2 cores) and what the buffer budget
    allows, never fewer than two."""
    cpus = os.cpu_count() or 2
    return max(2, min(workers, cpus, BUFFER_BUDGET // (2 * buffer_size)))
