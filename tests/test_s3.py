"""``aeshmac::s3://`` against a real S3 API server (moto's server mode, ``scripts/s3.sh``),
measured at the server through a counting proxy (``_s3.CountingProxy``); and the names of files
written through the filesystem (the ``.ahm`` suffix), on ``memory://`` and S3."""

from __future__ import annotations

import gc
import io
import os
import pickle
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pytest
from _s3 import CountingProxy, endpoint, gets, storage_options

from aes_hmac import Scrypt
from aes_hmac.integrations.fsspec import AesHmacFileSystem

s3fs = pytest.importorskip("s3fs")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

CHEAP = Scrypt(log2_n=10, r=8, p=1)
PASSWORD = "s3 test password"
MiB = 1 << 20


@pytest.fixture(scope="module")
def proxy() -> Iterator[CountingProxy]:
    url = endpoint()
    if url is None:
        reason = "no S3 server: run bash scripts/s3.sh and set AES_HMAC_S3_ENDPOINT"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: S3 tests must run)")
        pytest.skip(reason)
    counting = CountingProxy(url)
    yield counting
    counting.close()


@pytest.fixture
def s3(proxy: CountingProxy) -> Any:
    fs = s3fs.S3FileSystem(**storage_options(proxy.url))
    return fs


@pytest.fixture
def bucket(s3: Any, proxy: CountingProxy) -> str:
    name = f"b{uuid.uuid4().hex[:16]}"
    s3.call_s3("create_bucket", Bucket=name)
    proxy.take()
    return name


def _afs(s3: Any, **kwargs: Any) -> AesHmacFileSystem:
    return AesHmacFileSystem(fs=s3, password=PASSWORD, kdf=CHEAP, **kwargs)


