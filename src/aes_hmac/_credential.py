"""The one rule for secrets: every API that takes one accepts the same kinds in the same way.

A secret is a password (``str``, or ``bytes`` used as given), a ``Key`` (a raw 32-byte key) or a
``PasswordKey`` (a password with its KDF). The keyword ``key=`` takes a raw key as ``bytes`` or a
``Key``. Tokens, streams, files, slot edits, ``Keyring`` entries and the importers all go
through ``to_credential``, so a new kind of secret is added here once.
"""

from __future__ import annotations

from ._kdf import DEFAULT_KDF, Credential, Kdf, check_kdf, encode_password
from ._keys import Key, PasswordKey
from ._primitives import KEY_SIZE

Secret = str | bytes | bytearray | memoryview | Key | PasswordKey
"""What a ``password`` argument accepts."""
RawKey = bytes | bytearray | memoryview | Key
"""What a ``key`` argument accepts."""


def raw_key_credential(key: object, name: str = "key") -> Credential:
    """A raw-key credential from 32 bytes or a ``Key``; errors name the argument."""
    if isinstance(key, Key):
        return key.credential()
    if not isinstance(key, bytes | bytearray | memoryview):
        raise TypeError(f"{name} must be bytes or Key, not {type(key).__name__}")
    if len(key) != KEY_SIZE:
        raise ValueError(f"{name} must be {KEY_SIZE} bytes, got {len(key)}")
    return Credential(bytes(key), None)


def secret_credential(secret: object, name: str = "password", kdf: Kdf = DEFAULT_KDF) -> Credential:
    """A credential from any ``Secret``: a password is stretched by ``kdf`` (a ``PasswordKey``
    brings its own KDF), a ``Key`` is a raw key."""
    if isinstance(secret, Key | PasswordKey):
        return secret.credential()
    if not isinstance(secret, str | bytes | bytearray | memoryview):
        raise TypeError(
            f"{name} must be str, bytes, Key or PasswordKey, not {type(secret).__name__}"
        )
    return Credential(
        encode_password(
            bytes(secret) if isinstance(secret, bytearray | memoryview) else secret, name
        ),
        check_kdf(kdf),
    )


def to_credential(
    password: object = None, key: object = None, *, kdf: Kdf = DEFAULT_KDF, name: str = "password"
) -> Credential:
    """Exactly one of ``password`` (any ``Secret``) and ``key`` (a ``RawKey``).

    On decryption ``kdf`` only marks a password: each slot or token names its own KDF.
    """
    if password is not None and key is not None:
        raise TypeError(f"give {name} or key, not both")
    if key is not None:
        return raw_key_credential(key)
    if password is None:
        raise TypeError(f"give {name} or key")
    return secret_credential(password, name, kdf)
