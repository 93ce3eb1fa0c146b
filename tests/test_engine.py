"""Tests of encrypt_stream / decrypt_stream: round trips, pipes, every kind of damage, workers."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aes_hmac
from aes_hmac import PBKDF2, HeaderError, StreamDamaged, decrypt_stream, encrypt_stream
from aes_hmac._kdf import KDF_CLASS_NAMES
from aes_hmac._stream.format import CHUNK_OVERHEAD, read_header

CHEAP = PBKDF2(iterations=1000)
CHUNK = 4096
FULL = CHUNK + CHUNK_OVERHEAD
KEY = bytes(range(32))
WORKERS = [1, 2, 3]


def seal(data: bytes, workers: int = 1, chunk_size: int = CHUNK, password: str = "pw") -> bytes:
    out = io.BytesIO()
    n = encrypt_stream(
        io.BytesIO(data), out, password, kdf=CHEAP, chunk_size=chunk_size, workers=workers
    )
    assert n == len(data)
    return out.getvalue()


def unseal(blob: bytes, workers: int = 1, password: str = "pw") -> bytes:
    out = io.BytesIO()
    n = decrypt_stream(io.BytesIO(blob), out, password, workers=workers)
    assert n == len(out.getvalue())
    return out.getvalue()


def header_size(blob: bytes) -> int:
    return read_header(io.BytesIO(blob).read).size


SIZES = [0, 1, 15, 16, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 7 * CHUNK + 100]


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("size", SIZES)
def test_round_trip(size: int, workers: int) -> None:
    data = os.urandom(size)
    blob = seal(data, workers)
    assert unseal(blob, workers) == data
    assert unseal(blob, 1 if workers > 1 else 2) == data


def test_layout_sizes() -> None:
    """Full chunks are chunk_size + 48 bytes; the final one holds < chunk_size, padded."""
    for size, chunks in [
        (0, [64]),
        (CHUNK - 1, [FULL]),
        (CHUNK, [FULL, 64]),
        (CHUNK + 1, [FULL, 64]),
    ]:
        blob = seal(bytes(size))
        assert len(blob) - header_size(blob) == sum(chunks)


def test_parallel_output_is_identical_in_layout_and_opens_serially() -> None:
    data = os.urandom(40 * CHUNK + 3)
    a, b = seal(data, 1), seal(data, 3)
    assert len(a) == len(b) and a != b  # random IVs and keys differ, the layout does not
    assert unseal(b, 1) == unseal(a, 3) == data


def test_key_instead_of_password() -> None:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(b"data"), out, key=KEY, chunk_size=CHUNK)
    back = io.BytesIO()
    decrypt_stream(io.BytesIO(out.getvalue()), back, key=KEY)
    assert back.getvalue() == b"data"
    with pytest.raises(HeaderError, match=r"^no password slot: this stream opens with a key$"):
        decrypt_stream(io.BytesIO(out.getvalue()), io.BytesIO(), "pw")
    with pytest.raises(HeaderError, match="wrong password or damaged header"):
        decrypt_stream(io.BytesIO(out.getvalue()), io.BytesIO(), key=bytes(32))


@pytest.mark.parametrize("workers", [1, 2])
def test_every_kind_of_secret_is_accepted(workers: int) -> None:
    """The one credential rule: a Key opens raw-key slots whether given as ``password`` or
    ``key=``; a PasswordKey brings its own KDF; bytes are a password, never a key."""
    data = os.urandom(3 * CHUNK + 1)
    raw = aes_hmac.Key(KEY)
    for secret, opener in [
        ({"key": raw}, {"key": KEY}),
        ({"password": raw}, {"key": raw}),
        ({"key": KEY}, {"password": raw}),
        ({"password": aes_hmac.PasswordKey("pw", kdf=CHEAP)}, {"password": "pw"}),
        ({"password": b"pw", "kdf": CHEAP}, {"password": aes_hmac.PasswordKey(b"pw")}),
    ]:
        out = io.BytesIO()
        encrypt_stream(io.BytesIO(data), out, chunk_size=CHUNK, workers=workers, **secret)  # type: ignore[arg-type]
        back = io.BytesIO()
        decrypt_stream(io.BytesIO(out.getvalue()), back, workers=workers, **opener)  # type: ignore[arg-type]
        assert back.getvalue() == data
    with pytest.raises(HeaderError):
        decrypt_stream(io.BytesIO(out.getvalue()), io.BytesIO(), key=KEY)
    with pytest.raises(TypeError, match="key must be bytes or Key, not PasswordKey"):
        encrypt_stream(io.BytesIO(), io.BytesIO(), key=aes_hmac.PasswordKey("pw"))  # type: ignore[arg-type]


def test_argument_errors_name_the_argument() -> None:
    src, dst = io.BytesIO(b""), io.BytesIO()
    with pytest.raises(TypeError, match="give password or key"):
        encrypt_stream(src, dst)
    with pytest.raises(TypeError, match="not both"):
        encrypt_stream(src, dst, "pw", key=KEY)
    with pytest.raises(ValueError, match="key must be 32 bytes, got 16"):
        encrypt_stream(src, dst, key=bytes(16))
    with pytest.raises(ValueError, match="password must not be empty"):
        encrypt_stream(src, dst, "")
    with pytest.raises(ValueError, match="chunk_size"):
        encrypt_stream(src, dst, "pw", chunk_size=1000)
    with pytest.raises(ValueError, match="workers must be between 1 and 64, got 0"):
        encrypt_stream(src, dst, "pw", kdf=CHEAP, workers=0)
    with pytest.raises(TypeError, match="workers must be an int"):
        decrypt_stream(src, dst, "pw", workers="2")  # type: ignore[arg-type]
    assert dst.getvalue() == b"", "nothing written before arguments are checked"


@pytest.mark.parametrize("workers", [1, 2])
def test_pipes_both_ways(workers: int) -> None:
    """Non-seekable input and output: os.pipe with a feeder thread on each side."""
    data = os.urandom(5 * CHUNK + 77)

    def through_pipes(run: Callable[[io.RawIOBase, io.BytesIO], object], payload: bytes) -> bytes:
        r, w = os.pipe()
        feeder = threading.Thread(target=lambda: (os.write(w, payload), os.close(w)))
        feeder.start()
        out = io.BytesIO()
        with os.fdopen(r, "rb", buffering=0) as src:
            run(src, out)
        feeder.join()
        return out.getvalue()

    def enc(src: io.RawIOBase, out: io.BytesIO) -> object:
        return encrypt_stream(src, out, "pw", kdf=CHEAP, chunk_size=CHUNK, workers=workers)  # type: ignore[arg-type]

    def dec(src: io.RawIOBase, out: io.BytesIO) -> object:
        return decrypt_stream(src, out, "pw", workers=workers)  # type: ignore[arg-type]

    blob = through_pipes(enc, data)
    assert through_pipes(dec, blob) == data

    # Output into a pipe too, read back by a drain thread.
    r, w = os.pipe()
    got: list[bytes] = []
    drain = threading.Thread(target=lambda: got.append(os.fdopen(r, "rb").read()))
    drain.start()
    with os.fdopen(w, "wb", buffering=0) as dst:
        decrypt_stream(io.BytesIO(blob), dst, "pw", workers=workers)  # type: ignore[arg-type]
    drain.join()
    assert got == [data]


class ShortWrites(io.RawIOBase):
    """A raw sink that takes at most 1000 bytes per write, like a socket."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        take = bytes(b[:1000])
        self.data += take
        return len(take)


