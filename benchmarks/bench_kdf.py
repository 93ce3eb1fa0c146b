"""KDF cost: each default beside the worst a forged token, header or keyring can make a reader pay.

Usage: python benchmarks/bench_kdf.py [--repeat 1]
Each line runs in a fresh process and prints its work units (``KdfLimits.max_kdf_work`` counts
them), seconds (best of ``repeat``), microseconds per unit (how the units in ``_kdf`` were
calibrated: they should be about equal across lines) and the process's peak RSS. The worst lines
are forged inputs within every default limit: they fail authentication after the KDF work the
budget allows. Benchmarks are not tests: run them on a quiet machine.
"""

from __future__ import annotations

import argparse
import io
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial

import aes_hmac
from aes_hmac import PBKDF2, Argon2id, DecryptionError, Keyring, Scrypt
from aes_hmac._kdf import Kdf

BUDGET = aes_hmac.KdfLimits().max_kdf_work
DEFAULTS: dict[str, Kdf] = {cls.name: cls() for cls in aes_hmac.KDFS}
WORST: dict[str, Kdf] = {
    "pbkdf2 13M iterations": PBKDF2(BUDGET),
    "scrypt 512 MiB": Scrypt(19, 8, 1),
    "scrypt 128 MiB p=4": Scrypt(17, 8, 4),
    "argon2id 700 MiB t=1": Argon2id(1, 700 << 10, 64),
    "argon2id 448 MiB t=2": Argon2id(2, 448 << 10, 4),
    "argon2id 128 MiB t=9": Argon2id(9, 128 << 10, 64),
}


def forged_token(kdf: Kdf) -> bytes:
    return bytes([0xA5, 1, kdf.kdf_id]) + kdf.encode() + bytes(16 + 16 + 32 + 32)


def forged_header(kdfs: list[Kdf]) -> bytes:
    slots = b"".join(bytes([k.kdf_id]) + k.encode() + bytes(16 + 16 + 32 + 32) for k in kdfs)
    return b"AESHMAC\x00\x01\x0c" + bytes(32) + bytes([len(kdfs)]) + slots + bytes(32 + 64)


def cases() -> dict[str, tuple[int, Callable[[], object]]]:
    """Every line: its work units and the call to time."""
    out: dict[str, tuple[int, Callable[[], object]]] = {}
    for name, kdf in DEFAULTS.items():
        out[f"default {name}"] = (kdf.work(), partial(kdf.derive, b"pw", bytes(16)))
    for name, kdf in WORST.items():
        out[f"forged token, {name}"] = (
            kdf.work(),
            partial(aes_hmac.decrypt, forged_token(kdf), "pw"),
        )
    worst_header = forged_header([WORST["scrypt 512 MiB"], Scrypt(), Argon2id(), PBKDF2()] * 4)
    out["forged 16-slot header, mixed"] = (
        BUDGET,  # at most: the budget decides what runs
        lambda: aes_hmac.decrypt_stream(io.BytesIO(worst_header), io.BytesIO(), "pw"),
    )
    ring = Keyring(*(f"entry {i}" for i in range(16)))
    default_scrypt = forged_token(Scrypt())
    out["forged token, keyring of 16"] = (
        4 * Scrypt().work(),
        lambda: ring.decrypt(default_scrypt),
    )
    return out


def run_one(name: str, repeat: int) -> None:
    work, call = cases()[name]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            call()
        except DecryptionError:
            pass  # forged: fails after the work, as intended
        best = min(best, time.perf_counter() - start)
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name:34s} {work:>12,} units {best:7.2f} s {best / work * 1e6:6.3f} us/unit "
        f"{rss_mib:7.0f} MiB peak"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=1, help="timing runs (best is kept)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: one line, in this process
    args = parser.parse_args()
    if args.one:
        run_one(args.one, args.repeat)
        return
    print(f"max_kdf_work {BUDGET:,} units; each line in a fresh process")
    for name in cases():
        cmd = [sys.executable, __file__, "--one", name, "--repeat", str(args.repeat)]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
