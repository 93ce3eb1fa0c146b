"""The independent decoder (written from docs/FORMAT.md only) against the vectors and the library.

The library is used here only to MAKE tokens and streams, and as the other side of differential
checks: on damaged input both must refuse with the same message, on good input both must agree.
"""

from __future__ import annotations

import base64
import io
import struct
from pathlib import Path
from typing import Any

import pytest
from _vectors import cases, unhex
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_kdf import INSTANCES

import aes_hmac
from aes_hmac import PBKDF2, Argon2id, KdfLimits, ManifestError, Scrypt
from aes_hmac._files import manifest as _manifest
from aes_hmac._kdf import KDFS, PARAMS_SIZE

from .decoder import (
    FORMAT_MD,
    KDF_TABLE,
    MANIFEST_NAME,
    PARAM_SIZES,
    PBKDF2_FAMILY,
    FormatError,
    Limits,
    _kdf_table,
    check_folder,
    decode_manifest,
    decode_stream,
    decode_token,
    derive,
    parse_kdf,
    parse_manifest,
    unseal_manifest,
)

CHEAP_KDFS = [cheapest for _, cheapest in INSTANCES.values()]
"""Every registered KDF at its cheapest valid parameters (``test_kdf`` keeps one per KDF)."""
CHUNK = 4096
KEY = bytes(range(32))
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _credential(case: dict[str, Any]) -> dict[str, Any]:
    """The decoder's keyword for a token vector: a raw key or a password."""
    if case["kdf"] is None:
        return {"key": unhex(case["key"])}
    return {"password": case["password"]}


def _ad(case: dict[str, Any]) -> bytes | None:
    value = case["associated_data"]
    return None if value is None else unhex(value)


@pytest.mark.parametrize(("group", "case"), cases("token_valid.json"))
def test_valid_token_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    expected = case["text"] if "text" in case else unhex(case["data_hex"])
    for form in (case["token"], unhex(case["token_hex"])):
        assert decode_token(form, associated_data=_ad(case), **_credential(case)) == expected


@pytest.mark.parametrize(("group", "case"), cases("token_invalid.json"))
def test_invalid_token_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    limits = Limits(**case.get("limits", {}))
    with pytest.raises(FormatError) as info:
        decode_token(case["token"], associated_data=_ad(case), limits=limits, **_credential(case))
    assert str(info.value) == case["error"]


@pytest.mark.parametrize(("group", "case"), cases("compat_tuple.json"))
def test_design_note_tuple_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    """FORMAT.md 2.1: the tuple is a PBKDF2 token split apart; put it back together and decode."""
    token = (
        bytes([0xA5, 1, 1])
        + struct.pack(">I", case["iterations"])
        + unhex(case["salt"])
        + unhex(case["iv"])
        + base64.b64decode(case["ciphertext"], validate=True)
        + unhex(case["mac"])
    )
    expected = case["text"] if "text" in case else unhex(case["data_hex"])
    assert decode_token(token, password=case["password"], associated_data=_ad(case)) == expected


@pytest.mark.parametrize(("group", "case"), cases("stream_v1.json", key="vectors"))
def test_stream_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    stream = unhex(case["stream"])
    for slot in case["slots"]:
        if slot["kind"] == "key":
            plain = decode_stream(stream, key=unhex(slot["key"]))
        else:
            plain = decode_stream(stream, password=slot["password"])
        assert plain == unhex(case["plaintext"])


@pytest.mark.parametrize(("group", "case"), cases("stream_v1.json", key="vectors"))
def test_stream_vectors_wrong_secret(group: dict[str, Any], case: dict[str, Any]) -> None:
    stream = unhex(case["stream"])
    kinds = {slot["kind"] for slot in case["slots"]}
    wrong = r"^wrong password or damaged header$"
    with pytest.raises(FormatError, match=wrong if "password" in kinds else r"^no password slot"):
        decode_stream(stream, password="not the password")
    with pytest.raises(FormatError, match=wrong if "key" in kinds else r"^no key slot"):
        decode_stream(stream, key=bytes(32))


