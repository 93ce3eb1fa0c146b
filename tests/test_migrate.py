"""Migration: Fernet spec vectors, AES Crypt v2 files made by pyAesCrypt, failures leave nothing."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

import pyAesCrypt
import pytest
from _vectors import cases
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

import aes_hmac
from aes_hmac import PBKDF2, DecryptionError, HeaderError, InvalidToken, Key, StreamDamaged
from aes_hmac._migrate import _open_verified_aescrypt, aescrypt_stretch, fernet_decrypt
from aes_hmac._primitives import BLOCK_SIZE
from aes_hmac._token import parse

CHEAP = PBKDF2(iterations=1000)
KEY = bytes(range(32))
AESCRYPT_PASSWORD = "correct horse ☃ 🔑"

# The message each invalid Fernet spec vector must produce (keyed by its "desc").
FERNET_INVALID_MESSAGES = {
    "incorrect mac": "wrong key or tampered",
    "too short": "wrong length",
    "invalid base64": "bad base64",
    "payload size not multiple of block size": "wrong length",
    "payload padding error": "bad padding",
    "far-future TS (unacceptable clock skew)": "timestamp in the future",
    "expired TTL": "expired",
    "incorrect IV (causes padding error)": "bad padding",
}


def _now(case: dict[str, Any]) -> float:
    return datetime.fromisoformat(case["now"]).timestamp()


# --- Fernet ---


@pytest.mark.parametrize(
    ("group", "case"), cases("fernet/generate.json") + cases("fernet/verify.json")
)
def test_fernet_valid_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    ttl = case.get("ttl_sec")
    src = case["src"].encode()
    assert fernet_decrypt(case["token"], case["secret"], ttl=ttl, now=_now(case)) == src
    token = aes_hmac.import_fernet(
        case["token"], case["secret"], password="new", kdf=CHEAP, ttl=ttl, now=_now(case)
    )
    assert aes_hmac.decrypt(token, "new") == src
    raw_token = aes_hmac.import_fernet(
        case["token"], case["secret"], key=KEY, now=_now(case), associated_data=b"ad"
    )
    assert Key(KEY).decrypt(raw_token, associated_data=b"ad") == src


@pytest.mark.parametrize(("group", "case"), cases("fernet/invalid.json"))
def test_fernet_invalid_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    expected = FERNET_INVALID_MESSAGES[case["desc"]]
    with pytest.raises(InvalidToken, match=f"^fernet token: {expected}$"):
        fernet_decrypt(case["token"], case["secret"], ttl=case["ttl_sec"], now=_now(case))
    with pytest.raises(InvalidToken):
        aes_hmac.import_fernet(
            case["token"], case["secret"], password="new", ttl=case["ttl_sec"], now=_now(case)
        )


def test_fernet_spec_token_without_ttl_or_now() -> None:
    # No ttl: age does not matter, but the 1985 timestamp is not in the future either.
    case = cases("fernet/verify.json")[0].values[1]
    assert fernet_decrypt(case["token"], case["secret"]) == b"hello"


def test_fernet_every_bit_flip_rejected() -> None:
    key = Fernet.generate_key()
    raw = bytearray(base64.urlsafe_b64decode(Fernet(key).encrypt_at_time(b"abc", 1000)))
    for i in range(len(raw) * 8):
        raw[i // 8] ^= 1 << (i % 8)
        with pytest.raises(InvalidToken):
            fernet_decrypt(base64.urlsafe_b64encode(bytes(raw)), key, now=1000)
        raw[i // 8] ^= 1 << (i % 8)
    assert fernet_decrypt(base64.urlsafe_b64encode(bytes(raw)), key, now=1000) == b"abc"


def test_fernet_wrong_key_and_bad_arguments() -> None:
    token = Fernet(Fernet.generate_key()).encrypt(b"x")
    with pytest.raises(InvalidToken, match="wrong key or tampered"):
        fernet_decrypt(token, Fernet.generate_key())
    with pytest.raises(ValueError, match="fernet_key must be 32 url-safe base64-encoded bytes"):
        fernet_decrypt(token, base64.urlsafe_b64encode(b"short"))
    with pytest.raises(TypeError, match="fernet_key must be str or bytes, not int"):
        fernet_decrypt(token, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token must be str or bytes"):
        fernet_decrypt(None, Fernet.generate_key())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl must be"):
        fernet_decrypt(token, Fernet.generate_key(), ttl=-1)
    with pytest.raises(TypeError, match="exactly one of password or key"):
        aes_hmac.import_fernet(token, Fernet.generate_key())
    with pytest.raises(TypeError, match="exactly one of password or key"):
        aes_hmac.import_fernet(token, Fernet.generate_key(), password="p", key=KEY)
    with pytest.raises(ValueError, match="key must be 32 bytes, got 3"):
        aes_hmac.import_fernet(token, Fernet.generate_key(), key=b"abc")
    with pytest.raises(InvalidToken, match="bad base64"):
        fernet_decrypt("gAAAAA\u00e9", Fernet.generate_key())


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300), timestamp=st.integers(0, 2**40))
def test_fernet_tokens_from_pyca_convert(data: bytes, timestamp: int) -> None:
    key = Fernet.generate_key()
    token = Fernet(key).encrypt_at_time(data, timestamp)
    assert fernet_decrypt(token, key, ttl=10, now=timestamp + 5) == data
    converted = aes_hmac.import_fernet(token, key.decode(), key=KEY, now=timestamp)
    assert Key(KEY).decrypt(converted) == data
    with pytest.raises(InvalidToken, match="expired"):
        fernet_decrypt(token, key, ttl=10, now=timestamp + 11)


# --- AES Crypt v2 ---


def _aescrypt(data: bytes, password: str = AESCRYPT_PASSWORD) -> bytes:
    out = io.BytesIO()
    pyAesCrypt.encryptStream(io.BytesIO(data), out, password, 64 * 1024)
    return out.getvalue()


def _decrypt_ours(blob: bytes, password: str = "new") -> bytes:
    out = io.BytesIO()
    aes_hmac.decrypt_stream(io.BytesIO(blob), out, password)
    return out.getvalue()


def test_stretch_matches_the_spec_definition() -> None:
    iv = bytes(range(16))
    digest = iv + bytes(16)
    for _ in range(8192):
        digest = hashlib.sha256(digest + "pw".encode("utf-16-le")).digest()
    assert aescrypt_stretch("pw", iv) == digest


SIZES = [0, 1, 15, 16, 17, 64 * 1024 + 3, 1024 * 1024 + 5]


@pytest.mark.parametrize("size", SIZES)
def test_import_aescrypt_stream_sizes(size: int) -> None:
    data = os.urandom(size)
    converted = io.BytesIO()
    n = aes_hmac.import_aescrypt(
        io.BytesIO(_aescrypt(data)), converted, AESCRYPT_PASSWORD, "new", kdf=CHEAP
    )
    assert n == size
    assert _decrypt_ours(converted.getvalue()) == data


@pytest.mark.parametrize("size", [0, 17, 64 * 1024 + 3])
def test_import_aescrypt_file(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "plain").write_bytes(data)
    pyAesCrypt.encryptFile(str(tmp_path / "plain"), str(tmp_path / "in.aes"), AESCRYPT_PASSWORD)
    before = (tmp_path / "in.aes").read_bytes()
    dst = tmp_path / "out.ahm"
    assert (
        aes_hmac.import_aescrypt_file(tmp_path / "in.aes", dst, AESCRYPT_PASSWORD, key=KEY) == size
    )
    out = io.BytesIO()
    aes_hmac.decrypt_stream(io.BytesIO(dst.read_bytes()), out, key=KEY)
    assert out.getvalue() == data
    assert (tmp_path / "in.aes").read_bytes() == before
    with pytest.raises(FileExistsError):
        aes_hmac.import_aescrypt_file(tmp_path / "in.aes", dst, AESCRYPT_PASSWORD, key=KEY)
    aes_hmac.import_aescrypt_file(
        tmp_path / "in.aes", dst, AESCRYPT_PASSWORD, "pw", kdf=CHEAP, overwrite=True
    )
    assert _decrypt_ours(dst.read_bytes(), "pw") == data
    with pytest.raises(ValueError, match="different files"):
        aes_hmac.import_aescrypt_file(dst, dst, AESCRYPT_PASSWORD, key=KEY, overwrite=True)


def _header_size(blob: bytes) -> int:
    """Offset of the first payload byte of a pyAesCrypt file (after the extensions)."""
    pos = 5
    while True:
        length = int.from_bytes(blob[pos : pos + 2], "big")
        pos += 2 + length
        if length == 0:
            return pos + 16 + 48 + 32


def _flip(blob: bytes, index: int) -> bytes:
    damaged = bytearray(blob)
    damaged[index] ^= 0x01
    return bytes(damaged)


def _damaged_variants(blob: bytes) -> dict[str, tuple[bytes, type[DecryptionError]]]:
    start = _header_size(blob)
    return {
        "ciphertext first byte": (_flip(blob, start), StreamDamaged),
        "ciphertext last block": (_flip(blob, len(blob) - 34), StreamDamaged),
        "hmac": (_flip(blob, len(blob) - 1), StreamDamaged),
        "size mod 16 out of range": (blob[:-33] + b"\x10" + blob[-32:], StreamDamaged),
        "truncated by one byte": (blob[:-1], StreamDamaged),
        "truncated trailer": (blob[:-33], StreamDamaged),
        "truncated mid payload": (blob[: start + 40], StreamDamaged),
        "trailing byte": (blob + b"\x00", StreamDamaged),
        "key block": (_flip(blob, start - 40), HeaderError),
        "key block hmac": (_flip(blob, start - 1), HeaderError),
        "truncated header": (blob[: start - 10], HeaderError),
        "magic": (b"XES" + blob[3:], HeaderError),
        "version 3": (blob[:3] + b"\x03" + blob[4:], HeaderError),
    }


DAMAGE = list(_damaged_variants(_aescrypt(os.urandom(100), "x")))


@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_aescrypt_file_leaves_no_output(tmp_path: Path, kind: str) -> None:
    blob, error = _damaged_variants(_aescrypt(os.urandom(100)))[kind]
    (tmp_path / "in.aes").write_bytes(blob)
    with pytest.raises(error):
        aes_hmac.import_aescrypt_file(
            tmp_path / "in.aes", tmp_path / "out", AESCRYPT_PASSWORD, key=KEY
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.aes"]


def test_wrong_password_refused_before_any_output() -> None:
    dst = io.BytesIO()
    with pytest.raises(HeaderError, match=r"^wrong password or damaged header$"):
        aes_hmac.import_aescrypt(io.BytesIO(_aescrypt(b"data")), dst, "wrong", key=KEY)
    assert dst.getvalue() == b""


class Unseekable(io.RawIOBase):
    """A pipe-like source: the import must spool it instead of seeking."""

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


def _sources(blob: bytes) -> dict[str, BinaryIO]:
    return {"seekable": io.BytesIO(blob), "pipe": io.BufferedReader(Unseekable(blob))}


FORGED = b"PAY mallory 9999"


def forged_aescrypt(size: int = 8 * 1024 * 1024, password: str = AESCRYPT_PASSWORD) -> bytes:
    """A pyAesCrypt file of zeros whose plaintext bytes 32..48 read ``FORGED`` (CBC bit flip).

    Flipping ciphertext block 1 garbles plaintext block 1 and XORs plaintext block 2; only the
    HMAC at the very end of the file reveals it.
    """
    blob = bytearray(_aescrypt(bytes(size), password))
    start = _header_size(bytes(blob))
    for i, byte in enumerate(FORGED):
        blob[start + BLOCK_SIZE + i] ^= byte  # the plaintext there is 0
    return bytes(blob)


@pytest.mark.parametrize("source", ["seekable", "pipe"])
def test_cbc_bit_flip_attack_releases_nothing(source: str) -> None:
    """Regression: the whole AES Crypt file is verified before a single byte reaches dst.

    One-pass conversion used to seal every chunk but the last under valid tags, so a streaming
    reader of the output released the forged block with no error.
    """
    dst = io.BytesIO()
    with pytest.raises(StreamDamaged, match="aes crypt hmac mismatch or truncated"):
        aes_hmac.import_aescrypt(
            _sources(forged_aescrypt())[source], dst, AESCRYPT_PASSWORD, key=bytes(32)
        )
    assert dst.getvalue() == b""


@pytest.mark.parametrize("source", ["seekable", "pipe"])
@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_aescrypt_stream_writes_nothing(source: str, kind: str) -> None:
    blob, error = _damaged_variants(_aescrypt(os.urandom(100)))[kind]
    dst = io.BytesIO()
    with pytest.raises(error):
        aes_hmac.import_aescrypt(_sources(blob)[source], dst, AESCRYPT_PASSWORD, key=KEY)
    assert dst.getvalue() == b""


@pytest.mark.parametrize("size", [0, 17, 1024 * 1024 + 5])
def test_pipe_source_is_spooled_as_ciphertext_only(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    data = b"plaintext never spooled! " * (size // 25) + b"x" * (size % 25)
    blob = _aescrypt(data)
    spooled: list[bytes] = []

    class Spool(io.BytesIO):
        def close(self) -> None:
            spooled.append(self.getvalue())
            super().close()

    monkeypatch.setattr(tempfile, "TemporaryFile", Spool)
    converted = io.BytesIO()
    source = _sources(blob)["pipe"]
    assert aes_hmac.import_aescrypt(source, converted, AESCRYPT_PASSWORD, key=KEY) == size
    assert spooled == [blob[_header_size(blob) : -33]]
    out = io.BytesIO()
    aes_hmac.decrypt_stream(io.BytesIO(converted.getvalue()), out, key=KEY)
    assert out.getvalue() == data


class ChangesAfterSeek(io.BytesIO):
    """A seekable source whose payload changes between the verify and the convert pass."""

    def __init__(self, data: bytes, index: int) -> None:
        super().__init__(data)
        self._index = index

    def seek(self, offset: int, whence: int = 0) -> int:
        self.getbuffer()[self._index] ^= 1
        return super().seek(offset, whence)


def test_source_changed_between_passes_never_finalizes_output() -> None:
    blob = _aescrypt(os.urandom(600_000))
    dst = io.BytesIO()
    source = ChangesAfterSeek(blob, _header_size(blob) + 100)
    with pytest.raises(StreamDamaged, match="aes crypt file changed during import"):
        aes_hmac.import_aescrypt(source, dst, AESCRYPT_PASSWORD, key=KEY)
    with pytest.raises(DecryptionError):
        aes_hmac.decrypt_stream(io.BytesIO(dst.getvalue()), io.BytesIO(), key=KEY)


def test_reader_keeps_raising_the_first_error() -> None:
    blob = _aescrypt(b"x" * 100)
    with contextlib.ExitStack() as stack:
        reader = _open_verified_aescrypt(
            ChangesAfterSeek(blob, len(blob) - 40),
            AESCRYPT_PASSWORD.encode("utf-16-le"),
            stack,
        )
        with pytest.raises(StreamDamaged) as first:
            reader.read()
        with pytest.raises(StreamDamaged) as second:
            reader.read(10)
    assert second.value is first.value
    assert first.value.offset == _header_size(blob)


def test_lone_surrogate_password_error_hides_the_password() -> None:
    secret = "hunter2-secret\ud800tail"
    blob = _aescrypt(b"x")
    with pytest.raises(ValueError) as info:
        aes_hmac.import_aescrypt(io.BytesIO(blob), io.BytesIO(), secret, key=KEY)
    assert str(info.value) == "aescrypt_password is not encodable (lone surrogate at index 14)"
    assert "hunter2" not in repr(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    with pytest.raises(ValueError, match=r"^password is not encodable") as direct:
        aescrypt_stretch(secret, bytes(16))
    assert "hunter2" not in repr(direct.value) and direct.value.__context__ is None


def test_hostile_extension_sizes_refused() -> None:
    endless = b"AES\x02\x00" + (b"\xff\xff" + bytes(0xFFFF)) * 17
    with pytest.raises(HeaderError, match="extensions too large"):
        aes_hmac.import_aescrypt(io.BytesIO(endless), io.BytesIO(), "pw", key=KEY)


def test_aescrypt_argument_errors() -> None:
    blob = io.BytesIO(_aescrypt(b""))
    with pytest.raises(TypeError, match="aescrypt_password must be str, not bytes"):
        aes_hmac.import_aescrypt(blob, io.BytesIO(), b"pw", key=KEY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aescrypt_password must not be empty"):
        aes_hmac.import_aescrypt(blob, io.BytesIO(), "", key=KEY)
    with pytest.raises(TypeError, match="exactly one of password or key"):
        aes_hmac.import_aescrypt(blob, io.BytesIO(), "pw")
    for bad_kdf in ("x", None, 1000):
        with pytest.raises(TypeError, match=r"^kdf must be PBKDF2, Scrypt or Argon2id, not "):
            aes_hmac.import_aescrypt(blob, io.BytesIO(), "pw", "new", kdf=bad_kdf)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"^kdf must be PBKDF2, Scrypt or Argon2id, not "):
            aes_hmac.import_fernet(b"t", Fernet.generate_key(), key=KEY, kdf=bad_kdf)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="password must be"):
        aes_hmac.import_aescrypt(blob, io.BytesIO(), "pw", 5)  # type: ignore[arg-type]
    assert blob.tell() == 0  # caller mistakes are found before the source is read


def test_imported_token_kdf_is_the_requested_one() -> None:
    token = Fernet(Fernet.generate_key())
    raw = token.encrypt(b"x")
    key = token._signing_key + token._encryption_key
    converted = aes_hmac.import_fernet(raw, base64.urlsafe_b64encode(key), password="p", kdf=CHEAP)
    assert parse(converted).kdf == CHEAP


def test_import_fernet_batch_with_password_key_runs_one_kdf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = Fernet.generate_key()
    tokens = [Fernet(key).encrypt(bytes([i])) for i in range(5)]
    bulk = aes_hmac.PasswordKey("new", kdf=CHEAP)
    runs: list[bytes] = []
    original = PBKDF2.derive

    def counting(self: PBKDF2, password: bytes, salt: bytes) -> bytes:
        runs.append(salt)
        return original(self, password, salt)

    monkeypatch.setattr(PBKDF2, "derive", counting)
    converted = [aes_hmac.import_fernet(t, key, password=bulk) for t in tokens]
    assert len(runs) == 1
    assert [bulk.decrypt(c) for c in converted] == [bytes([i]) for i in range(5)]
