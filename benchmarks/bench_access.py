"""Random access, Parquet through aeshmac::, whole folders and Dask: the issue-11 numbers.

    python benchmarks/bench_access.py [--size-mib 1024] [--reads 10000] [--parquet-mb 200]
                                      [--files 1000] [--rounds 5] [--no-dask] [--only NAME]

Every ratio is measured in one run on this machine, the variants of one comparison interleaved
round by round; each prints its best, median and worst, and the ratio of the bests. Sizes are
arguments so a busy machine can run a smaller version (say which sizes when quoting the numbers).
Next to each comparison is its floor: the time to verify (HMAC-SHA256) and decrypt (AES-CBC) the
bytes it had to read, on one core, measured here too.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

import aes_hmac
from aes_hmac._files.tree import BatchCredential, encrypt_tree
from aes_hmac._kdf import DEFAULT_LIMITS
from aes_hmac._keys.credentials import to_credential
from aes_hmac._stream.seekable import SeekableReader, file_read_at, seekable_path

PASSWORD = "benchmark password"
CREDENTIAL = BatchCredential.of(to_credential(PASSWORD))
"""Keeps derived keys, so timed reads measure reading, not the one password derivation."""
KEY = bytes(range(32))
"""Sequential comparisons use a raw key: no derivation on either side."""


class Null(io.RawIOBase):
    def writable(self) -> bool:
        return True

    def write(self, b: object) -> int:
        return len(memoryview(b))  # type: ignore[arg-type]


def counting_reader(path: Path) -> tuple[SeekableReader, list[int]]:
    fileobj = open(path, "rb")
    read_at, size = file_read_at(fileobj)
    total = [0]

    def counted(offset: int, buf: memoryview) -> int:
        n = read_at(offset, buf)
        total[0] += n
        return n

    return SeekableReader(counted, size, CREDENTIAL, DEFAULT_LIMITS, fileobj.close), total


def bytes_read() -> int | None:
    """Bytes this process has read through system calls so far (Linux), page cache included."""
    try:
        with open("/proc/self/io") as f:
            return int(next(line for line in f if line.startswith("rchar:")).split()[1])
    except (OSError, StopIteration):
        return None


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def rounds(variants: dict[str, Callable[[], object]], n: int) -> dict[str, list[float]]:
    """Each variant timed ``n`` times, interleaved (a load spike hits all of them alike)."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(n):
        for name, fn in variants.items():
            times[name].append(timed(fn))
    return times


def spread(times: list[float], unit: float = 1.0, label: str = "s") -> str:
    """best / median / worst of ``unit / time`` (a rate) or of the times (unit 1, label s)."""
    best, med, worst = min(times), statistics.median(times), max(times)
    if label == "s":
        return f"best {best:.3f} s, median {med:.3f}, worst {worst:.3f}"
    return f"best {unit / best:,.0f} {label}, median {unit / med:,.0f}, worst {unit / worst:,.0f}"


def paired(times: dict[str, list[float]], base: str, name: str) -> str:
    """Ratio of bests, and the median of each round's ratio (neighbours in time share the
    machine's load, so this one moves least when other processes come and go)."""
    best = min(times[base]) / min(times[name])
    rounds = statistics.median(b / t for b, t in zip(times[base], times[name], strict=True))
    return f"{best:.2f}x (bests), {rounds:.2f}x (median of rounds)"


