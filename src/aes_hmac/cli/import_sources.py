"""``import --from SOURCE`` handlers: one entry per source in ``SOURCES``.

A handler gets the opened job (paths, the source secret, the new password, the KDF) and does
the conversion through the library's importers; everything is verified before output is
written. A new source is one new ``ImportSource`` here and one line in ``SOURCES``.
"""

from __future__ import annotations

import base64
import io
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Final

import aes_hmac
from aes_hmac import importers

from .common import CliError, note
from .io_policy import Paths, PipeView, open_input, open_output
from .messages import describe
from .options import Kdf

LEGACY_FIELDS: Final = ("iv", "salt", "mac")
"""Base64 fields of a design-note tuple in ``import --from legacy`` input (plus "ciphertext")."""


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


@dataclass(frozen=True)
class ImportSource:
    """One ``--from`` choice: its help, how its secret is asked for, and its conversion."""

    name: str
    title: str
    """What it converts, for the command's one-line help."""
    help: str
    """Its line in the command's epilog (after ``--from NAME: ``)."""
    run: Callable[[ImportJob], None]
    prompt: str = "Password: "
    new_password: bool = True
    """Whether the data gets a new password (else it keeps the source password)."""
    check_secret: Callable[[str | bytes], None] | None = None
    """Checks the source secret once, before any data is read."""


# --- aescrypt ------------------------------------------------------------------------------


def _import_aescrypt(job: ImportJob) -> None:
    if not isinstance(job.secret, str):
        raise CliError("the AES Crypt password must be UTF-8 text")
    if job.dst is None and sys.stdout.isatty():
        raise CliError("refusing to write binary ciphertext to a terminal: use -o FILE")
    if job.src is not None and job.dst is not None and not job.paths.in_place:
        importers.import_aescrypt_file(
            job.src, job.dst, job.secret, job.new, overwrite=job.force, kdf=job.kdf
        )
        return
    # The library verifies the whole AES Crypt file before writing a byte, so a failure leaves
    # stdout (or a device or FIFO output) empty and no output file.
    with open_input(job.src) as fin, open_output(job.dst, job.paths, force=job.force) as out:
        reader: BinaryIO = io.BufferedReader(PipeView(fin)) if job.paths.in_place else fin
        importers.import_aescrypt(reader, out, job.secret, job.new, kdf=job.kdf)
        out.flush()


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


SOURCES: Final[dict[str, ImportSource]] = {
    source.name: source
    for source in (
        ImportSource(
            "aescrypt",
            "AES Crypt v2 files",
            "an .aes file -> a binary encrypted file (new password).",
            _import_aescrypt,
            prompt="AES Crypt password: ",
        ),
        ImportSource(
            "fernet",
            "Fernet tokens",
            "Fernet tokens, one per line -> tokens, one per line (new password); the\n"
            "  Fernet key is the source password (--password-* options or the prompt).",
            _import_fernet,
            prompt="Fernet key: ",
            check_secret=_check_fernet_key,
        ),
        ImportSource(
            "legacy",
            "design-note tuples",
            'JSON lines {"ciphertext": ..., "iv": ..., "salt": ..., "mac": ...}\n'
            "  (iv, salt, mac in standard base64) -> tokens under the same password.\n"
            "  The format is a padding oracle: convert data you hold, never tuples an attacker\n"
            "  can submit (a warning says so on every run).",
            _import_legacy,
            new_password=False,
        ),
    )
}
"""Every ``--from`` source, in help order."""
