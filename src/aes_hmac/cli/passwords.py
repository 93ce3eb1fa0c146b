"""Password sources: a file, a descriptor, an environment variable or the terminal prompt.

Also the new-password policy: asked twice, an empty answer generates a passphrase, weak ones
are warned about, and a weak or mismatched answer is asked again (up to ``MAX_TRIES`` times)
before any work starts. Prompts, the generated passphrase and the dialogue's warnings go to the
controlling terminal (``/dev/tty``; the console on Windows), never to stdout or stderr, so
``2>err.txt`` neither hides a prompt nor stores a passphrase. Passwords are never command-line
values and never appear in a message.
"""

from __future__ import annotations

import base64
import errno
import getpass
import importlib
import math
import os
import secrets
import string
import sys
from dataclasses import dataclass
from typing import Any, Final

import aes_hmac

from .common import PROG, CliError, note, shown

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
MAX_KEY_FILE_BYTES: Final = 1024
"""A key file is one short line; anything longer is refused unread."""
READ_SIZE: Final = 4096
"""Bytes asked of one ``os.read`` of a password or key file."""
MAX_TRIES: Final = 3
"""A new password typed at the prompt is asked for at most this many times."""
UTF8_BOM: Final = b"\xef\xbb\xbf"
"""Stripped from the start of a password file or descriptor (Windows editors write it)."""
TERMINAL: Final = "CONOUT$" if os.name == "nt" else "/dev/tty"
"""The controlling terminal: prompts and the generated passphrase are shown there."""
_TERMINAL_FLAGS: Final = (os.O_WRONLY if os.name == "nt" else os.O_RDWR) | getattr(
    os, "O_NOCTTY", 0
)
NO_TERMINAL: Final = (
    "no terminal to ask for the password: use --password-file, --password-fd or --password-env"
)


@dataclass(frozen=True)
class PasswordSource:
    """Where one password comes from; all ``None`` means the interactive prompt."""

    file: str | None = None
    fd: int | None = None
    env: str | None = None
    option: str = "--password"
    key_file: str | None = None
    """A key file instead of a password (``Key.to_text``'s form)."""
    key_option: str = "--key-file"

    @property
    def given(self) -> bool:
        """True when a file, descriptor, variable or key file is named; False: the prompt."""
        return any(value is not None for value in (self.file, self.fd, self.env, self.key_file))


Secret = str | bytes | aes_hmac.Key
"""A password as given, or a raw key from a key file."""


def read_key_file(path: str, option: str = "--key-file") -> aes_hmac.Key:
    """The key in ``path``; errors name the file and what is wrong, never its content."""
    origin = f"{option} {path}"
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise _read_error(origin, exc) from None
    try:
        # To the end: a pipe or FIFO (``--key-file <(...)``) may deliver the key in pieces.
        data = _read_bounded(fd, MAX_KEY_FILE_BYTES)
    except OSError as exc:
        raise _read_error(origin, exc) from None
    finally:
        os.close(fd)
    if data is None:
        raise CliError(f"{origin} is not a key file: longer than {MAX_KEY_FILE_BYTES} bytes")
    try:
        return aes_hmac.Key.from_text(data.removeprefix(UTF8_BOM))
    except ValueError as exc:
        raise CliError(f"{origin} is not a key file: {exc}") from None


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


def _read_bounded(fd: int, limit: int, *, line: bool = False) -> bytes | None:
    """``fd``'s bytes to EOF (with ``line``: to its first line end), however many reads they
    take (a pipe delivers what was written so far); ``None`` when there are more than ``limit``.
    """
    data = bytearray()
    while not (line and b"\n" in data):
        piece = os.read(fd, READ_SIZE)
        if not piece:
            break
        data += piece
        if len(data) > limit and not (line and b"\n" in data[:limit]):
            return None
    return bytes(data)


def _read_password(fd: int, origin: str) -> bytes:
    """A password file's or descriptor's bytes up to its first line end (MAX_PASSWORD_BYTES)."""
    data = _read_bounded(fd, MAX_PASSWORD_BYTES, line=True)
    if data is None:
        raise CliError(f"the password from {origin} is longer than {MAX_PASSWORD_BYTES} bytes")
    return data


def _read_error(origin: str, exc: OSError) -> CliError:
    reason = "it is a folder" if exc.errno == errno.EISDIR else exc.strerror or str(exc)
    return CliError(f"cannot read {origin}: {reason}")