def _uploads(s3: Any, bucket: str) -> list[Any]:
    return list(s3.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads", []))


# --- writes: visible only through a clean close ----------------------------------------------


def test_large_write_is_one_multipart_upload_completed_at_close(
    s3: Any, bucket: str, proxy: CountingProxy
) -> None:
    fs = _afs(s3)
    data = os.urandom(20 * MiB)
    f = fs.open(f"{bucket}/big.bin", "wb")
    f.write(data)
    f.flush()
    during = proxy.take()
    # Parts went up while writing, but nothing is an object yet.
    assert any(r.method == "POST" and r.query == "uploads" for r in during)
    assert any(r.method == "PUT" and "partNumber=" in r.query for r in during)
    assert not s3.ls(bucket, refresh=True)
    f.close()
    done = proxy.take()
    assert any(r.method == "POST" and r.query.startswith("uploadId=") for r in done)
    assert s3.ls(bucket, refresh=True) == [f"{bucket}/big.bin.ahm"]
    assert fs.cat_file(f"{bucket}/big.bin") == data
    assert _uploads(s3, bucket) == []


@pytest.mark.parametrize("how", ["exception", "close_while_failing", "garbage", "discard"])
def test_failed_large_write_leaves_no_object_and_no_upload(
    s3: Any, bucket: str, proxy: CountingProxy, how: str
) -> None:
    fs = _afs(s3)
    path = f"{bucket}/cut.bin"
    if how == "exception":
        with pytest.raises(RuntimeError), fs.open(path, "wb") as f:
            f.write(os.urandom(12 * MiB))
            raise RuntimeError("interrupted")
    elif how == "close_while_failing":  # pandas' and fsspec's cleanup call plain close()
        f = fs.open(path, "wb")
        try:
            f.write(os.urandom(12 * MiB))
            raise RuntimeError("interrupted")
        except RuntimeError:
            f.close()
    elif how == "garbage":
        f = fs.open(path, "wb")
        f.write(os.urandom(12 * MiB))
        del f
        gc.collect()
    else:
        f = fs.open(path, "wb")
        f.write(os.urandom(12 * MiB))
        f.discard()
    requests = proxy.take()
    assert any(r.method == "PUT" and "partNumber=" in r.query for r in requests)
    assert any(r.method == "DELETE" and r.query.startswith("uploadId=") for r in requests)
    assert s3.ls(bucket, refresh=True) == []
    assert _uploads(s3, bucket) == []
    with pytest.raises(FileNotFoundError):
        fs.open(path, "rb")


# --- reads: bounded ranged GETs -------------------------------------------------------------

COLUMNS = 4
ROWS = 1 << 20  # 8 MiB of float64 per column


def _table() -> Any:
    import numpy as np

    rng = np.random.default_rng(7)
    return pa.table({f"c{i}": rng.random(ROWS) for i in range(COLUMNS)})


def test_parquet_column_costs_bounded_gets_and_at_most_1_1x_the_plain_bytes(
    s3: Any, bucket: str, proxy: CountingProxy
) -> None:
    table = _table()
    plain = s3fs.S3FileSystem(default_cache_type="none", **storage_options(proxy.url))
    # One row group: one column chunk per column (the bound is per column chunk).
    pq.write_table(table, f"{bucket}/plain.parquet", filesystem=plain, row_group_size=ROWS)
    fs = _afs(s3)
    pq.write_table(table, f"{bucket}/enc.parquet", filesystem=fs, row_group_size=ROWS)
    proxy.take()

    got = pq.read_table(f"{bucket}/plain.parquet", filesystem=plain, columns=["c2"])
    plain_bytes = sum(r.sent for r in gets(proxy.take()))
    fresh = _afs(s3)
    enc = pq.read_table(f"{bucket}/enc.parquet", filesystem=fresh, columns=["c2"])
    requests = proxy.take()
    assert enc.equals(got)
    enc_gets = gets(requests)
    enc_bytes = sum(r.sent for r in enc_gets)
    assert plain_bytes >= ROWS * 8
    assert enc_bytes <= 1.1 * plain_bytes, (enc_bytes, plain_bytes)
    assert all(r.range for r in enc_gets)
    # Each open: the header probe and the final chunk; pyarrow's read_table opens the file
    # three times (the first open takes what ``info`` verified).
    probes = [r for r in enc_gets if r.range == "bytes=0-2047"]
    finals = {r.range for r in enc_gets if r.sent < 64 << 10 and r not in probes}
    assert len(probes) <= 3 and len(finals) == 1
    # Then: the footer's chunk before the final one (1), and the column chunk: its two edge
    # chunks plus one GET per piece the reader's threads open (2 here, on 8 MiB).
    rest = [r for r in enc_gets if r not in probes and r.range not in finals]
    assert len(rest) <= 5, [(r.range, r.sent) for r in rest]
    assert sum(r.method == "HEAD" for r in requests) == len(probes)  # the size, per open


def test_info_then_open_verifies_once(s3: Any, bucket: str, proxy: CountingProxy) -> None:
    fs = _afs(s3)
    data = os.urandom(3 * MiB)
    fs.pipe_file(f"{bucket}/x.bin", data)
    proxy.take()
    assert fs.info(f"{bucket}/x.bin")["size"] == len(data)
    with fs.open(f"{bucket}/x.bin", "rb") as f:
        assert f.read() == data
    requests = proxy.take()
    # One HEAD (the size), one header probe, one final chunk: the open reuses what info verified.
    assert sum(r.method == "HEAD" for r in requests) == 1
    assert sum(r.range == "bytes=0-2047" for r in requests) == 1


# --- listing: a constant number of requests per object ----------------------------------------


def test_ls_of_1000_objects_costs_one_get_each_and_authenticated_sizes(
    s3: Any, bucket: str, proxy: CountingProxy
) -> None:
    fs = _afs(s3)
    fs.pipe_file(f"{bucket}/f/0.bin", b"small plaintext")
    stream = s3.cat_file(f"{bucket}/f/0.bin.ahm")
    # A stream is not bound to its name: copies of the ciphertext are files of their own.
    s3.pipe({f"{bucket}/f/{i}.bin.ahm": stream for i in range(1, 1000)})
    damaged = bytearray(stream)
    damaged[-1] ^= 1
    s3.pipe_file(f"{bucket}/f/bad.bin.ahm", bytes(damaged))
    proxy.take()
    listed = _afs(s3).ls(f"{bucket}/f", detail=True)
    requests = proxy.take()
    sizes = {e["name"].rsplit("/", 1)[1]: e["size"] for e in listed}
    assert len(sizes) == 1001
    assert sizes["999.bin"] == len(b"small plaintext")
    assert sizes["bad.bin"] is None  # fails authentication: no size shown
    listings = [r for r in requests if "list-type" in r.query]
    assert len(listings) <= 2  # pages of 1,000 keys
    # A small file: one ranged GET holds header and final chunk; nothing else per object.
    assert len(gets(requests)) == 1001
    assert len(requests) == len(listings) + 1001


# --- names ----------------------------------------------------------------------------------


def test_dask_to_parquet_writes_ahm_names_that_read_back(
    s3: Any, bucket: str, proxy: CountingProxy
) -> None:
    dd = pytest.importorskip("dask.dataframe")
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": range(40), "b": [f"v{i}" for i in range(40)]})
    options = {
        "aeshmac": {"password": PASSWORD, "kdf": CHEAP},
        "s3": storage_options(proxy.url),
    }
    url = f"aeshmac::s3://{bucket}/ds"
    dd.from_pandas(frame, npartitions=4).to_parquet(url, storage_options=options)
    stored = s3.find(bucket, refresh=True)
    assert stored and all(name.endswith(".ahm") for name in stored), stored
    assert f"{bucket}/ds/part.0.parquet.ahm" in stored
    back = dd.read_parquet(url, storage_options=options).compute()
    back = back.sort_values("a")
    assert back["a"].tolist() == frame["a"].tolist()
    assert back["b"].tolist() == frame["b"].tolist()
    fs, path = fsspec.core.url_to_fs(url, **options)
    assert sorted(fs.glob(f"{path}/*.parquet")) == [
        f"{bucket}/ds/part.{i}.parquet" for i in range(4)
    ]
    assert PASSWORD.encode() not in pickle.dumps(fs)


def _memory() -> tuple[AesHmacFileSystem, Any, str]:
    raw = fsspec.filesystem("memory")
    base = f"/n{uuid.uuid4().hex}"
    return AesHmacFileSystem(fs=raw, password=PASSWORD, kdf=CHEAP), raw, base


def test_written_names_get_the_suffix_once_and_list_without_it() -> None:
    fs, raw, base = _memory()
    fs.pipe_file(f"{base}/part.0.parquet", b"one")
    fs.pipe_file(f"{base}/given.csv.ahm", b"two")
    assert sorted(raw.ls(base, detail=False)) == [
        f"{base}/given.csv.ahm",
        f"{base}/part.0.parquet.ahm",
    ]
    assert sorted(fs.ls(base, detail=False)) == [f"{base}/given.csv", f"{base}/part.0.parquet"]
    assert fs.glob(f"{base}/*.parquet") == [f"{base}/part.0.parquet"]
    assert fs.cat_file(f"{base}/part.0.parquet") == b"one"
    assert fs.cat_file(f"{base}/part.0.parquet.ahm") == b"one"
    assert fs.info(f"{base}/given.csv")["size"] == 3
    fs.rm_file(f"{base}/part.0.parquet")
    assert raw.ls(base, detail=False) == [f"{base}/given.csv.ahm"]


def test_files_stored_without_the_suffix_still_read() -> None:
    fs, raw, base = _memory()
    plain_named = AesHmacFileSystem(fs=raw, password=PASSWORD, kdf=CHEAP, suffix="")
    plain_named.pipe_file(f"{base}/old.bin", b"written before")
    assert raw.ls(base, detail=False) == [f"{base}/old.bin"]
    assert fs.ls(base, detail=False) == [f"{base}/old.bin"]
    assert fs.cat_file(f"{base}/old.bin") == b"written before"
    assert fs.exists(f"{base}/old.bin")


def test_suffix_survives_pickling_and_is_checked() -> None:
    _, raw, base = _memory()
    copy = pickle.loads(pickle.dumps(AesHmacFileSystem(fs=raw, password=PASSWORD, suffix=".enc")))
    copy.pipe_file(f"{base}/a", b"x")
    assert raw.ls(base, detail=False) == [f"{base}/a.enc"]
    for bad in ("ahm", ".", "./x", ".a/b"):
        with pytest.raises(ValueError, match="suffix"):
            AesHmacFileSystem(fs=raw, password=PASSWORD, suffix=bad)
    with pytest.raises(TypeError, match="suffix"):
        AesHmacFileSystem(fs=raw, password=PASSWORD, suffix=io.BytesIO())


KILLED_WRITER = """
import sys, os
sys.path.insert(0, sys.argv[3])
from _s3 import storage_options
import s3fs
from aes_hmac import Scrypt
from aes_hmac.integrations.fsspec import AesHmacFileSystem
s3 = s3fs.S3FileSystem(**storage_options(sys.argv[1]))
fs = AesHmacFileSystem(fs=s3, password="pw", kdf=Scrypt(log2_n=10, r=8, p=1))
f = fs.open(sys.argv[2], "wb")
f.write(os.urandom(20 << 20))
f.flush()
print("parts uploaded", flush=True)
sys.stdin.read()
"""


@pytest.mark.slow
def test_killed_writer_leaves_no_readable_object(
    s3: Any, bucket: str, proxy: CountingProxy
) -> None:
    args = [proxy.url, f"{bucket}/killed.bin", str(Path(__file__).parent)]
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == "parts uploaded\n"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert s3.ls(bucket, refresh=True) == []
    # A killed process cannot abort its upload: it is listed (never readable as an object)
    # until a lifecycle rule or this cleanup removes it (README, "Object storage").
    uploads = _uploads(s3, bucket)
    assert [u["Key"] for u in uploads] == ["killed.bin.ahm"]
    for u in uploads:
        s3.call_s3("abort_multipart_upload", Bucket=bucket, Key=u["Key"], UploadId=u["UploadId"])
