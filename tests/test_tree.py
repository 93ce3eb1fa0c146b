"""Tests of encrypt_tree / decrypt_tree: mirrored layout, one derivation, symlinks, existing
outputs, failures, progress, and executors (threads and processes)."""

from __future__ import annotations

import os
import pickle
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import aes_hmac
from aes_hmac import PBKDF2, HeaderError
from aes_hmac._stream import read_header
from aes_hmac._tree import BatchCredential, decrypt_tree, encrypt_tree

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


def test_symlinks_are_never_followed(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", 3)
    outside = tmp_path / "secret.txt"
    outside.write_bytes(b"outside the tree")
    (tmp_path / "src" / "link.txt").symlink_to(outside)
    (tmp_path / "src" / "linkdir").symlink_to(tmp_path, target_is_directory=True)
    result = encrypt_tree(tmp_path / "src", tmp_path / "enc", "pw", kdf=CHEAP)
    assert result.files == 3
    assert sorted(Path(p).name for p, _ in result.failures) == ["link.txt", "linkdir"]
    assert not (tmp_path / "enc" / "link.txt.ahm").exists()
    assert not (tmp_path / "enc" / "linkdir").exists()


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
    cred = BatchCredential.of(aes_hmac._credential.to_credential("hunter2", kdf=CHEAP))
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
    with pytest.raises(ValueError, match="contain"):
        encrypt_tree(tmp_path / "src", tmp_path / "src" / "enc", "pw")
    with pytest.raises(ValueError, match="folder"):
        encrypt_tree(tmp_path / "nope", tmp_path / "enc", "pw")
    with pytest.raises(TypeError, match="password"):
        encrypt_tree(tmp_path / "src", tmp_path / "enc")
