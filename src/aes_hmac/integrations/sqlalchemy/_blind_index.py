"""Blind indexes: a truncated HMAC of a normalised value, stored beside its encrypted column.

The HMAC key of an index is derived per column with HKDF-SHA256 from a dedicated index key, never
from the encryption keys, so equal values in different columns have unrelated index values. An
index keeps ``bits`` bits: with ``n`` rows, a lookup returns about ``n / 2**bits`` false positives
(dropped by decrypting and comparing), and fewer bits leak less about which rows are equal.

The v2 construction binds the length-prefixed table and column names and indexes a type-tagged
canonical form (``"true"``, ``True`` and ``1`` differ); lookups also try the v1 construction
(``table.column`` joined by a dot, untagged canonical form) where ``v1_allowed``, so indexes
written before keep finding their rows until ``rotate`` rewrites them.
"""

from __future__ import annotations

import json
import math
import threading
import unicodedata
from collections.abc import Callable, Sequence
from typing import Any, Final

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import Column, LargeBinary
from sqlalchemy.engine import Dialect

from ._types import (
    ColumnBound,
    Context,
    check_context,
    check_read_v1,
    context_of,
    names_block,
)

__all__ = [
    "INDEX_LABEL",
    "INDEX_LABEL_V1",
    "MAX_BITS",
    "BlindIndex",
    "IndexKeys",
    "Normalizer",
    "canonical_json",
    "canonical_v1",
    "normalize_text",
]

INDEX_LABEL: Final = b"aes-hmac blind index v2\x00"
"""HKDF info prefix of a column's index key, before ``names_block(table, source)``."""
INDEX_LABEL_V1: Final = b"aes-hmac blind index v1\x00"
"""The v1 prefix, before the UTF-8 ``table.source``: looked up (``v1_allowed``), never written."""
MAX_BITS: Final = 256
INDEX_KEY_SIZE: Final = 32

TAG_TEXT: Final = b"s"
TAG_BYTES: Final = b"b"
TAG_JSON: Final = b"j"
"""The first byte of a v2 canonical form: text, bytes, or any other value as canonical JSON."""

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
        self._derived: dict[bytes, tuple[hmac.HMAC, ...]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<IndexKeys {len(self._keys)} key(s) (hidden)>"

    def __len__(self) -> int:
        return len(self._keys)

    def macs(self, info: bytes) -> tuple[hmac.HMAC, ...]:
        """One keyed HMAC-SHA256 per index key for the HKDF ``info`` of a column, to ``copy()``
        for each value."""
        derived = self._derived.get(info)
        if derived is None:
            derived = tuple(
                hmac.HMAC(
                    HKDF(hashes.SHA256(), INDEX_KEY_SIZE, salt=None, info=info).derive(key),
                    hashes.SHA256(),
                )
                for key in self._keys
            )
            with self._lock:
                self._derived[info] = derived
        return derived


def _json_numbers(value: Any) -> Any:
    """``value`` with every integral float as an int: JSON has one number type, so ``1.0`` and
    ``1`` are the same number (as in JavaScript and PostgreSQL ``jsonb``). Booleans stay
    booleans: ``True`` is not the number 1. Non-finite floats are refused (not JSON)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("a blind index value must be JSON: NaN and infinities are not")
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {key: _json_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_numbers(item) for item in value]
    return value


def canonical_json(value: Any) -> bytes:
    """Sorted keys, compact separators, integral floats as integers: equal JSON values give
    equal bytes, and values of different JSON types give different bytes."""
    text = json.dumps(
        _json_numbers(value),
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
        allow_nan=False,
    )
    return text.encode("utf-8")


def canonical_v1(value: Any) -> bytes:
    """The v1 canonical form (untagged: ``"true"`` and ``True`` gave the same bytes), for
    lookups of indexes written before the v2 construction."""
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    return text.encode("utf-8")


def _tagged(value: Any) -> bytes:
    """The v2 canonical form of an already normalised value (``BlindIndex.canonical``)."""
    if isinstance(value, str):
        return TAG_TEXT + value.encode("utf-8")
    if isinstance(value, bytes | bytearray | memoryview):
        return TAG_BYTES + bytes(value)
    return TAG_JSON + canonical_json(value)


class BlindIndex(ColumnBound[bytes]):
    """A column holding the blind index of the encrypted column named ``source``.

    Assign it the plaintext (the ORM does this when ``source`` is set; in Core, pass the same
    value to both columns): it stores ``bits`` bits of HMAC-SHA256 of ``normalize(value)``
    under the first of ``keys`` (32-byte index keys, newest first; older ones keep lookups
    working while ``rotate`` rewrites the index). Without ``normalize``, text is indexed as its
    exact UTF-8, bytes as they are, anything else as canonical JSON, each with a type tag so
    values of different types never match. ``read_v1``: whether lookups also try indexes of
    the v1 construction (``v1_allowed``; by default only when neither name holds a dot).
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
        context: str | Context | None = None,
        read_v1: bool | None = None,
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
        self.read_v1 = check_read_v1(read_v1)
        self.fixed_context = self.context is not None
        self.size = (bits + 7) // 8
        self._mask = (0xFF << (-bits % 8)) & 0xFF

    def context_for(self, column: Column[Any]) -> Context:
        return (context_of(column)[0], self.source)

    def canonical(self, value: Any) -> bytes:
        """The bytes that are indexed for ``value``; two values match when these are equal.

        A type tag, then the UTF-8 of text, bytes as they are, or canonical JSON of anything
        else: ``"true"``/``True``, ``"1"``/``1`` and ``"[1,2]"``/``[1, 2]`` differ, while
        ``1`` and ``1.0`` are the same JSON number and match.
        """
        return _tagged(value if self.normalize is None else self.normalize(value))

    def _bound(self) -> Context:
        if self.context is None:
            raise ValueError(
                "BlindIndex is not attached to a table column: "
                "use it in a Column of a Table, or give context=('table', 'source')"
            )
        return self.context

    def _truncated(self, macs: tuple[hmac.HMAC, ...], data: bytes) -> list[bytes]:
        out = []
        for mac in macs:
            one = mac.copy()
            one.update(data)
            digest = one.finalize()[: self.size]
            out.append(digest[:-1] + bytes((digest[-1] & self._mask,)))
        return out

    def _current(self, normalized: Any) -> list[bytes]:
        info = INDEX_LABEL + names_block(self._bound())
        return self._truncated(self.keys.macs(info), _tagged(normalized))

    def digests(self, value: Any) -> list[bytes]:
        """The index values ``value`` may be stored under: the v2 index under each key (the
        current one first), then, where ``reads_v1``, the v1 index under each key."""
        normalized = value if self.normalize is None else self.normalize(value)
        out = self._current(normalized)
        if self.reads_v1():
            info = INDEX_LABEL_V1 + ".".join(self._bound()).encode("utf-8")
            out += self._truncated(self.keys.macs(info), canonical_v1(normalized))
        return out

    def digest(self, value: Any) -> bytes:
        """The index value of ``value`` under the current (first) key: what is stored."""
        return self._current(value if self.normalize is None else self.normalize(value))[0]

    def process_bind_param(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else self.digest(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        return None if value is None else bytes(value)
