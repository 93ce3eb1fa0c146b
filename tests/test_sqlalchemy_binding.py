"""The column binding v2 (issue 16): names length-prefixed in the associated data and the blind
index key, a type-exact canonical form, and data of the v1 binding still read and rotated.

Against SQLite always and PostgreSQL when scripts/postgres.sh started one (``engine`` fixture of
tests/test_sqlalchemy.py). ``column_vectors`` makes tests/vectors/column_v2.json
(scripts/make_vectors.py); the old rows come from tests/vectors/column_v1_legacy.json, written by
the code of the last commit with the v1 binding (scripts/make_column_legacy.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from _vectors import VECTORS, load
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from aes_hmac import InvalidToken, Key, Keyring

sa = pytest.importorskip("sqlalchemy")

from sqlalchemy import Column, Integer, MetaData, Table, insert, select, text  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402
from test_sqlalchemy import engine  # noqa: E402, F401  (the SQLite/PostgreSQL fixture)

from aes_hmac.integrations.sqlalchemy import (  # noqa: E402
    BlindIndex,
    ColumnDecryptionError,
    EncryptedJSON,
    EncryptedString,
    find,
    find_rows,
    normalize_text,
    rotate,
)

LEGACY = "column_v1_legacy.json"
VECTOR_FILE = "column_v2.json"
VECTOR_INDEX_KEY = bytes(range(64, 96))


def names(table: str, column: str) -> bytes:
    """FORMAT.md's names block, written here from the spec: u16 length + UTF-8, twice."""
    return b"".join(len(n.encode()).to_bytes(2, "big") + n.encode() for n in (table, column))


def index_value(index_key: bytes, info: bytes, data: bytes, bits: int) -> bytes:
    """FORMAT.md's blind index, from the spec: HKDF column key, HMAC, first ``bits`` bits."""
    column_key = HKDF(hashes.SHA256(), 32, salt=None, info=info).derive(index_key)
    mac = hmac.HMAC(column_key, hashes.SHA256())
    mac.update(data)
    full = int.from_bytes(mac.finalize(), "big") >> (256 - bits)
    size = (bits + 7) // 8
    return (full << (size * 8 - bits)).to_bytes(size, "big")


def two_dotted_tables(key: Key, bits: int = 64, **kwargs: Any) -> tuple[Table, Table]:
    """hr."salary.amount" and "hr.salary".amount: the two columns the v1 binding confused."""
    metadata = MetaData()
    hr = Table(
        "hr",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("salary.amount", EncryptedString(key, **kwargs)),
        Column("salary_index", BlindIndex(VECTOR_INDEX_KEY, source="salary.amount", bits=bits)),
    )
    hr_salary = Table(
        "hr.salary",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("amount", EncryptedString(key, **kwargs)),
        Column("amount_index", BlindIndex(VECTOR_INDEX_KEY, source="amount", bits=bits)),
    )
    return hr, hr_salary


@pytest.fixture
def dotted(engine: Engine) -> Iterator[tuple[Table, Table]]:  # noqa: F811
    key = Key(bytes(range(32)))
    hr, hr_salary = two_dotted_tables(key)
    hr.metadata.create_all(engine)
    yield hr, hr_salary
    hr.metadata.drop_all(engine)


# --- dotted names: no token moves, no index collides ---------------------------------------------


def test_dotted_names_cannot_move_a_token(engine: Engine, dotted: tuple[Table, Table]) -> None:  # noqa: F811
    hr, hr_salary = dotted
    amount = hr.c["salary.amount"]
    with engine.begin() as conn:
        conn.execute(insert(hr), [{"id": 1, "salary.amount": "100", "salary_index": "100"}])
        assert conn.execute(select(amount)).scalar_one() == "100"
        raw = conn.execute(text('SELECT "salary.amount" FROM hr')).scalar_one()
        conn.execute(text('INSERT INTO "hr.salary" (id, amount) VALUES (1, :t)'), {"t": raw})
        with pytest.raises(ColumnDecryptionError, match=r'failed to decrypt "hr\.salary"\.amount'):
            conn.execute(select(hr_salary.c.amount)).scalar_one()


