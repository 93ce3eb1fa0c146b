"""Stream throughput and memory against one core's ceilings and peers, as same-run ratios.

Run (the lead's full run, at a quiet moment; about 15 minutes on two cores):
    .venv/bin/python benchmarks/bench_stream.py --sizes 1024,256 --repeat 3 --workers 1,2,3,4
Smoke run: .venv/bin/python benchmarks/bench_stream.py --quick

Measures, per size, each run in its own subprocess (wall time and peak RSS, best of --repeat,
the spread min-max printed):
  * ceilings, one thread: AES-256-CBC encrypt/decrypt and HMAC-SHA256 with ``update_into`` on
    preallocated 1 MiB buffers (the fastest way ``cryptography`` can be driven);
  * encrypt_stream / decrypt_stream between open files (page cache) with a raw key, so no KDF is
    timed, for every --workers count and the default; encrypt_file / decrypt_file (fsync);
  * the CLI through pipes (``cat in | aes-hmac encrypt | cat > out``, cheap PBKDF2);
  * peers: pyAesCrypt (same primitives, one thread), Fernet (whole file in memory, up to
    --fernet-max MiB), Cobblestone256 (``cryptography.cobblestone``, AES-256-GCM, one thread,
    only when importable: a benchmark peer, never a dependency), and an "ideal" pipeline: two
    threads each ``preadv`` their own chunk, seal it (AES-CBC ``update_into`` + HMAC) and
    ``pwrite`` it, with and without a final fsync.
Prints MB/s (1 MB = 10**6 bytes) and every target of issue 9 as a ratio measured in this run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

MIB = 1 << 20
MB = 1e6
KEY = bytes(range(32))
PASSWORD = "benchmark password"
CHUNK = MIB
FULL = CHUNK + 48
CLI_KDF = ["--iterations", "1000"]


def ceilings(total: int) -> dict[str, float]:
    """Single-thread MB/s of AES-256-CBC encrypt/decrypt and HMAC-SHA256 on 1 MiB buffers."""
    from aes_hmac._primitives import CbcHmacInto

    c = CbcHmacInto(KEY, KEY)
    buf = bytearray(os.urandom(MIB))
    out = bytearray(MIB + 15)
    iv = bytes(16)
    rounds = max(1, total // MIB)
    steps: dict[str, Callable[[], object]] = {
        "aes_cbc_encrypt": lambda: c.encrypt_into(iv, buf, out),
        "aes_cbc_decrypt": lambda: c.decrypt_into(iv, buf, out),
        "hmac_sha256": lambda: c.tag(buf),
    }
    rates = {}
    for name, step in steps.items():
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(rounds):
                step()
            best = max(best, rounds * MIB / (time.perf_counter() - t) / MB)
        rates[name] = best
    return rates


# --- the measured jobs, each run in a fresh child process ---


def _ideal(src: str, dst: str, encrypt: bool, fsync: bool) -> None:
    """Two threads; thread t takes chunks t, t+2, ...: preadv, seal or verify+decrypt, pwrite."""
    from aes_hmac._primitives import CbcHmacInto

    codec = CbcHmacInto(KEY, KEY)
    size = os.path.getsize(src)
    insize, outsize = (CHUNK, FULL) if encrypt else (FULL, CHUNK)
    count = -(-size // insize)
    fi = os.open(src, os.O_RDONLY)
    fo = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)

    def run(first: int) -> None:
        inbuf = bytearray(insize)
        out = bytearray(max(insize, outsize) + 64)
        view = memoryview(out)
        for i in range(first, count, 2):
            n = os.preadv(fi, [inbuf], i * insize)
            data = memoryview(inbuf)[: n - n % 16]
            if encrypt:
                view[:16] = bytes(16)
                m = 16 + codec.encrypt_into(bytes(16), data, view[16 : 16 + len(data) + 15])
                view[m : m + 32] = codec.tag(view[:m])
                os.pwrite(fo, view[: m + 32], i * outsize)
            elif len(data) >= 64:
                # Chunks are taken at i * FULL, ignoring the header: the work per byte is the
                # same, and the result (tag check, plaintext) is not the point here.
                codec.verify(data[-32:], data[:-32])
                body = data[16:-32]
                m = codec.decrypt_into(bytes(data[:16]), body, view[: len(body) + 15])
                os.pwrite(fo, view[:m], i * outsize)

    threads = [threading.Thread(target=run, args=(t,)) for t in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if fsync:
        os.fsync(fo)
    os.close(fi)
    os.close(fo)


def _cobblestone(src: str, dst: str, encrypt: bool) -> None:
    from cryptography import cobblestone

    cls = cobblestone.Cobblestone256Encryptor if encrypt else cobblestone.Cobblestone256Decryptor
    ctx = cls(KEY, b"aes-hmac benchmark")
    buf = bytearray(MIB)
    out = bytearray(MIB + (1 << 16))
    view = memoryview(out)
    with open(src, "rb", buffering=0) as fi, open(dst, "wb", buffering=0) as fo:
        while n := fi.readinto(buf):
            m = ctx.update_into(memoryview(buf)[:n], out)
            fo.write(view[:m])
        fo.write(ctx.finalize())


def _cli(src: str, dst: str, operation: str, workers: int) -> None:
    cli = shlex.join([sys.executable, "-m", "aes_hmac", operation, "-q", "--workers", str(workers)])
    extra = shlex.join(CLI_KDF) if operation == "encrypt" else ""
    cmd = (
        f"cat {shlex.quote(src)} | {cli} {extra} --password-env BENCH_PW | cat > {shlex.quote(dst)}"
    )
    env = dict(os.environ, BENCH_PW=PASSWORD)
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True, env=env)


def child(job: str, src: str, dst: str, workers: int) -> None:
    """One measured run in this (fresh) process; prints {seconds, rss_mib} as JSON.

    Imports happen before the clock starts: they are start-up cost, not throughput.
    """
    import aes_hmac

    w = None if workers == 0 else workers
    t = time.perf_counter()
    if job in ("encrypt", "decrypt"):
        fn = aes_hmac.encrypt_stream if job == "encrypt" else aes_hmac.decrypt_stream
        with open(src, "rb") as fi, open(dst, "wb") as fo:
            fn(fi, fo, key=KEY, workers=w)
    elif job in ("encrypt-file", "decrypt-file"):
        fn3 = aes_hmac.encrypt_file if job == "encrypt-file" else aes_hmac.decrypt_file
        fn3(src, dst, key=KEY, workers=w, overwrite=True)
    elif job in ("cli-encrypt", "cli-decrypt"):
        _cli(src, dst, job[4:], workers or os.cpu_count() or 1)
    elif job in ("pyaescrypt-encrypt", "pyaescrypt-decrypt"):
        import pyAesCrypt

        t = time.perf_counter()
        fn2 = pyAesCrypt.encryptFile if job.endswith("encrypt") else pyAesCrypt.decryptFile
        fn2(src, dst, PASSWORD, MIB)
    elif job in ("fernet-encrypt", "fernet-decrypt"):
        from cryptography.fernet import Fernet

        f = Fernet(b"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        t = time.perf_counter()
        with open(src, "rb") as fi:
            data = fi.read()
        result = f.encrypt(data) if job == "fernet-encrypt" else f.decrypt(data)
        with open(dst, "wb") as fo:
            fo.write(result)
    elif job.startswith("cobblestone-"):
        _cobblestone(src, dst, job.endswith("encrypt"))
    elif job.startswith("ideal-"):
        _ideal(src, dst, "-encrypt" in job, job.endswith("-fsync"))
    elif job != "baseline":
        raise SystemExit(f"unknown job {job}")
    seconds = time.perf_counter() - t
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "rss_mib": rss}))


# --- the parent: runs, ratios ---


class Bench:
    def __init__(self, repeat: int) -> None:
        self.repeat = repeat

    def run(self, job: str, src: str, dst: str, workers: int = 1) -> dict[str, Any]:
        """Best of ``repeat`` subprocess runs; the spread and the highest peak RSS."""
        results = [self.once(job, src, dst, workers) for _ in range(self.repeat)]
        times = [r["seconds"] for r in results]
        return {
            "seconds": min(times),
            "slowest": max(times),
            "rss_mib": max(r["rss_mib"] for r in results),
        }

    @staticmethod
    def once(job: str, src: str, dst: str, workers: int) -> dict[str, Any]:
        if os.path.exists(dst):
            os.unlink(dst)  # freeing the old file's pages is not part of the measured run
        # Write back earlier runs' dirty pages first: otherwise the kernel throttles this run's
        # writes to pay for them.
        os.sync()
        cmd = [sys.executable, __file__, "--child", job, src, dst, str(workers)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"{job} failed: {proc.stderr.strip()[-500:]}")
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result


def make_file(path: str, size: int) -> None:
    block = os.urandom(MIB)
    with open(path, "wb") as f:
        for _ in range(size // MIB):
            f.write(block)
        f.write(block[: size % MIB])


def has_module(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


def measure_size(args: argparse.Namespace, bench: Bench, ceil: dict[str, float], mib: int) -> None:
    size = mib * MIB
    rates: dict[str, float] = {}
    rss: dict[str, float] = {}
    print(f"\n=== {mib} MiB, best of {bench.repeat} (spread: slowest..fastest) ===")

    def show(key: str, label: str, r: dict[str, Any], nbytes: int = size) -> None:
        rate = nbytes / r["seconds"] / MB
        slow = nbytes / r["slowest"] / MB
        rates[key] = rate
        rss[key] = r["rss_mib"]
        print(
            f"{label:<34} {rate:7.0f} MB/s  ({slow:5.0f}..{rate:5.0f})  "
            f"peak RSS {r['rss_mib']:6.1f} MiB"
        )

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-stream-") as tmp:
        plain, enc, dec = (os.path.join(tmp, n) for n in ("plain", "enc", "dec"))
        make_file(plain, size)
        bench.once("encrypt", plain, enc, 0)  # warm-up, not reported
        base = bench.run("baseline", plain, dec)
        print(f"baseline python + aes_hmac import: peak RSS {base['rss_mib']:.1f} MiB")
        counts = [int(x) for x in args.workers.split(",")]
        for w in [*counts, 0]:
            name = "default" if w == 0 else str(w)
            show(
                f"enc{name}", f"encrypt_stream workers={name}", bench.run("encrypt", plain, enc, w)
            )
        # decrypt needs a stream: the last encrypt left one in enc
        for w in [*counts, 0]:
            name = "default" if w == 0 else str(w)
            show(f"dec{name}", f"decrypt_stream workers={name}", bench.run("decrypt", enc, dec, w))
        with open(plain, "rb") as a, open(dec, "rb") as b:
            if a.read(MIB) != b.read(MIB) or os.path.getsize(plain) != os.path.getsize(dec):
                raise SystemExit("round trip mismatch")
        show("encfile", "encrypt_file (fsync) default", bench.run("encrypt-file", plain, dec, 0))
        show("decfile", "decrypt_file (fsync) default", bench.run("decrypt-file", enc, dec, 0))
        cli_enc = os.path.join(tmp, "cli.enc")
        show("clienc", "CLI encrypt through pipes", bench.run("cli-encrypt", plain, cli_enc, 0))
        show("clidec", "CLI decrypt through pipes", bench.run("cli-decrypt", cli_enc, dec, 0))
        os.unlink(cli_enc)
        show("ideal_enc", "ideal 2 threads encrypt", bench.run("ideal-encrypt", plain, dec))
        show("ideal_dec", "ideal 2 threads decrypt", bench.run("ideal-decrypt", enc, dec))
        show(
            "ideal_encf",
            "ideal 2 threads encrypt + fsync",
            bench.run("ideal-encrypt-fsync", plain, dec),
        )
        show(
            "ideal_decf",
            "ideal 2 threads decrypt + fsync",
            bench.run("ideal-decrypt-fsync", enc, dec),
        )
        if has_module("pyAesCrypt"):
            show("pyaes_enc", "pyAesCrypt encrypt", bench.run("pyaescrypt-encrypt", plain, enc))
            show("pyaes_dec", "pyAesCrypt decrypt", bench.run("pyaescrypt-decrypt", enc, dec))
        else:
            print("pyAesCrypt not installed: skipped")
        if has_module("cryptography.cobblestone"):
            show(
                "cobble_enc",
                "Cobblestone256 encrypt 1 thread",
                bench.run("cobblestone-encrypt", plain, enc),
            )
            show(
                "cobble_dec",
                "Cobblestone256 decrypt 1 thread",
                bench.run("cobblestone-decrypt", enc, dec),
            )
        else:
            print("cryptography.cobblestone not importable (needs cryptography >= 50): skipped")
        fsize = min(size, args.fernet_max * MIB)
        with open(plain, "rb+") as f:
            f.truncate(fsize)
        show(
            "fernet_enc",
            f"Fernet encrypt ({fsize // MIB} MiB)",
            bench.run("fernet-encrypt", plain, enc),
            fsize,
        )
        show(
            "fernet_dec",
            f"Fernet decrypt ({fsize // MIB} MiB)",
            bench.run("fernet-decrypt", enc, dec),
            fsize,
        )

    def ratio(label: str, num: str, den: str | float, goal: str) -> None:
        if num not in rates or (isinstance(den, str) and den not in rates):
            print(f"  {label:<48} n/a (peer skipped)")
            return
        d = rates[den] if isinstance(den, str) else den
        print(f"  {label:<48} {rates[num] / d:5.2f}x   target {goal}")

    print(f"--- issue 9 targets, {mib} MiB, same run ---")
    ratio("encrypt_stream / AES-CBC ceiling", "encdefault", ceil["aes_cbc_encrypt"], ">= 0.90")
    ratio("decrypt_stream / HMAC ceiling", "decdefault", ceil["hmac_sha256"], ">= 0.90")
    ratio("decrypt_stream / Cobblestone256 decrypt", "decdefault", "cobble_dec", ">= 1.00")
    ratio("encrypt_stream / Cobblestone256 encrypt", "encdefault", "cobble_enc", "(no target)")
    ratio("encrypt workers=1 / pyAesCrypt", "enc1", "pyaes_enc", ">= 0.90")
    ratio("decrypt workers=1 / pyAesCrypt", "dec1", "pyaes_dec", ">= 0.90")
    ratio("CLI encrypt pipes / encrypt_stream", "clienc", "encdefault", ">= 0.80")
    ratio("CLI decrypt pipes / decrypt_stream", "clidec", "decdefault", ">= 0.80")
    ratio("encrypt_file / ideal + fsync", "encfile", "ideal_encf", ">= 0.90")
    ratio("decrypt_file / ideal + fsync", "decfile", "ideal_decf", ">= 0.90")
    ratio("encrypt_stream / ideal (no fsync)", "encdefault", "ideal_enc", "(context)")
    ratio("decrypt_stream / ideal (no fsync)", "decdefault", "ideal_dec", "(context)")
    ours = [v for k, v in rss.items() if k.startswith(("enc", "dec"))]
    print(f"  {'peak RSS of aes-hmac runs (1 MiB chunks)':<48} {max(ours):5.1f} MiB target < 64")
    for op in ("enc", "dec"):
        sweep = [rates[f"{op}{w}"] for w in counts]
        steps = [b / a for a, b in itertools.pairwise(sweep)]
        shown = ", ".join(f"{w}:{r:.0f}" for w, r in zip(counts, sweep, strict=True))
        worst = min(steps) if steps else 1.0
        print(f"  {op}rypt workers sweep MB/s {shown}; worst step {worst:.2f}x (>= 1 never slower)")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1024,256", help="file sizes in MiB (default 1024,256)")
    parser.add_argument("--dir", default=None, help="folder for the files (default: temp)")
    parser.add_argument("--workers", default="1,2", help="worker counts for the sweep")
    parser.add_argument("--fernet-max", type=int, default=256, help="largest file for Fernet")
    parser.add_argument("--ceiling-mib", type=int, default=512, help="MiB per ceiling run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement (best wins)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 32 MiB, one run each")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeat, args.ceiling_mib, args.fernet_max = "32", 1, 64, 32
    bench = Bench(max(1, args.repeat))
    print(f"cpus: {os.cpu_count()}, load average: {os.getloadavg()}")
    ceil = ceilings(args.ceiling_mib * MIB)
    for name, rate in ceil.items():
        print(f"ceiling  {name:<16} {rate:8.0f} MB/s (one thread, update_into, 1 MiB buffers)")
    for mib in (int(x) for x in args.sizes.split(",")):
        measure_size(args, bench, ceil, mib)
    print(f"\nload average at the end: {os.getloadavg()} (other work lowers every rate)")


if __name__ == "__main__":
    main()
