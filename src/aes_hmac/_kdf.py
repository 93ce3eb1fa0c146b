"""Password-based key derivation: the KDF registry, encoded parameters, decrypt-side limits.

Each KDF is one class with a one-byte id, a CLI name and a fixed-size big-endian parameter block;
token and stream formats embed ``kdf_id || params`` produced here, so there is exactly one
encoder and one decoder. ``KDFS`` lists the classes: the parsers, the keyring's rotation rule, the
CLI's flags and texts and the tests read it, so a new KDF is one class plus its entry there. A KDF
always yields one 32-byte master key (deriving more from PBKDF2 would only cost the defender).
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass, fields
from typing import ClassVar, Final, NamedTuple, Self

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id as _Argon2id
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt as _Scrypt

from ._errors import KdfLimitError
from ._primitives import KEY_SIZE, SALT_SIZE, random_bytes

KDF_RAW: Final = 0x00
"""Not a KDF: the caller supplied a 32-byte key (no parameters, no salt)."""

_U32_MAX = 0xFFFF_FFFF
_PBKDF2_MAX_ITERATIONS = 0x7FFF_FFFF
"""cryptography (50) aborts the interpreter with a Rust panic from 2**31 iterations on."""

# KDF work is counted in one unit, one PBKDF2-HMAC-SHA256 iteration, so a single budget
# (``KdfLimits.max_kdf_work``) bounds the time of any mix of KDFs. Rates measured with
# cryptography 50 on a shared 2-core x86-64 machine (benchmarks/bench_kdf.py prints them; best of
# several runs, which vary by up to 40 % with the load): PBKDF2 0.12-0.14 us per iteration; scrypt
# 0.32-0.49 us per 128 * r-byte block mix (N * r * p of them); Argon2id 1.0-1.4 us per KiB per
# pass, plus 0.3-0.9 us per KiB to allocate and first touch its memory (more for larger memory and
# under other processes' memory traffic). The Argon2id weights take the top of those ranges. Lanes
# do not change the time: this cryptography runs them in one thread.
SCRYPT_WORK_PER_BLOCK: Final = 3
"""Work units per scrypt block mix (N * r * p of them)."""
ARGON2_WORK_PER_KIB_PASS: Final = 10
"""Work units per KiB of Argon2id memory per pass (iteration)."""
ARGON2_WORK_PER_KIB: Final = 8
"""Work units per KiB of Argon2id memory once: allocating and first touching it."""


class KdfOption(NamedTuple):
    """One cost field of a KDF class as the CLI offers it: the CLI names the flag after the KDF's
    registry name and the field (``--scrypt-log2-n``), so two KDFs never share a flag."""

    field: str
    metavar: str
    help: str
    """What the field sets, after the KDF's name (the CLI prints ``"scrypt log2(N)"``)."""


class LimitedCost(NamedTuple):
    """One cost of a KDF instance and the ``KdfLimits`` field that caps it."""

    what: str
    """Message start with ``{}`` for the value, e.g. ``"scrypt p {} exceeds"``."""
    value: int
    field: str