def test_short_writes_are_completed() -> None:
    data = os.urandom(3 * CHUNK + 5)
    sink = ShortWrites()
    encrypt_stream(io.BytesIO(data), sink, "pw", kdf=CHEAP, chunk_size=CHUNK, workers=2)  # type: ignore[arg-type]
    assert unseal(bytes(sink.data)) == data


def test_progress_reports_input_bytes() -> None:
    data = bytes(3 * CHUNK + 10)
    calls: list[tuple[int, int | None]] = []
    out = io.BytesIO()
    encrypt_stream(
        io.BytesIO(data),
        out,
        "pw",
        kdf=CHEAP,
        chunk_size=CHUNK,
        progress=lambda d, t: calls.append((d, t)),
        total=len(data),
    )
    assert calls == [
        (CHUNK, len(data)),
        (2 * CHUNK, len(data)),
        (3 * CHUNK, len(data)),
        (len(data), len(data)),
    ]
    calls.clear()
    blob = out.getvalue()
    decrypt_stream(io.BytesIO(blob), io.BytesIO(), "pw", progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (len(blob), None)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# --- damage: every case must raise StreamDamaged, with or without workers ---


def damaged(blob: bytes, workers: int) -> StreamDamaged:
    out = io.BytesIO()
    with pytest.raises(StreamDamaged) as info:
        decrypt_stream(io.BytesIO(blob), out, "pw", workers=workers)
    # Whatever was written is a verified prefix of whole chunks.
    assert len(out.getvalue()) % CHUNK == 0
    return info.value


def chunks_of(blob: bytes) -> tuple[bytes, list[bytes]]:
    h = header_size(blob)
    body = blob[h:]
    return blob[:h], [body[i : i + FULL] for i in range(0, len(body), FULL)]


BLOB_DATA = bytes(range(256)) * (4 * CHUNK // 256) + b"tail"
BLOB = seal(BLOB_DATA)  # 4 full chunks and a final one of 4 bytes


@pytest.mark.parametrize("workers", [1, 2])
def test_truncation_at_every_chunk_boundary(workers: int) -> None:
    head, chunks = chunks_of(BLOB)
    for keep in range(len(chunks)):
        err = damaged(head + b"".join(chunks[:keep]), workers)
        assert "truncated" in str(err)
        assert err.offset == len(head) + keep * FULL


@pytest.mark.parametrize("workers", [1, 2])
def test_truncation_inside_chunks(workers: int) -> None:
    h = header_size(BLOB)
    for cut in sorted(
        {h + 1, h + 100, h + FULL - 1, h + FULL + 17, len(BLOB) - 1, len(BLOB) - 16, len(BLOB) - 33}
    ):
        damaged(BLOB[:cut], workers)


@pytest.mark.parametrize("workers", [1, 2])
def test_dropped_repeated_reordered_chunks(workers: int) -> None:
    head, chunks = chunks_of(BLOB)
    cases = {
        "dropped": chunks[:1] + chunks[2:],
        "repeated": chunks[:2] + chunks[1:],
        "reordered": [chunks[1], chunks[0], *chunks[2:]],
        "final repeated": [*chunks, chunks[-1]],
        "final moved": [*chunks[:2], chunks[-1], *chunks[2:]],
    }
    for name, parts in cases.items():
        err = damaged(head + b"".join(parts), workers)
        assert err.offset >= len(head), name
    err = damaged(head + b"".join(cases["dropped"]), workers)
    assert err.offset == len(head) + FULL and str(err) == f"data damaged at byte {err.offset}"


@pytest.mark.parametrize("workers", [1, 2])
def test_chunk_spliced_from_another_stream_with_the_same_password(workers: int) -> None:
    other = seal(BLOB_DATA)
    head, chunks = chunks_of(BLOB)
    _, foreign = chunks_of(other)
    for i in range(len(chunks)):
        spliced = [*chunks[:i], foreign[i], *chunks[i + 1 :]]
        assert damaged(head + b"".join(spliced), workers).offset == len(head) + i * FULL
    # The other stream's header with this stream's chunks: header opens, chunks fail.
    other_head, _ = chunks_of(other)
    damaged(other_head + b"".join(chunks), workers)


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("extra", [b"\x00", b"x" * 16, b"y" * 64, b"z" * FULL])
def test_trailing_bytes_after_the_final_chunk(workers: int, extra: bytes) -> None:
    damaged(BLOB + extra, workers)


def test_trailing_bytes_after_a_full_size_final_chunk_are_named() -> None:
    data = bytes(CHUNK - 1)  # final chunk encrypts to exactly a full chunk's size
    blob = seal(data)
    err = damaged(blob + os.urandom(FULL), 1)
    assert "trailing data" in str(err)


@pytest.mark.parametrize("workers", [1, 2])
def test_bit_flips_sampled_over_header_and_chunks(workers: int) -> None:
    h = header_size(BLOB)
    positions = list(range(0, h, 7)) + list(range(h, len(BLOB), 613)) + [len(BLOB) - 1]
    for pos in positions:
        blob = bytearray(BLOB)
        blob[pos] ^= 0x01 << (pos % 8)
        with pytest.raises((HeaderError, StreamDamaged)) as info:
            decrypt_stream(io.BytesIO(bytes(blob)), io.BytesIO(), "pw", workers=workers)
        if pos < h:
            assert isinstance(info.value, HeaderError)
        else:
            assert isinstance(info.value, StreamDamaged)
            assert info.value.offset == h + (pos - h) // FULL * FULL


def test_bit_flips_exhaustive_on_a_tiny_stream() -> None:
    tiny = seal(b"hi", password="pw")
    h = header_size(tiny)
    for bit in range(h * 8, len(tiny) * 8):  # header bits are covered in test_stream
        blob = bytearray(tiny)
        blob[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(StreamDamaged) as info:
            decrypt_stream(io.BytesIO(bytes(blob)), io.BytesIO(), "pw", workers=1)
        assert info.value.offset == h


class RecordingReader(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        n = super().readinto(b)
        self.read_bytes += n
        return n


@pytest.mark.parametrize("workers", [1, 2])
def test_wrong_password_raises_before_any_payload_is_read(workers: int) -> None:
    src = RecordingReader(BLOB)
    out = io.BytesIO()
    with pytest.raises(HeaderError, match=r"^wrong password or damaged header$"):
        decrypt_stream(src, out, "not pw", workers=workers)
    assert src.read_bytes == header_size(BLOB)
    assert out.getvalue() == b""


def test_plaintext_of_a_failing_chunk_is_never_written() -> None:
    head, chunks = chunks_of(BLOB)
    bad = bytearray(chunks[2])
    bad[-1] ^= 1  # only the tag: ciphertext intact, so decrypting would "work"
    out = io.BytesIO()
    with pytest.raises(StreamDamaged):
        decrypt_stream(
            io.BytesIO(head + b"".join([*chunks[:2], bytes(bad), *chunks[3:]])),
            out,
            "pw",
            workers=2,
        )
    assert out.getvalue() == BLOB_DATA[: 2 * CHUNK]


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=3 * CHUNK + 50), workers=st.sampled_from([1, 2]))
def test_round_trip_property(data: bytes, workers: int) -> None:
    assert unseal(seal(data, workers), 3 - workers) == data


class NotReady(io.RawIOBase):
    """A non-blocking source that has no data yet (readinto returns None)."""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> None:  # type: ignore[override]
        return None


def test_non_blocking_source_is_an_error_not_an_end() -> None:
    out = io.BytesIO()
    with pytest.raises(BlockingIOError):
        encrypt_stream(NotReady(), out, key=KEY, chunk_size=CHUNK)  # type: ignore[arg-type]
    with pytest.raises(StreamDamaged, match="truncated"):
        decrypt_stream(io.BytesIO(out.getvalue()), io.BytesIO(), key=KEY)


# --- caller mistakes name the argument (review: these raised AttributeError) ---


def _sealed_stream() -> bytes:
    out = io.BytesIO()
    aes_hmac.encrypt_stream(io.BytesIO(b"x"), out, key=bytes(32))
    return out.getvalue()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: aes_hmac.decrypt_stream(
                io.BytesIO(_sealed_stream()), io.BytesIO(), key=bytes(32), limits="x"
            ),
            "limits must be KdfLimits, not str",
        ),
        (
            lambda: aes_hmac.encrypt_stream(io.BytesIO(b"x"), io.BytesIO(), "pw", kdf="x"),
            f"kdf must be {KDF_CLASS_NAMES}, not str",
        ),
        (
            lambda: aes_hmac.decrypt_stream(None, io.BytesIO(), key=bytes(32)),
            "src must be a binary file object with read\\(\\), not NoneType",
        ),
        (
            lambda: aes_hmac.encrypt_stream(io.BytesIO(b"x"), b"", key=bytes(32)),
            "dst must be a binary file object with write\\(\\), not bytes",
        ),
        (
            lambda: aes_hmac.open(io.BytesIO(), "wb", password="pw", kdf="x"),
            f"kdf must be {KDF_CLASS_NAMES}, not str",
        ),
        (
            lambda: aes_hmac.open(12345, password="pw"),
            "file must be a binary file object with read\\(\\), not int",
        ),
        (
            lambda: aes_hmac.open(io.BytesIO(_sealed_stream()), key=bytes(32), limits=3),
            "limits must be KdfLimits, not int",
        ),
        (
            lambda: aes_hmac.inspect_stream(b"AESHMAC"),
            "file must be a path .* or a binary file object with read\\(\\), not bytes",
        ),
    ],
)
def test_caller_mistakes_raise_type_error_naming_the_argument(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        call()


# --- workers writing at known offsets: a plain regular file is detected by the engine ---


def seal_at_offsets(data: bytes, path: Path, workers: int) -> bytes:
    with path.open("wb") as out:
        n = encrypt_stream(io.BytesIO(data), out, key=KEY, chunk_size=CHUNK, workers=workers)
        out.flush()
        assert out.tell() == path.stat().st_size
    assert n == len(data)
    return path.read_bytes()


def unseal_at_offsets(blob: bytes, path: Path, workers: int, password: str | None = None) -> int:
    secret = {"key": KEY} if password is None else {"password": password}
    with path.open("wb") as out:
        return decrypt_stream(io.BytesIO(blob), out, workers=workers, **secret)


@pytest.mark.parametrize("workers", WORKERS)
@pytest.mark.parametrize("size", SIZES)
def test_offset_writes_round_trip_with_exact_lengths(
    size: int, workers: int, tmp_path: Path
) -> None:
    data = os.urandom(size)
    blob = seal_at_offsets(data, tmp_path / "c", workers)
    ref = io.BytesIO()
    encrypt_stream(io.BytesIO(data), ref, key=KEY, chunk_size=CHUNK, workers=1)
    assert len(blob) == len(ref.getvalue())
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, key=KEY, workers=1)
    assert out.getvalue() == data
    assert unseal_at_offsets(blob, tmp_path / "p", workers) == size
    assert (tmp_path / "p").read_bytes() == data


