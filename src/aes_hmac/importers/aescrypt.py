"""AES Crypt stream format version 2 (https://www.aescrypt.com/aes_file_format.html) into ours.

AES Crypt keeps its one HMAC at the end of the file, so the whole file is verified in a first
pass and converted in a second (non-seekable input is spooled, as ciphertext, to an anonymous
temp file). Its SHA-256 password stretching, which only AES Crypt uses, lives here.
"""

from __future__ import annotations

import contextlib
import io
import os
import struct
import tempfile
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Final

from cryptography.hazmat.primitives import hashes

from .._errors import DecryptionError, HeaderError, StreamDamaged
from .._files.files import file_to_file
from .._kdf import DEFAULT_KDF, Kdf, check_kdf
from .._keys.credentials import RawKey, Secret
from .._primitives import (
    BLOCK_SIZE,
    KEY_SIZE,
    TAG_SIZE,
    aes_cbc_decrypt_raw,
    constant_time_equal,
    hmac_sha256,
    hmac_sha256_stream,
)
from .._stream.engine import encrypt_stream
from .._stream.io import read_full, read_full_bytes
from ._target import stream_target

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["aescrypt_stretch", "import_aescrypt", "import_aescrypt_file"]

AESCRYPT_MAGIC: Final = b"AES"
AESCRYPT_VERSION: Final = 2
AESCRYPT_STRETCH_ROUNDS: Final = 8192
"""SHA-256 rounds of AES Crypt v2's password stretching (fixed by the format)."""
_AESCRYPT_MAX_EXTENSION_BYTES = 1 << 20
"""Refuse headers whose extensions exceed this: real files carry a few hundred bytes."""
_AESCRYPT_KEY_BLOCK = BLOCK_SIZE + KEY_SIZE  # encrypted (IV || file key)
_AESCRYPT_TRAILER = 1 + TAG_SIZE  # size mod 16, HMAC
_READ_SIZE = 256 * 1024  # a multiple of BLOCK_SIZE: pass 2 decrypts whole blocks per read


_SHA256_EMPTY: Final = hashes.Hash(hashes.SHA256())
"""Never updated: copying it is twice as fast as a new ``Hash`` (AES Crypt hashes 8192 times)."""


def _sha256(data: bytes) -> bytes:
    digest = _SHA256_EMPTY.copy()
    digest.update(data)
    return digest.finalize()


def _aescrypt_password_bytes(password: str, name: str) -> bytes:
    """UTF-16LE, as AES Crypt encodes passwords; the error names the position, never the text."""
    try:
        return password.encode("utf-16-le")
    except UnicodeEncodeError as exc:
        position = exc.start
    # Raised outside the handler so no context chain keeps the password (exc.object).
    raise ValueError(f"{name} is not encodable (lone surrogate at index {position})")


def _check_aescrypt_password(aescrypt_password: object) -> bytes:
    if not isinstance(aescrypt_password, str):
        raise TypeError(f"aescrypt_password must be str, not {type(aescrypt_password).__name__}")
    if not aescrypt_password:
        raise ValueError("aescrypt_password must not be empty")
    return _aescrypt_password_bytes(aescrypt_password, "aescrypt_password")


def _stretch(encoded: bytes, iv: bytes) -> bytes:
    digest = iv + bytes(KEY_SIZE - len(iv))
    for _ in range(AESCRYPT_STRETCH_ROUNDS):
        digest = _sha256(digest + encoded)
    return digest


def aescrypt_stretch(password: str, iv: bytes) -> bytes:
    """AES Crypt v2's key: 8192 x SHA-256(digest || UTF-16LE password), digest starting IV||0^16."""
    return _stretch(_aescrypt_password_bytes(password, "password"), iv)


def _read_exact(src: BinaryIO, n: int, what: str) -> bytes:
    data = read_full_bytes(src, n)
    if len(data) != n:
        raise HeaderError(f"failed to read aes crypt header: truncated {what}")
    return data