@FAST
@given(
    data=st.one_of(st.binary(max_size=100), st.text(max_size=50)),
    ad=st.one_of(st.none(), st.binary(max_size=20)),
    kdf=st.sampled_from(CHEAP_KDFS),
)
def test_library_tokens_decode(data: bytes | str, ad: bytes | None, kdf: Any) -> None:
    raw = aes_hmac.Key(KEY).encrypt(data, associated_data=ad)
    assert decode_token(raw, key=KEY, associated_data=ad) == data
    pw_token = aes_hmac.encrypt(data, "pässwörd", kdf=kdf, associated_data=ad)
    assert decode_token(pw_token, password="pa\u0308sswo\u0308rd", associated_data=ad) == data
    binary = aes_hmac.token_to_bytes(pw_token)
    assert decode_token(binary, password="pässwörd", associated_data=ad) == data


def test_bulk_mode_tokens_decode() -> None:
    bulk = aes_hmac.PasswordKey("bulk", kdf=PBKDF2(iterations=1000))
    for n in range(50):
        assert decode_token(bulk.encrypt(f"item {n}"), password="bulk") == f"item {n}"


def _lib_stream(plain: bytes, chunk: int, kdf: Any, *, with_key: bool) -> bytes:
    out = io.BytesIO()
    if with_key:
        aes_hmac.encrypt_stream(io.BytesIO(plain), out, key=KEY, chunk_size=chunk)
    else:
        aes_hmac.encrypt_stream(io.BytesIO(plain), out, "pw", kdf=kdf, chunk_size=chunk)
    return out.getvalue()


SIZES = st.one_of(
    st.integers(0, 3 * CHUNK + 40),
    st.sampled_from([CHUNK - 16, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 2 * CHUNK - 1]),
)


