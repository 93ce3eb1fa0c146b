"""The "CLI odds" of issue 16, through the installed ``aes-hmac`` script in subprocesses: file
descriptor options, the encrypt-side memory advice, help and version on a full device, key
files fed in pieces, rekey interrupted after its commit, Ctrl-C while the program loads, a
folder given without ``-r``. The in-process checks of the same helpers are at the end.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_cli import AES_HMAC, CHEAP, PASSWORD, assert_one_error, run

import aes_hmac
from aes_hmac import cli
from aes_hmac.cli import messages, options

ENV = {"P": PASSWORD}
NEW_PASSWORD = "a different horse, battery and staple"
TIMEOUT = 60.0


def fd_options() -> list[tuple[tuple[str, ...], str]]:
    """(command words, option) for every option of every command that takes a descriptor."""
    found: list[tuple[tuple[str, ...], str]] = []

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, (*words, name))
            elif action.type is options.fd_number:
                found.append((words, action.option_strings[0]))

    walk(cli.build_parser(), ())
    return found


# --- 1. descriptor numbers ----------------------------------------------------------------


BAD_FDS = ["2147483648", "9" * 5000, "-1", "97"]
"""Past a C int, past int()'s digit limit, negative, not open (subprocess closes what it does
not pass, so 97 is not open in the child)."""


def fd_cases() -> list[tuple[tuple[str, ...], str, str]]:
    """Every descriptor option with the number that overflowed, and every bad number once."""
    cases = [(command, option, BAD_FDS[0]) for command, option in fd_options()]
    return cases + [(("decrypt",), "--password-fd", value) for value in BAD_FDS[1:]]


@pytest.mark.slow
@pytest.mark.parametrize(("command", "option", "value"), fd_cases())
def test_fd_options_refuse_bad_numbers_as_usage_errors(
    command: tuple[str, ...], option: str, value: str
) -> None:
    """A number past a C int was an ``OverflowError`` traceback; one that is not open failed
    only at the read (exit 1, after the other checks). Now each is a usage error naming the
    option, before anything is read."""
    result = run([*command, f"{option}={value}"], stdin=b"data")
    assert_one_error(result, 2, f"argument {option}: ")
    assert result.stdout == b""


def test_every_command_with_a_password_has_fd_options() -> None:
    """The parametrization above is not empty and covers the commands that read passwords."""
    commands = {" ".join(command) for command, _ in fd_options()}
    assert {"encrypt", "decrypt", "rekey", "import", "token encrypt", "token decrypt"} <= commands
    assert (("rekey",), "--new-password-fd") in fd_options()


# --- 2. memory advice on encrypt ----------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("command", "kdf_args", "advice"),
    [
        (["encrypt"], ["--kdf", "scrypt", "--scrypt-log2n", "40"], "--scrypt-log2n or --scrypt-r"),
        (["token", "encrypt"], ["--kdf", "scrypt", "--scrypt-log2n", "40"], "--scrypt-log2n"),
        (
            ["encrypt"],
            ["--kdf", "argon2id", "--argon2-memory-kib", "4000000000"],
            "--argon2-memory",
        ),
    ],
)
def test_encrypt_memory_failure_names_the_cost_option_to_lower(
    command: list[str], kdf_args: list[str], advice: str
) -> None:
    """1 PiB of scrypt (4 TB of Argon2id) is refused by the system: the advice was "lower
    --max-kdf-memory-mib", a decrypt option that does nothing for encrypt."""
    result = run([*command, "--password-env", "P", *kdf_args], stdin=b"data", env=ENV)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.decode().splitlines()
    assert "decrypting will need --max-kdf-memory-mib" in lines[0]  # the warning stays true
    error = lines[-1]
    assert error.startswith("aes-hmac: error: kdf needs more memory than is available"), error
    assert f"lower {advice}" in error
    assert "--max-" not in error
    assert "Traceback" not in result.stderr.decode()


def test_memory_flags_come_from_the_registry() -> None:
    """Which cost flags drive memory is asked of each KDF class, none is listed by hand."""
    flags = {kdf.name: options.memory_flags(kdf) for kdf in aes_hmac.KDFS}
    assert flags == {
        "pbkdf2": [],
        "scrypt": ["--scrypt-log2n", "--scrypt-r"],
        "argon2id": ["--argon2-memory-kib"],
    }


def test_decrypt_keeps_its_limit_advice_for_memory_refused() -> None:
    exc = aes_hmac.KdfLimitError(
        "kdf needs more memory than is available (9 bytes)", "max_memory_bytes", 9, 0
    )
    text = messages.describe(exc)
    assert text.startswith(str(exc))
    assert "lower --max-kdf-memory-mib" in text and "more memory" in text