def test_offset_writes_raise_what_the_stream_raises(tmp_path: Path) -> None:
    head, chunks = chunks_of(BLOB)
    _, foreign = chunks_of(seal(BLOB_DATA))
    cases = [head + b"".join(chunks[:keep]) for keep in range(len(chunks))]
    cases += [head + b"".join([*chunks[:i], foreign[i], *chunks[i + 1 :]]) for i in range(5)]
    cases += [BLOB + b"z" * FULL, BLOB[:-1], head + b"".join(chunks[:1] + chunks[2:])]
    for blob in cases:
        expected = damaged(blob, 1)
        for workers in (2, 3):
            with pytest.raises(StreamDamaged) as info:
                unseal_at_offsets(blob, tmp_path / "p", workers, password="pw")
            assert (str(info.value), info.value.offset) == (str(expected), expected.offset)


@pytest.mark.parametrize("workers", [2, 3])
def test_offset_writes_hold_only_chunks_before_the_failing_one(
    tmp_path: Path, workers: int
) -> None:
    """A user's file gets in-order semantics: a chunk is written only after every earlier
    chunk verified, so chunks after a damaged one never reach it."""
    head, chunks = chunks_of(BLOB)
    bad = bytearray(chunks[2])
    bad[-1] ^= 1  # only the tag: ciphertext intact, so decrypting would "work"
    blob = head + b"".join([*chunks[:2], bytes(bad), *chunks[3:]])
    with (tmp_path / "p").open("wb") as out:
        with pytest.raises(StreamDamaged):
            decrypt_stream(io.BytesIO(blob), out, "pw", workers=workers)
        assert out.tell() == 2 * CHUNK  # the position ends after what was released
    assert (tmp_path / "p").read_bytes() == BLOB_DATA[: 2 * CHUNK]


