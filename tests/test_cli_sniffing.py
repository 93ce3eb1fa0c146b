"""The CLI reads and parses an input's header once (``cli/sniffing.py``) and hands it on to the
library, which decrypts from there: no second open, no second parse, no look-ahead."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _writing import wait_for_output

import aes_hmac
from aes_hmac import armor
from aes_hmac.cli.common import CliError
from aes_hmac.cli.sniffing import open_encrypted

PASSWORD = "correct horse battery staple"
CHEAP = aes_hmac.PBKDF2(iterations=1000)
CHUNK = 4096
DATA = bytes(range(256)) * 80  # 20 KiB: five full chunks and an empty final one


def encrypted(data: bytes = DATA) -> bytes:
    out = io.BytesIO()
    aes_hmac.encrypt_stream(io.BytesIO(data), out, PASSWORD, kdf=CHEAP, chunk_size=CHUNK)
    return out.getvalue()


def test_a_binary_file_is_handed_on_itself_past_its_header(tmp_path: Path) -> None:
    """The engine reads the opened file directly from its first chunk: no wrapper in between,
    no header byte read twice."""
    stream = encrypted()
    path = tmp_path / "data.ahm"
    path.write_bytes(stream)
    with open(path, "rb") as fin:
        src, armored, header = open_encrypted(fin)
        assert src is fin
        assert not armored
        assert fin.tell() == header.info.header_size
        assert header.info == aes_hmac.inspect_stream(io.BytesIO(stream))
        out = io.BytesIO()
        aes_hmac.decrypt_stream(src, out, PASSWORD, header=header, workers=1)
    assert out.getvalue() == DATA


def test_armor_after_leading_text_goes_on_from_its_header() -> None:
    text = io.BytesIO()
    with armor.ArmorWriter(text) as writer:
        writer.write(encrypted())
    src, armored, header = open_encrypted(io.BytesIO(b"Here it is:\n\n" + text.getvalue()))
    assert armored
    out = io.BytesIO()
    aes_hmac.decrypt_stream(src, out, PASSWORD, header=header)
    assert out.getvalue() == DATA


def test_a_token_gets_the_hint_before_any_prompt() -> None:
    token = aes_hmac.encrypt(b"x", PASSWORD, kdf=CHEAP).encode()
    with pytest.raises(CliError, match="use 'aes-hmac token decrypt'"):
        open_encrypted(io.BytesIO(token))


@pytest.mark.slow
def test_decrypt_starts_on_a_pipe_before_64_kib_arrived(tmp_path: Path) -> None:
    """``aes-hmac decrypt`` from a pipe reads the header's bytes and goes on: it used to read
    64 KiB ahead (and parse the header twice) before decrypting anything, so a slow producer's
    first chunks waited for more input (or its end)."""
    script = shutil.which("aes-hmac", path=str(Path(sys.executable).parent))
    assert script is not None
    stream = encrypted()
    first = len(stream) - CHUNK  # all but the last chunks: well under 64 KiB
    out = tmp_path / "out.bin"
    env = {**os.environ, "AES_HMAC_TEST_PW": PASSWORD}
    proc = subprocess.Popen(
        [script, "decrypt", "--password-env", "AES_HMAC_TEST_PW", "--workers", "1", "-o", out],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    try:
        proc.stdin.write(stream[:first])
        proc.stdin.flush()
        # Plaintext of the chunks already sent appears while the pipe stays open (within the
        # helper's generous 60 s: it proves no wait for more input, not a speed).
        wait_for_output(proc, tmp_path, at_least=2 * CHUNK)
        proc.stdin.write(stream[first:])
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else b""
    finally:
        proc.kill()
        proc.wait()
    assert out.read_bytes() == DATA
