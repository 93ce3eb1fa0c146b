"""Transitional re-exports for modules not yet moved to the split stream modules (cli.py,
_migrate.py); delete once nothing imports it. New code imports ``_engine`` / ``_io``."""

from ._credential import to_credential
from ._engine import decrypt_stream, encrypt_stream, resolve_workers, seal_stream
from ._io import check_file, read_full, read_full_bytes, write_all
from ._kdf import DEFAULT_KDF, Credential, Kdf


def make_credential(password: object, key: object, kdf: Kdf = DEFAULT_KDF) -> Credential:
    """The old signature of ``to_credential``."""
    return to_credential(password, key, kdf=kdf)


__all__ = [
    "check_file",
    "decrypt_stream",
    "encrypt_stream",
    "make_credential",
    "read_full",
    "read_full_bytes",
    "resolve_workers",
    "seal_stream",
    "write_all",
]
