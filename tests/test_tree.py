"""Tests of encrypt_tree / decrypt_tree: mirrored layout, one derivation, symlinks, existing
outputs, failures, progress, and executors (threads and processes)."""

from __future__ import annotations

import os
import pickle
import pwd
import socket
import stat
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

import aes_hmac
from aes_hmac import PBKDF2, HeaderError
from aes_hmac._files.tree import BatchCredential, decrypt_tree, encrypt_tree
from aes_hmac._stream.format import read_header

CHEAP = PBKDF2(iterations=1000)


def make_tree(root: Path, n: int = 12) -> dict[str, bytes]:
    files = {}
    for i in range(n):
        rel = f"d{i % 3}/sub{i % 2}/f{i}.dat" if i % 4 else f"top{i}.txt"
        data = os.urandom(i * 1500)
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
        files[rel] = data
    return files


@pytest.fixture
def derivations(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Counts PBKDF2 runs by wrapping the KDF's derive (counting only; the real derive runs)."""
    calls: list[bytes] = []
    real = PBKDF2.derive

    def counted(self: PBKDF2, password: bytes, salt: bytes) -> bytes:
        calls.append(salt)
        return real(self, password, salt)

    monkeypatch.setattr(PBKDF2, "derive", counted)
    return calls


def test_round_trip_with_one_derivation_each_way(tmp_path: Path, derivations: list[bytes]) -> None:
    files = make_tree(tmp_path / "src")
    result = encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP, chunk_size=4096)
    assert (
        result.ok and result.files == len(files) and result.bytes == sum(map(len, files.values()))
    )
    assert len(derivations) == 1
    salts = set()
    for rel in files:
        with open(tmp_path / "enc" / (rel + ".ahm"), "rb") as f:
            header = read_header(f.read)
        salts.add(header.slots[0].salt)
        with open(tmp_path / "enc" / (rel + ".ahm"), "rb") as f:
            assert aes_hmac.open(f, password="pw").read() == files[rel]
    assert len(salts) == 1  # one batch, one salt: files of a batch are linkable
    derivations.clear()
    back = decrypt_tree(tmp_path / "enc", tmp_path / "dec", "pw")
    assert back.ok and back.files == len(files)
    assert len(derivations) == 1
    for rel, data in files.items():
        assert (tmp_path / "dec" / rel).read_bytes() == data


def test_each_file_has_its_own_file_key_and_stream_id(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", 4)
    encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP)
    headers = []
    for path in sorted((tmp_path / "enc").rglob("*.ahm")):
        with open(path, "rb") as f:
            headers.append(read_header(f.read))
    assert len({h.stream_id for h in headers}) == len(headers)
    assert len({h.slots[0].wrapped for h in headers}) == len(headers)


def test_links_fifos_and_sockets_are_skipped_and_listed_not_failures(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", 3)
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"outside the tree")
    (tmp_path / "src" / "link.txt").symlink_to(outside)
    (tmp_path / "src" / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    os.mkfifo(tmp_path / "src" / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "src" / "sock"))
        result = encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP)
    assert result.ok and result.files == 3
    assert sorted((Path(p).name, why) for p, why in result.skipped_entries) == [
        ("link.txt", "symlink, not followed"),
        ("linkdir", "symlink, not followed"),
        ("pipe", "FIFO"),
        ("sock", "socket"),
    ]
    assert str(tmp_path / "src" / "link.txt") in dict(result.skipped_entries)
    assert sorted(p.name for p in (tmp_path / "enc").iterdir()) == [
        ".aes-hmac-manifest",
        "d1",
        "d2",
        "top0.txt.ahm",
    ]


def test_empty_folders_are_recreated_both_ways(tmp_path: Path) -> None:
    (tmp_path / "src" / "empty").mkdir(parents=True)
    (tmp_path / "src" / "a" / "b" / "emptier").mkdir(parents=True)
    (tmp_path / "src" / "a" / "f.txt").write_bytes(b"data")
    assert encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP).ok
    assert (tmp_path / "enc" / "empty").is_dir()
    assert (tmp_path / "enc" / "a" / "b" / "emptier").is_dir()
    assert decrypt_tree(tmp_path / "enc", tmp_path / "dec", "pw").files == 1
    assert (tmp_path / "dec" / "empty").is_dir() and not list(
        (tmp_path / "dec" / "empty").iterdir()
    )
    assert (tmp_path / "dec" / "a" / "b" / "emptier").is_dir()
    assert (tmp_path / "dec" / "a" / "f.txt").read_bytes() == b"data"