def test_dotted_names_do_not_collide_in_the_index(
    engine: Engine,  # noqa: F811
    dotted: tuple[Table, Table],
) -> None:
    hr, hr_salary = dotted
    with engine.begin() as conn:
        conn.execute(insert(hr), [{"id": 1, "salary.amount": "100", "salary_index": "100"}])
        conn.execute(insert(hr_salary), [{"id": 1, "amount": "100", "amount_index": "100"}])
        left = conn.execute(text("SELECT salary_index FROM hr")).scalar_one()
        right = conn.execute(text('SELECT amount_index FROM "hr.salary"')).scalar_one()
    # 64 bits: equal values in two columns would share an index value only by a 2**-64 chance.
    assert bytes(left) != bytes(right)
    assert bytes(left) == index_value(
        VECTOR_INDEX_KEY, b"aes-hmac blind index v2\x00" + names("hr", "salary.amount"), b"s100", 64
    )


def test_context_argument_names_the_pair() -> None:
    key = Key.generate()
    with pytest.raises(ValueError, match="exactly one dot, or a \\(table, column\\) tuple"):
        EncryptedString(key, context="hr.salary.amount")
    with pytest.raises(ValueError, match="exactly one dot"):
        BlindIndex(VECTOR_INDEX_KEY, source="x", bits=8, context="nodot")
    with pytest.raises(TypeError, match="context column name must be a str"):
        EncryptedString(key, context=("hr", 3))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="read_v1 must be a bool or None"):
        EncryptedString(key, read_v1="yes")  # type: ignore[arg-type]
    one = EncryptedString(key, context=("hr", "salary.amount"))
    other = EncryptedString(key, context=("hr.salary", "amount"))
    assert one.associated_data() != other.associated_data()
    with pytest.raises(ColumnDecryptionError, match=r'hr\."salary\.amount".*read_v1') as caught:
        one.decrypt_value(other.encrypt_value("100"))
    assert (caught.value.table, caught.value.column) == ("hr", "salary.amount")
    assert EncryptedString(key, context="people.email").context == ("people", "email")


# --- JSON blind index: type-exact ---------------------------------------------------------------


class JsonBase(DeclarativeBase):
    pass


class Doc(JsonBase):
    __tablename__ = "docs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    value: Mapped[Any] = mapped_column(EncryptedJSON(Key(bytes(range(32)))), nullable=True)
    value_index: Mapped[bytes | None] = mapped_column(
        BlindIndex(VECTOR_INDEX_KEY, source="value", bits=8)
    )


JSON_VALUES: list[Any] = [True, "true", [1, 2], "[1,2]", 1, "1", 1.0, 2.5, {"a": 1}, {"a": True}, 0]


def test_json_search_is_type_exact(engine: Engine) -> None:  # noqa: F811
    JsonBase.metadata.create_all(engine)
    try:
        with Session(engine) as session:
            # 8 bits and 11 values: index collisions are likely, so the final compare decides.
            session.add_all([Doc(id=i, value=v) for i, v in enumerate(JSON_VALUES)])
            session.commit()

            def ids(value: Any) -> list[int]:
                return sorted(d.id for d in find(session, Doc.value, value))

            assert ids("true") == [1]
            assert ids(True) == [0]
            assert ids("[1,2]") == [3]
            assert ids([1, 2]) == [2]
            assert ids((1, 2)) == [2]  # a tuple is a JSON array, as stored
            assert ids("1") == [5]
            # One JSON number type: 1 and 1.0 are the same number; True is not a number.
            assert ids(1) == ids(1.0) == [4, 6]
            assert ids({"a": 1.0}) == [8]
            assert ids({"a": True}) == [9]
            assert ids(False) == []
            assert ids(0) == [10]
    finally:
        JsonBase.metadata.drop_all(engine)


def test_json_canonical_refuses_non_json() -> None:
    index = BlindIndex(VECTOR_INDEX_KEY, source="v", bits=16, context="t.v")
    with pytest.raises(ValueError, match="NaN and infinities"):
        index.digest(float("nan"))
    assert index.canonical([1.0, -0.0, 1e16, 0.5]) == b"j[1,0,10000000000000000,0.5]"


# --- data of the v1 binding ----------------------------------------------------------------------


