"""How a failure is told: one line per exception, with the option that helps when there is one."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import aes_hmac

from .common import CliError
from .options import MORE_MEMORY, Kdf, limit_hint, memory_flags


def describe(exc: BaseException) -> str:
    """One line for a failure; library messages are written to be shown and hold no secret.

    A KDF limit error also names the ``--max-...`` option that raises the exceeded limit.
    """
    if isinstance(exc, aes_hmac.KdfLimitError):
        return limit_hint(exc, str(exc))
    if isinstance(exc, aes_hmac.HeaderError | aes_hmac.StreamDamaged | aes_hmac.ArmorError):
        return str(exc)
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, aes_hmac.AesHmacError):
        return str(exc) or "decryption failed"
    if isinstance(exc, FileExistsError):
        name = f" {exc.filename}" if exc.filename else ""
        return f"output file{name} exists: use --force to overwrite it"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror or exc}"
    return str(exc)


@contextlib.contextmanager
def new_slot(kdf: Kdf) -> Iterator[None]:
    """Around work that derives a new password slot with ``kdf``.

    When the system refuses that KDF its memory (``KdfLimitError`` with limit 0), the advice is
    the encrypt-side cost flag to lower: decrypt's ``--max-...`` options do not apply to
    making a slot. Other errors (an existing slot being opened) keep ``describe``'s advice.
    """
    try:
        yield
    except aes_hmac.KdfLimitError as exc:
        if exc.limit != 0 or exc.value != kdf.memory_bytes():
            raise
        lower = " or ".join(memory_flags(type(kdf)))
        advice = f"lower {lower}, or {MORE_MEMORY}" if lower else MORE_MEMORY
        raise CliError(f"{exc} ({advice})") from None