@dataclass(frozen=True)
class _AesCryptPayload:
    """What pass 1 learned: where the payload starts, its length, last-block size, verified tag."""

    file_key: bytes
    iv: bytes
    start: int  # header bytes before the payload, for damage offsets
    length: int  # ciphertext bytes (block-aligned), without the trailer
    size_mod_16: int
    tag: bytes

    def damaged(self, why: str) -> StreamDamaged:
        return StreamDamaged(f"data damaged at byte {self.start}: {why}", offset=self.start)


def _read_aescrypt_header(src: BinaryIO, password: bytes) -> tuple[bytes, bytes, int]:
    """Read and verify the header (its own HMAC); returns (file key, payload IV, header size).

    Wrong password or damage -> ``HeaderError`` after reading only the header.
    """
    size = 0

    def read(n: int, what: str) -> bytes:
        nonlocal size
        size += n
        return _read_exact(src, n, what)

    if read(3, "magic") != AESCRYPT_MAGIC:
        raise HeaderError("failed to read aes crypt header: not an aes crypt file")
    version, _reserved = read(2, "version")
    if version != AESCRYPT_VERSION:
        raise HeaderError(f"failed to read aes crypt header: unsupported version {version}")
    skipped = 0
    while True:
        (length,) = struct.unpack(">H", read(2, "extension length"))
        if length == 0:
            break
        skipped += length
        if skipped > _AESCRYPT_MAX_EXTENSION_BYTES:
            raise HeaderError("failed to read aes crypt header: extensions too large")
        read(length, "extension")
    iv = read(BLOCK_SIZE, "iv")
    wrapped = read(_AESCRYPT_KEY_BLOCK, "key block")
    tag = read(TAG_SIZE, "key block hmac")
    stretched = _stretch(password, iv)
    if not constant_time_equal(hmac_sha256(stretched, wrapped), tag):
        raise HeaderError("wrong password or damaged header")
    inner = aes_cbc_decrypt_raw(stretched, iv, wrapped)
    return inner[BLOCK_SIZE:], inner[:BLOCK_SIZE], size


def _verify_aescrypt_payload(
    src: BinaryIO, file_key: bytes, iv: bytes, start: int, spool: BinaryIO | None
) -> _AesCryptPayload:
    """Pass 1: HMAC the whole payload (ciphertext only, nothing decrypted) and check the tag.

    The trailer (size byte and HMAC) is only known at end of input, so the last 33 bytes read are
    always held back. With ``spool``, the ciphertext is copied there for pass 2.
    """
    mac = hmac_sha256_stream(file_key)
    tail = b""
    length = 0
    while piece := src.read(_READ_SIZE):
        data = tail + piece
        cut = max(0, len(data) - _AESCRYPT_TRAILER)
        mac.update(data[:cut])
        if spool is not None:
            spool.write(data[:cut])
        length += cut
        tail = data[cut:]
    payload = _AesCryptPayload(file_key, iv, start, length, tail[0] if tail else 0, tail[1:])
    damaged = payload.damaged("aes crypt hmac mismatch or truncated")
    if len(tail) < _AESCRYPT_TRAILER or length % BLOCK_SIZE:
        raise damaged
    if payload.size_mod_16 >= BLOCK_SIZE or (payload.size_mod_16 and not length):
        raise damaged
    if not constant_time_equal(mac.finalize(), payload.tag):
        raise damaged
    return payload


