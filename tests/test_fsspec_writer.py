"""The fsspec writer keeps the writer lifecycle (issue 16): only a clean close makes a file
appear. ``OpenFile.__exit__`` and pandas' cleanup call plain ``close()`` with the exception in
flight, and garbage collection closes an abandoned writer: none of them may commit a shorter
file that reads back as complete."""

from __future__ import annotations

import gc
import uuid
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from fsspec.implementations.dirfs import DirFileSystem  # noqa: E402
from fsspec.implementations.local import LocalFileSystem  # noqa: E402

from aes_hmac import PBKDF2, WriterDiscardedWarning  # noqa: E402
from aes_hmac.integrations.fsspec import AesHmacFileSystem  # noqa: E402

SECRET = {"password": "pw", "kdf": PBKDF2(iterations=1000), "chunk_size": 4096}
OPTIONS = {"aeshmac": SECRET}
ROWS = 50_000
FAIL_AT = 30_000


class Poison:
    """A cell whose text form fails: ``to_csv`` raises there, after writing the rows before."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __str__(self) -> str:
        if self.n == FAIL_AT:
            raise RuntimeError(f"row {FAIL_AT} cannot be written")
        return str(self.n)


@pytest.fixture(params=["file", "memory"])
def base(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "file":
        yield f"file://{tmp_path}"
        return
    root = f"/t{uuid.uuid4().hex}"
    yield f"memory://{root}"
    with suppress(FileNotFoundError):  # nothing was written: the test's point
        fsspec.filesystem("memory").rm(root, recursive=True)


def entries(base: str) -> list[str]:
    """Every name in the test's folder (the target's own view, not through aeshmac)."""
    fs, root = fsspec.core.url_to_fs(base)
    return sorted(fs.ls(root, detail=False)) if fs.exists(root) else []


def test_with_block_left_by_an_exception_leaves_nothing(base: str) -> None:
    with pytest.raises(RuntimeError):
        with fsspec.open(f"aeshmac::{base}/x.ahm", "wb", **OPTIONS) as f:
            f.write(b"1,100\n")
            raise RuntimeError("half way")
    assert entries(base) == []  # was a valid x.ahm holding "1,100\n"


def test_failed_rewrite_keeps_the_old_file(base: str) -> None:
    url = f"aeshmac::{base}/x.ahm"
    with fsspec.open(url, "wb", **OPTIONS) as f:
        f.write(b"old complete data")
    with pytest.raises(RuntimeError):
        with fsspec.open(url, "wb", **OPTIONS) as f:
            f.write(b"new")
            raise RuntimeError
    with fsspec.open(url, "rb", **OPTIONS) as f:
        assert f.read() == b"old complete data"
    assert len(entries(base)) == 1


def test_unclosed_writer_collected_leaves_nothing(base: str) -> None:
    f = fsspec.open(f"aeshmac::{base}/x.ahm", "wb", **OPTIONS).open()
    f.write(b"x" * 10_000)
    del f
    gc.collect()
    assert entries(base) == []


def test_close_inside_except_discards(base: str) -> None:
    f = fsspec.open(f"aeshmac::{base}/x.ahm", "wb", **OPTIONS).open()
    f.write(b"first half")
    try:
        raise ValueError("the caller's failure")
    except ValueError:
        with pytest.warns(WriterDiscardedWarning, match=r"x\.ahm.*ValueError"):
            f.close()
    assert entries(base) == []


def export_rows(url: str, mode: str, **kw: object) -> None:
    """Write rows through ``fsspec.open(url, mode).open()`` and fail part way, leaving the file
    to the garbage collector, as an export that logs the failure and carries on does."""
    f = fsspec.open(url, mode, **OPTIONS, **kw).open()
    for i in range(ROWS):
        if i == FAIL_AT:
            raise RuntimeError(f"source failed at row {i}")
        f.write(f"{i},{i * i}\n" if "t" in mode else f"{i}\n".encode())
    f.close()


def test_abandoned_text_writer_collected_leaves_nothing(base: str) -> None:
    """Regression (review of issue 16, finding 2): ``fsspec.open(..., "wt")`` wraps the writer
    in a ``TextIOWrapper`` whose finalizer closed it with no exception in flight, committing
    30000 of 50000 rows as a complete file."""
    with pytest.raises(RuntimeError, match="row 30000"):
        export_rows(f"aeshmac::{base}/x.csv.ahm", "wt")
    gc.collect()
    assert entries(base) == []


@pytest.mark.parametrize("mode", ["wt", "wb"])
def test_abandoned_compressed_writer_collected_leaves_nothing(base: str, mode: str) -> None:
    """``compression="gzip"`` puts a ``GzipFile`` (no ``_dealloc_warn``) between the wrapper and
    the writer; it never closes a file object it was given, so at collection the writer is
    still unclosed and its own finalizer discards (the gzip trailer written meanwhile does not
    make the stream complete)."""
    with pytest.raises(RuntimeError, match="row 30000"):
        export_rows(f"aeshmac::{base}/x.csv.gz.ahm", mode, compression="gzip")
    gc.collect()
    assert entries(base) == []


def test_text_and_compressed_writers_closed_cleanly_round_trip(base: str) -> None:
    """The finalizer hook changes only garbage collection: clean closes still commit (with
    compression, fsspec closes the writer only through the ``OpenFile``)."""
    text = fsspec.open(f"aeshmac::{base}/t.csv.ahm", "wt", **OPTIONS).open()
    text.write("a,b\n1,2\n")
    text.close()
    with fsspec.open(f"aeshmac::{base}/g.csv.gz.ahm", "wt", compression="gzip", **OPTIONS) as f:
        f.write("a,b\n1,2\n")
    for name, kw in [("t.csv.ahm", {}), ("g.csv.gz.ahm", {"compression": "gzip"})]:
        with fsspec.open(f"aeshmac::{base}/{name}", "rt", **OPTIONS, **kw) as f:
            assert f.read() == "a,b\n1,2\n"


def test_writer_opened_in_except_left_by_reraise_discards(base: str) -> None:
    """Regression (review of issue 16, finding 3b): a writer opened inside an ``except``
    block and left by raising that exception again committed its partial data (fsspec's
    ``OpenFile.__exit__`` calls plain ``close()``)."""
    with pytest.raises(ConnectionError), pytest.warns(WriterDiscardedWarning):
        try:
            raise ConnectionError("upstream down")
        except ConnectionError as exc:
            with fsspec.open(f"aeshmac::{base}/report.ahm", "wb", **OPTIONS) as f:
                f.write(b"PARTIAL: first half of the report")
                raise exc
    assert entries(base) == []


def test_to_csv_failing_part_way_leaves_nothing_readable(base: str) -> None:
    frame = pd.DataFrame({"n": range(ROWS), "cell": [Poison(i) for i in range(ROWS)]})
    url = f"aeshmac::{base}/frame.csv.ahm"
    with pytest.raises(RuntimeError, match=str(FAIL_AT)):
        frame.to_csv(url, index=False, storage_options=OPTIONS)
    assert entries(base) == []  # was a file read_csv returned 30,000 rows from, no error
    with pytest.raises(FileNotFoundError):
        pd.read_csv(url, storage_options=OPTIONS)


def test_to_parquet_failing_part_way_leaves_nothing(base: str) -> None:
    """pyarrow fails at row group 30 of 50: casting row 30,000 to milliseconds loses data.

    A guard rather than a regression test: pandas hands pyarrow the filesystem, and pyarrow
    drops its stream unclosed on this path, so old main left nothing here either; the
    ``ParquetWriter`` test below is the pyarrow case that failed there.
    """
    stamps = pd.Series(pd.date_range("2026-01-01", periods=ROWS, freq="s").as_unit("ns"))
    stamps[FAIL_AT] += pd.Timedelta(1, "ns")
    with pytest.raises(pa.ArrowInvalid, match="would lose data"):
        pd.DataFrame({"t": stamps}).to_parquet(
            f"aeshmac::{base}/frame.parquet.ahm",
            storage_options=OPTIONS,
            coerce_timestamps="ms",
            row_group_size=1000,
        )
    assert entries(base) == []


def test_parquet_writer_failing_between_row_groups_leaves_nothing(base: str) -> None:
    table = pa.table({"n": list(range(ROWS))})
    with pytest.raises(RuntimeError):
        with fsspec.open(f"aeshmac::{base}/t.parquet.ahm", "wb", **OPTIONS) as f:
            with pq.ParquetWriter(f, table.schema) as writer:
                writer.write_table(table.slice(0, FAIL_AT))
                raise RuntimeError("the producer failed")
    assert entries(base) == []


def test_clean_writes_round_trip(base: str) -> None:
    frame = pd.DataFrame({"n": range(3000), "s": [f"row {i}" for i in range(3000)]})
    frame.to_csv(f"aeshmac::{base}/f.csv.ahm", index=False, storage_options=OPTIONS)
    frame.to_parquet(f"aeshmac::{base}/f.parquet.ahm", storage_options=OPTIONS)
    assert pd.read_csv(f"aeshmac::{base}/f.csv.ahm", storage_options=OPTIONS).equals(frame)
    assert pd.read_parquet(f"aeshmac::{base}/f.parquet.ahm", storage_options=OPTIONS).equals(frame)
    assert [name.rsplit("/", 1)[1] for name in entries(base)] == ["f.csv.ahm", "f.parquet.ahm"]


# --- a target that defers its commit (autocommit=False), and fsspec transactions ---------


@pytest.fixture
def deferring(tmp_path: Path) -> AesHmacFileSystem:
    """Over a filesystem that is not the local one but defers commits like object stores."""
    return AesHmacFileSystem(fs=DirFileSystem(str(tmp_path), fs=LocalFileSystem()), **SECRET)


def test_deferred_target_commits_on_close_only(
    tmp_path: Path, deferring: AesHmacFileSystem
) -> None:
    with pytest.raises(RuntimeError):
        with deferring.open("x.ahm", "wb") as f:
            f.write(b"half")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    with deferring.open("x.ahm", "wb") as f:
        f.write(b"whole")
    with deferring.open("x.ahm", "rb") as f:
        assert f.read() == b"whole"


def test_transaction_decides(tmp_path: Path, deferring: AesHmacFileSystem) -> None:
    with pytest.raises(RuntimeError):
        with deferring.transaction:
            with deferring.open("x.ahm", "wb") as f:
                f.write(b"sealed, then the transaction fails")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []
    with deferring.transaction:
        with deferring.open("x.ahm", "wb") as f:
            f.write(b"committed by the transaction")
        assert list(tmp_path.iterdir()) == []
    with deferring.open("x.ahm", "rb") as f:
        assert f.read() == b"committed by the transaction"


@pytest.mark.parametrize("inner", ["memory", "file"])
def test_wrapped_target_that_ignores_autocommit_shows_nothing_of_a_failed_write(
    tmp_path: Path, inner: str
) -> None:
    """``dir::memory://`` takes ``autocommit=False`` and commits at open all the same (review
    finding 4): the writer looks through the wrapper and spools, so a failed rewrite keeps the
    old file and a failed new file never appears."""
    root = f"/w{uuid.uuid4().hex}" if inner == "memory" else str(tmp_path)
    plain = DirFileSystem(path=root, fs=fsspec.filesystem(inner))
    afs = AesHmacFileSystem(fs=plain, **SECRET)
    with afs.open("x.ahm", "wb") as f:
        f.write(b"precious version 1\n")
    for name in ("x.ahm", "y.ahm"):
        with pytest.warns(WriterDiscardedWarning), pytest.raises(RuntimeError):
            with fsspec.core.OpenFile(afs, name, "wb") as f:
                f.write(b"half of a new version")
                raise RuntimeError("failed half way")
    with afs.open("x.ahm", "rb") as f:
        assert f.read() == b"precious version 1\n"
    assert [e.rsplit("/", 1)[-1] for e in plain.ls("", detail=False)] == ["x.ahm"]


def test_dir_over_local_files_writes_nameless_in_the_target_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding (issue 19): ``dir::file://`` went through fsspec's local commit, a move
    from the temp folder; across file systems that move is a copy, visible under the final
    name while it runs. Local targets behind ``dir::`` now get ``PendingFile`` as plain local
    ones do: nothing in the temp folder, nothing named in the target until the clean close."""
    spool = tmp_path / "elsewhere"
    spool.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(spool))
    target = tmp_path / "target"
    target.mkdir()
    afs = AesHmacFileSystem(fs=DirFileSystem(path=str(target), fs=LocalFileSystem()), **SECRET)
    with afs.open("big.bin.ahm", "wb") as f:
        f.write(b"x" * (1 << 20))
        assert list(spool.iterdir()) == []
        assert list(target.iterdir()) == []
    assert [p.name for p in target.iterdir()] == ["big.bin.ahm"]
    with afs.open("big.bin.ahm", "rb") as f:
        assert f.read() == b"x" * (1 << 20)
