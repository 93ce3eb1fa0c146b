"""DuckDB reads encrypted Parquet and CSV through ``duckdb.register_filesystem`` (extra
``duckdb``) of ``DuckDBFileSystem``: a real in-process DuckDB, the real ``aeshmac`` filesystem
over ``memory://``."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
import uuid

import pytest

duckdb = pytest.importorskip("duckdb")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from _engines import (  # noqa: E402
    CHEAP,
    CHUNK,
    PASSWORD,
    assert_no_secret,
    assert_only_column_decrypted,
    encrypted_parquet,
)

from aes_hmac import HeaderError  # noqa: E402
from aes_hmac.integrations.duckdb import DuckDBFileSystem  # noqa: E402
from aes_hmac.integrations.fsspec import AesHmacFileSystem  # noqa: E402

DUCKDB_TAIL = 16 << 10
"""DuckDB reads about the last 16 KiB of a Parquet file at once, to find its footer."""


def connect(fs: AesHmacFileSystem) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.register_filesystem(fs)
    return con


def test_read_parquet_decrypts_only_the_projected_column() -> None:
    enc = encrypted_parquet(DuckDBFileSystem)
    con = connect(enc.fs)
    total = con.sql(f"SELECT sum(small) FROM read_parquet('{enc.url}')").fetchall()
    assert total == [(sum(range(enc.table.num_rows)),)]
    assert_only_column_decrypted(enc, "small", "big", DUCKDB_TAIL)


def test_read_parquet_whole_table_round_trips() -> None:
    enc = encrypted_parquet(DuckDBFileSystem)
    got = connect(enc.fs).sql(f"SELECT * FROM read_parquet('{enc.url}')").fetchall()
    assert got == list(
        zip(*(enc.table.column(c).to_pylist() for c in ("small", "big")), strict=True)
    )


def test_threads_reading_one_file_get_the_right_rows() -> None:
    """DuckDB's threads share one file object and read by seek then read: with one shared
    position (``AesHmacFileSystem``'s reader) a row group came back from the wrong offset in
    most runs; the per-thread position gives the right answer every time."""
    fs = DuckDBFileSystem(target_protocol="memory", password=PASSWORD, kdf=CHEAP)
    rows, groups = 400_000, 8
    table = pa.table({"n": pa.array(range(rows), pa.int64()), "x": pa.array([1.5] * rows)})
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=rows // groups, compression="none")
    path = f"/t{uuid.uuid4().hex}/t.parquet"
    fs.pipe_file(path, buf.getvalue())
    con = connect(fs)
    con.sql("SET threads=4")
    query = f"SELECT sum(n), count(*), min(n), max(n) FROM read_parquet('aeshmac://{path}')"
    for _ in range(5):
        assert con.sql(query).fetchall() == [(rows * (rows - 1) // 2, rows, 0, rows - 1)]


def test_per_thread_position_reads_like_a_file() -> None:
    enc = encrypted_parquet(DuckDBFileSystem)
    with enc.fs.open(enc.path, "rb") as f:
        assert f.read(4) == b"PAR1" and f.tell() == 4
        assert f.seek(-4, os.SEEK_END) == len(enc.plain) - 4 and f.read() == b"PAR1"
        assert f.seek(100) == 100 and f.read(10) == enc.plain[100:110]
        moved: list[int] = []
        worker = threading.Thread(target=lambda: moved.append(f.seek(5)))
        worker.start()
        worker.join()
        assert moved == [5] and f.tell() == 110  # another thread's seek left this one alone
        with pytest.raises(ValueError, match="negative seek position"):
            f.seek(-1)
    with pytest.raises(ValueError, match="closed"):
        f.tell()


def test_read_csv_with_projection() -> None:
    enc = encrypted_parquet(DuckDBFileSystem)
    path = f"/c{uuid.uuid4().hex}/t.csv"
    rows = [(i, os.urandom(6).hex()) for i in range(5000)]
    enc.fs.pipe_file(path, b"n,s\n" + "".join(f"{n},{s}\n" for n, s in rows).encode())
    con = connect(enc.fs)
    got = con.sql(f"SELECT s FROM read_csv('aeshmac://{path}') WHERE n = 4321").fetchall()
    assert got == [(rows[4321][1],)]
    # CSV has no column chunks: a projection parses one column but reads every byte.
    assert con.sql(f"SELECT count(*) FROM read_csv('aeshmac://{path}')").fetchall() == [(5000,)]


def test_no_password_in_plan_errors_or_logs() -> None:
    enc = encrypted_parquet(DuckDBFileSystem)
    con = connect(enc.fs)
    con.sql("CALL enable_logging()")
    query = f"SELECT sum(small) FROM read_parquet('{enc.url}')"
    plan = "\n".join(str(row) for row in con.sql(f"EXPLAIN ANALYZE {query}").fetchall())
    assert "READ_PARQUET" in plan.upper()
    logs = "\n".join(str(row) for row in con.sql("SELECT * FROM duckdb_logs").fetchall())
    assert enc.path in logs  # the query was logged, so the grep below has something to search
    wrong = DuckDBFileSystem(fs=enc.fs.fs, password="not " + PASSWORD, kdf=CHEAP)
    with pytest.raises(duckdb.Error) as caught:
        connect(wrong).sql(query).fetchall()
    assert HeaderError.__name__ in str(caught.value)
    assert_no_secret(plan, logs, str(caught.value), repr(enc.fs), str(con))


def test_damaged_file_fails_the_query() -> None:
    enc = encrypted_parquet(DuckDBFileSystem)
    raw = bytearray(enc.fs.fs.cat_file(enc.path))
    raw[enc.header_size + 10] ^= 1  # first chunk: the first column chunk of "small"
    enc.fs.fs.pipe_file(enc.path, bytes(raw))
    with pytest.raises(duckdb.Error, match="StreamDamaged") as caught:
        connect(enc.fs).sql(f"SELECT sum(small) FROM read_parquet('{enc.url}')").fetchall()
    assert_no_secret(str(caught.value))


@pytest.mark.slow
def test_a_process_without_the_secret_fails_clearly(tmp_path: object) -> None:
    """A process given ``password_env`` but not the variable fails with the variable's name."""
    code = (
        "import duckdb, sys\n"
        "from aes_hmac.integrations.duckdb import DuckDBFileSystem\n"
        "fs = DuckDBFileSystem(target_protocol='memory', password_env='AES_HMAC_DUCK_PW')\n"
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
    enc = encrypted_parquet(DuckDBFileSystem)
    with enc.fs.open(enc.path, "rb") as f:
        assert f.read(4) == b"PAR1"
    assert CHUNK * 100 < len(enc.plain)
