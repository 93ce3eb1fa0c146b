"""The ``aes-hmac`` command: argument parsing, password sources and I/O policy, no cryptography.

Every byte of cryptography happens in the public ``aes_hmac`` API; this module decides where
input comes from, where output goes, how passwords are asked for, and how failures are told:
one line ``aes-hmac: error: ...`` on stderr, exit status 0 success, 1 failure, 2 usage error.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import errno
import getpass
import importlib
import io
import json
import math
import os
import re
import secrets
import shutil
import stat
import string
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, BinaryIO, Final, NoReturn

import aes_hmac

from . import armor as _armor
from ._errors import AesHmacError, ArmorError, HeaderError, StreamDamaged
from ._fileio import atomic_output
from ._pipeline import resolve_workers
from .importers.fernet import check_fernet_key

PROG: Final = "aes-hmac"
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2

PROGRESS_MIN_BYTES: Final = 4 << 20
"""Inputs at least this big (or of unknown size) get a progress bar on a terminal."""
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
KDF_NAMES: Final = ("pbkdf2", "scrypt", "argon2id")
LIMIT_OPTIONS: Final = (
    ("--max-kdf-memory-mib", "max_memory_bytes", "MIB", 1 << 20, "scrypt/argon2id memory"),
    ("--max-pbkdf2-iterations", "max_pbkdf2_iterations", "N", 1, "pbkdf2 iterations"),
    ("--max-scrypt-p", "max_scrypt_p", "P", 1, "scrypt parallelism"),
    ("--max-argon2-iterations", "max_argon2_iterations", "T", 1, "argon2id passes"),
    ("--max-argon2-lanes", "max_argon2_lanes", "P", 1, "argon2id lanes"),
)
"""Decrypt-side limit options: flag, KdfLimits field, metavar, unit in bytes or 1, help."""
LIMIT_MESSAGES: Final = (
    ("kdf memory", "--max-kdf-memory-mib"),
    ("pbkdf2 iterations", "--max-pbkdf2-iterations"),
    ("scrypt p", "--max-scrypt-p"),
    ("argon2id iterations", "--max-argon2-iterations"),
    ("argon2id lanes", "--max-argon2-lanes"),
)
"""The parameter names of ``KdfLimits.check`` messages (docs/FORMAT.md 1.1), each with the
option that raises that limit."""
_LIMIT_MESSAGE: Final = re.compile(
    r"\b("
    + "|".join(name for name, _ in LIMIT_MESSAGES)
    + r") \d+ (?:bytes )?exceeds? the limit \d+"
)
IMPORT_FORMATS: Final = ("aescrypt", "fernet", "legacy")
LEGACY_FIELDS: Final = ("iv", "salt", "mac")
"""Base64 fields of a design-note tuple in ``import --from legacy`` input (plus "ciphertext")."""

EXIT_HELP: Final = (
    "exit status: 0 success, 1 failure (wrong password, damaged or truncated data, I/O error; also,"
    " without a message, when the reader of the output pipe goes away, as in '| head'),"
    " 2 usage error"
)
GENERATE_HINT: Final = "leave the password empty to generate one"
"""Appended to a weak-password warning only when the password was typed at the prompt."""


class CliError(Exception):
    """A failure to report as one ``aes-hmac: error:`` line; exit status 1."""


class UsageError(CliError):
    """A mistake in the command line; exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors as the tool's single error line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --- passwords ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordSource:
    """Where one password comes from; all ``None`` means the interactive prompt."""

    file: str | None = None
    fd: int | None = None
    env: str | None = None
    option: str = "--password"


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
        raise CliError(
            "the password typed is not valid text in the terminal's encoding"
        ) from None


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
        return _fallback_warning(text)
    result = zxcvbn.zxcvbn(text[:ZXCVBN_MAX_CHARS])
    if result["score"] >= ZXCVBN_MIN_SCORE:
        return None
    crack = result["crack_times_display"]["offline_slow_hashing_1e4_per_second"]
    exponent = math.log10(max(float(result["guesses"]), 1.0))
    return (
        f"weak password: about 10^{exponent:.0f} guesses, found in {crack} at 10^4 guesses per "
        f"second (zxcvbn score {result['score']}/4)"
    )


