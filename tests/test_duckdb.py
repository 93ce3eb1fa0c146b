"""DuckDB reads encrypted Parquet and CSV through ``duckdb.register_filesystem`` (extra
``duckdb``): a real in-process DuckDB, the real ``aeshmac`` filesystem over ``memory://``."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")

from _engines import (  # noqa: E402
    CHEAP,
    CHUNK,
    PASSWORD,
    assert_no_secret,
    assert_only_column_decrypted,
    encrypted_parquet,
)

from aes_hmac import HeaderError  # noqa: E402
from aes_hmac.integrations.fsspec import AesHmacFileSystem  # noqa: E402

DUCKDB_TAIL = 16 << 10
"""DuckDB reads about the last 16 KiB of a Parquet file at once, to find its footer."""


def connect(fs: AesHmacFileSystem) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register_filesystem(fs)
    return con


def test_read_parquet_decrypts_only_the_projected_column() -> None:
    enc = encrypted_parquet()
    con = connect(enc.fs)
    total = con.sql(f"SELECT sum(small) FROM read_parquet('{enc.url}')").fetchall()
    assert total == [(sum(range(enc.table.num_rows)),)]
    assert_only_column_decrypted(enc, "small", "big", DUCKDB_TAIL)


def test_read_parquet_whole_table_round_trips() -> None:
    enc = encrypted_parquet()
    got = connect(enc.fs).sql(f"SELECT * FROM read_parquet('{enc.url}')").fetchall()
    assert got == list(
        zip(*(enc.table.column(c).to_pylist() for c in ("small", "big")), strict=True)
    )


def test_read_csv_with_projection() -> None:
    enc = encrypted_parquet()
    path = f"/c{uuid.uuid4().hex}/t.csv"
    rows = [(i, os.urandom(6).hex()) for i in range(5000)]
    enc.fs.pipe_file(path, b"n,s\n" + "".join(f"{n},{s}\n" for n, s in rows).encode())
    con = connect(enc.fs)
    got = con.sql(f"SELECT s FROM read_csv('aeshmac://{path}') WHERE n = 4321").fetchall()
    assert got == [(rows[4321][1],)]
    # CSV has no column chunks: a projection parses one column but reads every byte.
    assert con.sql(f"SELECT count(*) FROM read_csv('aeshmac://{path}')").fetchall() == [(5000,)]


def test_no_password_in_plan_errors_or_logs() -> None:
    enc = encrypted_parquet()
    con = connect(enc.fs)
    con.sql("CALL enable_logging()")
    query = f"SELECT sum(small) FROM read_parquet('{enc.url}')"
    plan = "\n".join(str(row) for row in con.sql(f"EXPLAIN ANALYZE {query}").fetchall())
    assert "READ_PARQUET" in plan.upper()
    logs = "\n".join(str(row) for row in con.sql("SELECT * FROM duckdb_logs").fetchall())
    wrong = AesHmacFileSystem(fs=enc.fs.fs, password="not " + PASSWORD, kdf=CHEAP)
    with pytest.raises(duckdb.Error) as caught:
        connect(wrong).sql(query).fetchall()
    assert HeaderError.__name__ in str(caught.value)
    assert_no_secret(plan, logs, str(caught.value), repr(enc.fs), str(con))


def test_damaged_file_fails_the_query() -> None:
    enc = encrypted_parquet()
    raw = bytearray(enc.fs.fs.cat_file(enc.path))
    raw[enc.header_size + 10] ^= 1  # first chunk: the first column chunk of "small"
    enc.fs.fs.pipe_file(enc.path, bytes(raw))
    with pytest.raises(duckdb.Error, match="StreamDamaged"):
        connect(enc.fs).sql(f"SELECT sum(small) FROM read_parquet('{enc.url}')").fetchall()


@pytest.mark.slow
def test_a_process_without_the_secret_fails_clearly(tmp_path: object) -> None:
    """A process given ``password_env`` but not the variable fails with the variable's name."""
    code = (
        "import duckdb, sys\n"
        "from aes_hmac.integrations.fsspec import AesHmacFileSystem\n"
        "fs = AesHmacFileSystem(target_protocol='memory', password_env='AES_HMAC_DUCK_PW')\n"
        "con = duckdb.connect(); con.register_filesystem(fs)\n"
        "con.sql(\"SELECT * FROM read_parquet('aeshmac:///x/t.parquet')\").fetchall()\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "AES_HMAC_DUCK_PW"}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert "AES_HMAC_DUCK_PW" in run.stderr
    assert_no_secret(run.stderr, run.stdout)


def test_chunk_size_used_is_the_small_one() -> None:
    """Guards the projection proof: the file really is cut in CHUNK-sized pieces."""
    enc = encrypted_parquet()
    with enc.fs.open(enc.path, "rb") as f:
        assert f.read(4) == b"PAR1"
    assert CHUNK * 100 < len(enc.plain)
