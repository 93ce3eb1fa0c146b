"""aes_hmac.integrations.sqlalchemy against real databases: SQLite always, PostgreSQL when
scripts/postgres.sh started one (AES_HMAC_PG_URL; under CI=true a missing PostgreSQL fails)."""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from aes_hmac import InvalidToken, Key, Keyring, generate_key

sa = pytest.importorskip("sqlalchemy")

from sqlalchemy import (  # noqa: E402
    Column,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Engine  # noqa: E402
from sqlalchemy.exc import StatementError  # noqa: E402
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column  # noqa: E402

from aes_hmac.integrations.sqlalchemy import (  # noqa: E402
    BlindIndex,
    ColumnDecryptionError,
    EncryptedBytes,
    EncryptedJSON,
    EncryptedString,
    RotationProgress,
    find,
    find_rows,
    index_of,
    normalize_text,
    rotate,
)

PG_URL = os.environ.get("AES_HMAC_PG_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        eng = create_engine(f"sqlite:///{tmp_path / 'test.db'}")
    else:
        if not PG_URL:
            reason = "PostgreSQL not available: run the tests through scripts/test.sh"
            if os.environ.get("CI") == "true":
                pytest.fail(f"{reason} (CI=true: PostgreSQL tests must run)")
            pytest.skip(f"{reason}, or set AES_HMAC_PG_URL (bash scripts/postgres.sh prints one)")
        eng = create_engine(PG_URL)
        with eng.begin() as conn:  # a clean public schema: a crashed earlier run leaves tables
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    yield eng
    eng.dispose()


class Holder:
    """The application's current keyring; the column types call it for every value."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring

    def __call__(self) -> Keyring:
        return self.ring


@dataclass
class Models:
    base: type[DeclarativeBase]
    user: Any
    admin: Any


def make_models(
    keys: Callable[[], Keyring],
    index_keys: list[bytes],
    bits: int = 32,
    read_v1: bool | None = None,
) -> Models:
    """A fresh declarative base: users (every column kind) and admins (an email too)."""

    class Base(DeclarativeBase):
        pass

    class User(Base):
        __tablename__ = "users"
        id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
        email: Mapped[str | None] = mapped_column(EncryptedString(keys))
        email_index: Mapped[bytes | None] = mapped_column(
            BlindIndex(
                index_keys, source="email", bits=bits, normalize=normalize_text, read_v1=read_v1
            )
        )
        nickname: Mapped[str | None] = mapped_column(EncryptedString(keys))
        avatar: Mapped[bytes | None] = mapped_column(EncryptedBytes(keys, binary=True))
        profile: Mapped[Any] = mapped_column(EncryptedJSON(keys), nullable=True)
        plain: Mapped[str | None] = mapped_column(String(50))

    class Admin(Base):
        __tablename__ = "admins"
        id: Mapped[int] = mapped_column(primary_key=True)
        email: Mapped[str | None] = mapped_column(EncryptedString(keys))

    return Models(Base, User, Admin)


@pytest.fixture
def index_key() -> bytes:
    return generate_key()


@pytest.fixture
def holder() -> Holder:
    return Holder(Keyring(Key.generate()))


@pytest.fixture
def models(engine: Engine, holder: Holder, index_key: bytes) -> Iterator[Models]:
    m = make_models(holder, [index_key])
    m.base.metadata.create_all(engine)
    yield m
    m.base.metadata.drop_all(engine)


def raw(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(text(sql), params).all())


# --- column types -------------------------------------------------------------------------------

VALUES = [
    ("ascii@example.com", b"\x00\x01binary\xff", {"a": 1, "nested": [1, 2.5, None, True, "x"]}),
    ("unicodé ✓ 😀 e\u0301", b"", ["list", {"k": "välue"}]),
    ("", bytes(range(256)) * 64, "a JSON string"),
    ("x" * 300_000, os.urandom(1 << 20), {"big": "y" * 200_000}),
]


@pytest.mark.parametrize(
    ("email", "avatar", "profile"), VALUES, ids=["ascii", "unicode", "empty", "large"]
)
def test_round_trip_each_type(
    engine: Engine, models: Models, email: str, avatar: bytes, profile: Any
) -> None:
    with Session(engine) as session:
        session.add(models.user(id=1, email=email, avatar=avatar, profile=profile, plain="p"))
        session.commit()
    with Session(engine) as session:
        user = session.get(models.user, 1)
        assert (user.email, user.avatar, user.profile) == (email, avatar, profile)
        assert type(user.email) is str and type(user.avatar) is bytes
    stored_email, stored_avatar = raw(engine, "SELECT email, avatar FROM users")[0]
    assert stored_email.startswith("pQEA")  # a raw-key text token, not the value
    assert email == "" or email not in stored_email
    assert bytes(stored_avatar)[:3] == b"\xa5\x01\x00"  # binary=True: the binary token


def test_none_is_null(engine: Engine, models: Models) -> None:
    with Session(engine) as session:
        session.add(models.user(id=1))
        session.add(models.user(id=2, email="a", profile={"x": 1}))
        session.commit()
        nulls = session.scalars(select(models.user.id).where(models.user.email.is_(None))).all()
        assert nulls == [1]
        assert session.scalars(select(models.user.id).where(models.user.email == None)).all() == [1]  # noqa: E711
        user = session.get(models.user, 1)
        assert (user.email, user.avatar, user.profile, user.email_index) == (None,) * 4
    assert raw(engine, "SELECT id FROM users WHERE email IS NULL AND email_index IS NULL") == [(1,)]


def test_tokens_are_randomised(engine: Engine, models: Models) -> None:
    with Session(engine) as session:
        session.add_all([models.user(id=i, email="same") for i in (1, 2)])
        session.commit()
    first, second = (row[0] for row in raw(engine, "SELECT email FROM users ORDER BY id"))
    assert first != second  # sqlalchemy-utils#166: no equal ciphertexts for equal plaintexts


@pytest.mark.parametrize(
    ("sql", "table", "column"),
    [
        ("UPDATE users SET nickname = email", "users", "nickname"),  # another column, same row
        ("INSERT INTO admins (id, email) SELECT id, email FROM users", "admins", "email"),
    ],
    ids=["other-column", "other-table"],
)
def test_copied_value_is_refused(
    engine: Engine, models: Models, sql: str, table: str, column: str
) -> None:
    with Session(engine) as session:
        session.add(models.user(id=1, email="secret@example.com"))
        session.commit()
    with engine.begin() as conn:
        conn.execute(text(sql))
    entity = models.user if table == "users" else models.admin
    with Session(engine) as session, pytest.raises(ColumnDecryptionError) as caught:
        session.scalars(select(getattr(entity, column))).all()
    assert (caught.value.table, caught.value.column) == (table, column)
    message = str(caught.value)
    assert message.startswith(f"failed to decrypt {table}.{column}: ")
    assert "copied from another column" in message
    assert "secret" not in message and "pQEA" not in message
    assert isinstance(caught.value, InvalidToken)


def test_wrong_keys_refused_with_column_name(
    engine: Engine, models: Models, holder: Holder
) -> None:
    with Session(engine) as session:
        session.add(models.user(id=1, email="a"))
        session.commit()
    holder.ring = Keyring(Key.generate())
    with Session(engine) as session, pytest.raises(ColumnDecryptionError, match=r"users\.email"):
        session.get(models.user, 1)


def test_comparing_encrypted_column_with_plaintext_is_refused(models: Models) -> None:
    for expression in (
        lambda: models.user.email == "a",
        lambda: models.user.email != "a",
        lambda: models.user.email.in_(["a"]),
        lambda: models.user.email.like("a%"),
        lambda: models.user.profile > 3,
    ):
        with pytest.raises(TypeError, match="blind index"):
            expression()


def test_wrong_value_type_names_the_column(engine: Engine, models: Models) -> None:
    with Session(engine) as session:
        session.add(models.user(id=1, email=42))
        with pytest.raises(StatementError) as caught:
            session.commit()
    assert isinstance(caught.value.orig, TypeError)
    assert "users.email: value must be a str, not int" in str(caught.value.orig)


def test_unattached_type_needs_context() -> None:
    key = Key.generate()
    dialect = create_engine("sqlite://").dialect
    with pytest.raises(ValueError, match="not attached to a table column"):
        EncryptedString(key).process_bind_param("x", dialect)
    with pytest.raises(TypeError, match="keys must be a Keyring, Key, PasswordKey"):
        EncryptedString(b"0" * 32)  # type: ignore[arg-type]
    pinned = EncryptedString(key, context="users.email")
    token = pinned.process_bind_param("x", dialect)
    assert pinned.process_result_value(token, dialect) == "x"


def test_context_keeps_tokens_readable_after_a_rename(engine: Engine) -> None:
    key = Key.generate()
    old = Table(
        "people",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("email", EncryptedString(key)),
    )
    new = Table(
        "persons",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("mail", EncryptedString(key, context="people.email")),
    )
    old.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(insert(old), [{"id": 1, "email": "kept"}])
            conn.execute(text("ALTER TABLE people RENAME TO persons"))
            conn.execute(text("ALTER TABLE persons RENAME COLUMN email TO mail"))
            assert conn.execute(select(new.c.mail)).scalar_one() == "kept"
    finally:
        new.drop(engine)


def test_one_type_object_shared_by_two_columns() -> None:
    shared = EncryptedString(Key.generate())
    table = Table("t", MetaData(), Column("a", shared), Column("b", shared))
    assert (table.c.a.type.context, table.c.b.type.context) == (("t", "a"), ("t", "b"))


@settings(max_examples=50, deadline=None)
@given(
    text_value=st.text(),
    data=st.binary(),
    json_value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=10,
    ),
)
def test_types_round_trip_any_value(text_value: str, data: bytes, json_value: Any) -> None:
    key = Key.generate()
    dialect = create_engine("sqlite://").dialect
    for column_type, value in (
        (EncryptedString(key, context="t.s"), text_value),
        (EncryptedBytes(key, context="t.b", binary=True), data),
        (EncryptedJSON(key, context="t.j"), json_value),
    ):
        stored = column_type.process_bind_param(value, dialect)
        assert column_type.process_result_value(stored, dialect) == value


# --- blind indexes ------------------------------------------------------------------------------


def add_users(engine: Engine, models: Models, emails: list[str]) -> None:
    with Session(engine) as session:
        session.add_all([models.user(id=i, email=e) for i, e in enumerate(emails, start=1)])
        session.commit()


def test_find_by_blind_index_with_normalisation(engine: Engine, models: Models) -> None:
    add_users(engine, models, ["alice@example.com", "bob@example.com", "Alice@Example.COM"])
    with Session(engine) as session:
        found = find(session, models.user.email, "  ALICE@example.com")
        assert sorted(u.id for u in found) == [1, 3]
        assert find(session, models.user.email, "carol@example.com") == []
        # Changing the value through the ORM rewrites its index.
        session.get(models.user, 2).email = "carol@example.com"
        session.commit()
        assert [u.id for u in find(session, models.user.email, "carol@example.com")] == [2]
        assert find(session, models.user.email, "bob@example.com") == []
        assert [u.id for u in find(session, models.user.email, None)] == []


def test_blind_index_false_positives_are_dropped(
    engine: Engine, holder: Holder, index_key: bytes
) -> None:
    # One bit: about half of all rows are candidates for any value (with one index value looked
    # up: the v1 construction, tried by default, would make it a second one).
    m = make_models(holder, [index_key], bits=1, read_v1=False)
    m.base.metadata.create_all(engine)
    try:
        add_users(engine, m, [f"user{i}@example.com" for i in range(60)])
        with Session(engine) as session:
            candidates = session.scalars(
                select(m.user.id).where(index_of(m.user.email, "user7@example.com"))
            ).all()
            assert 8 in candidates and 1 < len(candidates) < 60
            assert [u.id for u in find(session, m.user.email, "user7@example.com")] == [8]
    finally:
        m.base.metadata.drop_all(engine)


def test_blind_index_without_false_positives(engine: Engine, models: Models) -> None:
    add_users(engine, models, [f"user{i}@example.com" for i in range(200)])
    with Session(engine) as session:
        candidates = session.scalars(
            select(models.user.id).where(index_of(models.user.email, "user7@example.com"))
        ).all()
    assert candidates == [8]  # 32 bits, 200 rows: a collision has odds of 1 in 20 million


def test_blind_index_in_core(engine: Engine, models: Models) -> None:
    table = models.user.__table__
    with engine.begin() as conn:
        conn.execute(
            insert(table),
            [
                {"id": i, "email": e, "email_index": e}
                for i, e in enumerate(["a@x.org", "b@x.org", "A@X.org"], start=1)
            ],
        )
        rows = find_rows(conn, table.c.email, "a@x.org")
    assert sorted((r.id, r.email) for r in rows) == [(1, "a@x.org"), (3, "A@X.org")]


def expected_digest(index_key: bytes, context: tuple[str, str], data: bytes, bits: int) -> bytes:
    """The documented construction (v2), computed independently of the module."""
    names = b"".join(len(n.encode()).to_bytes(2, "big") + n.encode() for n in context)
    column_key = HKDF(
        hashes.SHA256(), 32, salt=None, info=b"aes-hmac blind index v2\x00" + names
    ).derive(index_key)
    mac = hmac.HMAC(column_key, hashes.SHA256())
    mac.update(data)
    full = int.from_bytes(mac.finalize(), "big") >> (256 - bits)
    size = (bits + 7) // 8
    return (full << (size * 8 - bits)).to_bytes(size, "big")


@pytest.mark.parametrize("bits", [1, 12, 16, 64, 256])
def test_blind_index_construction(bits: int) -> None:
    key = bytes(range(32))
    index = BlindIndex(key, source="email", bits=bits, normalize=normalize_text)
    Table("users", MetaData(), Column("email_index", index))
    assert index.context == ("users", "email")
    digest = index.digest(" Alice@EXAMPLE.com ")
    assert digest == expected_digest(key, ("users", "email"), b"salice@example.com", bits)
    assert len(digest) == (bits + 7) // 8
    other = BlindIndex(key, source="email", bits=bits, context="admins.email")
    if bits >= 64:  # per-column keys: the same value has unrelated indexes in two columns
        assert other.digest("alice@example.com") != digest


def test_blind_index_arguments() -> None:
    with pytest.raises(ValueError, match="bits must be between 1 and 256, got 0"):
        BlindIndex(generate_key(), source="email", bits=0)
    with pytest.raises(ValueError, match=r"keys\[1\] must be 32 bytes"):
        BlindIndex([generate_key(), b"short"], source="email", bits=16)
    with pytest.raises(TypeError, match="bits must be an int"):
        BlindIndex(generate_key(), source="email", bits=16.0)  # type: ignore[arg-type]
    assert "(hidden)" in repr(BlindIndex(generate_key(), source="e", bits=8).keys)


@given(st.text())
def test_normalize_text_is_idempotent(value: str) -> None:
    once = normalize_text(value)
    assert normalize_text(once) == once
    assert unicodedata.is_normalized("NFC", once)


# --- rotation -----------------------------------------------------------------------------------

ROWS = 10_000
BATCH = 1_000


def needing_rotation(engine: Engine, models: Models, ring: Keyring) -> int:
    table = models.user.__table__
    with engine.connect() as conn:
        tokens = conn.execute(select(type_coerce(table.c.email, Text()))).scalars().all()
    return sum(
        ring.needs_rotation(t, associated_data=table.c.email.type.associated_data())
        for t in tokens
        if t is not None
    )


class Crash(Exception):
    pass


def test_rotation_of_10000_rows_with_crash_and_resume(
    engine: Engine, holder: Holder, index_key: bytes
) -> None:
    old_key, new_key = Key.generate(), Key.generate()
    holder.ring = Keyring(old_key)
    new_index_key = generate_key()
    old_models = make_models(holder, [index_key])
    old_models.base.metadata.create_all(engine)
    table = old_models.user.__table__
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(table),
                [
                    {
                        "id": i,
                        "email": f"user{i}@example.com",
                        "email_index": f"user{i}@example.com",
                        "plain": f"p{i}",
                    }
                    for i in range(1, ROWS + 1)
                ],
            )
        # Deploy: new primary key, old key kept for reading; a new blind index key too.
        holder.ring = Keyring(new_key, old_key)
        models = make_models(holder, [new_index_key, index_key])
        with engine.begin() as conn:  # rows written after the deploy are already current
            conn.execute(
                insert(models.user.__table__),
                [
                    {
                        "id": i,
                        "email": f"user{i}@example.com",
                        "email_index": f"user{i}@example.com",
                    }
                    for i in range(ROWS + 1, ROWS + 501)
                ],
            )
        before = raw(engine, "SELECT id, email, email_index, plain FROM users ORDER BY id")
        assert needing_rotation(engine, models, holder.ring) == ROWS

        seen: list[RotationProgress] = []

        def crash_after_three(p: RotationProgress) -> None:
            seen.append(p)
            if p.batches == 3:
                raise Crash

        with pytest.raises(Crash):
            rotate(engine, models.user, batch_size=BATCH, progress=crash_after_three)
        assert seen[-1] == RotationProgress("users", 3, 3 * BATCH, 3 * BATCH)
        assert needing_rotation(engine, models, holder.ring) == ROWS - 3 * BATCH

        # Lookups work in the middle of a rotation: old and new index keys are both tried.
        with Session(engine) as session:
            for i in (5, 5000, ROWS + 7):
                assert [u.id for u in find(session, models.user.email, f"user{i}@example.com")] == [
                    i
                ]

        seen.clear()
        assert (
            rotate(engine, models.user, batch_size=BATCH, progress=seen.append) == ROWS - 3 * BATCH
        )
        assert seen[-1] == RotationProgress("users", 11, ROWS + 500, ROWS - 3 * BATCH)
        assert needing_rotation(engine, models, holder.ring) == 0
        assert rotate(engine, models.user, batch_size=BATCH) == 0

        after = raw(engine, "SELECT id, email, email_index, plain FROM users ORDER BY id")
        assert len(after) == ROWS + 500
        assert after[ROWS:] == before[ROWS:]  # rows already current: untouched, byte for byte
        assert all(
            a[3] == b[3] and a[1] != b[1] for a, b in zip(after[:ROWS], before[:ROWS], strict=True)
        )
        # Only the new keys are needed now, for the values and for their index.
        holder.ring = Keyring(new_key)
        current = make_models(holder, [new_index_key])
        with Session(engine) as session:
            assert session.get(current.user, 1234).email == "user1234@example.com"
            assert [u.id for u in find(session, current.user.email, "user99@example.com")] == [99]
            index_type = current.user.__table__.c.email_index.type
            assert all(
                bytes(row[2]) == index_type.digest(f"user{row[0]}@example.com") for row in after
            )
    finally:
        old_models.base.metadata.drop_all(engine)


def test_rotation_failure_rolls_back_only_its_batch(
    engine: Engine, models: Models, holder: Holder
) -> None:
    old_key = Key.generate()
    holder.ring = Keyring(old_key)
    table = models.user.__table__
    with engine.begin() as conn:
        conn.execute(
            insert(table),
            [
                {"id": i, "email": f"u{i}", "email_index": f"u{i}", "nickname": f"n{i}"}
                for i in range(1, 101)
            ],
        )
        conn.execute(
            text("UPDATE users SET email = (SELECT email FROM users WHERE id = 1) WHERE id = 45")
        )  # another row, same column: opens (not row-bound)
        conn.execute(text("UPDATE users SET email = NULL WHERE id = 55"))
        conn.execute(text("UPDATE users SET email = nickname WHERE id = 66"))  # refused
    holder.ring = Keyring(Key.generate(), old_key)
    with pytest.raises(ColumnDecryptionError) as caught:
        rotate(engine, table.c.email, batch_size=20)
    assert str(caught.value).startswith("failed to decrypt users.email: row with primary key (66)")
    # Batches 1-3 (rows 1-60) were committed; rows 61-100 are left (66 counts: a wrong
    # associated data reads as "needs rotation").
    assert needing_rotation(engine, models, holder.ring) == 40
    with engine.begin() as conn:
        conn.execute(text("UPDATE users SET email = NULL WHERE id = 66"))
    # Rows 61-100: 39 tokens rotated, and row 66's stale index rewritten to match its NULL.
    assert rotate(engine, table.c.email, batch_size=20) == 40
    assert raw(engine, "SELECT email_index FROM users WHERE id = 66") == [(None,)]


def test_rotation_targets(engine: Engine, models: Models, holder: Holder) -> None:
    old_key = Key.generate()
    holder.ring = Keyring(old_key)
    with Session(engine) as session:
        session.add_all([models.user(id=i, email="e", profile=[i]) for i in range(1, 6)])
        session.add(models.admin(id=1, email="admin"))
        session.commit()
    holder.ring = Keyring(Key.generate(), old_key)
    profile_before = raw(engine, "SELECT profile FROM users ORDER BY id")
    assert rotate(engine, models.user.email) == 5
    assert raw(engine, "SELECT profile FROM users ORDER BY id") == profile_before
    assert rotate(engine, models.user.__table__) == 5  # the profile column is left
    assert rotate(engine, models.user) == 0
    assert rotate(engine, models.admin) == 1
    with pytest.raises(TypeError, match=r"users\.plain is not an encrypted column"):
        rotate(engine, models.user.plain)
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        rotate(engine, models.user, batch_size=0)
    nokey = Table("nokey", MetaData(), Column("v", EncryptedString(holder)))
    with pytest.raises(ValueError, match="table nokey has no primary key"):
        rotate(engine, nokey)
    with Session(engine) as session:
        assert [u.profile for u in session.scalars(select(models.user))] == [
            [i] for i in range(1, 6)
        ]


def test_rotation_with_binary_tokens_and_composite_key(engine: Engine) -> None:
    old_key = Key.generate()
    holder = Holder(Keyring(old_key))
    table = Table(
        "pairs",
        MetaData(),
        Column("a", Integer, primary_key=True),
        Column("b", String(10), primary_key=True),
        Column("v", EncryptedBytes(holder, binary=True)),
        Column("v_index", BlindIndex(generate_key(), source="v", bits=24)),
    )
    table.create(engine)
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(table),
                [
                    {"a": i % 7, "b": str(i), "v": bytes([i]), "v_index": bytes([i])}
                    for i in range(50)
                ],
            )
        holder.ring = Keyring(Key.generate(), old_key)
        assert rotate(engine, table, batch_size=8) == 50
        assert rotate(engine, table, batch_size=8) == 0
        with engine.connect() as conn:
            rows = find_rows(conn, table.c.v, bytes([33]))
            assert [(r.a, r.b, r.v) for r in rows] == [(33 % 7, "33", bytes([33]))]
            stored = conn.execute(select(type_coerce(table.c.v, LargeBinary()))).scalars().all()
        assert all(bytes(s)[:3] == b"\xa5\x01\x00" for s in stored)
    finally:
        table.drop(engine)


def test_rotation_leaves_a_row_written_meanwhile(
    engine: Engine, models: Models, holder: Holder
) -> None:
    old_key = Key.generate()
    holder.ring = Keyring(old_key)
    add_users(engine, models, [f"u{i}" for i in range(1, 11)])
    holder.ring = Keyring(Key.generate(), old_key)
    table = models.user.__table__
    written = False

    def application_writes(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        # The application updates row 3 after rotate read it and before rotate writes it.
        nonlocal written
        if statement.startswith("UPDATE users") and not written:
            written = True
            conn.execute(
                table.update().where(table.c.id == 3).values(email="app", email_index="app")
            )

    event.listen(engine, "before_cursor_execute", application_writes)
    try:
        assert rotate(engine, models.user) == 9
    finally:
        event.remove(engine, "before_cursor_execute", application_writes)
    assert written
    with Session(engine) as session:
        assert session.get(models.user, 3).email == "app"
        assert [u.id for u in find(session, models.user.email, "app")] == [3]