def _fallback_warning(text: str) -> str | None:
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
            _note(f"generated passphrase, shown only this once, keep it safe: {generated}")
            return generated
        if _prompt(f"Confirm {what.lower()}: ") != answer:
            raise CliError("passwords do not match")
        password = answer
    if not quiet:
        warning = strength_warning(password)
        if warning is not None:
            _note(f"warning: {warning}" + (f"; {GENERATE_HINT}" if prompted else ""))
    return password


# --- output helpers -----------------------------------------------------------------------


def _note(message: str) -> None:
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


class _Progress:
    """Progress callback for the library: a tqdm bar on stderr, or nothing."""

    def __init__(self, *, quiet: bool, total: int | None, label: str) -> None:
        self._bar: Any = None
        self._done = 0
        if quiet or not sys.stderr.isatty():
            return
        if total is not None and total < PROGRESS_MIN_BYTES:
            return
        try:
            tqdm: Any = importlib.import_module("tqdm")
        except ImportError:
            return
        try:
            width = os.get_terminal_size(sys.stderr.fileno()).columns
        except OSError:
            width = 0
        self._bar = tqdm.tqdm(
            # A terminal reporting a 0x0 size (a pty nobody sized) makes tqdm hide its bar.
            ncols=None if width else 80,
            nrows=None if width else 24,
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            leave=False,
            desc=label,
        )

    @property
    def callback(self) -> Callable[[int, int | None], None] | None:
        return self._update if self._bar is not None else None

    def _update(self, done: int, total: int | None) -> None:
        if total is not None and self._bar.total != total:
            self._bar.total = total
        self._bar.update(done - self._done)
        self._done = done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class _CountingWriter:
    """Wraps stdout to know whether any plaintext already left when decryption fails."""

    def __init__(self, dst: BinaryIO) -> None:
        self._dst = dst
        self.written = 0

    def write(self, data: bytes) -> int:
        n = self._dst.write(data)
        self.written += len(data)
        return n

    def flush(self) -> None:
        self._dst.flush()


def _path(arg: str | None) -> str | None:
    """A path argument, or ``None`` for stdin/stdout (nothing or ``-``)."""
    return None if arg is None or arg == "-" else arg


def _input_stat(path: str | None) -> os.stat_result:
    try:
        return os.fstat(0) if path is None else os.stat(path)
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


@dataclass(frozen=True)
class _Paths:
    """What ``_check_paths`` learned: the input's stat, and whether output is written in place.

    In place means stdout, or an existing output that is not a regular file (a device such as
    /dev/null, a FIFO): it is opened and written like a shell redirection, because renaming a
    temporary file over it would replace the device or FIFO instead of writing to it.
    """

    src_stat: os.stat_result
    in_place: bool


def _check_paths(src: str | None, dst: str | None, *, force: bool) -> _Paths:
    """Refuse same input and output, a folder, an existing regular output without --force."""
    src_stat = _input_stat(src)
    try:
        dst_stat: os.stat_result | None = os.fstat(1) if dst is None else os.stat(dst)
    except FileNotFoundError:
        dst_stat = None
    if (
        dst_stat is not None
        and stat.S_ISREG(src_stat.st_mode)
        and (src_stat.st_dev, src_stat.st_ino) == (dst_stat.st_dev, dst_stat.st_ino)
    ):
        raise CliError("input and output are the same file")
    if dst is None:
        return _Paths(src_stat, in_place=True)
    if dst_stat is None:
        if os.path.islink(dst) and not force:  # a dangling link: its target would be created
            raise CliError(f"output file {dst} exists: use --force to overwrite it")
        return _Paths(src_stat, in_place=False)
    if stat.S_ISDIR(dst_stat.st_mode):
        raise CliError(f"output {dst} is a folder")
    if not stat.S_ISREG(dst_stat.st_mode):
        return _Paths(src_stat, in_place=True)
    if not force:
        raise CliError(f"output file {dst} exists: use --force to overwrite it")
    return _Paths(src_stat, in_place=False)


@contextlib.contextmanager
def _open_input(path: str | None) -> Iterator[BinaryIO]:
    if path is None:
        yield sys.stdin.buffer
        return
    try:
        src = open(path, "rb")
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None
    with src:
        yield src