@pytest.mark.parametrize("workers", [1, 2])
def test_user_file_is_written_from_its_position_and_left_after_the_stream(
    tmp_path: Path, workers: int
) -> None:
    """Bytes the caller wrote (still in Python's buffer) come first; the caller can go on
    writing after the stream; a file opened for update keeps what lies beyond."""
    data = os.urandom(5 * CHUNK + 7)
    path = tmp_path / "c"
    with path.open("wb") as out:
        out.write(b"before")
        encrypt_stream(io.BytesIO(data), out, key=KEY, chunk_size=CHUNK, workers=workers)
        out.write(b"after")
    raw = path.read_bytes()
    assert raw.startswith(b"before") and raw.endswith(b"after")
    plain = io.BytesIO()
    decrypt_stream(io.BytesIO(raw[6:-5]), plain, key=KEY, workers=1)
    assert plain.getvalue() == data
    path.write_bytes(b"x" * (len(data) + 100))
    with path.open("r+b") as out:
        out.seek(10)
        n = decrypt_stream(io.BytesIO(raw[6:-5]), out, key=KEY, workers=workers)
        assert out.tell() == 10 + n
    assert path.read_bytes() == b"x" * 10 + data + b"x" * 90


def test_appending_file_gets_every_byte_in_order(tmp_path: Path) -> None:
    """``pwrite`` ignores offsets under O_APPEND, so append mode takes the in-order path."""
    path = tmp_path / "c"
    path.write_bytes(b"head")
    data = os.urandom(4 * CHUNK + 1)
    with path.open("ab") as out:
        encrypt_stream(io.BytesIO(data), out, key=KEY, chunk_size=CHUNK, workers=2)
    plain = io.BytesIO()
    decrypt_stream(io.BytesIO(path.read_bytes()[4:]), plain, key=KEY)
    assert plain.getvalue() == data


