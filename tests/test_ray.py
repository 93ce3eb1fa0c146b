"""Ray Data on a real local Ray instance (2 CPUs, worker processes) reads and writes encrypted
Parquet over ``aeshmac::`` through ``aes_hmac.integrations.ray``: a 20-file dataset, names that
end in ``.ahm``, the password never in anything Ray ships or logs, and a worker without its
secret failing its task with an error naming the variable. One ``ray.init`` for the module."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest

if os.environ.get("CI") == "true":  # scripts/_venv.sh installs the extra: CI must run these
    import pandas as pd
    import ray
    import ray.data
else:
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

import fsspec
from pyarrow.fs import FSSpecHandler, PyFileSystem

import aes_hmac
from aes_hmac import PBKDF2
from aes_hmac.integrations import ray as ahm_ray

CHEAP = PBKDF2(iterations=1000)
PASSWORD = "ray test password 7f31c"
ENV = "AESHMAC_RAY_TEST_PASSWORD"
"""Set before ``ray.init``, so the worker processes Ray starts have it."""
ENV_MISSING = "AESHMAC_RAY_TEST_DRIVER_ONLY"
"""Set only in this process after ``ray.init``: the workers never see it."""
FILES = 20
ROWS = 50


@pytest.fixture(scope="module")
def ray_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A local Ray instance whose logs all land in a folder the tests can search."""
    temp = tmp_path_factory.mktemp("ray")
    old = os.environ.get(ENV)
    os.environ[ENV] = PASSWORD
    ray.init(
        num_cpus=2, include_dashboard=False, _temp_dir=str(temp), log_to_driver=False
    )  # fmt: skip
    try:
        yield temp
    finally:
        ray.shutdown()
        if old is None:
            del os.environ[ENV]
        else:
            os.environ[ENV] = old


def _options(**secret: object) -> dict[str, dict[str, object]]:
    return {"aeshmac": {"kdf": CHEAP, **(secret or {"password": PASSWORD})}}


def _dataset(folder: Path) -> pd.DataFrame:
    """FILES encrypted Parquet files named ``part-NN.parquet.ahm``; returns their rows."""
    fs = fsspec.filesystem("aeshmac", target_protocol="file", password=PASSWORD, kdf=CHEAP)
    folder.mkdir()
    frames = []
    for i in range(FILES):
        frame = pd.DataFrame({"file": [i] * ROWS, "n": range(i * ROWS, (i + 1) * ROWS)})
        with fs.open(str(folder / f"part-{i:02}.parquet.ahm"), "wb") as f:
            frame.to_parquet(f)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("n").reset_index(drop=True)[["file", "n"]]


def test_20_encrypted_files_read_then_written_as_ahm_streams(ray_dir: Path, tmp_path: Path) -> None:
    # Ray's own read_parquet with the filesystem lists only "*.parquet": it found no files.
    expected = _dataset(tmp_path / "in")
    url = f"aeshmac::file://{tmp_path / 'in'}"
    ds = ahm_ray.read_parquet(url, storage_options=_options(), include_paths=True).materialize()
    got = ds.to_pandas()
    assert got["path"].nunique() == FILES
    pd.testing.assert_frame_equal(_sorted(got), _sorted(expected), check_dtype=False)

    out = f"aeshmac::file://{tmp_path / 'out'}"
    ahm_ray.write_parquet(
        ds.drop_columns(["path"]).repartition(FILES), out, storage_options=_options()
    )
    names = sorted(os.listdir(tmp_path / "out"))
    assert len(names) >= 2
    assert all(name.endswith(".parquet.ahm") for name in names), names
    for name in names:
        raw = (tmp_path / "out" / name).read_bytes()
        assert b"PAR1" not in raw  # no plaintext Parquet framing on disk
        with aes_hmac.open_seekable(tmp_path / "out" / name, password=PASSWORD) as f:
            assert f.read(4) == b"PAR1"  # an aes-hmac stream of a Parquet file
    back = ahm_ray.read_parquet(out, storage_options=_options()).to_pandas()
    pd.testing.assert_frame_equal(_sorted(back), _sorted(expected), check_dtype=False)


def test_password_env_workers_read_and_write_and_nothing_carries_the_password(
    ray_dir: Path, tmp_path: Path
) -> None:
    expected = _dataset(tmp_path / "in")
    options = _options(password_env=ENV)
    url = f"aeshmac::file://{tmp_path / 'in'}"
    ds = ahm_ray.read_parquet(url, storage_options=options).materialize()
    pd.testing.assert_frame_equal(_sorted(ds.to_pandas()), _sorted(expected), check_dtype=False)
    ahm_ray.write_parquet(ds, f"aeshmac::file://{tmp_path / 'out'}", storage_options=options)
    written = sorted((tmp_path / "out").iterdir())
    assert written and all(path.name.endswith(".parquet.ahm") for path in written)
    with aes_hmac.open_seekable(written[0], password=PASSWORD) as f:
        assert f.read(4) == b"PAR1"
    # What Ray pickles and ships (the pyarrow wrapper of the filesystem), what it prints, and
    # every log and spill file of this module's runs (password= ones included) hold no password.
    secret = PASSWORD.encode()
    for opts in (options, _options()):
        fs, _ = ahm_ray.resolve(url, opts)
        assert secret not in ray.cloudpickle.dumps(PyFileSystem(FSSpecHandler(fs)))
        assert secret not in pickle.dumps(fs) and PASSWORD not in repr(fs)
    assert PASSWORD not in repr(ds) and PASSWORD not in ds.stats()
    for path in ray_dir.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert secret not in path.read_bytes(), path


def test_worker_without_its_secret_fails_its_task_clearly(
    ray_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _dataset(tmp_path / "in")
    monkeypatch.setenv(ENV_MISSING, PASSWORD)  # the driver has it, the running workers do not
    url = f"aeshmac::file://{tmp_path / 'in'}"
    ds = ahm_ray.read_parquet(url, storage_options=_options(password_env=ENV_MISSING))
    with pytest.raises(Exception, match=f"environment variable {ENV_MISSING} is not set") as info:
        ds.materialize()
    assert PASSWORD not in str(info.value)


def test_urls_outside_aeshmac_are_refused(tmp_path: Path) -> None:
    for url in (str(tmp_path), f"file://{tmp_path}", f"memory://{tmp_path}"):
        with pytest.raises(ValueError, match="url must be chained through the aeshmac protocol"):
            ahm_ray.resolve(url, {})
    with pytest.raises(TypeError, match="url must be a str"):
        ahm_ray.resolve(tmp_path, {})  # type: ignore[arg-type]


@pytest.mark.parametrize("damage", ["cut", "flip"])
def test_a_file_that_does_not_authenticate_fails_the_read(
    ray_dir: Path, tmp_path: Path, damage: str
) -> None:
    """Review finding (issue 19): the listing marks a file that fails authentication with size
    None and Ray dropped it, returning the other files' rows with no error."""
    _dataset(tmp_path / "in")
    victim = tmp_path / "in" / "part-07.parquet.ahm"
    data = bytearray(victim.read_bytes())
    if damage == "cut":
        del data[-100:]
    else:
        data[-40] ^= 1  # inside the final chunk's tag: the listing cannot authenticate it
    victim.write_bytes(bytes(data))
    url = f"aeshmac::file://{tmp_path / 'in'}"
    with pytest.raises(aes_hmac.DecryptionError):
        ahm_ray.read_parquet(url, storage_options=_options()).materialize()
    with pytest.raises(aes_hmac.DecryptionError):
        ahm_ray.read_parquet(f"{url}/part-07.parquet.ahm", storage_options=_options())
