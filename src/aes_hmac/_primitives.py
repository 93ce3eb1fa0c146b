"""The bottom layer: AES-256-CBC, PKCS7, HMAC-SHA256, HKDF-SHA256 and randomness.

Everything cryptographic in the package goes through this module, and everything here comes from
``cryptography`` (randomness from ``os.urandom``). No I/O, no formats: callers pass bytes.
"""

from __future__ import annotations

import hmac as _hmac
import os

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives import hmac as _chmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEY_SIZE = 32
"""Bytes in an AES-256 key, an HMAC-SHA256 key and a master key."""
BLOCK_SIZE = 16
"""AES block size in bytes; also the IV size."""
IV_SIZE = BLOCK_SIZE
TAG_SIZE = 32
"""HMAC-SHA256 tag size in bytes (never truncated)."""
SALT_SIZE = 16

_SHA256 = hashes.SHA256()
_PKCS7_BITS = BLOCK_SIZE * 8


def random_bytes(n: int) -> bytes:
    """Return ``n`` bytes from the operating system's CSPRNG."""
    return os.urandom(n)


def hkdf_sha256(ikm: bytes, info: bytes, length: int = KEY_SIZE) -> bytes:
    """HKDF-SHA256 (RFC 5869) with an empty salt: a labelled subkey of a uniform master key."""
    return HKDF(algorithm=_SHA256, length=length, salt=None, info=info).derive(ikm)


def split_key(master: bytes, label: bytes) -> tuple[bytes, bytes]:
    """Derive an independent (AES key, HMAC key) pair from one master key.

    The two subkeys use the infos ``label + b" encryption"`` and ``label + b" authentication"``, so
    no key ever serves both AES and HMAC.
    """
    return (
        hkdf_sha256(master, label + b" encryption"),
        hkdf_sha256(master, label + b" authentication"),
    )


def constant_time_equal(a: bytes, b: bytes) -> bool:
    """Compare two byte strings in time independent of where they differ."""
    return _hmac.compare_digest(a, b)


def hmac_sha256(key: bytes, *parts: bytes) -> bytes:
    """HMAC-SHA256 of the concatenation of ``parts``."""
    h = _chmac.HMAC(key, _SHA256)
    for part in parts:
        h.update(part)
    return h.finalize()


def pkcs7_pad(data: bytes) -> bytes:
    """PKCS7-pad ``data`` to a whole number of AES blocks (always adds 1..16 bytes)."""
    padder = padding.PKCS7(_PKCS7_BITS).padder()
    return padder.update(data) + padder.finalize()


def pkcs7_unpad(data: bytes) -> bytes:
    """Remove PKCS7 padding; raises ``ValueError`` when the padding is malformed."""
    unpadder = padding.PKCS7(_PKCS7_BITS).unpadder()
    return unpadder.update(data) + unpadder.finalize()


def aes_cbc_encrypt_raw(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-256-CBC over block-aligned ``data``, no padding."""
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return enc.update(data) + enc.finalize()


def aes_cbc_decrypt_raw(key: bytes, iv: bytes, data: bytes) -> bytes:
    """AES-256-CBC decryption of block-aligned ``data``, no unpadding."""
    dec = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return dec.update(data) + dec.finalize()


class CbcHmac:
    """Encrypt-then-MAC with a fixed (AES key, HMAC key) pair, reusing the key objects.

    The AES key object and a keyed HMAC state are built once; each message copies the HMAC state,
    which skips re-hashing the key pads. This is what makes small-message rates high. The object
    never exposes its keys and its ``repr`` shows none.
    """

    __slots__ = ("_aes", "_mac")

    def __init__(self, enc_key: bytes, mac_key: bytes) -> None:
        if len(enc_key) != KEY_SIZE or len(mac_key) != KEY_SIZE:
            raise ValueError(f"keys must be {KEY_SIZE} bytes each")
        self._aes = algorithms.AES(enc_key)
        self._mac = _chmac.HMAC(mac_key, _SHA256)

    def __repr__(self) -> str:
        return "<CbcHmac (keys hidden)>"

    def encrypt(self, iv: bytes, plaintext: bytes) -> bytes:
        """PKCS7-pad and AES-256-CBC-encrypt ``plaintext`` under ``iv``."""
        padder = padding.PKCS7(_PKCS7_BITS).padder()
        padded = padder.update(plaintext) + padder.finalize()
        enc = Cipher(self._aes, modes.CBC(iv)).encryptor()
        return enc.update(padded) + enc.finalize()

    def encrypt_unpadded(self, iv: bytes, data: bytes) -> bytes:
        """AES-256-CBC-encrypt block-aligned ``data`` (no padding), for full stream chunks."""
        enc = Cipher(self._aes, modes.CBC(iv)).encryptor()
        return enc.update(data) + enc.finalize()

    def decrypt(self, iv: bytes, ciphertext: bytes) -> bytes:
        """Decrypt and unpad; only call after the tag verified. ``ValueError`` on bad padding."""
        dec = Cipher(self._aes, modes.CBC(iv)).decryptor()
        padded = dec.update(ciphertext) + dec.finalize()
        unpadder = padding.PKCS7(_PKCS7_BITS).unpadder()
        return unpadder.update(padded) + unpadder.finalize()

    def decrypt_unpadded(self, iv: bytes, ciphertext: bytes) -> bytes:
        """Decrypt block-aligned ``ciphertext`` without unpadding; only after the tag verified."""
        dec = Cipher(self._aes, modes.CBC(iv)).decryptor()
        return dec.update(ciphertext) + dec.finalize()

    def tag(self, *parts: bytes) -> bytes:
        """HMAC-SHA256 over the concatenation of ``parts``."""
        h = self._mac.copy()
        for part in parts:
            h.update(part)
        return h.finalize()

    def verify(self, tag: bytes, *parts: bytes) -> bool:
        """True when ``tag`` is the HMAC of ``parts``; compared in constant time."""
        return constant_time_equal(self.tag(*parts), tag)