def test_new_slot_leaves_other_limit_errors_alone() -> None:
    """An existing slot's limit error (rekey opening the old slot) keeps describe's advice."""
    kdf = aes_hmac.Scrypt(log2_n=14)
    other = aes_hmac.KdfLimitError(
        "kdf memory 9 bytes exceeds the limit 8", "max_memory_bytes", 9, 8
    )
    with pytest.raises(aes_hmac.KdfLimitError) as raised, messages.new_slot(kdf):
        raise other
    assert raised.value is other
    refused = aes_hmac.KdfLimitError("no memory", "max_memory_bytes", kdf.memory_bytes(), 0)
    with pytest.raises(cli.common.CliError, match="lower --scrypt-log2n or --scrypt-r"):
        with messages.new_slot(kdf):
            raise refused


# --- 3. help and version on a full device --------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args", [["--help"], ["--version"], ["encrypt", "--help"], ["rekey", "-h"], ["keygen"]]
)
def test_help_and_version_to_a_full_device_fail(args: list[str]) -> None:
    """argparse ignores write errors: ``--help >/dev/full`` exited 0 with nothing written.
    Every text on stdout (a key from keygen too) names stdout in its error line."""
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [AES_HMAC, *args], stdout=full, stderr=subprocess.PIPE, timeout=TIMEOUT, check=False
        )
    assert_one_error(result, 1, "cannot write stdout: No space left on device")


@pytest.mark.slow
def test_help_still_prints() -> None:
    result = run(["--version"])
    assert result.returncode == 0
    assert result.stdout == f"aes-hmac {aes_hmac.__version__}\n".encode()
    assert result.stderr == b""


# --- 4. key files from a pipe, in pieces ---------------------------------------------------

PIECES_WRITER = """
import sys, time
text = open(sys.argv[1], "rb").read()
with open(sys.argv[2], "wb", buffering=0) as fifo:
    for i in range(0, len(text), 7):
        fifo.write(text[i:i + 7])
        time.sleep(0.05)
"""
"""Writes a file into a FIFO 7 bytes at a time with pauses, as a slow ``<(...)`` would."""


@pytest.mark.slow
@pytest.mark.parametrize("option", ["--key-file", "--password-file"])
def test_key_and_password_files_from_a_fifo_in_pieces(tmp_path: Path, option: str) -> None:
    """``--key-file <(...)`` read only the first piece: "key text must start with ..."."""
    secret = tmp_path / "secret"
    if option == "--key-file":
        assert run(["keygen", "-o", secret]).returncode == 0
    else:
        secret.write_text(PASSWORD + "\n")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen([sys.executable, "-c", PIECES_WRITER, str(secret), str(fifo)])
    try:
        enc = run(["encrypt", option, fifo, *([] if option == "--key-file" else CHEAP)], stdin=b"x")
    finally:
        writer.wait(timeout=TIMEOUT)
    assert enc.returncode == 0, enc.stderr
    dec = run(["decrypt", option, secret], stdin=enc.stdout)
    assert dec.returncode == 0, dec.stderr
    assert dec.stdout == b"x"


