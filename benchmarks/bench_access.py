"""Random access, Parquet through aeshmac::, whole folders and Dask: the issue-11 numbers.

    python benchmarks/bench_access.py [--size-mib 1024] [--reads 10000] [--parquet-mb 200]
                                      [--files 1000] [--no-dask]

Every ratio is measured in one run on this machine; sizes are arguments so a busy machine can
run a smaller version (say which sizes when quoting the numbers).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aes_hmac
from aes_hmac._credential import to_credential
from aes_hmac._kdf import DEFAULT_LIMITS
from aes_hmac._seekable import SeekableReader, file_read_at, open_seekable
from aes_hmac._tree import BatchCredential, encrypt_tree

PASSWORD = "benchmark password"
CREDENTIAL = BatchCredential.of(to_credential(PASSWORD))
"""Keeps derived keys, so timed reads measure reading, not the one password derivation."""


class Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        return len(memoryview(b))  # type: ignore[arg-type]


class Counting(io.RawIOBase):
    """A plain file that counts the bytes read through it (what pyarrow reads of a file)."""

    def __init__(self, path: Path) -> None:
        self.f = open(path, "rb")
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.f.seek(offset, whence)

    def tell(self) -> int:
        return self.f.tell()

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        n = self.f.readinto(b)
        self.read_bytes += n
        return n

    def close(self) -> None:
        self.f.close()
        super().close()


def counting_reader(path: Path) -> tuple[SeekableReader, list[int]]:
    fileobj = open(path, "rb")
    read_at, size = file_read_at(fileobj)
    total = [0]

    def counted(offset: int, buf: memoryview) -> int:
        n = read_at(offset, buf)
        total[0] += n
        return n

    return SeekableReader(counted, size, CREDENTIAL, DEFAULT_LIMITS, fileobj.close), total


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def random_access(tmp: Path, size: int, reads: int) -> None:
    plain = tmp / "big.bin"
    with open(plain, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    enc = tmp / "big.ahm"
    aes_hmac.encrypt_file(plain, enc, PASSWORD, chunk_size=1 << 16)
    rng = random.Random(1)
    offsets = [rng.randrange(0, size - 4096) for _ in range(reads)]
    fd = os.open(plain, os.O_RDONLY)
    t_plain = timed(lambda: [os.pread(fd, 4096, o) for o in offsets])
    os.close(fd)
    reader, fetched = counting_reader(enc)
    t_enc = timed(lambda: [reader.pread(o, 4096) for o in offsets])
    for o in offsets[:200]:
        with open(plain, "rb") as f:
            f.seek(o)
            assert reader.pread(o, 4096) == f.read(4096)
    reader.close()
    print(
        f"random 4 KiB reads, {size >> 20} MiB file, 64 KiB chunks, {reads} reads: "
        f"plaintext {reads / t_plain:,.0f} reads/s, encrypted {reads / t_enc:,.0f} reads/s "
        f"({t_plain / t_enc:.3f}x); bytes read per byte returned "
        f"{fetched[0] / (reads * 4096):.2f}"
    )
    default = tmp / "big1m.ahm"
    aes_hmac.encrypt_file(plain, default, PASSWORD)

    def stream() -> None:
        with open(default, "rb") as f:
            aes_hmac.decrypt_stream(f, Null(), PASSWORD)

    def seekable() -> None:
        buf = bytearray(1 << 20)
        with open_seekable(default, password=PASSWORD) as r:
            while r.readinto(buf):
                pass

    best_stream = min(timed(stream) for _ in range(3))
    best_seek = min(timed(seekable) for _ in range(3))
    mb = size / 1e6
    print(
        f"sequential, 1 MiB chunks: decrypt_stream {mb / best_stream:,.0f} MB/s, seekable "
        f"reader readinto(1 MiB) {mb / best_seek:,.0f} MB/s ({best_stream / best_seek:.2f}x)"
    )


def parquet(tmp: Path, megabytes: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = megabytes * 1_000_000 // 40
    rng = random.Random(2)
    table = pa.table({f"c{i}": pa.array([rng.random() for _ in range(rows)]) for i in range(5)})
    plain = tmp / "t.parquet"
    pq.write_table(table, plain, row_group_size=rows // 8, compression="none")
    enc = tmp / "t.parquet.ahm"
    aes_hmac.encrypt_file(plain, enc, PASSWORD, chunk_size=1 << 16)

    def plain_read() -> int:
        f = Counting(plain)
        pq.ParquetFile(f).read(columns=["c3"])
        f.close()
        return f.read_bytes

    def enc_read() -> int:
        reader, fetched = counting_reader(enc)
        pq.ParquetFile(reader).read(columns=["c3"])
        reader.close()
        return fetched[0]

    enc_read()  # derive the key once, outside the timing
    start = time.perf_counter()
    plain_bytes = plain_read()
    t_plain = time.perf_counter() - start
    start = time.perf_counter()
    enc_bytes = enc_read()
    t_enc = time.perf_counter() - start
    size = plain.stat().st_size
    print(
        f"parquet one column of {size / 1e6:.0f} MB (5 columns), 64 KiB chunks: plain "
        f"{plain_bytes / 1e6:.1f} MB in {t_plain:.3f} s, aeshmac {enc_bytes / 1e6:.1f} MB in "
        f"{t_enc:.3f} s: {enc_bytes / plain_bytes:.2f}x bytes, {t_enc / t_plain:.2f}x time"
    )


def folders(tmp: Path, files: int, dask: bool) -> None:
    src = tmp / "tree"
    rng = random.Random(3)
    total = 0
    for i in range(files):
        size = rng.randrange(4096, 1 << 20)
        path = src / f"d{i % 10}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(size))
        total += size
    mb = total / 1e6

    def tree() -> None:
        result = encrypt_tree(src, tmp / "enc_tree", PASSWORD)
        assert result.ok

    def loop() -> None:
        for path in src.rglob("*.bin"):
            out = tmp / "enc_loop" / path.relative_to(src)
            out.parent.mkdir(parents=True, exist_ok=True)
            aes_hmac.encrypt_file(path, str(out) + ".ahm", PASSWORD)

    def tar() -> None:
        env = dict(os.environ, BENCH_PW=PASSWORD)
        cli = [sys.executable, "-m", "aes_hmac", "encrypt", "-q", "--password-env", "BENCH_PW"]
        cli += ["-o", str(tmp / "tree.tar.ahm")]
        tar_p = subprocess.Popen(["tar", "cf", "-", "-C", str(src), "."], stdout=subprocess.PIPE)
        subprocess.run(cli, stdin=tar_p.stdout, env=env, check=True)
        tar_p.wait()

    results = {}
    for name, fn in (("encrypt_tree", tree), ("encrypt_file loop", loop), ("tar | aes-hmac", tar)):
        results[name] = timed(fn)
        print(
            f"folder of {files} files, {mb:.0f} MB: {name}: {files / results[name]:,.0f} files/s,"
            f" {mb / results[name]:,.0f} MB/s"
        )
    print(f"encrypt_tree vs loop {results['encrypt_file loop'] / results['encrypt_tree']:.1f}x")
    if not dask:
        return
    from distributed import Client, LocalCluster

    times = {}
    for workers in (1, 2):
        out = tmp / f"enc_dask{workers}"
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster) as client,
        ):
            client.run(lambda: None)
            times[workers] = timed(
                lambda: encrypt_tree(src, out, PASSWORD, executor=client.get_executor())  # noqa: B023
            )
        print(f"dask LocalCluster {workers} worker(s): {mb / times[workers]:,.0f} MB/s")
    print(f"dask 2 workers vs 1: {times[1] / times[2]:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--reads", type=int, default=10_000)
    parser.add_argument("--parquet-mb", type=int, default=200)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-access-"))
    try:
        random_access(tmp, args.size_mib << 20, args.reads)
        parquet(tmp, args.parquet_mb)
        folders(tmp, args.files, not args.no_dask)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
