"""Password sources: a file, a descriptor, an environment variable or the terminal prompt.

Also the new-password policy: asked twice, an empty answer generates a passphrase, weak ones
are warned about. Passwords are never command-line values and never appear in a message.
"""

from __future__ import annotations

import base64
import getpass
import importlib
import math
import os
import secrets
import string
import sys
from dataclasses import dataclass
from typing import Any, Final

from .common import CliError, note

MAX_PASSWORD_BYTES: Final = 64 << 10
"""A password file or descriptor is read up to its first line, and no further than this."""
GENERATED_GROUPS: Final = 6
"""Groups of 4 base32 characters in a generated passphrase: 6 x 20 = 120 bits from ``secrets``."""
MIN_FALLBACK_BITS: Final = 60
"""Without zxcvbn, passwords under this length x charset estimate get a warning."""
ZXCVBN_MIN_SCORE: Final = 3
"""zxcvbn score 3 ("safely unguessable") and up is not warned about."""
ZXCVBN_MAX_CHARS: Final = 100
"""zxcvbn gets slow on long inputs; past this many characters a password is strong anyway."""
GENERATE_HINT: Final = "leave the password empty to generate one"
"""Appended to a weak-password warning only when the password was typed at the prompt."""


@dataclass(frozen=True)
class PasswordSource:
    """Where one password comes from; all ``None`` means the interactive prompt."""

    file: str | None = None
    fd: int | None = None
    env: str | None = None
    option: str = "--password"

    @property
    def given(self) -> bool:
        """True when a file, descriptor or variable is named; False means the prompt."""
        return any(value is not None for value in (self.file, self.fd, self.env))


def _first_line(data: bytes, origin: str) -> str | bytes:
    """The first line of ``data`` without its line end; text when it is UTF-8, else bytes."""
    line = data.split(b"\n", 1)[0]
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line:
        raise CliError(f"the password from {origin} is empty")
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError:
        return line


def _read_bounded(fd: int, origin: str) -> bytes:
    """Read from ``fd`` until a line end or EOF, refusing more than MAX_PASSWORD_BYTES."""
    data = bytearray()
    while b"\n" not in data:
        piece = os.read(fd, 4096)
        if not piece:
            break
        data += piece
        if len(data) > MAX_PASSWORD_BYTES and b"\n" not in data[:MAX_PASSWORD_BYTES]:
            raise CliError(f"the password from {origin} is longer than {MAX_PASSWORD_BYTES} bytes")
    return bytes(data)


def _password_from_source(source: PasswordSource) -> str | bytes | None:
    """The password named by ``source``, or ``None`` when it says to prompt."""
    if source.file is not None:
        origin = f"{source.option}-file {source.file}"
        try:
            fd = os.open(source.file, os.O_RDONLY)
        except OSError as exc:
            raise CliError(f"cannot read {origin}: {exc.strerror}") from None
        try:
            return _first_line(_read_bounded(fd, origin), origin)
        finally:
            os.close(fd)
    if source.fd is not None:
        origin = f"{source.option}-fd {source.fd}"
        try:
            return _first_line(_read_bounded(source.fd, origin), origin)
        except OSError as exc:
            raise CliError(f"cannot read {origin}: {exc.strerror}") from None
    if source.env is not None:
        origin = f"environment variable {source.env}"
        value = os.environb.get(os.fsencode(source.env))
        if value is None:
            raise CliError(f"{origin} is not set")
        return _first_line(value, origin)
    return None


def _require_terminal() -> None:
    """Fail clearly instead of letting getpass fall back to reading the data on stdin."""
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        raise CliError(
            "no terminal to ask for the password: use --password-file, --password-fd or "
            "--password-env"
        ) from None
    os.close(fd)


def _prompt(text: str) -> str:
    try:
        return getpass.getpass(text, stream=sys.stderr)
    except UnicodeDecodeError:
        # The decode error's message quotes a byte of the password and its position.
        raise CliError("the password typed is not valid text in the terminal's encoding") from None


def generate_passphrase() -> str:
    """A random passphrase from ``secrets``: 120 bits as lowercase base32 groups of four."""
    raw = base64.b32encode(secrets.token_bytes(GENERATED_GROUPS * 20 // 8)).decode("ascii").lower()
    return "-".join(raw[i : i + 4] for i in range(0, len(raw), 4))


def strength_warning(password: str | bytes) -> str | None:
    """A warning for a weak password, with an estimate; ``None`` when it looks strong enough."""
    text = password if isinstance(password, str) else password.decode("utf-8", "replace")
    try:
        zxcvbn: Any = importlib.import_module("zxcvbn")
    except ImportError:
        return fallback_warning(text)
    result = zxcvbn.zxcvbn(text[:ZXCVBN_MAX_CHARS])
    if result["score"] >= ZXCVBN_MIN_SCORE:
        return None
    crack = result["crack_times_display"]["offline_slow_hashing_1e4_per_second"]
    exponent = math.log10(max(float(result["guesses"]), 1.0))
    return (
        f"weak password: about 10^{exponent:.0f} guesses, found in {crack} at 10^4 guesses per "
        f"second (zxcvbn score {result['score']}/4)"
    )


def fallback_warning(text: str) -> str | None:
    """Length x log2(character pool): a crude upper bound used when zxcvbn is not installed."""
    pools = (
        (string.ascii_lowercase, 26),
        (string.ascii_uppercase, 26),
        (string.digits, 10),
        (string.punctuation + " ", 33),
    )
    pool = sum(size for chars, size in pools if any(c in chars for c in text))
    if any(ord(c) > 127 for c in text):
        pool += 100
    bits = len(text) * math.log2(max(pool, 2))
    if bits >= MIN_FALLBACK_BITS:
        return None
    return (
        f"weak password: at most about {bits:.0f} bits by a length and character-set estimate "
        "(install zxcvbn for a better one)"
    )


def read_old_password(source: PasswordSource, prompt: str = "Password: ") -> str | bytes:
    """A password that must open existing data: from its source, else asked once."""
    password = _password_from_source(source)
    if password is not None:
        return password
    _require_terminal()
    answer = _prompt(prompt)
    if not answer:
        raise CliError("no password given")
    return answer


def read_new_password(
    source: PasswordSource, *, quiet: bool, what: str = "Password"
) -> str | bytes:
    """A password for new data: asked twice (empty offers a generated one), weak ones warned."""
    password = _password_from_source(source)
    prompted = password is None
    if password is None:
        _require_terminal()
        answer = _prompt(f"{what} (leave empty to generate one): ")
        if not answer:
            generated = generate_passphrase()
            note(f"generated passphrase, shown only this once, keep it safe: {generated}")
            return generated
        if _prompt(f"Confirm {what.lower()}: ") != answer:
            raise CliError("passwords do not match")
        password = answer
    if not quiet:
        warning = strength_warning(password)
        if warning is not None:
            note(f"warning: {warning}" + (f"; {GENERATE_HINT}" if prompted else ""))
    return password