def legacy_rows(name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = load(LEGACY)["rows"][name]
    return rows


def people_table(read_v1: bool | None = None) -> Table:
    """The table the legacy fixture's people rows were written for."""
    doc = load(LEGACY)
    key, index_key, bits = (
        Key(bytes.fromhex(doc["key"])),
        bytes.fromhex(doc["index_key"]),
        doc["bits"],
    )
    return Table(
        "people",
        MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("email", EncryptedString(key, read_v1=read_v1)),
        Column(
            "email_index",
            BlindIndex(
                index_key, source="email", bits=bits, normalize=normalize_text, read_v1=read_v1
            ),
        ),
        Column("profile", EncryptedJSON(key, read_v1=read_v1)),
        Column(
            "profile_index", BlindIndex(index_key, source="profile", bits=bits, read_v1=read_v1)
        ),
    )


def load_people(engine: Engine, table: Table) -> None:  # noqa: F811
    """Store the fixture's tokens and index values as they are (no encryption on the way)."""
    emails, profiles = legacy_rows("people.email"), legacy_rows("people.profile")
    table.metadata.create_all(engine)
    with engine.begin() as conn:
        for i, profile in enumerate(profiles):
            email = emails[i] if i < len(emails) else None
            conn.execute(
                text(
                    "INSERT INTO people (id, email, email_index, profile, profile_index) "
                    "VALUES (:id, :email, :email_index, :profile, :profile_index)"
                ),
                {
                    "id": i,
                    "email": None if email is None else email["token"],
                    "email_index": None if email is None else bytes.fromhex(email["index"]),
                    "profile": profile["token"],
                    "profile_index": bytes.fromhex(profile["index"]),
                },
            )


def rows_of(engine: Engine, table: Table) -> list[Any]:  # noqa: F811
    with engine.connect() as conn:
        return list(conn.execute(select(table).order_by(table.c.id)).all())


def finds(engine: Engine, table: Table, column: str, value: Any) -> list[int]:  # noqa: F811
    """Ids of the rows whose ``column`` matches ``value`` (Core lookup through the index)."""
    with engine.connect() as conn:
        return sorted(r.id for r in find_rows(conn, table.c[column], value))


def test_v1_rows_read_are_found_and_rotate(engine: Engine) -> None:  # noqa: F811
    table = people_table()
    load_people(engine, table)
    try:
        emails, profiles = legacy_rows("people.email"), legacy_rows("people.profile")
        expected = [
            (i, emails[i]["value"] if i < len(emails) else None, p["value"])
            for i, p in enumerate(profiles)
        ]

        def check_reads_and_finds(t: Table) -> None:
            assert [(r.id, r.email, r.profile) for r in rows_of(engine, t)] == expected
            assert finds(engine, t, "email", " ALICE@example.com") == [0]
            assert finds(engine, t, "profile", "true") == [1]
            assert finds(engine, t, "profile", True) == [0]
            assert finds(engine, t, "profile", [1, 2]) == [2]
            assert finds(engine, t, "profile", "1") == [5]

        check_reads_and_finds(table)  # v1 tokens and v1 indexes, before rotation
        before = raw_people(engine)
        assert rotate(engine, table, batch_size=3) == len(profiles)
        assert rotate(engine, table) == 0
        after = raw_people(engine)
        assert all(a != b for a, b in zip(after, before, strict=True))
        # Now v2 only: the v1 binding can be turned off and everything still reads and is found.
        current = people_table(read_v1=False)
        check_reads_and_finds(current)
        ad = current.c.profile.type.associated_data()
        assert ad == b"aes-hmac sqlalchemy v2\x00" + names("people", "profile")
        ring = Keyring(Key(bytes.fromhex(load(LEGACY)["key"])))
        assert not any(ring.needs_rotation(row[2], associated_data=ad) for row in after)
        with pytest.raises(ColumnDecryptionError, match="read_v1"):
            EncryptedJSON(ring, context="people.profile", read_v1=False).decrypt_value(
                profiles[0]["token"]
            )
    finally:
        table.metadata.drop_all(engine)


def raw_people(engine: Engine) -> list[tuple[Any, ...]]:  # noqa: F811
    with engine.connect() as conn:
        result = conn.execute(text("SELECT email, email_index, profile, profile_index FROM people"))
        return [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in result.all()
        ]


def test_v1_rows_of_a_dotted_column(engine: Engine) -> None:  # noqa: F811
    """The v1 bytes of hr."salary.amount" are those of "hr.salary".amount: a dotted column reads
    them only when the application vouches for it (read_v1=True), and then rotates them."""
    key = Key(bytes.fromhex(load(LEGACY)["key"]))
    rows = legacy_rows("hr.salary.amount")
    default_hr, default_hr_salary = two_dotted_tables(key, bits=load(LEGACY)["bits"])
    default_hr.metadata.create_all(engine)
    try:
        with engine.begin() as conn:
            for table in (default_hr, default_hr_salary):
                column = '"salary.amount"' if table is default_hr else "amount"
                for i, row in enumerate(rows):
                    conn.execute(
                        text(f'INSERT INTO "{table.name}" (id, {column}) VALUES (:id, :t)'),
                        {"id": i, "t": row["token"]},
                    )
            # Without the opt-in, neither column reads them: the fallback cannot confuse them.
            for column in (default_hr.c["salary.amount"], default_hr_salary.c.amount):
                with pytest.raises(ColumnDecryptionError, match="read_v1"):
                    conn.execute(select(column)).all()
        vouched, _ = two_dotted_tables(key, bits=load(LEGACY)["bits"], read_v1=True)
        with engine.connect() as conn:
            assert conn.execute(select(vouched.c["salary.amount"])).scalars().all() == [
                "100",
                "250",
            ]
        assert rotate(engine, vouched.c["salary.amount"]) == len(rows)
        with engine.connect() as conn:  # now v2: the default type reads it, the other column not
            assert conn.execute(select(default_hr.c["salary.amount"])).scalars().all() == [
                "100",
                "250",
            ]
            moved = conn.execute(text('SELECT "salary.amount" FROM hr')).scalars().all()
        other = EncryptedString(key, context=("hr.salary", "amount"), read_v1=True)
        for token in moved:
            with pytest.raises(InvalidToken):
                other.decrypt_value(token)
    finally:
        default_hr.metadata.drop_all(engine)


# --- vectors --------------------------------------------------------------------------------------

VECTOR_CASES: list[tuple[str, str, Any, str | None]] = [
    ("users", "email", "alice@example.com", "normalize_text"),
    ("hr", "salary.amount", "100", None),
    ("hr.salary", "amount", "100", None),
    ("prefs", "settings", {"dark": True, "size": 1.0}, None),
    ("prefs", "settings", "true", None),
    ("prefs", "settings", True, None),
    ("blobs", "data", b"\x00\xff", None),
    ("tàble", "çolumn", "ünïcode", None),
]


def column_vectors() -> str:
    """tests/vectors/column_v2.json: associated data, index keys and index values per case."""
    out = []
    for table, column, value, normalizer in VECTOR_CASES:
        index = BlindIndex(
            VECTOR_INDEX_KEY,
            source=column,
            bits=256,
            normalize=normalize_text if normalizer else None,
            context=(table, column),
        )
        token_type = EncryptedString(Key(VECTOR_INDEX_KEY), context=(table, column))
        out.append(
            {
                "table": table,
                "column": column,
                "value": value.hex() if isinstance(value, bytes) else value,
                "value_is_bytes": isinstance(value, bytes),
                "normalize": normalizer,
                "associated_data": token_type.associated_data().hex(),
                "associated_data_v1": (token_type.associated_data_v1() or b"").hex() or None,
                "canonical": index.canonical(value).hex(),
                "index_256": index.digest(value).hex(),
                "index_v1_256": index.digests(value)[1].hex() if index.reads_v1() else None,
            }
        )
    doc = {
        "description": "aes-hmac SQLAlchemy column binding v2 (docs/FORMAT.md, column binding): "
        "associated data, canonical form and 256-bit blind index per case; written by "
        "scripts/make_vectors.py",
        "index_key": VECTOR_INDEX_KEY.hex(),
        "vectors": out,
    }
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def test_column_vectors_file_is_current() -> None:
    assert (VECTORS / VECTOR_FILE).read_text(encoding="utf-8") == column_vectors()


def test_index_column_with_a_dot_binds_to_its_table() -> None:
    key = Key.generate()
    table = Table(
        "hr",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("salary.amount", EncryptedString(key)),
        Column("salary.amount_index", BlindIndex(VECTOR_INDEX_KEY, source="salary.amount", bits=8)),
    )
    assert table.c["salary.amount"].type.context == ("hr", "salary.amount")
    assert table.c["salary.amount_index"].type.context == ("hr", "salary.amount")
