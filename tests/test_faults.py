"""Fault injection: a full disk at every chunk boundary, a real full tmpfs, the CLI killed mid-file.

After every fault: the error reaches the caller, nothing exists at the destination, no partial
plaintext is left anywhere except a recognizably named temporary file after SIGKILL, the source
is untouched (same hash), and running the same operation again succeeds.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _writing import wait_for_output

import aes_hmac
from aes_hmac import PBKDF2
from aes_hmac._files import atomic as _atomic

CHUNK = 4096
STEP = CHUNK + 48  # encrypted size of a full chunk (FORMAT.md 3.4)
CHEAP = PBKDF2(iterations=1000)
PASSWORD = "fault injection"
PLAIN = bytes(range(256)) * (5 * CHUNK // 256) + b"tail of the plaintext"
BIG_SIZE = 384 * 1024 * 1024  # large enough that the CLI is still mid-file when the signal lands
CLI = [sys.executable, "-m", "aes_hmac"]


def digest(path: Path) -> str:
    """SHA-256 of a file, read in 1 MiB pieces."""
    sha = hashlib.sha256()
    with path.open("rb") as f:
        while piece := f.read(1 << 20):
            sha.update(piece)
    return sha.hexdigest()


def leftovers(folder: Path, *expected: Path) -> list[str]:
    """Names in ``folder`` other than ``expected``."""
    keep = {p.name for p in expected}
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


class DiskFull:
    """Wraps a writable file: accepts ``capacity`` bytes, then fails like a full disk (ENOSPC).

    Like a real file system, a write that does not fit stores what fits before failing.
    """

    def __init__(self, inner: Any, capacity: int) -> None:
        self.inner = inner
        self.capacity = capacity
        self.written = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        room = self.capacity - self.written
        if len(view) > room:
            self.inner.write(view[:room])
            self.written += room
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.written += len(view)
        return int(self.inner.write(view))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def __enter__(self) -> DiskFull:
        return self

    def __exit__(self, *exc: object) -> None:
        self.inner.close()


class FullDiskBuiltins:
    """Stands in for ``builtins`` in ``_files.atomic``: temporary outputs (opened by fd) fill up."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity

    def open(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        real = builtins.open(file, mode, *args, **kwargs)
        if isinstance(file, int) and "w" in mode:
            return DiskFull(real, self.capacity)
        return real

    def __getattr__(self, name: str) -> Any:
        return getattr(builtins, name)


def boundaries(total: int, first: int, step: int) -> list[int]:
    """Every chunk boundary of an output (``first``, then each ``step``) and a byte either side."""
    points = {0, total - 1}
    for edge in range(first, total, step):
        points.update({edge - 1, edge, edge + 1})
    return sorted(p for p in points if 0 <= p < total)


def _header_size() -> int:
    out = io.BytesIO()
    aes_hmac.encrypt_stream(io.BytesIO(b""), out, PASSWORD, kdf=CHEAP, chunk_size=CHUNK)
    return len(out.getvalue()) - 64


def test_encrypt_stream_disk_full_at_every_boundary() -> None:
    sealed = io.BytesIO()
    aes_hmac.encrypt_stream(io.BytesIO(PLAIN), sealed, key=bytes(32), chunk_size=CHUNK)
    header = len(sealed.getvalue()) - (len(PLAIN) // CHUNK) * STEP - (len(PLAIN) % CHUNK + 64)
    for capacity in boundaries(len(sealed.getvalue()), header, STEP):
        sink = DiskFull(io.BytesIO(), capacity)
        with pytest.raises(OSError) as info:
            aes_hmac.encrypt_stream(
                io.BytesIO(PLAIN),
                sink,
                key=bytes(32),
                chunk_size=CHUNK,
                workers=1,  # type: ignore[arg-type]
            )
        assert info.value.errno == errno.ENOSPC, capacity


def test_decrypt_stream_disk_full_releases_only_verified_chunks() -> None:
    sealed = io.BytesIO()
    aes_hmac.encrypt_stream(io.BytesIO(PLAIN), sealed, key=bytes(32), chunk_size=CHUNK)
    for capacity in boundaries(len(PLAIN), CHUNK, CHUNK):
        inner = io.BytesIO()
        with pytest.raises(OSError) as info:
            aes_hmac.decrypt_stream(
                io.BytesIO(sealed.getvalue()),
                DiskFull(inner, capacity),
                key=bytes(32),  # type: ignore[arg-type]
            )
        assert info.value.errno == errno.ENOSPC
        assert PLAIN.startswith(inner.getvalue())


@pytest.fixture
def files(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    """A plaintext file and its encryption (5 full chunks and a short one), and an output path."""
    src = tmp_path / "plain.bin"
    src.write_bytes(PLAIN)
    enc = tmp_path / "plain.bin.ahm"
    aes_hmac.encrypt_file(src, enc, PASSWORD, kdf=CHEAP, chunk_size=CHUNK)
    yield src, enc, tmp_path / "out"


def test_encrypt_file_disk_full_at_every_boundary(
    files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, enc, out = files
    before = digest(src)
    for capacity in boundaries(enc.stat().st_size, _header_size(), STEP):
        monkeypatch.setattr(_atomic, "builtins", FullDiskBuiltins(capacity))
        with pytest.raises(OSError) as info:
            aes_hmac.encrypt_file(src, out, PASSWORD, kdf=CHEAP, chunk_size=CHUNK)
        assert info.value.errno == errno.ENOSPC
        assert leftovers(out.parent, src, enc) == [], capacity
    monkeypatch.undo()
    assert digest(src) == before
    aes_hmac.encrypt_file(src, out, PASSWORD, kdf=CHEAP, chunk_size=CHUNK)
    check = out.parent / "check"
    aes_hmac.decrypt_file(out, check, PASSWORD)
    assert check.read_bytes() == PLAIN


def test_decrypt_file_disk_full_at_every_boundary(
    files: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    src, enc, out = files
    before = digest(enc)
    for capacity in boundaries(len(PLAIN), CHUNK, CHUNK):
        monkeypatch.setattr(_atomic, "builtins", FullDiskBuiltins(capacity))
        with pytest.raises(OSError) as info:
            aes_hmac.decrypt_file(enc, out, PASSWORD)
        assert info.value.errno == errno.ENOSPC
        assert leftovers(out.parent, src, enc) == [], capacity
    monkeypatch.undo()
    assert digest(enc) == before
    aes_hmac.decrypt_file(enc, out, PASSWORD)
    assert out.read_bytes() == PLAIN


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 KiB tmpfs, mounted for the test (skipped where mounting is not allowed)."""
    mount = tmp_path / "tmpfs"
    mount.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command on this machine")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def fill(mount: Path, free: int) -> Path:
    """Fill ``mount`` until only ``free`` bytes (rounded to pages) remain; returns the filler."""
    filler = mount / "filler"
    stat = os.statvfs(mount)
    size = stat.f_bavail * stat.f_frsize - free
    filler.write_bytes(b"\xff" * max(0, size))
    return filler


@pytest.mark.parametrize("free_pages", [0, 1, 2, 3, 4, 5])  # output needs 6 pages
def test_real_full_tmpfs(free_pages: int, files: tuple[Path, Path, Path], tmpfs: Path) -> None:
    """encrypt_file and decrypt_file into a tmpfs that fills up part way (pages of 4 KiB)."""
    src, enc, _ = files
    before = (digest(src), digest(enc))
    for source, name in ((src, "out.ahm"), (enc, "out.bin")):
        filler = fill(tmpfs, free_pages * 4096)
        target = tmpfs / name
        with pytest.raises(OSError) as info:
            if source is src:
                aes_hmac.encrypt_file(source, target, PASSWORD, kdf=CHEAP, chunk_size=CHUNK)
            else:
                aes_hmac.decrypt_file(source, target, PASSWORD)
        assert info.value.errno == errno.ENOSPC
        assert leftovers(tmpfs, filler) == []
        filler.unlink()
    assert (digest(src), digest(enc)) == before
    aes_hmac.decrypt_file(enc, tmpfs / "out.bin", PASSWORD)
    assert (tmpfs / "out.bin").read_bytes() == PLAIN


def _cli_into_full_tmpfs(
    files: tuple[Path, Path, Path], tmpfs: Path, operation: str
) -> subprocess.CompletedProcess[str]:
    src, enc, _ = files
    filler = fill(tmpfs, 2 * 4096)
    source = src if operation == "encrypt" else enc
    done = subprocess.run(
        cli_args(operation, source, tmpfs / "o"), capture_output=True, text=True, env=CLI_ENV
    )
    assert leftovers(tmpfs, filler) == []
    assert digest(src) == hashlib.sha256(PLAIN).hexdigest()
    return done


@pytest.mark.parametrize("operation", ["encrypt", "decrypt"])
def test_cli_on_full_tmpfs(operation: str, files: tuple[Path, Path, Path], tmpfs: Path) -> None:
    done = _cli_into_full_tmpfs(files, tmpfs, operation)
    assert done.returncode == 1
    assert "No space left on device" in done.stderr


@pytest.mark.parametrize("operation", ["encrypt", "decrypt"])
def test_cli_full_disk_error_names_the_output(
    operation: str, files: tuple[Path, Path, Path], tmpfs: Path
) -> None:
    # Regression (fault campaign): ENOSPC carries no file name, and the error did not say which
    # output could not be written.
    done = _cli_into_full_tmpfs(files, tmpfs, operation)
    assert f"aes-hmac: error: cannot write {tmpfs / 'o'}: No space left on device" in done.stderr


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A large sparse plaintext, its encryption, and the plaintext's hash (made once)."""
    folder = tmp_path_factory.mktemp("big")
    src = folder / "big.bin"
    with src.open("wb") as f:
        f.truncate(BIG_SIZE)
    enc = folder / "big.bin.ahm"
    aes_hmac.encrypt_file(src, enc, PASSWORD, kdf=CHEAP)
    return src, enc, digest(src)


def cli_args(operation: str, source: Path, out: Path) -> list[str]:
    """A quiet one-worker CLI run with the password from the environment, cheap KDF to encrypt."""
    cheap = ["--iterations", "1000"] if operation == "encrypt" else []
    return [*CLI, operation, "-q", "--workers", "1", "--password-env", "AES_HMAC_PW", *cheap,
            "-o", str(out), str(source)]  # fmt: skip


CLI_ENV = {**os.environ, "AES_HMAC_PW": PASSWORD}


def _run_and_signal(args: list[str], folder: Path, sig: int) -> subprocess.Popen[bytes]:
    """Start the CLI, wait until its temporary output holds a few chunks, then send ``sig``."""
    proc = subprocess.Popen(args, env=CLI_ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_for_output(proc, folder, at_least=4 * 1024 * 1024)  # nameless on Linux: /proc
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return proc


class HashSink(io.RawIOBase):
    """A writable stream that only hashes what it gets."""

    def __init__(self) -> None:
        super().__init__()
        self.sha = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.sha.update(view)
        return len(view)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("operation", ["encrypt", "decrypt"])
def test_cli_killed_mid_file(
    operation: str, sig: int, big: tuple[Path, Path, str], tmp_path: Path
) -> None:
    src, enc, plain_hash = big
    source = src if operation == "encrypt" else enc
    source_hash = plain_hash if operation == "encrypt" else digest(enc)
    out = tmp_path / "out"
    proc = _run_and_signal(cli_args(operation, source, out), tmp_path, sig)
    stderr = proc.stderr.read().decode() if proc.stderr else ""
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL, "the CLI finished before it could be killed"
        # The output had no name (O_TMPFILE): nothing at all remains (issue 16).
        assert list(tmp_path.iterdir()) == []
    else:
        assert proc.returncode == 128 + signal.SIGINT, stderr  # issue 10 #3 (was 1)
        assert "interrupted" in stderr
        assert PASSWORD not in stderr
        assert list(tmp_path.iterdir()) == [], "SIGINT must remove the temporary file"
    assert not out.exists()
    assert digest(source) == source_hash
    rerun = subprocess.run(cli_args(operation, source, out), env=CLI_ENV, capture_output=True)
    assert rerun.returncode == 0, rerun.stderr
    if operation == "decrypt":
        assert digest(out) == plain_hash
    else:
        sink = HashSink()
        with out.open("rb") as f:
            aes_hmac.decrypt_stream(f, sink, PASSWORD)  # type: ignore[arg-type]
        assert sink.sha.hexdigest() == plain_hash
