"""Tests of open(): StreamWriter / StreamReader round trips, wrappers, failures."""

from __future__ import annotations

import gc
import io
import os
import shutil
import tarfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import aes_hmac
from aes_hmac import (
    PBKDF2,
    HeaderError,
    SeekableReader,
    SlotInfo,
    StreamDamaged,
    StreamReader,
    StreamWriter,
    decrypt_stream,
    inspect_stream,
)
from aes_hmac._stream.format import CHUNK_OVERHEAD

CHEAP = PBKDF2(iterations=1000)
CHUNK = 4096
FULL = CHUNK + CHUNK_OVERHEAD


def open_writer(fileobj: object, **kw: object) -> StreamWriter:
    w = aes_hmac.open(fileobj, "wb", password="pw", kdf=CHEAP, chunk_size=CHUNK, **kw)  # type: ignore[call-overload, arg-type]
    assert isinstance(w, StreamWriter)
    return w


class OneWay(io.BytesIO):
    """A ``BytesIO`` that says it cannot seek, as a pipe does: ``open`` reads it in order."""

    def seekable(self) -> bool:
        return False


def open_reader(fileobj: object, password: str = "pw") -> StreamReader | SeekableReader:
    """A seekable source gives the random-access reader, anything else the sequential one."""
    r = aes_hmac.open(fileobj, "rb", password=password)  # type: ignore[arg-type]
    seekable = getattr(fileobj, "seekable", lambda: False)()
    assert isinstance(r, SeekableReader if seekable else StreamReader)
    return r


# --- open() ---


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3])
def test_open_round_trip_in_odd_pieces(size: int) -> None:
    data = os.urandom(size)
    buf = io.BytesIO()
    with open_writer(buf) as w:
        for i in range(0, size, 999):
            assert w.write(data[i : i + 999]) == len(data[i : i + 999])
    assert not buf.closed, "a file object passed in stays open"
    blob = buf.getvalue()
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, "pw")
    assert out.getvalue() == data
    with open_reader(io.BytesIO(blob)) as r:
        assert r.read() == data
        assert r.read() == b""


def test_open_paths(tmp_path: Path) -> None:
    path = tmp_path / "f.ahm"
    with aes_hmac.open(path, "wb", password="pw", kdf=CHEAP) as w:
        w.write(b"hello")
    with aes_hmac.open(str(path), "rb", password="pw") as r:
        assert r.read() == b"hello"
    assert inspect_stream(path).slots == (SlotInfo(CHEAP),)


def test_open_with_a_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    buf = io.BytesIO()
    with aes_hmac.open(buf, "wb", key=key, chunk_size=CHUNK) as w:
        w.write(b"k" * 10000)
    assert inspect_stream(io.BytesIO(buf.getvalue())).slots == (SlotInfo(None),)
    with aes_hmac.open(io.BytesIO(buf.getvalue()), key=key) as r:
        assert r.read() == b"k" * 10000


def test_open_argument_errors() -> None:
    with pytest.raises(ValueError, match="mode must be 'rb' or 'wb', got 'r'"):
        aes_hmac.open(io.BytesIO(), "r", password="pw")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="give password or key"):
        aes_hmac.open(io.BytesIO(), "wb")
    with pytest.raises(ValueError, match="chunk_size"):
        aes_hmac.open(io.BytesIO(), "wb", password="pw", chunk_size=100)


def test_copyfileobj_both_ways() -> None:
    data = os.urandom(3 * CHUNK + 11)
    buf = io.BytesIO()
    with open_writer(buf) as w:
        shutil.copyfileobj(io.BytesIO(data), w, 1000)
    out = io.BytesIO()
    with open_reader(io.BytesIO(buf.getvalue())) as r:
        shutil.copyfileobj(r, out, 777)
    assert out.getvalue() == data


def test_tarfile_stream_modes_round_trip() -> None:
    buf = io.BytesIO()
    files = {"a.txt": b"alpha" * 1000, "dir/b.bin": os.urandom(9000), "empty": b""}
    with open_writer(buf) as w, tarfile.open(fileobj=w, mode="w|") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    with open_reader(io.BytesIO(buf.getvalue())) as r:
        with tarfile.open(fileobj=r, mode="r|") as tar:
            got = {}
            for member in tar:
                f = tar.extractfile(member)
                assert f is not None
                got[member.name] = f.read()
        rest = r.read()  # tar's zero record padding; reading it authenticates the end
        assert rest == bytes(len(rest))
    assert got == files


def test_text_io_wrapper_both_ways() -> None:
    buf = io.BytesIO()
    text = "grüße, ünïcode\n" * 500
    with open_writer(buf) as w:
        tw = io.TextIOWrapper(w, encoding="utf-8")
        tw.write(text)
        tw.flush()
        tw.detach()
    r = open_reader(io.BytesIO(buf.getvalue()))
    with io.TextIOWrapper(r, encoding="utf-8") as tr:
        assert tr.read() == text