def check_int(name: str, value: object, low: int, high: int) -> None:
    """``TypeError``/``ValueError`` naming ``name`` unless ``value`` is an int in [low, high].

    Shared by every cost parameter here and by importers (their own counts, e.g. iterations).
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")


def _unpack(layout: struct.Struct, params: bytes) -> tuple[int, ...]:
    if len(params) != layout.size:
        raise ValueError("truncated kdf parameters")
    return layout.unpack(params)


def _any_cost_lower(kdf: Kdf, target: Kdf) -> bool:
    """Rotation rule shared by every KDF: another algorithm, or any parameter below the target's.

    A different algorithm counts as weaker on purpose: rotation converges on the one KDF the
    primary entry uses, and costs of different algorithms are not comparable. Every field of a
    KDF class is a cost (higher is stronger).
    """
    if type(kdf) is not type(target):
        return True
    return any(getattr(kdf, f.name) < getattr(target, f.name) for f in fields(kdf))


@dataclass(frozen=True)
class PBKDF2:
    """PBKDF2-HMAC-SHA256. 600,000 iterations is OWASP's 2023 recommendation.

    A PBKDF2 with another hash is a subclass that sets ``name``, ``kdf_id``, ``hash_algorithm`` and
    ``work_per_iteration`` (and its default iterations): encoding, limits, rotation and the CLI
    come from here and from the registry.
    """

    iterations: int = 600_000

    name: ClassVar[str] = "pbkdf2"
    kdf_id: ClassVar[int] = 0x01
    hash_algorithm: ClassVar[type[hashes.HashAlgorithm]] = hashes.SHA256
    work_per_iteration: ClassVar[int] = 1
    """Work units per iteration: the iteration's time over one PBKDF2-HMAC-SHA256 iteration's."""
    _layout: ClassVar[struct.Struct] = struct.Struct(">I")
    params_size: ClassVar[int] = _layout.size
    options: ClassVar[tuple[KdfOption, ...]] = (KdfOption("iterations", "N", "iterations"),)

    def __post_init__(self) -> None:
        check_int("iterations", self.iterations, 1, _PBKDF2_MAX_ITERATIONS)

    def encode(self) -> bytes:
        return self._layout.pack(self.iterations)

    @classmethod
    def decode(cls, params: bytes) -> Self:
        """The KDF a parameter block describes; ``ValueError`` for a wrong size or bad value."""
        return cls(*_unpack(cls._layout, params))

    def describe(self) -> str:
        return f"pbkdf2-hmac-{self.hash_algorithm.name} iterations={self.iterations}"

    def weaker_than(self, target: Kdf) -> bool:
        return _any_cost_lower(self, target)

    def memory_bytes(self) -> int:
        return 0

    def work(self) -> int:
        """Cost in work units (one unit is one PBKDF2-HMAC-SHA256 iteration)."""
        return self.iterations * self.work_per_iteration

    def limited_costs(self) -> tuple[LimitedCost, ...]:
        # One iteration limit for every PBKDF2 hash: ``max_kdf_work`` weighs the hashes.
        return (
            LimitedCost("pbkdf2 iterations {} exceed", self.iterations, "max_pbkdf2_iterations"),
            LimitedCost("kdf memory {} bytes exceeds", self.memory_bytes(), "max_memory_bytes"),
            _work_cost(self),
        )

    def derive(self, password: bytes, salt: bytes) -> bytes:
        return PBKDF2HMAC(self.hash_algorithm(), KEY_SIZE, salt, self.iterations).derive(password)


@dataclass(frozen=True)
class Scrypt:
    """scrypt with N = 2**log2_n; memory is 128 * r * N bytes (default 128 MiB)."""

    log2_n: int = 17
    r: int = 8
    p: int = 1

    name: ClassVar[str] = "scrypt"
    kdf_id: ClassVar[int] = 0x02
    _layout: ClassVar[struct.Struct] = struct.Struct(">BII")
    params_size: ClassVar[int] = _layout.size
    options: ClassVar[tuple[KdfOption, ...]] = (
        KdfOption("log2_n", "N", "log2(N)"),
        KdfOption("r", "R", "block size r"),
        KdfOption("p", "P", "parallelism p"),
    )

    def __post_init__(self) -> None:
        check_int("log2_n", self.log2_n, 1, 63)
        check_int("r", self.r, 1, _U32_MAX)
        check_int("p", self.p, 1, _U32_MAX)
        # RFC 7914 requires r * p < 2**30; and cryptography computes 128 * r * N in 64 bits and
        # panics (an uncatchable abort) when it overflows, so both are refused here, at parse time.
        if self.r * self.p >= 1 << 30:
            raise ValueError(f"r * p must be below 2**30, got {self.r * self.p}")
        if self.memory_bytes() >= 1 << 63:
            raise ValueError(f"128 * r * N must be below 2**63, got {self.memory_bytes()}")
        # RFC 7914 also requires N < 2**(128 * r / 8); OpenSSL refuses the rest, and cryptography
        # reports that refusal as a MemoryError whatever memory is free, so it is refused here.
        if self.log2_n >= 16 * self.r:
            raise ValueError(f"log2_n must be below 16 * r = {16 * self.r}, got {self.log2_n}")

    def encode(self) -> bytes:
        return self._layout.pack(self.log2_n, self.r, self.p)

    @classmethod
    def decode(cls, params: bytes) -> Self:
        """The KDF a parameter block describes; ``ValueError`` for a wrong size or bad value."""
        return cls(*_unpack(cls._layout, params))

    def describe(self) -> str:
        return (
            f"scrypt log2n={self.log2_n} r={self.r} p={self.p} "
            f"(memory {self.memory_bytes() >> 20} MiB)"
        )

    def weaker_than(self, target: Kdf) -> bool:
        return _any_cost_lower(self, target)

    def memory_bytes(self) -> int:
        return 128 * self.r * (1 << self.log2_n)

    def work(self) -> int:
        """Cost in work units (PBKDF2 iterations): ``SCRYPT_WORK_PER_BLOCK`` x N x r x p."""
        return SCRYPT_WORK_PER_BLOCK * (1 << self.log2_n) * self.r * self.p

    def limited_costs(self) -> tuple[LimitedCost, ...]:
        return (
            LimitedCost("kdf memory {} bytes exceeds", self.memory_bytes(), "max_memory_bytes"),
            LimitedCost("scrypt p {} exceeds", self.p, "max_scrypt_p"),
            _work_cost(self),
        )

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

    name: ClassVar[str] = "argon2id"
    kdf_id: ClassVar[int] = 0x03
    _layout: ClassVar[struct.Struct] = struct.Struct(">III")
    params_size: ClassVar[int] = _layout.size
    options: ClassVar[tuple[KdfOption, ...]] = (
        KdfOption("memory_kib", "KIB", "memory"),
        KdfOption("iterations", "T", "iterations (passes)"),
        KdfOption("lanes", "P", "lanes"),
    )

    def __post_init__(self) -> None:
        check_int("iterations", self.iterations, 1, _U32_MAX)
        check_int("lanes", self.lanes, 1, 0xFF_FFFF)
        check_int("memory_kib", self.memory_kib, 8 * self.lanes, _U32_MAX)

    def encode(self) -> bytes:
        return self._layout.pack(self.iterations, self.memory_kib, self.lanes)

    @classmethod
    def decode(cls, params: bytes) -> Self:
        """The KDF a parameter block describes; ``ValueError`` for a wrong size or bad value."""
        return cls(*_unpack(cls._layout, params))

    def describe(self) -> str:
        return (
            f"argon2id memory={self.memory_kib} KiB iterations={self.iterations} lanes={self.lanes}"
        )

    def weaker_than(self, target: Kdf) -> bool:
        return _any_cost_lower(self, target)

    def memory_bytes(self) -> int:
        return self.memory_kib * 1024

    def work(self) -> int:
        """Cost in work units (PBKDF2 iterations): memory in KiB x (10 per pass + 8 to fill it)."""
        return self.memory_kib * (ARGON2_WORK_PER_KIB_PASS * self.iterations + ARGON2_WORK_PER_KIB)

    def limited_costs(self) -> tuple[LimitedCost, ...]:
        return (
            LimitedCost("kdf memory {} bytes exceeds", self.memory_bytes(), "max_memory_bytes"),
            LimitedCost("argon2id iterations {} exceed", self.iterations, "max_argon2_iterations"),
            LimitedCost("argon2id lanes {} exceed", self.lanes, "max_argon2_lanes"),
            _work_cost(self),
        )

    def derive(self, password: bytes, salt: bytes) -> bytes:
        return _Argon2id(
            salt=salt,
            length=KEY_SIZE,
            iterations=self.iterations,
            lanes=self.lanes,
            memory_cost=self.memory_kib,
        ).derive(password)


Kdf = PBKDF2 | Scrypt | Argon2id
"""Any password KDF with its parameters (the classes of ``KDFS``)."""


def _work_cost(kdf: Kdf) -> LimitedCost:
    """The work limit, checked last: a more specific limit names the parameter to blame first."""
    return LimitedCost("kdf work {} exceeds", kdf.work(), "max_kdf_work")


KDFS: Final[tuple[type[Kdf], ...]] = (PBKDF2, Scrypt, Argon2id)
"""Every password KDF, in id order: the one list parsers, CLI and tests read."""

_BY_ID: Final[dict[int, type[Kdf]]] = {cls.kdf_id: cls for cls in KDFS}
_BY_NAME: Final[dict[str, type[Kdf]]] = {cls.name: cls for cls in KDFS}

DEFAULT_KDF: Final[Kdf] = PBKDF2()

KDF_CLASS_NAMES: Final = " or ".join(
    filter(None, (", ".join(cls.__name__ for cls in KDFS[:-1]), KDFS[-1].__name__))
)
"""The registered classes as ``check_kdf``'s message lists them (``"PBKDF2, Scrypt or Argon2id"``);
tests build their expected text from it."""

PARAMS_SIZE: Final[dict[int, int]] = {KDF_RAW: 0, **{cls.kdf_id: cls.params_size for cls in KDFS}}
"""Size in bytes of the parameter block that follows each KDF id (raw keys included)."""


def kdf_by_name(name: str) -> type[Kdf]:
    """The KDF class a CLI name stands for; ``ValueError`` listing the names otherwise."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown kdf {name!r} (choose {', '.join(_BY_NAME)})") from None


