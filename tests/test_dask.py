"""A real Dask LocalCluster (worker processes) encrypts a tree through Client.get_executor(),
then dask.dataframe reads the encrypted files back over aeshmac:: URLs, with the password
given in storage_options (only the slot keys derived from it travel) or read by each worker
from its own environment (nothing secret travels). Task names hold nothing from the password;
workers without their secret fail the task, they do not hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

cloudpickle = pytest.importorskip("cloudpickle")
distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")
pytest.importorskip("fsspec")

from aes_hmac import PBKDF2, PasswordKey  # noqa: E402
from aes_hmac._files.tree import decrypt_tree, encrypt_tree  # noqa: E402

CHEAP = PBKDF2(iterations=1000)
FILES = 100
PASSWORD = "dask test password 3c9e"


def _cluster(workers: int) -> distributed.LocalCluster:
    """A real cluster of worker processes; they get this process's environment at start."""
    return distributed.LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, memory_limit="512MiB",
        dashboard_address=None,
    )  # fmt: skip


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
    cluster = _cluster(2)
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
            # A PasswordKey travels (with the expression Dask sends its scheduler) without its
            # password; a plain string there is Dask's to ship, and it does.
            with_key = dd.read_parquet(
                f"aeshmac::file://{enc}/parquet/*.parquet.ahm",
                storage_options={"aeshmac": {"password": PasswordKey(PASSWORD, kdf=CHEAP)}},
            )
            assert PASSWORD.encode() not in cloudpickle.dumps(with_key.expr)
            assert PASSWORD.encode() in cloudpickle.dumps(parquet.expr)
            total_key = with_key["i"].sum().compute()
    finally:
        cluster.close()
    assert total_csv == 20 * sum(range(1, FILES, 2))
    assert total_parquet == total_env == total_key == 20 * sum(range(0, FILES, 2))
    assert (tmp_path / "dec" / "csv" / "part001.csv").read_bytes() == (
        src / "csv" / "part001.csv"
    ).read_bytes()


# Builds each graph the issue names and prints every name in it (graph keys and expression
# names), for one way of giving the password.
NAMES_SCRIPT = """
import json, sys
import dask.bag as db, dask.dataframe as dd, pandas as pd
from aes_hmac import PBKDF2, PasswordKey
folder, kind, password = sys.argv[1:4]
cheap = PBKDF2(iterations=1000)
given = {"str": {"password": password}, "key": {"password": PasswordKey(password, kdf=cheap)},
         "env": {"password_env": "AESHMAC_NAMES_PASSWORD"}}[kind]
so = {"aeshmac": {**given, "kdf": cheap}}
def names(coll):
    found = {str(k[0] if isinstance(k, tuple) else k) for k in coll.__dask_graph__()}
    expr = getattr(coll, "expr", None)
    if hasattr(expr, "walk") and hasattr(expr, "_name"):
        found.update(e._name for e in expr.walk())
    return sorted(found)
url = f"aeshmac::file://{folder}"
frame = dd.from_pandas(pd.DataFrame({"a": range(10)}), npartitions=2)
graphs = {
    "read_text": db.read_text(f"{url}/t.txt.ahm", storage_options=so),
    "read_csv": dd.read_csv(f"{url}/c.csv.ahm", storage_options=so),
    "read_parquet": dd.read_parquet(f"{url}/p.parquet.ahm", storage_options=so),
    "to_parquet": frame.to_parquet(f"{url}/out", storage_options=so, compute=False),
    "to_csv": frame.to_csv(f"{url}/csv/*.csv.ahm", storage_options=so, compute=False)[0],
}
print(json.dumps({k: names(v) for k, v in graphs.items()}))
"""


def _write_inputs(folder: Path, password: str) -> None:
    import fsspec

    so = {"aeshmac": {"password": password, "kdf": CHEAP}}
    with fsspec.open(f"aeshmac::file://{folder}/t.txt.ahm", "wb", **so) as f:
        f.write(b"a\nb\n")
    frame = pd.DataFrame({"a": range(5)})
    frame.to_csv(f"aeshmac::file://{folder}/c.csv.ahm", index=False, storage_options=so)
    frame.to_parquet(f"aeshmac::file://{folder}/p.parquet.ahm", storage_options=so)


def _names(folder: Path, kind: str, password: str) -> dict[str, list[str]]:
    env = {**os.environ, "AESHMAC_NAMES_PASSWORD": password}
    out = subprocess.run(
        [sys.executable, "-c", NAMES_SCRIPT, str(folder), kind, password],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    names: dict[str, list[str]] = json.loads(out.stdout)
    return names


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["str", "key", "env"])
def test_task_names_hold_nothing_derived_from_the_password(tmp_path: Path, kind: str) -> None:
    password, other = "guessable password 1", "another password 2"
    _write_inputs(tmp_path, password)
    first = _names(tmp_path, kind, password)
    # The second process is an attacker hashing the right guess with everything else the same:
    # it must not reproduce any name that depends on the password.
    second = _names(tmp_path, kind, password)
    _write_inputs(tmp_path, other)  # same paths, another password
    baseline = _names(tmp_path, kind, other)
    for graph, names in first.items():
        assert names, graph
        reproduced = set(names) & set(second[graph])
        # Only names that do not depend on the password at all (the input frame's) repeat.
        assert reproduced <= set(baseline[graph]), (graph, reproduced - set(baseline[graph]))
        assert any(name not in second[graph] for name in names), graph
        assert not any(password.replace(" ", "") in name for name in names)


@pytest.mark.slow
def test_workers_lacking_password_env_fail_the_task_in_the_client(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = "AESHMAC_TEST_ABSENT_ON_WORKERS"
    frame = pd.DataFrame({"i": range(20)})
    frame.to_csv(
        f"aeshmac::file://{tmp_path}/x.csv.ahm",
        index=False,
        storage_options={"aeshmac": {"password": PASSWORD, "kdf": CHEAP}},
    )
    monkeypatch.delenv(name, raising=False)  # the workers start without it
    cluster = _cluster(1)
    try:
        with distributed.Client(cluster) as client:
            monkeypatch.setenv(name, PASSWORD)  # only the client has it
            csv = dd.read_csv(
                f"aeshmac::file://{tmp_path}/x.csv.ahm",
                storage_options={"aeshmac": {"password_env": name}},
            )
            started = time.monotonic()
            with pytest.raises(ValueError, match=name):
                client.compute(csv["i"].sum()).result(timeout=120)
            # Generous bound: before, the workers died unpickling and this never returned.
            assert time.monotonic() - started < 60
    finally:
        cluster.close()
