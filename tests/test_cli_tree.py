"""``aes-hmac encrypt -r DIR -o OUTDIR`` / ``decrypt -r`` (issue 11): whole folders through the
installed script, one derivation per folder (counted by the library's own tests)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from test_cli import CHEAP, PASSWORD, assert_one_error, data_of, run

pytestmark = pytest.mark.slow
ENV = {"P": PASSWORD}


def make_tree(root: Path) -> dict[str, bytes]:
    files = {"a.txt": b"hello\n", "sub/b.bin": data_of(70_000), "sub/deep/empty": b""}
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return files


def test_folder_round_trip(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src")
    enc = run(
        [
            "encrypt",
            "-r",
            tmp_path / "src",
            "-o",
            tmp_path / "vault",
            "--password-env",
            "P",
            *CHEAP,
            "-q",
        ],
        env=ENV,
    )
    assert enc.returncode == 0, enc.stderr
    assert sorted(p.name for p in (tmp_path / "vault").rglob("*.ahm")) == [
        "a.txt.ahm",
        "b.bin.ahm",
        "empty.ahm",
    ]
    dec = run(
        ["decrypt", "-r", tmp_path / "vault", "-o", tmp_path / "back", "--password-env", "P"],
        env=ENV,
    )
    assert dec.returncode == 0, dec.stderr
    assert "decrypt: 3 files, 70006 bytes, 0 failed" in dec.stderr.decode()
    for name, data in files.items():
        assert (tmp_path / "back" / name).read_bytes() == data


def test_folder_failures_are_listed_and_exit_1(tmp_path: Path) -> None:
    make_tree(tmp_path / "src")
    os.symlink("/etc/passwd", tmp_path / "src" / "link")
    enc = run(
        [
            "encrypt",
            "-r",
            tmp_path / "src",
            "-o",
            tmp_path / "vault",
            "--password-env",
            "P",
            *CHEAP,
            "-q",
        ],
        env=ENV,
    )
    err = enc.stderr.decode()
    assert enc.returncode == 1
    assert "link is a symlink: not followed" in err and "3 files" in err and "1 failed" in err
    assert not (tmp_path / "vault" / "link.ahm").exists()
    again = run(
        [
            "encrypt",
            "-r",
            tmp_path / "src",
            "-o",
            tmp_path / "vault",
            "--password-env",
            "P",
            *CHEAP,
            "--skip-existing",
        ],
        env=ENV,
    )
    assert "3 skipped" in again.stderr.decode()
    wrong = run(
        ["decrypt", "-r", tmp_path / "vault", "-o", tmp_path / "back", "--password-env", "P"],
        env={"P": "not it"},
    )
    assert wrong.returncode == 1 and "wrong password or damaged header" in wrong.stderr.decode()
    assert not (tmp_path / "back" / "a.txt").exists()


@pytest.mark.parametrize(
    ("extra", "text"),
    [
        ([], "-r needs an output folder: -o OUTDIR"),
        (["-o", "out", "--skip-existing", "--force"], "--skip-existing and --force exclude"),
        (["-o", "out", "--armor"], "-r writes binary files"),
    ],
)
def test_folder_usage_errors(tmp_path: Path, extra: list[str], text: str) -> None:
    make_tree(tmp_path / "src")
    result = run(
        ["encrypt", "-r", tmp_path / "src", *extra, "--password-env", "P", *CHEAP],
        env=ENV,
        cwd=tmp_path,
    )
    assert_one_error(result, 2, text)


def test_folder_option_needs_a_folder(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    result = run(
        ["encrypt", "-r", tmp_path / "f", "-o", tmp_path / "o", "--password-env", "P"], env=ENV
    )
    assert_one_error(result, 2, "-r needs a folder as INPUT")
