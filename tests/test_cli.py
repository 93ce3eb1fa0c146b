"""End-to-end tests of the installed ``aes-hmac`` console script, run through subprocess.

Every run uses cheap KDF costs (``--iterations 1000``) and small chunks (``--chunk-size 4K``) so
that the many-chunk cases stay small. The pure helpers are tested in-process in
test_cli_helpers.py; these tests are marked ``slow`` (``pytest -m "not slow"`` skips them).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from _writing import wait_for_output

BIN_DIR = Path(sys.executable).parent
SCRIPT = shutil.which("aes-hmac", path=str(BIN_DIR))
if SCRIPT is None:
    pytest.skip("the aes-hmac console script is not installed", allow_module_level=True)
AES_HMAC: str = SCRIPT
pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
CHEAP = ["--iterations", "1000"]
CHUNK = 4096
SMALL = ["--chunk-size", "4K"]
SIZES = {"empty": 0, "one byte": 1, "one chunk": CHUNK, "many chunks": 5 * CHUNK + 7}
ERROR_LINE = re.compile(r"^aes-hmac: error: [^\n]+\n$")


def run(
    args: Sequence[str | os.PathLike[str]],
    *,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    pass_fds: Sequence[int] = (),
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [AES_HMAC, *map(str, args)],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env={**os.environ, **(env or {})},
        pass_fds=tuple(pass_fds),
        cwd=cwd,
        timeout=60,
        check=False,
    )


def data_of(size: int) -> bytes:
    return bytes((i * 131 + 7) % 251 for i in range(size))


@pytest.fixture
def pwfile(tmp_path: Path) -> Path:
    path = tmp_path / "pw.txt"
    path.write_text(PASSWORD + "\n")
    return path


def encrypt_file(tmp_path: Path, pwfile: Path, data: bytes, *extra: str) -> Path:
    src = tmp_path / "plain.bin"
    src.write_bytes(data)
    dst = tmp_path / "plain.bin.ahm"
    result = run(["encrypt", "--password-file", pwfile, *CHEAP, *SMALL, *extra, src, "-o", dst])
    assert result.returncode == 0, result.stderr
    return dst


def assert_one_error(result: subprocess.CompletedProcess[bytes], status: int, text: str) -> None:
    err = result.stderr.decode()
    assert result.returncode == status, err
    assert ERROR_LINE.match(err), err
    assert text in err
    assert "Traceback" not in err
    assert PASSWORD not in err


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "aes-hmac-tmp" in p.name)


# --- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES.values(), ids=list(SIZES))
def test_file_round_trip(tmp_path: Path, pwfile: Path, size: int) -> None:
    data = data_of(size)
    enc = encrypt_file(tmp_path, pwfile, data)
    out = tmp_path / "out.bin"
    result = run(["decrypt", "--password-file", pwfile, enc, "-o", out])
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == data
    assert result.stdout == b""
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("size", SIZES.values(), ids=list(SIZES))
def test_pipe_round_trip(pwfile: Path, size: int) -> None:
    data = data_of(size)
    enc = run(["encrypt", "--password-file", pwfile, *CHEAP, *SMALL], stdin=data)
    assert enc.returncode == 0, enc.stderr
    assert enc.stdout.startswith(b"AESHMAC")
    dec = run(["decrypt", "--password-file", pwfile, "-"], stdin=enc.stdout)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == data


def test_stdin_to_file_and_file_to_stdout(tmp_path: Path, pwfile: Path) -> None:
    data = data_of(3 * CHUNK)
    enc = tmp_path / "x.ahm"
    result = run(["encrypt", "--password-file", pwfile, *CHEAP, *SMALL, "-o", enc], stdin=data)
    assert result.returncode == 0, result.stderr
    dec = run(["decrypt", "--password-file", pwfile, enc, "-o", "-"])
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == data
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("size", [0, 1, 5 * CHUNK + 7])
def test_armor_round_trip(tmp_path: Path, pwfile: Path, size: int) -> None:
    data = data_of(size)
    enc = run(["encrypt", "--password-file", pwfile, *CHEAP, *SMALL, "--armor"], stdin=data)
    assert enc.returncode == 0, enc.stderr
    text = enc.stdout.decode("ascii")
    assert text.startswith("-----BEGIN AES-HMAC ENCRYPTED FILE-----\n")
    assert text.endswith("-----END AES-HMAC ENCRYPTED FILE-----\n")
    assert max(len(line) for line in text.splitlines()) <= 64
    # Decrypt detects armor by itself, from a pipe and from a file, to stdout and to a file.
    dec = run(["decrypt", "--password-file", pwfile], stdin=enc.stdout)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == data
    armored = tmp_path / "x.asc"
    armored.write_bytes(enc.stdout)
    out = tmp_path / "out"
    dec = run(["decrypt", "--password-file", pwfile, armored, "-o", out])
    assert dec.returncode == 0, dec.stderr
    assert out.read_bytes() == data


def test_armor_to_file(tmp_path: Path, pwfile: Path) -> None:
    data = data_of(1000)
    src = tmp_path / "p"
    src.write_bytes(data)
    dst = tmp_path / "p.asc"
    result = run(["encrypt", "--password-file", pwfile, *CHEAP, "-a", src, "-o", dst])
    assert result.returncode == 0, result.stderr
    assert dst.read_bytes().startswith(b"-----BEGIN")
    dec = run(["decrypt", "--password-file", pwfile, dst, "-o", "-"])
    assert dec.stdout == data


def test_python_dash_m(pwfile: Path) -> None:
    data = b"via python -m"
    enc = subprocess.run(
        [sys.executable, "-m", "aes_hmac", "encrypt", "--password-file", str(pwfile), *CHEAP],
        input=data,
        capture_output=True,
        check=False,
    )
    assert enc.returncode == 0, enc.stderr
    dec = run(["decrypt", "--password-file", pwfile], stdin=enc.stdout)
    assert dec.stdout == data


# --- password sources ---------------------------------------------------------------------


def test_password_env(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, b"hello")
    dec = run(["decrypt", "--password-env", "MY_PW", enc, "-o", "-"], env={"MY_PW": PASSWORD})
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == b"hello"


def test_password_fd(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, b"hello")
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, PASSWORD.encode() + b"\nsecond line ignored\n")
        os.close(write_end)
        dec = run(["decrypt", "--password-fd", str(read_end), enc, "-o", "-"], pass_fds=[read_end])
    finally:
        os.close(read_end)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == b"hello"


def test_password_file_first_line_crlf_and_unicode(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    # Decomposed e + combining accent: the library normalizes to NFC, the env var is composed.
    pw.write_bytes("cafe\u0301 au lait, sans sucre\r\nignored\n".encode())
    enc = run(["encrypt", "--password-file", pw, *CHEAP], stdin=b"data")
    assert enc.returncode == 0, enc.stderr
    dec = run(
        ["decrypt", "--password-env", "P"],
        stdin=enc.stdout,
        env={"P": "caf\u00e9 au lait, sans sucre"},
    )
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == b"data"


def test_password_source_errors(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(b"\n")
    assert_one_error(run(["encrypt", "--password-file", empty, *CHEAP], stdin=b"x"), 1, "is empty")
    assert_one_error(
        run(["encrypt", "--password-file", tmp_path / "missing", *CHEAP], stdin=b"x"),
        1,
        "cannot read --password-file",
    )
    env = {k: v for k, v in os.environ.items() if k != "NO_SUCH_PW"}
    result = subprocess.run(
        [AES_HMAC, "encrypt", "--password-env", "NO_SUCH_PW", *CHEAP],
        input=b"x",
        capture_output=True,
        env=env,
        check=False,
    )
    assert_one_error(result, 1, "environment variable NO_SUCH_PW is not set")


def test_password_is_not_an_option_value() -> None:
    assert_one_error(run(["encrypt", "--password", PASSWORD]), 2, "--password")


def test_no_terminal_for_prompt(tmp_path: Path) -> None:
    """Without a password option and without a terminal the tool says so, reading no data."""
    result = subprocess.run(
        [AES_HMAC, "encrypt", *CHEAP, "-o", str(tmp_path / "x")],
        input=b"data",
        capture_output=True,
        start_new_session=True,  # no controlling terminal: /dev/tty cannot be opened
        check=False,
    )
    assert_one_error(result, 1, "no terminal to ask for the password")
    assert not (tmp_path / "x").exists()


# --- failures -----------------------------------------------------------------------------


def test_wrong_password(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, data_of(3 * CHUNK))
    out = tmp_path / "out"
    result = run(["decrypt", "--password-env", "P", enc, "-o", out], env={"P": "not it"})
    assert_one_error(result, 1, "wrong password or damaged header")
    assert not out.exists()
    assert leftovers(tmp_path) == []
    to_stdout = run(["decrypt", "--password-env", "P", enc, "-o", "-"], env={"P": "not it"})
    assert_one_error(to_stdout, 1, "wrong password or damaged header")
    assert to_stdout.stdout == b""
    assert "incomplete" not in to_stdout.stderr.decode()


def test_tampered_payload(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, data_of(5 * CHUNK + 7))
    blob = bytearray(enc.read_bytes())
    blob[-100] ^= 0x01
    enc.write_bytes(blob)
    out = tmp_path / "out"
    result = run(["decrypt", "--password-file", pwfile, enc, "-o", out])
    assert_one_error(result, 1, "data damaged at byte ")
    assert "wrong password" not in result.stderr.decode()
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_tampered_header_is_a_header_error(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, b"abc")
    blob = bytearray(enc.read_bytes())
    blob[20] ^= 0x80
    enc.write_bytes(blob)
    result = run(["decrypt", "--password-file", pwfile, enc, "-o", tmp_path / "out"])
    assert_one_error(result, 1, "wrong password or damaged header")


def test_damage_to_stdout_says_output_incomplete(tmp_path: Path, pwfile: Path) -> None:
    data = data_of(40 * CHUNK + 100)
    enc = encrypt_file(tmp_path, pwfile, data)
    blob = bytearray(enc.read_bytes())
    blob[-50] ^= 0x01
    result = run(["decrypt", "--password-file", pwfile, "--workers", "1"], stdin=bytes(blob))
    assert_one_error(result, 1, "data damaged at byte ")
    assert "incomplete and must be discarded" in result.stderr.decode()
    assert 0 < len(result.stdout) < len(data)
    assert data.startswith(result.stdout)


FINAL_CHUNK = 16 + 16 + 32  # iv, 7 bytes padded to one block, tag


@pytest.mark.parametrize(
    ("cut", "text"),
    [
        (1, "data truncated"),
        (FINAL_CHUNK, "data truncated"),  # the whole final chunk dropped, at a chunk boundary
        (FINAL_CHUNK + CHUNK, "data truncated"),  # two chunks dropped
        (FINAL_CHUNK + 100, "data "),  # inside a full chunk: it looks like a damaged final one
    ],
)
def test_truncated(tmp_path: Path, pwfile: Path, cut: int, text: str) -> None:
    enc = encrypt_file(tmp_path, pwfile, data_of(5 * CHUNK + 7))
    enc.write_bytes(enc.read_bytes()[:-cut])
    out = tmp_path / "out"
    result = run(["decrypt", "--password-file", pwfile, enc, "-o", out])
    assert_one_error(result, 1, text)
    assert re.search(r"data (truncated|damaged) (at|after) byte \d+", result.stderr.decode())
    assert not out.exists()
    assert leftovers(tmp_path) == []


def test_truncated_armor(pwfile: Path) -> None:
    enc = run(["encrypt", "--password-file", pwfile, *CHEAP, "-a"], stdin=data_of(2000))
    cut = enc.stdout[: len(enc.stdout) // 2]
    result = run(["decrypt", "--password-file", pwfile], stdin=cut)
    assert_one_error(result, 1, "invalid armor: truncated")


def test_not_an_encrypted_file(pwfile: Path) -> None:
    result = run(["decrypt", "--password-file", pwfile], stdin=b"just some text\n" * 10)
    assert_one_error(result, 1, "not an aes-hmac stream")
    result = run(["inspect"], stdin=b"")
    assert result.returncode == 1
    assert ERROR_LINE.match(result.stderr.decode())


def test_kdf_limits(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, b"abc")
    result = run(
        ["decrypt", "--password-file", pwfile, "--max-pbkdf2-iterations", "999", enc, "-o", "-"]
    )
    assert_one_error(result, 1, "exceed the limit 999 (raise it with --max-pbkdf2-iterations)")
    result = run(
        ["decrypt", "--password-file", pwfile, "--max-pbkdf2-iterations", "1000", enc, "-o", "-"]
    )
    assert result.returncode == 0
    assert result.stdout == b"abc"


def test_kdf_memory_limit(pwfile: Path) -> None:
    enc = run(
        ["encrypt", "--password-file", pwfile, "--kdf", "scrypt", "--scrypt-log2n", "13"],
        stdin=b"m",
    )
    assert enc.returncode == 0, enc.stderr  # 128 * 8 * 2**13 bytes = 8 MiB
    low = run(["decrypt", "--password-file", pwfile, "--max-kdf-memory-mib", "7"], stdin=enc.stdout)
    assert_one_error(
        low,
        1,
        f"kdf memory {8 << 20} bytes exceeds the limit {7 << 20} (raise it with "
        "--max-kdf-memory-mib)",
    )
    ok = run(["decrypt", "--password-file", pwfile, "--max-kdf-memory-mib", "8"], stdin=enc.stdout)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == b"m"


def test_force(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, b"new content")
    out = tmp_path / "existing"
    out.write_bytes(b"keep me")
    refused = run(["decrypt", "--password-file", pwfile, enc, "-o", out])
    assert_one_error(refused, 1, "exists: use --force")
    assert out.read_bytes() == b"keep me"
    refused = run(["encrypt", "--password-file", pwfile, *CHEAP, "-o", out], stdin=b"x")
    assert_one_error(refused, 1, "exists: use --force")
    assert out.read_bytes() == b"keep me"
    forced = run(["decrypt", "--password-file", pwfile, "--force", enc, "-o", out])
    assert forced.returncode == 0, forced.stderr
    assert out.read_bytes() == b"new content"
    forced = run(["encrypt", "--password-file", pwfile, *CHEAP, "-f", "-a", "-o", out], stdin=b"x")
    assert forced.returncode == 0, forced.stderr
    assert out.read_bytes().startswith(b"-----BEGIN")


def test_unwritable_output_names_the_output(tmp_path: Path, pwfile: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    target = tmp_path / "no such folder" / "out.ahm"
    for extra in ([], ["--armor"]):
        result = run(["encrypt", "--password-file", pwfile, *CHEAP, *extra, src, "-o", target])
        assert_one_error(result, 1, f"cannot write {target}: No such file or directory")
    assert_one_error(run(["inspect", tmp_path / "missing"]), 1, "cannot read")


def test_same_file_refused(tmp_path: Path, pwfile: Path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"precious")
    link = tmp_path / "link"
    link.symlink_to(src)
    for out in (src, link):
        result = run(["encrypt", "--password-file", pwfile, *CHEAP, "--force", src, "-o", out])
        assert_one_error(result, 1, "input and output are the same file")
        assert src.read_bytes() == b"precious"
    # Output appended to the input file through the shell: stdout is the input.
    with open(src, "ab") as out_fd:
        result = subprocess.run(
            [AES_HMAC, "encrypt", "--password-file", str(pwfile), *CHEAP, str(src), "-o", "-"],
            stdout=out_fd,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert_one_error(result, 1, "input and output are the same file")
    assert src.read_bytes() == b"precious"


def test_broken_pipe_is_quiet(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, data_of(400 * CHUNK))
    proc = subprocess.Popen(
        [AES_HMAC, "decrypt", "--password-file", str(pwfile), str(enc), "-o", "-"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    assert len(proc.stdout.read(1)) == 1
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert err == b""
    assert proc.returncode == 1


def test_interrupt_leaves_nothing(tmp_path: Path, pwfile: Path) -> None:
    """SIGINT while encrypting a pipe into a file: exit 130 (issue 10 #3; was 1), one line, no
    output or temp file. Every terminating signal: test_cli_hardening.py."""
    out = tmp_path / "out.ahm"
    proc = subprocess.Popen(
        [AES_HMAC, "encrypt", "--password-file", str(pwfile), *CHEAP, *SMALL, "-o", str(out)],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(data_of(10 * CHUNK))
    proc.stdin.flush()
    wait_for_output(proc, tmp_path)  # nameless on Linux: seen through /proc
    proc.send_signal(signal.SIGINT)
    err = proc.stderr.read().decode()
    proc.stdin.close()
    proc.wait(timeout=30)
    assert proc.returncode == 130
    assert err.strip() == "aes-hmac: error: interrupted"
    assert not out.exists()
    assert leftovers(tmp_path) == []


# --- usage ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ([], "required: COMMAND"),
        (["frobnicate"], "invalid choice"),
        (["encrypt", "--kdf", "scrypt", "--iterations", "5"], "--iterations needs --kdf pbkdf2"),
        (["encrypt", "--argon2-lanes", "2"], "--argon2-lanes needs --kdf argon2id"),
        (
            ["encrypt", "--kdf", "argon2id", "--argon2-memory-kib", "8", "--argon2-lanes", "4"],
            "memory_kib",
        ),
        (["encrypt", "--chunk-size", "lots"], "invalid size"),
        (["encrypt", "--password-fd", "0"], "--password-fd 0 is stdin"),
        (["encrypt", "--password-file", "a", "--password-env", "B"], "not allowed with"),
        (["rekey", "-"], "rekey needs a file path"),
        (["rekey", "x", "--add", "--remove"], "not allowed with"),
    ],
)
def test_usage_errors(args: list[str], text: str) -> None:
    assert_one_error(run(args), 2, text)


def test_help_documents_exit_codes() -> None:
    for args in (["--help"], ["encrypt", "--help"], ["decrypt", "--help"], ["rekey", "--help"]):
        result = run(args)
        assert result.returncode == 0
        out = result.stdout.decode()
        assert "0 success, 1 failure" in out and "2 usage error" in out
        assert "reader of the output pipe goes away" in " ".join(out.split())


@pytest.mark.parametrize(
    ("args", "text"),
    [
        (["encrypt", "--chunk-size", "1000"], "argument --chunk-size: chunk_size must be a power"),
        (["encrypt", "--chunk-size", "3K"], "argument --chunk-size: chunk_size must be a power"),
        (["encrypt", "--chunk-size", "0"], "argument --chunk-size: chunk_size must be a power"),
        (["encrypt", "--chunk-size", "32M"], "argument --chunk-size: chunk_size must be a power"),
        (["encrypt", "--workers", "65"], "argument --workers: workers must be between 1 and 64"),
        (["decrypt", "--workers", "65"], "argument --workers: workers must be between 1 and 64"),
        (["decrypt", "--workers", "0"], "argument --workers: expected a positive integer"),
    ],
)
def test_bad_chunk_size_and_workers_are_usage_errors(args: list[str], text: str) -> None:
    """Review 2: these exited 1, and only after the password prompt (no password source here)."""
    assert_one_error(run(args, stdin=b"x"), 2, text)


# --- inspect ------------------------------------------------------------------------------


def test_inspect(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, b"abc")
    result = run(["inspect", enc])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == "format: aes-hmac stream, version 1"
    assert "armor: no" in lines
    assert f"chunk size: {CHUNK} bytes" in lines
    assert "password slots: 1" in lines
    assert "slot 1: pbkdf2-hmac-sha256 iterations=1000" in lines


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (
            ["--kdf", "scrypt", "--scrypt-log2n", "10", "--scrypt-r", "8"],
            "slot 1: scrypt log2n=10 r=8 p=1",
        ),
        (
            [
                "--kdf",
                "argon2id",
                "--argon2-memory-kib",
                "64",
                "--argon2-iterations",
                "1",
                "--argon2-lanes",
                "1",
            ],
            "slot 1: argon2id memory=64 KiB iterations=1 lanes=1",
        ),
    ],
)
def test_other_kdfs_round_trip_and_inspect(pwfile: Path, options: list[str], expected: str) -> None:
    enc = run(["encrypt", "--password-file", pwfile, "-a", *options], stdin=b"kdf")
    assert enc.returncode == 0, enc.stderr
    info = run(["inspect", "-"], stdin=enc.stdout)
    assert "armor: yes" in info.stdout.decode()
    assert expected in info.stdout.decode()
    dec = run(["decrypt", "--password-file", pwfile], stdin=enc.stdout)
    assert dec.stdout == b"kdf"


# --- rekey --------------------------------------------------------------------------------


def payload(path: Path) -> bytes:
    info = run(["inspect", path]).stdout.decode()
    match = re.search(r"header size: (\d+) bytes", info)
    assert match
    return path.read_bytes()[int(match.group(1)) :]


def decrypts_with(path: Path, password: str) -> bool:
    return (
        run(["decrypt", "--password-env", "P", path, "-o", "-"], env={"P": password}).returncode
        == 0
    )


def test_rekey_change_add_remove(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, data_of(3 * CHUNK))
    body = payload(enc)
    env = {"NEW": "a brand new passphrase", "THIRD": "yet another passphrase"}

    changed = run(
        ["rekey", enc, "--password-file", pwfile, "--new-password-env", "NEW", *CHEAP], env=env
    )
    assert changed.returncode == 0, changed.stderr
    assert not decrypts_with(enc, PASSWORD)
    assert decrypts_with(enc, env["NEW"])
    assert payload(enc) == body

    added = run(
        ["rekey", "--add", enc, "--password-env", "NEW", "--new-password-env", "THIRD", *CHEAP],
        env=env,
    )
    assert added.returncode == 0, added.stderr
    assert "password slots: 2" in run(["inspect", enc]).stdout.decode()
    assert decrypts_with(enc, env["NEW"]) and decrypts_with(enc, env["THIRD"])

    removed = run(["rekey", "--remove", enc, "--password-env", "NEW"], env=env)
    assert removed.returncode == 0, removed.stderr
    assert "password slots: 1" in run(["inspect", enc]).stdout.decode()
    assert not decrypts_with(enc, env["NEW"])
    assert decrypts_with(enc, env["THIRD"])
    assert payload(enc) == body

    last = run(["rekey", "--remove", enc, "--password-env", "THIRD"], env=env)
    assert_one_error(last, 1, "last key slot")
    wrong = run(["rekey", enc, "--password-env", "NEW", "--new-password-env", "THIRD"], env=env)
    assert_one_error(wrong, 1, "wrong password or damaged header")
    assert leftovers(tmp_path) == []


def test_rekey_armored_file_stays_armored(tmp_path: Path, pwfile: Path) -> None:
    data = data_of(3 * CHUNK)
    enc = encrypt_file(tmp_path, pwfile, data, "--armor")
    env = {"N": "the replacement passphrase"}
    result = run(
        ["rekey", enc, "--password-file", pwfile, "--new-password-env", "N", *CHEAP], env=env
    )
    assert result.returncode == 0, result.stderr
    assert enc.read_bytes().startswith(b"-----BEGIN AES-HMAC ENCRYPTED FILE-----\n")
    assert "armor: yes" in run(["inspect", enc]).stdout.decode()
    assert not decrypts_with(enc, PASSWORD)
    assert run(["decrypt", "--password-env", "N", enc, "-o", "-"], env=env).stdout == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.bin", "plain.bin.ahm", "pw.txt"]


@pytest.mark.parametrize("armor", [[], ["--armor"]])
def test_rekey_through_a_symlink_edits_the_target(
    tmp_path: Path, pwfile: Path, armor: list[str]
) -> None:
    """Regression (review): rekey replaced the link by a new file; the target kept the old slot."""
    data = data_of(CHUNK + 1)
    enc = encrypt_file(tmp_path, pwfile, data, *armor)
    link = tmp_path / "link.ahm"
    link.symlink_to(enc.name)
    env = {"N": "the replacement passphrase"}
    result = run(
        ["rekey", link, "--password-file", pwfile, "--new-password-env", "N", *CHEAP], env=env
    )
    assert result.returncode == 0, result.stderr
    assert link.is_symlink()
    assert not decrypts_with(enc, PASSWORD)
    assert run(["decrypt", "--password-env", "N", enc, "-o", "-"], env=env).stdout == data


def test_rekey_remove_takes_no_new_password_or_kdf(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, b"x")
    base = ["rekey", "--remove", enc, "--password-file", pwfile]
    assert_one_error(run([*base, "--new-password-env", "N"]), 2, "--remove takes no new password")
    assert_one_error(run([*base, "--kdf", "scrypt"]), 2, "--remove takes no KDF options")


# --- password strength ------------------------------------------


def test_weak_password_warning(tmp_path: Path) -> None:
    result = run(["encrypt", "--password-env", "P", *CHEAP], stdin=b"x", env={"P": "abc123"})
    assert result.returncode == 0
    err = result.stderr.decode()
    assert err.startswith("aes-hmac: warning: weak password")
    assert "abc123" not in err
    assert "leave the password empty" not in err  # only said at the prompt (review 2, 1.7)
    quiet = run(["encrypt", "-q", "--password-env", "P", *CHEAP], stdin=b"x", env={"P": "abc123"})
    assert quiet.stderr == b""
    strong = run(["encrypt", "--password-env", "P", *CHEAP], stdin=b"x", env={"P": PASSWORD})
    assert strong.stderr == b""


def test_decrypt_from_a_fifo_path_to_a_file(tmp_path: Path, pwfile: Path) -> None:
    """Regression (review): a pipe given by path (bash's <(...)) was sniffed, then reopened."""
    data = data_of(3 * CHUNK + 5)
    enc = encrypt_file(tmp_path, pwfile, data)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    out = tmp_path / "out.bin"
    with subprocess.Popen(["cp", str(enc), str(fifo)]) as writer:
        result = run(["decrypt", "--password-file", pwfile, fifo, "-o", out])
        writer.wait(timeout=60)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes() == data


# --- outputs that are not regular files (review 2, item 1.1) --------------------------------


def read_fifo_in_background(fifo: Path, sink: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(["sh", "-c", 'cat "$1" > "$2"', "sh", str(fifo), str(sink)])


@pytest.mark.parametrize("armor", [[], ["--armor"]])
def test_fifo_output_is_written_in_place(tmp_path: Path, pwfile: Path, armor: list[str]) -> None:
    """Regression: -o FIFO asked for --force, which then replaced the FIFO by a regular file."""
    data = data_of(3 * CHUNK + 5)
    src = tmp_path / "plain"
    src.write_bytes(data)
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for command, path, extra in (
        ("encrypt", src, [*CHEAP, *SMALL, *armor]),
        ("decrypt", tmp_path / "got.ahm", []),
    ):
        sink = tmp_path / ("got.ahm" if command == "encrypt" else "got")
        with read_fifo_in_background(fifo, sink) as reader:
            result = run([command, "--password-file", pwfile, *extra, path, "-o", fifo])
            reader.wait(timeout=60)
        assert result.returncode == 0, result.stderr
        assert fifo.is_fifo()
    assert (tmp_path / "got").read_bytes() == data
    assert leftovers(tmp_path) == []


def test_damage_into_a_fifo_says_output_incomplete(tmp_path: Path, pwfile: Path) -> None:
    data = data_of(40 * CHUNK + 100)
    enc = encrypt_file(tmp_path, pwfile, data)
    blob = bytearray(enc.read_bytes())
    blob[-50] ^= 0x01
    enc.write_bytes(bytes(blob))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sink = tmp_path / "got"
    with read_fifo_in_background(fifo, sink) as reader:
        result = run(["decrypt", "--password-file", pwfile, "--workers", "1", enc, "-o", fifo])
        reader.wait(timeout=60)
    assert_one_error(result, 1, "data damaged at byte ")
    assert f"already written to {fifo} are incomplete and must be discarded" in (
        result.stderr.decode()
    )
    assert fifo.is_fifo()
    assert 0 < sink.stat().st_size < len(data)


def test_dev_null_output_needs_no_force(tmp_path: Path, pwfile: Path) -> None:
    """Regression: -o /dev/null asked for --force, which (as root) replaced /dev/null."""
    enc = encrypt_file(tmp_path, pwfile, data_of(CHUNK + 1))
    result = run(["decrypt", "--password-file", pwfile, enc, "-o", os.devnull])
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    assert Path(os.devnull).is_char_device()


def test_symlink_output_replaces_its_target(tmp_path: Path, pwfile: Path) -> None:
    """Regression: --force replaced the link itself and left its target untouched."""
    enc = encrypt_file(tmp_path, pwfile, b"new content")
    sub = tmp_path / "sub"
    sub.mkdir()
    target = sub / "target.txt"
    target.write_bytes(b"old")
    target.chmod(0o640)
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    refused = run(["decrypt", "--password-file", pwfile, enc, "-o", link])
    assert_one_error(refused, 1, "exists: use --force")
    forced = run(["decrypt", "--password-file", pwfile, "--force", enc, "-o", link])
    assert forced.returncode == 0, forced.stderr
    assert link.is_symlink()
    assert target.read_bytes() == b"new content"
    assert target.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its mode
    assert leftovers(tmp_path) == [] and leftovers(sub) == []


def test_new_output_file_is_private(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, b"x")
    assert enc.stat().st_mode & 0o777 == 0o600
    out = tmp_path / "out"
    assert run(["decrypt", "--password-file", pwfile, enc, "-o", out]).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600


def test_folder_output_refused(tmp_path: Path, pwfile: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    for extra in ([], ["--force"]):
        result = run(["encrypt", "--password-file", pwfile, *CHEAP, *extra, "-o", folder])
        assert_one_error(result, 1, f"output {folder} is a folder")
    assert folder.is_dir() and list(folder.iterdir()) == []


# --- KDF costs beyond the default limits (review 2, items 1.4 and 1.5) ----------------------

STRONG_ARGON2 = [
    "--kdf",
    "argon2id",
    "--argon2-memory-kib",
    "8",
    "--argon2-iterations",
    "65",
    "--argon2-lanes",
    "1",
]


def test_encrypt_warns_about_costs_decrypt_refuses(tmp_path: Path, pwfile: Path) -> None:
    enc = run(["encrypt", "--password-file", pwfile, *STRONG_ARGON2], stdin=b"costly")
    assert enc.returncode == 0, enc.stderr
    assert enc.stderr.decode() == (
        "aes-hmac: warning: argon2id iterations 65 exceed the limit 64 of decrypt's defaults: "
        "decrypting will need --max-argon2-iterations\n"
    )
    refused = run(["decrypt", "--password-file", pwfile], stdin=enc.stdout)
    assert_one_error(refused, 1, "(raise it with --max-argon2-iterations)")
    ok = run(
        ["decrypt", "--password-file", pwfile, "--max-argon2-iterations", "65"], stdin=enc.stdout
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == b"costly"
    normal = run(["encrypt", "--password-file", pwfile, *CHEAP], stdin=b"x")
    assert normal.stderr == b""


def test_rekey_warns_about_costs_decrypt_refuses(tmp_path: Path, pwfile: Path) -> None:
    enc = encrypt_file(tmp_path, pwfile, b"x")
    args = ["rekey", "--add", enc, "--password-file", pwfile, "--new-password-env", "P"]
    result = run([*args, *STRONG_ARGON2], env={"P": "another long passphrase for the test"})
    assert result.returncode == 0, result.stderr
    assert "decrypting will need --max-argon2-iterations" in result.stderr.decode()
