"""Blind indexes: a truncated HMAC of a normalised value, stored beside its encrypted column.

The HMAC key of an index is derived per column with HKDF-SHA256 from a dedicated index key, never
from the encryption keys, so equal values in different columns have unrelated index values. An
index keeps ``bits`` bits: with ``n`` rows, a lookup returns about ``n / 2**bits`` false positives
(dropped by decrypting and comparing), and fewer bits leak less about which rows are equal.
"""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, Final

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Column, LargeBinary
from sqlalchemy.engine import Dialect

from ._types import ColumnBound, check_context, context_of

__all__ = ["INDEX_LABEL", "MAX_BITS", "BlindIndex", "IndexKeys", "Normalizer", "normalize_text"]

INDEX_LABEL: Final = b"aes-hmac blind index v1\x00"
"""HKDF info prefix of a column's index key, before the UTF-8 ``table.column``."""
MAX_BITS: Final = 256
INDEX_KEY_SIZE: Final = 32

Normalizer = Callable[[Any], str | bytes]
"""Maps a column value to the text or bytes that is indexed (equal after it = a match)."""


def normalize_text(value: str) -> str:
    """NFC, case-folded, surrounding whitespace removed (``" Alice@Example.COM"`` matches
    ``"alice@example.com"``): a normaliser for e-mail addresses and names."""
    if not isinstance(value, str):
        raise TypeError(f"value must be a str, not {type(value).__name__}")
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).casefold()).strip()


class IndexKeys:
    """The index keys of one ``BlindIndex``, newest first, and their per-column HMAC keys.

    Compares by identity (it is part of SQLAlchemy's statement cache key) and hides the keys.
    """

    __slots__ = ("_derived", "_keys", "_lock")

    def __init__(self, keys: bytes | Sequence[bytes]) -> None:
        if isinstance(keys, bytes | bytearray):
            keys = [keys]
        if not isinstance(keys, Sequence) or isinstance(keys, str) or not keys:
            raise TypeError("keys must be a 32-byte index key or a non-empty list of them")
        for number, key in enumerate(keys):
            if not isinstance(key, bytes | bytearray) or len(key) != INDEX_KEY_SIZE:
                raise ValueError(f"keys[{number}] must be {INDEX_KEY_SIZE} bytes (generate_key())")
        self._keys = tuple(bytes(key) for key in keys)
        self._derived: dict[str, tuple[hmac.HMAC, ...]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<IndexKeys {len(self._keys)} key(s) (hidden)>"

    def __len__(self) -> int:
        return len(self._keys)

    def macs(self, context: str) -> tuple[hmac.HMAC, ...]:
        """One keyed HMAC-SHA256 per index key for ``context``, to ``copy()`` for each value."""
        derived = self._derived.get(context)
        if derived is None:
            info = INDEX_LABEL + context.encode("utf-8")
            derived = tuple(
                hmac.HMAC(
                    HKDF(hashes.SHA256(), INDEX_KEY_SIZE, salt=None, info=info).derive(key),
                    hashes.SHA256(),
                )
                for key in self._keys
            )
            with self._lock:
                self._derived[context] = derived
        return derived


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact separators: equal JSON values give equal bytes."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text.encode("utf-8")


class BlindIndex(ColumnBound[bytes]):
    """A column holding the blind index of the encrypted column named ``source``.

    Assign it the plaintext (the ORM does this when ``source`` is set; in Core, pass the same
    value to both columns): it stores ``bits`` bits of HMAC-SHA256 of ``normalize(value)``
    under the first of ``keys`` (32-byte index keys, newest first; older ones keep lookups
    working while ``rotate`` rewrites the index). Without ``normalize``, text is indexed as its
    exact UTF-8, bytes as they are, anything else as canonical JSON.
    """

    impl = LargeBinary
    cache_ok = True

    def __init__(
        self,
        keys: bytes | Sequence[bytes],
        *,
        source: str,
        bits: int,
        normalize: Normalizer | None = None,
        context: str | None = None,
    ) -> None:
        if not isinstance(source, str) or not source:
            raise TypeError("source must be the name of the encrypted column (a non-empty str)")
        if isinstance(bits, bool) or not isinstance(bits, int):
            raise TypeError(f"bits must be an int, not {type(bits).__name__}")
        if not 1 <= bits <= MAX_BITS:
            raise ValueError(f"bits must be between 1 and {MAX_BITS}, got {bits}")
        if normalize is not None and not callable(normalize):
            raise TypeError("normalize must be a callable or None")
        super().__init__(length=(bits + 7) // 8)
        self.keys = IndexKeys(keys)
        self.source = source
        self.bits = bits
        self.normalize = normalize
        self.context = check_context(context)
        self.fixed_context = self.context is not None
        self.size = (bits + 7) // 8
        self._mask = (0xFF << (-bits % 8)) & 0xFF

    def context_for(self, column: Column[Any]) -> str:
        table_context = context_of(column)
        return f"{table_context.rpartition('.')[0]}.{self.source}"

    def canonical(self, value: Any) -> bytes:
        """The bytes that are indexed for ``value``; two values match when these are equal."""
        if self.normalize is not None:
            value = self.normalize(value)
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        return canonical_json(value)

    def digests(self, value: Any) -> list[bytes]:
        """The index value of ``value`` under each key, the current one first."""
        if self.context is None:
            raise ValueError(
                "BlindIndex is not attached to a table column: "
                "use it in a Column of a Table, or give context='table.source'"
            )
        data = self.canonical(value)
        out = []
        for mac in self.keys.macs(self.context):
            one = mac.copy()
            one.update(data)
            digest = one.finalize()[: self.size]
            out.append(digest[:-1] + bytes((digest[-1] & self._mask,)))
        return out

    def digest(self, value: Any) -> bytes:
        """The index value of ``value`` under the current (first) key: what is stored."""
        return self.digests(value)[0]

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else self.digest(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else bytes(value)
