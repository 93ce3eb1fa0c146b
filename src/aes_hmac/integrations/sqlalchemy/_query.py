"""Finding rows by an encrypted value: candidates by blind index, then decrypt and compare.

Also keeps ORM objects' blind indexes up to date: when a mapped class has a ``BlindIndex``
column, setting its source attribute sets the index attribute to the same plaintext, which the
index type stores as its digest.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, LargeBinary, Table, event, select, type_coerce
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import InstrumentedAttribute, Mapper, Session
from sqlalchemy.sql.elements import ColumnElement

from ._blind_index import BlindIndex
from ._types import EncryptedType

__all__ = ["find", "find_rows", "index_column", "index_columns", "index_of", "table_column"]


def table_column(column: object, name: str = "column") -> Column[Any]:
    """The table ``Column`` behind ``column``: a ``Column`` or an ORM attribute (``User.email``)."""
    element = column.__clause_element__() if hasattr(column, "__clause_element__") else column
    if not isinstance(element, Column) or not isinstance(element.table, Table):
        raise TypeError(f"{name} must be a table column or a mapped column attribute")
    return element


def index_columns(table: Table, source: str) -> list[Column[Any]]:
    """The ``BlindIndex`` columns of ``table`` that index the column named ``source``."""
    return [c for c in table.columns if isinstance(c.type, BlindIndex) and c.type.source == source]


def index_column(column: object) -> Column[Any]:
    """The blind index column of an encrypted column (or the index column itself)."""
    col = table_column(column)
    if isinstance(col.type, BlindIndex):
        return col
    if not isinstance(col.type, EncryptedType):
        raise TypeError(f"{col.table.name}.{col.name} is not an encrypted column")
    found = index_columns(col.table, col.name)
    if len(found) != 1:
        raise ValueError(
            f"{col.table.name}.{col.name} has {len(found)} blind index columns, expected 1 "
            "(pass the index column itself)"
        )
    return found[0]


def index_of(column: object, value: Any) -> ColumnElement[bool]:
    """WHERE clause selecting the candidate rows for ``value``: its index under every index key.

    Candidates include false positives (``bits`` is small on purpose); ``find``/``find_rows``
    drop them by decrypting. ``None`` selects the rows whose value is ``NULL``.
    """
    idx = index_column(column)
    if value is None:
        return idx.is_(None)
    index_type: BlindIndex = idx.type  # type: ignore[assignment]
    # Compare the stored digests as plain bytes: the index type would digest the digests again.
    return type_coerce(idx, LargeBinary()).in_(index_type.digests(value))


def _source_of(idx: Column[Any]) -> Column[Any]:
    index_type: BlindIndex = idx.type  # type: ignore[assignment]
    return idx.table.columns[index_type.source]


def find(session: Session, attribute: InstrumentedAttribute[Any], value: Any) -> list[Any]:
    """The mapped objects whose ``attribute`` equals ``value`` after the index's normalisation."""
    if not isinstance(attribute, InstrumentedAttribute):
        raise TypeError("attribute must be a mapped attribute such as User.email")
    idx = index_column(attribute)
    index_type: BlindIndex = idx.type  # type: ignore[assignment]
    wanted = None if value is None else index_type.canonical(value)
    found = []
    for obj in session.scalars(select(attribute.class_).where(index_of(idx, value))):
        stored = getattr(obj, attribute.key)
        if (None if stored is None else index_type.canonical(stored)) == wanted:
            found.append(obj)
    return found


def find_rows(connection: Connection, column: object, value: Any) -> list[Row[Any]]:
    """The rows of ``column``'s table whose value equals ``value`` (Core version of ``find``)."""
    idx = index_column(column)
    source = _source_of(idx)
    index_type: BlindIndex = idx.type  # type: ignore[assignment]
    wanted = None if value is None else index_type.canonical(value)
    rows = connection.execute(select(idx.table).where(index_of(idx, value)))
    found = []
    for row in rows:
        stored = row._mapping[source]
        if (None if stored is None else index_type.canonical(stored)) == wanted:
            found.append(row)
    return found


@event.listens_for(Mapper, "mapper_configured")
def _keep_indexes(mapper: Mapper[Any], class_: type) -> None:
    """Make setting an encrypted attribute set its blind index attributes to the same value."""
    keys_by_column = {prop.columns[0].name: prop.key for prop in mapper.column_attrs}
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        if not isinstance(column.type, BlindIndex) or column.type.source not in keys_by_column:
            continue
        source_key = keys_by_column[column.type.source]
        if source_key in mapper.class_manager and prop.key in mapper.class_manager:
            event.listen(getattr(class_, source_key), "set", _setter(prop.key))


def _setter(index_key: str) -> Any:
    def set_index(target: object, value: Any, _old: Any, _initiator: Any) -> None:
        setattr(target, index_key, value)

    return set_index