class Wrapper(io.BufferedWriter):
    """A subclass of a plain file type: its ``write`` must see every byte (no offset writes)."""

    seen = 0

    def write(self, b: object) -> int:  # type: ignore[override]
        n = super().write(b)  # type: ignore[arg-type]
        self.seen += n
        return n


def test_file_object_subclasses_see_every_write(tmp_path: Path) -> None:
    raw = io.FileIO(tmp_path / "c", "w")
    with Wrapper(raw) as out:
        encrypt_stream(io.BytesIO(bytes(3 * CHUNK)), out, key=KEY, chunk_size=CHUNK, workers=2)
        out.flush()
        assert out.seen == (tmp_path / "c").stat().st_size > 3 * CHUNK


@pytest.mark.parametrize("missing", ["pwrite", "posix_fadvise"])
@pytest.mark.parametrize("workers", [2, 3])
def test_platforms_without_pwrite_or_fadvise_take_the_portable_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, missing: str, workers: int
) -> None:
    """Windows lacks both, macOS lacks posix_fadvise: neither may raise AttributeError."""
    monkeypatch.delattr(os, missing, raising=False)
    data = os.urandom(6 * CHUNK + 5)
    blob = seal_at_offsets(data, tmp_path / "c", workers)
    assert unseal_at_offsets(blob, tmp_path / "p", workers) == len(data)
    assert (tmp_path / "p").read_bytes() == data
    aes_hmac.encrypt_file(tmp_path / "p", tmp_path / "f", key=KEY, workers=workers)
    aes_hmac.decrypt_file(tmp_path / "f", tmp_path / "g", key=KEY, workers=workers)
    assert (tmp_path / "g").read_bytes() == data
    with aes_hmac.open(tmp_path / "o", "wb", key=KEY) as w:
        w.write(data)
    with aes_hmac.open(tmp_path / "o", key=KEY) as r:
        assert r.read() == data


