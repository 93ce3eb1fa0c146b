"""Password-based key derivation: KDF choices, their encoded parameters, decrypt-side limits.

Each KDF has a one-byte id and a fixed-size big-endian parameter block; token and stream formats
embed ``kdf_id || params`` produced here, so there is exactly one encoder and one decoder. A KDF
always yields one 32-byte master key (deriving more from PBKDF2 would only cost the defender).
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass
from typing import ClassVar, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id as _Argon2id
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt as _Scrypt

from ._errors import KdfLimitError
from ._primitives import KEY_SIZE, SALT_SIZE

KDF_RAW: Final = 0x00
"""Not a KDF: the caller supplied a 32-byte key."""
KDF_PBKDF2: Final = 0x01
KDF_SCRYPT: Final = 0x02
KDF_ARGON2ID: Final = 0x03

_U32_MAX = 0xFFFF_FFFF
_PBKDF2_MAX_ITERATIONS = 0x7FFF_FFFF
"""cryptography (50) aborts the interpreter with a Rust panic from 2**31 iterations on."""


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


@dataclass(frozen=True)
class PBKDF2:
    """PBKDF2-HMAC-SHA256. 600,000 iterations is OWASP's 2023 recommendation."""

    iterations: int = 600_000

    kdf_id: ClassVar[int] = KDF_PBKDF2

    def __post_init__(self) -> None:
        _check_int("iterations", self.iterations, 1, _PBKDF2_MAX_ITERATIONS)

    def encode(self) -> bytes:
        return struct.pack(">I", self.iterations)

    def memory_bytes(self) -> int:
        return 0

    def derive(self, password: bytes, salt: bytes) -> bytes:
        return PBKDF2HMAC(hashes.SHA256(), KEY_SIZE, salt, self.iterations).derive(password)


@dataclass(frozen=True)
class Scrypt:
    """scrypt with N = 2**log2_n; memory is 128 * r * N bytes (default 128 MiB)."""

    log2_n: int = 17
    r: int = 8
    p: int = 1

    kdf_id: ClassVar[int] = KDF_SCRYPT

    def __post_init__(self) -> None:
        _check_int("log2_n", self.log2_n, 1, 63)
        _check_int("r", self.r, 1, _U32_MAX)
        _check_int("p", self.p, 1, _U32_MAX)
        # RFC 7914 requires r * p < 2**30; and cryptography computes 128 * r * N in 64 bits and
        # panics (an uncatchable abort) when it overflows, so both are refused here, at parse time.
        if self.r * self.p >= 1 << 30:
            raise ValueError(f"r * p must be below 2**30, got {self.r * self.p}")
        if self.memory_bytes() >= 1 << 63:
            raise ValueError(f"128 * r * N must be below 2**63, got {self.memory_bytes()}")

    def encode(self) -> bytes:
        return struct.pack(">BII", self.log2_n, self.r, self.p)

    def memory_bytes(self) -> int:
        return 128 * self.r * (1 << self.log2_n)

    def derive(self, password: bytes, salt: bytes) -> bytes:
        return _Scrypt(salt=salt, length=KEY_SIZE, n=1 << self.log2_n, r=self.r, p=self.p).derive(
            password
        )


@dataclass(frozen=True)
class Argon2id:
    """Argon2id (RFC 9106); defaults are the RFC's second recommendation (t=3, 64 MiB, 4 lanes)."""

    iterations: int = 3
    memory_kib: int = 65_536
    lanes: int = 4

    kdf_id: ClassVar[int] = KDF_ARGON2ID

    def __post_init__(self) -> None:
        _check_int("iterations", self.iterations, 1, _U32_MAX)
        _check_int("lanes", self.lanes, 1, 0xFF_FFFF)
        _check_int("memory_kib", self.memory_kib, 8 * self.lanes, _U32_MAX)

    def encode(self) -> bytes:
        return struct.pack(">III", self.iterations, self.memory_kib, self.lanes)

    def memory_bytes(self) -> int:
        return self.memory_kib * 1024

    def derive(self, password: bytes, salt: bytes) -> bytes:
        return _Argon2id(
            salt=salt,
            length=KEY_SIZE,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        ).derive(password)


Kdf = PBKDF2 | Scrypt | Argon2id
"""Any password KDF with its parameters."""

DEFAULT_KDF: Final[Kdf] = PBKDF2()

PARAMS_SIZE: Final = {KDF_RAW: 0, KDF_PBKDF2: 4, KDF_SCRYPT: 9, KDF_ARGON2ID: 12}
"""Size in bytes of the parameter block that follows each KDF id."""


