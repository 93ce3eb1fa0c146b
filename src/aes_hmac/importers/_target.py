"""The new credential of an import: the one secret rule (``_keys.credentials``), checked first."""

from __future__ import annotations

from typing import Any

from .._kdf import Kdf
from .._keys.credentials import Secret, to_credential
from .._keys.keys import Key


def token_target(password: object, key: object, kdf: Kdf) -> Secret:
    """What ``encrypt`` takes for the target: ``password`` (any secret) or ``key`` as a ``Key``.

    Checked before any source is read, so a caller mistake costs nothing.
    """
    credential = to_credential(password, key, kdf=kdf)
    if key is None:
        return password  # type: ignore[return-value]  # to_credential checked its type
    return key if isinstance(key, Key) else Key(credential.secret)


def stream_target(password: object, key: object, kdf: Kdf) -> dict[str, Any]:
    """``encrypt_stream`` keywords for the target, from the same kinds as ``token_target``.

    A ``Key`` or ``PasswordKey`` is passed as its credential's raw key or encoded password
    (with the ``PasswordKey``'s own KDF), which the stream layer stores exactly as it would them.
    """
    credential = to_credential(password, key, kdf=kdf)
    if credential.kdf is None:
        return {"key": credential.secret}
    return {"password": credential.secret, "kdf": credential.kdf}
