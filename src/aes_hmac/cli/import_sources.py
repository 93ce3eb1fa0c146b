"""``import --from SOURCE`` handlers: one entry per source in ``SOURCES``.

A handler gets the opened job (paths, the source secret, the new password, the KDF, the
source's own options) and does the conversion through the library's importers. Each source
declares its guarantee (``verified``: its MAC is checked before a byte is written) and its own
options; the command's flags and help are built from these declarations. A new source is one
``ImportSource`` line in ``SOURCES``: a binary format takes its run from ``convert_binary``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import BinaryIO, Final

import aes_hmac
from aes_hmac import importers
from aes_hmac.importers import spark

from .common import CliError, note
from .io_policy import Paths, PipeView, open_input, open_output
from .messages import describe
from .options import Kdf, positive

LEGACY_FIELDS: Final = ("iv", "salt", "mac")
"""Base64 fields of a design-note tuple in ``import --from legacy`` input (plus "ciphertext")."""

VERIFIED_HELP: Final = "Verified before output: its MAC is checked before a byte is written."
UNVERIFIED_HELP: Final = (
    "NOT verified before output (the format has no MAC): damage can go undetected, and\n"
    "  stdout or a FIFO may get data before an error (an output file is still removed)."
)
FAILED_IMPORT: Final = "A failed import leaves no output file."


@dataclass(frozen=True)
class SourceOption:
    """One flag of one source (``--from NAME`` only), passed to its importer as ``field=``."""

    flag: str
    field: str
    metavar: str
    help: str
    default: int
    maximum: int
    """The largest value the importer takes, checked while parsing (before any prompt)."""

    def parse(self, text: str) -> int:
        """The ``type=`` of the flag: a positive integer up to ``maximum``."""
        value = positive(text)
        if value > self.maximum:
            raise argparse.ArgumentTypeError(f"expected at most {self.maximum}, got {value}")
        return value


@dataclass(frozen=True)
class ImportJob:
    """Everything a handler needs, read and checked by the ``import`` command."""

    src: str | None
    dst: str | None
    paths: Paths
    force: bool
    secret: str | bytes
    """The source's password or key, as given."""
    new: str | bytes
    """The password of the converted data (the source secret when the source keeps it)."""
    kdf: Kdf
    options: Mapping[str, int]
    """The source's own options by field (every one: defaults filled in)."""


@dataclass(frozen=True, kw_only=True)
class ImportSource:
    """One ``--from`` choice: its help, guarantee, options, secret, and its conversion."""

    name: str
    title: str
    """What it converts, for the command's one-line help."""
    help: str
    """Its line in the command's epilog (after ``--from NAME: ``)."""
    run: Callable[[ImportJob], None]
    verified: bool
    """Whether the source's MAC is checked before a byte is written (stated in the help)."""
    options: tuple[SourceOption, ...] = ()
    prompt: str = "Password: "
    new_password: bool = True
    """Whether the data gets a new password (else it keeps the source password)."""
    check_secret: Callable[[str | bytes], None] | None = None
    """Checks the source secret once, before any data is read."""

    def describe(self) -> str:
        """Its epilog entry: what it converts, then its guarantee."""
        guarantee = VERIFIED_HELP if self.verified else UNVERIFIED_HELP
        return f"--from {self.name}: {self.help}\n  {guarantee}\n"


def title(sources: Iterable[ImportSource]) -> str:
    """The command's one-line help."""
    return "Convert data made by other tools: " + ", ".join(s.title for s in sources) + "."


def epilog(sources: Iterable[ImportSource]) -> str:
    """The command's epilog: every source with its guarantee, then what every failure keeps."""
    return "".join(source.describe() for source in sources) + FAILED_IMPORT


# --- binary formats: the one file-vs-stream dispatch ---------------------------------------


def convert_binary(
    to_file: Callable[..., object], to_stream: Callable[..., object]
) -> Callable[[ImportJob], None]:
    """The run of a binary source, from its library pair (``import_X_file``, ``import_X``).

    Both are called as ``(src, dst, secret, new, kdf=..., **options)`` (``to_file`` also with
    ``overwrite=``). Path to path goes through ``to_file`` (atomic output in the library);
    anything else is streamed. An in-place output (stdout, device, FIFO) reads the input
    through a non-seekable view, so a source verified in a first pass is spooled privately and
    a change to the input between the passes cannot reach output that cannot be taken back.
    """

    def run(job: ImportJob) -> None:
        if job.dst is None and sys.stdout.isatty():
            raise CliError("refusing to write binary ciphertext to a terminal: use -o FILE")
        if job.src is not None and job.dst is not None and not job.paths.in_place:
            to_file(
                job.src,
                job.dst,
                job.secret,
                job.new,
                overwrite=job.force,
                kdf=job.kdf,
                **job.options,
            )
            return
        with open_input(job.src) as fin, open_output(job.dst, job.paths, force=job.force) as out:
            reader: BinaryIO = io.BufferedReader(PipeView(fin)) if job.paths.in_place else fin
            to_stream(reader, out, job.secret, job.new, kdf=job.kdf, **job.options)
            out.flush()

    return run


