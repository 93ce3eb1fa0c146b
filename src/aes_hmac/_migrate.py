"""Migration into this library's formats: Fernet tokens and AES Crypt version 2 files.

Each reader verifies its format's MAC before it releases anything, then the data is re-encrypted
by the token or stream layer. Design-note tuples are converted by ``_compat.convert_legacy``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import os
import struct
import time
from typing import TYPE_CHECKING, BinaryIO, Final

from ._errors import DecryptionError, HeaderError, InvalidToken, StreamDamaged
from ._fileio import _atomic_output, _check_paths
from ._kdf import DEFAULT_KDF, Kdf
from ._keys import PasswordKey
from ._pipeline import encrypt_stream
from ._primitives import (
    BLOCK_SIZE,
    KEY_SIZE,
    TAG_SIZE,
    aes128_cbc_decrypt_raw,
    aes_cbc_decrypt_raw,
    constant_time_equal,
    hmac_sha256,
    hmac_sha256_stream,
    pkcs7_unpad,
)
from ._token import encrypt as _token_encrypt
from ._token import seal as _token_seal

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "fernet_decrypt",
    "import_aescrypt",
    "import_aescrypt_file",
    "import_fernet",
]

# --- Fernet (https://github.com/fernet/spec/blob/master/Spec.md) ---

FERNET_VERSION: Final = 0x80
FERNET_MAX_CLOCK_SKEW: Final = 60
"""Seconds a token's timestamp may lie in the future, as in the Fernet spec and pyca's Fernet."""
_FERNET_HALF_KEY = 16
_FERNET_HEADER = struct.Struct(">BQ16s")  # version, timestamp, IV
_FERNET_MIN_SIZE = _FERNET_HEADER.size + BLOCK_SIZE + TAG_SIZE


def _fernet_key(fernet_key: str | bytes) -> tuple[bytes, bytes]:
    """Split a url-safe base64 Fernet key into (signing key, encryption key)."""
    if not isinstance(fernet_key, str | bytes):
        raise TypeError(f"fernet_key must be str or bytes, not {type(fernet_key).__name__}")
    try:
        raw = base64.urlsafe_b64decode(fernet_key)
    except (binascii.Error, ValueError):
        raise ValueError("fernet_key must be 32 url-safe base64-encoded bytes") from None
    if len(raw) != 2 * _FERNET_HALF_KEY:
        raise ValueError("fernet_key must be 32 url-safe base64-encoded bytes")
    return raw[:_FERNET_HALF_KEY], raw[_FERNET_HALF_KEY:]


def _strict_urlsafe_b64decode(text: str | bytes) -> bytes:
    """Decode url-safe base64, refusing every character outside the alphabet (no silent skip)."""
    if isinstance(text, str):
        try:
            text = text.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidToken("fernet token: bad base64") from None
    try:
        return base64.b64decode(text.strip(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidToken("fernet token: bad base64") from None


def fernet_decrypt(
    token: str | bytes,
    fernet_key: str | bytes,
    *,
    ttl: int | None = None,
    now: float | None = None,
) -> bytes:
    """Verify and decrypt a Fernet token; every failure is ``InvalidToken``.

    The HMAC (signing key, over everything before it) is checked in constant time before any
    AES-128-CBC decryption or unpadding. ``ttl`` (seconds) rejects older tokens; timestamps more
    than 60 s in the future are always rejected, as the spec says. ``now`` (Unix time) overrides
    the clock, for tests and replays.
    """
    if not isinstance(token, str | bytes):
        raise TypeError(f"token must be str or bytes, not {type(token).__name__}")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl < 0):
        raise ValueError("ttl must be a non-negative int or None")
    signing_key, encryption_key = _fernet_key(fernet_key)
    data = _strict_urlsafe_b64decode(token)
    if len(data) < _FERNET_MIN_SIZE or (len(data) - _FERNET_HEADER.size - TAG_SIZE) % BLOCK_SIZE:
        raise InvalidToken("fernet token: wrong length")
    if data[0] != FERNET_VERSION:
        raise InvalidToken("fernet token: unknown version")
    body, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
    if not constant_time_equal(hmac_sha256(signing_key, body), tag):
        raise InvalidToken("fernet token: wrong key or tampered")
    _, timestamp, iv = _FERNET_HEADER.unpack_from(body)
    current = time.time() if now is None else now
    if timestamp > current + FERNET_MAX_CLOCK_SKEW:
        raise InvalidToken("fernet token: timestamp in the future")
    if ttl is not None and timestamp + ttl < current:
        raise InvalidToken("fernet token: expired")
    padded = aes128_cbc_decrypt_raw(encryption_key, iv, body[_FERNET_HEADER.size :])
    try:
        return pkcs7_unpad(padded)
    except ValueError:
        raise InvalidToken("fernet token: bad padding") from None


def _check_target(password: str | bytes | PasswordKey | None, key: bytes | None) -> None:
    if (password is None) == (key is None):
        raise TypeError("give exactly one of password or key")
    if key is not None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError(f"key must be bytes, not {type(key).__name__}")
        if len(key) != KEY_SIZE:
            raise ValueError(f"key must be {KEY_SIZE} bytes, got {len(key)}")


def _seal(
    data: bytes,
    password: str | bytes | PasswordKey | None,
    key: bytes | None,
    kdf: Kdf,
    associated_data: bytes | None,
) -> str:
    """Encrypt migrated data as one of our tokens, under a password or a raw key."""
    if key is not None:
        return _token_seal(data, bytes(key), None, b"", associated_data or b"")
    if isinstance(password, PasswordKey):
        return password.encrypt(data, associated_data=associated_data)
    if password is not None:
        return _token_encrypt(data, password, kdf=kdf, associated_data=associated_data)
    raise TypeError("give exactly one of password or key")


def import_fernet(
    token: str | bytes,
    fernet_key: str | bytes,
    *,
    password: str | bytes | PasswordKey | None = None,
    key: bytes | None = None,
    kdf: Kdf = DEFAULT_KDF,
    associated_data: bytes | None = None,
    ttl: int | None = None,
    now: float | None = None,
) -> str:
    """Convert a Fernet token into one of our tokens under ``password`` or a raw 32-byte ``key``.

    The Fernet token is fully verified first (``fernet_decrypt``); its bytes come out as bytes.
    A ``PasswordKey`` as ``password`` (its own KDF; ``kdf`` ignored) converts many tokens for
    one KDF run instead of one per token.
    """
    _check_target(password, key)
    data = fernet_decrypt(token, fernet_key, ttl=ttl, now=now)
    return _seal(data, password, key, kdf, associated_data)


# --- AES Crypt stream format version 2 (https://www.aescrypt.com/aes_file_format.html) ---

AESCRYPT_MAGIC: Final = b"AES"
AESCRYPT_VERSION: Final = 2
AESCRYPT_STRETCH_ROUNDS: Final = 8192
"""SHA-256 rounds of AES Crypt v2's password stretching (fixed by the format)."""
_AESCRYPT_MAX_EXTENSION_BYTES = 1 << 20
"""Refuse headers whose extensions exceed this: real files carry a few hundred bytes."""
_AESCRYPT_KEY_BLOCK = BLOCK_SIZE + KEY_SIZE  # encrypted (IV || file key)
_AESCRYPT_TRAILER = 1 + TAG_SIZE  # size mod 16, HMAC
_READ_SIZE = 256 * 1024


