"""In-process tests of the CLI package's helpers: passwords, options, messages, the parser.

Fast (no subprocess); the end-to-end behaviour is in test_cli.py and its siblings.
"""

from __future__ import annotations

import dataclasses
import io
import re
import sys

import pytest

import aes_hmac
from aes_hmac import cli
from aes_hmac.cli import common, import_sources, io_policy, messages, options, passwords
from aes_hmac.cli.commands import encrypt, import_

PASSWORD = "correct horse battery staple"


@pytest.mark.parametrize(
    ("password", "weak"), [("abc", True), ("password1", True), (PASSWORD, False)]
)
def test_fallback_estimate(password: str, weak: bool) -> None:
    warning = passwords.fallback_warning(password)
    assert (warning is not None) is weak
    if warning is not None:
        assert "install zxcvbn" in warning


def test_strength_warning_without_zxcvbn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "zxcvbn", None)  # makes the import fail
    warning = passwords.strength_warning("password1")
    assert warning is not None and "bits" in warning


def test_generated_passphrase() -> None:
    first, second = passwords.generate_passphrase(), passwords.generate_passphrase()
    assert first != second
    assert re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){5}", first)
    assert passwords.strength_warning(first) is None


@pytest.mark.parametrize(("text", "size"), [("4096", 4096), ("64K", 65536), ("1m", 1 << 20)])
def test_chunk_size_parsing(text: str, size: int) -> None:
    assert options.chunk_size(text) == size


def test_progress_only_on_a_terminal_for_big_file_inputs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12 #8: no line under the threshold, none when the input is a pipe, none off a tty."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    big = io_policy.PROGRESS_MIN_BYTES
    assert io_policy.Progress(quiet=False, total=big, label="x", piped=False).callback is not None
    assert io_policy.Progress(quiet=False, total=big - 1, label="x", piped=False).callback is None
    assert io_policy.Progress(quiet=False, total=big, label="x", piped=True).callback is None
    assert io_policy.Progress(quiet=True, total=big, label="x", piped=False).callback is None
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert io_policy.Progress(quiet=False, total=big, label="x", piped=False).callback is None


def test_progress_bar_counts_plaintext_in_binary_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 12 #8: decrypt's bar shows plaintext bytes (the library reports ciphertext) in MiB."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    monkeypatch.setattr(io_policy, "_stderr_is_terminal", lambda: True)
    progress = io_policy.Progress(
        quiet=False, total=30 << 20, label="decrypt", piped=False, to_plain=lambda n: n // 2
    )
    assert progress.callback is not None
    progress.callback(24 << 20, None)
    text = out.getvalue()
    assert "decrypt" in text and "12.0MiB/30.0MiB" in text, text
    progress.close()


def test_shown_escapes_terminal_controls() -> None:
    assert common.shown("a\x1b]0;x\x07b") == "a\\x1b]0;x\\x07b"
    assert common.shown("\x9b\u202e\n\t") == "\\x9b\\u202e\\n\\t"
    assert common.shown("caf\u00e9 \udcff") == "caf\u00e9 \\xff"


@pytest.mark.parametrize(
    ("field", "option"),
    [
        ("max_pbkdf2_iterations", "pbkdf2-iterations"),
        ("max_memory_bytes", "kdf-memory-mib"),
        ("max_scrypt_p", "scrypt-p"),
        ("max_argon2_iterations", "argon2-iterations"),
        ("max_argon2_lanes", "argon2-lanes"),
    ],
)
def test_limit_hint_names_the_option(field: str, option: str) -> None:
    """The hint comes from the error's field, whatever its message says."""
    exc = aes_hmac.KdfLimitError(
        "failed to read header: some cost 9 exceeds the limit 8", field, 9, 8
    )
    assert messages.describe(exc) == f"{exc} (raise it with --max-{option})"


def test_every_limit_field_has_an_option() -> None:
    fields = {f.name for f in dataclasses.fields(aes_hmac.KdfLimits)}
    assert {option.field for option in options.LIMIT_OPTIONS} == fields


def test_limit_hint_leaves_other_messages_alone() -> None:
    exc = aes_hmac.HeaderError("wrong password or damaged header")
    assert messages.describe(exc) == "wrong password or damaged header"
    unknown = aes_hmac.KdfLimitError("a new cost 9 exceeds the limit 8", "max_new_cost", 9, 8)
    assert messages.describe(unknown) == "a new cost 9 exceeds the limit 8"


def test_import_and_inspect_share_the_io_options() -> None:
    parser = cli.build_parser()
    imp = parser.parse_args(["import", "--from", "fernet", "in", "-o", "out", "-f", "-q"])
    assert (imp.input, imp.output, imp.force, imp.quiet) == ("in", "out", True, True)
    assert not hasattr(imp, "workers")
    ins = parser.parse_args(["inspect"])
    assert ins.input == "-" and not hasattr(ins, "output")


@pytest.mark.parametrize("kdf", aes_hmac.KDFS, ids=lambda kdf: kdf.name)
def test_kdf_options_come_from_the_registry(kdf: type[options.Kdf]) -> None:
    """Every registered KDF gets its --kdf choice and cost flags; others' flags are refused."""
    parser = cli.build_parser()
    default = kdf()
    for spelling in (0, -1):  # the flag help shows (a former name if any), the derived one
        argv = ["encrypt", "--kdf", kdf.name]
        for option in kdf.options:
            flag = options.kdf_flags(kdf, option)[spelling]
            argv += [flag, str(getattr(default, option.field))]
        assert encrypt.KDF.read(parser.parse_args(argv)) == default
    for other in aes_hmac.KDFS:
        for option in other.options if other is not kdf else ():
            for flag in options.kdf_flags(other, option):
                args = parser.parse_args(["encrypt", "--kdf", kdf.name, flag, "1"])
                with pytest.raises(common.UsageError, match=f"needs --kdf {other.name}"):
                    encrypt.KDF.read(args)


def test_import_sources_are_the_from_choices() -> None:
    parser = cli.build_parser()
    for name in import_sources.SOURCES:
        assert parser.parse_args(["import", "--from", name]).source == name
    with pytest.raises(common.UsageError, match="invalid choice"):
        parser.parse_args(["import", "--from", "nothing-such"])
    for name in import_sources.SOURCES:
        assert f"--from {name}: " in import_.COMMAND.epilog