def kdf_by_id(kdf_id: int) -> type[Kdf]:
    """The KDF class of a format's KDF id; ``ValueError`` for an unknown id (and for raw 0x00)."""
    try:
        return _BY_ID[kdf_id]
    except KeyError:
        raise ValueError(f"unknown kdf id {kdf_id}") from None


@dataclass(frozen=True)
class KdfLimits:
    """Decrypt-side ceilings on KDF work, checked before any derivation starts.

    A token or file names its own KDF parameters; these limits stop a hostile one from stalling a
    server or exhausting its memory. Raise them explicitly to open data made with higher costs.
    ``max_kdf_work`` bounds the total work of one token or one stream header, over every key slot
    and keyring entry tried, in work units (one PBKDF2-HMAC-SHA256 iteration each; scrypt and
    Argon2id are converted by their ``work()``). The default admits four scrypt defaults (3,145,728
    each), five Argon2id defaults or sixteen PBKDF2 defaults; the worst input it admits costs about
    four scrypt defaults (under 2 s on the machine measured).
    """

    max_pbkdf2_iterations: int = 20_000_000
    max_memory_bytes: int = 1 << 30
    max_scrypt_p: int = 16
    max_argon2_iterations: int = 64
    max_argon2_lanes: int = 64
    max_kdf_work: int = 13_000_000

    def check(self, kdf: Kdf) -> None:
        """Raise ``KdfLimitError`` (a ``ValueError``) naming the parameter and the limit."""
        for what, value, field in kdf.limited_costs():
            limit: int = getattr(self, field)
            if value > limit:
                raise KdfLimitError(f"{what.format(value)} the limit {limit}", field, value, limit)


