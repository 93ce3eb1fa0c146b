"""``aeshmac::s3://`` against plain ``s3fs`` on the same S3 API server, same run: a full
sequential read and one Parquet column, with the requests and bytes the server sent (counted by
the tests' proxy) and the time. Needs the server of ``scripts/s3.sh``::

    AES_HMAC_S3_ENDPOINT=$(bash scripts/s3.sh) .venv/bin/python benchmarks/bench_s3.py --mib 64
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import s3fs

from aes_hmac import Scrypt
from aes_hmac.integrations.fsspec import AesHmacFileSystem

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from _s3 import CountingProxy, endpoint, gets, storage_options

READ_PIECE = 8 << 20
"""Bytes per ``read`` call of the sequential read (what a copy loop asks for)."""


def measure(proxy: CountingProxy, job: Callable[[], object], repeat: int) -> tuple[float, int, int]:
    """Median seconds of ``job``, and the GETs and bytes the server sent for one run."""
    times = []
    requests = 0
    sent = 0
    for _ in range(repeat):
        proxy.take()
        start = time.perf_counter()
        job()
        times.append(time.perf_counter() - start)
        got = gets(proxy.take())
        requests, sent = len(got), sum(r.sent for r in got)
    return statistics.median(times), requests, sent


def read_all(fs: Any, path: str) -> None:
    with fs.open(path, "rb") as f:
        while f.read(READ_PIECE):
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=64, help="size of the sequential file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    url = endpoint()
    if url is None:
        sys.exit("set AES_HMAC_S3_ENDPOINT (bash scripts/s3.sh prints it)")
    proxy = CountingProxy(url)
    plain = s3fs.S3FileSystem(**storage_options(proxy.url))
    exact = s3fs.S3FileSystem(default_cache_type="none", **storage_options(proxy.url))
    enc = AesHmacFileSystem(fs=plain, password="bench", kdf=Scrypt(log2_n=10, r=8, p=1))
    bucket = f"bench{uuid.uuid4().hex[:12]}"
    plain.call_s3("create_bucket", Bucket=bucket)

    data = os.urandom(args.mib << 20)
    plain.pipe_file(f"{bucket}/plain.bin", data)
    enc.pipe_file(f"{bucket}/enc.bin", data)
    rows = 1 << 20
    rng = np.random.default_rng(1)
    table = pa.table({f"c{i}": rng.random(rows) for i in range(8)})
    pq.write_table(table, f"{bucket}/plain.parquet", filesystem=plain, row_group_size=rows)
    pq.write_table(table, f"{bucket}/enc.parquet", filesystem=enc, row_group_size=rows)
    plain.invalidate_cache()

    def column(fs: Any, name: str) -> Callable[[], object]:
        return lambda: pq.read_table(f"{bucket}/{name}", filesystem=fs, columns=["c3"])

    cases = [
        (
            f"sequential read, {args.mib} MiB",
            lambda: read_all(plain, f"{bucket}/plain.bin"),
            lambda: read_all(enc, f"{bucket}/enc.bin"),
        ),
        (
            "one Parquet column (8 MiB of 64)",
            column(exact, "plain.parquet"),
            column(enc, "enc.parquet"),
        ),
    ]
    print(f"{'case':36} {'plain s3fs':>26} {'aeshmac::s3':>26}  time ratio  bytes ratio")
    for name, plain_job, enc_job in cases:
        p_t, p_n, p_b = measure(proxy, plain_job, args.repeat)
        e_t, e_n, e_b = measure(proxy, enc_job, args.repeat)
        print(
            f"{name:36} {p_t:7.3f} s {p_n:4} GET {p_b / 2**20:7.2f} MiB"
            f" {e_t:7.3f} s {e_n:4} GET {e_b / 2**20:7.2f} MiB"
            f"  {e_t / p_t:9.2f}  {e_b / p_b:11.3f}"
        )
    plain.rm(bucket, recursive=True)
    proxy.close()


if __name__ == "__main__":
    main()
