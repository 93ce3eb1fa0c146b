"""Tests of the seekable reader: random access against the plaintext, archives and Parquet over
it, and damage that fails only the reads touching it (the final chunk is checked at open)."""

from __future__ import annotations

import io
import os
import random
import tarfile
import threading
import zipfile
from pathlib import Path
from typing import BinaryIO, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aes_hmac
from aes_hmac import PBKDF2, HeaderError, StreamDamaged
from aes_hmac._stream.format import CHUNK_OVERHEAD, read_header
from aes_hmac._stream.seekable import SeekableReader, chunk_layout, open_seekable

CHEAP = PBKDF2(iterations=1000)
CHUNK = 4096
FULL = CHUNK + CHUNK_OVERHEAD
PLAIN = os.urandom(10 * CHUNK + 1234)


def encrypted(data: bytes, chunk_size: int = CHUNK) -> bytes:
    out = io.BytesIO()
    aes_hmac.encrypt_stream(io.BytesIO(data), out, "pw", kdf=CHEAP, chunk_size=chunk_size)
    return out.getvalue()


ENC = encrypted(PLAIN)
HEADER = read_header(io.BytesIO(ENC).read).size


def reader(data: bytes = ENC) -> SeekableReader:
    return open_seekable(io.BytesIO(data), password="pw")


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(PLAIN) + 100), st.integers(0, 3 * CHUNK)), max_size=8))
def test_random_reads_match_the_plaintext(reads: list[tuple[int, int]]) -> None:
    with reader() as r:
        for offset, length in reads:
            assert r.pread(offset, length) == PLAIN[offset : offset + length]
            r.seek(offset)
            data = r.read(length)
            assert data == PLAIN[offset : offset + length]
            assert r.tell() == offset + len(data)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK])
def test_sizes_at_chunk_boundaries(size: int) -> None:
    data = os.urandom(size)
    with reader(encrypted(data)) as r:
        assert r.seekable() and r.readable()
        assert r.seek(0, os.SEEK_END) == size == r.size
        assert r.read() == b""
        r.seek(0)
        assert r.read() == data
        r.seek(-min(size, 5), os.SEEK_END)
        assert r.read() == data[-5:] if size else r.read() == b""


def test_chunk_layout_finds_the_final_chunk() -> None:
    for size, (index, offset) in [
        (len(ENC), (10, HEADER + 10 * FULL)),
        (HEADER + FULL, (0, HEADER)),
        (HEADER + FULL + 64, (1, HEADER + FULL)),
    ]:
        assert chunk_layout(HEADER, CHUNK, size) == (index, offset)


def test_readinto_and_sequential_reads_from_a_path(tmp_path: Path) -> None:
    big = os.urandom(40 * CHUNK + 7)
    path = tmp_path / "big.ahm"
    path.write_bytes(encrypted(big))
    with open_seekable(path, password="pw") as r:
        buf = bytearray(1000)
        parts = []
        while n := r.readinto(buf):
            parts.append(bytes(buf[:n]))
        assert b"".join(parts) == big
        r.seek(5 * CHUNK - 3)
        assert r.read(10) == big[5 * CHUNK - 3 : 5 * CHUNK + 7]


def test_stream_starts_at_the_file_position() -> None:
    src = io.BytesIO(b"junk" + ENC)
    src.seek(4)
    with open_seekable(src, password="pw") as r:
        assert r.read() == PLAIN
    assert not src.closed


def test_pread_from_threads() -> None:
    errors: list[BaseException] = []
    with reader() as r:

        def work(seed: int) -> None:
            try:
                for i in range(200):
                    offset = (seed * 7919 + i * 104729) % len(PLAIN)
                    assert r.pread(offset, 777) == PLAIN[offset : offset + 777]
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors


BIG = os.urandom(3 << 20)
BIG_ENC = encrypted(BIG)


