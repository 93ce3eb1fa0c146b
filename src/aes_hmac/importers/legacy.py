"""Tuples made by the ORIGINAL script (the design note's first version): read them, convert them.

Its design is weak and cannot be fixed: one PBKDF2 key for AES and HMAC, and a MAC over the base64
text alone, so the IV is not authenticated. A changed IV alters the first plaintext block
undetected, and whether reading then fails ("invalid padding or text") or succeeds is a CBC
padding oracle: whoever can submit tuples with chosen IVs and see the outcome recovers a one-block
message (up to 15 bytes) without the password. Reading is opt-in and named so: convert once, from
tuples you hold, never on tuples someone else can submit. The tuple field checks here are shared
with ``aes_hmac.compat``.
"""

from __future__ import annotations

import binascii
from typing import Final

from .._encrypt import encrypt
from .._errors import InvalidToken
from .._kdf import DEFAULT_KDF, PBKDF2, Kdf, derive_master, encode_utf8
from .._primitives import (
    BLOCK_SIZE,
    IV_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    BytesLike,
    aes_cbc_decrypt_raw,
    constant_time_equal,
    hmac_sha256,
    pkcs7_unpad,
)

__all__ = ["convert_legacy", "decrypt_legacy_insecure"]

LEGACY_ITERATIONS: Final = 200_000
"""PBKDF2 iterations of the original script."""


def _check_bytes(name: str, value: object, size: int) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    value = bytes(value)
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
    return value


def check_tuple(iv: object, salt: object, mac: object) -> tuple[bytes, bytes, bytes]:
    """Sizes and types of a tuple's byte fields: wrong ones are caller mistakes, not tampering."""
    return (
        _check_bytes("iv", iv, IV_SIZE),
        _check_bytes("salt", salt, SALT_SIZE),
        _check_bytes("mac", mac, TAG_SIZE),
    )


def decode_ciphertext(ciphertext: object) -> bytes:
    """Canonical standard base64 (with padding) text to bytes; anything else is tampering."""
    if isinstance(ciphertext, str):
        try:
            text = ciphertext.encode("ascii")
        except UnicodeEncodeError:
            raise InvalidToken("ciphertext is not valid base64") from None
    elif isinstance(ciphertext, bytes | bytearray | memoryview):
        text = bytes(ciphertext)
    else:
        raise TypeError(f"ciphertext must be str, not {type(ciphertext).__name__}")
    try:
        ct = binascii.a2b_base64(text, strict_mode=True)
    except binascii.Error:
        raise InvalidToken("ciphertext is not valid base64") from None
    # Strict mode still accepts nonzero unused bits in the last character (several spellings of
    # one ciphertext); only the canonical spelling is accepted, so any change to the text raises.
    if binascii.b2a_base64(ct, newline=False) != text:
        raise InvalidToken("ciphertext is not valid base64")
    if not ct or len(ct) % BLOCK_SIZE:
        raise InvalidToken("ciphertext length is not a whole number of blocks")
    return ct


def _legacy_password(password: object) -> bytes:
    # The original script encoded text passwords as plain UTF-8, without NFC normalization.
    if isinstance(password, str):
        return encode_utf8(password, "password")
    if isinstance(password, bytes | bytearray | memoryview):
        return bytes(password)
    raise TypeError(f"password must be str or bytes, not {type(password).__name__}")


def decrypt_legacy_insecure(
    ciphertext: str, password: str | bytes, iv: bytes, salt: bytes, mac: bytes
) -> str:
    """Read a tuple made by the ORIGINAL script (opt-in; its design is weak, convert it soon).

    The original derived one 32-byte PBKDF2-HMAC-SHA256 key (200,000 iterations) for both AES and
    HMAC and MACed only the base64 ciphertext text, so a changed IV alters the first 16 bytes of
    plaintext undetected, and the outcome for a changed IV (padding error or success) is a padding
    oracle on one-block messages. Checking the MAC first does not help: it does not cover the IV.
    Never run this on tuples an attacker can submit.
    """
    pw = _legacy_password(password)
    iv, salt, mac = check_tuple(iv, salt, mac)
    if not isinstance(ciphertext, str):
        raise TypeError(f"ciphertext must be str, not {type(ciphertext).__name__}")
    try:
        text = ciphertext.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken("ciphertext is not valid base64") from None
    key = derive_master(pw, salt, PBKDF2(LEGACY_ITERATIONS))
    if not constant_time_equal(hmac_sha256(key, text), mac):
        raise InvalidToken("authentication failed")
    ct = decode_ciphertext(ciphertext)
    plaintext = _unpadded_text(aes_cbc_decrypt_raw(key, iv, ct))
    if plaintext is None:  # raised here, not in an except block: no plaintext in __context__
        raise InvalidToken("invalid padding or text")
    return plaintext


def _unpadded_text(padded: bytes) -> str | None:
    """The unpadded UTF-8 text, or ``None`` (bad padding or bad UTF-8: both ValueError)."""
    try:
        return pkcs7_unpad(padded).decode("utf-8")
    except ValueError:
        return None


def convert_legacy(
    ciphertext: str,
    password: str | bytes,
    iv: bytes,
    salt: bytes,
    mac: bytes,
    *,
    kdf: Kdf = DEFAULT_KDF,
    associated_data: BytesLike | None = None,
) -> str:
    """Re-encrypt an original-script tuple as a token (text data) under the same password."""
    plaintext = decrypt_legacy_insecure(ciphertext, password, iv, salt, mac)
    return encrypt(plaintext, password, kdf=kdf, associated_data=associated_data)