def _check_aescrypt_password(secret: str | bytes) -> None:
    """AES Crypt encodes text passwords (UTF-16LE): a password file's raw bytes cannot be one."""
    if not isinstance(secret, str):
        raise CliError("the AES Crypt password must be UTF-8 text")


# --- token lines: fernet and legacy --------------------------------------------------------


def _convert_lines(job: ImportJob, name: str, convert: Callable[[bytes], str]) -> None:
    """One token per non-blank input line, all converted before any output is written."""
    with open_input(job.src) as fin:
        lines = [line for line in fin.read().splitlines() if line.strip()]
    tokens = []
    for number, line in enumerate(lines, start=1):
        try:
            tokens.append(convert(line))
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(f"line {number}: invalid {name} input ({exc!s})") from None
        except aes_hmac.AesHmacError as exc:
            raise CliError(f"line {number}: {describe(exc)}") from None
    text = "".join(f"{token}\n" for token in tokens).encode("ascii")
    with open_output(job.dst, job.paths, force=job.force) as out:
        out.write(text)
        out.flush()


def _check_fernet_key(secret: str | bytes) -> None:
    """Once, so a wrong key is not blamed on the first token's line."""
    try:
        importers.check_fernet_key(secret)
    except ValueError:
        raise CliError("the Fernet key must be 32 url-safe base64-encoded bytes") from None


def _import_fernet(job: ImportJob) -> None:
    bulk = aes_hmac.PasswordKey(job.new, kdf=job.kdf)  # one KDF for the whole batch of tokens

    def convert(line: bytes) -> str:
        return importers.import_fernet(line.strip(), job.secret, password=bulk)

    _convert_lines(job, "fernet", convert)


LEGACY_WARNING: Final = (
    "warning: the design-note format is a padding oracle (its MAC does not cover the IV): "
    "convert only data you hold, never tuples someone else can submit"
)


def _import_legacy(job: ImportJob) -> None:
    note(LEGACY_WARNING)

    def convert(line: bytes) -> str:
        record = json.loads(line)
        iv, salt, mac = (base64.b64decode(record[k], validate=True) for k in LEGACY_FIELDS)
        ciphertext = record["ciphertext"]
        return importers.convert_legacy(ciphertext, job.secret, iv, salt, mac, kdf=job.kdf)

    _convert_lines(job, "legacy", convert)


def _spark_run(mode: spark.SparkMode) -> Callable[[ImportJob], None]:
    """The run of ``--from spark`` (GCM) or ``--from spark-cbc``: one base64 value per line."""

    def run(job: ImportJob) -> None:
        bulk = aes_hmac.PasswordKey(job.new, kdf=job.kdf)  # one KDF for the whole batch

        def convert(line: bytes) -> str:
            return spark.import_spark_base64(line, job.secret, mode=mode, password=bulk)

        _convert_lines(job, "spark", convert)

    return run


def _check_spark_key(secret: str | bytes) -> None:
    """Once, so a wrong-sized key is not blamed on the first value's line."""
    try:
        spark.check_spark_key(secret)
    except ValueError as exc:
        raise CliError(f"the Spark key: {exc}") from None


SOURCES: Final[dict[str, ImportSource]] = {
    source.name: source
    for source in (
        ImportSource(
            name="aescrypt",
            title="AES Crypt v2 files",
            help="an .aes file -> a binary encrypted file (new password).",
            run=convert_binary(importers.import_aescrypt_file, importers.import_aescrypt),
            verified=True,
            prompt="AES Crypt password: ",
            check_secret=_check_aescrypt_password,
        ),
        ImportSource(
            name="fernet",
            title="Fernet tokens",
            help="Fernet tokens, one per line -> tokens, one per line (new password); the\n"
            "  Fernet key is the source password (--password-* options or the prompt).",
            run=_import_fernet,
            verified=True,
            prompt="Fernet key: ",
            check_secret=_check_fernet_key,
        ),
        ImportSource(
            name="legacy",
            title="design-note tuples",
            help='JSON lines {"ciphertext": ..., "iv": ..., "salt": ..., "mac": ...}\n'
            "  (iv, salt, mac in standard base64) -> tokens under the same password.\n"
            "  The format is a padding oracle and its MAC does not cover the IV: convert data\n"
            "  you hold, never tuples an attacker can submit (a warning says so on every run).",
            run=_import_legacy,
            verified=True,
            new_password=False,
        ),
        ImportSource(
            name="spark",
            title="Spark aes_encrypt values (GCM)",
            help="Spark SQL base64(aes_encrypt(x, key)) values in GCM mode (the default), one\n"
            "  per line -> tokens, one per line (new password); the Spark key (16/24/32 bytes)\n"
            "  is the source password. GCM's tag is checked for every value.",
            run=_spark_run("GCM"),
            verified=True,
            prompt="Spark key: ",
            check_secret=_check_spark_key,
        ),
        ImportSource(
            name="spark-cbc",
            title="Spark aes_encrypt values (CBC)",
            help="as --from spark, for aes_encrypt(x, key, 'CBC'[, 'PKCS']) values. CBC has no\n"
            "  MAC: a damaged value or wrong key is caught only if its padding breaks.",
            run=_spark_run("CBC"),
            verified=False,
            prompt="Spark key: ",
            check_secret=_check_spark_key,
        ),
    )
}
"""Every ``--from`` source, in help order."""
