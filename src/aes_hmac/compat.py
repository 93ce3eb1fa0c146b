"""The design note's tuple API, hardened; and the original script's tuples (opt-in, converted).

``aes_encrypt`` returns ``(ciphertext, iv, salt, mac)`` as the note says, but it is a PBKDF2 token
split apart: the MAC is the token tag over ``A5 01 01 u32(iterations) salt iv ciphertext``, so it
covers the suite, the KDF parameters, the salt and the IV, and the keys for AES and HMAC differ.
The tuple cannot carry its iteration count: ``aes_decrypt(..., iterations=N)`` reads tuples made
under another default. ``decrypt_legacy_insecure`` and ``convert_legacy`` (from
``aes_hmac.importers.legacy``) read and convert tuples of the original script.
"""

from __future__ import annotations

import base64
from typing import Final

from ._kdf import PBKDF2, derive_master, encode_password
from ._primitives import IV_SIZE, SALT_SIZE, TAG_SIZE, BytesLike, random_bytes
from ._token.v1 import TokenKeys, header_for, seal_fixed
from .importers.legacy import (
    check_tuple,
    convert_legacy,
    decode_ciphertext,
    decrypt_legacy_insecure,
)

__all__ = ["aes_decrypt", "aes_encrypt", "convert_legacy", "decrypt_legacy_insecure"]

DEFAULT_ITERATIONS: Final = PBKDF2().iterations
"""PBKDF2 iterations of ``aes_encrypt``/``aes_decrypt``: the library's PBKDF2 default."""


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
    master = derive_master(pw, salt, kdf)
    raw = seal_fixed(plaintext, master, kdf, salt, random_bytes(IV_SIZE), associated_data)
    ct, iv, mac = _split_token(raw, len(header_for(kdf, salt)))
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
    iv, salt, mac = check_tuple(iv, salt, mac)
    kdf = PBKDF2(iterations)  # validates type and range, naming ``iterations``
    ct = decode_ciphertext(ciphertext)
    header = header_for(kdf, salt)
    keys = TokenKeys(derive_master(pw, salt, kdf))
    return keys.open(header + iv + ct + mac, len(header), associated_data)