@contextlib.contextmanager
def _open_output(dst: str | None, paths: _Paths, *, force: bool) -> Iterator[BinaryIO]:
    """stdout, an in-place output opened directly, or an atomic temporary file for ``dst``."""
    if dst is None:
        yield sys.stdout.buffer
        return
    if not paths.in_place:
        with atomic_output(dst, overwrite=force) as out:
            yield out
        return
    try:
        out = open(dst, "wb")
    except OSError as exc:
        raise CliError(f"cannot write {dst}: {exc.strerror}") from None
    with out:
        yield out


_WRITE_ONLY_ERRNOS: Final = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
"""Errors that only a write raises: without a file name they still belong to the output."""


def _output_error(exc: OSError, dst: str | None) -> CliError | None:
    """Name the output (file or stdout) when writing it failed, not a temporary file beside it."""
    if not exc.filename:
        if exc.errno in _WRITE_ONLY_ERRNOS:
            return CliError(f"cannot write {dst or 'stdout'}: {exc.strerror or exc}")
        return None
    if dst is None:
        return None
    temp_prefix = "." + os.path.basename(os.path.realpath(dst))  # atomic_output follows links
    if os.path.basename(os.fsdecode(exc.filename)).startswith(temp_prefix):
        return CliError(f"cannot write {dst}: {exc.strerror or exc}")
    return None


def _size_of(src_stat: os.stat_result) -> int | None:
    return src_stat.st_size if stat.S_ISREG(src_stat.st_mode) else None


# --- KDF and limits options ---------------------------------------------------------------


def _kdf_from_args(
    args: argparse.Namespace,
) -> aes_hmac.PBKDF2 | aes_hmac.Scrypt | aes_hmac.Argon2id | None:
    """The KDF the options ask for, or ``None`` to use the library's default."""
    costs: dict[str, dict[str, tuple[str, int | None]]] = {
        "pbkdf2": {"--iterations": ("iterations", args.iterations)},
        "scrypt": {
            "--scrypt-log2n": ("log2_n", args.scrypt_log2n),
            "--scrypt-r": ("r", args.scrypt_r),
            "--scrypt-p": ("p", args.scrypt_p),
        },
        "argon2id": {
            "--argon2-memory-kib": ("memory_kib", args.argon2_memory_kib),
            "--argon2-iterations": ("iterations", args.argon2_iterations),
            "--argon2-lanes": ("lanes", args.argon2_lanes),
        },
    }
    name = args.kdf or "pbkdf2"
    for other, options in costs.items():
        for flag, (_, value) in options.items():
            if other != name and value is not None:
                raise UsageError(f"{flag} needs --kdf {other}")
    given = {field: value for field, value in costs[name].values() if value is not None}
    if args.kdf is None and not given:
        return None
    kind = {"pbkdf2": aes_hmac.PBKDF2, "scrypt": aes_hmac.Scrypt, "argon2id": aes_hmac.Argon2id}
    try:
        return kind[name](**given)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None


def _limits_from_args(args: argparse.Namespace) -> aes_hmac.KdfLimits:
    """KdfLimits with the library defaults, raised or lowered by the ``--max-*`` options."""
    given = {
        field: getattr(args, flag[2:].replace("-", "_")) * scale
        for flag, field, _, scale, _ in LIMIT_OPTIONS
        if getattr(args, flag[2:].replace("-", "_")) is not None
    }
    return dataclasses.replace(aes_hmac.KdfLimits(), **given)


def _chunk_size(text: str) -> int:
    """``--chunk-size`` value: bytes, or with a K or M suffix (powers of 1024), checked now."""
    scale = {"k": 1 << 10, "m": 1 << 20}.get(text[-1:].lower(), 1)
    digits = text[:-1] if scale > 1 else text
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (e.g. 65536, 64K, 1M)")
    size = int(digits) * scale
    try:
        aes_hmac.check_chunk_size(size)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return size


