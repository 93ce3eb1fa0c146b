"""The ``aeshmac`` Spark data source: 20 files on 2 workers vs 1, one column encrypted vs plain.

    python benchmarks/bench_spark.py [--files 20] [--file-mb 5] [--parquet-mb 200] [--rounds 3]

Each comparison runs in one process on this machine, rounds interleaved, and prints its best,
median and worst and the ratio of the bests. "Workers" are ``local[N]`` task slots of one local
SparkSession per setting (Spark fixes the master per session). Both comparisons read one
column, given to the source in ``.schema(...)``: Spark 4's Python Data Source API pushes no
projection down, so the schema is how a reader asks for one column (only its chunks decrypted).
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

import aes_hmac
from aes_hmac.integrations.spark import register

PASSWORD_ENV = "AESHMAC_BENCH_PASSWORD"
PASSWORD = "benchmark password"
COLUMNS = 8
ROW_GROUP_ROWS = 1 << 20
BYTES_PER_ROW = 8 * COLUMNS


def table_of(mib: float, seed: int) -> pa.Table:
    """Float64 columns of random values (incompressible: the Parquet file is about ``mib``)."""
    rows = int(mib * (1 << 20) / BYTES_PER_ROW)
    rng = np.random.default_rng(seed)
    return pa.table({f"c{i}": rng.random(rows) for i in range(COLUMNS)})


def write_pair(table: pa.Table, plain: Path, encrypted: Path) -> None:
    """The same Parquet bytes, as a plain file and as an encrypted one."""
    buf = io.BytesIO()
    pq.write_table(table, buf, row_group_size=ROW_GROUP_ROWS, compression="none")
    plain.write_bytes(buf.getvalue())
    with aes_hmac.open(encrypted, "wb", password=PASSWORD) as out:
        out.write(buf.getvalue())


def session(master: str) -> Any:
    from pyspark.sql import SparkSession

    os.environ[PASSWORD_ENV] = PASSWORD
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark = (
        SparkSession.builder.master(master)
        .appName("bench_spark")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "2g")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("ERROR")
    register(spark)
    return spark


def timed(fn: Callable[[], object], rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def report(name: str, variants: dict[str, list[float]]) -> None:
    print(f"{name}:")
    for label, times in variants.items():
        print(
            f"  {label:<28} best {min(times):7.2f} s  median {statistics.median(times):7.2f} s"
            f"  worst {max(times):7.2f} s"
        )
    (a, ta), (b, tb) = list(variants.items())[:2]
    print(f"  ratio {a} / {b}: {min(ta) / min(tb):.2f}")


def encrypted(spark: Any, path: Path, schema: str | None = None) -> Any:
    reader = spark.read.format("aeshmac").option("format", "parquet")
    if schema is not None:
        reader = reader.schema(schema)
    return reader.option("password_env", PASSWORD_ENV).load(str(path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--file-mb", type=float, default=5.0)
    parser.add_argument("--parquet-mb", type=float, default=200.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-spark-") as tmp:
        root = Path(tmp)
        (root / "plain").mkdir()
        (root / "enc").mkdir()
        for i in range(args.files):
            table = table_of(args.file_mb, i)
            pq.write_table(table, root / "plain" / f"{i}.parquet", row_group_size=ROW_GROUP_ROWS)
        # A folder as users make one: one batch, one salt (one derivation per worker process).
        aes_hmac.encrypt_tree(root / "plain", root / "enc", PASSWORD)
        write_pair(table_of(args.parquet_mb, 99), root / "big.parquet", root / "big.parquet.ahm")
        print(
            f"{args.files} files of {args.file_mb} MiB; one file of {args.parquet_mb} MiB, "
            f"{COLUMNS} float64 columns; {args.rounds} rounds"
        )
        files: dict[str, list[float]] = {}
        column: dict[str, list[float]] = {}
        for workers in (2, 1):
            spark = session(f"local[{workers}]")
            try:
                enc = encrypted(spark, root / "enc", "c0 double")
                files[f"encrypted, {workers} workers"] = timed(
                    lambda enc=enc: enc.selectExpr("sum(c0)").collect(), args.rounds
                )
                plain = spark.read.parquet(str(root / "plain"))
                files[f"plain, {workers} workers"] = timed(
                    lambda plain=plain: plain.selectExpr("sum(c0)").collect(), args.rounds
                )
                if workers == 2:
                    big = encrypted(spark, root / "big.parquet.ahm", "c3 double")
                    column["encrypted (one column)"] = timed(
                        lambda big=big: big.selectExpr("sum(c3)").collect(), args.rounds
                    )
                    flat = spark.read.parquet(str(root / "big.parquet"))
                    column["plain (one column)"] = timed(
                        lambda flat=flat: flat.selectExpr("sum(c3)").collect(), args.rounds
                    )
            finally:
                spark.stop()
        report(
            "20 encrypted files, 2 workers vs 1",
            {k: files[k] for k in ("encrypted, 2 workers", "encrypted, 1 workers")},
        )
        report(
            "plain files, 2 workers vs 1",
            {k: files[k] for k in ("plain, 2 workers", "plain, 1 workers")},
        )
        report(
            "files on 2 workers, encrypted vs plain",
            {k: files[k] for k in ("encrypted, 2 workers", "plain, 2 workers")},
        )
        report(f"one column of a {args.parquet_mb} MiB Parquet, encrypted vs plain", column)
    return 0


if __name__ == "__main__":
    sys.exit(main())
