"""Column types that store each value as an aes-hmac token bound to its table and column.

The associated data of every token is ``b"aes-hmac sqlalchemy v2\\x00"`` followed by the table
and column names, each length-prefixed (``names_block``), so a token copied into another column
(or another table's column of the same name) fails to decrypt, whatever dots the names hold.
Tokens of the v1 binding (``"table.column"`` joined by a dot, ambiguous once a name holds a dot)
are still read where that cannot confuse two columns (``v1_allowed``) and are rewritten by
``rotate``. A type learns its table and column when its column is attached to a table (a DDL
event), or from ``context=`` given explicitly (to keep reading tokens after a rename).
"""

from __future__ import annotations

import json
import struct
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
    "AD_LABEL_V1",
    "ColumnBound",
    "ColumnDecryptionError",
    "Context",
    "EncryptedBytes",
    "EncryptedJSON",
    "EncryptedString",
    "EncryptedType",
    "KeySource",
    "as_keyring",
    "context_name",
    "context_of",
    "names_block",
    "v1_allowed",
]

AD_LABEL: Final = b"aes-hmac sqlalchemy v2\x00"
"""Prefix of every column token's associated data, before ``names_block(table, column)``."""
AD_LABEL_V1: Final = b"aes-hmac sqlalchemy v1\x00"
"""The v1 prefix, before the UTF-8 ``table.column``: read (``v1_allowed``), never written."""
MAX_NAME_BYTES: Final = 0xFFFF
"""A table or column name is at most this many UTF-8 bytes (its length prefix is a u16)."""

Context = tuple[str, str]
"""The ``(table, column)`` a column type is bound to (the schema is not part of it)."""

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


def context_of(column: Column[Any]) -> Context:
    """``(table, column)`` of a column attached to a table (the schema is not part of it)."""
    table = column.table
    if not isinstance(table, Table):
        raise ValueError(f"column {column.name!r} is not attached to a table")
    return (table.name, column.name)


def check_context(context: object) -> Context | None:
    """A ``context=`` argument: None, a ``(table, column)`` pair, or ``"table.column"`` with
    exactly one dot (with more, which dot separates the names is ambiguous: pass a pair)."""
    if context is None:
        return None
    if isinstance(context, str):
        if context.count(".") != 1:
            raise ValueError(
                "context must be 'table.column' with exactly one dot, or a (table, column) "
                f"tuple for names that contain dots; got a string with {context.count('.')} dots"
            )
        table, _, column = context.partition(".")
        context = (table, column)
    if not isinstance(context, tuple) or len(context) != 2:
        raise TypeError(
            f"context must be a (table, column) tuple or a str, not {type(context).__name__}"
        )
    for what, name in zip(("table", "column"), context, strict=True):
        if not isinstance(name, str):
            raise TypeError(f"context {what} name must be a str, not {type(name).__name__}")
        if not name or "\x00" in name:
            raise ValueError(f"context {what} name must be non-empty, without NUL characters")
        if len(name.encode("utf-8")) > MAX_NAME_BYTES:
            raise ValueError(f"context {what} name is longer than {MAX_NAME_BYTES} UTF-8 bytes")
    return (context[0], context[1])


def names_block(context: Context) -> bytes:
    """``u16(len(table)) || table || u16(len(column)) || column`` (UTF-8, lengths in bytes): one
    spelling per pair of names, so no two columns share associated data or index keys."""
    out = b""
    for name in context:
        raw = name.encode("utf-8")
        out += struct.pack(">H", len(raw)) + raw
    return out


def context_name(context: Context | None) -> str:
    """``table.column`` for messages; a name holding a dot is double-quoted (``"hr.x".y``)."""
    if context is None:
        return "?.?"
    return ".".join(f'"{name}"' if "." in name else name for name in context)


def v1_allowed(context: Context, read_v1: bool | None) -> bool:
    """Whether values of the v1 binding (``table.column`` joined by a dot) are read here.

    With no dot in either name, the v1 string ``table.column`` names this column and no other
    (any other pair that joins to it has a dot), so reading v1 values cannot confuse columns.
    With a dot, ``hr."salary.amount"`` and ``"hr.salary".amount`` wrote the same v1 bytes: v1
    values are read only when the application says no other column spells the same
    (``read_v1=True``). ``read_v1=False`` turns the v1 binding off (after ``rotate``).
    """
    if read_v1 is not None:
        return read_v1
    return not any("." in name for name in context)


def check_read_v1(read_v1: object) -> bool | None:
    """A ``read_v1=`` argument: None (automatic), True or False."""
    if read_v1 is not None and not isinstance(read_v1, bool):
        raise TypeError(f"read_v1 must be a bool or None, not {type(read_v1).__name__}")
    return read_v1


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
    """A type bound to one ``(table, column)``: ``context``, set from its column unless fixed.

    ``read_v1`` says whether values of the v1 binding are read too (``v1_allowed``).
    """

    cache_ok = True
    context: Context | None
    fixed_context: bool
    read_v1: bool | None

    def context_for(self, column: Column[Any]) -> Context:
        """The ``(table, column)`` this type binds to when attached as ``column``."""
        return context_of(column)

    def reads_v1(self) -> bool:
        """Whether this bound type also reads values of the v1 binding."""
        return self.context is not None and v1_allowed(self.context, self.read_v1)


