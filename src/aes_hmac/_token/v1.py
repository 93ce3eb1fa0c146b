"""Token format v1: AES-256-CBC + HMAC-SHA256 over a versioned header (docs/FORMAT.md, "token").

Binary form: ``A5 01 kdf_id params salt iv ciphertext tag``. The plaintext carries one type byte
in front of the data (bytes or UTF-8 text), so the type the caller gave comes back, authenticated
and hidden. ``FORMAT`` is this module's entry in ``_token.FORMATS``.
"""

from __future__ import annotations

import struct
from typing import Final

from .._errors import InvalidToken
from .._kdf import KDF_RAW, PARAMS_SIZE, Kdf, decode_kdf, encode_utf8
from .._primitives import (
    BLOCK_SIZE,
    IV_SIZE,
    KEY_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    BytesLike,
    ChainedCbcHmac,
    pkcs7_pad,
    pkcs7_unpad,
    split_key,
)
from .format import MAGIC, TokenFormat, TokenParts

VERSION: Final = 0x01
KEY_LABEL: Final = b"aes-hmac token v1"
"""HKDF label of the token format's key schedule (FORMAT.md 1.2)."""

TYPE_BYTES: Final = 0x00
TYPE_TEXT: Final = 0x01
_TYPE_BYTES_PREFIX: Final = bytes((TYPE_BYTES,))
_TYPE_TEXT_PREFIX: Final = bytes((TYPE_TEXT,))

_FIXED_HEADER: Final = 3
"""magic, version, KDF id."""
RAW_HEADER: Final = bytes((MAGIC, VERSION, KDF_RAW))
MIN_TOKEN_SIZE: Final = _FIXED_HEADER + IV_SIZE + BLOCK_SIZE + TAG_SIZE
"""The shortest possible token (raw key, one ciphertext block): 67 bytes."""

_NO_AD_TRAILER: Final = bytes(8)


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
        plain = _plaintext(data)
        trailer = _trailer(associated_data)
        return self._cbc.seal(header, pkcs7_pad(plain), trailer)

    def seal_with_iv(
        self, header: bytes, iv: bytes, data: bytes | str, associated_data: BytesLike | None
    ) -> bytes:
        """``seal`` with a fixed IV, for reproducible test vectors and the design-note tuple."""
        plain = _plaintext(data)
        return self._cbc.seal_with_iv(header, iv, pkcs7_pad(plain), _trailer(associated_data))

    def open(self, raw: bytes, header_len: int, associated_data: BytesLike | None) -> bytes | str:
        """Verify the tag of a binary token whose layout is valid, then decrypt it."""
        padded = self._cbc.open(raw, header_len, _trailer(associated_data))
        if padded is None:
            raise InvalidToken("authentication failed")
        return _unwrap(padded)


def check_input(data: object, associated_data: object) -> None:
    """The ``TypeError``/``ValueError`` that sealing ``data`` would raise, before any KDF runs."""
    _plaintext(data)
    _trailer(associated_data)


def _plaintext(data: object) -> bytes:
    if isinstance(data, bytes):
        return _TYPE_BYTES_PREFIX + data
    if isinstance(data, str):
        return _TYPE_TEXT_PREFIX + encode_utf8(data, "data")
    if isinstance(data, bytearray | memoryview):
        return _TYPE_BYTES_PREFIX + bytes(data)
    raise TypeError(f"data must be bytes or str, not {type(data).__name__}")


def _trailer(associated_data: object) -> bytes:
    """``ad || u64(len(ad))``: the length makes the split between token and ad unambiguous."""
    if associated_data is None:
        return _NO_AD_TRAILER
    if not isinstance(associated_data, bytes | bytearray | memoryview):
        raise TypeError(
            f"associated_data must be bytes or None, not {type(associated_data).__name__}"
        )
    ad = bytes(associated_data)
    return ad + struct.pack(">Q", len(ad))


def _unwrap(padded: bytes) -> bytes | str:
    """Unpad, then read the type byte; reached only with an authentic token."""
    try:
        plain = pkcs7_unpad(padded)
    except ValueError:
        raise InvalidToken("invalid padding") from None
    if not plain:
        raise InvalidToken("invalid data type byte")
    kind = plain[0]
    if kind == TYPE_BYTES:
        return plain[1:]
    if kind == TYPE_TEXT:
        text = _utf8_or_none(plain[1:])
        if text is None:
            raise InvalidToken("invalid utf-8 text")
        return text
    raise InvalidToken("invalid data type byte")


def _utf8_or_none(data: bytes) -> str | None:
    """``data`` as UTF-8 text, or ``None``: an error raised later must not carry the decode
    error (and with it the plaintext) as its ``__context__``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


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
    ct_len = len(raw) - header_len - IV_SIZE - TAG_SIZE
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
    return TokenParts(header=raw[:header_len], kdf=kdf, salt=raw[params_end:header_len], raw=raw)


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
    version=VERSION, parse=parse, header_for=header_for, cipher=TokenKeys, check_input=check_input
)