def _workers(text: str) -> int:
    """``--workers`` value, checked against the library's bounds before any prompt."""
    count = _positive(text)
    try:
        return resolve_workers(count)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _fd_number(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a file descriptor number, got {text!r}")
    return int(text)


def _warn_beyond_default_limits(
    kdf: aes_hmac.PBKDF2 | aes_hmac.Scrypt | aes_hmac.Argon2id | None,
) -> None:
    """A KDF cost that decrypt refuses by default is allowed, but readers must raise a limit."""
    if kdf is None:
        return
    try:
        aes_hmac.KdfLimits().check(kdf)
    except ValueError as exc:
        message = str(exc)
        option = _limit_option(message) or "a raised --max-... limit"
        _note(f"warning: {message} of decrypt's defaults: decrypting will need {option}")


def _limit_option(message: str) -> str | None:
    """The ``--max-...`` option that raises the limit a KDF limit message is about, if any."""
    match = _LIMIT_MESSAGE.search(message)
    return None if match is None else dict(LIMIT_MESSAGES)[match.group(1)]


def _with_limit_hint(message: str) -> str:
    """Say how to raise a KDF limit when ``message`` is a limit error; the message is kept."""
    option = _limit_option(message)
    return f"{message} (raise it with {option})" if option else message


# --- commands -----------------------------------------------------------------------------


def _source(args: argparse.Namespace, prefix: str = "") -> PasswordSource:
    option = f"--{prefix.replace('_', '-')}password"
    return PasswordSource(
        file=getattr(args, f"{prefix}password_file"),
        fd=getattr(args, f"{prefix}password_fd"),
        env=getattr(args, f"{prefix}password_env"),
        option=option,
    )


def cmd_encrypt(args: argparse.Namespace) -> int:
    """Encrypt a file or stdin to a file or stdout, binary or armored."""
    src, dst = _path(args.input), _path(args.output)
    if dst is None and not args.armor and sys.stdout.isatty():
        raise CliError("refusing to write binary ciphertext to a terminal: use --armor or -o FILE")
    if args.password_fd == 0 and src is None:
        raise UsageError("--password-fd 0 is stdin, which is also the input: give an input file")
    paths = _check_paths(src, dst, force=args.force)
    src_stat = paths.src_stat
    kdf = _kdf_from_args(args)
    _warn_beyond_default_limits(kdf)
    password = read_new_password(_source(args), quiet=args.quiet)
    options: dict[str, Any] = {"workers": args.workers}
    if kdf is not None:
        options["kdf"] = kdf
    if args.chunk_size is not None:
        options["chunk_size"] = args.chunk_size
    progress = _Progress(quiet=args.quiet, total=_size_of(src_stat), label="encrypt")
    try:
        if src is not None and dst is not None and not paths.in_place and not args.armor:
            aes_hmac.encrypt_file(
                src, dst, password, overwrite=args.force, progress=progress.callback, **options
            )
            return EXIT_OK
        with _open_input(src) as fin, _open_output(dst, paths, force=args.force) as out:
            sink: BinaryIO = _armor.ArmorWriter(out) if args.armor else out  # type: ignore[assignment]
            aes_hmac.encrypt_stream(
                fin,
                sink,
                password,
                progress=progress.callback,
                total=_size_of(src_stat),
                **options,
            )
            if args.armor:
                sink.close()
            out.flush()
    except OSError as exc:
        raise _output_error(exc, dst) or exc from None
    finally:
        progress.close()
    return EXIT_OK


def cmd_decrypt(args: argparse.Namespace) -> int:
    """Decrypt binary or armored input (detected) to a file or stdout."""
    src, dst = _path(args.input), _path(args.output)
    if args.password_fd == 0 and src is None:
        raise UsageError("--password-fd 0 is stdin, which is also the input: give an input file")
    paths = _check_paths(src, dst, force=args.force)
    src_stat = paths.src_stat
    limits = _limits_from_args(args)
    progress: _Progress | None = None
    counter: _CountingWriter | None = None
    try:
        with _open_input(src) as fin:
            stream, armored = _armor.sniff(fin)
            password = read_old_password(_source(args))
            total = None if armored else _size_of(src_stat)
            # After the prompt: a bar drawn first would share the prompt's line.
            progress = _Progress(quiet=args.quiet, total=total, label="decrypt")
            # decrypt_file reopens the path: only a regular file can be read twice (a <(...)
            # pipe path has lost the bytes sniff consumed).
            if (
                src is not None
                and dst is not None
                and not paths.in_place
                and not armored
                and stat.S_ISREG(src_stat.st_mode)
            ):
                aes_hmac.decrypt_file(
                    src,
                    dst,
                    password,
                    limits=limits,
                    overwrite=args.force,
                    progress=progress.callback,
                    workers=args.workers,
                )
                return EXIT_OK
            with _open_output(dst, paths, force=args.force) as opened:
                out: Any = opened
                if paths.in_place:
                    out = counter = _CountingWriter(opened)
                aes_hmac.decrypt_stream(
                    stream,
                    out,
                    password,
                    limits=limits,
                    workers=args.workers,
                    progress=progress.callback,
                    total=total,
                )
                out.flush()
    except (AesHmacError, OSError, KeyboardInterrupt) as exc:
        if counter is not None and counter.written and not isinstance(exc, BrokenPipeError):
            reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else _describe(exc)
            raise CliError(
                f"{reason}; the {counter.written} bytes already written to {dst or 'stdout'} are "
                "incomplete and must be discarded"
            ) from None
        if isinstance(exc, OSError):
            raise _output_error(exc, dst) or exc from None
        raise
    finally:
        if progress is not None:
            progress.close()
    return EXIT_OK


def _kdf_text(kdf: object) -> str:
    if kdf is None:
        return "raw key (no KDF)"
    if isinstance(kdf, aes_hmac.PBKDF2):
        return f"pbkdf2-hmac-sha256 iterations={kdf.iterations}"
    if isinstance(kdf, aes_hmac.Scrypt):
        return (
            f"scrypt log2n={kdf.log2_n} r={kdf.r} p={kdf.p} (memory {kdf.memory_bytes() >> 20} MiB)"
        )
    if isinstance(kdf, aes_hmac.Argon2id):
        return f"argon2id memory={kdf.memory_kib} KiB iterations={kdf.iterations} lanes={kdf.lanes}"
    return repr(kdf)


def cmd_inspect(args: argparse.Namespace) -> int:
    """Print what the header says, without any password."""
    with _open_input(_path(args.input)) as fin:
        stream, armored = _armor.sniff(fin)
        info = aes_hmac.inspect_stream(stream)
    lines = [
        f"format: aes-hmac stream, version {info.version}",
        f"armor: {'yes' if armored else 'no'}",
        f"chunk size: {info.chunk_size} bytes",
        f"header size: {info.header_size} bytes",
        f"password slots: {len(info.slots)}",
    ]
    lines += [f"slot {i}: {_kdf_text(slot.kdf)}" for i, slot in enumerate(info.slots, 1)]
    sys.stdout.write("\n".join(lines) + "\n")
    sys.stdout.flush()
    return EXIT_OK


def cmd_rekey(args: argparse.Namespace) -> int:
    """Change, add or remove a password slot of a file; the payload is not re-encrypted."""
    path = args.file
    if path == "-":
        raise UsageError("rekey needs a file path, not stdin")
    with _open_input(path) as fin:
        _, armored = _armor.sniff(fin)
    new_source = _source(args, "new_")
    if args.remove and any(v is not None for v in (new_source.file, new_source.fd, new_source.env)):
        raise UsageError("--remove takes no new password")
    kdf = _kdf_from_args(args)
    if args.remove and kdf is not None:
        raise UsageError("--remove takes no KDF options")
    _warn_beyond_default_limits(kdf)
    limits = _limits_from_args(args)
    old = read_old_password(_source(args), "Current password: ")
    edit: Callable[[str], None]
    if args.remove:

        def edit(target: str) -> None:
            aes_hmac.remove_password(target, old, limits=limits)

    else:
        new = read_new_password(new_source, quiet=args.quiet, what="New password")
        options: dict[str, Any] = {"limits": limits}
        if kdf is not None:
            options["kdf"] = kdf
        slot_edit = aes_hmac.add_password if args.add else aes_hmac.change_password

        def edit(target: str) -> None:
            slot_edit(target, old, new, **options)

    if armored:
        _rekey_armored(path, edit)
    else:
        edit(path)
    return EXIT_OK


def _rekey_armored(path: str, edit: Callable[[str], None]) -> None:
    """Slot edits work on binary files: dearmor to a temporary file, edit it, armor it back.

    Only ciphertext is ever on disk; the armored file is replaced atomically at the end (the
    file a symlink points to, so the link stays and the old password stops working).
    """
    path = os.path.realpath(path)
    folder = os.path.dirname(path)
    with tempfile.TemporaryDirectory(prefix=".aes-hmac-rekey-", dir=folder) as work:
        binary = os.path.join(work, "stream")
        with _open_input(path) as fin, open(binary, "xb") as out:
            stream, _ = _armor.sniff(fin)
            shutil.copyfileobj(stream, out)
        edit(binary)
        with open(binary, "rb") as src, atomic_output(path, overwrite=True) as dst:
            writer = _armor.ArmorWriter(dst)
            shutil.copyfileobj(src, writer)
            writer.close()


# --- import (issue 6, keyring and migration) ----------------------------------------------


class _PipeView(io.RawIOBase):
    """A non-seekable view of an input, so ``import_aescrypt`` spools its ciphertext privately.

    Bytes sent to stdout cannot be taken back: reading a file twice would let a change between
    the verify pass and the convert pass reach stdout; the private spool cannot change.
    """

    def __init__(self, src: BinaryIO) -> None:
        super().__init__()
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._src.read(len(view))
        view[: len(data)] = data
        return len(data)


def cmd_import(args: argparse.Namespace) -> int:
    """Convert another tool's data into this library's formats; nothing is written unverified.

    aescrypt: an AES Crypt v2 file -> a binary stream (new password). fernet: Fernet tokens, one
    per line -> tokens, one per line (new password; the Fernet key is read like a password).
    legacy: design-note tuples as JSON lines -> tokens under the same password.
    """
    src, dst = _path(args.input), _path(args.output)
    if args.password_fd == 0 and src is None:
        raise UsageError("--password-fd 0 is stdin, which is also the input: give an input file")
    paths = _check_paths(src, dst, force=args.force)
    kdf = _kdf_from_args(args)
    _warn_beyond_default_limits(kdf)
    options: dict[str, Any] = {} if kdf is None else {"kdf": kdf}
    prompt = {"aescrypt": "AES Crypt password: ", "fernet": "Fernet key: "}
    secret = read_old_password(_source(args), prompt.get(args.source, "Password: "))
    if args.source == "fernet":
        try:
            check_fernet_key(secret)  # once, so a wrong key is not blamed on the first token's line
        except ValueError:
            raise CliError("the Fernet key must be 32 url-safe base64-encoded bytes") from None
    new = secret
    new_source = _source(args, "new_")
    if args.source == "legacy" and (new_source.file or new_source.fd is not None or new_source.env):
        raise UsageError("--from legacy keeps the password: it takes no new password")
    if args.source != "legacy":
        new = read_new_password(new_source, quiet=args.quiet, what="New password")
    if args.source == "aescrypt":
        if not isinstance(secret, str):
            raise CliError("the AES Crypt password must be UTF-8 text")
        if dst is None and sys.stdout.isatty():
            raise CliError("refusing to write binary ciphertext to a terminal: use -o FILE")
        if src is not None and dst is not None and not paths.in_place:
            aes_hmac.import_aescrypt_file(src, dst, secret, new, overwrite=args.force, **options)
            return EXIT_OK
        # The library verifies the whole AES Crypt file before writing a byte, so a failure
        # leaves stdout (or a device or FIFO output) empty and no output file.
        with _open_input(src) as fin, _open_output(dst, paths, force=args.force) as out:
            reader: BinaryIO = io.BufferedReader(_PipeView(fin)) if paths.in_place else fin
            aes_hmac.import_aescrypt(reader, out, secret, new, **options)
            out.flush()
        return EXIT_OK
    with _open_input(src) as fin:
        lines = [line for line in fin.read().splitlines() if line.strip()]
    tokens = []
    bulk = aes_hmac.PasswordKey(new, **options)  # one KDF for the whole batch of Fernet tokens
    for number, line in enumerate(lines, start=1):
        try:
            if args.source == "fernet":
                tokens.append(aes_hmac.import_fernet(line.strip(), secret, password=bulk))
            else:
                record = json.loads(line)
                iv, salt, mac = (base64.b64decode(record[k], validate=True) for k in LEGACY_FIELDS)
                tokens.append(
                    aes_hmac.convert_legacy(record["ciphertext"], secret, iv, salt, mac, **options)
                )
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"line {number}: invalid {args.source} input ({exc!s})") from None
        except AesHmacError as exc:
            raise CliError(f"line {number}: {_describe(exc)}") from None
    text = "".join(f"{token}\n" for token in tokens).encode("ascii")
    with _open_output(dst, paths, force=args.force) as out:
        out.write(text)
        out.flush()
    return EXIT_OK


