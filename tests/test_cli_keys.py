"""Key files, tokens, output names, completion and messages of the installed ``aes-hmac``
script (issue 12): each case drives the script through a subprocess.
"""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

import pytest
from test_cli import CHEAP, PASSWORD, assert_one_error, data_of, run

from aes_hmac import Key

pytestmark = pytest.mark.slow


@pytest.fixture
def env() -> dict[str, str]:
    return {"P": PASSWORD}


def keygen(tmp_path: Path, name: str = "my.key") -> Path:
    path = tmp_path / name
    result = run(["keygen", "-o", path])
    assert result.returncode == 0, result.stderr
    return path


# --- keygen and key files (#1) ------------------------------------------------------------


def test_keygen_writes_a_0600_key_file_the_library_reads(tmp_path: Path) -> None:
    path = keygen(tmp_path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("aes-hmac-key-1:") and text.endswith("\n")
    Key.from_text(text)  # the library and the CLI share the format
    again = run(["keygen", "-o", path])
    assert_one_error(again, 1, "exists: a key file is never overwritten")
    assert path.read_text() == text
    to_stdout = run(["keygen"])
    assert to_stdout.returncode == 0
    assert to_stdout.stdout.decode() != text
    Key.from_text(to_stdout.stdout)


def test_key_file_round_trip_and_inspect_names_it(tmp_path: Path, env: dict[str, str]) -> None:
    key = keygen(tmp_path)
    (tmp_path / "data").write_bytes(data_of(5000))
    assert run(["encrypt", "--key-file", key, tmp_path / "data"]).returncode == 0
    shown = run(["inspect", tmp_path / "data.ahm"]).stdout.decode()
    assert "slot 1: key file (raw 256-bit key, no KDF)" in shown
    (tmp_path / "data").unlink()
    assert run(["decrypt", "--key-file", key, tmp_path / "data.ahm"]).returncode == 0
    assert (tmp_path / "data").read_bytes() == data_of(5000)
    # Library-made files open with the key file too.
    lib = Key.from_text(key.read_text())
    assert lib.decrypt(lib.encrypt(b"x")) == b"x"


def test_password_and_key_file_slots_in_one_file(tmp_path: Path, env: dict[str, str]) -> None:
    key = keygen(tmp_path)
    (tmp_path / "f").write_bytes(b"either opens it")
    assert run(["encrypt", "--password-env", "P", *CHEAP, tmp_path / "f"], env=env).returncode == 0
    enc = tmp_path / "f.ahm"
    added = run(["rekey", "--add", enc, "--password-env", "P", "--new-key-file", key], env=env)
    assert added.returncode == 0, added.stderr
    by_key = run(["decrypt", "--key-file", key, enc, "-o", "-"])
    by_password = run(["decrypt", "--password-env", "P", enc, "-o", "-"], env=env)
    assert by_key.stdout == by_password.stdout == b"either opens it"
    removed = run(["rekey", "--remove", enc, "--key-file", key])
    assert removed.returncode == 0, removed.stderr
    assert_one_error(
        run(["decrypt", "--key-file", key, enc, "-o", "-"]), 1, "opens with a password, not a key"
    )


def test_key_file_only_file_given_a_password_says_so(tmp_path: Path, env: dict[str, str]) -> None:
    key = keygen(tmp_path)
    (tmp_path / "f").write_bytes(b"x")
    assert run(["encrypt", "--key-file", key, tmp_path / "f"]).returncode == 0
    result = run(["decrypt", "--password-env", "P", tmp_path / "f.ahm", "-o", "-"], env=env)
    assert_one_error(result, 1, "this file opens with a key file (--key-file), not a password")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "not a key file: key text must start with 'aes-hmac-key-1:'"),
        (b"aes-hmac-key-1:short\n", "not a key file: key text must have 43 base64url"),
        (b"x" * 5000, "not a key file: longer than 1024 bytes"),
    ],
)
def test_bad_key_file_is_named_never_quoted(tmp_path: Path, content: bytes, message: str) -> None:
    bad = tmp_path / "bad.key"
    bad.write_bytes(content)
    result = run(["encrypt", "--key-file", bad, "-o", tmp_path / "out"], stdin=b"x")
    assert_one_error(result, 1, f"--key-file {bad} is {message}")
    assert b"short" not in result.stderr and b"xxxx" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_key_file_takes_no_kdf_options_and_no_password(tmp_path: Path) -> None:
    key = keygen(tmp_path)
    result = run(["encrypt", "--key-file", key, "--iterations", "5", "-o", "-"], stdin=b"x")
    assert_one_error(result, 2, "--key-file makes a raw-key slot: it takes no KDF options")
    result = run(["encrypt", "--key-file", key, "--password-env", "P", "-o", "-"])
    assert_one_error(result, 2, "not allowed with")


