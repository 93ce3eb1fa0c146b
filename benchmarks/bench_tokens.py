"""Small-message token rates: raw-key and bulk (derive-once) modes against Fernet, same run.

Usage: python benchmarks/bench_tokens.py [--size 100] [--number 20000] [--repeat 5]
Prints operations per second (best of ``repeat`` runs of ``number`` calls) and ratios against
``cryptography.fernet.Fernet``. The goal for raw-key mode is >= 1.5x Fernet both ways.
Benchmarks are not tests: run them on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import timeit
from collections.abc import Callable

from cryptography.fernet import Fernet

from aes_hmac import Key, PasswordKey, generate_key


def rate(fn: Callable[[], object], number: int, repeat: int) -> float:
    """Best-of-``repeat`` calls per second."""
    best = min(timeit.repeat(fn, number=number, repeat=repeat))
    return number / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100, help="message size in bytes")
    parser.add_argument("--number", type=int, default=20_000, help="calls per timing run")
    parser.add_argument("--repeat", type=int, default=5, help="timing runs (best is kept)")
    args = parser.parse_args()

    message = os.urandom(args.size)
    fernet = Fernet(Fernet.generate_key())
    key = Key(generate_key())
    bulk = PasswordKey("benchmark password")  # default KDF, derived once on first use
    f_token = fernet.encrypt(message)
    k_token = key.encrypt(message)
    b_token = bulk.encrypt(message)
    if fernet.decrypt(f_token) != message or key.decrypt(k_token) != message:
        raise SystemExit("round trip failed")
    if bulk.decrypt(b_token) != message:
        raise SystemExit("round trip failed")

    cases: list[tuple[str, Callable[[], object]]] = [
        ("fernet encrypt", lambda: fernet.encrypt(message)),
        ("fernet decrypt", lambda: fernet.decrypt(f_token)),
        ("Key encrypt", lambda: key.encrypt(message)),
        ("Key decrypt", lambda: key.decrypt(k_token)),
        ("PasswordKey encrypt", lambda: bulk.encrypt(message)),
        ("PasswordKey decrypt", lambda: bulk.decrypt(b_token)),
    ]
    rates = {name: rate(fn, args.number, args.repeat) for name, fn in cases}
    print(f"{args.size}-byte messages, best of {args.repeat} x {args.number} calls")
    for name, ops in rates.items():
        direction = name.split()[-1]
        ratio = ops / rates[f"fernet {direction}"]
        print(f"{name:22s} {ops:>10,.0f} ops/s  {ratio:5.2f}x fernet")


if __name__ == "__main__":
    main()