def test_long_reads_are_opened_in_pieces_and_match() -> None:
    # 768 chunks: a whole read is split into pieces opened on several threads.
    with reader(BIG_ENC) as r:
        assert r.read() == BIG
        for offset, length in [(1, len(BIG)), (5 * CHUNK - 7, 600 * CHUNK + 9), (0, 3 * CHUNK)]:
            assert r.pread(offset, length) == BIG[offset : offset + length]
        buf = bytearray(len(BIG) - 1000)
        r.seek(999)
        assert r.readinto(memoryview(buf)[1:]) == len(buf) - 1 and r.tell() == len(BIG) - 2
        assert buf[1:] == BIG[999 : len(BIG) - 2]
        view = r.read_buffer(10)
        assert isinstance(view, memoryview) and view == BIG[-2:]


def test_damage_in_a_long_read_names_the_first_bad_chunk() -> None:
    damaged = flip(flip(BIG_ENC, HEADER + 700 * FULL + 5), HEADER + 500 * FULL + 5)
    with reader(damaged) as r:
        with pytest.raises(StreamDamaged) as info:
            r.pread(0, len(BIG))
        assert info.value.offset == HEADER + 500 * FULL
        assert r.pread(0, 500 * CHUNK) == BIG[: 500 * CHUNK]
        assert r.pread(501 * CHUNK, 199 * CHUNK) == BIG[501 * CHUNK : 700 * CHUNK]
        r.seek(600 * CHUNK)
        with pytest.raises(StreamDamaged) as info:
            r.read()
        assert info.value.offset == HEADER + 700 * FULL and r.tell() == 600 * CHUNK


def test_reads_in_order_are_served_ahead_and_damage_still_fails_its_read() -> None:
    damaged = flip(BIG_ENC, HEADER + 300 * FULL + 5)
    with reader(damaged) as r:
        got = []
        while r.tell() < 300 * CHUNK:
            got.append(r.read(1024))
        assert b"".join(got) == BIG[: r.tell()]
        with pytest.raises(StreamDamaged) as info:
            r.read(CHUNK)
        assert info.value.offset == HEADER + 300 * FULL
        r.seek(301 * CHUNK)
        while data := r.read(3 * CHUNK + 5):
            got.append(data)
        assert b"".join(got)[-1000:] == BIG[-1000:]


def test_read_seek_and_tell_share_one_position_safely() -> None:
    # Each read is atomic: the blocks threads get are whole, distinct 777-byte slices.
    blocks: list[bytes] = []
    with reader(BIG_ENC) as r:

        def work() -> None:
            while block := r.read(777):
                blocks.append(block)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert r.tell() == len(BIG)
    starts = sorted(BIG.find(block) for block in blocks)
    assert starts == list(range(0, len(BIG), 777))


def test_zipfile_members_in_any_order() -> None:
    members = {f"m{i}.bin": os.urandom(300 * i + 17) for i in range(12)}
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    with reader(encrypted(raw.getvalue())) as r, zipfile.ZipFile(r) as z:
        for name in sorted(members, reverse=True):
            assert z.read(name) == members[name]
        assert z.read("m3.bin") == members["m3.bin"]


def test_tarfile_random_access() -> None:
    members = {f"d/f{i}": os.urandom(1000 * i + 3) for i in range(10)}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    with reader(encrypted(raw.getvalue())) as r, tarfile.open(fileobj=r, mode="r:") as t:
        infos = t.getmembers()
        for info in reversed(infos):
            f = t.extractfile(info)
            assert f is not None and f.read() == members[info.name]


def test_parquet_footer_first() -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table({"a": list(range(5000)), "b": [f"row {i}" for i in range(5000)]})
    raw = io.BytesIO()
    pq.write_table(table, raw, row_group_size=1000)
    with reader(encrypted(raw.getvalue())) as r:
        pf = pq.ParquetFile(r)
        assert pf.metadata.num_rows == 5000 and pf.metadata.num_row_groups == 5
        assert pf.read_row_group(3, columns=["a"]).column("a").to_pylist() == list(
            range(3000, 4000)
        )
        assert pf.read().equals(table)