# --- tokens from the shell (#2) -----------------------------------------------------------


def test_token_round_trip_with_password_and_associated_data(env: dict[str, str]) -> None:
    seal = ["token", "encrypt", "--password-env", "P", *CHEAP, "--associated-data", "row 7"]
    made = run(seal, stdin=b"\x00secret\xff", env=env)
    assert made.returncode == 0, made.stderr
    token = made.stdout
    assert token.endswith(b"\n") and token.count(b"\n") == 1
    opened = run(
        ["token", "decrypt", "--password-env", "P", "--associated-data", "row 7"],
        stdin=token,
        env=env,
    )
    assert opened.returncode == 0 and opened.stdout == b"\x00secret\xff"
    other_row = run(
        ["token", "decrypt", "--password-env", "P", "--associated-data", "row 8"],
        stdin=token,
        env=env,
    )
    assert other_row.returncode == 1 and other_row.stdout == b""


def test_token_with_key_file_and_from_a_file(tmp_path: Path) -> None:
    key = keygen(tmp_path)
    (tmp_path / "value").write_bytes(b"api key")
    made = run(["token", "encrypt", "--key-file", key, tmp_path / "value"])
    (tmp_path / "value.token").write_bytes(made.stdout)
    opened = run(["token", "decrypt", "--key-file", key, tmp_path / "value.token"])
    assert opened.stdout == b"api key"
    lib = Key.from_text(key.read_text())
    assert lib.decrypt(made.stdout.decode()) == b"api key"


def test_token_given_to_decrypt_and_file_given_to_token_decrypt(
    tmp_path: Path, env: dict[str, str]
) -> None:
    token = run(["token", "encrypt", "--password-env", "P", *CHEAP], stdin=b"v", env=env).stdout
    result = run(["decrypt", "--password-env", "P"], stdin=token, env=env)
    assert_one_error(result, 1, "the input is a token, not a file: use 'aes-hmac token decrypt'")
    enc = run(["encrypt", "--password-env", "P", *CHEAP, "-a"], stdin=b"v", env=env).stdout
    result = run(["token", "decrypt", "--password-env", "P"], stdin=enc, env=env)
    assert_one_error(result, 1, "an aes-hmac file, not a token: use 'aes-hmac decrypt'")


# --- output names (#3) ---------------------------------------------------------------------


def test_default_output_names(tmp_path: Path, env: dict[str, str]) -> None:
    src = tmp_path / "report.pdf"
    src.write_bytes(data_of(3000))
    assert run(["encrypt", "--password-env", "P", *CHEAP, src], env=env).returncode == 0
    enc = tmp_path / "report.pdf.ahm"
    assert enc.read_bytes().startswith(b"AESHMAC")
    again = run(["encrypt", "--password-env", "P", *CHEAP, src], env=env)
    assert_one_error(again, 1, f"output file {enc} exists: use --force")
    refused = run(["decrypt", "--password-env", "P", enc], env=env)
    assert_one_error(refused, 1, f"output file {src} exists: use --force")
    src.unlink()
    assert run(["decrypt", "--password-env", "P", enc], env=env).returncode == 0
    assert src.read_bytes() == data_of(3000)
    unnamed = run(["decrypt", "--password-env", "P", src], env=env)
    assert_one_error(unnamed, 2, "does not end in .ahm; give -o FILE, or -o - for stdout")
    piped = run(["encrypt", "--password-env", "P", *CHEAP], stdin=b"pipe", env=env)
    assert piped.stdout.startswith(b"AESHMAC")
    back = run(["decrypt", "--password-env", "P"], stdin=piped.stdout, env=env)
    assert back.stdout == b"pipe"


