"""What every token format version shares: the magic byte, the parsed parts, the version hooks.

A version module (``_token_v1`` today) describes itself with one ``TokenFormat``; ``_token``
lists them in ``FORMATS`` and dispatches on the version byte, so a version 2 is one new module
plus its entry there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from .._kdf import Kdf
from .._primitives import IV_SIZE, TAG_SIZE, BytesLike

MAGIC: Final = 0xA5
"""First byte of every token; the second is its format version."""


@dataclass(frozen=True, slots=True)
class TokenParts:
    """A parsed token whose layout is valid; nothing in it is authenticated yet.

    ``kdf`` is None for a raw-key token (and ``salt`` is empty). The IV, ciphertext and tag are
    slices of ``raw`` taken on demand: decryption works on ``raw`` itself.
    """

    header: bytes
    kdf: Kdf | None
    salt: bytes
    raw: bytes

    @property
    def version(self) -> int:
        return self.header[1]

    @property
    def iv(self) -> bytes:
        start = len(self.header)
        return self.raw[start : start + IV_SIZE]

    @property
    def ciphertext(self) -> bytes:
        return self.raw[len(self.header) + IV_SIZE : -TAG_SIZE]

    @property
    def tag(self) -> bytes:
        return self.raw[-TAG_SIZE:]


class TokenCipher(Protocol):
    """A version's ciphers under one master key, built once and reused for many tokens."""

    def seal(self, header: bytes, data: bytes | str, associated_data: BytesLike | None) -> bytes:
        """Binary token of ``data`` behind ``header`` (everything up to the IV)."""
        ...

    def open(self, raw: bytes, header_len: int, associated_data: BytesLike | None) -> bytes | str:
        """Verify the tag of a token whose layout is valid, then decrypt; ``InvalidToken``."""
        ...


@dataclass(frozen=True)
class TokenFormat:
    """One token format version: how to parse it, build its header and key its ciphers."""

    version: int
    parse: Callable[[bytes], TokenParts]
    """Check the layout of a binary token that starts with ``MAGIC`` and this version."""
    header_for: Callable[[Kdf | None, bytes], bytes]
    """The bytes before the IV for a KDF (None: raw key) and a salt (empty for a raw key)."""
    cipher: Callable[[bytes], TokenCipher]
    """The ciphers under a 32-byte master key (raw key or KDF output)."""
    check_input: Callable[[object, object], None]
    """``check_input(data, associated_data)``: the caller's mistakes, raised before any KDF."""
