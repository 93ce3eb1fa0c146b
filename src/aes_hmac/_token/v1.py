"""Token format v1: AES-256-CBC + HMAC-SHA256 over a versioned header (docs/FORMAT.md, "token").

Binary form: ``A5 01 kdf_id params salt iv ciphertext tag``. The plaintext carries one type byte
in front of the data (bytes or UTF-8 text), so the type the caller gave comes back, authenticated
and hidden (that rule, and the associated-data trailer, are ``format``'s). ``FORMAT`` is
this module's entry in ``codec.FORMATS``.
"""

from __future__ import annotations

from typing import Final

from .._errors import InvalidToken
from .._kdf import KDF_RAW, PARAMS_SIZE, Kdf, decode_kdf
from .._primitives import (
    BLOCK_SIZE,
    IV_SIZE,
    KEY_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    BytesLike,
    ChainedCbcHmac,
    pkcs7_pad,
    split_key,
)
from .format import MAGIC, TokenFormat, TokenParts, plaintext, trailer, unwrap

VERSION: Final = 0x01
KEY_LABEL: Final = b"aes-hmac token v1"
"""HKDF label of the token format's key schedule (FORMAT.md 1.2)."""

_FIXED_HEADER: Final = 3
"""magic, version, KDF id."""
RAW_HEADER: Final = bytes((MAGIC, VERSION, KDF_RAW))
MIN_TOKEN_SIZE: Final = _FIXED_HEADER + IV_SIZE + BLOCK_SIZE + TAG_SIZE
"""The shortest possible token (raw key, one ciphertext block): 67 bytes."""
_OVERHEAD: Final = IV_SIZE + TAG_SIZE


class TokenKeys:
    """The token format's keys from one master key, derived once and reused for every message."""

    __slots__ = ("_cbc",)

    def __init__(self, master: bytes) -> None:
        if len(master) != KEY_SIZE:
            raise ValueError(f"master key must be {KEY_SIZE} bytes, got {len(master)}")
        self._cbc = ChainedCbcHmac(*split_key(master, KEY_LABEL))

    def __repr__(self) -> str:
        return "<TokenKeys (keys hidden)>"

    def seal(self, header: bytes, data: bytes | str, associated_data: BytesLike | None) -> bytes:
        """Binary token of ``data`` behind ``header`` (everything up to the IV)."""
        return self._cbc.seal(header, pkcs7_pad(plaintext(data)), trailer(associated_data))

    def seal_with_iv(
        self, header: bytes, iv: bytes, data: bytes | str, associated_data: BytesLike | None
    ) -> bytes:
        """``seal`` with a fixed IV, for reproducible test vectors and the design-note tuple."""
        padded = pkcs7_pad(plaintext(data))
        return self._cbc.seal_with_iv(header, iv, padded, trailer(associated_data))

    def open(self, raw: bytes, header_len: int, associated_data: BytesLike | None) -> bytes | str:
        """Verify the tag of a binary token whose layout is valid, then decrypt it."""
        padded = self._cbc.open(raw, header_len, trailer(associated_data))
        if padded is None:
            raise InvalidToken("authentication failed")
        return unwrap(padded)

    def open_own(
        self, raw: bytes, header: bytes, associated_data: BytesLike | None
    ) -> bytes | str | None:
        """``open`` when ``raw`` starts with ``header`` and has v1's layout (the check mirrors
        ``parse``), else None. ``open`` is inlined: this is the per-token hot path."""
        start = len(header)
        body = len(raw) - start - _OVERHEAD
        if body < BLOCK_SIZE or body % BLOCK_SIZE or not raw.startswith(header):
            return None
        padded = self._cbc.open(raw, start, trailer(associated_data))
        if padded is None:
            raise InvalidToken("authentication failed")
        return unwrap(padded)


def header_for(kdf: Kdf | None, salt: bytes) -> bytes:
    """The bytes before the IV: magic, version, KDF id, parameters and salt (none for raw keys)."""
    if kdf is None:
        if salt:
            raise ValueError("salt must be empty for a raw key")
        return RAW_HEADER
    if len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be {SALT_SIZE} bytes, got {len(salt)}")
    return bytes((MAGIC, VERSION, kdf.kdf_id)) + kdf.encode() + salt


def parse(raw: bytes) -> TokenParts:
    """Check the layout after magic and version: KDF id and parameters, lengths.

    Authenticates nothing and runs no KDF. Raises ``InvalidToken`` with a short reason.
    """
    if len(raw) < _FIXED_HEADER:
        raise InvalidToken("token too short")
    kdf_id = raw[2]
    if kdf_id not in PARAMS_SIZE:
        raise InvalidToken(f"unknown kdf id {kdf_id}")
    params_end = _FIXED_HEADER + PARAMS_SIZE[kdf_id]
    header_len = params_end if kdf_id == KDF_RAW else params_end + SALT_SIZE
    ct_len = len(raw) - header_len - _OVERHEAD
    if ct_len < BLOCK_SIZE:
        raise InvalidToken("token too short")
    if ct_len % BLOCK_SIZE:
        raise InvalidToken("token length is not a whole number of blocks")
    kdf: Kdf | None = None
    if kdf_id != KDF_RAW:
        try:
            kdf = decode_kdf(kdf_id, raw[_FIXED_HEADER:params_end])
        except ValueError as exc:
            raise InvalidToken(f"invalid kdf parameters: {exc}") from None
    salt = raw[params_end:header_len]
    return TokenParts(header=raw[:header_len], kdf=kdf, salt=salt, raw=raw, format=FORMAT)


def seal_fixed(
    data: bytes | str,
    master: bytes,
    kdf: Kdf | None,
    salt: bytes,
    iv: bytes,
    associated_data: BytesLike | None,
) -> bytes:
    """A binary token with a caller-chosen salt and IV (``kdf`` None and no salt: raw key).

    For reproducible test vectors and the design-note tuple, which draws its own salt and IV.
    """
    return TokenKeys(master).seal_with_iv(header_for(kdf, salt), iv, data, associated_data)


FORMAT: Final = TokenFormat(
    version=VERSION,
    nonce_size=IV_SIZE,
    overhead=_OVERHEAD,
    parse=parse,
    header_for=header_for,
    cipher=TokenKeys,
)