@pytest.mark.parametrize("workers", [2, 3])
def test_a_failing_read_is_raised_and_nothing_after_it_is_written(workers: int) -> None:
    class Broken(io.BytesIO):
        def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
            if self.tell() >= 3 * CHUNK:
                raise OSError("disk on fire")
            return super().readinto(b)

    out = io.BytesIO()
    with pytest.raises(OSError, match="disk on fire"):
        encrypt_stream(Broken(bytes(8 * CHUNK)), out, key=KEY, chunk_size=CHUNK, workers=workers)
    # The three chunks read before the failure, in order, and nothing after them.
    assert len(out.getvalue()) - header_size(out.getvalue()) == 3 * FULL


def test_progress_raising_stops_every_worker() -> None:
    calls = 0

    def progress(done: int, total: int | None) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encrypt_stream(
            io.BytesIO(bytes(20 * CHUNK)),
            io.BytesIO(),
            key=KEY,
            chunk_size=CHUNK,
            workers=3,
            progress=progress,
        )
    assert calls == 2
    assert not [t for t in threading.enumerate() if t.name.startswith("aes-hmac")]


# --- issue 12 #7: messages that say what is wrong ---


def _stream_of(size: int, chunk: int = CHUNK) -> bytes:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(os.urandom(size)), out, key=KEY, chunk_size=chunk, workers=1)
    return out.getvalue()


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("size", [0, 100, CHUNK - 1, CHUNK, 3 * CHUNK + 5])
@pytest.mark.parametrize("extra", [1, 5, 16, 48, CHUNK, CHUNK + 100, 3 * CHUNK])
def test_bytes_after_the_final_chunk_are_trailing_data(size: int, extra: int, workers: int) -> None:
    """5 bytes appended said "data truncated at byte N", 16 said "damaged": both trailing."""
    stream = _stream_of(size)
    header = read_header(io.BytesIO(stream).read).size
    final_at = header + size // CHUNK * (CHUNK + CHUNK_OVERHEAD)
    with pytest.raises(StreamDamaged) as info:
        decrypt_stream(
            io.BytesIO(stream + os.urandom(extra)), io.BytesIO(), key=KEY, workers=workers
        )
    assert str(info.value) == f"trailing data after the final chunk at byte {final_at}"
    assert info.value.offset == final_at