@dataclass(frozen=True)
class KdfLimits:
    """Decrypt-side ceilings on KDF work, checked before any derivation starts.

    A token or file names its own KDF parameters; these limits stop a hostile one from stalling a
    server or exhausting its memory. Raise them explicitly to open data made with higher costs.
    """

    max_pbkdf2_iterations: int = 20_000_000
    max_memory_bytes: int = 1 << 30
    max_scrypt_p: int = 16
    max_argon2_iterations: int = 64
    max_argon2_lanes: int = 64

    def check(self, kdf: Kdf) -> None:
        """Raise ``KdfLimitError`` (a ``ValueError``) naming the parameter and the limit."""
        if isinstance(kdf, PBKDF2):
            _over("pbkdf2 iterations {} exceed", kdf.iterations, "max_pbkdf2_iterations", self)
        _over("kdf memory {} bytes exceeds", kdf.memory_bytes(), "max_memory_bytes", self)
        if isinstance(kdf, Scrypt):
            _over("scrypt p {} exceeds", kdf.p, "max_scrypt_p", self)
        if isinstance(kdf, Argon2id):
            _over("argon2id iterations {} exceed", kdf.iterations, "max_argon2_iterations", self)
            _over("argon2id lanes {} exceed", kdf.lanes, "max_argon2_lanes", self)


def _over(what: str, value: int, field: str, limits: KdfLimits) -> None:
    limit: int = getattr(limits, field)
    if value > limit:
        raise KdfLimitError(f"{what.format(value)} the limit {limit}", field, value, limit)


DEFAULT_LIMITS: Final = KdfLimits()


def check_kdf(kdf: object) -> Kdf:
    """``kdf`` itself, or ``TypeError`` naming the argument when it is not a KDF object."""
    if not isinstance(kdf, PBKDF2 | Scrypt | Argon2id):
        raise TypeError(f"kdf must be PBKDF2, Scrypt or Argon2id, not {type(kdf).__name__}")
    return kdf


def check_limits_arg(limits: object) -> KdfLimits:
    """``limits`` itself, or ``TypeError`` naming the argument when it is not ``KdfLimits``."""
    if not isinstance(limits, KdfLimits):
        raise TypeError(f"limits must be KdfLimits, not {type(limits).__name__}")
    return limits


def decode_kdf(kdf_id: int, params: bytes) -> Kdf:
    """Parse a parameter block; ``ValueError`` for an unknown id, a wrong size or a bad value."""
    if kdf_id not in PARAMS_SIZE or kdf_id == KDF_RAW:
        raise ValueError(f"unknown kdf id {kdf_id}")
    if len(params) != PARAMS_SIZE[kdf_id]:
        raise ValueError("truncated kdf parameters")
    if kdf_id == KDF_PBKDF2:
        (iterations,) = struct.unpack(">I", params)
        return PBKDF2(iterations)
    if kdf_id == KDF_SCRYPT:
        log2_n, r, p = struct.unpack(">BII", params)
        return Scrypt(log2_n, r, p)
    iterations, memory_kib, lanes = struct.unpack(">III", params)
    return Argon2id(iterations, memory_kib, lanes)


def encode_utf8(text: str, name: str) -> bytes:
    """UTF-8 bytes of a secret ``str``; ``ValueError`` naming the argument, never quoting it.

    A lone surrogate makes ``str.encode`` raise ``UnicodeEncodeError``, whose repr carries the
    whole string: that exception is replaced by one that holds only the argument name and index.
    """
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        position = exc.start
    raise ValueError(f"{name} is not valid unicode text (lone surrogate at index {position})")


def encode_password(password: str | bytes, name: str = "password") -> bytes:
    """The bytes a password stands for: ``str`` is NFC-normalized then UTF-8 encoded.

    NFC makes the same password typed on different systems (composed or decomposed accents) derive
    the same key. ``bytes`` are used as given. An empty password is refused.
    """
    if isinstance(password, str):
        encoded = encode_utf8(unicodedata.normalize("NFC", password), name)
    elif isinstance(password, bytes | bytearray | memoryview):
        encoded = bytes(password)
    else:
        raise TypeError(f"{name} must be str or bytes, not {type(password).__name__}")
    if not encoded:
        raise ValueError(f"{name} must not be empty")
    return encoded


def derive_master(password: bytes, salt: bytes, kdf: Kdf) -> bytes:
    """Run ``kdf`` over an encoded password and a salt; returns the 32-byte master key."""
    if len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be {SALT_SIZE} bytes, got {len(salt)}")
    return kdf.derive(password, salt)


@dataclass(frozen=True, repr=False, eq=False)
class Credential:
    """One password (with the KDF to stretch it) or one raw 32-byte key; ``repr`` hides it."""

    secret: bytes
    kdf: Kdf | None
    """``None`` for a raw key (KDF id 0x00, no salt)."""

    def __repr__(self) -> str:
        kind = "raw key" if self.kdf is None else type(self.kdf).__name__
        return f"<Credential {kind} (secret hidden)>"

    def with_kdf(self, kdf: Kdf) -> Credential:
        """The same password under another KDF (a slot names its own); subclasses that cache
        derived keys override this to keep their cache."""
        return Credential(self.secret, kdf)

    def master(self, salt: bytes) -> bytes:
        """The slot master key: the raw key itself, or the KDF over the password and ``salt``."""
        if self.kdf is None:
            return self.secret
        return derive_master(self.secret, salt, self.kdf)
