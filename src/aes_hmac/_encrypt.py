"""``encrypt`` / ``decrypt``: one token per message under a password, ``Key`` or ``PasswordKey``.

The secret rule is ``_keys.credentials``'s; the wire format, its versions and the text form are
``_token.codec``'s (the rules every version shares, ``_token.format``'s).
"""

from __future__ import annotations

from ._errors import InvalidToken
from ._kdf import DEFAULT_KDF, DEFAULT_LIMITS, Kdf, KdfLimits, check_limits_arg
from ._keys.credentials import Secret, secret_credential
from ._keys.keys import Key, PasswordKey, decrypt_parts
from ._primitives import SALT_SIZE, BytesLike, random_bytes
from ._token.codec import DEFAULT_VERSION, check_limits, open_parts, parse, seal, token_format
from ._token.format import check_input


def encrypt(
    data: bytes | str,
    password: Secret,
    *,
    kdf: Kdf = DEFAULT_KDF,
    associated_data: BytesLike | None = None,
    version: int = DEFAULT_VERSION,
) -> str:
    """Encrypt ``data`` under a password (or a ``Key``/``PasswordKey``); returns a text token.

    A password gets a fresh random salt and IV per call, so each call runs the KDF once; a
    ``PasswordKey`` derives once for all its tokens, a ``Key`` runs no KDF (``kdf`` applies to
    plain passwords only). ``str`` data comes back from ``decrypt`` as ``str``, ``bytes`` as
    ``bytes``. ``associated_data`` is authenticated but not stored: ``decrypt`` needs the same.
    ``version`` is the token format version to write (every readable version can be written).
    """
    credential = secret_credential(password, "password", kdf)
    fmt = token_format(version)
    check_input(data, associated_data)  # type and encoding errors before the KDF
    if isinstance(password, Key | PasswordKey):
        return password.encrypt(data, associated_data=associated_data, version=version)
    password_kdf = credential.kdf if credential.kdf is not None else DEFAULT_KDF
    salt = random_bytes(SALT_SIZE)
    return seal(data, credential.master(salt), password_kdf, salt, associated_data, fmt)


def decrypt(
    token: str | BytesLike,
    password: Secret,
    *,
    associated_data: BytesLike | None = None,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> bytes | str:
    """Decrypt a token (either form) under a password, ``Key`` or ``PasswordKey``.

    ``InvalidToken`` on any failure. A password token's KDF parameters are checked against
    ``limits`` before any derivation (a ``PasswordKey`` also applies its own limits).
    """
    credential = secret_credential(password, "password")
    check_input(b"", associated_data)
    check_limits_arg(limits)
    if isinstance(password, Key):
        return password.decrypt(token, associated_data=associated_data)
    parts = parse(token)
    if parts.kdf is None:
        raise InvalidToken("token needs a raw key, not a password")
    check_limits(parts.kdf, limits)
    if isinstance(password, PasswordKey):
        return decrypt_parts(password, parts, associated_data, limits)  # parsed once
    master = credential.with_kdf(parts.kdf).master(parts.salt)
    return open_parts(parts, master, associated_data)