def aescrypt_stretch(password: str, iv: bytes) -> bytes:
    """AES Crypt v2's key: 8192 x SHA-256(digest || UTF-16LE password), digest starting IV||0^16."""
    encoded = password.encode("utf-16-le")
    digest = iv + bytes(KEY_SIZE - len(iv))
    for _ in range(AESCRYPT_STRETCH_ROUNDS):
        digest = hashlib.sha256(digest + encoded).digest()
    return digest


def _read_exact(src: BinaryIO, n: int, what: str) -> bytes:
    data = b""
    while len(data) < n:
        piece = src.read(n - len(data))
        if not piece:
            raise HeaderError(f"failed to read aes crypt header: truncated {what}")
        data += piece
    return data


class _AesCryptReader(io.RawIOBase):
    """A readable plaintext view of an AES Crypt v2 stream, constant memory.

    The header (magic, version, extensions, the password-wrapped file key and its HMAC) is read
    and verified on construction: wrong password or damage -> ``HeaderError``. Payload plaintext
    is released as it decrypts, except the final block, which only comes out once the whole-file
    HMAC verified; so a consumer that writes a terminal marker at EOF (our stream format) never
    finalizes unverified data. The first error is stored and raised again on every later read.
    """

    def __init__(self, src: BinaryIO, password: str) -> None:
        super().__init__()
        self._src = src
        self._error: DecryptionError | None = None
        self._offset = 0
        file_key, self._iv = self._read_header(password)
        self._payload_start = self._offset
        self._mac = hmac_sha256_stream(file_key)
        self._file_key = file_key
        self._pending = bytearray()  # ciphertext (and trailer) read but not yet decrypted
        self._out = bytearray()  # verified-or-not-final plaintext ready for the caller
        self._eof = False

    def _read(self, n: int, what: str) -> bytes:
        """Read a header field, counting header bytes so damage reports name the payload start."""
        data = _read_exact(self._src, n, what)
        self._offset += n
        return data

    def _read_header(self, password: str) -> tuple[bytes, bytes]:
        if self._read(3, "magic") != AESCRYPT_MAGIC:
            raise HeaderError("failed to read aes crypt header: not an aes crypt file")
        version, _reserved = self._read(2, "version")
        if version != AESCRYPT_VERSION:
            raise HeaderError(f"failed to read aes crypt header: unsupported version {version}")
        skipped = 0
        while True:
            (length,) = struct.unpack(">H", self._read(2, "extension length"))
            if length == 0:
                break
            skipped += length
            if skipped > _AESCRYPT_MAX_EXTENSION_BYTES:
                raise HeaderError("failed to read aes crypt header: extensions too large")
            self._read(length, "extension")
        iv = self._read(BLOCK_SIZE, "iv")
        wrapped = self._read(_AESCRYPT_KEY_BLOCK, "key block")
        tag = self._read(TAG_SIZE, "key block hmac")
        stretched = aescrypt_stretch(password, iv)
        if not constant_time_equal(hmac_sha256(stretched, wrapped), tag):
            raise HeaderError("wrong password or damaged header")
        inner = aes_cbc_decrypt_raw(stretched, iv, wrapped)
        return inner[BLOCK_SIZE:], inner[:BLOCK_SIZE]

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        if self._error is not None:
            raise self._error
        try:
            while not self._out and not self._eof:
                self._fill()
        except DecryptionError as exc:
            self._error = exc
            raise
        n = min(len(view), len(self._out))
        view[:n] = self._out[:n]
        del self._out[:n]
        return n

    def _fill(self) -> None:
        """Read more ciphertext; decrypt all of it except the last block and the trailer."""
        piece = self._src.read(_READ_SIZE)
        if not piece:
            self._finish()
            return
        self._pending += piece
        # Keep the trailer and one block back: only the end of the file tells which is which.
        ready = len(self._pending) - _AESCRYPT_TRAILER - BLOCK_SIZE
        ready -= ready % BLOCK_SIZE
        if ready > 0:
            self._decrypt(ready)

    def _decrypt(self, n: int) -> None:
        ct = bytes(self._pending[:n])
        del self._pending[:n]
        self._mac.update(ct)
        self._out += aes_cbc_decrypt_raw(self._file_key, self._iv, ct)
        self._iv = ct[-BLOCK_SIZE:]

    def _finish(self) -> None:
        """At end of input: verify the file HMAC, then release the last block without padding."""
        self._eof = True
        damaged = StreamDamaged(
            f"data damaged at byte {self._payload_start}: aes crypt hmac mismatch or truncated",
            offset=self._payload_start,
        )
        if len(self._pending) < _AESCRYPT_TRAILER:
            raise damaged
        ct = bytes(self._pending[:-_AESCRYPT_TRAILER])
        size_mod_16 = self._pending[-_AESCRYPT_TRAILER]
        tag = bytes(self._pending[-TAG_SIZE:])
        if len(ct) % BLOCK_SIZE or size_mod_16 >= BLOCK_SIZE:
            raise damaged
        self._mac.update(ct)
        if not constant_time_equal(self._mac.finalize(), tag):
            raise damaged
        self._pending.clear()
        plain = aes_cbc_decrypt_raw(self._file_key, self._iv, ct) if ct else b""
        if size_mod_16:
            if not plain:
                raise damaged
            # v2 does not authenticate this byte; the data bytes themselves are authenticated.
            plain = plain[: len(plain) - BLOCK_SIZE + size_mod_16]
        self._out += plain