class WorkBudget:
    """The KDF work one token or one stream header may still cost (``KdfLimits.max_kdf_work``).

    Every derivation for that one input is charged here first, whichever slot or keyring entry it
    is for, so more slots or more entries never mean more work than one limit allows.
    Not shared between threads: each decryption makes its own.
    """

    __slots__ = ("_limit", "spent")

    def __init__(self, limits: KdfLimits) -> None:
        self._limit = limits.max_kdf_work
        self.spent = 0

    def charge(self, kdf: Kdf) -> None:
        """Count ``kdf``'s work, or raise ``KdfLimitError`` (field ``max_kdf_work``) without
        counting it when the total would pass the limit."""
        total = self.spent + kdf.work()
        if total > self._limit:
            raise KdfLimitError(
                f"total kdf work {total} exceeds the limit {self._limit}",
                "max_kdf_work",
                total,
                self._limit,
            )
        self.spent = total


DEFAULT_LIMITS: Final = KdfLimits()
NO_LIMITS: Final = KdfLimits(**{f.name: 1 << 64 for f in fields(KdfLimits)})
"""Limits no KDF reaches, for a caller that checked the real limits itself beforehand."""


def check_kdf(kdf: object) -> Kdf:
    """``kdf`` itself, or ``TypeError`` naming the argument when it is not a KDF object."""
    if not isinstance(kdf, KDFS):
        raise TypeError(f"kdf must be {KDF_CLASS_NAMES}, not {type(kdf).__name__}")
    return kdf


