"""Ray Data over aeshmac:: (issue 19): 20 files on 2 workers vs 1, one column of a big Parquet
file encrypted vs plain, same run.

    python benchmarks/bench_ray.py [--files 20] [--file-mb 10] [--parquet-mb 200] [--rounds 3]

Each comparison interleaves its variants round by round and prints best, median and worst and
the ratio of the bests. Sizes are arguments so a busy machine can run a smaller version (say
which sizes when quoting the numbers). Ray is started once per worker count (``num_cpus``).
At small sizes Ray's own per-run cost (listing tasks, footer-reader actors, scheduling)
dominates both variants: compare the ratios of large runs on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import ray

from aes_hmac import PBKDF2
from aes_hmac.integrations.fsspec import AesHmacFileSystem
from aes_hmac.integrations.ray import read_parquet

PASSWORD = "benchmark password"
OPTIONS = {"aeshmac": {"password": PASSWORD, "kdf": PBKDF2(iterations=1000)}}
"""A cheap KDF: the runs measure reading, not one password derivation per process."""
CHUNK = 65536
"""Parquet meant for column reads is written with small chunks (README: random access)."""
ROW_BYTES = 4 * 8
"""Four float64 columns per row."""


def write_table(path: Path, mb: int, seed: int, encrypted: bool) -> None:
    """A Parquet file of about ``mb`` MB of four random float64 columns."""
    rows = mb * 1_000_000 // ROW_BYTES
    rng = np.random.default_rng(seed)
    table = pa.table({name: rng.random(rows) for name in ("a", "b", "c", "d")})
    if not encrypted:
        pq.write_table(table, path, compression="none")
        return
    fs = AesHmacFileSystem(password=PASSWORD, kdf=OPTIONS["aeshmac"]["kdf"], chunk_size=CHUNK)
    with fs.open(str(path), "wb") as f:
        pq.write_table(table, f, compression="none")


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def report(name: str, results: dict[str, list[float]]) -> None:
    print(f"\n{name}")
    for variant, times in results.items():
        print(
            f"  {variant:<22} best {min(times):7.2f}s  median {statistics.median(times):7.2f}s"
            f"  worst {max(times):7.2f}s"
        )
    first, *rest = results
    for other in rest:
        print(f"  ratio {other} / {first}: {min(results[other]) / min(results[first]):.2f}")


def read_sum(url_or_path: str, encrypted: bool, column: str) -> float:
    if encrypted:
        ds = read_parquet(url_or_path, storage_options=OPTIONS)
    else:
        ds = ray.data.read_parquet(url_or_path)
    return float(ds.select_columns([column]).sum(column))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--file-mb", type=int, default=10)
    parser.add_argument("--parquet-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for kind in ("plain", "enc"):
            (root / kind).mkdir()
            for i in range(args.files):
                suffix = ".parquet.ahm" if kind == "enc" else ".parquet"
                write_table(root / kind / f"part-{i:02}{suffix}", args.file_mb, i, kind == "enc")
        write_table(root / "big.parquet", args.parquet_mb, 99, False)
        write_table(root / "big.parquet.ahm", args.parquet_mb, 99, True)
        print(
            f"{args.files} files of {args.file_mb} MB, one file of {args.parquet_mb} MB, "
            f"{args.rounds} rounds, {os.cpu_count()} cores"
        )
        enc_dir, plain_dir = f"aeshmac::file://{root / 'enc'}", str(root / "plain")
        many: dict[str, list[float]] = {}
        column: dict[str, list[float]] = {"plain": [], "encrypted": []}
        for workers in (1, 2):
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            try:
                read_sum(enc_dir, True, "a")  # warm the workers (imports, one derivation)
                read_sum(plain_dir, False, "a")
                for _ in range(args.rounds):
                    for kind, where in (("plain", plain_dir), ("encrypted", enc_dir)):
                        many.setdefault(f"{kind}, {workers} worker(s)", []).append(
                            timed(lambda w=where, k=kind: read_sum(w, k == "encrypted", "a"))
                        )
                    if workers == 2:
                        column["plain"].append(
                            timed(lambda: read_sum(str(root / "big.parquet"), False, "b"))
                        )
                        column["encrypted"].append(
                            timed(
                                lambda: read_sum(
                                    f"aeshmac::file://{root}/big.parquet.ahm", True, "b"
                                )
                            )
                        )
            finally:
                ray.shutdown()
        report(f"{args.files} files, one column, whole dataset", many)
        for kind in ("plain", "encrypted"):
            one, two = min(many[f"{kind}, 1 worker(s)"]), min(many[f"{kind}, 2 worker(s)"])
            print(f"  speed-up {kind} 2 workers vs 1: {one / two:.2f}")
        report(f"one column of a {args.parquet_mb} MB Parquet file, 2 workers", column)


if __name__ == "__main__":
    main()