def import_aescrypt(
    src: BinaryIO,
    dst: BinaryIO,
    aescrypt_password: str,
    password: str | bytes | None = None,
    *,
    key: bytes | None = None,
    kdf: Kdf = DEFAULT_KDF,
) -> int:
    """Convert an AES Crypt v2 stream into our stream format, in one pass and constant memory.

    Returns the plaintext size. Wrong ``aescrypt_password`` or a damaged header -> ``HeaderError``
    before anything is written; payload damage -> ``StreamDamaged`` before the converted stream's
    final chunk is written, so ``dst`` then holds a truncated stream that every reader refuses.
    Use ``import_aescrypt_file`` to leave no output at all.
    """
    if not isinstance(aescrypt_password, str):
        raise TypeError(f"aescrypt_password must be str, not {type(aescrypt_password).__name__}")
    if not aescrypt_password:
        raise ValueError("aescrypt_password must not be empty")
    _check_target(password, key)
    reader = _AesCryptReader(src, aescrypt_password)
    return encrypt_stream(
        io.BufferedReader(reader, _READ_SIZE),
        dst,
        password,
        key=None if key is None else bytes(key),
        kdf=kdf,
    )


def import_aescrypt_file(
    src_path: str | os.PathLike[str],
    dst_path: str | os.PathLike[str],
    aescrypt_password: str,
    password: str | bytes | None = None,
    *,
    key: bytes | None = None,
    kdf: Kdf = DEFAULT_KDF,
    overwrite: bool = False,
) -> int:
    """Convert an AES Crypt v2 file into ours, atomically: no output remains on any failure.

    The converted stream goes to a temp file beside ``dst_path`` that is renamed into place only
    after the AES Crypt HMAC verified (the stream helpers' atomic machinery). Returns the
    plaintext size; ``FileExistsError`` for an existing ``dst_path`` unless ``overwrite``.
    """
    _check_paths(src_path, dst_path)
    with open(src_path, "rb") as src, _atomic_output(dst_path, overwrite) as dst:
        return import_aescrypt(src, dst, aescrypt_password, password, key=key, kdf=kdf)
