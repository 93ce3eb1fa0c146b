"""What every token format version shares: the magic byte, the parsed parts, the version hooks,
and the rules no version may change: the type byte, the associated-data trailer, the unwrap.

A version module (``v1`` today) describes itself with one ``TokenFormat``: its layout,
sizes, parser, header and ciphers (with the fast open path ``Key``/``PasswordKey`` use);
``codec`` lists them in ``FORMATS`` and dispatches on the version byte, so a version 2 is
one new module plus its entry there.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

from .._errors import InvalidToken
from .._kdf import Kdf, encode_utf8
from .._primitives import BytesLike, pkcs7_unpad

MAGIC: Final = 0xA5
"""First byte of every token; the second is its format version."""

TYPE_BYTES: Final = 0x00
TYPE_TEXT: Final = 0x01
_TYPE_BYTES_PREFIX: Final = bytes((TYPE_BYTES,))
_TYPE_TEXT_PREFIX: Final = bytes((TYPE_TEXT,))
_NO_AD_TRAILER: Final = bytes(8)


@dataclass(frozen=True, slots=True)
class TokenParts:
    """A parsed token whose layout is valid; nothing in it is authenticated yet.

    ``kdf`` is None for a raw-key token (and ``salt`` is empty). ``format`` is the version that
    parsed it; what follows the header is that version's business (decryption works on ``raw``).
    """

    header: bytes
    kdf: Kdf | None
    salt: bytes
    raw: bytes
    format: TokenFormat

    @property
    def version(self) -> int:
        return self.format.version


class TokenCipher(Protocol):
    """A version's ciphers under one master key, built once and reused for many tokens."""

    def seal(self, header: bytes, data: bytes | str, associated_data: BytesLike | None) -> bytes:
        """Binary token of ``data`` behind ``header`` (everything up to the nonce)."""
        ...

    def open(self, raw: bytes, header_len: int, associated_data: BytesLike | None) -> bytes | str:
        """Verify the tag of a token whose layout is valid, then decrypt; ``InvalidToken``."""
        ...

    def open_own(
        self, raw: bytes, header: bytes, associated_data: BytesLike | None
    ) -> bytes | str | None:
        """The fast path of ``Key``/``PasswordKey``: ``open`` a token that starts with
        ``header`` and has this version's layout; None (nothing checked) when it does not, so
        the caller parses it instead."""
        ...


@dataclass(frozen=True)
class TokenFormat:
    """One token format version: its sizes, how to parse it, build its header, key its ciphers."""

    version: int
    nonce_size: int
    """Bytes of per-token randomness between the header and the ciphertext."""
    overhead: int
    """Bytes a token adds besides its header and its padded plaintext (nonce and tag)."""
    parse: Callable[[bytes], TokenParts]
    """Check the layout of a binary token that starts with ``MAGIC`` and this version."""
    header_for: Callable[[Kdf | None, bytes], bytes]
    """The bytes before the nonce for a KDF (None: raw key) and a salt (empty for a raw key)."""
    cipher: Callable[[bytes], TokenCipher]
    """The ciphers under a 32-byte master key (raw key or KDF output)."""
    raw_header: bytes = field(init=False)
    """The header of every raw-key token of this version."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "raw_header", self.header_for(None, b""))


def check_input(data: object, associated_data: object) -> None:
    """The ``TypeError``/``ValueError`` that sealing ``data`` would raise, before any KDF runs."""
    plaintext(data)
    trailer(associated_data)


def plaintext(data: object) -> bytes:
    """The type byte (bytes or UTF-8 text) and the data: what every version encrypts."""
    if isinstance(data, bytes):
        return _TYPE_BYTES_PREFIX + data
    if isinstance(data, str):
        return _TYPE_TEXT_PREFIX + encode_utf8(data, "data")
    if isinstance(data, bytearray | memoryview):
        return _TYPE_BYTES_PREFIX + bytes(data)
    raise TypeError(f"data must be bytes or str, not {type(data).__name__}")


def trailer(associated_data: object) -> bytes:
    """``ad || u64(len(ad))``, authenticated after the token: the length makes the split between
    token and ad unambiguous."""
    if associated_data is None:
        return _NO_AD_TRAILER
    if not isinstance(associated_data, bytes | bytearray | memoryview):
        raise TypeError(
            f"associated_data must be bytes or None, not {type(associated_data).__name__}"
        )
    ad = bytes(associated_data)
    return ad + struct.pack(">Q", len(ad))


def unwrap(padded: bytes) -> bytes | str:
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