# --- parser -------------------------------------------------------------------------------


def _add_password_options(
    parser: argparse.ArgumentParser, prefix: str = "", what: str = ""
) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        f"--{prefix}password-file",
        metavar="PATH",
        help=f"read the {what}password from the first line of PATH",
    )
    group.add_argument(
        f"--{prefix}password-fd",
        metavar="N",
        type=_fd_number,
        help=f"read the {what}password from the first line of open file descriptor N",
    )
    group.add_argument(
        f"--{prefix}password-env",
        metavar="NAME",
        help=f"take the {what}password from the environment variable NAME",
    )


def _add_kdf_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("key derivation (default pbkdf2, 600000 iterations)")
    group.add_argument("--kdf", choices=KDF_NAMES, help="password KDF for the new password slot")
    group.add_argument("--iterations", type=_positive, metavar="N", help="pbkdf2 iterations")
    group.add_argument("--scrypt-log2n", type=_positive, metavar="N", help="scrypt log2(N)")
    group.add_argument("--scrypt-r", type=_positive, metavar="R", help="scrypt block size r")
    group.add_argument("--scrypt-p", type=_positive, metavar="P", help="scrypt parallelism p")
    group.add_argument("--argon2-memory-kib", type=_positive, metavar="KIB", help="argon2id memory")
    group.add_argument(
        "--argon2-iterations", type=_positive, metavar="T", help="argon2id iterations (passes)"
    )
    group.add_argument("--argon2-lanes", type=_positive, metavar="P", help="argon2id lanes")


