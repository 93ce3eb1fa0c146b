"""Tokens on the wire: the text form, version dispatch, and sealing under the current version.

A token is ``A5 version ...`` (docs/FORMAT.md, "token format"); its text form is URL-safe base64
without padding. ``FORMATS`` maps each readable version to its module's ``TokenFormat``: a
version 2 is one new module and one entry here. Which version writes is the caller's ``version``
argument (``token_format`` checks it), ``DEFAULT_VERSION`` unless asked. Every
failure of any kind is ``InvalidToken``; checks run in a fixed order, the KDF only after the
header parsed and its parameters passed the limits, decryption only after the tag verified.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final

from .._errors import InvalidToken, KdfLimitError
from .._kdf import Kdf, KdfLimits, WorkBudget
from .._primitives import BytesLike
from . import v1 as _token_v1
from .format import MAGIC, TokenFormat, TokenParts

FORMATS: Final[dict[int, TokenFormat]] = {fmt.version: fmt for fmt in (_token_v1.FORMAT,)}
"""Every token format version this library reads and writes, by version byte."""
DEFAULT_VERSION: Final = 1
"""The version new tokens are written in unless the caller asks for another (``version=``)."""
DEFAULT_FORMAT: Final = FORMATS[DEFAULT_VERSION]

_MIN_SIZE: Final = 3
"""Every version has its magic, its version and at least one more byte."""
_B64URL_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# In canonical base64 the unused low bits of the last character are zero: 4 bits when the text
# length is 2 mod 4, 2 bits when it is 3 mod 4. Refusing the others gives each token one spelling.
_CANONICAL_LAST: Final = {
    0: _B64URL_ALPHABET,
    2: _B64URL_ALPHABET[::16],
    3: _B64URL_ALPHABET[::4],
}
_B64_PAD: Final = {0: b"", 2: b"==", 3: b"="}
_LIMITS_EXCEEDED: Final = "kdf limits exceeded: "
_SPACE: Final = " \t\r\n"
"""What may surround a token: ASCII space, tab, CR and LF only (``str.strip()`` would also take
Unicode spaces, separators and control characters such as U+3000, U+2028, U+0085, U+001C)."""
_SPACE_BYTES: Final = _SPACE.encode("ascii")


def token_to_bytes(token: str | BytesLike) -> bytes:
    """The binary form of a token given in either form (layout not checked; see ``parse``)."""
    if isinstance(token, str):
        try:
            text = token.strip(_SPACE).encode("ascii")
        except UnicodeEncodeError:
            raise InvalidToken("token is not valid base64") from None
        return _b64decode(text)
    if isinstance(token, bytes | bytearray | memoryview):
        data = bytes(token)
        if data[:1] == bytes((MAGIC,)):
            return data
        return _b64decode(data.strip(_SPACE_BYTES))
    raise TypeError(f"token must be str or bytes, not {type(token).__name__}")


def token_to_text(raw: bytes) -> str:
    """The text form of a binary token: URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: bytes) -> bytes:
    rem = len(text) % 4
    if (
        rem == 1
        or text.translate(None, _B64URL_ALPHABET)
        or (rem and text[-1] not in _CANONICAL_LAST[rem])
    ):
        raise InvalidToken("token is not valid base64")
    try:
        return base64.urlsafe_b64decode(text + _B64_PAD[rem])
    except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
        raise InvalidToken("token is not valid base64") from None


def token_format(version: object) -> TokenFormat:
    """The format of a ``version`` argument; ``TypeError``/``ValueError`` naming the choices."""
    if isinstance(version, bool) or not isinstance(version, int):
        raise TypeError(f"version must be an int, not {type(version).__name__}")
    fmt = FORMATS.get(version)
    if fmt is None:
        choices = ", ".join(str(v) for v in sorted(FORMATS))
        raise ValueError(f"version must be one of {choices}, got {version}")
    return fmt


def parse(token: str | BytesLike) -> TokenParts:
    """Decode a token and check its layout with its version's parser: magic, version, KDF id and
    parameters, lengths. Authenticates nothing and runs no KDF; ``InvalidToken`` with a reason."""
    raw = token_to_bytes(token)
    if len(raw) < _MIN_SIZE:
        raise InvalidToken("token too short")
    if raw[0] != MAGIC:
        raise InvalidToken("wrong magic byte")
    fmt = FORMATS.get(raw[1])
    if fmt is None:
        raise InvalidToken(f"unsupported token version {raw[1]}")
    return fmt.parse(raw)


def check_limits(kdf: Kdf, limits: KdfLimits) -> None:
    """``InvalidToken`` naming the parameter and the limit when ``kdf`` costs more than allowed."""
    try:
        limits.check(kdf)
    except KdfLimitError as exc:
        raise exc.prefixed(_LIMITS_EXCEEDED) from None


def charge(budget: WorkBudget, kdf: Kdf) -> None:
    """``budget.charge(kdf)`` with the token's message prefix when the work limit stops it."""
    try:
        budget.charge(kdf)
    except KdfLimitError as exc:
        raise exc.prefixed(_LIMITS_EXCEEDED) from None


def open_parts(parts: TokenParts, master: bytes, associated_data: BytesLike | None) -> bytes | str:
    """Verify ``parts`` under a 32-byte master key (raw key or KDF output), then decrypt."""
    cipher = parts.format.cipher(master)
    return cipher.open(parts.raw, len(parts.header), associated_data)


def seal(
    data: bytes | str,
    master: bytes,
    kdf: Kdf | None,
    salt: bytes,
    associated_data: BytesLike | None,
    fmt: TokenFormat = DEFAULT_FORMAT,
) -> str:
    """Text token of ``data`` in ``fmt`` under a master key; ``kdf``/``salt`` are what the header
    records. The caller derived ``master`` from ``kdf`` and ``salt`` (or holds a raw key)."""
    header = fmt.header_for(kdf, salt)
    return token_to_text(fmt.cipher(master).seal(header, data, associated_data))
