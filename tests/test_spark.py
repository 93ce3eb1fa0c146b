"""The ``aeshmac`` Spark data source on a real local SparkSession (``local[2]``)."""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from _spark import SPARK_PASSWORD, SPARK_PASSWORD_ENV, spark_session

import aes_hmac

CHEAP = aes_hmac.PBKDF2(iterations=1000)
pytestmark = pytest.mark.slow  # drives a real Spark (a JVM and its Python workers)
TABLE = pa.table({"id": list(range(100)), "name": [f"n{i}" for i in range(100)]})


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from aes_hmac.integrations.spark import register

    for session in spark_session("test_spark"):
        register(session)
        yield session


def encrypt_bytes(path: Path, data: bytes) -> None:
    with aes_hmac.open(path, "wb", password=SPARK_PASSWORD, kdf=CHEAP) as out:
        out.write(data)


def parquet_bytes(table: pa.Table, row_group_size: int) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=row_group_size)
    return buf.getvalue()


def load(spark: Any, path: Path, fmt: str, **options: str) -> Any:
    reader = spark.read.format("aeshmac").option("format", fmt)
    reader = reader.option("password_env", options.pop("password_env", SPARK_PASSWORD_ENV))
    for name, value in options.items():
        reader = reader.option(name, value)
    return reader.load(str(path))


def test_parquet_one_partition_per_row_group(spark: Any, tmp_path: Path) -> None:
    encrypt_bytes(tmp_path / "a.parquet.ahm", parquet_bytes(TABLE.slice(0, 60), 20))
    encrypt_bytes(tmp_path / "b.parquet.ahm", parquet_bytes(TABLE.slice(60), 40))
    df = load(spark, tmp_path, "parquet")
    assert df.rdd.getNumPartitions() == 3 + 1
    assert sorted(r.id for r in df.collect()) == list(range(100))
    assert df.where("id = 70").select("name").collect()[0].name == "n70"
    # A schema naming one column reads only that column (Spark 4 pushes no projection down).
    names = (
        spark.read.format("aeshmac")
        .schema("name string")
        .option("password_env", SPARK_PASSWORD_ENV)
        .load(str(tmp_path))
    )
    assert sorted(r.name for r in names.collect()) == sorted(f"n{i}" for i in range(100))


def test_csv_and_json_lines_one_partition_per_file(spark: Any, tmp_path: Path) -> None:
    (tmp_path / "csv").mkdir()
    (tmp_path / "json").mkdir()
    for i, part in enumerate((TABLE.slice(0, 50), TABLE.slice(50))):
        buf = io.BytesIO()
        pa_csv.write_csv(part, buf)
        encrypt_bytes(tmp_path / "csv" / f"{i}.csv.ahm", buf.getvalue())
        lines = "".join(json.dumps(row) + "\n" for row in part.to_pylist()).encode()
        encrypt_bytes(tmp_path / "json" / f"{i}.jsonl.ahm", lines)
    for fmt in ("csv", "json"):
        df = load(spark, tmp_path / fmt, fmt)
        assert df.rdd.getNumPartitions() == 2
        rows = sorted((r.id, r.name) for r in df.collect())
        assert rows == [(i, f"n{i}") for i in range(100)]


def test_folder_made_by_encrypt_tree(spark: Any, tmp_path: Path) -> None:
    """A folder ``encrypt_tree`` made (one salt, a hidden manifest the source skips)."""
    plain = tmp_path / "plain"
    plain.mkdir()
    for i, part in enumerate((TABLE.slice(0, 30), TABLE.slice(30))):
        pq.write_table(part, plain / f"{i}.parquet")
    aes_hmac.encrypt_tree(plain, tmp_path / "vault", SPARK_PASSWORD, kdf=CHEAP)
    assert any(p.name.startswith(".") for p in (tmp_path / "vault").iterdir())
    assert load(spark, tmp_path / "vault", "parquet").count() == 100


def test_tampered_file_fails_the_read(spark: Any, tmp_path: Path) -> None:
    path = tmp_path / "t.csv.ahm"
    buf = io.BytesIO()
    pa_csv.write_csv(TABLE, buf)
    encrypt_bytes(path, buf.getvalue())
    data = bytearray(path.read_bytes())
    data[200] ^= 1  # inside the first chunk's ciphertext
    path.write_bytes(bytes(data))
    df = (
        spark.read.format("aeshmac")
        .schema("id long, name string")
        .option("format", "csv")
        .option("password_env", SPARK_PASSWORD_ENV)
        .load(str(path))
    )
    with pytest.raises(Exception, match=r"StreamDamaged|authentic|damaged|InvalidToken") as info:
        df.collect()
    assert "n0" not in str(info.value)


def test_write_then_read_back_and_no_staging_left(spark: Any, tmp_path: Path) -> None:
    out = tmp_path / "out"
    df = spark.createDataFrame([(i, f"n{i}") for i in range(100)], "id long, name string")
    for fmt in ("parquet", "csv", "json"):
        target = out / fmt
        df.repartition(2).write.format("aeshmac").option("format", fmt).option(
            "password_env", SPARK_PASSWORD_ENV
        ).mode("append").save(str(target))
        names = sorted(p.name for p in target.iterdir())
        assert len(names) == 2 and all(
            n.startswith("part-") and n.endswith(f".{fmt}.ahm") for n in names
        ), names
        # The files are encrypted: no plaintext name on disk.
        assert all(b"n42" not in (target / n).read_bytes() for n in names)
        back = sorted((r.id, r.name) for r in load(spark, target, fmt).collect())
        assert back == [(i, f"n{i}") for i in range(100)]


