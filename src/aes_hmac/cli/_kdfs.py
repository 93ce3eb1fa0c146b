"""TEMPORARY stand-in for the library's KDF registry (``aes_hmac.KDFS``) until it is merged."""

from __future__ import annotations

from typing import Final, NamedTuple

import aes_hmac

KdfValue = aes_hmac.PBKDF2 | aes_hmac.Scrypt | aes_hmac.Argon2id
Kdf = KdfValue


class KdfOption(NamedTuple):
    flag: str
    field: str
    metavar: str
    help: str


KDFS: Final[tuple[type[Kdf], ...]] = (aes_hmac.PBKDF2, aes_hmac.Scrypt, aes_hmac.Argon2id)
_NAMES: Final = {
    aes_hmac.PBKDF2: "pbkdf2",
    aes_hmac.Scrypt: "scrypt",
    aes_hmac.Argon2id: "argon2id",
}
_OPTIONS: Final = {
    aes_hmac.PBKDF2: (KdfOption("--iterations", "iterations", "N", "pbkdf2 iterations"),),
    aes_hmac.Scrypt: (
        KdfOption("--scrypt-log2n", "log2_n", "N", "scrypt log2(N)"),
        KdfOption("--scrypt-r", "r", "R", "scrypt block size r"),
        KdfOption("--scrypt-p", "p", "P", "scrypt parallelism p"),
    ),
    aes_hmac.Argon2id: (
        KdfOption("--argon2-memory-kib", "memory_kib", "KIB", "argon2id memory"),
        KdfOption("--argon2-iterations", "iterations", "T", "argon2id iterations (passes)"),
        KdfOption("--argon2-lanes", "lanes", "P", "argon2id lanes"),
    ),
}


def name_of(kdf: type[Kdf]) -> str:
    return _NAMES[kdf]


def options_of(kdf: type[Kdf]) -> tuple[KdfOption, ...]:
    return _OPTIONS[kdf]


def by_name(name: str) -> type[Kdf]:
    return next(kdf for kdf in KDFS if _NAMES[kdf] == name)


def describe(kdf: object) -> str:
    if isinstance(kdf, aes_hmac.PBKDF2):
        return f"pbkdf2-hmac-sha256 iterations={kdf.iterations}"
    if isinstance(kdf, aes_hmac.Scrypt):
        return (
            f"scrypt log2n={kdf.log2_n} r={kdf.r} p={kdf.p} (memory {kdf.memory_bytes() >> 20} MiB)"
        )
    if isinstance(kdf, aes_hmac.Argon2id):
        return f"argon2id memory={kdf.memory_kib} KiB iterations={kdf.iterations} lanes={kdf.lanes}"
    return repr(kdf)