def test_a_link_planted_in_the_output_tree_is_refused(tmp_path: Path, nameless: bool) -> None:
    (tmp_path / "src" / "reports").mkdir(parents=True)
    (tmp_path / "src" / "reports" / "q3.txt").write_bytes(b"quarterly numbers")
    (tmp_path / "src" / "top.txt").write_bytes(b"top")
    encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "restore").mkdir()
    (tmp_path / "restore" / "reports").symlink_to(elsewhere, target_is_directory=True)
    (tmp_path / "restore" / "top.txt").symlink_to(elsewhere / "top.txt")
    result = decrypt_tree(tmp_path / "enc", tmp_path / "restore", "pw", existing="overwrite")
    assert not list(elsewhere.iterdir())  # nothing written through either link
    reasons = {Path(p).name: str(e) for p, e in result.failures}
    assert "output folder" in reasons["reports"] and "not followed" in reasons["reports"]
    assert "symlink: not followed" in reasons["top.txt.ahm"]
    assert (tmp_path / "restore" / "reports").is_symlink()


@pytest.fixture(params=[True, False], ids=["O_TMPFILE", "fallback"])
def nameless(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways an output file is made: nameless (Linux), or the named fallback."""
    if not request.param:
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    return bool(request.param)


def test_overwrite_does_not_lend_a_planted_files_mode(tmp_path: Path, nameless: bool) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "q3.txt").write_bytes(b"salaries")
    encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP)
    planted = tmp_path / "restore" / "q3.txt"
    planted.parent.mkdir()
    planted.write_bytes(b"planted")
    planted.chmod(0o666)
    stale = planted.parent / ".q3.txt.aes-hmac-tmp-0123456789ab"  # left by a killed run
    stale.write_bytes(b"old plaintext")
    os.utime(stale, (0, 0))
    assert decrypt_tree(tmp_path / "enc", tmp_path / "restore", "pw", existing="overwrite").ok
    assert planted.read_bytes() == b"salaries"
    assert stat.S_IMODE(planted.stat().st_mode) == 0o600
    left = {p.name for p in planted.parent.iterdir()}
    assert left == ({"q3.txt", stale.name} if nameless else {"q3.txt"})  # fallback removes it


class SwapBefore(Executor):
    """A real executor that runs each job at once in the calling thread, first calling
    ``swap`` before the job numbered ``at``: a hook between the walk and the files."""

    def __init__(self, at: int, swap: Callable[[], None]) -> None:
        self.at, self.swap, self.count = at, swap, 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self.count == self.at:
            self.swap()
        self.count += 1
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


def test_a_source_folder_swapped_for_a_link_mid_run_is_not_followed(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        (tmp_path / "src" / folder).mkdir(parents=True)
        (tmp_path / "src" / folder / "f.txt").write_bytes(b"inside " + folder.encode())
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "f.txt").write_bytes(b"OUTSIDE SECRET")

    def swap() -> None:
        (tmp_path / "src" / "b").rename(tmp_path / "b-moved")
        (tmp_path / "src" / "b").symlink_to(tmp_path / "outside", target_is_directory=True)

    result = encrypt_tree(
        tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP, executor=SwapBefore(1, swap)
    )
    assert result.files == 1 and len(result.failures) == 1
    path, exc = result.failures[0]
    assert path == str(tmp_path / "src" / "b" / "f.txt")
    assert "input folder" in str(exc) and "not followed" in str(exc)
    assert not (tmp_path / "enc" / "b" / "f.txt.ahm").exists()


def test_a_file_replaced_by_a_fifo_after_the_walk_never_blocks(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    for name in ("a.txt", "b.txt"):
        (tmp_path / "src" / name).write_bytes(b"data")
    fifo = tmp_path / "src" / "b.txt"

    def swap() -> None:
        fifo.unlink()
        os.mkfifo(fifo)

    results: list[aes_hmac.TreeResult] = []
    run = threading.Thread(
        target=lambda: results.append(
            encrypt_tree(
                tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP, executor=SwapBefore(1, swap)
            )
        ),
        daemon=True,
    )
    run.start()
    run.join(30)  # a generous bound: the run takes milliseconds; a blocked open never ends
    if run.is_alive():  # unblock the reader so the test process can exit, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("the run blocked on a FIFO")
    [result] = results
    assert result.files == 1
    [(path, exc)] = result.failures
    assert path == str(fifo) and "not a regular file" in str(exc)
    assert not (tmp_path / "enc" / "b.txt.ahm").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="planting another user's link needs root")
def test_an_output_folder_that_is_another_users_link_in_a_shared_folder_is_refused(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f.txt").write_bytes(b"data")
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.mkdir()
    link = shared / "out"
    link.symlink_to(victim, target_is_directory=True)
    nobody = pwd.getpwnam("nobody")
    os.lchown(link, nobody.pw_uid, nobody.pw_gid)
    with pytest.raises(ValueError, match=r"output folder .* another user"):
        encrypt_tree(tmp_path / "src", link, "pw", kdf=CHEAP)
    assert not list(victim.iterdir())


def test_existing_outputs_error_skip_overwrite(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", 4)
    encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP)
    again = encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP)
    assert again.files == 0 and len(again.failures) == 4
    assert all(isinstance(e, FileExistsError) for _, e in again.failures)
    skipped = encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP, existing="skip")
    assert skipped.files == 0 and skipped.skipped == 4 and skipped.ok
    over = encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw2", kdf=CHEAP, existing="overwrite")
    assert over.files == 4
    assert decrypt_tree(tmp_path / "enc", tmp_path / "dec", "pw2").ok


def test_one_failure_does_not_stop_the_others_unless_asked(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src", 6)
    encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP, chunk_size=4096)
    bad = tmp_path / "enc" / "d1" / "sub1" / "f1.dat.ahm"
    raw = bytearray(bad.read_bytes())
    raw[-1] ^= 1
    bad.write_bytes(bytes(raw))
    result = decrypt_tree(tmp_path / "enc", tmp_path / "dec", "pw")
    assert result.files == len(files) - 1
    assert [Path(p).name for p, _ in result.failures] == ["f1.dat.ahm"]
    assert not (tmp_path / "dec" / "d1" / "sub1" / "f1.dat").exists()
    assert not list((tmp_path / "dec").rglob("*aes-hmac-tmp*"))
    wrong = decrypt_tree(tmp_path / "enc", tmp_path / "dec2", "nope", stop_on_error=True)
    assert wrong.files == 0 and all(isinstance(e, HeaderError) for _, e in wrong.failures)


def test_progress_covers_all_bytes(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src", 8)
    seen: list[tuple[int, int]] = []
    encrypt_tree(
        tmp_path / "src",
        tmp_path / "enc",
        "pw",
        kdf=CHEAP,
        progress=lambda d, t: seen.append((d, t)),
    )
    total = sum(map(len, files.values()))
    assert seen[-1] == (total, total) and len(seen) == len(files)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_keyboard_interrupt_cancels_queued_files_and_abandons_running_ones(
    tmp_path: Path,
) -> None:
    (tmp_path / "src").mkdir()
    block = os.urandom(1 << 20)
    for i in range(40):
        (tmp_path / "src" / f"f{i:02}.bin").write_bytes(block * 4)

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt  # in the main thread, as Ctrl-C arrives, after the first file

    with pytest.raises(KeyboardInterrupt):
        encrypt_tree(
            tmp_path / "src",
            tmp_path / "enc",
            "pw",
            kdf=CHEAP,
            chunk_size=1 << 16,
            progress=interrupt,
        )
    # Checked right away: files still running were abandoned before the call returned.
    left = sorted(p.name for p in (tmp_path / "enc").iterdir())
    assert not [name for name in left if "aes-hmac-tmp" in name]
    assert ".aes-hmac-manifest" not in left  # a stopped run writes no manifest
    assert 1 <= len(left) < 40
    for name in left:
        with open(tmp_path / "enc" / name, "rb") as f:
            assert aes_hmac.open(f, password="pw").read() == block * 4


def test_process_executor_gets_no_password(tmp_path: Path) -> None:
    files = make_tree(tmp_path / "src", 6)
    with ProcessPoolExecutor(2) as pool:
        result = encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP, executor=pool)
        assert result.ok and result.files == 6
        back = decrypt_tree(tmp_path / "enc", tmp_path / "dec", "pw", executor=pool)
        assert back.ok
    for rel, data in files.items():
        assert (tmp_path / "dec" / rel).read_bytes() == data


def test_batch_credential_pickles_without_the_password() -> None:
    cred = BatchCredential.of(aes_hmac._keys.credentials.to_credential("hunter2", kdf=CHEAP))
    salt = b"s" * 16
    master = cred.master(salt)
    wire = pickle.dumps(cred)
    assert b"hunter2" not in wire
    copy = pickle.loads(wire)
    assert copy.master(salt) == master
    with pytest.raises(HeaderError):
        copy.master(b"t" * 16)
    assert "hunter2" not in repr(cred)


def test_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    with pytest.raises(ValueError, match="existing"):
        encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", existing="maybe")
    with pytest.raises(ValueError, match=r"output folder .*enc is inside the input folder .*src"):
        encrypt_tree(tmp_path / "src", tmp_path / "src" / "enc", "pw")
    with pytest.raises(ValueError, match=r"input folder .*src is inside the output folder"):
        encrypt_tree(tmp_path / "src", tmp_path, "pw")
    with pytest.raises(ValueError, match=r"output folder .*src is the input folder"):
        encrypt_tree(tmp_path / "src", tmp_path / "src", "pw")
    with pytest.raises(ValueError, match=r"input folder .*nope does not exist"):
        encrypt_tree(tmp_path / "nope", tmp_path / "enc", "pw")
    with pytest.raises(TypeError, match="password"):
        encrypt_tree(tmp_path / "src", tmp_path / "enc")
