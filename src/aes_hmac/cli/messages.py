"""How a failure is told: one line per exception, with the option that helps when there is one."""

from __future__ import annotations

import aes_hmac

from .common import CliError
from .options import limit_hint


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
