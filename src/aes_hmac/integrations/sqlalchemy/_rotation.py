"""Re-encrypting a table's encrypted columns under the keyring's primary key, in batches.

Rows are read in primary-key order, ``batch_size`` per transaction; a row is rewritten only when
``Keyring.needs_rotation`` says one of its tokens is not under the primary key or not of the current
column binding (or a blind index differs from its current value), so a re-run after a crash does
only what is left. Each UPDATE also checks that the tokens it replaces are still there, so a row
written concurrently by the application is left alone rather than overwritten with an older value.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import (
    Column,
    LargeBinary,
    Table,
    and_,
    bindparam,
    inspect,
    select,
    tuple_,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Mapper
from sqlalchemy.sql.elements import ColumnElement

from aes_hmac import InvalidToken, token_to_bytes

from ._blind_index import BlindIndex
from ._query import index_columns, table_column
from ._types import EncryptedType

__all__ = ["DEFAULT_BATCH_SIZE", "RotationProgress", "rotate"]

DEFAULT_BATCH_SIZE: Final = 1000


@dataclass(frozen=True, slots=True)
class RotationProgress:
    """Totals after each committed batch of one table (passed to ``rotate``'s ``progress``)."""

    table: str
    batches: int
    scanned: int
    changed: int


@dataclass(frozen=True, slots=True)
class _Plan:
    table: Table
    primary_key: tuple[Column[Any], ...]
    encrypted: tuple[Column[Any], ...]
    indexes: tuple[tuple[Column[Any], Column[Any]], ...]  # (index column, its source column)


def _plans(target: object) -> list[_Plan]:
    """The table(s) and columns ``target`` names: a column, a ``Table`` or a mapped class."""
    if isinstance(target, Table):
        return [_plan(target, None)]
    if isinstance(target, type):
        mapper: Mapper[Any] | None = inspect(target, raiseerr=False)
        if mapper is None:
            raise TypeError(f"{target.__name__} is not a mapped class")
        return [_plan(t, None) for t in mapper.tables if isinstance(t, Table)]
    column = table_column(target, "target")
    if not isinstance(column.type, EncryptedType):
        raise TypeError(f"{column.table.name}.{column.name} is not an encrypted column")
    return [_plan(column.table, column)]


def _plan(table: Table, only: Column[Any] | None) -> _Plan:
    primary_key = tuple(table.primary_key.columns)
    if not primary_key:
        raise ValueError(f"table {table.name} has no primary key: rotate needs one to resume")
    encrypted = tuple(
        c
        for c in table.columns
        if isinstance(c.type, EncryptedType) and (only is None or c.name == only.name)
    )
    indexes = tuple((idx, src) for src in encrypted for idx in index_columns(table, src.name))
    return _Plan(table, primary_key, encrypted, indexes)


def _raw(column: Column[Any]) -> Any:
    """The stored form of an encrypted/index column, without encrypting or digesting."""
    if isinstance(column.type, EncryptedType):
        return column.type.storage_type()
    return LargeBinary()


def _update_statement(plan: _Plan) -> Any:
    where: list[ColumnElement[bool]] = [
        key == bindparam(f"aes_pk_{n}") for n, key in enumerate(plan.primary_key)
    ]
    where += [
        type_coerce(col, _raw(col)).is_not_distinct_from(bindparam(f"aes_old_{n}", type_=_raw(col)))
        for n, col in enumerate(plan.encrypted)
    ]
    values: dict[Column[Any], Any] = {
        col: bindparam(f"aes_new_{n}", type_=_raw(col)) for n, col in enumerate(plan.encrypted)
    }
    for n, (idx, _src) in enumerate(plan.indexes):
        values[idx] = bindparam(f"aes_idx_{n}", type_=LargeBinary())
    return update(plan.table).where(and_(*where)).values(values)


def _rotate_row(plan: _Plan, row: Sequence[Any]) -> dict[str, Any] | None:
    """UPDATE parameters for one row (primary key, then tokens, then indexes), or None."""
    npk, nenc = len(plan.primary_key), len(plan.encrypted)
    params: dict[str, Any] = {f"aes_pk_{n}": row[n] for n in range(npk)}
    plain: dict[str, Any] = {}
    changed = False
    for n, col in enumerate(plan.encrypted):
        column_type: EncryptedType[Any] = col.type  # type: ignore[assignment]
        token = row[npk + n]
        params[f"aes_old_{n}"] = params[f"aes_new_{n}"] = token
        if token is None:
            plain[col.name] = None
            continue
        ad = column_type.associated_data()
        ring = column_type.keyring()
        try:
            # A token of the v1 binding does not open with ``ad``: it reads as "needs rotation",
            # and ``open_stored`` opens it with the v1 binding where that is allowed.
            if ring.needs_rotation(token, associated_data=ad):
                value, _current = column_type.open_stored(token)
                new = ring.encrypt(value, associated_data=ad)
                params[f"aes_new_{n}"] = token_to_bytes(new) if column_type.binary else new
                plain[col.name] = column_type.decode(value)
                changed = True
        except InvalidToken as exc:
            keys = ", ".join(repr(row[i]) for i in range(npk))
            reason = column_type.failure_reason(exc)
            raise column_type.error(f"row with primary key ({keys}): {reason}") from None
    for n, (idx, src) in enumerate(plan.indexes):
        index_type: BlindIndex = idx.type  # type: ignore[assignment]
        stored = row[npk + nenc + n]
        if src.name not in plain:  # the token is current; decrypt it only for its index
            source_type: EncryptedType[Any] = src.type  # type: ignore[assignment]
            plain[src.name] = source_type.decrypt_value(row[npk + plain_position(plan, src)])
        value = plain[src.name]
        current = None if value is None else index_type.digest(value)
        params[f"aes_idx_{n}"] = current
        if (None if stored is None else bytes(stored)) != current:
            changed = True
    return params if changed else None


def plain_position(plan: _Plan, column: Column[Any]) -> int:
    """Where ``column``'s token is among the encrypted columns of a batch row."""
    return next(n for n, col in enumerate(plan.encrypted) if col.name == column.name)


def _batch(conn: Connection, plan: _Plan, after: tuple[Any, ...] | None, size: int) -> Any:
    columns = [
        *plan.primary_key,
        *(type_coerce(c, _raw(c)) for c in plan.encrypted),
        *(type_coerce(i, LargeBinary()) for i, _src in plan.indexes),
    ]
    stmt = select(*columns).order_by(*plan.primary_key).limit(size)
    if after is not None:
        if len(plan.primary_key) == 1:
            stmt = stmt.where(plan.primary_key[0] > after[0])
        else:
            stmt = stmt.where(tuple_(*plan.primary_key) > tuple_(*after))
    return conn.execute(stmt).all()


def _write(conn: Connection, statement: Any, updates: list[dict[str, Any]]) -> int:
    if conn.dialect.supports_sane_multi_rowcount:
        return int(conn.execute(statement, updates).rowcount)
    return sum(int(conn.execute(statement, params).rowcount) for params in updates)


def rotate(
    engine: Engine,
    target: object,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Callable[[RotationProgress], object] | None = None,
) -> int:
    """Re-encrypt under each column's primary key; return how many rows were rewritten.

    ``target``: an encrypted column (``User.email`` or ``table.c.email``), a ``Table`` or a
    mapped class (all its encrypted columns). Each batch of ``batch_size`` rows is one
    transaction, committed before ``progress`` is called with the totals so far; an exception
    (from ``progress`` too) stops the run with every earlier batch kept, and a re-run rewrites
    only the rows still left. Blind indexes of the rotated columns are rewritten under their
    current (first) index key. A token no key opens raises ``ColumnDecryptionError`` naming the
    column and the row's primary key.
    """
    if not isinstance(engine, Engine):
        raise TypeError(f"engine must be an Engine, not {type(engine).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int):
        raise TypeError(f"batch_size must be an int, not {type(batch_size).__name__}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if progress is not None and not callable(progress):
        raise TypeError("progress must be a callable or None")
    total = 0
    for plan in _plans(target):
        if not plan.encrypted:
            continue
        statement = _update_statement(plan)
        after: tuple[Any, ...] | None = None
        batches = scanned = changed = 0
        while True:
            with engine.begin() as conn:
                rows = _batch(conn, plan, after, batch_size)
                if not rows:
                    break
                updates = [p for p in (_rotate_row(plan, row) for row in rows) if p is not None]
                if updates:
                    changed += _write(conn, statement, updates)
            after = tuple(rows[-1][: len(plan.primary_key)])
            batches += 1
            scanned += len(rows)
            if progress is not None:
                progress(RotationProgress(plan.table.name, batches, scanned, changed))
            if len(rows) < batch_size:
                break
        total += changed
    return total
