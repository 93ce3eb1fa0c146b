"""The library's exceptions: one base class, one class per kind of failure a caller handles.

Messages never contain a password, key or plaintext; they name the argument or the field.
"""

from __future__ import annotations


class AesHmacError(Exception):
    """Base class of every error this library raises on its own account."""


class DecryptionError(AesHmacError):
    """Ciphertext could not be authenticated or parsed: wrong password, tampering, truncation.

    A wrong password and tampered data are deliberately the same kind of failure.
    """


class InvalidToken(DecryptionError):
    """A token or a design-note tuple failed: wrong password, tampered, truncated or malformed."""


class HeaderError(DecryptionError):
    """A stream's header did not open: wrong password or damaged header."""


class StreamDamaged(DecryptionError):
    """A stream chunk failed to authenticate; ``offset`` is the byte where that chunk starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


class KdfLimitError(InvalidToken, HeaderError, ValueError):
    """A token or stream asks for more KDF work than the decryptor's ``KdfLimits`` allow.

    Raised before the derivation it refuses. It is an ``InvalidToken`` for tokens and a
    ``HeaderError`` for streams (so existing handlers keep catching it), and a ``ValueError`` from
    ``KdfLimits.check``. ``field`` names the ``KdfLimits`` attribute that was exceeded (for
    example ``"max_memory_bytes"``, or ``"max_kdf_work"`` when the slots or keyring entries tried
    for one input would pass the total), ``value`` what the input asked for, ``limit`` the
    ceiling. Also raised when the system refuses a KDF's memory (a ``MemoryError`` during the
    derivation): then ``field`` is ``"max_memory_bytes"``, ``value`` the memory asked for and
    ``limit`` 0 (the system's limit is unknown); lowering that limit refuses such input up front.
    """

    def __init__(self, message: str, field: str, value: int, limit: int) -> None:
        super().__init__(message)
        self.field = field
        self.value = value
        self.limit = limit

    def prefixed(self, prefix: str) -> KdfLimitError:
        """The same error with ``prefix`` in front of its message (the layer that caught it)."""
        return KdfLimitError(f"{prefix}{self}", self.field, self.value, self.limit)


class ArmorError(DecryptionError):
    """Armored (text) input is malformed: missing begin/end line, bad line length or character."""


class ManifestError(DecryptionError):
    """A folder batch does not match its manifest: a file swapped, moved, foreign, missing or
    unlisted, or the manifest itself missing or malformed. The message names the path."""