def _add_limit_options(parser: argparse.ArgumentParser) -> None:
    base = aes_hmac.KdfLimits()
    group = parser.add_argument_group(
        "limits on the KDF cost a file may ask for (checked before any work)"
    )
    for flag, field, metavar, scale, what in LIMIT_OPTIONS:
        group.add_argument(
            flag,
            type=_positive,
            metavar=metavar,
            help=f"{what} (default {getattr(base, field) // scale})",
        )


FORCE_HELP: Final = (
    "replace an existing regular output file; it keeps its permission bits (a new file gets"
    " 0600) and a symlink keeps pointing at the replaced file. A device or FIFO (/dev/null) is"
    " written directly, without --force"
)


def _add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", default="-", help="input file (default or '-': stdin)")


def _add_output_options(
    parser: argparse.ArgumentParser, quiet_help: str = "no progress bar, no password warnings"
) -> None:
    parser.add_argument(
        "-o", "--output", metavar="PATH", help="output file (default or '-': stdout)"
    )
    parser.add_argument("-f", "--force", action="store_true", help=FORCE_HELP)
    parser.add_argument("-q", "--quiet", action="store_true", help=quiet_help)


def _add_workers_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=_workers,
        metavar="N",
        help="parallel chunk workers, 1 to 64 (default: CPUs)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar; ``--help`` of each command documents it."""
    parser = _Parser(
        prog=PROG,
        description=(
            "Password-based authenticated encryption of files and pipes "
            "(AES-256-CBC + HMAC-SHA256, encrypt-then-MAC)."
        ),
        epilog=EXIT_HELP
        + ". Passwords are never command-line values: use a prompt, a file, a descriptor or an"
        " environment variable.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {aes_hmac.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, epilog: str = "") -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help_text,
            description=help_text,
            epilog=(epilog + "\n\n" if epilog else "") + EXIT_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    enc = command(
        "encrypt",
        "Encrypt a file or stdin.",
        "Without a password option, asks twice on the terminal; an empty answer generates a"
        " passphrase and shows it once. Example: tar cz DIR | aes-hmac encrypt > DIR.tgz.ahm",
    )
    _add_input(enc)
    _add_output_options(enc)
    _add_workers_option(enc)
    enc.add_argument("-a", "--armor", action="store_true", help="write the PEM-like text form")
    enc.add_argument(
        "--chunk-size",
        type=_chunk_size,
        metavar="SIZE",
        help="plaintext bytes per chunk, a power of two from 4K to 16M (default 1M)",
    )
    _add_password_options(enc)
    _add_kdf_options(enc)
    enc.set_defaults(func=cmd_encrypt)

    dec = command(
        "decrypt",
        "Decrypt a file or stdin (binary or armored, detected).",
        "Example: aes-hmac decrypt DIR.tgz.ahm | tar xz",
    )
    _add_input(dec)
    _add_output_options(dec)
    _add_workers_option(dec)
    _add_password_options(dec)
    _add_limit_options(dec)
    dec.set_defaults(func=cmd_decrypt)

    ins = command(
        "inspect",
        "Show format version, chunk size and each password slot's KDF; needs no password.",
    )
    _add_input(ins)
    ins.set_defaults(func=cmd_inspect)

    rek = command(
        "rekey",
        "Change, add (--add) or remove (--remove) a password of an encrypted file.",
        "The payload is not re-encrypted: only the header is rewritten, atomically.",
    )
    rek.add_argument("file", help="encrypted file (binary or armored)")
    mode = rek.add_mutually_exclusive_group()
    mode.add_argument("--add", action="store_true", help="add the new password, keep the old")
    mode.add_argument(
        "--remove", action="store_true", help="remove the password given (not the last one)"
    )
    rek.add_argument("-q", "--quiet", action="store_true", help="no password warnings")
    _add_password_options(rek, "", "current ")
    _add_password_options(rek, "new-", "new ")
    _add_kdf_options(rek)
    _add_limit_options(rek)
    rek.set_defaults(func=cmd_rekey)

    imp = command(
        "import",
        "Convert data made by other tools: AES Crypt v2 files, Fernet tokens, design-note tuples.",
        "--from aescrypt: an .aes file -> a binary encrypted file (new password).\n"
        "--from fernet: Fernet tokens, one per line -> tokens, one per line (new password); the\n"
        "  Fernet key is the source password (--password-* options or the prompt).\n"
        '--from legacy: JSON lines {"ciphertext": ..., "iv": ..., "salt": ..., "mac": ...}\n'
        "  (iv, salt, mac in standard base64) -> tokens under the same password.\n"
        "Everything is verified before output is written; a failed import leaves no output file.",
    )
    imp.add_argument(
        "--from", dest="source", choices=IMPORT_FORMATS, required=True, help="input format"
    )
    _add_input(imp)
    _add_output_options(imp, quiet_help="no password warnings")
    _add_password_options(imp, "", "source ")
    _add_password_options(imp, "new-", "new ")
    _add_kdf_options(imp)
    imp.set_defaults(func=cmd_import)
    return parser


# --- entry point --------------------------------------------------------------------------


def _describe(exc: BaseException) -> str:
    """One line for a failure; library messages are written to be shown and hold no secret."""
    if isinstance(exc, HeaderError | StreamDamaged | ArmorError | CliError):
        return str(exc)
    if isinstance(exc, AesHmacError):
        return str(exc) or "decryption failed"
    if isinstance(exc, FileExistsError):
        name = f" {exc.filename}" if exc.filename else ""
        return f"output file{name} exists: use --force to overwrite it"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return str(exc)


def _silence_stdout() -> None:
    """After a broken pipe, point stdout at /dev/null so the interpreter's final flush is quiet."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failure, 2 usage)."""
    parser = build_parser()
    stream: IO[str] = sys.stderr
    try:
        args = parser.parse_args(argv)
        status: int = args.func(args)
        return status
    except UsageError as exc:
        print(f"{PROG}: error: {exc}", file=stream)
        return EXIT_USAGE
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"\n{PROG}: error: interrupted", file=stream)
        return EXIT_FAILURE
    except (CliError, AesHmacError, OSError) as exc:
        print(f"{PROG}: error: {_with_limit_hint(_describe(exc))}", file=stream)
        return EXIT_FAILURE
    except (TypeError, ValueError) as exc:
        # The library's caller-mistake errors (KDF limits, chunk size, last slot): they name the
        # argument, never a secret.
        print(f"{PROG}: error: {_with_limit_hint(str(exc))}", file=stream)
        return EXIT_FAILURE
