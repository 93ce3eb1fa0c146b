"""Tests of the ``aeshmac`` fsspec protocol with pandas and pyarrow, on local files and memory://."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

fsspec = pytest.importorskip("fsspec")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

import aes_hmac  # noqa: E402
from aes_hmac import PBKDF2, HeaderError, StreamDamaged  # noqa: E402
from aes_hmac.integrations.fsspec import AesHmacFileSystem  # noqa: E402

CHEAP = PBKDF2(iterations=1000)
OPTIONS = {"aeshmac": {"password": "pw", "kdf": CHEAP, "chunk_size": 4096}}
FRAME = pd.DataFrame({"n": range(2000), "s": [f"row {i}" for i in range(2000)]})


@pytest.fixture(params=["file", "memory"])
def base(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "file":
        return f"file://{tmp_path}"
    return f"memory://t{uuid.uuid4().hex}"


def test_protocol_is_registered_by_entry_point() -> None:
    assert fsspec.get_filesystem_class("aeshmac") is AesHmacFileSystem


def test_pandas_parquet_round_trip(base: str) -> None:
    url = f"aeshmac::{base}/frame.parquet.ahm"
    FRAME.to_parquet(url, storage_options=OPTIONS)
    assert pd.read_parquet(url, storage_options=OPTIONS).equals(FRAME)
    assert pd.read_parquet(url, columns=["s"], storage_options=OPTIONS)["s"].equals(FRAME["s"])
    raw = fsspec.open(f"{base}/frame.parquet.ahm", "rb").open().read()
    assert raw.startswith(b"AESHMAC\0") and b"row 1999" not in raw


def test_pandas_csv_round_trip(base: str) -> None:
    url = f"aeshmac::{base}/frame.csv.ahm"
    FRAME.to_csv(url, index=False, storage_options=OPTIONS)
    assert pd.read_csv(url, storage_options=OPTIONS).equals(FRAME)


def test_pyarrow_parquet_through_the_filesystem(base: str) -> None:
    table = pa.table({"a": list(range(3000)), "b": [float(i) for i in range(3000)]})
    fs, path = fsspec.core.url_to_fs(f"aeshmac::{base}/t.parquet.ahm", **OPTIONS)
    with fs.open(path, "wb") as f:
        pq.write_table(table, f, row_group_size=500)
    assert pq.read_table(path, filesystem=fs).equals(table)
    with fs.open(path, "rb") as f:
        pf = pq.ParquetFile(f)
        assert pf.read_row_group(4, columns=["a"]).column("a").to_pylist()[0] == 2000
    assert fs.info(path)["size"] == fs.open(path, "rb").seek(0, os.SEEK_END)


def test_sizes_are_plaintext_sizes(base: str) -> None:
    fs, path = fsspec.core.url_to_fs(f"aeshmac::{base}/d/x.bin.ahm", **OPTIONS)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(path, b"a" * 10_000)
    assert fs.cat_file(path) == b"a" * 10_000
    assert fs.info(path)["size"] == 10_000
    assert [e["size"] for e in fs.ls(path.rsplit("/", 1)[0])] == [10_000]
    assert fs.cat_file(path, start=9_990, end=10_005) == b"a" * 10


def test_range_reads_fetch_only_the_chunks_needed(tmp_path: Path) -> None:
    data = os.urandom(200 * 4096)
    target = fsspec.filesystem("memory")
    path = f"/r{uuid.uuid4().hex}/x.ahm"
    fs = AesHmacFileSystem(fs=target, password="pw", kdf=CHEAP, chunk_size=4096)
    with fs.open(path, "wb") as f:
        f.write(data)
    fetched: list[int] = []
    cat_file = target.cat_file

    def counting(p: str, start: int | None = None, end: int | None = None, **kw: object) -> bytes:
        out: bytes = cat_file(p, start=start, end=end, **kw)
        fetched.append(len(out))
        return out

    target.cat_file = counting
    try:
        with fs.open(path, "rb") as f:
            f.seek(100 * 4096 + 10)
            assert f.read(100) == data[100 * 4096 + 10 : 100 * 4096 + 110]
    finally:
        del target.cat_file
    # header probe + final chunk at open, then the one chunk holding the 100 bytes
    assert len(fetched) == 3 and sum(fetched) < 4 * 4096


def test_wrong_password_and_damage(base: str) -> None:
    url = f"aeshmac::{base}/frame.csv.ahm"
    FRAME.to_csv(url, index=False, storage_options=OPTIONS)
    with pytest.raises(HeaderError):
        pd.read_csv(url, storage_options={"aeshmac": {"password": "nope"}})
    raw_fs, raw_path = fsspec.core.url_to_fs(f"{base}/frame.csv.ahm")
    raw = bytearray(raw_fs.cat_file(raw_path))
    raw[-1] ^= 1
    raw_fs.pipe_file(raw_path, bytes(raw))
    with pytest.raises(StreamDamaged):
        pd.read_csv(url, storage_options=OPTIONS)


def test_failed_local_write_leaves_nothing(tmp_path: Path) -> None:
    fs = AesHmacFileSystem(password="pw", kdf=CHEAP)
    path = str(tmp_path / "x.ahm")
    with pytest.raises(RuntimeError), fs.open(path, "wb") as f:
        f.write(b"partial")
        raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []
    with fs.open(path, "wb") as f:
        f.write(b"whole")
    assert os.listdir(tmp_path) == ["x.ahm"]
    with open(path, "rb") as raw:
        assert aes_hmac.open(raw, password="pw").read() == b"whole"


def test_secret_stays_out_of_tokens_and_instances_are_not_shared() -> None:
    a = fsspec.filesystem("aeshmac", target_protocol="memory", password="one", kdf=CHEAP)
    b = fsspec.filesystem("aeshmac", target_protocol="memory", password="two", kdf=CHEAP)
    assert a is not b and a._fs_token != b._fs_token
    assert "one" not in repr(a) and "one" not in str(a.storage_args)


def test_bad_arguments() -> None:
    with pytest.raises(TypeError, match="password"):
        AesHmacFileSystem()
    with pytest.raises(ValueError, match="chunk_size"):
        AesHmacFileSystem(password="pw", chunk_size=1000)
    fs = AesHmacFileSystem(password="pw", kdf=CHEAP)
    with pytest.raises(ValueError, match="mode"):
        fs._open("/x", "ab")


def test_pickled_filesystem_reads_and_writes() -> None:
    fs = AesHmacFileSystem(target_protocol="memory", password="pw", kdf=CHEAP)
    path = f"/p{uuid.uuid4().hex}/x.ahm"
    fs.pipe_file(path, b"shipped")
    copy = pickle.loads(pickle.dumps(fs))
    assert copy.cat_file(path) == b"shipped"
    copy.pipe_file(path + "2", b"back")
    assert fs.cat_file(path + "2") == b"back"
    assert "password" not in fs.storage_options


def test_password_from_the_environment_never_travels(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "env secret 5a1d"
    monkeypatch.setenv("AESHMAC_TEST_SECRET", secret)
    fs = AesHmacFileSystem(
        target_protocol="memory", password_env="AESHMAC_TEST_SECRET", kdf=CHEAP, chunk_size=4096
    )
    path = f"/e{uuid.uuid4().hex}/x.ahm"
    fs.pipe_file(path, b"kept on this side")
    assert fs.cat_file(path) == b"kept on this side"
    derived = list(fs._credential.derived.keys.values())
    shipped = pickle.dumps(fs)
    assert secret.encode() not in shipped and derived and derived[0] not in shipped
    # The copy reads the password from the environment of the process that unpickles it.
    copy = pickle.loads(shipped)
    assert copy.cat_file(path) == b"kept on this side"
    monkeypatch.delenv("AESHMAC_TEST_SECRET")
    # Unpickling never fails (Dask would hang); the first use names the missing variable.
    lacking = pickle.loads(shipped)
    with pytest.raises(ValueError, match="password_env: environment variable AESHMAC_TEST_SECRET"):
        lacking.cat_file(path)
    with_password = AesHmacFileSystem(target_protocol="memory", password=secret, kdf=CHEAP)
    assert secret.encode() not in pickle.dumps(with_password)  # password= ships derived keys


def test_password_env_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AESHMAC_TEST_SECRET", "x")
    with pytest.raises(TypeError, match="password_env"):
        AesHmacFileSystem(password="pw", password_env="AESHMAC_TEST_SECRET")
    with pytest.raises(TypeError, match="password_env"):
        AesHmacFileSystem(password_env=42)
    monkeypatch.setenv("AESHMAC_TEST_SECRET", "")
    with pytest.raises(ValueError, match="not set or empty"):
        AesHmacFileSystem(password_env="AESHMAC_TEST_SECRET")


def _churn(fs: AesHmacFileSystem, folder: str, stop: threading.Event, n: int) -> None:
    """Write, replace and remove files in ``folder`` until ``stop``: a concurrent writer."""
    i = 0
    while not stop.is_set():
        path = f"{folder}/w{n}-{i % 3}.ahm"
        with fs.open(path, "wb") as f:
            f.write(b"x" * 100)
        if i % 2:
            fs.rm_file(path)
        i += 1


def test_ls_with_concurrent_writers_skips_vanished_and_temp_files(tmp_path: Path) -> None:
    fs = AesHmacFileSystem(password="pw", kdf=CHEAP)
    folder = str(tmp_path)
    fs.pipe_file(f"{folder}/kept.ahm", b"kept")
    stop = threading.Event()
    writers = [threading.Thread(target=_churn, args=(fs, folder, stop, n)) for n in range(4)]
    failures: list[BaseException] = []
    seen: list[str] = []

    def lister() -> None:
        for _ in range(30):
            try:
                entries = fs.ls(folder, detail=True)
            except BaseException as exc:  # any failure is what this test is about
                failures.append(exc)
                continue
            seen.extend(e["name"] for e in entries)
            kept = [e for e in entries if e["name"].endswith("/kept")]  # listed without .ahm
            assert kept and kept[0]["size"] == 4

    for w in writers:
        w.start()
    listers = [threading.Thread(target=lister) for _ in range(16)]
    for t in listers:
        t.start()
    for t in listers:
        t.join()
    stop.set()
    for w in writers:
        w.join()
    assert failures == []
    assert seen and not [name for name in seen if ".aes-hmac-tmp-" in name]


@pytest.mark.slow
def test_ls_while_another_process_writes(tmp_path: Path) -> None:
    script = (
        "import sys, threading\n"
        "from aes_hmac import PBKDF2\n"
        "from aes_hmac.integrations.fsspec import AesHmacFileSystem\n"
        "fs = AesHmacFileSystem(password='pw', kdf=PBKDF2(iterations=1000))\n"
        "for i in range(400):\n"
        "    p = f'{sys.argv[1]}/p{i % 5}.ahm'\n"
        "    with fs.open(p, 'wb') as f:\n"
        "        f.write(b'y' * 1000)\n"
        "    if i % 2:\n"
        "        fs.rm_file(p)\n"
    )
    fs = AesHmacFileSystem(password="pw", kdf=CHEAP)
    writer = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)])
    calls = 0
    try:
        while writer.poll() is None:
            for entry in fs.ls(str(tmp_path), detail=True):
                assert ".aes-hmac-tmp-" not in entry["name"] and entry["size"] == 1000
            calls += 1
    finally:
        writer.wait(timeout=120)
    assert writer.returncode == 0 and calls > 0


def test_a_copy_meeting_a_salt_nobody_derived_says_what_to_do(tmp_path: Path) -> None:
    fs = AesHmacFileSystem(password="pw", kdf=CHEAP)
    fs.pipe_file(str(tmp_path / "mine.ahm"), b"written here")
    # Made elsewhere (its own salt), and never opened in this process before the copy was made.
    with aes_hmac.open(str(tmp_path / "other.ahm"), "wb", password="pw", kdf=CHEAP) as f:
        f.write(b"written elsewhere")
    copy = pickle.loads(pickle.dumps(fs))
    assert copy.cat_file(str(tmp_path / "mine.ahm")) == b"written here"
    with pytest.raises(HeaderError, match="password_env"):
        copy.cat_file(str(tmp_path / "other.ahm"))
    assert fs.cat_file(str(tmp_path / "other.ahm")) == b"written elsewhere"


def test_a_users_file_with_the_temp_mark_in_its_name_is_listed(tmp_path: Path) -> None:
    """Only this tool's exact temporary names are hidden (review finding 5): a user's
    ``q3.aes-hmac-tmp-report.csv`` is listed, globbed and read like any other file, while a
    leftover ``.x.ahm.aes-hmac-tmp-<12 hex>`` stays out of listings."""
    fs = AesHmacFileSystem(password="pw", kdf=CHEAP)
    folder = str(tmp_path)
    for name in ("normal.csv", "q3.aes-hmac-tmp-report.csv"):
        fs.pipe_file(f"{folder}/{name}", b"a\n1\n")
    (tmp_path / ".normal.csv.ahm.aes-hmac-tmp-0123456789ab").write_bytes(b"partial")
    names = sorted(n.rsplit("/", 1)[-1] for n in fs.ls(folder, detail=False))
    assert names == ["normal.csv", "q3.aes-hmac-tmp-report.csv"]
    assert len(fs.glob(f"{folder}/*.csv")) == 2
    assert fs.cat_file(f"{folder}/q3.aes-hmac-tmp-report.csv") == b"a\n1\n"
