"""Options the commands share, each group declared and read in one place.

A group object's ``add(parser)`` declares its arguments and ``read(args)`` returns them as one
typed value, so no command looks an option up by a computed name. The KDF options are generated
from the library's KDF registry: a new KDF brings its own flags, ``--kdf`` choice and text.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from dataclasses import dataclass
from typing import Final, NamedTuple, TypeAlias

import aes_hmac

from .common import UsageError, note
from .passwords import PasswordSource

MAX_FD: Final = (1 << 31) - 1
"""The largest file descriptor number the system calls take (a C ``int``)."""
MAX_WORKERS: Final = 64
"""``--workers`` ceiling, the library's own; checked here so a bad value fails before a prompt."""
DEFAULT_KDF_NAME: Final = aes_hmac.PBKDF2.name
"""The registry name of the KDF of new slots when ``--kdf`` is not given, at its class's default
costs (the same as the library's default KDF object); its cost flags need no ``--kdf``."""
Kdf: TypeAlias = aes_hmac.Kdf
"""A KDF instance (the library's public alias: a new KDF needs no CLI edit)."""
MORE_MEMORY: Final = "give the process more memory"
SOURCE_FILE_NOTE: Final = (
    "A password file or descriptor is read up to its first line end; a leading UTF-8 byte-order"
    " mark (as Windows editors write) is not part of the password."
)
FORCE_HELP: Final = (
    "replace an existing regular output file; it keeps its permission bits (a new file gets"
    " 0600) and a symlink keeps pointing at the replaced file. A device or FIFO (/dev/null) is"
    " written directly, without --force"
)


# --- value types: argparse ``type=`` callables, checked before any prompt -------------------


def positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def fd_number(text: str) -> int:
    """An open file descriptor's number, checked now: a negative, huge or closed one is a usage
    error naming the option (argparse adds it), not an ``OverflowError`` at the first read."""
    if not (text.isascii() and text.isdigit()):
        raise argparse.ArgumentTypeError(f"expected a file descriptor number, got {text!r}")
    if len(text) > len(str(MAX_FD)) or int(text) > MAX_FD:
        raise argparse.ArgumentTypeError(f"file descriptor {text} is not open")
    fd = int(text)
    try:
        os.fstat(fd)
    except OSError:
        raise argparse.ArgumentTypeError(f"file descriptor {fd} is not open") from None
    return fd


def chunk_size(text: str) -> int:
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


def workers(text: str) -> int:
    """``--workers`` value, 1 to MAX_WORKERS (the library has no public check of its own)."""
    count = positive(text)
    if count > MAX_WORKERS:
        raise argparse.ArgumentTypeError(
            f"workers must be between 1 and {MAX_WORKERS}, got {count}"
        )
    return count


# --- plain shared arguments (read by the command as ``args.input``, ``args.output`` ...) ------


def add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", nargs="?", default="-", help="input file (default or '-': stdin)")


def add_output(
    parser: argparse.ArgumentParser,
    quiet_help: str = "no progress line, no password warnings",
    output_help: str = "output file ('-': stdout; default: stdout)",
) -> None:
    parser.add_argument("-o", "--output", metavar="PATH", help=output_help)
    parser.add_argument("-f", "--force", action="store_true", help=FORCE_HELP)
    parser.add_argument("-q", "--quiet", action="store_true", help=quiet_help)


def add_workers(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers",
        type=workers,
        metavar="N",
        help=f"parallel chunk workers, 1 to {MAX_WORKERS} (default: CPUs)",
    )


# --- password sources ----------------------------------------------------------------------


