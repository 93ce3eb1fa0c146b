"""aes-hmac: password-based authenticated encryption, AES-256-CBC + HMAC-SHA256 (encrypt-then-MAC).

This module only re-exports the public API; see README.md and docs/FORMAT.md.
"""

from ._errors import (
    AesHmacError,
    ArmorError,
    DecryptionError,
    HeaderError,
    InvalidToken,
    KdfLimitError,
    StreamDamaged,
)
from ._kdf import KDFS, PBKDF2, Argon2id, KdfLimits, KdfOption, Scrypt

# isort: split
# --- token format and design-note API (issue 2) ---
from ._compat import aes_decrypt, aes_encrypt, convert_legacy, decrypt_legacy_insecure
from ._keys import Key, PasswordKey, generate_key
from ._token import decrypt, encrypt, token_to_bytes

# isort: split
# --- streams and files (issue 3) ---
from ._engine import decrypt_stream, encrypt_stream
from ._fileobj import StreamReader, StreamWriter, open
from ._files import (
    add_password,
    change_password,
    decrypt_file,
    encrypt_file,
    inspect_stream,
    remove_password,
)
from ._stream import DEFAULT_CHUNK_SIZE, SlotInfo, StreamInfo, check_chunk_size

# isort: split
# --- keyring and migration (issue 6) ---
from ._keyring import Keyring
from ._migrate import import_aescrypt, import_aescrypt_file, import_fernet

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "KDFS",
    "PBKDF2",
    "AesHmacError",
    "Argon2id",
    "ArmorError",
    "DecryptionError",
    "HeaderError",
    "InvalidToken",
    "KdfLimitError",
    "KdfLimits",
    "KdfOption",
    "Key",
    "Keyring",
    "PasswordKey",
    "Scrypt",
    "SlotInfo",
    "StreamDamaged",
    "StreamInfo",
    "StreamReader",
    "StreamWriter",
    "__version__",
    "add_password",
    "aes_decrypt",
    "aes_encrypt",
    "change_password",
    "check_chunk_size",
    "convert_legacy",
    "decrypt",
    "decrypt_file",
    "decrypt_legacy_insecure",
    "decrypt_stream",
    "encrypt",
    "encrypt_file",
    "encrypt_stream",
    "generate_key",
    "import_aescrypt",
    "import_aescrypt_file",
    "import_fernet",
    "inspect_stream",
    "open",
    "remove_password",
    "token_to_bytes",
]