def test_reader_keeps_raising_the_same_error() -> None:
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(bytes(3 * CHUNK))
    blob = bytearray(buf.getvalue())
    blob[-FULL] ^= 1  # damage inside the second-to-last... any chunk after the first
    r = open_reader(OneWay(bytes(blob)))
    got = bytearray()
    with pytest.raises(StreamDamaged) as first:
        while chunk := r.read(1000):
            got += chunk
    for _ in range(3):
        with pytest.raises(StreamDamaged) as again:
            r.read(10)
        assert again.value is first.value
    assert bytes(got) == bytes(len(got)) and len(got) % CHUNK == 0


def test_seekable_reader_fails_only_at_the_damaged_chunk() -> None:
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(bytes(3 * CHUNK))
    blob = bytearray(buf.getvalue())
    final = CHUNK_OVERHEAD + 16  # the empty final chunk: IV, one padding block, tag
    blob[-final - 20] ^= 1  # inside the third chunk, the last full one
    r = open_reader(io.BytesIO(bytes(blob)))
    assert r.read(2 * CHUNK) == bytes(2 * CHUNK)
    for _ in range(2):
        with pytest.raises(StreamDamaged) as damaged:
            r.read(10)
        assert damaged.value.offset == len(blob) - final - FULL
    r.seek(3 * CHUNK)
    assert r.read() == b""  # the final chunk (empty here) verified at open


def test_reader_wrong_password_fails_at_open() -> None:
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(b"x")
    with pytest.raises(HeaderError, match="wrong password or damaged header"):
        open_reader(io.BytesIO(buf.getvalue()), password="nope")


def test_reader_detects_truncation_and_trailing_data() -> None:
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(bytes(2 * CHUNK + 5))
    blob = buf.getvalue()
    with pytest.raises(StreamDamaged, match="truncated"):
        open_reader(io.BytesIO(blob[:-64])).read()
    with pytest.raises(StreamDamaged):
        open_reader(io.BytesIO(blob + b"\x00")).read()


def test_writer_exception_in_with_block_does_not_finalize() -> None:
    """Leaving the block by an exception must not make a partial stream look complete."""
    buf = io.BytesIO()
    with pytest.raises(RuntimeError), open_writer(buf) as w:
        w.write(bytes(CHUNK + 10))
        raise RuntimeError("boom")
    with pytest.raises(StreamDamaged, match="truncated"):
        decrypt_stream(io.BytesIO(buf.getvalue()), io.BytesIO(), "pw")


def test_unclosed_writer_collected_does_not_finalize() -> None:
    """Regression (review): garbage collection used to close, so seal, an abandoned writer."""
    import gc

    buf = io.BytesIO()

    def abandon() -> None:
        w = open_writer(buf)
        w.write(b"first half")

    abandon()
    gc.collect()
    with pytest.raises(StreamDamaged, match="truncated"):
        decrypt_stream(io.BytesIO(buf.getvalue()), io.BytesIO(), "pw")


def test_wrapped_writer_aborted_on_failure_reads_truncated() -> None:
    """A TextIOWrapper's close finalizes the writer; abort() on the failure path keeps it cut."""
    buf = io.BytesIO()
    w = open_writer(buf)
    with pytest.raises(RuntimeError), io.TextIOWrapper(w, encoding="utf-8") as text:
        try:
            text.write("partial")
            text.flush()
            raise RuntimeError("boom")
        except RuntimeError:
            w.abort()  # before the wrapper's __exit__ closes (and so would finalize) the writer
            raise
    with pytest.raises(StreamDamaged, match="truncated"):
        decrypt_stream(io.BytesIO(buf.getvalue()), io.BytesIO(), "pw")


ROWS = 5_000
FAIL_AT = 3_000  # rows past the first chunk: a truncated file would hold whole chunks


def export_rows(wrap: Callable[[StreamWriter], io.IOBase], dst: object) -> None:
    """Write rows through ``wrap(writer)`` and fail part way, leaving the wrapper to the
    garbage collector, as an export that logs the failure and carries on does."""
    out = wrap(open_writer(dst))
    for i in range(ROWS):
        if i == FAIL_AT:
            raise RuntimeError(f"source failed at row {i}")
        out.write(f"{i},{i * i}\n" if isinstance(out, io.TextIOBase) else f"{i}\n".encode())
    out.close()


WRAPPERS: dict[str, Callable[[StreamWriter], io.IOBase]] = {
    "TextIOWrapper": lambda w: io.TextIOWrapper(w, encoding="utf-8"),
    "BufferedWriter": lambda w: io.BufferedWriter(w),  # type: ignore[arg-type]
    "TextIOWrapper(BufferedWriter)": lambda w: io.TextIOWrapper(
        io.BufferedWriter(w),  # type: ignore[arg-type]
        encoding="utf-8",
    ),
}