@pytest.mark.parametrize("workers", [1, 2])
def test_damage_is_still_damage_and_cuts_still_truncation(workers: int) -> None:
    stream = _stream_of(3 * CHUNK + 100)
    header = read_header(io.BytesIO(stream).read).size
    flipped = bytearray(stream)
    flipped[-40] ^= 1
    cases = {
        bytes(flipped): "data damaged at byte",
        stream[:-5]: "data truncated at byte",
        stream[:-16]: "data damaged at byte",
        stream[: header + CHUNK + CHUNK_OVERHEAD]: "data truncated after byte",
    }
    for bad, message in cases.items():
        with pytest.raises(StreamDamaged, match=message):
            decrypt_stream(io.BytesIO(bad), io.BytesIO(), key=KEY, workers=workers)


def test_trailing_data_search_is_bounded() -> None:
    """Only up to 64 KiB after the final chunk, within the chunk that failed, is searched (a
    bounded cost on a failure path); a longer run of trailing bytes there reads as damage."""
    chunk = 1 << 20
    stream = _stream_of(100, chunk)
    for extra, message in ((65_536, "trailing data"), (65_536 + 16, "data damaged")):
        with pytest.raises(StreamDamaged, match=message):
            decrypt_stream(io.BytesIO(stream + bytes(extra)), io.BytesIO(), key=KEY)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"^failed to read header: not an aes-hmac stream \(0 bytes, too short\)$"),
        (b"hi", r"^failed to read header: not an aes-hmac stream \(2 bytes, too short\)$"),
        (b"AESHMAC", r"^failed to read header: truncated$"),
        (b"AESHMAC\x00\x01\x0c" + bytes(20), r"^failed to read header: truncated$"),
        (b"GIF89a" + bytes(100), r"^failed to read header: not an aes-hmac stream$"),
    ],
)
def test_inputs_that_are_not_streams_say_so(data: bytes, message: str) -> None:
    with pytest.raises(HeaderError, match=message):
        decrypt_stream(io.BytesIO(data), io.BytesIO(), "pw")