# --- completion, help, -V (#4, #9) -------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts(shell: str) -> None:
    result = run(["completion", shell])
    assert result.returncode == 0, result.stderr
    script = result.stdout.decode()
    for word in ("keygen", "token", "--key-file", "--password-file", "decrypt"):
        assert word in script, word


def test_bash_completion_completes_commands(tmp_path: Path) -> None:
    script = tmp_path / "complete.bash"
    script.write_bytes(run(["completion", "bash"]).stdout)
    probe = (
        f"source {script}; COMP_WORDS=(aes-hmac ke); COMP_CWORD=1; COMP_LINE='aes-hmac ke';"
        " COMP_POINT=${#COMP_LINE}; _shtab_aes_hmac; echo ${COMPREPLY[@]}"
    )
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", probe], capture_output=True, text=True, check=False
    )
    assert "keygen" in result.stdout.split(), result.stderr


def test_version_alias_and_manual_help() -> None:
    short, long = run(["-V"]), run(["--version"])
    assert short.returncode == long.returncode == 0
    assert short.stdout == long.stdout and short.stdout.startswith(b"aes-hmac ")
    manual = run(["--help"]).stdout.decode()
    for section in ("files:", "secrets:", "progress:", "examples:", "exit status:"):
        assert section in manual
    for command in ("keygen", "token", "completion"):
        assert command in manual


# --- messages that mislead (#7) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "failed to read header: not an aes-hmac stream (0 bytes, too short)"),
        (b"hello", "failed to read header: not an aes-hmac stream (5 bytes, too short)"),
        (b"AESHMAC\x00\x01" + bytes(33), "failed to read header: truncated"),
        (b"AESHMAC\x00" + bytes(34), "failed to read header: unsupported version 0"),
    ],
)
def test_short_input_is_not_an_aes_hmac_file(
    data: bytes, message: str, env: dict[str, str]
) -> None:
    result = run(["decrypt", "--password-env", "P"], stdin=data, env=env)
    assert_one_error(result, 1, message)


def test_armor_after_leading_text_is_found(tmp_path: Path, env: dict[str, str]) -> None:
    armored = run(["encrypt", "--password-env", "P", *CHEAP, "-a"], stdin=b"mail body", env=env)
    mail = b"From: alice\nSubject: the file\n\nHi Bob, here it is:\n\n" + armored.stdout
    result = run(["decrypt", "--password-env", "P"], stdin=mail, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"mail body"


def test_rekey_refuses_armor_after_leading_text(tmp_path: Path, env: dict[str, str]) -> None:
    """Rekey rewrites the whole armored file: the text before the armor would be lost."""
    armored = run(["encrypt", "--password-env", "P", *CHEAP, "-a"], stdin=b"mail body", env=env)
    mail = tmp_path / "mail.txt"
    mail.write_bytes(b"Hi Bob, here it is:\n\n" + armored.stdout)
    env = {**env, "N": "another password"}
    result = run(["rekey", mail, "--password-env", "P", "--new-password-env", "N"], env=env)
    assert_one_error(result, 1, f"{mail} has text before its armor: remove that text first")
    assert mail.read_bytes().startswith(b"Hi Bob")
    body = run(["decrypt", "--password-env", "P", mail, "-o", "-"], env=env)
    assert body.stdout == b"mail body"


def test_trailing_data_is_reported(tmp_path: Path, env: dict[str, str]) -> None:
    enc = run(["encrypt", "--password-env", "P", *CHEAP], stdin=b"x" * 100, env=env).stdout
    for extra in (b"12345", b"0123456789abcdef"):
        result = run(["decrypt", "--password-env", "P"], stdin=enc + extra, env=env)
        assert result.returncode == 1
        assert b"aes-hmac: error: " in result.stderr


def test_password_file_that_is_a_folder_names_it(tmp_path: Path) -> None:
    result = run(["encrypt", "--password-file", tmp_path, *CHEAP, "-o", "-"], stdin=b"x")
    assert_one_error(result, 1, f"cannot read --password-file {tmp_path}: it is a folder")
