"""The ``aes-hmac`` script on a real terminal: typed passwords, no echo, refusals, progress bar.

Each test runs the installed script under a pseudo-terminal (stdlib ``pty``) that becomes its
controlling terminal, so ``getpass`` reads from it exactly as it would from a person.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shutil
import struct
import sys
import termios
import time
from pathlib import Path

import pytest

BIN_DIR = Path(sys.executable).parent
SCRIPT = shutil.which("aes-hmac", path=str(BIN_DIR))
if SCRIPT is None or not hasattr(pty, "fork"):
    pytest.skip("needs the installed aes-hmac script and a POSIX pty", allow_module_level=True)
AES_HMAC: str = SCRIPT

pytestmark = pytest.mark.slow  # drives the installed script through subprocesses
PASSWORD = "correct horse battery staple"
CHEAP = ["--iterations", "1000"]
TIMEOUT = 60.0


class Terminal:
    """One run of the script on a pty: expect text, type answers, collect everything shown."""

    def __init__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        *,
        shell: bool = False,
    ) -> None:
        """``shell``: ``args`` is one ``sh -c`` command line (redirections, pipelines)."""
        full_env = {**os.environ, **(env or {})}
        full_env["PATH"] = f"{BIN_DIR}{os.pathsep}{full_env.get('PATH', '')}"
        argv = ["/bin/sh", "-c", args[0]] if shell else [AES_HMAC, *args]
        pid, fd = pty.fork()
        if pid == 0:  # child: becomes the script, with the pty as its controlling terminal
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, full_env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
        self.output = b""
        self._seen = 0

    def _read(self, deadline: float) -> bool:
        """Read what is available; False at EOF (the child closed the terminal)."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child exited and the pty is gone
            return False
        self.output += data
        return bool(data)

    def expect(self, text: bytes) -> None:
        deadline = time.monotonic() + TIMEOUT
        while text not in self.output[self._seen :]:
            if time.monotonic() > deadline or not self._read(deadline):
                raise AssertionError(f"{text!r} not shown; got {self.output!r}")
        self._seen = self.output.index(text, self._seen) + len(text)

    def type(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def finish(self) -> int:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and self._read(deadline):
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_typed_password_round_trip(tmp_path: Path) -> None:
    (tmp_path / "note").write_bytes(b"the plaintext\n")
    term = Terminal(["encrypt", *CHEAP, "note", "-o", "note.ahm"], tmp_path)
    term.expect(b"Password (leave empty to generate one): ")
    term.type(PASSWORD)
    term.expect(b"Confirm password: ")
    term.type(PASSWORD)
    assert term.finish() == 0, term.output
    assert PASSWORD.encode() not in term.output  # no echo
    assert (tmp_path / "note.ahm").read_bytes().startswith(b"AESHMAC")

    term = Terminal(["decrypt", "note.ahm", "-o", "-"], tmp_path)
    term.expect(b"Password: ")
    term.type(PASSWORD)
    assert term.finish() == 0, term.output
    assert b"the plaintext" in term.output
    assert PASSWORD.encode() not in term.output

    term = Terminal(["decrypt", "note.ahm", "-o", "-"], tmp_path)
    term.expect(b"Password: ")
    term.type("wrong guess")
    assert term.finish() == 1
    assert b"aes-hmac: error: wrong password or damaged header" in term.output
    assert b"wrong guess" not in term.output


def test_undecodable_typed_password_is_not_echoed_in_the_error(tmp_path: Path) -> None:
    """Regression (review): a non-UTF-8 byte typed at the prompt surfaced in the error message."""
    (tmp_path / "note").write_bytes(b"x")
    args = ["encrypt", *CHEAP, "note", "-o", "note.ahm"]
    term = Terminal(args, tmp_path, env={"LANG": "C.UTF-8"})
    term.expect(b"Password (leave empty to generate one): ")
    os.write(term.fd, b"pass\xe9word\n")
    assert term.finish() == 1
    assert b"aes-hmac: error: the password typed is not valid text" in term.output
    assert b"0xe9" not in term.output and b"position" not in term.output
    assert not (tmp_path / "note.ahm").exists()


def test_mismatched_confirmation_asks_again_three_times(tmp_path: Path) -> None:
    """Issue 12 #6: a mismatch asks again (it used to exit); three answers, then it fails."""
    term = Terminal(["encrypt", *CHEAP, "-a", "-o", "out.asc", "/dev/null"], tmp_path)
    for _ in range(3):
        term.expect(b"Password (leave empty to generate one): ")
        term.type(PASSWORD)
        term.expect(b"Confirm password: ")
        term.type(PASSWORD + "!")
        term.expect(b"passwords do not match: try again")
    assert term.finish() == 1
    assert b"aes-hmac: error: no password set after 3 tries" in term.output
    assert not (tmp_path / "out.asc").exists()


def test_mismatch_then_match_encrypts(tmp_path: Path) -> None:
    (tmp_path / "note").write_bytes(b"second try")
    term = Terminal(["encrypt", *CHEAP, "note"], tmp_path)
    term.expect(b"Password (leave empty to generate one): ")
    term.type(PASSWORD)
    term.expect(b"Confirm password: ")
    term.type("typo")
    term.expect(b"Password (leave empty to generate one): ")
    term.type(PASSWORD)
    term.expect(b"Confirm password: ")
    term.type(PASSWORD)
    assert term.finish() == 0, term.output
    assert (tmp_path / "note.ahm").read_bytes().startswith(b"AESHMAC")


def test_empty_answer_generates_a_passphrase(tmp_path: Path) -> None:
    (tmp_path / "note").write_bytes(b"generated")
    term = Terminal(["encrypt", *CHEAP, "note", "-o", "note.ahm"], tmp_path)
    term.expect(b"Password (leave empty to generate one): ")
    term.type("")
    assert term.finish() == 0, term.output
    match = re.search(
        rb"generated passphrase, shown only this once, [^:]*: ([a-z2-7-]+)", term.output
    )
    assert match, term.output
    passphrase = match.group(1).decode()
    assert term.output.count(match.group(1)) == 1

    term = Terminal(
        ["decrypt", "--password-env", "P", "note.ahm", "-o", "-"], tmp_path, env={"P": passphrase}
    )
    assert term.finish() == 0, term.output
    assert b"generated" in term.output


def test_ctrl_c_at_the_prompt(tmp_path: Path) -> None:
    term = Terminal(["encrypt", *CHEAP, "/dev/null", "-o", "x"], tmp_path)
    term.expect(b"Password (leave empty to generate one): ")
    os.write(term.fd, b"\x03")
    assert term.finish() == 130  # issue 10 #3: 128 + SIGINT (was 1)
    assert b"aes-hmac: error: interrupted" in term.output
    assert b"Traceback" not in term.output
    assert not (tmp_path / "x").exists()


def test_refuses_binary_ciphertext_to_the_terminal(tmp_path: Path) -> None:
    (tmp_path / "note").write_bytes(b"x")
    env = {"P": PASSWORD}
    term = Terminal(
        ["encrypt", "--password-env", "P", *CHEAP, "note", "-o", "-"], tmp_path, env=env
    )
    assert term.finish() == 1
    assert b"refusing to write binary ciphertext to a terminal: use --armor" in term.output
    assert b"AESHMAC" not in term.output

    term = Terminal(
        ["encrypt", "--password-env", "P", *CHEAP, "--armor", "note", "-o", "-"], tmp_path, env=env
    )
    assert term.finish() == 0, term.output
    assert b"-----BEGIN AES-HMAC ENCRYPTED FILE-----" in term.output


def test_progress_bar_on_a_terminal_only_for_big_inputs(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(bytes(6 << 20))
    (tmp_path / "small").write_bytes(bytes(1000))
    env = {"P": PASSWORD}
    args = ["encrypt", "--password-env", "P", *CHEAP]
    term = Terminal([*args, "big", "-o", "big.ahm"], tmp_path, env=env)
    assert term.finish() == 0, term.output
    assert re.search(rb"encrypt: +\d+%.*[\d.]+MiB/6.00MiB", term.output), term.output

    term = Terminal([*args, "-q", "big", "-o", "big2.ahm"], tmp_path, env=env)
    assert term.finish() == 0
    assert term.output == b""

    term = Terminal([*args, "small", "-o", "small.ahm"], tmp_path, env=env)
    assert term.finish() == 0
    assert term.output == b""


def test_progress_bar_comes_after_the_password_prompt(tmp_path: Path) -> None:
    """Review 2: interactive decrypt drew the bar before ``Password:``, on the same line."""
    (tmp_path / "big").write_bytes(bytes(6 << 20))
    term = Terminal(
        ["encrypt", "--password-env", "P", *CHEAP, "big", "-o", "big.ahm"],
        tmp_path,
        env={"P": PASSWORD},
    )
    assert term.finish() == 0, term.output
    term = Terminal(["decrypt", "big.ahm", "-o", "big.out"], tmp_path)
    term.expect(b"Password: ")
    assert term.output.startswith(b"Password: "), term.output
    term.type(PASSWORD)
    assert term.finish() == 0, term.output
    # Plaintext bytes (6.0 MiB, not the ciphertext's size) in binary units.
    assert re.search(rb"decrypt: +\d+%.*[\d.]+MiB/6\.00MiB", term.output), term.output
    assert (tmp_path / "big.out").stat().st_size == 6 << 20


def test_weak_typed_password_is_offered_a_generated_one(tmp_path: Path) -> None:
    (tmp_path / "note").write_bytes(b"x")
    term = Terminal(["encrypt", *CHEAP, "note", "-o", "note.ahm"], tmp_path)
    term.expect(b"Password (leave empty to generate one): ")
    term.type("abc123")
    term.expect(b"; leave the password empty to generate one")
    term.expect(b"Confirm password to use it anyway (empty: choose another): ")
    term.type("abc123")
    assert term.finish() == 0, term.output
    assert b"weak password" in term.output


def test_weak_password_can_be_replaced_before_any_work(tmp_path: Path) -> None:
    """Issue 12 #6: the warning comes before the work, and an empty confirmation asks again."""
    (tmp_path / "note").write_bytes(b"x")
    term = Terminal(["encrypt", *CHEAP, "note"], tmp_path)
    term.expect(b"Password (leave empty to generate one): ")
    term.type("abc123")
    term.expect(b"weak password")
    assert not (tmp_path / "note.ahm").exists()
    term.expect(b"(empty: choose another): ")
    term.type("")
    term.expect(b"Password (leave empty to generate one): ")
    term.type(PASSWORD)
    term.expect(b"Confirm password: ")
    term.type(PASSWORD)
    assert term.finish() == 0, term.output
    term = Terminal(
        ["decrypt", "--password-env", "P", "note.ahm", "-o", "-"], tmp_path, env={"P": PASSWORD}
    )
    assert term.finish() == 0, term.output


def test_prompts_and_generated_passphrase_go_to_the_terminal(tmp_path: Path) -> None:
    """Issue 12 #5: with stderr in a file the prompt is still shown, and the passphrase is not
    stored in the file."""
    (tmp_path / "note").write_bytes(b"x")
    term = Terminal([f"aes-hmac encrypt {' '.join(CHEAP)} note 2>err.txt"], tmp_path, shell=True)
    term.expect(b"Password (leave empty to generate one): ")
    term.type("")
    term.expect(b"generated passphrase, shown only this once")
    assert term.finish() == 0, term.output
    assert (tmp_path / "err.txt").read_bytes() == b""
    assert re.search(rb"keep it safe: [a-z2-7-]{29}", term.output)


def test_progress_on_one_side_of_a_pipe_only(tmp_path: Path) -> None:
    """Issue 12 #8: ``aes-hmac ... | aes-hmac ...`` draws one progress line, not two."""
    (tmp_path / "big").write_bytes(bytes(6 << 20))
    line = (
        f"aes-hmac encrypt --password-env P {' '.join(CHEAP)} -o - big"
        " | aes-hmac decrypt --password-env P -o big.out"
    )
    term = Terminal([line], tmp_path, env={"P": PASSWORD}, shell=True)
    assert term.finish() == 0, term.output
    assert b"encrypt:" in term.output and b"MiB" in term.output
    assert b"decrypt " not in term.output
    assert (tmp_path / "big.out").stat().st_size == 6 << 20
