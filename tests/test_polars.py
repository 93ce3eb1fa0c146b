"""Polars scans encrypted Parquet and CSV lazily through ``scan_pyarrow_dataset`` over a pyarrow
dataset on the ``aeshmac`` filesystem (extra ``polars``): real Polars, real pyarrow."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

pl = pytest.importorskip("polars")
ds = pytest.importorskip("pyarrow.dataset")

from _engines import (  # noqa: E402
    CHEAP,
    PASSWORD,
    ROW_GROUP,
    ROWS,
    assert_no_secret,
    assert_only_column_decrypted,
    encrypted_parquet,
)

from aes_hmac.integrations.fsspec import AesHmacFileSystem  # noqa: E402

PYARROW_TAIL = 64 << 10
"""pyarrow reads the last 64 KiB of a Parquet file at once, to find its footer."""


def test_scan_parquet_decrypts_only_the_projected_column() -> None:
    enc = encrypted_parquet()
    lazy = pl.scan_pyarrow_dataset(ds.dataset(enc.path, filesystem=enc.fs, format="parquet"))
    got = lazy.select(pl.col("small").sum()).collect()
    assert got.item() == sum(range(enc.table.num_rows))
    assert_only_column_decrypted(enc, "small", "big", PYARROW_TAIL)


def test_scan_parquet_pushes_the_filter_down_to_row_groups() -> None:
    """A filter reaches pyarrow, which skips row groups by their statistics: only the first
    row group's ``small`` column chunk is read."""
    enc = encrypted_parquet()
    lazy = pl.scan_pyarrow_dataset(ds.dataset(enc.path, filesystem=enc.fs, format="parquet"))
    got = lazy.filter(pl.col("small") < 100).select("small").collect()
    assert got["small"].to_list() == list(range(100))
    first_group = enc.column_chunks("small", range(1))
    later = (
        enc.column_chunks("small", range(1, ROWS // ROW_GROUP))
        - first_group
        - enc.footer_chunks(PYARROW_TAIL)
    )
    assert later and not enc.fetches.chunks(enc.header_size) & later


def test_scan_csv_with_projection(tmp_path: object) -> None:
    enc = encrypted_parquet()
    path = f"/c{uuid.uuid4().hex}/t.csv"
    rows = [(i, os.urandom(6).hex()) for i in range(5000)]
    enc.fs.pipe_file(path, b"n,s\n" + "".join(f"{n},{s}\n" for n, s in rows).encode())
    lazy = pl.scan_pyarrow_dataset(ds.dataset(path, filesystem=enc.fs, format="csv"))
    got = lazy.filter(pl.col("n") == 4321).select("s").collect()
    assert got["s"].to_list() == [rows[4321][1]]
    # CSV has no column chunks: the projection parses one column but every byte is read.
    assert lazy.select(pl.len()).collect().item() == 5000


def test_no_password_in_plan_or_errors() -> None:
    enc = encrypted_parquet()
    lazy = pl.scan_pyarrow_dataset(ds.dataset(enc.path, filesystem=enc.fs, format="parquet"))
    query = lazy.filter(pl.col("small") > 5).select(pl.col("small").sum())
    plans = [query.explain(), query.explain(optimized=False), str(query)]
    assert "PROJECT 1/2 COLUMNS" in plans[0]  # the projection reached the scan
    wrong = AesHmacFileSystem(fs=enc.fs.fs, password="not " + PASSWORD, kdf=CHEAP)
    with pytest.raises(Exception, match="wrong password") as caught:
        ds.dataset(enc.path, filesystem=wrong, format="parquet")
    assert_no_secret(*plans, str(caught.value), repr(caught.value.__context__))


@pytest.mark.slow
def test_verbose_logs_hold_no_password() -> None:
    """Polars' verbose log (POLARS_VERBOSE=1, on stderr) of a scan names no secret."""
    code = (
        "import io, os, polars as pl, pyarrow as pa, pyarrow.dataset as ds, pyarrow.parquet as pq\n"
        "from aes_hmac.integrations.fsspec import AesHmacFileSystem\n"
        "fs = AesHmacFileSystem(target_protocol='memory', password_env='AES_HMAC_PL_PW')\n"
        "buf = io.BytesIO(); pq.write_table(pa.table({'a': list(range(999))}), buf)\n"
        "fs.pipe_file('/v/t.parquet', buf.getvalue())\n"
        "lazy = pl.scan_pyarrow_dataset(ds.dataset('/v/t.parquet', filesystem=fs))\n"
        "print(lazy.select(pl.col('a').sum()).collect().item())\n"
    )
    env = {**os.environ, "POLARS_VERBOSE": "1", "AES_HMAC_PL_PW": PASSWORD}
    run = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip() == str(sum(range(999)))
    assert run.stderr  # the verbose log was written, so there was something to grep
    assert_no_secret(run.stderr, run.stdout)
