"""Column types that store each value as an aes-hmac token bound to its table and column.

The associated data of every token is ``b"aes-hmac sqlalchemy v1\\x00" + b"table.column"``, so a
token copied into another column (or another table's column of the same name) fails to decrypt.
A type learns its ``table.column`` when its column is attached to a table (a DDL event), or from
``context=`` given explicitly (to keep reading tokens after renaming a table or column).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Final, TypeVar

from sqlalchemy import Column, LargeBinary, Table, Text, event
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import operators
from sqlalchemy.sql.operators import OperatorType
from sqlalchemy.types import TypeDecorator, TypeEngine

from aes_hmac import InvalidToken, Key, Keyring, PasswordKey, token_to_bytes

__all__ = [
    "AD_LABEL",
    "ColumnBound",
    "ColumnDecryptionError",
    "EncryptedBytes",
    "EncryptedJSON",
    "EncryptedString",
    "EncryptedType",
    "KeySource",
    "as_keyring",
    "context_of",
]

AD_LABEL: Final = b"aes-hmac sqlalchemy v1\x00"
"""Prefix of every column token's associated data, before the UTF-8 ``table.column``."""

KeySource = Keyring | Key | PasswordKey
"""What a column encrypts with: a ``Keyring`` (for rotation), a ``Key`` or a ``PasswordKey``."""

_T = TypeVar("_T")

# Comparing a column of tokens with a plaintext can never match (every token has a fresh IV), so
# these operators raise instead of silently returning no rows; IS NULL / IS NOT NULL still work.
_REFUSED_OPERATORS: Final = frozenset(
    getattr(operators, name)
    for name in (
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "in_op",
        "not_in_op",
        "like_op",
        "not_like_op",
        "ilike_op",
        "not_ilike_op",
        "contains_op",
        "startswith_op",
        "endswith_op",
        "between_op",
        "regexp_match_op",
    )
    if hasattr(operators, name)
)


def as_keyring(keys: object, name: str = "keys") -> Keyring:
    """``keys`` as a ``Keyring``: a keyring as is, a ``Key`` or ``PasswordKey`` in a new one."""
    if isinstance(keys, Keyring):
        return keys
    if isinstance(keys, Key | PasswordKey):
        return Keyring(keys)
    raise TypeError(f"{name} must be a Keyring, Key or PasswordKey, not {type(keys).__name__}")


def context_of(column: Column[Any]) -> str:
    """``"table.column"`` of a column attached to a table (the schema is not part of it)."""
    table = column.table
    if not isinstance(table, Table):
        raise ValueError(f"column {column.name!r} is not attached to a table")
    return f"{table.name}.{column.name}"


def check_context(context: object) -> str | None:
    """A ``context=`` argument: None, or a non-empty ``"table.column"`` string."""
    if context is None:
        return None
    if not isinstance(context, str):
        raise TypeError(f"context must be a str, not {type(context).__name__}")
    if not context or "\x00" in context:
        raise ValueError("context must be a non-empty 'table.column' without NUL characters")
    return context


class ColumnDecryptionError(InvalidToken):
    """A stored value did not decrypt for this column; ``table`` and ``column`` name it.

    Wrong keys, tampering and a value copied from another column are the same failure (the
    token's associated data binds it to its column). The message never contains the value.
    """

    def __init__(self, message: str, table: str, column: str) -> None:
        super().__init__(message)
        self.table = table
        self.column = column


class ColumnBound(TypeDecorator[_T]):
    """A type bound to one ``table.column``: ``context``, set from its column unless fixed."""

    cache_ok = True
    context: str | None
    fixed_context: bool

    def context_for(self, column: Column[Any]) -> str:
        """The ``table.column`` this type binds to when attached as ``column``."""
        return context_of(column)