@pytest.mark.slow
def test_key_file_over_the_cap_is_refused_unread_to_the_end(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(b"aes-hmac-key-1:" + b"A" * 5000)
    assert_one_error(run(["encrypt", "--key-file", big], stdin=b"x"), 1, "longer than 1024 bytes")


# --- 5. rekey interrupted around its commit ------------------------------------------------

SIGNAL_AT_RENAME = """
import os, signal


def signalling(rename):
    # Fault injection for the rekey tests: SIGINT right before or right after the rename that
    # commits an edit. os.kill to our own single thread delivers it before it returns.
    def call(src, dst, *args, **kwargs):
        when = os.environ.get("AES_HMAC_TEST_SIGINT_AT_RENAME")
        if when == "before":
            os.kill(os.getpid(), signal.SIGINT)
        rename(src, dst, *args, **kwargs)
        if when == "after":
            os.kill(os.getpid(), signal.SIGINT)

    return call


os.replace = signalling(os.replace)
os.rename = signalling(os.rename)
"""
"""A ``sitecustomize`` for the child: the signal lands at the commit, by construction."""


def rekey_with_signal(tmp_path: Path, when: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(SIGNAL_AT_RENAME)
    env = {"PYTHONPATH": str(hook), "AES_HMAC_TEST_SIGINT_AT_RENAME": when, "P": PASSWORD}
    env["N"] = NEW_PASSWORD
    return run(["rekey", "--password-env", "P", *args], env=env)


def opens(path: Path, password: str) -> bool:
    result = run(["decrypt", "--password-env", "P", path, "-o", "-"], env={"P": password})
    return result.returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", [[], ["--add"], ["--remove"]])
def test_rekey_interrupted_after_its_rename_reports_success(
    tmp_path: Path, mode: list[str]
) -> None:
    """The signal lands right after the rename: the change is on disk, so the exit is 0 with a
    note, not 130 "interrupted" for a change that was in fact made."""
    enc = tmp_path / "f.ahm"
    made = run(["encrypt", "--password-env", "P", *CHEAP, "-o", enc], stdin=b"data", env=ENV)
    assert made.returncode == 0, made.stderr
    if mode == ["--remove"]:  # a second slot, so the first can go
        added = run(
            ["rekey", "--password-env", "P", "--add", "--new-password-env", "N", *CHEAP, enc],
            env={**ENV, "N": NEW_PASSWORD},
        )
        assert added.returncode == 0, added.stderr
    new = [] if mode == ["--remove"] else ["--new-password-env", "N", *CHEAP]
    result = rekey_with_signal(tmp_path, "after", *mode, *new, str(enc))
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert err == f"aes-hmac: interrupted after the change was saved: {enc} has its new key slots\n"
    assert opens(enc, PASSWORD) == (mode == ["--add"])
    assert opens(enc, NEW_PASSWORD)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.ahm", "hook"]


@pytest.mark.slow
def test_rekey_interrupted_before_its_rename_changes_nothing(tmp_path: Path) -> None:
    enc = tmp_path / "f.ahm"
    made = run(["encrypt", "--password-env", "P", *CHEAP, "-o", enc], stdin=b"data", env=ENV)
    assert made.returncode == 0, made.stderr
    before = enc.read_bytes()
    result = rekey_with_signal(tmp_path, "before", "--new-password-env", "N", *CHEAP, str(enc))
    assert_one_error(result, 130, "aes-hmac: error: interrupted")
    assert enc.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.ahm", "hook"]


# --- 6. Ctrl-C while the program loads -----------------------------------------------------

RUNS = 20
MAX_DELAY = 0.3
INTERPRETER_START = "Fatal Python error: init_"
"""CPython's own start (its io and site imports) interrupted: no code of this program has run
yet, and none can (see ``_aes_hmac_cli``)."""
SCRIPT_IMPORT = (
    'aes-hmac", line 3, in <module>\n    from _aes_hmac_cli import entry\nKeyboardInterrupt\n'
)
"""The generated console script's import of our first module, interrupted while the import
system looks for and compiles it (about a millisecond; none of its lines has run yet)."""


def before_our_code(returncode: int, text: str) -> bool:
    """Whether a SIGINT stopped the process before any line of this program ran."""
    if returncode == -signal.SIGINT and not text:
        return True  # before the interpreter installed its handler: the default action
    if text.startswith(INTERPRETER_START):
        return True
    return text.count('  File "') == 1 and text.endswith(SCRIPT_IMPORT)


def test_before_our_code_tells_a_library_traceback_apart() -> None:
    """What main printed (a frame inside the package) is never taken for the start-up."""
    library = (
        "Traceback (most recent call last):\n"
        '  File "/venv/bin/aes-hmac", line 3, in <module>\n'
        "    from aes_hmac.cli import entry\n"
        '  File "/src/aes_hmac/__init__.py", line 12, in <module>\n'
        "    from ._kdf import KDFS\n"
        "KeyboardInterrupt\n"
    )
    assert not before_our_code(-signal.SIGINT, library)
    script = 'Traceback (most recent call last):\n  File "/venv/bin/' + SCRIPT_IMPORT
    assert before_our_code(-signal.SIGINT, script)
    assert not before_our_code(130, "aes-hmac: error: interrupted\n")


@pytest.mark.slow
def test_ctrl_c_while_loading_prints_no_traceback() -> None:
    """SIGINT at random moments of the first 300 ms (loading the library takes most of it):
    the script imported the package before any handler, so most of these were a
    ``KeyboardInterrupt`` traceback. The command waits on stdin, so every signal lands before
    it could finish. Signals that land before any line of this program runs are CPython's to
    handle (``before_our_code``) and are left out."""
    rng = random.Random(16)
    ours = 0
    for _ in range(RUNS):
        proc = subprocess.Popen(
            [AES_HMAC, "encrypt", "--password-env", "P", *CHEAP],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **ENV},
        )
        time.sleep(rng.uniform(0, MAX_DELAY))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=TIMEOUT)
        text = err.decode()
        if before_our_code(proc.returncode, text):
            continue
        ours += 1
        assert (proc.returncode, text) == (130, "aes-hmac: error: interrupted\n")
    assert ours >= RUNS // 2  # most signals landed while our code ran


# --- 7. a folder without -r ----------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("command", ["encrypt", "decrypt"])
def test_folder_without_recursive_suggests_it(tmp_path: Path, command: str) -> None:
    """``encrypt DIR`` said only "DIR: Is a directory"; ``decrypt DIR`` that DIR does not end
    in .ahm."""
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(b"jpg")
    result = run([command, "--password-env", "P", folder], env=ENV)
    assert_one_error(result, 2, f"{folder} is a folder: use -r to {command} a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]
