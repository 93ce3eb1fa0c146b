"""Token format v1: one self-describing value, AES-256-CBC + HMAC-SHA256 over a versioned header.

Binary form: ``A5 01 kdf_id params salt iv ciphertext tag`` (docs/FORMAT.md, "token format");
text form: URL-safe base64 of it without padding. The plaintext carries one type byte in front of
the data (bytes or UTF-8 text), so the type the caller gave comes back, authenticated and hidden.
Every failure of any kind is ``InvalidToken``; checks run in a fixed order, the KDF only after the
header parsed and its parameters passed the limits, decryption only after the tag verified.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from typing import Final

from ._errors import InvalidToken, KdfLimitError
from ._kdf import (
    DEFAULT_KDF,
    DEFAULT_LIMITS,
    KDF_RAW,
    PARAMS_SIZE,
    Kdf,
    KdfLimits,
    check_kdf,
    check_limits_arg,
    decode_kdf,
    derive_master,
    encode_password,
    encode_utf8,
)
from ._primitives import (
    BLOCK_SIZE,
    IV_SIZE,
    KEY_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    ChainedCbcHmac,
    pkcs7_pad,
    pkcs7_unpad,
    random_bytes,
    split_key,
)

MAGIC: Final = 0xA5
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
_B64URL_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# In canonical base64 the unused low bits of the last character are zero: 4 bits when the text
# length is 2 mod 4, 2 bits when it is 3 mod 4. Refusing the others gives each token one spelling.
_CANONICAL_LAST: Final = {
    0: _B64URL_ALPHABET,
    2: _B64URL_ALPHABET[::16],
    3: _B64URL_ALPHABET[::4],
}
_B64_PAD: Final = {0: b"", 2: b"==", 3: b"="}

BytesLike = bytes | bytearray | memoryview


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
    def iv(self) -> bytes:
        start = len(self.header)
        return self.raw[start : start + IV_SIZE]

    @property
    def ciphertext(self) -> bytes:
        return self.raw[len(self.header) + IV_SIZE : -TAG_SIZE]

    @property
    def tag(self) -> bytes:
        return self.raw[-TAG_SIZE:]


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

    def seal_padded(self, header: bytes, padded: bytes, trailer: bytes) -> bytes:
        """``seal`` of data its caller already checked: ``pkcs7_pad(_plaintext(data))`` and
        ``_trailer(associated_data)``, built before a KDF so that mistakes cost no KDF run."""
        return self._cbc.seal(header, padded, trailer)

    def seal_with_iv(
        self, header: bytes, iv: bytes, data: bytes | str, associated_data: BytesLike | None
    ) -> bytes:
        """``seal`` with a fixed IV, for reproducible test vectors only."""
        plain = _plaintext(data)
        return self._cbc.seal_with_iv(header, iv, pkcs7_pad(plain), _trailer(associated_data))

    def open(self, raw: bytes, header_len: int, associated_data: BytesLike | None) -> bytes | str:
        """Verify the tag of a binary token whose layout is valid, then decrypt it."""
        padded = self._cbc.open(raw, header_len, _trailer(associated_data))
        if padded is None:
            raise InvalidToken("authentication failed")
        return _unwrap(padded)


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
        try:
            return plain[1:].decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidToken("invalid utf-8 text") from None
    raise InvalidToken("invalid data type byte")


def header_for(kdf: Kdf | None, salt: bytes) -> bytes:
    """The bytes before the IV: magic, version, KDF id, parameters and salt (none for raw keys)."""
    if kdf is None:
        if salt:
            raise ValueError("salt must be empty for a raw key")
        return RAW_HEADER
    if len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be {SALT_SIZE} bytes, got {len(salt)}")
    return bytes((MAGIC, VERSION, kdf.kdf_id)) + kdf.encode() + salt


def token_to_bytes(token: str | BytesLike) -> bytes:
    """The binary form of a token given in either form (layout not checked; see ``parse``)."""
    if isinstance(token, str):
        try:
            text = token.strip().encode("ascii")
        except UnicodeEncodeError:
            raise InvalidToken("token is not valid base64") from None
        return _b64decode(text)
    if isinstance(token, bytes | bytearray | memoryview):
        data = bytes(token)
        if data[:1] == b"\xa5":
            return data
        return _b64decode(data.strip())
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


def parse(token: str | BytesLike) -> TokenParts:
    """Decode a token and check its layout: magic, version, KDF id and parameters, lengths.

    Authenticates nothing and runs no KDF. Raises ``InvalidToken`` with a short reason.
    """
    raw = token_to_bytes(token)
    if len(raw) < _FIXED_HEADER:
        raise InvalidToken("token too short")
    if raw[0] != MAGIC:
        raise InvalidToken("wrong magic byte")
    if raw[1] != VERSION:
        raise InvalidToken(f"unsupported token version {raw[1]}")
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


def check_limits(kdf: Kdf, limits: KdfLimits) -> None:
    """``InvalidToken`` naming the parameter and the limit when ``kdf`` costs more than allowed."""
    try:
        limits.check(kdf)
    except KdfLimitError as exc:
        raise exc.prefixed("kdf limits exceeded: ") from None


def open_parts(parts: TokenParts, master: bytes, associated_data: BytesLike | None) -> bytes | str:
    """Verify ``parts`` under a 32-byte master key (raw key or KDF output), then decrypt."""
    return TokenKeys(master).open(parts.raw, len(parts.header), associated_data)


def seal(
    data: bytes | str,
    master: bytes,
    kdf: Kdf | None,
    salt: bytes,
    associated_data: BytesLike | None,
) -> str:
    """Text token of ``data`` under a master key; ``kdf``/``salt`` are what the header records.

    The caller derived ``master`` from ``kdf`` and ``salt`` (or holds a raw key, kdf None).
    """
    return token_to_text(TokenKeys(master).seal(header_for(kdf, salt), data, associated_data))


def _encrypt_from_parts(
    data: bytes | str,
    password: str | bytes | None,
    kdf: Kdf | None,
    salt: bytes,
    iv: bytes,
    associated_data: BytesLike | None,
    *,
    master: bytes | None = None,
) -> str:
    """Build a token from fixed randomness (salt, IV), for test vectors that pin the format.

    Give either a password and a KDF, or ``master`` (a raw key) with ``kdf=None``.
    """
    if master is None:
        if password is None or kdf is None:
            raise ValueError("give a password and a kdf, or a raw master key")
        master = derive_master(encode_password(password), salt, check_kdf(kdf))
    keys = TokenKeys(master)
    return token_to_text(keys.seal_with_iv(header_for(kdf, salt), iv, data, associated_data))


def encrypt(
    data: bytes | str,
    password: str | bytes,
    *,
    kdf: Kdf = DEFAULT_KDF,
    associated_data: BytesLike | None = None,
) -> str:
    """Encrypt ``data`` under a password; returns a text token (URL-safe base64).

    A fresh random salt and IV per call, so each call runs the KDF once. ``str`` data comes back
    from ``decrypt`` as ``str``, ``bytes`` as ``bytes``. ``associated_data`` is authenticated but
    not stored: ``decrypt`` must be given the same bytes.
    """
    pw = encode_password(password)
    kdf = check_kdf(kdf)
    padded = pkcs7_pad(_plaintext(data))  # type and encoding errors before the expensive KDF
    trailer = _trailer(associated_data)
    salt = random_bytes(SALT_SIZE)
    keys = TokenKeys(derive_master(pw, salt, kdf))
    return token_to_text(keys.seal_padded(header_for(kdf, salt), padded, trailer))


def decrypt(
    token: str | BytesLike,
    password: str | bytes,
    *,
    associated_data: BytesLike | None = None,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> bytes | str:
    """Decrypt a token (either form) made by ``encrypt``; ``InvalidToken`` on any failure.

    The token's KDF parameters are checked against ``limits`` before any derivation.
    """
    pw = encode_password(password)
    _trailer(associated_data)
    check_limits_arg(limits)
    parts = parse(token)
    if parts.kdf is None:
        raise InvalidToken("token needs a raw key, not a password")
    check_limits(parts.kdf, limits)
    return open_parts(parts, derive_master(pw, parts.salt, parts.kdf), associated_data)