def test_truncation_is_caught_at_open() -> None:
    for cut in (1, 64, FULL, FULL + 10, len(ENC) - HEADER):
        with pytest.raises(StreamDamaged):
            reader(ENC[:-cut])
    with pytest.raises(StreamDamaged, match="truncated"):
        reader(ENC[: HEADER + 3 * FULL])  # cut exactly at a chunk boundary


def test_extension_is_caught_at_open() -> None:
    final = HEADER + 10 * FULL
    for extra in (5, 16, 300, 3000):  # 3000: past the end of the final chunk's place
        with pytest.raises(
            StreamDamaged, match=f"^trailing data after the final chunk at byte {final}$"
        ):
            reader(ENC + os.urandom(extra))
    with pytest.raises(StreamDamaged, match=r"^data (damaged|truncated)"):
        reader(ENC + os.urandom(2 * FULL))  # past the place after the final chunk's: damage


@pytest.mark.parametrize(
    "tail, extra", [(CHUNK - 1, 16), (CHUNK - 20, 32), (CHUNK - 1, 100), (CHUNK - 500, 1000)]
)
def test_extension_past_the_final_chunks_place_is_trailing_data(tail: int, extra: int) -> None:
    # A final chunk that (nearly) fills its place: appended bytes spill into the next place.
    enc = encrypted(os.urandom(2 * CHUNK + tail))
    with pytest.raises(
        StreamDamaged, match=f"trailing data after the final chunk at byte {HEADER + 2 * FULL}$"
    ):
        reader(enc + os.urandom(extra))


def test_damage_in_an_unread_chunk_does_not_stop_other_reads() -> None:
    damaged = flip(ENC, HEADER + 4 * FULL + 100)
    with reader(damaged) as r:
        assert r.pread(0, 3 * CHUNK) == PLAIN[: 3 * CHUNK]
        assert r.pread(6 * CHUNK, CHUNK) == PLAIN[6 * CHUNK : 7 * CHUNK]
        with pytest.raises(StreamDamaged) as info:
            r.pread(4 * CHUNK + 10, 5)
        assert info.value.offset == HEADER + 4 * FULL
        assert f"at byte {HEADER + 4 * FULL}" in str(info.value)
        r.seek(3 * CHUNK)
        with pytest.raises(StreamDamaged):
            r.read(2 * CHUNK)  # crosses into the damaged chunk
        assert r.tell() == 3 * CHUNK
        assert r.pread(5 * CHUNK, 100) == PLAIN[5 * CHUNK : 5 * CHUNK + 100]


def test_damage_in_the_final_chunk_is_caught_at_open() -> None:
    with pytest.raises(StreamDamaged) as info:
        reader(flip(ENC, len(ENC) - 1))
    assert info.value.offset == HEADER + 10 * FULL


def test_wrong_password_and_header_damage() -> None:
    with pytest.raises(HeaderError):
        open_seekable(io.BytesIO(ENC), password="nope")
    with pytest.raises(HeaderError):
        reader(flip(ENC, 20))


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="password"):
        open_seekable(io.BytesIO(ENC))
    with pytest.raises(TypeError, match="file"):
        open_seekable(42, password="pw")  # type: ignore[arg-type]

    class Pipe(io.RawIOBase):
        def readable(self) -> bool:
            return True

    with pytest.raises(ValueError, match="seekable"):
        open_seekable(Pipe(), password="pw")  # type: ignore[arg-type]
    with reader() as r:
        with pytest.raises(ValueError, match="negative"):
            r.seek(-1)
        with pytest.raises(ValueError, match="whence"):
            r.seek(0, 7)
        with pytest.raises(ValueError, match="offset"):
            r.pread(-1, 3)
    with pytest.raises(ValueError, match="closed"):
        r.read(1)


def test_repr_hides_the_key() -> None:
    with reader() as r:
        assert "pw" not in repr(r) and "key" not in repr(r).lower()