def test_empty_partitions_write_no_file(spark: Any, tmp_path: Path) -> None:
    """A task without rows writes nothing (an empty stream is not Parquet a reader can open)."""
    target = tmp_path / "sparse"
    spark.range(3).repartition(6).write.format("aeshmac").option(
        "password_env", SPARK_PASSWORD_ENV
    ).mode("append").save(str(target))
    assert 1 <= len(list(target.iterdir())) <= 3
    assert sorted(r.id for r in load(spark, target, "parquet").collect()) == [0, 1, 2]


def test_failed_write_leaves_nothing_visible(spark: Any, tmp_path: Path) -> None:
    """A task that fails mid-job: the job aborts, no file (staged or final) remains."""
    target = tmp_path / "failed"
    df = spark.range(0, 1000, numPartitions=4).selectExpr(
        "id", "CASE WHEN id = 999 THEN raise_error('boom') ELSE cast(id AS string) END AS s"
    )
    with pytest.raises(Exception, match="boom"):
        df.write.format("aeshmac").option("format", "parquet").option(
            "password_env", SPARK_PASSWORD_ENV
        ).mode("append").save(str(target))
    # Tasks that succeeded staged their files (some may still run when the job aborts).
    assert target.is_dir()
    assert sorted(p.name for p in target.iterdir()) == []


def test_password_option_refused_and_absent_from_plans(spark: Any, tmp_path: Path) -> None:
    encrypt_bytes(tmp_path / "p.parquet.ahm", parquet_bytes(TABLE, 50))
    with pytest.raises(Exception, match="refuses option 'password'") as info:
        load(spark, tmp_path, "parquet", password="hunter2 secret").collect()
    assert "hunter2" not in str(info.value)
    df = load(spark, tmp_path, "parquet")
    plans = [df._jdf.queryExecution().toString(), df.schema.json()]
    for plan in plans:
        assert SPARK_PASSWORD not in plan
    assert df.count() == 100


def test_worker_without_its_secret_fails_its_task_clearly(spark: Any, tmp_path: Path) -> None:
    """The schema is given, so the driver needs no secret; the task's worker lacks it."""
    buf = io.BytesIO()
    pa_csv.write_csv(TABLE, buf)
    encrypt_bytes(tmp_path / "x.csv.ahm", buf.getvalue())
    assert "AESHMAC_SPARK_TEST_MISSING" not in os.environ
    df = (
        spark.read.format("aeshmac")
        .schema("id long, name string")
        .option("format", "csv")
        .option("password_env", "AESHMAC_SPARK_TEST_MISSING")
        .load(str(tmp_path))
    )
    with pytest.raises(Exception, match="AESHMAC_SPARK_TEST_MISSING is not set") as info:
        df.collect()
    assert SPARK_PASSWORD not in str(info.value)


def test_missing_password_env_and_bad_format_named(spark: Any, tmp_path: Path) -> None:
    encrypt_bytes(tmp_path / "p.parquet.ahm", parquet_bytes(TABLE, 50))
    with pytest.raises(Exception, match="option password_env is required"):
        spark.read.format("aeshmac").load(str(tmp_path)).collect()
    with pytest.raises(Exception, match="option format must be one of"):
        load(spark, tmp_path, "orc").collect()
    with pytest.raises(Exception, match="mode\\('append'\\) only"):
        spark.range(3).write.format("aeshmac").option("password_env", SPARK_PASSWORD_ENV).mode(
            "overwrite"
        ).save(str(tmp_path / "o"))


def test_staging_folders_and_hidden_files_are_not_data() -> None:
    """A staged file sits in a hidden folder under a ``part-`` name: the reader must skip it."""
    pytest.importorskip("pyspark")
    from aes_hmac.integrations.spark import _visible

    assert _visible("part-1.parquet.ahm") and _visible("year=2024/part-1.csv.ahm")
    assert not _visible(".aeshmac-staging-0a1b/part-1.parquet.ahm")
    assert not _visible("/.aes-hmac-manifest") and not _visible("_SUCCESS")


def test_staging_removal_treats_a_vanished_folder_as_done() -> None:
    """Review finding (issue 19): on S3 the staging "folder" is gone with its last object once
    the commit moved them out; removing it raised, and Spark reported a write that had landed
    as failed (a retried append would then write twice)."""
    pytest.importorskip("pyspark")
    import fsspec

    from aes_hmac.integrations.spark import _remove_staging

    fs = fsspec.filesystem("memory")
    _remove_staging(fs, "/spark-review/.aeshmac-staging-gone")  # nothing there: no error
    fs.pipe_file("/spark-review/.aeshmac-staging-left/part-1.parquet.ahm", b"x")
    _remove_staging(fs, "/spark-review/.aeshmac-staging-left")
    assert not fs.exists("/spark-review/.aeshmac-staging-left/part-1.parquet.ahm")