def test_a_token_given_as_a_stream_is_recognised() -> None:
    token = aes_hmac.encrypt(b"secret", "pw", kdf=PBKDF2(iterations=1000))
    for data in (token.encode(), aes_hmac.token_to_bytes(token)):
        with pytest.raises(HeaderError, match=r"^failed to read header: this is an aes-hmac token"):
            decrypt_stream(io.BytesIO(data), io.BytesIO(), "pw")


def test_the_wrong_kind_of_secret_says_what_the_stream_opens_with() -> None:
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(b"x"), out, "pw", kdf=PBKDF2(iterations=1000))
    with pytest.raises(HeaderError, match=r"^no key slot: this stream opens with a password$"):
        decrypt_stream(io.BytesIO(out.getvalue()), io.BytesIO(), key=KEY)
    with pytest.raises(HeaderError, match=r"^no password slot: this stream opens with a key$"):
        decrypt_stream(io.BytesIO(_stream_of(1)), io.BytesIO(), "pw")


def test_text_mode_files_are_refused_by_name(tmp_path: Path) -> None:
    """A text-mode dst gave "a bytes-like object is required", naming nothing."""
    with (tmp_path / "out").open("w") as text:
        with pytest.raises(TypeError, match=r"^dst must be a binary file object, not a text one"):
            encrypt_stream(io.BytesIO(b"x"), text, key=KEY)  # type: ignore[arg-type]
    with (tmp_path / "out").open("r") as text:
        with pytest.raises(TypeError, match=r"^src must be a binary file object, not a text one"):
            decrypt_stream(text, io.BytesIO(), key=KEY)  # type: ignore[arg-type]


# --- the header read once: read_stream_header, then decrypt_stream(header=) ---


def test_read_stream_header_reads_exactly_the_header_and_decrypt_goes_on_from_it() -> None:
    """A pipe cannot be read twice: the header that was read is handed on, not read again."""
    data = os.urandom(3 * CHUNK + 5)
    stream = seal(data)
    r, w = os.pipe()
    os.write(w, stream)  # well under a pipe's buffer
    os.close(w)
    with open(r, "rb", buffering=0) as src:
        header = aes_hmac.read_stream_header(src)
        assert header.info == aes_hmac.inspect_stream(io.BytesIO(stream))
        assert "slot(s)" in repr(header)
        out = io.BytesIO()
        assert decrypt_stream(src, out, "pw", header=header, workers=2) == len(data)
    assert out.getvalue() == data


def test_a_header_of_another_stream_opens_nothing() -> None:
    """The header handed on is authenticated all the same, and chunks are bound to its stream
    id: another stream's header (same password) fails at the first chunk, writing nothing."""
    first, second = seal(b"a" * CHUNK), seal(b"b" * CHUNK)
    header = aes_hmac.read_stream_header(io.BytesIO(first))
    src = io.BytesIO(second)
    aes_hmac.read_stream_header(src)
    out = io.BytesIO()
    with pytest.raises(StreamDamaged, match="data damaged at byte"):
        decrypt_stream(src, out, "pw", header=header, workers=1)
    assert out.getvalue() == b""


def test_header_must_be_a_stream_header() -> None:
    stream = seal(b"x")
    with pytest.raises(TypeError, match="header must be a StreamHeader from read_stream_header"):
        decrypt_stream(io.BytesIO(stream), io.BytesIO(), "pw", header=stream)  # type: ignore[arg-type]
    with pytest.raises(HeaderError, match="this is an aes-hmac token, not a stream"):
        aes_hmac.read_stream_header(io.BytesIO(aes_hmac.encrypt(b"x", "pw", kdf=CHEAP).encode()))