@FAST
@given(size=SIZES, kdf=st.sampled_from(CHEAP_KDFS), with_key=st.booleans(), seed=st.binary())
def test_library_streams_decode(size: int, kdf: Any, with_key: bool, seed: bytes) -> None:
    plain = (seed or b"\x00") * (size // max(1, len(seed)) + 1)
    plain = plain[:size]
    stream = _lib_stream(plain, CHUNK, kdf, with_key=with_key)
    credential: dict[str, Any] = {"key": KEY} if with_key else {"password": "pw"}
    assert decode_stream(stream, **credential) == plain


def test_library_large_chunks_and_file_slots(tmp_path: Path) -> None:
    """A 1 MiB-chunk file with three password slots added and one removed by the library."""
    plain = bytes(range(256)) * 9000
    src, enc = tmp_path / "plain", tmp_path / "plain.aes"
    src.write_bytes(plain)
    aes_hmac.encrypt_file(src, enc, "one", kdf=PBKDF2(iterations=1000))
    aes_hmac.add_password(enc, "one", "two", kdf=Scrypt(log2_n=4, r=1, p=1))
    aes_hmac.add_password(enc, "one", "three", kdf=Argon2id(1, 8, 1))
    aes_hmac.remove_password(enc, "two", limits=KdfLimits())
    stream = enc.read_bytes()
    assert decode_stream(stream, password="one") == plain
    assert decode_stream(stream, password="three") == plain
    with pytest.raises(FormatError, match="wrong password"):
        decode_stream(stream, password="two")


def _library_error(stream: bytes, **credential: Any) -> str:
    try:
        aes_hmac.decrypt_stream(io.BytesIO(stream), io.BytesIO(), **credential)
    except aes_hmac.DecryptionError as exc:
        return str(exc)
    return "accepted"


def _decoder_error(stream: bytes, **credential: Any) -> str:
    try:
        decode_stream(stream, **credential)
    except FormatError as exc:
        return str(exc)
    return "accepted"


@FAST
@given(
    size=SIZES,
    cut=st.integers(0, 20_000),
    flip=st.tuples(st.integers(0, 20_000), st.integers(1, 255)),
    extra=st.binary(min_size=1, max_size=CHUNK + 60),
)
def test_damaged_streams_same_verdict(
    size: int, cut: int, flip: tuple[int, int], extra: bytes
) -> None:
    """Truncated, flipped and extended streams: the decoder and the library say the same thing."""
    stream = _lib_stream(bytes(size), CHUNK, None, with_key=True)
    flipped = bytearray(stream)
    flipped[flip[0] % len(stream)] ^= flip[1]
    for bad in (stream[: cut % len(stream)], bytes(flipped), stream + extra):
        verdict = _decoder_error(bad, key=KEY)
        assert verdict != "accepted"
        assert verdict == _library_error(bad, key=KEY)


def test_chunk_cut_reordered_and_spliced_streams() -> None:
    """Whole-chunk damage: drop, repeat, swap, and a chunk from another stream with the same key."""
    step = CHUNK + 48
    one = _lib_stream(bytes(3 * CHUNK + 5), CHUNK, None, with_key=True)
    two = _lib_stream(bytes(3 * CHUNK + 5), CHUNK, None, with_key=True)
    head = len(one) - 3 * step - 64
    c = [one[head + i * step : head + (i + 1) * step] for i in range(3)] + [one[head + 3 * step :]]
    variants = {
        "drop": one[:head] + c[0] + c[2] + c[3],
        "repeat": one[:head] + c[0] + c[0] + c[1] + c[2] + c[3],
        "swap": one[:head] + c[1] + c[0] + c[2] + c[3],
        "cut at boundary": one[:head] + c[0] + c[1],
        "splice": one[:head] + c[0] + two[head + step : head + 2 * step] + c[2] + c[3],
        "drop final": one[:head] + c[0] + c[1] + c[2],
    }
    for name, bad in variants.items():
        verdict = _decoder_error(bad, key=KEY)
        assert verdict.startswith("data "), name
        assert verdict == _library_error(bad, key=KEY), name


def _any_block(kdf_id: int) -> st.SearchStrategy[tuple[int, bytes]]:
    size = PARAM_SIZES[kdf_id]
    return st.tuples(st.just(kdf_id), st.binary(min_size=size, max_size=size))


KDF_BLOCKS = st.one_of(
    # Any bytes under every password KDF id of FORMAT.md's table (a new KDF is covered at once).
    st.sampled_from(sorted(set(PARAM_SIZES) - {0})).flatmap(_any_block),
    st.tuples(st.just(1), st.integers(0, 2**32 - 1).map(lambda v: struct.pack(">I", v))),
    st.tuples(
        st.just(2),
        st.builds(
            lambda n, r, p: struct.pack(">BII", n, r, p),
            st.integers(0, 255),
            st.integers(0, 2**32 - 1) | st.integers(0, 9),
            st.integers(0, 2**32 - 1) | st.integers(0, 20),
        ),
    ),
    st.tuples(
        st.just(3),
        st.builds(
            lambda t, m, p: struct.pack(">III", t, m, p),
            st.integers(0, 2**32 - 1) | st.integers(0, 70),
            st.integers(0, 2**32 - 1) | st.integers(0, 2**21),
            st.integers(0, 2**32 - 1) | st.integers(0, 70),
        ),
    ),
)


def test_format_table_is_the_registry() -> None:
    """FORMAT.md 1.1's table, as the decoder reads it, has every registered KDF's id and size,
    and the decoder's own code derives what the library's class derives."""
    assert PARAM_SIZES == PARAMS_SIZE
    salt = bytes(range(16))
    for kdf in CHEAP_KDFS:
        spec = parse_kdf(kdf.kdf_id, kdf.encode())
        assert derive(spec, b"pw", salt) == kdf.derive(b"pw", salt), kdf
    assert {type(kdf) for kdf in CHEAP_KDFS} == set(KDFS)


def test_decoder_reads_its_kdf_table_from_the_spec() -> None:
    """A PBKDF2 row with another hash needs no decoder code; a KDF of an unknown family, or a
    size column that disagrees with the fields, stops the decoder at import."""
    text = FORMAT_MD.read_text(encoding="utf-8")
    row = "| 0x03 | Argon2id v1.3 (RFC 9106) |"
    extra = "| 0x7e | PBKDF2-HMAC-SHA512 | iterations u32 | 4 |\n"
    table = _kdf_table(text.replace(row, extra + row))
    assert table[0x7E].family == PBKDF2_FAMILY and table[0x7E].hash_name == "SHA512"

    def rows(table: dict[int, Any]) -> dict[int, tuple[str, str, str]]:
        return {k: (r.family, r.hash_name, r.layout.format) for k, r in table.items() if k != 0x7E}

    assert rows(table) == rows(KDF_TABLE)
    with pytest.raises(RuntimeError, match="no code here for KDF 'bcrypt'"):
        _kdf_table(text.replace(row, "| 0x7e | bcrypt | cost u8 | 1 |\n" + row))
    with pytest.raises(RuntimeError, match="is not 5 bytes"):
        _kdf_table(text.replace(row, "| 0x7e | PBKDF2-HMAC-SHA512 | iterations u32 | 5 |\n" + row))


@settings(max_examples=300, deadline=None)
@given(block=KDF_BLOCKS)
@example(block=(2, struct.pack(">BII", 16, 1, 1)))  # N must be below 2**(16 r)
def test_kdf_parameter_errors_match_the_spec(block: tuple[int, bytes]) -> None:
    """Parameter ranges and limit messages as FORMAT.md 1.1 states them, compared with the library.

    The tag is all zeros, so acceptable parameters end in "authentication failed" after a KDF run:
    those are only checked when cheap (the strategy's small ranges make plenty of them).
    """
    kdf_id, params = block
    token = bytes([0xA5, 1, kdf_id]) + params + bytes(16 + 16 + 16 + 32)
    with pytest.raises(FormatError) as first:
        decode_token(token, key=KEY)
    expected_msg = str(first.value)
    if expected_msg.startswith("invalid kdf parameters"):
        with pytest.raises(aes_hmac.InvalidToken) as info:
            aes_hmac.decrypt(token, "pw")
        assert str(info.value) == expected_msg
        return
    assert expected_msg == "token needs a password, not a raw key"
    tight = KdfLimits(max_pbkdf2_iterations=1, max_memory_bytes=1024, max_argon2_iterations=1)
    ours = Limits(max_pbkdf2_iterations=1, max_memory_bytes=1024, max_argon2_iterations=1)
    with pytest.raises(FormatError) as ours_error:
        decode_token(token, password="pw", limits=ours)
    with pytest.raises(aes_hmac.InvalidToken) as info:
        aes_hmac.decrypt(token, "pw", limits=tight)
    assert str(info.value) == str(ours_error.value)


@settings(max_examples=200, deadline=None)
@given(block=KDF_BLOCKS)
@example(block=(2, struct.pack(">BII", 16, 1, 1)))  # N must be below 2**(16 r)
def test_slot_kdf_errors_match_the_library(block: tuple[int, bytes]) -> None:
    """A one-slot header with any KDF block: the same refusal from both readers (3.5 steps 1-2)."""
    kdf_id, params = block
    slot = bytes([kdf_id]) + params + bytes(16 + 16 + 32 + 32)
    header = b"AESHMAC\x00\x01\x0c" + bytes(32) + b"\x01" + slot + bytes(32 + 64)
    tight = KdfLimits(max_pbkdf2_iterations=1, max_memory_bytes=1024, max_argon2_iterations=1)
    ours = Limits(max_pbkdf2_iterations=1, max_memory_bytes=1024, max_argon2_iterations=1)
    verdict = _decoder_error(header, password="pw", limits=ours)
    assert verdict.startswith(("failed to read header: ", "wrong password or damaged header"))
    assert verdict == _library_error(header, password="pw", limits=tight)


# --- the folder manifest (FORMAT.md section 4) ----------------------------------------------------


def _entries(case: dict[str, Any]) -> dict[bytes, bytes]:
    return {
        bytes.fromhex(p[4:]) if p.startswith("hex:") else p.encode(): unhex(i)
        for p, i in case["entries"].items()
    }


@pytest.mark.parametrize(("group", "case"), cases("manifest_v1.json", key="vectors"))
def test_manifest_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    slot = case["slots"][0]
    secret = (
        {"key": unhex(slot["key"])} if slot["kind"] == "key" else {"password": slot["password"]}
    )
    assert decode_manifest(unhex(case["stream"]), **secret) == _entries(case)


@pytest.mark.parametrize(("group", "case"), cases("manifest_v1.json", key="vectors"))
def test_manifest_vector_tags(group: dict[str, Any], case: dict[str, Any]) -> None:
    plain = unhex(case["plaintext"])
    assert plain[-32:] == unhex(case["tag"])
    assert unseal_manifest(plain, unhex(case["file_key"]), unhex(case["stream_id"])) == _entries(
        case
    )


@pytest.mark.parametrize(("group", "case"), cases("manifest_v1.json", key="forged"))
def test_manifest_forged_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    with pytest.raises(FormatError) as caught:
        unseal_manifest(unhex(case["plaintext"]), unhex(case["file_key"]), unhex(case["stream_id"]))
    assert str(caught.value) == case["error"]


@pytest.mark.parametrize(("group", "case"), cases("manifest_v1.json", key="invalid"))
def test_manifest_invalid_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    with pytest.raises(FormatError) as caught:
        parse_manifest(unhex(case["body"]))
    assert str(caught.value) == case["error"]


@FAST
@given(plain=st.binary(max_size=120), flip=st.integers(0, 200), seed=st.binary(max_size=40))
def test_manifest_plaintexts_same_verdict(plain: bytes, flip: int, seed: bytes) -> None:
    """Library and decoder agree on any plaintext: same entries or the same message."""
    good = bytearray(
        _manifest.encode(
            {
                b"a/" + seed.replace(b"/", b"_").replace(b"\x00", b"_") + b"x.ahm": bytes(32),
                b"b.ahm": bytes(range(32)),
            }
        )
    )
    good[flip % len(good)] ^= 1 + flip % 255
    for data in (plain, bytes(good)):
        try:
            expected: object = _manifest.decode(data)
        except ManifestError as exc:
            expected = str(exc)
        try:
            got: object = parse_manifest(data)
        except FormatError as exc:
            got = str(exc)
        assert got == expected


@FAST
@given(body=st.binary(max_size=80), flip=st.integers(0, 200), cut=st.integers(0, 40))
def test_manifest_tags_same_verdict(body: bytes, flip: int, cut: int) -> None:
    """Library and decoder agree on any tagged plaintext: genuine, one byte flipped, cut short,
    or a tag over another stream id."""
    file_key, stream_id = bytes(range(32)), bytes(range(32, 64))
    good = _manifest.seal({b"a.ahm": bytes(32)}, file_key, stream_id)
    flipped = bytearray(good)
    flipped[flip % len(good)] ^= 1 + flip % 255
    tagged = body + _manifest.tag(file_key, stream_id, body)
    for data in (
        good,
        bytes(flipped),
        good[:cut],
        tagged,
        body + _manifest.tag(file_key, bytes(32), body),
    ):
        try:
            expected: object = _manifest.unseal(data, file_key, stream_id)
        except ManifestError as exc:
            expected = str(exc)
        try:
            got: object = unseal_manifest(data, file_key, stream_id)
        except FormatError as exc:
            got = str(exc)
        assert got == expected


def test_library_folder_manifest_checks_out(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for rel in ("etc/allow.txt", "etc/deny.txt", "top"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(rel.encode() * 100)
    enc = tmp_path / "enc"
    assert aes_hmac.encrypt_tree(src, enc, "pw", kdf=CHEAP_KDFS[0], chunk_size=4096).ok
    entries = decode_manifest((enc / MANIFEST_NAME).read_bytes(), password="pw")

    def files() -> dict[bytes, bytes]:
        return {p.relative_to(enc).as_posix().encode(): p.read_bytes() for p in enc.rglob("*.ahm")}

    assert sorted(entries) == [b"etc/allow.txt.ahm", b"etc/deny.txt.ahm", b"top.ahm"]
    assert check_folder(files(), entries) == []
    allow, deny = (enc / "etc/allow.txt.ahm").read_bytes(), (enc / "etc/deny.txt.ahm").read_bytes()
    (enc / "etc/allow.txt.ahm").write_bytes(deny)
    (enc / "etc/deny.txt.ahm").write_bytes(allow)
    assert check_folder(files(), entries) == [
        "b'etc/allow.txt.ahm': not the listed stream",
        "b'etc/deny.txt.ahm': not the listed stream",
    ]