def check_limits_arg(limits: object) -> KdfLimits:
    """``limits`` itself, or ``TypeError`` naming the argument when it is not ``KdfLimits``."""
    if not isinstance(limits, KdfLimits):
        raise TypeError(f"limits must be KdfLimits, not {type(limits).__name__}")
    return limits


def decode_kdf(kdf_id: int, params: bytes) -> Kdf:
    """Parse a parameter block; ``ValueError`` for an unknown id, a wrong size or a bad value."""
    return kdf_by_id(kdf_id).decode(params)


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
    """Run ``kdf`` over an encoded password and a salt; returns the 32-byte master key.

    A ``MemoryError`` from the KDF (the system refused its memory, e.g. under a container's
    address-space cap) becomes ``KdfLimitError`` with field ``max_memory_bytes``: an
    ``InvalidToken`` for a token, a ``HeaderError`` for a stream. Lowering that limit below what
    the system can give refuses such input before any work.
    """
    if len(salt) != SALT_SIZE:
        raise ValueError(f"salt must be {SALT_SIZE} bytes, got {len(salt)}")
    try:
        return kdf.derive(password, salt)
    except MemoryError:
        memory = kdf.memory_bytes()
        error = KdfLimitError(
            f"kdf needs more memory than is available ({memory} bytes)",
            "max_memory_bytes",
            memory,
            0,
        )
    raise error


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

    def new_salt(self) -> bytes:
        """The salt a new stream's password slot uses: a fresh random one (a batch credential
        returns its batch's, derived once)."""
        return random_bytes(SALT_SIZE)

    def master(self, salt: bytes) -> bytes:
        """The slot master key: the raw key itself, or the KDF over the password and ``salt``."""
        if self.kdf is None:
            return self.secret
        return derive_master(self.secret, salt, self.kdf)

    def nonce(self) -> bytes:
        """Random bytes drawn once per object: in its pickles and its Dask token, so that a
        hash of either (what Dask names tasks after) cannot be matched against guesses, while
        one object still hashes the same each time (Dask asks for that)."""
        nonce: bytes = self.__dict__.setdefault("_nonce", random_bytes(_NONCE_SIZE))
        return nonce

    def __reduce__(self) -> tuple[object, ...]:
        # The one rule for secrets crossing a process boundary (docs/SECURITY.md): a password
        # never travels. ``BatchCredential`` is what ships (derived slot keys); a raw key is
        # the key itself.
        if self.kdf is not None:
            raise TypeError(
                "a password credential does not pickle (the password never travels): "
                "ship a BatchCredential, or have each process read it (password_env=)"
            )
        return (_raw_credential, (self.secret, self.nonce()))

    def __dask_tokenize__(self) -> str:
        """Dask's token: random per object (``nonce``), so no task name depends on the secret."""
        return self.nonce().hex()


_NONCE_SIZE: Final = 16
"""Random bytes in every pickle and Dask token of a credential (see ``Credential.__reduce__``)."""


def _raw_credential(secret: bytes, nonce: bytes) -> Credential:
    """Unpickle a raw-key ``Credential``; ``nonce`` only made the pickle unpredictable."""
    return Credential(secret, None)
