"""Importers: data from other tools and formats into this library's tokens and streams.

Each source is one module: ``fernet`` (Fernet tokens), ``aescrypt`` (AES Crypt v2 files),
``legacy`` (tuples of the original script). Each importer's docstring says whether it verifies
its source before releasing anything (these three check their format's MAC first; a format
without a MAC cannot), and the CLI's ``--from`` help says the same. Every importer takes the new
credential the way the rest of the library does: a password (``str`` or ``bytes``), a ``Key``
or a ``PasswordKey``, or ``key=`` 32 bytes.
"""

from .aescrypt import import_aescrypt, import_aescrypt_file
from .fernet import check_fernet_key, fernet_decrypt, import_fernet
from .legacy import convert_legacy, decrypt_legacy_insecure

__all__ = [
    "check_fernet_key",
    "convert_legacy",
    "decrypt_legacy_insecure",
    "fernet_decrypt",
    "import_aescrypt",
    "import_aescrypt_file",
    "import_fernet",
]
