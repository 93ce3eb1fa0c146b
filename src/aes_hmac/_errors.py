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


class ArmorError(DecryptionError):
    """Armored (text) input is malformed: missing begin/end line, bad line length or character."""