def crypto_seconds(nbytes: int, chunk_size: int) -> float:
    """One core's time to verify and decrypt ``nbytes`` in chunks of ``chunk_size`` (best of 3):
    an HMAC state and a cipher context per chunk, as the reader does, and nothing else."""
    chunk = os.urandom(chunk_size + 48)
    out = bytearray(chunk_size + 15)
    key = os.urandom(32)
    aes = algorithms.AES(key)
    mac = hmac.HMAC(key, hashes.SHA256())
    count = max(1, nbytes // chunk_size)

    def run() -> None:
        for _ in range(count):
            h = mac.copy()
            h.update(chunk[:-32])
            h.finalize()
            dec = Cipher(aes, modes.CBC(chunk[:16])).decryptor()
            dec.update_into(memoryview(chunk)[16:-32], out)
            dec.finalize()

    return min(timed(run) for _ in range(3)) * nbytes / (count * chunk_size)


def random_access(tmp: Path, size: int, reads: int, n: int) -> None:
    plain = tmp / "big.bin"
    with open(plain, "wb") as f:
        for _ in range(size >> 20):
            f.write(os.urandom(1 << 20))
    enc = tmp / "big.ahm"
    aes_hmac.encrypt_file(plain, enc, PASSWORD, chunk_size=1 << 16)
    rng = random.Random(1)
    offsets = [rng.randrange(0, size - 4096) for _ in range(reads)]
    fd = os.open(plain, os.O_RDONLY)
    reader, fetched = counting_reader(enc)
    times = rounds(
        {
            "plaintext": lambda: [os.pread(fd, 4096, o) for o in offsets],
            "encrypted": lambda: [reader.pread(o, 4096) for o in offsets],
        },
        n,
    )
    per_byte = fetched[0] / (n * reads * 4096)
    for o in offsets[:200]:
        assert reader.pread(o, 4096) == os.pread(fd, 4096, o)
    reader.close()
    os.close(fd)
    floor = crypto_seconds(reads * (1 << 16), 1 << 16)
    print(
        f"random 4 KiB reads, {size >> 20} MiB file, 64 KiB chunks, {reads} reads x {n} rounds:\n"
        f"  plaintext: {spread(times['plaintext'], reads, 'reads/s')}\n"
        f"  encrypted: {spread(times['encrypted'], reads, 'reads/s')}\n"
        f"  encrypted vs plaintext {paired(times, 'plaintext', 'encrypted')}; bytes read "
        f"per byte returned {per_byte:.2f} (a read verifies its whole 64 KiB chunk); floor: "
        f"verify+decrypt of one chunk per read on one core {reads / floor:,.0f} reads/s"
    )


def sequential(tmp: Path, n: int) -> None:
    plain = tmp / "big.bin"
    enc = tmp / "big1m.ahm"
    aes_hmac.encrypt_file(plain, enc, key=KEY)
    credential = to_credential(None, KEY)

    def stream() -> None:
        with open(enc, "rb") as f:
            aes_hmac.decrypt_stream(f, Null(), key=KEY)

    def readinto() -> None:
        buf = bytearray(1 << 20)
        with seekable_path(enc, credential, DEFAULT_LIMITS) as r:
            while r.readinto(buf):
                pass

    def read64k() -> None:
        with seekable_path(enc, credential, DEFAULT_LIMITS) as r:
            while r.read(1 << 16):
                pass

    times = rounds(
        {"decrypt_stream": stream, "readinto(1 MiB)": readinto, "read(64 KiB)": read64k}, n
    )
    mb = plain.stat().st_size / 1e6
    print(f"sequential, {mb:,.0f} MB, 1 MiB chunks (the default), {n} rounds:")
    for name, t in times.items():
        print(f"  {name}: {spread(t, mb, 'MB/s')}")
        if name != "decrypt_stream":
            print(f"    vs decrypt_stream: {paired(times, 'decrypt_stream', name)}")


def parquet(tmp: Path, megabytes: int, n: int) -> None:
    import fsspec
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = megabytes * 1_000_000 // 40
    rng = np.random.default_rng(2)
    table = pa.table({f"c{i}": rng.random(rows) for i in range(5)})
    plain = tmp / "t.parquet"
    pq.write_table(table, plain, row_group_size=rows // 8, compression="none")
    enc = tmp / "t.parquet.ahm"
    aes_hmac.encrypt_file(plain, enc, PASSWORD, chunk_size=1 << 16)
    local = fsspec.filesystem("file")
    url = f"aeshmac::file://{enc}"
    options = {"aeshmac": {"password": PASSWORD}}

    def native() -> object:
        return pq.read_table(plain, columns=["c3"])

    def through_fsspec() -> object:
        return pq.read_table(str(plain), columns=["c3"], filesystem=local)

    def aeshmac() -> object:
        fs, path = fsspec.core.url_to_fs(url, **options)
        return pq.read_table(path, columns=["c3"], filesystem=fs)

    assert aeshmac().equals(native())  # and derives the key once, outside the timing
    read = {}
    for name, fn in (("plain", native), ("aeshmac", aeshmac)):
        before = bytes_read()
        fn()
        after = bytes_read()
        read[name] = None if before is None or after is None else after - before
    variants = {"plain (pyarrow)": native, "plain (fsspec file://)": through_fsspec}
    times = rounds({**variants, "aeshmac::": aeshmac}, n)
    size = plain.stat().st_size
    print(f"parquet, one column of {size / 1e6:.0f} MB (5 float64 columns, 8 row groups), "
          f"64 KiB chunks, {n} rounds:")  # fmt: skip
    for name, t in times.items():
        print(f"  {name}: {spread(t)}")
    best_plain = min(times["plain (pyarrow)"])
    for base in variants:
        per_round = statistics.median(
            e / p for p, e in zip(times[base], times["aeshmac::"], strict=True)
        )
        print(
            f"  aeshmac:: time vs {base}: {min(times['aeshmac::']) / min(times[base]):.2f}x "
            f"(bests), {per_round:.2f}x (median of rounds)"
        )
    if read["plain"] and read["aeshmac"]:
        floor = crypto_seconds(read["aeshmac"], 1 << 16)
        workers = min(os.cpu_count() or 1, 8)
        print(
            f"  bytes read: plain {read['plain'] / 1e6:.1f} MB, aeshmac {read['aeshmac'] / 1e6:.1f}"
            f" MB ({read['aeshmac'] / read['plain']:.2f}x)\n"
            f"  floor: verify+decrypt of those bytes takes {floor * 1e3:.1f} ms on one core, so "
            f"at best plain + that / {workers} cores = "
            f"{(best_plain + floor / workers) / best_plain:.2f}x, on one core "
            f"{(best_plain + floor) / best_plain:.2f}x"
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
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-dask", action="store_true")
    parser.add_argument("--only", choices=["random", "parquet", "folders"])
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-access-"))
    try:
        if args.only in (None, "random"):
            random_access(tmp, args.size_mib << 20, args.reads, args.rounds)
            sequential(tmp, args.rounds)
        if args.only in (None, "parquet"):
            parquet(tmp, args.parquet_mb, args.rounds)
        if args.only in (None, "folders"):
            folders(tmp, args.files, not args.no_dask)
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
