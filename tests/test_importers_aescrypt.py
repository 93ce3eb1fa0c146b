"""AES Crypt importer: v2 files made by pyAesCrypt, damage and wrong passwords leave nothing."""

from __future__ import annotations

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
from cryptography.fernet import Fernet

import aes_hmac
from aes_hmac import PBKDF2, DecryptionError, HeaderError, Key, PasswordKey, StreamDamaged
from aes_hmac._kdf import KDF_CLASS_NAMES
from aes_hmac._primitives import BLOCK_SIZE
from aes_hmac.importers import import_aescrypt, import_aescrypt_file, import_fernet
from aes_hmac.importers.aescrypt import _open_verified_aescrypt, aescrypt_stretch

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
    n = import_aescrypt(io.BytesIO(_aescrypt(data)), converted, AESCRYPT_PASSWORD, "new", kdf=CHEAP)
    assert n == size
    assert _decrypt_ours(converted.getvalue()) == data


@pytest.mark.parametrize("size", [0, 17, 64 * 1024 + 3])
def test_import_aescrypt_file(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "plain").write_bytes(data)
    pyAesCrypt.encryptFile(str(tmp_path / "plain"), str(tmp_path / "in.aes"), AESCRYPT_PASSWORD)
    before = (tmp_path / "in.aes").read_bytes()
    dst = tmp_path / "out.ahm"
    assert import_aescrypt_file(tmp_path / "in.aes", dst, AESCRYPT_PASSWORD, key=KEY) == size
    out = io.BytesIO()
    aes_hmac.decrypt_stream(io.BytesIO(dst.read_bytes()), out, key=KEY)
    assert out.getvalue() == data
    assert (tmp_path / "in.aes").read_bytes() == before
    with pytest.raises(FileExistsError):
        import_aescrypt_file(tmp_path / "in.aes", dst, AESCRYPT_PASSWORD, key=KEY)
    import_aescrypt_file(
        tmp_path / "in.aes", dst, AESCRYPT_PASSWORD, "pw", kdf=CHEAP, overwrite=True
    )
    assert _decrypt_ours(dst.read_bytes(), "pw") == data
    with pytest.raises(ValueError, match="different files"):
        import_aescrypt_file(dst, dst, AESCRYPT_PASSWORD, key=KEY, overwrite=True)


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
        import_aescrypt_file(tmp_path / "in.aes", tmp_path / "out", AESCRYPT_PASSWORD, key=KEY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.aes"]


def test_wrong_password_refused_before_any_output() -> None:
    dst = io.BytesIO()
    with pytest.raises(HeaderError, match=r"^wrong password or damaged header$"):
        import_aescrypt(io.BytesIO(_aescrypt(b"data")), dst, "wrong", key=KEY)
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
        import_aescrypt(_sources(forged_aescrypt())[source], dst, AESCRYPT_PASSWORD, key=bytes(32))
    assert dst.getvalue() == b""


@pytest.mark.parametrize("source", ["seekable", "pipe"])
@pytest.mark.parametrize("kind", DAMAGE)
def test_damaged_aescrypt_stream_writes_nothing(source: str, kind: str) -> None:
    blob, error = _damaged_variants(_aescrypt(os.urandom(100)))[kind]
    dst = io.BytesIO()
    with pytest.raises(error):
        import_aescrypt(_sources(blob)[source], dst, AESCRYPT_PASSWORD, key=KEY)
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
    assert import_aescrypt(source, converted, AESCRYPT_PASSWORD, key=KEY) == size
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
        import_aescrypt(source, dst, AESCRYPT_PASSWORD, key=KEY)
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
        import_aescrypt(io.BytesIO(blob), io.BytesIO(), secret, key=KEY)
    assert str(info.value) == "aescrypt_password is not encodable (lone surrogate at index 14)"
    assert "hunter2" not in repr(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    with pytest.raises(ValueError, match=r"^password is not encodable") as direct:
        aescrypt_stretch(secret, bytes(16))
    assert "hunter2" not in repr(direct.value) and direct.value.__context__ is None


def test_hostile_extension_sizes_refused() -> None:
    endless = b"AES\x02\x00" + (b"\xff\xff" + bytes(0xFFFF)) * 17
    with pytest.raises(HeaderError, match="extensions too large"):
        import_aescrypt(io.BytesIO(endless), io.BytesIO(), "pw", key=KEY)


def test_aescrypt_argument_errors() -> None:
    blob = io.BytesIO(_aescrypt(b""))
    with pytest.raises(TypeError, match="aescrypt_password must be str, not bytes"):
        import_aescrypt(blob, io.BytesIO(), b"pw", key=KEY)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aescrypt_password must not be empty"):
        import_aescrypt(blob, io.BytesIO(), "", key=KEY)
    with pytest.raises(TypeError, match="give password or key"):
        import_aescrypt(blob, io.BytesIO(), "pw")
    for bad_kdf in ("x", None, 1000):
        with pytest.raises(TypeError, match=rf"^kdf must be {KDF_CLASS_NAMES}, not "):
            import_aescrypt(blob, io.BytesIO(), "pw", "new", kdf=bad_kdf)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=rf"^kdf must be {KDF_CLASS_NAMES}, not "):
            import_fernet(b"t", Fernet.generate_key(), key=KEY, kdf=bad_kdf)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="password must be"):
        import_aescrypt(blob, io.BytesIO(), "pw", 5)  # type: ignore[arg-type]
    assert blob.tell() == 0  # caller mistakes are found before the source is read


@pytest.mark.parametrize(
    "target",
    [
        {"password": "new"},
        {"password": b"new"},
        {"password": PasswordKey("new", kdf=CHEAP)},
        {"password": Key(KEY)},
        {"key": KEY},
        {"key": Key(KEY)},
    ],
    ids=["str", "bytes", "PasswordKey", "Key-as-password", "key-bytes", "key-Key"],
)
def test_every_secret_kind_is_a_target(target: dict[str, Any]) -> None:
    out = io.BytesIO()
    import_aescrypt(io.BytesIO(_aescrypt(b"moved")), out, AESCRYPT_PASSWORD, kdf=CHEAP, **target)
    is_key = "key" in target or isinstance(target["password"], Key)
    opener: dict[str, Any] = {"key": KEY} if is_key else {"password": "new"}
    plain = io.BytesIO()
    aes_hmac.decrypt_stream(io.BytesIO(out.getvalue()), plain, **opener)
    assert plain.getvalue() == b"moved"
    info = aes_hmac.inspect_stream(io.BytesIO(out.getvalue()))
    assert [s.kdf for s in info.slots] == [None if is_key else CHEAP]