class EncryptedType(ColumnBound[_T]):
    """Base of the encrypted column types: each value is stored as a token under ``keys``.

    ``keys``: a ``Keyring`` (decrypts with any entry, encrypts under the primary; see ``rotate``),
    a ``Key`` or a ``PasswordKey``, or a function returning one, called for each value (so a
    running process can switch keyrings, for example after reloading its configuration).
    ``binary=True`` stores the binary token (``LargeBinary``, 25% smaller) instead of its text
    form (``Text``). ``None`` stays ``NULL``. Subclasses say how a Python value becomes the
    ``str``/``bytes`` that is encrypted.
    """

    impl = Text
    cache_ok = True

    def __init__(
        self,
        keys: KeySource | Callable[[], KeySource],
        *,
        context: str | None = None,
        binary: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(binary, bool):
            raise TypeError(f"binary must be a bool, not {type(binary).__name__}")
        if isinstance(keys, Keyring | Key | PasswordKey):
            self._fixed: Keyring | None = as_keyring(keys)
        elif callable(keys):
            self._fixed = None
        else:
            raise TypeError(
                "keys must be a Keyring, Key, PasswordKey or a function returning one, "
                f"not {type(keys).__name__}"
            )
        self._last: tuple[object, Keyring] | None = None
        # The attribute names match the __init__ parameters: SQLAlchemy builds the statement cache
        # key from them (a Keyring or a function compares by identity, so types with other keys
        # never share a cached statement).
        self.keys = keys
        self.context = check_context(context)
        self.binary = binary
        self.fixed_context = self.context is not None

    class comparator_factory(TypeDecorator.Comparator[Any]):
        """Refuses comparisons with plaintexts, which can never match a column of tokens."""

        def operate(self, op: OperatorType, *other: Any, **kwargs: Any) -> Any:
            if op in _REFUSED_OPERATORS and not (
                op in (operators.eq, operators.ne) and len(other) == 1 and other[0] is None
            ):
                raise TypeError(
                    "an encrypted column cannot be compared in SQL (every token differs); "
                    "search it through its blind index (index_of / find)"
                )
            return super().operate(op, *other, **kwargs)

    def keyring(self) -> Keyring:
        """The keyring to use now: the one given, or what the ``keys`` function returns now."""
        if self._fixed is not None:
            return self._fixed
        source = self.keys()  # type: ignore[operator]
        last = self._last
        if last is not None and last[0] is source:
            return last[1]
        ring = as_keyring(source, "the keys function's result")
        self._last = (source, ring)
        return ring

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return dialect.type_descriptor(self.storage_type())

    def storage_type(self) -> TypeEngine[Any]:
        """The type of the stored token (``Text`` or ``LargeBinary``), for raw reads and writes."""
        return LargeBinary() if self.binary else Text()

    def associated_data(self) -> bytes:
        """The associated data of this column's tokens."""
        if self.context is None:
            raise ValueError(
                f"{type(self).__name__} is not attached to a table column: "
                "use it in a Column of a Table, or give context='table.column'"
            )
        return AD_LABEL + self.context.encode("utf-8")

    def encode(self, value: Any) -> str | bytes:
        """The ``str``/``bytes`` to encrypt for ``value``; the inverse of ``decode``."""
        raise NotImplementedError

    def decode(self, plain: str | bytes) -> _T:
        """The Python value of a decrypted ``plain``."""
        raise NotImplementedError

    def encrypt_value(self, value: Any) -> str | bytes:
        """The stored form of ``value``: a text or binary token bound to this column."""
        token = self.keyring().encrypt(self.encode(value), associated_data=self.associated_data())
        return token_to_bytes(token) if self.binary else token

    def decrypt_value(self, stored: str | bytes) -> _T:
        """The Python value of a stored token; ``ColumnDecryptionError`` naming the column."""
        return self.decode(self.decrypt_stored(stored))

    def decrypt_stored(self, stored: str | bytes) -> str | bytes:
        """The decrypted ``str``/``bytes`` of a stored token (before ``decode``)."""
        try:
            return self.keyring().decrypt(stored, associated_data=self.associated_data())
        except InvalidToken as exc:
            raise self.error(f"{exc} (or the value was copied from another column)") from None

    def error(self, reason: str) -> ColumnDecryptionError:
        """A ``ColumnDecryptionError`` for this column with ``reason``."""
        table, _, column = (self.context or "?.?").rpartition(".")
        return ColumnDecryptionError(f"failed to decrypt {self.context}: {reason}", table, column)

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else self.encrypt_value(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> _T | None:
        return None if value is None else self.decrypt_value(value)


class EncryptedString(EncryptedType[str]):
    """An encrypted ``str`` column (``Mapped[str]``)."""

    cache_ok = True

    @property
    def python_type(self) -> type[str]:
        return str

    def encode(self, value: Any) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{self.context}: value must be a str, not {type(value).__name__}")
        return value

    def decode(self, plain: str | bytes) -> str:
        if not isinstance(plain, str):
            raise self.error("holds bytes, expected text")
        return plain


class EncryptedBytes(EncryptedType[bytes]):
    """An encrypted ``bytes`` column (``Mapped[bytes]``)."""

    cache_ok = True

    @property
    def python_type(self) -> type[bytes]:
        return bytes

    def encode(self, value: Any) -> bytes:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise TypeError(f"{self.context}: value must be bytes, not {type(value).__name__}")
        return bytes(value)

    def decode(self, plain: str | bytes) -> bytes:
        if not isinstance(plain, bytes):
            raise self.error("holds text, expected bytes")
        return plain


class EncryptedJSON(EncryptedType[Any]):
    """An encrypted JSON value (dict, list, str, number, bool); Python ``None`` is SQL ``NULL``.

    Serialised with ``json.dumps`` (UTF-8, compact); in-place changes to a loaded dict are not
    tracked (assign a new value, or wrap the type with ``sqlalchemy.ext.mutable``).
    """

    cache_ok = True

    def encode(self, value: Any) -> str:
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{self.context}: value is not JSON-serialisable: {exc}") from None

    def decode(self, plain: str | bytes) -> Any:
        if not isinstance(plain, str):
            raise self.error("holds bytes, expected JSON text")
        try:
            return json.loads(plain)
        except ValueError:
            raise self.error("decrypted value is not valid JSON") from None


@event.listens_for(Column, "after_parent_attach")
def _bind_to_table(column: Column[Any], parent: object) -> None:
    """Give a ``ColumnBound`` type its ``table.column`` when its column joins a table.

    One type object shared by two columns is copied first, so each column keeps its own binding.
    """
    bound = column.type
    if not isinstance(parent, Table) or not isinstance(bound, ColumnBound) or bound.fixed_context:
        return
    wanted = bound.context_for(column)
    if bound.context is not None and bound.context != wanted:
        bound = column.type = bound.copy()
    bound.context = wanted