@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
def test_abandoned_wrapper_collected_leaves_no_file(
    tmp_path: Path, wrap: Callable[[StreamWriter], io.IOBase]
) -> None:
    """Regression (review of issue 16, finding 2): the wrapper's finalizer closed the writer
    with no exception in flight, committing the rows before the failure as a complete file.
    Its ``_dealloc_warn`` call, just before that close, now marks the writer abandoned."""
    dst = tmp_path / "x.csv.ahm"
    with pytest.raises(RuntimeError, match="row 3000"):
        export_rows(wrap, dst)
    gc.collect()
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
def test_abandoned_wrapper_on_caller_file_object_reads_truncated(
    wrap: Callable[[StreamWriter], io.IOBase],
) -> None:
    buf = io.BytesIO()
    with pytest.raises(RuntimeError, match="row 3000"):
        export_rows(wrap, buf)
    gc.collect()
    assert len(buf.getvalue()) > 2 * FULL  # whole chunks were written before the failure
    with pytest.raises(StreamDamaged, match="truncated"):
        decrypt_stream(io.BytesIO(buf.getvalue()), io.BytesIO(), "pw")


@pytest.mark.parametrize("wrap", WRAPPERS.values(), ids=WRAPPERS.keys())
def test_wrapper_closed_explicitly_commits(
    tmp_path: Path, wrap: Callable[[StreamWriter], io.IOBase]
) -> None:
    """The finalizer hook changes only garbage collection: a clean close still commits."""
    dst = tmp_path / "x.ahm"
    out = wrap(open_writer(dst))
    out.write("text" if isinstance(out, io.TextIOBase) else b"text")  # type: ignore[attr-defined]
    out.close()
    with aes_hmac.open(dst, "rb", password="pw") as f:
        assert f.read() == b"text"


def test_writer_refuses_writes_after_close() -> None:
    w = open_writer(io.BytesIO())
    w.close()
    w.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        w.write(b"x")


# --- issue 10 #13: a reader shared by threads; issue 12 #7: messages ---


def test_stream_reader_shared_by_threads_reads_every_byte_once() -> None:
    """Regression: two threads in one reader broke it for good ("generator already executing",
    stored and raised forever). Reads now take turns: every byte comes out exactly once."""
    plain = os.urandom(40 * CHUNK + 11)
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(plain)
    r = open_reader(OneWay(buf.getvalue()))
    pieces: list[list[bytes]] = [[] for _ in range(4)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def drain(mine: list[bytes]) -> None:
        start.wait()
        try:
            while piece := r.read(97):
                mine.append(piece)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=drain, args=(p,)) for p in pieces]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    got = b"".join(b"".join(p) for p in pieces)
    assert sorted(got) == sorted(plain), "no byte lost or repeated"
    assert r.read(10) == b""


class FailingSource(OneWay):
    """A pipe whose reads fail with an OSError once ``limit`` bytes were given."""

    def __init__(self, data: bytes, limit: int) -> None:
        super().__init__(data)
        self._limit = limit

    def read(self, n: int | None = -1) -> bytes:
        if self.tell() >= self._limit:
            raise OSError(5, "Input/output error")
        return super().read(n)

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


def test_reader_keeps_a_library_error_after_a_foreign_one() -> None:
    """A read error from the source is raised as itself once; every later read gets the
    library's own error (chained to it), never the same foreign exception object forever."""
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(bytes(4 * CHUNK))
    blob = buf.getvalue()
    header = inspect_stream(io.BytesIO(blob)).header_size
    r = open_reader(FailingSource(blob, header + 2 * FULL + 10))
    got = 0
    with pytest.raises(OSError, match="Input/output error"):
        while piece := r.read(1000):
            got += len(piece)
    assert got % CHUNK == 0 and got < 4 * CHUNK
    for _ in range(2):
        with pytest.raises(
            StreamDamaged, match=r"unreadable after a failed read at byte \d+ \(OSError\)"
        ) as kept:
            r.read(10)
        assert isinstance(kept.value.__cause__, OSError)
        assert kept.value.offset == header + got // CHUNK * FULL, "the chunk not delivered"


@pytest.mark.parametrize("extra", [b"\n", b"12345", bytes(16), os.urandom(CHUNK + 100)])
def test_reader_says_trailing_data(extra: bytes) -> None:
    """Issue 12 #7: 5 bytes appended said "truncated", 16 said "damaged"."""
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(bytes(2 * CHUNK + 5))
    blob = buf.getvalue()
    final_at = inspect_stream(io.BytesIO(blob)).header_size + 2 * FULL
    with pytest.raises(
        StreamDamaged, match=f"^trailing data after the final chunk at byte {final_at}$"
    ):
        open_reader(OneWay(blob + extra)).read()


def test_open_refuses_text_files_and_takes_bytes_paths(tmp_path: Path) -> None:
    """Issue 12 #7: a text-mode file gave "a bytes-like object is required" unnamed."""
    with (tmp_path / "t").open("w") as text:
        with pytest.raises(TypeError, match=r"^file must be a binary file object, not a text one"):
            aes_hmac.open(text, "wb", password="pw", kdf=CHEAP)
    with pytest.raises(TypeError, match=r"file must be a path .* not bytes"):
        aes_hmac.open(os.fsencode(tmp_path / "x"), "wb", password="pw")
