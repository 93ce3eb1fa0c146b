"""aes-hmac: password-based authenticated encryption, AES-256-CBC + HMAC-SHA256 (encrypt-then-MAC).

This module only re-exports the everyday API (``dir()`` shows nothing else); see README.md and
docs/FORMAT.md. The design note's tuple API is ``aes_hmac.compat`` (``aes_encrypt`` and
``aes_decrypt`` also here), importers are ``aes_hmac.importers``, the armor text form is
``aes_hmac.armor``.
"""

from ._errors import (
    AesHmacError,
    ArmorError,
    DecryptionError,
    HeaderError,
    InvalidToken,
    KdfLimitError,
    ManifestError,
    StreamDamaged,
)
from ._kdf import KDFS, PBKDF2, Argon2id, Kdf, KdfLimits, KdfOption, Scrypt

# isort: split
# --- token format and design-note API (issue 2) ---
from ._encrypt import decrypt, encrypt
from ._keys.keys import Key, PasswordKey, generate_key
from ._token.codec import token_to_bytes
from .compat import aes_decrypt, aes_encrypt

# isort: split
# --- streams, files, random access, folders (issues 3, 11) ---
from ._files.atomic import atomic_output, check_output_link
from ._files.fileobj import StreamReader, StreamWriter, open
from ._files.files import (
    add_password,
    change_password,
    decrypt_file,
    encrypt_file,
    inspect_stream,
    remove_password,
)
from ._files.lifecycle import WriterDiscardedWarning
from ._files.tree import TreeResult, decrypt_tree, encrypt_tree
from ._stream.engine import StreamHeader, decrypt_stream, encrypt_stream, read_stream_header
from ._stream.format import (
    CHUNK_OVERHEAD,
    DEFAULT_CHUNK_SIZE,
    SlotInfo,
    StreamInfo,
    check_chunk_size,
)
from ._stream.seekable import SeekableReader, open_seekable

# isort: split
# --- keyring (issue 6) ---
from ._keys.keyring import Keyring

__version__ = "0.1.0"

__all__ = [
    "CHUNK_OVERHEAD",
    "DEFAULT_CHUNK_SIZE",
    "KDFS",
    "PBKDF2",
    "AesHmacError",
    "Argon2id",
    "ArmorError",
    "DecryptionError",
    "HeaderError",
    "InvalidToken",
    "Kdf",
    "KdfLimitError",
    "KdfLimits",
    "KdfOption",
    "Key",
    "Keyring",
    "ManifestError",
    "PasswordKey",
    "Scrypt",
    "SeekableReader",
    "SlotInfo",
    "StreamDamaged",
    "StreamHeader",
    "StreamInfo",
    "StreamReader",
    "StreamWriter",
    "TreeResult",
    "WriterDiscardedWarning",
    "__version__",
    "add_password",
    "aes_decrypt",
    "aes_encrypt",
    "atomic_output",
    "change_password",
    "check_chunk_size",
    "check_output_link",
    "decrypt",
    "decrypt_file",
    "decrypt_stream",
    "decrypt_tree",
    "encrypt",
    "encrypt_file",
    "encrypt_stream",
    "encrypt_tree",
    "generate_key",
    "inspect_stream",
    "open",
    "open_seekable",
    "read_stream_header",
    "remove_password",
    "token_to_bytes",
]

_SUBMODULES = frozenset({"armor", "cli", "compat", "importers", "integrations"})
"""The public submodules: attributes once imported, never in ``__all__``."""


def __dir__() -> list[str]:
    """Only the API: ``__all__``, the public submodules imported so far and the dunders; not
    the private modules (``_kdf`` ...) that the import system sets on the package."""
    names = globals()
    return sorted({*__all__, *(n for n in names if n in _SUBMODULES or n.startswith("__"))})
