"""How often a script that reads Parquet through our file objects aborts at exit (issue 16).

    python benchmarks/arrow_exit.py [--runs 100] [--mb 100] [--entry NAME ...] [--dir DIR]

Writes one encrypted Parquet file of about ``--mb`` MB (several row groups), then runs, in a
fresh interpreter each time, the script a user would write for each entry point: read one
column with ``pyarrow.parquet.read_table`` (threads on, the default) and exit. A run that ends
with SIGABRT (pyarrow's "terminate called without an active exception") or any other non-zero
status is counted. The tests run this module's ``count`` too (tests/test_arrow_exit.py).

Measured 2026-12-05 here (2 cores shared with ~8 busy processes; 127 MB encrypted, 10 row groups,
100 runs each; the rate moves with the machine's load: issue 16 saw 6 of 6 on a quiet one):

    entry point          before (2846860)              after
    open_seekable        7 aborted                     0
    aes_hmac.open        2 (and 8 of 92 in a run       0
                         against the main of then)
    fsspec.open          7                             0
    pandas.read_parquet  1                             0

Reading every column instead of one: 3 of 30 aborted before, 0 of 30 after.
Later, with more of the filesystem's work done per open, pandas.read_parquet still aborted 2 of
40 (the pyarrow dataset's handler of the filesystem, released late): the same exit wait for
those handlers brought it to 0 of 150.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

KEY_HEX = "00" * 32
"""A raw key: a run measures reading, not a password derivation."""
COLUMN = "c3"

CHILD = """
import sys
entry, path, key, column, rows = sys.argv[1:]
key = bytes.fromhex(key)
import pyarrow.parquet as pq
if entry == "open_seekable":
    from aes_hmac import open_seekable
    with open_seekable(path, key=key) as f:
        table = pq.read_table(f, columns=[column])
elif entry == "open":
    import aes_hmac
    with aes_hmac.open(path, key=key) as f:
        table = pq.read_table(f, columns=[column])
elif entry == "fsspec":
    import fsspec
    with fsspec.open("aeshmac::file://" + path, "rb", aeshmac={"key": key}) as f:
        table = pq.read_table(f, columns=[column])
elif entry == "pandas":
    import pandas as pd
    table = pd.read_parquet(
        "aeshmac::file://" + path, columns=[column], storage_options={"aeshmac": {"key": key}}
    )
else:
    raise SystemExit(f"unknown entry {entry!r}")
if len(table) != int(rows):
    raise SystemExit(f"read {len(table)} rows, not {rows}")
"""
"""The user's script: read one column and exit (the last thing it does)."""
ENTRIES = ("open_seekable", "open", "fsspec", "pandas")


def make_file(directory: Path, mb: int) -> tuple[Path, int]:
    """An encrypted Parquet file of about ``mb`` MB in row groups of ~10 MB; its row count."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    import aes_hmac

    rows = mb * (1 << 20) // 64  # 8 float64 columns: 64 bytes a row, incompressible
    rng = np.random.default_rng(16)
    table = pa.table({f"c{i}": rng.random(rows) for i in range(8)})
    plain = directory / "frame.parquet"
    pq.write_table(table, plain, row_group_size=max(1, rows // 10), compression="none")
    encrypted = directory / "frame.parquet.ahm"
    aes_hmac.encrypt_file(plain, encrypted, key=bytes.fromhex(KEY_HEX))
    plain.unlink()
    return encrypted, rows


def run_once(
    entry: str, path: Path, rows: int, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """One fresh interpreter running the user's script for ``entry``."""
    return subprocess.run(
        [sys.executable, "-c", CHILD, entry, str(path), KEY_HEX, COLUMN, str(rows)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def count(entry: str, path: Path, runs: int, rows: int) -> tuple[int, int]:
    """(runs that aborted, runs that failed otherwise or printed a wrong row count)."""
    aborted = failed = 0
    for _ in range(runs):
        done = run_once(entry, path, rows)
        if done.returncode in (-6, 134):
            aborted += 1
        elif done.returncode:
            failed += 1
            print(f"  {entry}: exit {done.returncode}: {done.stderr.strip()[-300:]}", flush=True)
    return aborted, failed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--entry", nargs="*", choices=ENTRIES, default=list(ENTRIES))
    parser.add_argument("--dir", type=Path, help="where the file goes (default: a temp folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path, rows = make_file(Path(tmp), args.mb)
        size = os.path.getsize(path) / 1e6
        print(f"{size:.0f} MB encrypted, {rows} rows, {args.runs} runs each", flush=True)
        for entry in args.entry:
            aborted, failed = count(entry, path, args.runs, rows)
            print(
                f"{entry:14} aborted {aborted:4}/{args.runs}  other failures {failed}", flush=True
            )


if __name__ == "__main__":
    main()
