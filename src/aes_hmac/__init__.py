"""aes-hmac: password-based authenticated encryption, AES-256-CBC + HMAC-SHA256 (encrypt-then-MAC).

This module only re-exports the public API; see README.md and docs/FORMAT.md.
"""

from ._errors import AesHmacError, DecryptionError, HeaderError, InvalidToken, StreamDamaged
from ._kdf import PBKDF2, Argon2id, KdfLimits, Scrypt

# --- token format and design-note API (issue 2) ---
# --- streams and files (issue 3) ---
# --- keyring and migration (issue 6) ---

__version__ = "0.1.0"

__all__ = [
    "PBKDF2",
    "AesHmacError",
    "Argon2id",
    "DecryptionError",
    "HeaderError",
    "InvalidToken",
    "KdfLimits",
    "Scrypt",
    "StreamDamaged",
    "__version__",
]