def _password_from_source(source: PasswordSource) -> str | bytes | None:
    """The password named by ``source``, or ``None`` when it says to prompt.

    A file or descriptor may start with a UTF-8 byte-order mark: it is not part of the password.
    """
    if source.file is not None:
        origin = f"{source.option}-file {source.file}"
        try:
            fd = os.open(source.file, os.O_RDONLY)
        except OSError as exc:
            raise _read_error(origin, exc) from None
        try:
            data = _read_password(fd, origin)
        except OSError as exc:
            raise _read_error(origin, exc) from None
        finally:
            os.close(fd)
        return _first_line(data.removeprefix(UTF8_BOM), origin)
    if source.fd is not None:
        origin = f"{source.option}-fd {source.fd}"
        try:
            data = _read_password(source.fd, origin)
        except OSError as exc:
            raise _read_error(origin, exc) from None
        return _first_line(data.removeprefix(UTF8_BOM), origin)
    if source.env is not None:
        origin = f"environment variable {source.env}"
        value = os.environb.get(os.fsencode(source.env))
        if value is None:
            raise CliError(f"{origin} is not set")
        return _first_line(value.removeprefix(UTF8_BOM), origin)
    return None


def _open_terminal() -> int:
    try:
        return os.open(TERMINAL, _TERMINAL_FLAGS)
    except OSError:
        raise CliError(NO_TERMINAL) from None


def _require_terminal() -> None:
    """Fail clearly instead of letting getpass fall back to reading the data on stdin."""
    os.close(_open_terminal())


def tell_terminal(line: str) -> None:
    """One line on the controlling terminal (escaped like every message)."""
    fd = _open_terminal()
    try:
        os.write(fd, (shown(line) + "\n").encode(sys.getfilesystemencoding(), "replace"))
    finally:
        os.close(fd)


def _prompt(text: str) -> str:
    answer = _getpass_or_none(text)
    if answer is None:
        # Raised outside the except block: the decode error (it holds the typed bytes) must not
        # ride along as this error's __context__.
        raise CliError("the password typed is not valid text in the terminal's encoding")
    return answer


def _getpass_or_none(text: str) -> str | None:
    try:
        # No stream: getpass writes the prompt to the terminal it reads from, not to stderr.
        return getpass.getpass(text)
    except UnicodeDecodeError:
        return None


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


def read_old_secret(source: PasswordSource, prompt: str = "Password: ") -> Secret:
    """A secret that must open existing data: a key file, or ``read_old_password``."""
    if source.key_file is not None:
        return read_key_file(source.key_file, source.key_option)
    return read_old_password(source, prompt)


def read_new_secret(source: PasswordSource, *, quiet: bool, what: str = "Password") -> Secret:
    """A secret for new data: a key file, or ``read_new_password``."""
    if source.key_file is not None:
        return read_key_file(source.key_file, source.key_option)
    return read_new_password(source, quiet=quiet, what=what)


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
    """A password for new data, settled before any work.

    From a source: taken as given, a weak one warned about on stderr. At the prompt: asked
    twice; an empty answer generates a passphrase shown once on the terminal; a weak answer is
    warned about and its confirmation may be left empty to choose another; a mismatch asks
    again; after ``MAX_TRIES`` answers without a password the command fails.
    """
    password = _password_from_source(source)
    if password is not None:
        warning = None if quiet else strength_warning(password)
        if warning is not None:
            note(f"warning: {warning}")
        return password
    _require_terminal()
    for _ in range(MAX_TRIES):
        answer = _prompt(f"{what} (leave empty to generate one): ")
        if not answer:
            generated = generate_passphrase()
            tell_terminal(f"generated passphrase, shown only this once, keep it safe: {generated}")
            return generated
        warning = None if quiet else strength_warning(answer)
        confirm = f"Confirm {what.lower()}: "
        if warning is not None:
            tell_terminal(f"{PROG}: warning: {warning}; {GENERATE_HINT}")
            confirm = f"Confirm {what.lower()} to use it anyway (empty: choose another): "
        again = _prompt(confirm)
        if again == answer:
            return answer
        if again or warning is None:
            tell_terminal(f"{PROG}: passwords do not match: try again")
    raise CliError(f"no password set after {MAX_TRIES} tries")
