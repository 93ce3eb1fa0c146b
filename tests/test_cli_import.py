"""``aes-hmac import --from aescrypt|fernet|legacy`` through the installed console script."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pyAesCrypt
import pytest
from _vectors import load
from cryptography.fernet import Fernet
from test_importers_aescrypt import forged_aescrypt

import aes_hmac

SCRIPT = shutil.which("aes-hmac", path=str(Path(sys.executable).parent))
if SCRIPT is None:
    pytest.skip("the aes-hmac console script is not installed", allow_module_level=True)
AES_HMAC: str = SCRIPT

pytestmark = pytest.mark.slow  # drives the installed script through subprocesses
OLD = "aes crypt pässword"
NEW = "new passphrase for imports"
SECRETS = {"OLD_SECRET": OLD, "NEW_SECRET": NEW}
PASSWORDS = ["--password-env", "OLD_SECRET", "--new-password-env", "NEW_SECRET", "-q"]
CHEAP = ["--iterations", "1000"]


def run(
    args: Sequence[str | os.PathLike[str]], *, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [AES_HMAC, "import", *map(str, args)],
        input=stdin,
        capture_output=True,
        env={**os.environ, **SECRETS, **env},
        timeout=60,
        check=False,
    )


def one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aes-hmac: error: "), result.stderr
    return lines[0]


def aescrypt_blob(data: bytes) -> bytes:
    out = io.BytesIO()
    pyAesCrypt.encryptStream(io.BytesIO(data), out, OLD, 64 * 1024)
    return out.getvalue()


@pytest.mark.parametrize("size", [0, 1, 70_000])
def test_aescrypt_file_to_file(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "in.aes").write_bytes(aescrypt_blob(data))
    result = run(
        ["--from", "aescrypt", tmp_path / "in.aes", "-o", tmp_path / "out", *PASSWORDS, *CHEAP]
    )
    assert result.returncode == 0, result.stderr
    aes_hmac.decrypt_file(tmp_path / "out", tmp_path / "plain", NEW)
    assert (tmp_path / "plain").read_bytes() == data


def test_aescrypt_pipe_to_pipe() -> None:
    data = os.urandom(5000)
    result = run(["--from", "aescrypt", *PASSWORDS, *CHEAP], stdin=aescrypt_blob(data))
    assert result.returncode == 0, result.stderr
    out = io.BytesIO()
    aes_hmac.decrypt_stream(io.BytesIO(result.stdout), out, NEW)
    assert out.getvalue() == data


@pytest.mark.parametrize(
    ("damage", "message"),
    [("hmac", "data damaged at byte"), ("password", "wrong password or damaged header")],
)
def test_aescrypt_failure_leaves_no_output(tmp_path: Path, damage: str, message: str) -> None:
    blob = bytearray(aescrypt_blob(os.urandom(100)))
    env = {}
    if damage == "hmac":
        blob[-1] ^= 1
    else:
        env["OLD_SECRET"] = "wrong"
    (tmp_path / "in.aes").write_bytes(bytes(blob))
    result = run(
        ["--from", "aescrypt", tmp_path / "in.aes", "-o", tmp_path / "out", *PASSWORDS, *CHEAP],
        **env,
    )
    assert result.returncode == 1
    assert message in one_error_line(result)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.aes"]


@pytest.mark.parametrize("stdin", ["pipe", "file"])
def test_aescrypt_forged_block_to_stdout_writes_nothing(tmp_path: Path, stdin: str) -> None:
    """Regression: a CBC bit flip found only by the final HMAC never reaches stdout."""
    (tmp_path / "in.aes").write_bytes(forged_aescrypt(password=OLD))
    args = [AES_HMAC, "import", "--from", "aescrypt", *PASSWORDS, *CHEAP]
    with open(tmp_path / "in.aes", "rb") as source:
        result = subprocess.run(
            args,
            stdin=source if stdin == "file" else None,
            input=None if stdin == "file" else source.read(),
            capture_output=True,
            env={**os.environ, **SECRETS},
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "aes crypt hmac mismatch or truncated" in one_error_line(result)
    assert result.stdout == b""


def test_aescrypt_stdin_file_to_stdout(tmp_path: Path) -> None:
    data = os.urandom(70_000)
    (tmp_path / "in.aes").write_bytes(aescrypt_blob(data))
    with open(tmp_path / "in.aes", "rb") as source:
        result = subprocess.run(
            [AES_HMAC, "import", "--from", "aescrypt", *PASSWORDS, *CHEAP],
            stdin=source,
            capture_output=True,
            env={**os.environ, **SECRETS},
            timeout=60,
            check=False,
        )
    assert result.returncode == 0, result.stderr
    out = io.BytesIO()
    aes_hmac.decrypt_stream(io.BytesIO(result.stdout), out, NEW)
    assert out.getvalue() == data


def test_fernet_lines(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    messages = [b"first", b"", b"third \x00 bytes"]
    lines = b"".join(Fernet(key).encrypt(m) + b"\n" for m in messages)
    result = run(["--from", "fernet", *PASSWORDS, *CHEAP], stdin=lines, OLD_SECRET=key.decode())
    assert result.returncode == 0, result.stderr
    tokens = result.stdout.decode().split()
    assert [aes_hmac.decrypt(t, NEW) for t in tokens] == messages
    records = lines.splitlines()
    flipped = b"B" if records[1][-6:-5] == b"A" else b"A"
    records[1] = records[1][:-6] + flipped + records[1][-5:]  # second token's tag changed
    bad = b"\n".join(records) + b"\n"
    (tmp_path / "tokens").write_bytes(bad)
    failed = run(
        ["--from", "fernet", tmp_path / "tokens", "-o", tmp_path / "out", *PASSWORDS, *CHEAP],
        OLD_SECRET=key.decode(),
    )
    assert failed.returncode == 1
    assert "line 2: fernet token: wrong key or tampered" in one_error_line(failed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens"]


def test_legacy_json_lines(tmp_path: Path) -> None:
    case = load("compat_legacy.json")["tests"][0]
    record = {
        "ciphertext": case["ciphertext"],
        **{k: base64.b64encode(bytes.fromhex(case[k])).decode() for k in ("iv", "salt", "mac")},
    }
    stdin = (json.dumps(record) + "\n").encode()
    ok = run(["--from", "legacy", "--password-env", "PW", *CHEAP], stdin=stdin, PW=case["password"])
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr.decode() == LEGACY_WARNING  # issue 10 #2: once, on every run
    assert aes_hmac.decrypt(ok.stdout.decode().strip(), case["password"]) == case["plaintext"]
    wrong = run(["--from", "legacy", "--password-env", "PW", *CHEAP], stdin=stdin, PW="nope")
    assert wrong.returncode == 1 and "line 1:" in one_error_line(after_warning(wrong))
    usage = run(["--from", "legacy", *PASSWORDS], stdin=stdin)
    assert usage.returncode == 2 and "takes no new password" in one_error_line(usage)
    junk = run(["--from", "legacy", "--password-env", "PW"], stdin=b"{}\n", PW="x")
    assert junk.returncode == 1
    assert "line 1: invalid legacy input" in one_error_line(after_warning(junk))


LEGACY_WARNING = (
    "aes-hmac: warning: the design-note format is a padding oracle (its MAC does not cover the"
    " IV): convert only data you hold, never tuples someone else can submit\n"
)


def after_warning(
    result: subprocess.CompletedProcess[bytes],
) -> subprocess.CompletedProcess[bytes]:
    """``result`` without the legacy warning that starts its stderr."""
    assert result.stderr.decode().startswith(LEGACY_WARNING), result.stderr
    stderr = result.stderr[len(LEGACY_WARNING.encode()) :]
    return subprocess.CompletedProcess(result.args, result.returncode, result.stdout, stderr)


def test_existing_output_needs_force(tmp_path: Path) -> None:
    (tmp_path / "in.aes").write_bytes(aescrypt_blob(b"data"))
    (tmp_path / "out").write_bytes(b"keep me")
    args = ["--from", "aescrypt", tmp_path / "in.aes", "-o", tmp_path / "out", *PASSWORDS, *CHEAP]
    refused = run(args)
    assert refused.returncode == 1 and "exists" in one_error_line(refused)
    assert (tmp_path / "out").read_bytes() == b"keep me"
    assert run([*args, "--force"]).returncode == 0
    aes_hmac.decrypt_file(tmp_path / "out", tmp_path / "plain", NEW)
    assert (tmp_path / "plain").read_bytes() == b"data"


@pytest.mark.parametrize("lines", [b"", b"gAAAAABnot-a-real-token\n"])
def test_wrong_fernet_key_is_not_blamed_on_a_line(lines: bytes) -> None:
    """Review 2: a malformed Fernet key was reported as "line 1: invalid fernet input"."""
    result = run(["--from", "fernet", *PASSWORDS, *CHEAP], stdin=lines, OLD_SECRET="short key")
    assert result.returncode == 1
    assert one_error_line(result) == (
        "aes-hmac: error: the Fernet key must be 32 url-safe base64-encoded bytes"
    )
    assert result.stdout == b""


def test_fifo_output(tmp_path: Path) -> None:
    """Review 2, 1.1: a FIFO output is written in place (no --force), never replaced."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    sink = tmp_path / "got"
    with subprocess.Popen(["sh", "-c", 'cat "$1" > "$2"', "sh", str(fifo), str(sink)]) as reader:
        result = run(
            ["--from", "aescrypt", "-o", fifo, *PASSWORDS, *CHEAP], stdin=aescrypt_blob(b"data")
        )
        reader.wait(timeout=60)
    assert result.returncode == 0, result.stderr
    assert fifo.is_fifo()
    out = io.BytesIO()
    aes_hmac.decrypt_stream(io.BytesIO(sink.read_bytes()), out, NEW)
    assert out.getvalue() == b"data"


def test_aescrypt_binary_password_is_refused_before_the_new_one(tmp_path: Path) -> None:
    """The source secret is checked once, up front: no new password is asked for in vain."""
    password_file = tmp_path / "password"
    password_file.write_bytes(b"\xff\xfe not utf-8\n")
    source = tmp_path / "in.aes"
    source.write_bytes(aescrypt_blob(b"data"))
    result = run(["--from", "aescrypt", "--password-file", password_file, source, "-o", "-"])
    assert result.returncode == 1
    assert one_error_line(result) == "aes-hmac: error: the AES Crypt password must be UTF-8 text"
    assert result.stdout == b""
