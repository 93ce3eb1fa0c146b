"""Encrypted SQLAlchemy columns: insert and read rates against a plain column, same run.

Usage: python benchmarks/bench_sqlalchemy.py [--rows 100000] [--repeat 3] [--url URL]
Inserts ``rows`` rows (an id and a 30-character e-mail address; one transaction, Core
executemany) and reads them all back, for: a plain ``Text`` column, ``EncryptedString`` (text
tokens), ``EncryptedString(binary=True)``, ``EncryptedString`` with a 32-bit blind index, and
sqlalchemy-utils' ``StringEncryptedType`` with its ``AesEngine`` when that package is installed
(``pip install sqlalchemy-utils``; not a dependency: its AES engine derives the IV from the key
and has no MAC). Then ``rotate`` rates (rows/s) with and without a blind index. Rates are best
of ``repeat``; ratios are against the plain column of the same run. Default database: a SQLite
file in a temporary directory. Benchmarks are not tests: run them on a quiet machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Integer, MetaData, Table, Text, create_engine, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.types import TypeEngine

from aes_hmac import Key, Keyring, generate_key
from aes_hmac.integrations.sqlalchemy import BlindIndex, EncryptedString, normalize_text, rotate


def best(fn: Callable[[], object], repeat: int) -> float:
    """Best-of-``repeat`` wall time of ``fn`` in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def make_table(name: str, column_type: TypeEngine[Any], index_key: bytes | None) -> Table:
    columns: list[Column[Any]] = [
        Column("id", Integer, primary_key=True, autoincrement=False),
        Column("email", column_type),
    ]
    if index_key is not None:
        index = BlindIndex(index_key, source="email", bits=32, normalize=normalize_text)
        columns.append(Column("email_index", index))
    return Table(name, MetaData(), *columns)


def fill(engine: Engine, table: Table, rows: list[dict[str, Any]]) -> None:
    table.drop(engine, checkfirst=True)
    table.create(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), rows)


def read_all(engine: Engine, table: Table) -> int:
    with engine.connect() as conn:
        return len(conn.execute(select(table)).all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows per table")
    parser.add_argument("--repeat", type=int, default=3, help="timing runs (best is kept)")
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        url = args.url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = create_engine(url)
        old_key, new_key, index_key = Key.generate(), Key.generate(), generate_key()
        current = {"ring": Keyring(old_key)}

        def keys() -> Keyring:
            return current["ring"]

        candidates: list[tuple[str, Table, bool]] = [
            ("plain Text", make_table("plain", Text(), None), False),
            ("EncryptedString", make_table("enc_text", EncryptedString(keys), None), False),
            (
                "EncryptedString(binary=True)",
                make_table("enc_binary", EncryptedString(keys, binary=True), None),
                False,
            ),
            (
                "EncryptedString + BlindIndex",
                make_table("enc_index", EncryptedString(keys), index_key),
                True,
            ),
        ]
        try:
            from sqlalchemy_utils import StringEncryptedType
            from sqlalchemy_utils.types.encrypted.encrypted_type import AesEngine

            utils_type = StringEncryptedType(Text, generate_key().hex(), AesEngine, "pkcs5")
            candidates.append(
                ("sqlalchemy-utils AesEngine", make_table("utils_aes", utils_type, None), False)
            )
        except ImportError:
            print("sqlalchemy-utils not installed: its row is skipped")

        print(f"{engine.dialect.name}, {args.rows:,} rows, best of {args.repeat}")
        print(f"{'column':32} {'insert rows/s':>14} {'read rows/s':>14} {'vs plain':>18}")
        plain_rates: tuple[float, float] | None = None
        for label, table, indexed in candidates:
            rows: list[dict[str, Any]] = [
                {"id": i, "email": f"user{i:08d}@example.com"} for i in range(args.rows)
            ]
            if indexed:
                for row in rows:
                    row["email_index"] = row["email"]
            insert_rate = args.rows / best(lambda t=table, r=rows: fill(engine, t, r), args.repeat)
            read_rate = args.rows / best(lambda t=table: read_all(engine, t), args.repeat)
            plain_rates = plain_rates or (insert_rate, read_rate)
            ratio = f"{insert_rate / plain_rates[0]:.2f}x / {read_rate / plain_rates[1]:.2f}x"
            print(f"{label:32} {insert_rate:14,.0f} {read_rate:14,.0f} {ratio:>18}")

        current["ring"] = Keyring(new_key, old_key)
        for label, table, _indexed in candidates[1:4]:
            start = time.perf_counter()
            changed = rotate(engine, table, batch_size=1000)
            elapsed = time.perf_counter() - start
            print(f"rotate {label:25} {changed / elapsed:14,.0f} rows/s ({changed:,} rows)")
        engine.dispose()


if __name__ == "__main__":
    main()