@dataclass(frozen=True)
class PasswordOptions:
    """``--{prefix}password-file/-fd/-env`` (and ``--{prefix}key-file`` when ``key_file``):
    one secret's source, or the prompt; the options exclude each other."""

    prefix: str = ""
    what: str = ""
    key_file: bool = False

    def _dest(self, kind: str) -> str:
        return f"{self.prefix.replace('-', '_')}password_{kind}"

    def add(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_mutually_exclusive_group()
        option = f"--{self.prefix}password"
        group.add_argument(
            f"{option}-file",
            dest=self._dest("file"),
            metavar="PATH",
            help=f"read the {self.what}password from the first line of PATH",
        )
        group.add_argument(
            f"{option}-fd",
            dest=self._dest("fd"),
            metavar="N",
            type=fd_number,
            help=f"read the {self.what}password from the first line of open file descriptor N",
        )
        group.add_argument(
            f"{option}-env",
            dest=self._dest("env"),
            metavar="NAME",
            help=f"take the {self.what}password from the environment variable NAME",
        )
        if self.key_file:
            group.add_argument(
                f"--{self.prefix}key-file",
                dest=self._key_dest,
                metavar="PATH",
                help=f"use the {self.what}key in PATH (made by 'aes-hmac keygen') instead of a"
                " password",
            )

    @property
    def _key_dest(self) -> str:
        return f"{self.prefix.replace('-', '_')}key_file"

    def read(self, args: argparse.Namespace) -> PasswordSource:
        return PasswordSource(
            file=getattr(args, self._dest("file")),
            fd=getattr(args, self._dest("fd")),
            env=getattr(args, self._dest("env")),
            option=f"--{self.prefix}password",
            key_file=getattr(args, self._key_dest, None),
            key_option=f"--{self.prefix}key-file",
        )


def refuse_stdin_password(source: PasswordSource, src: str | None) -> None:
    """``--password-fd 0`` with stdin as the input would read the password from the data."""
    if source.fd == 0 and src is None:
        raise UsageError("--password-fd 0 is stdin, which is also the input: give an input file")


# --- KDF for a new password slot, from the registry ----------------------------------------


def kdf_class(name: str) -> type[Kdf]:
    """The registered KDF class called ``name`` (a ``--kdf`` choice)."""
    return next(kdf for kdf in aes_hmac.KDFS if kdf.name == name)


FORMER_KDF_FLAGS: Final[dict[tuple[str, str], str]] = {
    ("pbkdf2", "iterations"): "--iterations",
    ("scrypt", "log2_n"): "--scrypt-log2n",
    ("argon2id", "memory_kib"): "--argon2-memory-kib",
    ("argon2id", "iterations"): "--argon2-iterations",
    ("argon2id", "lanes"): "--argon2-lanes",
}
"""The cost flags of the first KDFs, by (KDF name, field), from before flags were derived from
the registry: they keep working and stay the names that help and messages show. No new entries:
a new KDF's flags are only the derived ones."""


def kdf_flags(kdf: type[Kdf], option: aes_hmac.KdfOption) -> tuple[str, ...]:
    """The flags that set ``option`` of ``kdf``: ``--{kdf name}-{field}`` (unique across KDFS,
    as registry names are), after a former spelling of it when there is one."""
    derived = f"--{kdf.name}-{option.field.replace('_', '-')}"
    former = FORMER_KDF_FLAGS.get((kdf.name, option.field), derived)
    return tuple(dict.fromkeys((former, derived)))


class KdfOptions:
    """``--kdf`` and every registered KDF's cost flags; ``read`` builds the KDF they ask for."""

    @staticmethod
    def _dest(kdf: type[Kdf], field: str) -> str:
        return f"kdf_{kdf.name}_{field}"

    def add(self, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(
            f"key derivation (default {kdf_class(DEFAULT_KDF_NAME)().describe()})"
        )
        group.add_argument(
            "--kdf",
            choices=[kdf.name for kdf in aes_hmac.KDFS],
            help="password KDF for the new password slot",
        )
        for kdf in aes_hmac.KDFS:
            for option in kdf.options:
                group.add_argument(
                    *kdf_flags(kdf, option),
                    dest=self._dest(kdf, option.field),
                    type=positive,
                    metavar=option.metavar,
                    help=f"{kdf.name} {option.help}",
                )

    def _given(self, args: argparse.Namespace) -> dict[str, int]:
        """The cost flags given, by KDF field; a flag of another KDF than ``--kdf`` is refused."""
        name = args.kdf or DEFAULT_KDF_NAME
        given: dict[str, int] = {}
        for kdf in aes_hmac.KDFS:
            for option in kdf.options:
                value = getattr(args, self._dest(kdf, option.field))
                if value is None:
                    continue
                if kdf.name != name:
                    raise UsageError(f"{kdf_flags(kdf, option)[0]} needs --kdf {kdf.name}")
                given[option.field] = value
        return given

    def given(self, args: argparse.Namespace) -> bool:
        """Whether any KDF option was given (commands that make no slot refuse them)."""
        return args.kdf is not None or bool(self._given(args))

    def read(self, args: argparse.Namespace) -> Kdf:
        """The KDF the options ask for: DEFAULT_KDF_NAME's class at its default costs when none
        is given."""
        given = self._given(args)
        try:
            return kdf_class(args.kdf or DEFAULT_KDF_NAME)(**given)
        except (TypeError, ValueError) as exc:
            raise UsageError(str(exc)) from None


def warn_beyond_default_limits(kdf: Kdf) -> None:
    """A KDF cost that decrypt refuses by default is allowed, but readers must raise a limit."""
    try:
        aes_hmac.KdfLimits().check(kdf)
    except aes_hmac.KdfLimitError as exc:
        option = limit_option(exc.field) or "a raised --max-... limit"
        note(f"warning: {exc} of decrypt's defaults: decrypting will need {option}")


def memory_flags(kdf_type: type[Kdf]) -> list[str]:
    """The cost flags of ``kdf_type`` that its memory grows with, found by asking the class
    (``memory_bytes`` of its defaults with one field raised), so a new KDF needs no entry here."""
    base = kdf_type()
    flags = []
    for option in kdf_type.options:
        try:
            raised = dataclasses.replace(base, **{option.field: getattr(base, option.field) + 1})
        except (TypeError, ValueError):  # that field cannot grow alone (e.g. argon2id lanes)
            continue
        if raised.memory_bytes() > base.memory_bytes():
            flags.append(kdf_flags(kdf_type, option)[0])
    return flags


# --- decrypt-side KDF limits ---------------------------------------------------------------


class LimitOption(NamedTuple):
    flag: str
    field: str
    """The ``KdfLimits`` attribute the flag sets (``KdfLimitError.field`` names it too)."""
    metavar: str
    scale: int
    """Bytes per unit of the value, or 1."""
    help: str


LIMIT_OPTIONS: Final = (
    LimitOption(
        "--max-kdf-memory-mib", "max_memory_bytes", "MIB", 1 << 20, "scrypt/argon2id memory"
    ),
    LimitOption("--max-pbkdf2-iterations", "max_pbkdf2_iterations", "N", 1, "pbkdf2 iterations"),
    LimitOption("--max-scrypt-p", "max_scrypt_p", "P", 1, "scrypt parallelism"),
    LimitOption("--max-argon2-iterations", "max_argon2_iterations", "T", 1, "argon2id passes"),
    LimitOption("--max-argon2-lanes", "max_argon2_lanes", "P", 1, "argon2id lanes"),
    LimitOption(
        "--max-kdf-work",
        "max_kdf_work",
        "M",
        1_000_000,
        "total kdf work per token or file header, in millions of pbkdf2 iterations"
        " (scrypt and argon2id converted)",
    ),
)
"""Decrypt-side limit options, one per ``KdfLimits`` field."""


def limit_option(field: str) -> str | None:
    """The ``--max-...`` flag that raises the ``KdfLimits`` field ``field``, if there is one."""
    return next((option.flag for option in LIMIT_OPTIONS if option.field == field), None)


def limit_hint(exc: aes_hmac.KdfLimitError, message: str) -> str:
    """``message`` (about ``exc``) with the option that raises the exceeded limit."""
    option = limit_option(exc.field)
    if exc.limit == 0:  # not a limit: the machine could not give the KDF its memory
        lower = f"lower {option} to refuse such input up front, or " if option else ""
        return f"{message} ({lower}{MORE_MEMORY})"
    return f"{message} (raise it with {option})" if option else message


class LimitOptions:
    """``--max-...``: ``KdfLimits`` with the library defaults, raised or lowered."""

    @staticmethod
    def _dest(option: LimitOption) -> str:
        return f"limit_{option.field}"

    def add(self, parser: argparse.ArgumentParser) -> None:
        base = aes_hmac.KdfLimits()
        group = parser.add_argument_group(
            "limits on the KDF cost a file may ask for (checked before any work)"
        )
        for option in LIMIT_OPTIONS:
            group.add_argument(
                option.flag,
                dest=self._dest(option),
                type=positive,
                metavar=option.metavar,
                help=f"{option.help} (default {getattr(base, option.field) // option.scale})",
            )

    def read(self, args: argparse.Namespace) -> aes_hmac.KdfLimits:
        given = {
            option.field: value * option.scale
            for option in LIMIT_OPTIONS
            if (value := getattr(args, self._dest(option))) is not None
        }
        return dataclasses.replace(aes_hmac.KdfLimits(), **given)
