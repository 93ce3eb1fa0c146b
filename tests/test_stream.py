"""Tests of the stream format layer: vectors byte for byte, header parsing, slots, chunk tags."""

from __future__ import annotations

import io
import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

from aes_hmac import PBKDF2, Argon2id, HeaderError, KdfLimits, Scrypt, StreamDamaged
from aes_hmac._kdf import Kdf
from aes_hmac._primitives import CbcHmacInto, hmac_sha256
from aes_hmac._stream.engine import seal_stream
from aes_hmac._stream.format import (
    CHUNK_OVERHEAD,
    MAGIC,
    MAX_SLOTS,
    PREFIX_SIZE,
    ChunkCodec,
    Credential,
    chunk_counter,
    chunk_log2_of,
    encode_prefix,
    open_header,
    read_header,
    seal_header,
    seal_slot,
)

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parent / "vectors" / "stream_v1.json").read_text()
)["vectors"]
KDFS = {"PBKDF2": PBKDF2, "Scrypt": Scrypt, "Argon2id": Argon2id}
CHEAP = PBKDF2(iterations=1000)
STREAM_ID = bytes(range(32))
FILE_KEY = bytes(range(32, 64))


def kdf_of(spec: dict[str, Any] | None) -> Kdf | None:
    if spec is None:
        return None
    params = {k: v for k, v in spec.items() if k != "name"}
    kdf: Kdf = KDFS[spec["name"]](**params)
    return kdf


def credential_of(slot: dict[str, Any]) -> Credential:
    if slot["kind"] == "key":
        return Credential(bytes.fromhex(slot["key"]), None)
    return Credential(slot["password"].encode(), kdf_of(slot["kdf"]))