def _child_reads(conn: object) -> None:
    with reader(BIG_ENC) as r:
        conn.send(r.read() == BIG)  # type: ignore[attr-defined]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_reads_after_its_parent_started_the_shared_threads() -> None:
    # The child has none of the parent's threads: it starts its own, and no read ever waits
    # on a piece no thread has started (the reader opens those itself).
    import multiprocessing

    with reader(BIG_ENC) as r:
        assert r.read() == BIG  # the parent's shared threads exist now
    context = multiprocessing.get_context("fork")
    parent, child = context.Pipe()
    process = context.Process(target=_child_reads, args=(child,))
    process.start()
    assert parent.poll(60) and parent.recv() is True
    process.join(60)
    assert process.exitcode == 0


@pytest.mark.parametrize("tail", [0, 1234], ids=["full-size final chunk", "short final chunk"])
def test_reading_past_the_cache_to_the_end(tail: int) -> None:
    """Review finding: the verified final chunk sat in the LRU; once more chunks than the cache
    holds were read, it was evicted and re-read as a non-final chunk ("truncated"). A file of
    far more chunks than the cache holds is read whole, then its tail again."""
    plain = os.urandom(5000 * CHUNK + tail)
    enc = encrypted(plain)
    with reader(enc) as r:
        assert r.read() == plain
        assert r.pread(len(plain) - 5, 5) == plain[-5:]
        r.seek(0)
        assert r.read(CHUNK) == plain[:CHUNK]


def test_an_unclosed_reader_is_freed_without_the_garbage_collector() -> None:
    """Review finding: an unclosed reader with read-ahead formed a reference cycle; the cyclic
    collector then closed it at an arbitrary allocation and could deadlock a starting thread.
    Dropping the last reference must free it at once (no cycle)."""
    import gc
    import weakref

    enc = encrypted(os.urandom(3 * CHUNK))
    gc.disable()
    try:
        r = reader(enc)
        assert len(r.read()) == 3 * CHUNK
        ref = weakref.ref(r)
        del r
        assert ref() is None
    finally:
        gc.enable()


NESTED_PLAIN = os.urandom(5 * (1 << 20) + 4321)
"""A multi-MB inner stream: issue 16 saw ``StreamDamaged`` at byte ~1.6 MB."""


@pytest.fixture(scope="module")
def nested_source() -> bytes:
    """``NESTED_PLAIN`` encrypted (the inner stream), encrypted again (the outer one)."""
    return encrypted(encrypted(NESTED_PLAIN, chunk_size=1 << 16), chunk_size=1 << 20)


def nested(outer_source: bytes) -> tuple[SeekableReader, SeekableReader]:
    outer = open_seekable(io.BytesIO(outer_source), password="pw")
    return outer, open_seekable(cast(BinaryIO, outer), password="pw")


def test_a_stream_inside_a_stream_reads_through_two_readers(nested_source: bytes) -> None:
    """Issue 16: both readers fetched into the same per-thread scratch buffer, so the outer
    reader's fetch overwrote the inner one's ciphertext while it was being opened."""
    outer, inner = nested(nested_source)
    with outer, inner:
        assert inner.size == len(NESTED_PLAIN)
        assert inner.read() == NESTED_PLAIN
        inner.seek(0)
        parts = []
        while part := inner.read(100_000):  # in order: the read-ahead path
            parts.append(part)
        assert b"".join(parts) == NESTED_PLAIN


def test_random_reads_through_two_readers(nested_source: bytes) -> None:
    rng = random.Random(16)
    outer, inner = nested(nested_source)
    with outer, inner:
        for _ in range(60):
            offset = rng.randrange(len(NESTED_PLAIN))
            length = rng.choice([1, 1000, 1 << 16, 3 << 20])
            assert inner.pread(offset, length) == NESTED_PLAIN[offset : offset + length]
            inner.seek(offset)
            assert inner.read(length) == NESTED_PLAIN[offset : offset + length]
