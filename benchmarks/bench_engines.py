"""DuckDB and Polars reading one column of an encrypted Parquet file vs the plain file (issue 19).

    python benchmarks/bench_engines.py [--parquet-mb 200] [--rounds 7] [--chunk-kib 1024]

One run on this machine, the variants of each engine interleaved round by round (helpers from
bench_access.py); each prints best / median / worst and the ratios to the same engine on the
plain file. DuckDB reads through ``register_filesystem(DuckDBFileSystem(...))``; Polars
through ``scan_pyarrow_dataset``
(and, as a second baseline, the same pyarrow dataset path over the plain file).
"""

from __future__ import annotations

import argparse
import gc
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_access import paired, rounds, spread

import aes_hmac
from aes_hmac.integrations.duckdb import DuckDBFileSystem
from aes_hmac.integrations.fsspec import AesHmacFileSystem

PASSWORD = "benchmark password"
COLUMN = "c3"


def make_files(tmp: Path, megabytes: int, chunk_size: int) -> tuple[Path, Path]:
    """A Parquet file of five float64 columns, 8 row groups, uncompressed, and its encryption."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = megabytes * 1_000_000 // 40
    rng = np.random.default_rng(2)
    table = pa.table({f"c{i}": rng.random(rows) for i in range(5)})
    plain = tmp / "t.parquet"
    pq.write_table(table, plain, row_group_size=rows // 8, compression="none")
    enc = tmp / "t.parquet.ahm"
    aes_hmac.encrypt_file(plain, enc, PASSWORD, chunk_size=chunk_size)
    return plain, enc


def report(title: str, times: dict[str, list[float]], encrypted: str) -> None:
    print(title)
    for name, t in times.items():
        print(f"  {name}: {spread(t)}")
    for base in times:
        if base != encrypted:
            print(f"  {encrypted} vs {base}: time {paired(times, encrypted, base)}")


def duckdb_bench(plain: Path, enc: Path, n: int) -> None:
    import duckdb

    con = duckdb.connect()
    con.register_filesystem(DuckDBFileSystem(password=PASSWORD))

    def query(source: str) -> Callable[[], object]:
        sql = f"SELECT sum({COLUMN}) FROM read_parquet('{source}')"
        return lambda: con.sql(sql).fetchall()

    variants = {
        "duckdb plain file": query(str(plain)),
        "duckdb aeshmac://": query(f"aeshmac://{enc}"),
    }
    # Sums of doubles in parallel differ in the last bits from run to run: compare rounded.
    sums = {round(float(fn()[0][0]), 6) for fn in variants.values()}  # type: ignore[index]
    assert len(sums) == 1, sums
    report("DuckDB, sum of one column:", rounds(variants, n), "duckdb aeshmac://")


def polars_bench(plain: Path, enc: Path, fs: AesHmacFileSystem, n: int) -> None:
    import polars as pl
    import pyarrow.dataset as ds

    def over(lazy: Callable[[], pl.LazyFrame]) -> Callable[[], object]:
        return lambda: lazy().select(pl.col(COLUMN).sum()).collect().item()

    variants = {
        "polars scan_parquet plain": over(lambda: pl.scan_parquet(plain)),
        "polars pyarrow dataset plain": over(
            lambda: pl.scan_pyarrow_dataset(ds.dataset(str(plain), format="parquet"))
        ),
        "polars pyarrow dataset aeshmac": over(
            lambda: pl.scan_pyarrow_dataset(ds.dataset(str(enc), filesystem=fs, format="parquet"))
        ),
    }
    sums = {round(float(fn()), 6) for fn in variants.values()}  # type: ignore[arg-type]
    assert len(sums) == 1, sums
    report("Polars, sum of one column:", rounds(variants, n), "polars pyarrow dataset aeshmac")


def plugin_scan(fs: AesHmacFileSystem, path: str) -> Any:
    """The alternative to ``scan_pyarrow_dataset``: a Polars IO plugin reading row groups of
    the projected columns, stopping at ``n_rows``, filtering each batch after reading it (a
    Polars expression is no pyarrow expression, so no row group is skipped by statistics)."""
    import polars as pl
    import pyarrow.parquet as pq
    from polars.io.plugins import register_io_source

    with fs.open(path, "rb") as f:
        schema = pl.from_arrow(pq.read_schema(f).empty_table()).schema  # type: ignore[union-attr]

    def source(
        with_columns: list[str] | None, predicate: Any, n_rows: int | None, batch: int | None
    ) -> Iterator[Any]:
        with fs.open(path, "rb") as f:
            parquet = pq.ParquetFile(f)
            for group in range(parquet.num_row_groups):
                frame = pl.from_arrow(parquet.read_row_group(group, columns=with_columns))
                if predicate is not None:
                    frame = frame.filter(predicate)  # type: ignore[union-attr]
                if n_rows is not None:
                    frame, n_rows = frame[:n_rows], n_rows - min(n_rows, len(frame))
                yield frame
                if n_rows == 0:
                    return

    return register_io_source(source, schema=schema)


def pushdown(megabytes: int) -> None:
    """Bytes each Polars route fetches from the target for a projection, a filter and a head:
    which pushes more down (a memory target whose ranged reads are counted)."""
    import fsspec
    import polars as pl
    import pyarrow.dataset as ds

    with tempfile.TemporaryDirectory() as tmp:
        plain, _ = make_files(Path(tmp), megabytes, 1 << 16)
        target = fsspec.filesystem("memory", skip_instance_cache=True)
        fs = AesHmacFileSystem(fs=target, password=PASSWORD, chunk_size=1 << 16)
        fs.pipe_file("/bench/t.parquet", plain.read_bytes())
        size = plain.stat().st_size
    fetched = [0]
    cat_file = target.cat_file

    def counted(p: str, start: int | None = None, end: int | None = None, **kw: Any) -> bytes:
        out: bytes = cat_file(p, start=start, end=end, **kw)
        fetched[0] += len(out)
        return out

    target.cat_file = counted
    routes = {
        "scan_pyarrow_dataset": lambda: pl.scan_pyarrow_dataset(
            ds.dataset("/bench/t.parquet", filesystem=fs, format="parquet")
        ),
        "IO plugin": lambda: plugin_scan(fs, "/bench/t.parquet"),
    }
    queries = {
        "one column": lambda lf: lf.select(pl.col(COLUMN).sum()),
        "filter c0 < 0 (no row matches)": lambda lf: lf.filter(pl.col("c0") < 0).select(COLUMN),
        "head(10) of one column": lambda lf: lf.select(COLUMN).head(10),
    }
    print(f"Polars pushdown, MB fetched of {size / 1e6:.0f} MB (64 KiB chunks):")
    for qname, query in queries.items():
        row = []
        for rname, route in routes.items():
            fetched[0] = 0
            query(route()).collect()
            row.append(f"{rname} {fetched[0] / 1e6:.1f}")
        print(f"  {qname}: " + ", ".join(row))
    # A plugin generator Polars stopped early (the head) holds a Polars thread's state: free it
    # now, not during interpreter shutdown, where it crashes the process after the output.
    gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--parquet-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--chunk-kib", type=int, default=1024)
    parser.add_argument("--only", choices=["timing", "pushdown"])
    args = parser.parse_args()
    if args.only in (None, "pushdown"):
        pushdown(args.parquet_mb)
    if args.only == "pushdown":
        return
    with tempfile.TemporaryDirectory() as tmp:
        plain, enc = make_files(Path(tmp), args.parquet_mb, args.chunk_kib << 10)
        print(
            f"{plain.stat().st_size / 1e6:.0f} MB Parquet (5 float64 columns, 8 row groups), "
            f"{args.chunk_kib} KiB chunks, {args.rounds} rounds"
        )
        # Each filesystem derives the key once, in the warm-up read before the timing.
        duckdb_bench(plain, enc, args.rounds)
        polars_bench(plain, enc, AesHmacFileSystem(password=PASSWORD), args.rounds)


if __name__ == "__main__":
    main()