def seal_vector(v: dict[str, Any]) -> bytes:
    """Recompute a vector through the engine's private hook with every random value fixed."""
    ivs = iter(bytes.fromhex(iv) for iv in v["chunk_ivs"])
    out = io.BytesIO()
    seal_stream(
        io.BytesIO(bytes.fromhex(v["plaintext"])),
        out,
        [credential_of(s) for s in v["slots"]],
        chunk_log2=chunk_log2_of(v["chunk_size"]),
        stream_id=bytes.fromhex(v["stream_id"]),
        file_key=bytes.fromhex(v["file_key"]),
        salts=[bytes.fromhex(s.get("salt", "")) for s in v["slots"]],
        slot_ivs=[bytes.fromhex(s["iv"]) for s in v["slots"]],
        next_iv=lambda: next(ivs),
    )
    assert next(ivs, None) is None, "every chunk IV of the vector is used"
    return out.getvalue()


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_recomputed_byte_for_byte(v: dict[str, Any]) -> None:
    assert seal_vector(v).hex() == v["stream"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_every_slot_opens_to_the_file_key(v: dict[str, Any]) -> None:
    header = read_header(io.BytesIO(bytes.fromhex(v["stream"])).read)
    assert header.stream_id.hex() == v["stream_id"]
    assert header.chunk_size == v["chunk_size"]
    for index, slot in enumerate(v["slots"]):
        file_key, opened = open_header(header, credential_of(slot), KdfLimits())
        assert (file_key.hex(), opened) == (v["file_key"], index)


def test_vector_layout_matches_format_md() -> None:
    v = VECTORS[1]  # raw key slot, 5000 bytes in chunks of 4096
    data = bytes.fromhex(v["stream"])
    assert data[:8] == MAGIC == b"AESHMAC\x00"
    assert data[8] == 1 and data[9] == 12
    assert data[10:42].hex() == v["stream_id"]
    assert data[42] == 1  # slot count
    slot_size = 1 + 16 + 32 + 32  # raw kdf id, iv, wrapped key, tag
    header_size = PREFIX_SIZE + 1 + slot_size + 32
    assert read_header(io.BytesIO(data).read).size == header_size
    chunk0 = data[header_size : header_size + 4096 + CHUNK_OVERHEAD]
    assert chunk0[:16].hex() == v["chunk_ivs"][0]
    final = data[header_size + len(chunk0) :]
    assert len(final) == 16 + (5000 - 4096 + 16 - (5000 - 4096) % 16) + 32


def test_chunk_counter_is_64_bit_at_the_2_to_32_boundary() -> None:
    assert chunk_counter(2**32 - 1, False) == bytes.fromhex("00000000ffffffff") + b"\x00"
    assert chunk_counter(2**32, False) == bytes.fromhex("0000000100000000") + b"\x00"
    assert chunk_counter(2**32, True) == bytes.fromhex("0000000100000000") + b"\x01"
    assert chunk_counter(2**64 - 1, True)[:8] == b"\xff" * 8
    with pytest.raises(ValueError, match="64 bits"):
        chunk_counter(2**64, False)


def test_chunk_tags_differ_across_the_2_to_32_boundary() -> None:
    """Index 2**32 must not alias index 0, as a 32-bit counter would."""
    codec = ChunkCodec(FILE_KEY, encode_prefix(12, STREAM_ID), 4096)
    iv, data = bytes(16), bytes(4096)
    sealed = {}
    for index in (0, 2**32 - 1, 2**32, 2**32 + 1):
        out = bytearray(4096 + CHUNK_OVERHEAD + 15)
        n = codec.seal_into(index, iv, data, out)
        sealed[index] = bytes(out[:n])
    assert len(set(sealed.values())) == 4
    out = bytearray(4096 + 15)
    assert codec.open_into(2**32, 0, sealed[2**32], out) == 4096
    with pytest.raises(StreamDamaged):
        codec.open_into(0, 0, sealed[2**32], out)


def test_final_chunk_flag_is_authenticated() -> None:
    codec = ChunkCodec(FILE_KEY, encode_prefix(12, STREAM_ID), 4096)
    final = codec.seal_final(3, bytes(16), b"x" * 10)
    assert codec.open_final(3, 0, final) == b"x" * 10
    assert codec.verifies(3, True, final) and not codec.verifies(3, False, final)


@pytest.mark.parametrize("size", [0, -4096, 1, 4095, 4097, 2**25, 2**31, 3 << 12])
def test_chunk_size_must_be_a_power_of_two_in_range(size: int) -> None:
    with pytest.raises(ValueError, match="chunk_size must be a power of two"):
        chunk_log2_of(size)


def test_chunk_size_type_checked() -> None:
    with pytest.raises(TypeError, match="chunk_size"):
        chunk_log2_of(True)


class RecordingReader(io.BytesIO):
    """Records every read size, to prove nothing is read (allocated) on an unchecked length."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.sizes: list[int] = []

    def read(self, size: int | None = -1, /) -> bytes:
        self.sizes.append(-1 if size is None else size)
        return super().read(size)


def valid_header(kdf: Kdf | None = CHEAP, slots: int = 1) -> bytes:
    prefix = encode_prefix(12, STREAM_ID)
    credential = Credential(b"pw", kdf)
    sealed = [seal_slot(prefix, credential, FILE_KEY, bytes(16), bytes(16)) for _ in range(slots)]
    return seal_header(12, STREAM_ID, FILE_KEY, sealed)


HOSTILE = {
    "bad magic": (b"AESHMAC\x01" + valid_header()[8:], "not an aes-hmac stream"),
    "token byte": (b"\xa5" + valid_header()[1:], "this is an aes-hmac token, not a stream"),
    "token text": (b"pQEB" + b"A" * 120, "this is an aes-hmac token, not a stream"),
    "version 2": (MAGIC + b"\x02" + valid_header()[9:], "unsupported version 2"),
    "chunk 2**31": (MAGIC + b"\x01\x1f" + valid_header()[10:], "bad chunk size exponent 31"),
    "chunk 2**11": (MAGIC + b"\x01\x0b" + valid_header()[10:], "bad chunk size exponent 11"),
    "chunk 2**255": (MAGIC + b"\x01\xff" + valid_header()[10:], "bad chunk size exponent 255"),
    "zero slots": (valid_header()[:PREFIX_SIZE] + b"\x00", "bad slot count 0"),
    "255 slots": (valid_header()[:PREFIX_SIZE] + b"\xff" + b"\x01" * 4000, "bad slot count 255"),
    "kdf id 9": (valid_header()[: PREFIX_SIZE + 1] + b"\x09" + bytes(200), "unknown kdf id 9"),
    "pbkdf2 zero iterations": (
        valid_header()[: PREFIX_SIZE + 1] + b"\x01" + bytes(200),
        "iterations must be between",
    ),
    "truncated": (valid_header()[:60], "truncated"),
    "empty": (b"", r"not an aes-hmac stream \(0 bytes, too short\)"),
    "short text": (b"hello\n", r"not an aes-hmac stream \(6 bytes, too short\)"),
    "cut in the magic": (MAGIC[:5], "failed to read header: truncated$"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_header_refused_before_allocation(name: str) -> None:
    data, message = HOSTILE[name]
    src = RecordingReader(data)
    with pytest.raises(HeaderError, match=message):
        read_header(src.read)
    assert max(src.sizes) <= PREFIX_SIZE + 1 + 128, "no read larger than one slot"


def test_version_dispatch_is_one_registry() -> None:
    """A new version is one parser in FORMATS; an unknown version never reaches a parser."""
    from aes_hmac._stream import format as _stream

    seen: list[bytes] = []

    def parse_v2(start: bytes, read: Any) -> Any:
        seen.append(start + read(3))
        return "v2 header"

    data = MAGIC + b"\x02abc"
    with pytest.raises(HeaderError, match="unsupported version 2"):
        read_header(io.BytesIO(data).read)
    _stream.FORMATS[2] = parse_v2
    try:
        assert read_header(io.BytesIO(data).read) == "v2 header"  # type: ignore[comparison-overlap]
    finally:
        del _stream.FORMATS[2]
    assert seen == [data]


def test_a_header_reports_the_version_it_was_read_as() -> None:
    """``info().version`` is the header's own version byte, not the one this library writes."""
    from aes_hmac._stream import format as _stream

    prefix = encode_prefix(12, STREAM_ID)
    slot = seal_slot(prefix, Credential(bytes(32), None), FILE_KEY, b"", bytes(16))
    data = bytearray(seal_header(12, STREAM_ID, FILE_KEY, [slot]))
    assert read_header(io.BytesIO(bytes(data)).read).info().version == 1
    data[len(MAGIC)] = 2  # a later version that kept v1's layout
    _stream.FORMATS[2] = _stream.parse_header_v1
    try:
        assert read_header(io.BytesIO(bytes(data)).read).info().version == 2
    finally:
        del _stream.FORMATS[2]


def test_max_slots_is_enforced_on_write_and_read() -> None:
    prefix = encode_prefix(12, STREAM_ID)
    slot = seal_slot(prefix, Credential(bytes(32), None), FILE_KEY, b"", bytes(16))
    with pytest.raises(ValueError, match="1 to 16 key slots"):
        seal_header(12, STREAM_ID, FILE_KEY, [slot] * (MAX_SLOTS + 1))
    header = seal_header(12, STREAM_ID, FILE_KEY, [slot] * MAX_SLOTS)
    assert len(read_header(io.BytesIO(header).read).slots) == MAX_SLOTS
    forged = header[:PREFIX_SIZE] + bytes((MAX_SLOTS + 1,)) + header[PREFIX_SIZE + 1 :]
    with pytest.raises(HeaderError, match="bad slot count 17"):
        read_header(io.BytesIO(forged + slot).read)


def test_kdf_limits_checked_before_any_kdf_work() -> None:
    # A header naming 2**31-1 PBKDF2 iterations (minutes of work): the limit must stop it before
    # deriving. The parameters are patched in, since sealing such a slot would run that KDF.
    data = bytearray(valid_header())
    params = PREFIX_SIZE + 2
    data[params : params + 4] = b"\x7f\xff\xff\xff"
    header = read_header(io.BytesIO(bytes(data)).read)
    assert header.slots[0].kdf == PBKDF2(2**31 - 1)
    with pytest.raises(HeaderError, match="exceed the limit"):
        open_header(header, Credential(b"pw", CHEAP), KdfLimits())


def test_wrong_password_and_damaged_header_are_one_error() -> None:
    data = valid_header()
    header = read_header(io.BytesIO(data).read)
    with pytest.raises(HeaderError, match=r"^wrong password or damaged header$"):
        open_header(header, Credential(b"wrong", CHEAP), KdfLimits())
    with pytest.raises(HeaderError, match=r"^wrong password or damaged header$"):
        open_header(header, Credential(bytes(32), None), KdfLimits())
    assert open_header(header, Credential(b"pw", CHEAP), KdfLimits())[0] == FILE_KEY


def test_every_header_bit_flip_with_the_right_password_is_caught() -> None:
    data = valid_header(slots=2)
    for bit in range(len(data) * 8):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(HeaderError):
            header = read_header(io.BytesIO(bytes(damaged)).read)
            open_header(header, Credential(b"pw", CHEAP), KdfLimits())


def test_slot_is_bound_to_the_stream_id() -> None:
    other = encode_prefix(12, bytes(32))
    slot = seal_slot(other, Credential(b"pw", CHEAP), FILE_KEY, bytes(16), bytes(16))
    header = read_header(io.BytesIO(seal_header(12, STREAM_ID, FILE_KEY, [slot])).read)
    with pytest.raises(HeaderError, match="wrong password"):
        open_header(header, Credential(b"pw", CHEAP), KdfLimits())


def test_seal_slot_checks_sizes() -> None:
    prefix = encode_prefix(12, STREAM_ID)
    credential = Credential(b"pw", CHEAP)
    with pytest.raises(ValueError, match="file_key must be 32 bytes, got 31"):
        seal_slot(prefix, credential, bytes(31), bytes(16), bytes(16))
    with pytest.raises(ValueError, match="iv must be 16 bytes, got 15"):
        seal_slot(prefix, credential, FILE_KEY, bytes(16), bytes(15))
    with pytest.raises(ValueError, match="salt must be 16 bytes, got 0"):
        seal_slot(prefix, credential, FILE_KEY, b"", bytes(16))
    with pytest.raises(ValueError, match="stream_id must be 32 bytes"):
        encode_prefix(12, bytes(8))


def test_credential_repr_hides_the_secret() -> None:
    assert "hunter2" not in repr(Credential(b"hunter2", CHEAP))
    assert "hunter2" not in repr(ChunkCodec(FILE_KEY, encode_prefix(12, STREAM_ID), 4096))
    assert FILE_KEY.hex() not in repr(ChunkCodec(FILE_KEY, encode_prefix(12, STREAM_ID), 4096))


def test_slot_info_shows_kdfs_without_a_password() -> None:
    data = bytes.fromhex(VECTORS[2]["stream"])
    info = read_header(io.BytesIO(data).read).info()
    assert info.version == 1 and info.chunk_size == 4096
    assert [s.kdf for s in info.slots] == [CHEAP, Scrypt(4, 1, 1), Argon2id(1, 8, 1)]
    assert struct.unpack(">B", data[PREFIX_SIZE : PREFIX_SIZE + 1]) == (3,)


def test_fast_chunk_mac_is_plain_hmac_sha256() -> None:
    """The GIL-releasing tag path must equal the reference HMAC on buffers of every kind."""

    mac_key = bytes(range(100, 132))
    fast = CbcHmacInto(FILE_KEY, mac_key)
    data = bytearray(os.urandom(5000))
    expected = hmac_sha256(mac_key, b"ab", bytes(data))
    assert fast.tag(b"ab", data) == expected
    assert fast.tag(memoryview(b"a"), b"b", memoryview(data)) == expected
    assert fast.verify(expected, b"ab", data)
    assert not fast.verify(bytes(32), b"ab", data)
