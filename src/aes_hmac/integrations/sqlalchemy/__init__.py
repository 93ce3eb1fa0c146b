"""Encrypted SQLAlchemy columns: tokens bound to their column, blind indexes, batched rotation.

Needs the ``sqlalchemy`` extra (``pip install aes-hmac[sqlalchemy]``). See docs/SQLALCHEMY.md.
"""

from ._blind_index import BlindIndex, normalize_text
from ._query import find, find_rows, index_of
from ._rotation import RotationProgress, rotate
from ._types import (
    ColumnDecryptionError,
    EncryptedBytes,
    EncryptedJSON,
    EncryptedString,
    EncryptedType,
)

__all__ = [
    "BlindIndex",
    "ColumnDecryptionError",
    "EncryptedBytes",
    "EncryptedJSON",
    "EncryptedString",
    "EncryptedType",
    "RotationProgress",
    "find",
    "find_rows",
    "index_of",
    "normalize_text",
    "rotate",
]