class EncryptedType(ColumnBound[_T]):
    """Base of the encrypted column types: each value is stored as a token under ``keys``.

    ``keys``: a ``Keyring`` (decrypts with any entry, encrypts under the primary; see ``rotate``),
    a ``Key`` or a ``PasswordKey``, or a function returning one, called for each value (so a
    running process can switch keyrings, for example after reloading its configuration).
    ``binary=True`` stores the binary token (``LargeBinary``, 25% smaller) instead of its text
    form (``Text``). ``read_v1``: whether tokens of the v1 binding are read (``v1_allowed``; by
    default only when neither name holds a dot). ``None`` stays ``NULL``. Subclasses say how a
    Python value becomes the ``str``/``bytes`` that is encrypted.
    """

    impl = Text
    cache_ok = True

    def __init__(
        self,
        keys: KeySource | Callable[[], KeySource],
        *,
        context: str | Context | None = None,
        binary: bool = False,
        read_v1: bool | None = None,
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
        self.read_v1 = check_read_v1(read_v1)
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

    def bound_context(self) -> Context:
        """The ``(table, column)`` of this type; ``ValueError`` when it is not attached."""
        if self.context is None:
            raise ValueError(
                f"{type(self).__name__} is not attached to a table column: "
                "use it in a Column of a Table, or give context=('table', 'column')"
            )
        return self.context

    def associated_data(self) -> bytes:
        """The associated data of this column's tokens (the v2 binding, the one written)."""
        return AD_LABEL + names_block(self.bound_context())

    def associated_data_v1(self) -> bytes | None:
        """The v1 associated data still read for this column, or None (``v1_allowed``)."""
        context = self.bound_context()
        if not self.reads_v1():
            return None
        return AD_LABEL_V1 + ".".join(context).encode("utf-8")

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

    def open_stored(self, stored: str | bytes) -> tuple[str | bytes, bool]:
        """The decrypted ``str``/``bytes`` of a stored token and whether it has the current (v2)
        binding; ``InvalidToken`` (not naming the column) when no allowed binding opens it.

        The v2 binding is tried first; the v1 one only where ``v1_allowed``, so an old token of
        another column whose v1 bytes were the same (a dotted name) is refused here as well.
        """
        ring = self.keyring()
        try:
            return ring.decrypt(stored, associated_data=self.associated_data()), True
        except InvalidToken:
            legacy = self.associated_data_v1()
            if legacy is None:
                raise
        return ring.decrypt(stored, associated_data=legacy), False

    def decrypt_stored(self, stored: str | bytes) -> str | bytes:
        """The decrypted ``str``/``bytes`` of a stored token (before ``decode``)."""
        try:
            return self.open_stored(stored)[0]
        except InvalidToken as exc:
            raise self.error(self.failure_reason(exc)) from None

    def failure_reason(self, exc: InvalidToken) -> str:
        """Why a token did not open here, with the likely causes for this column."""
        reason = f"{exc} (or the value was copied from another column)"
        if not self.reads_v1():
            reason += "; tokens of the v1 binding are not read for this column (read_v1)"
        return reason

    def error(self, reason: str) -> ColumnDecryptionError:
        """A ``ColumnDecryptionError`` for this column with ``reason``."""
        table, column = self.context or ("?", "?")
        return ColumnDecryptionError(
            f"failed to decrypt {context_name(self.context)}: {reason}", table, column
        )

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
            raise TypeError(
                f"{context_name(self.context)}: value must be a str, not {type(value).__name__}"
            )
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
            raise TypeError(
                f"{context_name(self.context)}: value must be bytes, not {type(value).__name__}"
            )
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
            raise TypeError(
                f"{context_name(self.context)}: value is not JSON-serialisable: {exc}"
            ) from None

    def decode(self, plain: str | bytes) -> Any:
        if not isinstance(plain, str):
            raise self.error("holds bytes, expected JSON text")
        try:
            return json.loads(plain)
        except ValueError:
            raise self.error("decrypted value is not valid JSON") from None


@event.listens_for(Column, "after_parent_attach")
def _bind_to_table(column: Column[Any], parent: object) -> None:
    """Give a ``ColumnBound`` type its ``(table, column)`` when its column joins a table.

    One type object shared by two columns is copied first, so each column keeps its own binding.
    """
    bound = column.type
    if not isinstance(parent, Table) or not isinstance(bound, ColumnBound) or bound.fixed_context:
        return
    wanted = bound.context_for(column)
    if bound.context is not None and bound.context != wanted:
        bound = column.type = bound.copy()
    bound.context = wanted
