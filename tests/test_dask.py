"""A real Dask LocalCluster (worker processes) encrypts a tree through Client.get_executor(),
then dask.dataframe reads the encrypted files back over aeshmac:: URLs, with the password
given in storage_options (only the slot keys derived from it travel) or read by each worker from its own
environment (nothing secret travels)."""

from __future__ import annotations

from pathlib import Path

import pytest

cloudpickle = pytest.importorskip("cloudpickle")
distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
pytest.importorskip("fsspec")

from aes_hmac import PBKDF2  # noqa: E402
from aes_hmac._tree import decrypt_tree, encrypt_tree  # noqa: E402

CHEAP = PBKDF2(iterations=1000)
FILES = 100
PASSWORD = "dask test password 3c9e"


def test_local_cluster_encrypts_a_tree_and_dask_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    for i in range(FILES):
        folder = src / ("csv" if i % 2 else "parquet")
        folder.mkdir(parents=True, exist_ok=True)
        frame = pd.DataFrame({"i": [i] * 20, "j": range(20)})
        if i % 2:
            frame.to_csv(folder / f"part{i:03}.csv", index=False)
        else:
            frame.to_parquet(folder / f"part{i:03}.parquet")
    # Worker processes start with this process's environment, as a deployment would set it.
    monkeypatch.setenv("AESHMAC_TEST_PASSWORD", PASSWORD)
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, memory_limit="512MiB",
        dashboard_address=None,
    )  # fmt: skip
    try:
        with distributed.Client(cluster) as client:
            executor = client.get_executor()
            result = encrypt_tree(src, tmp_path / "enc", PASSWORD, kdf=CHEAP, executor=executor)
            assert result.ok and result.files == FILES
            back = decrypt_tree(tmp_path / "enc", tmp_path / "dec", PASSWORD, executor=executor)
            assert back.ok and back.files == FILES
            options = {"aeshmac": {"password": PASSWORD}}
            enc = tmp_path / "enc"
            csv = dd.read_csv(f"aeshmac::file://{enc}/csv/*.csv.ahm", storage_options=options)
            parquet = dd.read_parquet(
                f"aeshmac::file://{enc}/parquet/*.parquet.ahm", storage_options=options
            )
            total_csv = csv["i"].sum().compute()
            total_parquet = parquet["i"].sum().compute()
            assert len(csv) == len(parquet) == FILES // 2 * 20
            # The workers read with the slot keys the client derived; the password stays here.
            assert PASSWORD.encode() not in cloudpickle.dumps(dict(parquet.__dask_graph__()))
            from_env = dd.read_parquet(
                f"aeshmac::file://{enc}/parquet/*.parquet.ahm",
                storage_options={"aeshmac": {"password_env": "AESHMAC_TEST_PASSWORD"}},
            )
            assert PASSWORD.encode() not in cloudpickle.dumps(dict(from_env.__dask_graph__()))
            total_env = from_env["i"].sum().compute()
    finally:
        cluster.close()
    assert total_csv == 20 * sum(range(1, FILES, 2))
    assert total_parquet == total_env == 20 * sum(range(0, FILES, 2))
    assert (tmp_path / "dec" / "csv" / "part001.csv").read_bytes() == (
        src / "csv" / "part001.csv"
    ).read_bytes()
