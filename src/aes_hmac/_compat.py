"""The design note's tuple API, hardened, and an opt-in reader for the original script's tuples.

``aes_encrypt`` returns ``(ciphertext, iv, salt, mac)`` as the note says, but it is a PBKDF2 token
split apart: the MAC is the token tag over ``A5 01 01 u32(iterations) salt iv ciphertext``, so it
covers the suite, the KDF parameters, the salt and the IV, and the keys for AES and HMAC differ.
The tuple cannot carry its iteration count: ``aes_decrypt(..., iterations=N)`` reads tuples made
under another default.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from ._errors import InvalidToken
from ._kdf import DEFAULT_KDF, PBKDF2, Kdf, derive_master, encode_password, encode_utf8
from ._primitives import (
    BLOCK_SIZE,
    IV_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    aes_cbc_decrypt_raw,
    constant_time_equal,
    hmac_sha256,
    pkcs7_unpad,
    random_bytes,
)
from ._token import BytesLike, TokenKeys, encrypt, header_for

DEFAULT_ITERATIONS: Final = 600_000
"""PBKDF2 iterations of ``aes_encrypt``/``aes_decrypt`` (OWASP 2023)."""
LEGACY_ITERATIONS: Final = 200_000
"""PBKDF2 iterations of the original script."""


def _check_bytes(name: str, value: object, size: int) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes, not {type(value).__name__}")
    value = bytes(value)
    if len(value) != size:
        raise ValueError(f"{name} must be {size} bytes, got {len(value)}")
    return value


def _check_tuple(iv: object, salt: object, mac: object) -> tuple[bytes, bytes, bytes]:
    """Sizes and types of a tuple's byte fields: wrong ones are caller mistakes, not tampering."""
    return (
        _check_bytes("iv", iv, IV_SIZE),
        _check_bytes("salt", salt, SALT_SIZE),
        _check_bytes("mac", mac, TAG_SIZE),
    )


def _decode_ciphertext(ciphertext: object) -> bytes:
    """Standard base64 (with padding) text to bytes; malformed text is tampering, not a typo."""
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
    if not ct or len(ct) % BLOCK_SIZE:
        raise InvalidToken("ciphertext length is not a whole number of blocks")
    return ct


def _split_token(raw: bytes, header_len: int) -> tuple[str, bytes, bytes]:
    iv_end = header_len + IV_SIZE
    ct = raw[iv_end:-TAG_SIZE]
    return base64.b64encode(ct).decode("ascii"), raw[header_len:iv_end], raw[-TAG_SIZE:]


def aes_encrypt(
    plaintext: str | bytes,
    password: str | bytes,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    associated_data: BytesLike | None = None,
) -> tuple[str, bytes, bytes, bytes]:
    """Encrypt as the design note says; returns ``(ciphertext, iv, salt, mac)``.

    ``ciphertext`` is standard base64 text, ``iv`` and ``salt`` 16 random bytes, ``mac`` 32 bytes.
    Keep the ``iterations`` you used: ``aes_decrypt`` needs the same value.
    """
    kdf = PBKDF2(iterations)  # validates type and range, naming ``iterations``
    pw = encode_password(password)
    salt = random_bytes(SALT_SIZE)
    header = header_for(kdf, salt)
    keys = TokenKeys(derive_master(pw, salt, kdf))
    raw = keys.seal_with_iv(header, random_bytes(IV_SIZE), plaintext, associated_data)
    ct, iv, mac = _split_token(raw, len(header))
    return ct, iv, salt, mac


def aes_decrypt(
    ciphertext: str,
    password: str | bytes,
    iv: bytes,
    salt: bytes,
    mac: bytes,
    *,
    iterations: int = DEFAULT_ITERATIONS,
    associated_data: BytesLike | None = None,
) -> str | bytes:
    """Verify and decrypt a tuple from ``aes_encrypt``; ``InvalidToken`` on any failure.

    ``iterations`` must be the value the tuple was made with (the tuple does not record it).
    """
    pw = encode_password(password)
    iv, salt, mac = _check_tuple(iv, salt, mac)
    kdf = PBKDF2(iterations)  # validates type and range, naming ``iterations``
    ct = _decode_ciphertext(ciphertext)
    header = header_for(kdf, salt)
    keys = TokenKeys(derive_master(pw, salt, kdf))
    return keys.open(header + iv + ct + mac, len(header), associated_data)


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
    plaintext undetected. The MAC is still verified before anything is decrypted.
    """
    pw = _legacy_password(password)
    iv, salt, mac = _check_tuple(iv, salt, mac)
    if not isinstance(ciphertext, str):
        raise TypeError(f"ciphertext must be str, not {type(ciphertext).__name__}")
    try:
        text = ciphertext.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidToken("ciphertext is not valid base64") from None
    key = derive_master(pw, salt, PBKDF2(LEGACY_ITERATIONS))
    if not constant_time_equal(hmac_sha256(key, text), mac):
        raise InvalidToken("authentication failed")
    ct = _decode_ciphertext(ciphertext)
    try:
        return pkcs7_unpad(aes_cbc_decrypt_raw(key, iv, ct)).decode("utf-8")
    except ValueError:  # bad padding or UnicodeDecodeError, both ValueError
        raise InvalidToken("invalid padding or text") from None


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
