"""Fernet tokens (https://github.com/fernet/spec/blob/master/Spec.md) into our tokens.

The Fernet token's HMAC is verified before anything is decrypted; the data is then re-encrypted
by ``encrypt``. AES-128-CBC, which only Fernet uses, lives here rather than in ``_primitives``.
"""

from __future__ import annotations

import base64
import binascii
import struct
import time
from typing import Final

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from .._encrypt import encrypt
from .._errors import InvalidToken
from .._kdf import DEFAULT_KDF, Kdf, check_kdf
from .._keys.credentials import RawKey, Secret
from .._primitives import BLOCK_SIZE, TAG_SIZE, constant_time_equal, hmac_sha256, pkcs7_unpad
from ._target import token_target

__all__ = ["check_fernet_key", "fernet_decrypt", "import_fernet"]

FERNET_VERSION: Final = 0x80
FERNET_MAX_CLOCK_SKEW: Final = 60
"""Seconds a token's timestamp may lie in the future, as in the Fernet spec and pyca's Fernet."""
_FERNET_HALF_KEY = 16
"""Bytes in each half of a Fernet key: the HMAC key, then the AES-128 key."""
_FERNET_HEADER = struct.Struct(">BQ16s")  # version, timestamp, IV
_FERNET_MIN_SIZE = _FERNET_HEADER.size + BLOCK_SIZE + TAG_SIZE


def aes128_cbc_decrypt_raw(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-128-CBC decryption of block-aligned ``data``, no unpadding (cryptography's AES128)."""
    if len(key) != _FERNET_HALF_KEY:
        raise ValueError(f"key must be {_FERNET_HALF_KEY} bytes, got {len(key)}")
    dec = Cipher(algorithms.AES128(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


def check_fernet_key(fernet_key: str | bytes) -> tuple[bytes, bytes]:
    """Split a url-safe base64 Fernet key into (signing key, encryption key); errors name it."""
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
    signing_key, encryption_key = check_fernet_key(fernet_key)
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


def import_fernet(
    token: str | bytes,
    fernet_key: str | bytes,
    *,
    password: Secret | None = None,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
    associated_data: bytes | None = None,
    ttl: int | None = None,
    now: float | None = None,
) -> str:
    """Convert a Fernet token into one of our tokens under ``password`` or a raw 32-byte ``key``.

    ``password`` takes what ``encrypt`` takes (a password, ``Key`` or ``PasswordKey``), ``key``
    32 bytes or a ``Key``. The Fernet token is fully verified first (``fernet_decrypt``); its
    bytes come out as bytes. A ``PasswordKey`` (its own KDF; ``kdf`` ignored) converts many
    tokens for one KDF run instead of one per token.
    """
    target = token_target(password, key, kdf)
    check_kdf(kdf)  # also for a raw key or a PasswordKey, which make no use of it
    data = fernet_decrypt(token, fernet_key, ttl=ttl, now=now)
    return encrypt(data, target, kdf=kdf, associated_data=associated_data)
