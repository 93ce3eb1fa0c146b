"""The CLI items of issue 10 through the installed script: signals leave no temporary file and
exit 128 + N, closed standard streams, escaped names, planted symlinks, BOM password files, the
legacy import's warning (in test_cli_import.py)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest
from _writing import wait_for_output
from test_cli import AES_HMAC, CHEAP, PASSWORD, assert_one_error, data_of, run

pytestmark = pytest.mark.slow
ENV = {"P": PASSWORD}
TIMEOUT = 60.0


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


# --- signals (#3) --------------------------------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGQUIT])
@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_signal_leaves_no_temporary_file(tmp_path: Path, command: str, signum: int) -> None:
    """Half of the input arrives through a FIFO, then the signal: plaintext (decrypt) or a
    partial file (encrypt) was on disk in the temporary output; nothing may remain."""
    data = data_of(3 << 20)
    if command == "decrypt":
        made = run(["encrypt", "--password-env", "P", *CHEAP], stdin=data, env=ENV)
        data = made.stdout
    fifo = tmp_path / "in"
    os.mkfifo(fifo)
    out = tmp_path / "out"
    args = [AES_HMAC, command, "--password-env", "P", str(fifo), "-o", str(out)]
    if command == "encrypt":
        args += CHEAP
    proc = subprocess.Popen(
        args,
        env={**os.environ, **ENV},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    writer = os.open(fifo, os.O_WRONLY)
    try:
        os.write(writer, data[: len(data) // 2])
        wait_for_output(proc, tmp_path)  # nameless on Linux: seen through /proc
        proc.send_signal(signum)
    finally:
        os.close(writer)  # the end of input, in case a worker thread is still reading
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 128 + signum, err
    assert b"Traceback" not in err
    name = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
    assert err.decode() == f"aes-hmac: error: {name}\n"
    assert leftovers(tmp_path, {"in"}) == []


def test_ignored_hangup_is_kept(tmp_path: Path) -> None:
    """``nohup`` ignores SIGHUP: the command keeps running and finishes."""
    src = tmp_path / "f"
    src.write_bytes(b"x")
    script = f"trap '' HUP; exec {AES_HMAC} encrypt --password-env P {' '.join(CHEAP)} {src}"
    result = subprocess.run(
        ["bash", "-c", script + " & pid=$!; kill -HUP $pid; wait $pid"],
        env={**os.environ, **ENV},
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# --- closed standard streams (#12) ----------------------------------------------------------


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["bash", "-c", command],
        cwd=cwd,
        env={**os.environ, **ENV},
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_closed_standard_streams(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"data")
    enc = f"{AES_HMAC} encrypt --password-env P {' '.join(CHEAP)}"
    closed_out = shell(f"{enc} < f >&-", tmp_path)
    assert closed_out.returncode == 1
    assert closed_out.stderr == b"aes-hmac: error: stdout is closed: give an output file with -o\n"
    closed_in = shell(f"{enc} -o f.ahm <&-", tmp_path)
    assert closed_in.returncode == 1
    assert closed_in.stderr == b"aes-hmac: error: stdin is closed: give an input file\n"
    assert not (tmp_path / "f.ahm").exists()
    closed_err = shell(f"{enc} -o - < f >&- 2>&-; echo $?", tmp_path)
    assert closed_err.stdout == b"1\n" and closed_err.stderr == b""
    # A closed stdout does not stop a command that writes a file; the file is not fd 1.
    ok = shell(f"{enc} f >&- && {AES_HMAC} decrypt --password-env P -o - f.ahm", tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == b"data"
    inspect = shell(f"{AES_HMAC} inspect f.ahm >&-", tmp_path)
    assert inspect.returncode == 1 and b"stdout is closed" in inspect.stderr
    for closed in ("<&-", ">&-", "2>&-", "<&- >&- 2>&-"):
        result = shell(f"{AES_HMAC} decrypt --password-env P {closed}", tmp_path)
        assert b"Traceback" not in result.stderr and result.returncode == 1, closed


# --- escaped output (#10) ------------------------------------------------------------------


def test_control_characters_in_names_are_escaped(tmp_path: Path) -> None:
    name = "evil\x1b]0;pwned\x07\x9b2J\u202e.ahm"
    result = run(["decrypt", "--password-env", "P", tmp_path / name, "-o", "-"], env=ENV)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "\x1b" not in err and "\x07" not in err and "\x9b" not in err and "\u202e" not in err
    assert "evil\\x1b]0;pwned\\x07\\x9b2J\\u202e.ahm" in err
    raw = os.fsencode(tmp_path) + b"/bad\xff\n.ahm"
    result = subprocess.run(
        [AES_HMAC.encode(), b"decrypt", b"--password-env", b"P", raw, b"-o", b"-"],
        env={**os.environ, **ENV},
        capture_output=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert b"bad\\xff\\n.ahm" in result.stderr and result.stderr.count(b"\n") == 1


# --- planted symlinks (#11) ----------------------------------------------------------------


def test_dangling_symlink_is_never_written_through(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "target")
    for force in ([], ["--force"]):
        result = run(["encrypt", "--password-env", "P", *CHEAP, *force, tmp_path / "f", "-o", link])
        assert_one_error(result, 1, "is a symlink to nothing: refusing to create a file through it")
    assert not (tmp_path / "target").exists()
    assert os.path.islink(link)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant another user's symlink")
def test_symlink_of_another_user_in_a_sticky_folder_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    (tmp_path / "f").write_bytes(b"x")
    planted = shared / "out"
    planted.symlink_to(victim)
    os.lchown(planted, 65534, 65534)
    args = ["encrypt", "--password-env", "P", *CHEAP, "--force", tmp_path / "f", "-o", planted]
    result = run(args, env=ENV)
    assert_one_error(result, 1, "is a symlink owned by another user in a shared folder")
    assert victim.read_bytes() == b"keep me"
    os.lchown(planted, os.geteuid(), os.getegid())  # the user's own link is followed
    assert run(args, env=ENV).returncode == 0
    assert victim.read_bytes().startswith(b"AESHMAC") and os.path.islink(planted)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant another user's FIFO")
def test_fifo_of_another_user_in_a_sticky_folder_is_refused(tmp_path: Path) -> None:
    """Review finding: decrypting to another user's FIFO in /tmp handed them the plaintext (an
    existing FIFO is written in place, without --force). Now refused; one's own FIFO works."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    (tmp_path / "f").write_bytes(b"x")
    fifo = shared / "out.txt"
    os.mkfifo(fifo, 0o622)
    os.chown(fifo, 65534, 65534)
    args = ["encrypt", "--password-env", "P", *CHEAP, tmp_path / "f", "-o", fifo]
    result = run(args, env=ENV)
    assert_one_error(result, 1, "is another user's FIFO in a shared folder: refusing to write")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


# --- BOM in password files (#14) ----------------------------------------------------------


def test_password_file_byte_order_mark_is_not_part_of_the_password(tmp_path: Path) -> None:
    bom = tmp_path / "pw-windows.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + PASSWORD.encode() + b"\r\n")
    enc = run(["encrypt", "--password-file", bom, *CHEAP], stdin=b"notepad", env=ENV)
    assert enc.returncode == 0, enc.stderr
    dec = run(["decrypt", "--password-env", "P"], stdin=enc.stdout, env=ENV)
    assert dec.stdout == b"notepad"
    (tmp_path / "x.ahm").write_bytes(enc.stdout)
    read_end, write_end = os.pipe()
    os.write(write_end, b"\xef\xbb\xbf" + PASSWORD.encode() + b"\n")
    os.close(write_end)
    try:
        by_fd = run(
            ["decrypt", "--password-fd", str(read_end), "-o", "-", tmp_path / "x.ahm"],
            pass_fds=[read_end],
        )
    finally:
        os.close(read_end)
    assert by_fd.stdout == b"notepad", by_fd.stderr