class _AesCryptReader(io.RawIOBase):
    """Pass 2: the plaintext of an AES Crypt payload that pass 1 verified, constant memory.

    ``src`` must be positioned at the payload and hold the same bytes pass 1 verified (the
    caller's seekable source or our ciphertext spool). The HMAC is recomputed here too: a
    source changed between the passes fails before its last block is released, so the stream
    made from it is never finalized. The first error is stored and raised again on every read.
    """

    def __init__(self, src: BinaryIO, payload: _AesCryptPayload) -> None:
        super().__init__()
        self._src = src
        self._payload = payload
        self._iv = payload.iv
        self._remaining = payload.length
        self._mac = hmac_sha256_stream(payload.file_key)
        self._ct = memoryview(bytearray(_READ_SIZE))
        self._out = bytearray()
        self._done = False
        self._error: DecryptionError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._error is not None:
            raise self._error
        try:
            while not self._out and not self._done:
                self._fill()
        except DecryptionError as exc:
            self._error = exc
            raise
        n = min(len(view), len(self._out))
        view[:n] = self._out[:n]
        del self._out[:n]
        return n

    def _fill(self) -> None:
        ct = self._ct[: read_full(self._src, self._ct[: min(_READ_SIZE, self._remaining)])]
        changed = "aes crypt file changed during import"
        if len(ct) % BLOCK_SIZE or (self._remaining and not ct):
            raise self._payload.damaged(changed)
        self._remaining -= len(ct)
        self._mac.update(ct)
        if not self._remaining:
            self._done = True
            if not constant_time_equal(self._mac.finalize(), self._payload.tag):
                raise self._payload.damaged(changed)
        plain = aes_cbc_decrypt_raw(self._payload.file_key, self._iv, ct) if ct else b""
        if ct:
            self._iv = bytes(ct[-BLOCK_SIZE:])
        if self._done and self._payload.size_mod_16:
            # v2 does not authenticate this byte; the data bytes themselves are authenticated.
            plain = plain[: len(plain) - BLOCK_SIZE + self._payload.size_mod_16]
        self._out += plain


def _open_verified_aescrypt(
    src: BinaryIO, password: bytes, stack: contextlib.ExitStack
) -> _AesCryptReader:
    """Verify a whole AES Crypt v2 stream (pass 1), then return its plaintext reader (pass 2).

    A seekable ``src`` is read twice. Any other is spooled, ciphertext only, to an anonymous
    temp file (closed by ``stack``) while pass 1 runs; pass 2 reads the spool.
    """
    file_key, iv, start = _read_aescrypt_header(src, password)
    try:
        position = src.tell() if src.seekable() else None
    except (OSError, ValueError):
        position = None
    if position is not None:
        payload = _verify_aescrypt_payload(src, file_key, iv, start, None)
        src.seek(position)
        return _AesCryptReader(src, payload)
    spool = stack.enter_context(tempfile.TemporaryFile())
    payload = _verify_aescrypt_payload(src, file_key, iv, start, spool)
    spool.seek(0)
    return _AesCryptReader(spool, payload)


def import_aescrypt(
    src: BinaryIO,
    dst: BinaryIO,
    aescrypt_password: str,
    password: Secret | None = None,
    *,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
) -> int:
    """Convert an AES Crypt v2 stream into our stream format; nothing is written unverified.

    The new credential is ``password`` (a password, ``Key`` or ``PasswordKey``) or ``key``
    (32 bytes or a ``Key``), as everywhere in the library.

    AES Crypt's one HMAC is at the end, so the whole file is verified first (header HMAC, then
    payload HMAC, constant time), then read again and converted: a seekable ``src`` twice, any
    other spooled as ciphertext to an anonymous temp file. Memory stays constant. Wrong
    ``aescrypt_password`` or damage -> ``HeaderError``/``StreamDamaged`` with nothing written to
    ``dst``. Returns the plaintext size. The source must not change during the import.
    """
    encoded = _check_aescrypt_password(aescrypt_password)
    target = stream_target(password, key, check_kdf(kdf))  # caller mistakes before any reading
    with contextlib.ExitStack() as stack:
        reader = _open_verified_aescrypt(src, encoded, stack)
        return encrypt_stream(io.BufferedReader(reader, _READ_SIZE), dst, **target)


def import_aescrypt_file(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    aescrypt_password: str,
    password: Secret | None = None,
    *,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
    overwrite: bool = False,
) -> int:
    """Convert an AES Crypt v2 file into ours, atomically: no output remains on any failure.

    ``import_aescrypt`` verifies the whole source before writing; its output goes to a temp file
    beside ``dst_path``, renamed into place only on success (the stream helpers' atomic
    machinery). Returns the plaintext size; ``FileExistsError`` for an existing ``dst_path``
    unless ``overwrite``.
    """
    with file_to_file(src_path, dst_path, overwrite) as (src, dst):
        return import_aescrypt(src, dst, aescrypt_password, password, key=key, kdf=kdf)
