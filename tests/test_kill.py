"""kill -9 in the middle of a write leaves no plaintext, and on Linux no file at all (issue 16:
10 of 30 CLI and 11 of 30 library decrypts killed so left ``.out.aes-hmac-tmp-XXXX`` files
holding up to 170 MB of verified plaintext, and no later run removed them).

The ciphertext arrives through a FIFO, fed only so far: the decrypt cannot finish, and the kill
lands when its output holds a chosen number of bytes (seen through /proc, since the output has
no name). Then every file left in the output folder is read for the plaintext's marker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from _writing import wait_for_output

import aes_hmac
from aes_hmac import PBKDF2

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and FIFOs"),
]

PASSWORD = "kill -9"
MARKER = b"PLAINTEXT-MARKER"
MIB = 1 << 20
PLAIN_SIZE = 64 * MIB
KILL_AT_MIB = [1, 12, 24, 36, 48]  # output bytes written when the kill lands
FED_AHEAD = 8 * MIB  # ciphertext fed beyond the kill point: enough to get there, never the end
ENV = {**os.environ, "AES_HMAC_PW": PASSWORD}
LIBRARY_DECRYPT = (
    "import os, sys, aes_hmac; "
    "aes_hmac.decrypt_file(sys.argv[1], sys.argv[2], os.environ['AES_HMAC_PW'], workers=1)"
)
WITHOUT_TMPFILE = "import os; del os.O_TMPFILE; "  # the fallback path, as on other platforms


@pytest.fixture(scope="module")
def ciphertext(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("kill")
    line_count = PLAIN_SIZE // 32
    plain = b"".join(b"%s %014d\n" % (MARKER, n) for n in range(line_count))
    (folder / "plain").write_bytes(plain)
    aes_hmac.encrypt_file(folder / "plain", folder / "c.ahm", PASSWORD, kdf=PBKDF2(1000))
    return (folder / "c.ahm").read_bytes()


def feed(fifo: Path, data: bytes, stop: threading.Event) -> None:
    """Write ``data`` into the FIFO, then hold it open (no end of input) until ``stop``."""
    try:
        with fifo.open("wb") as pipe:
            pipe.write(data)
            pipe.flush()
            stop.wait()
    except BrokenPipeError:
        pass  # the reader was killed first


def kill_mid_write(args: list[str], fifo: Path, out_dir: Path, data: bytes, at: int) -> None:
    """Run ``args``, feed it ``data`` through ``fifo``, SIGKILL it once its output in
    ``out_dir`` holds ``at`` bytes."""
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(fifo, data, stop), daemon=True)
    feeder.start()
    proc = subprocess.Popen(args, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_output(proc, out_dir, at_least=at)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, "finished before the kill"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        stop.set()
        feeder.join(timeout=60)


def holding_plaintext(folder: Path) -> list[str]:
    """Every file under ``folder`` whose bytes show the plaintext marker (each read whole)."""
    return [str(p) for p in folder.rglob("*") if p.is_file() and MARKER in p.read_bytes()]


@pytest.fixture
def folders(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    fifo = tmp_path / "in.ahm"
    os.mkfifo(fifo)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    yield fifo, out_dir


@pytest.mark.parametrize("at_mib", KILL_AT_MIB)
@pytest.mark.parametrize("runner", ["library", "cli"])
def test_killed_decrypt_leaves_no_plaintext(
    ciphertext: bytes, folders: tuple[Path, Path], runner: str, at_mib: int
) -> None:
    fifo, out_dir = folders
    dst = out_dir / "plain.txt"
    if runner == "library":
        args = [sys.executable, "-c", LIBRARY_DECRYPT, str(fifo), str(dst)]
    else:
        args = [sys.executable, "-m", "aes_hmac", "decrypt", "-q", "--workers", "1",
                "--password-env", "AES_HMAC_PW", "-o", str(dst), str(fifo)]  # fmt: skip
    fed = ciphertext[: at_mib * MIB + FED_AHEAD]
    kill_mid_write(args, fifo, out_dir, fed, at_mib * MIB)
    assert holding_plaintext(out_dir) == []
    assert list(out_dir.iterdir()) == []  # O_TMPFILE: the output never had a name


def test_killed_stream_writer_leaves_nothing(tmp_path: Path) -> None:
    """``open(path, "wb")`` killed while writing: nothing under the name, not even a cut
    stream (it used to write the path directly)."""
    dst = tmp_path / "x.ahm"
    script = (
        "import os, sys, aes_hmac\n"
        "w = aes_hmac.open(sys.argv[1], 'wb', password='pw', kdf=aes_hmac.PBKDF2(1000))\n"
        "while True:\n"
        f"    w.write({MARKER!r} * 65536)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(dst)], stderr=subprocess.PIPE)
    try:
        wait_for_output(proc, tmp_path, at_least=8 * MIB)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert list(tmp_path.iterdir()) == []


def test_fallback_leftover_is_removed_by_the_next_write(
    ciphertext: bytes, folders: tuple[Path, Path]
) -> None:
    """Without ``O_TMPFILE`` a kill leaves this tool's temporary file (plaintext, on a decrypt);
    the next decrypt to the same target removes it, and finishes."""
    fifo, out_dir = folders
    dst = out_dir / "plain.txt"
    args = [sys.executable, "-c", WITHOUT_TMPFILE + LIBRARY_DECRYPT, str(fifo), str(dst)]
    kill_mid_write(args, fifo, out_dir, ciphertext[: 12 * MIB], 2 * MIB)
    left = [p.name for p in out_dir.iterdir()]
    assert len(left) == 1 and left[0].startswith(".plain.txt.aes-hmac-tmp-")
    source = fifo.parent / "c.ahm"
    source.write_bytes(ciphertext)
    subprocess.run(
        [sys.executable, "-c", WITHOUT_TMPFILE + LIBRARY_DECRYPT, str(source), str(dst)],
        env=ENV,
        check=True,
    )
    assert [p.name for p in out_dir.iterdir()] == ["plain.txt"]  # the leftover is gone
    assert dst.stat().st_size == PLAIN_SIZE
