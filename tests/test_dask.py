"""A real Dask LocalCluster (worker processes) encrypts a tree through Client.get_executor(),
then dask.dataframe reads the encrypted files back over aeshmac:: URLs."""

from __future__ import annotations

from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
pytest.importorskip("fsspec")

from aes_hmac import PBKDF2  # noqa: E402
from aes_hmac._tree import decrypt_tree, encrypt_tree  # noqa: E402

CHEAP = PBKDF2(iterations=1000)
FILES = 100


def test_local_cluster_encrypts_a_tree_and_dask_reads_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    for i in range(FILES):
        folder = src / ("csv" if i % 2 else "parquet")
        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"i": [i] * 20, "j": range(20)})
        if i % 2:
            frame.to_csv(folder / f"part{i:03}.csv", index=False)
        else:
            frame.to_parquet(folder / f"part{i:03}.parquet")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit="512MiB",
        dashboard_address=None,
    )  # fmt: skip
    try:
        with distributed.Client(cluster) as client:
            executor = client.get_executor()
            result = encrypt_tree(src, tmp_path / "enc", "pw", kdf=CHEAP, executor=executor)
            assert result.ok and result.files == FILES
            back = decrypt_tree(tmp_path / "enc", tmp_path / "dec", "pw", executor=executor)
            assert back.ok and back.files == FILES
            options = {"aeshmac": {"password": "pw"}}
            enc = tmp_path / "enc"
            csv = dd.read_csv(f"aeshmac::file://{enc}/csv/*.csv.ahm", storage_options=options)
            parquet = dd.read_parquet(
                f"aeshmac::file://{enc}/parquet/*.parquet.ahm", storage_options=options
            )
            total_csv = csv["i"].sum().compute()
            total_parquet = parquet["i"].sum().compute()
            assert len(csv) == len(parquet) == FILES // 2 * 20
    finally:
        cluster.close()
    assert total_csv == 20 * sum(range(1, FILES, 2))
    assert total_parquet == 20 * sum(range(0, FILES, 2))
    assert (tmp_path / "dec" / "csv" / "part001.csv").read_bytes() == (
        src / "csv" / "part001.csv"
    ).read_bytes()
