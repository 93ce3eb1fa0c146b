"""Values made by Spark SQL's ``aes_encrypt`` into our tokens.

Spark's layouts (``ExpressionImplUtils.aesInternal``, Spark 3.3 and later): GCM (the default)
is a 12-byte IV, the ciphertext and a 16-byte tag, with optional associated data; CBC is a
16-byte IV and the ciphertext with PKCS#5 padding. The key is 16, 24 or 32 bytes (a string
key is its UTF-8 bytes). ``padding='DEFAULT'`` means NONE for GCM and PKCS for CBC, the only
padding Spark takes for each mode, so explicit and default padding give the same bytes.

GCM values are verified (the tag is checked before any plaintext is released). CBC values are
NOT: the format has no MAC, so damage or a wrong key can give garbage plaintext that happens to
end in valid padding. AES-GCM and AES-128/192 live here, the only importer that needs them,
rather than in ``_primitives``.
"""

from __future__ import annotations

import base64
import binascii
from typing import Final, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .._encrypt import encrypt
from .._errors import InvalidToken
from .._kdf import DEFAULT_KDF, Kdf, check_kdf
from .._keys.credentials import RawKey, Secret
from .._primitives import BLOCK_SIZE, pkcs7_unpad
from ._target import token_target

__all__ = [
    "SPARK_KEY_SIZES",
    "SparkMode",
    "check_spark_key",
    "import_spark",
    "import_spark_base64",
    "spark_decrypt",
]

SparkMode = Literal["GCM", "CBC"]
SPARK_KEY_SIZES: Final = (16, 24, 32)
"""Key sizes ``aes_encrypt`` takes (AES-128, -192, -256)."""
GCM_IV_SIZE: Final = 12
GCM_TAG_SIZE: Final = 16
CBC_IV_SIZE: Final = BLOCK_SIZE
_PADDINGS: Final[dict[str, tuple[str, str]]] = {
    "GCM": ("NONE", "DEFAULT"),
    "CBC": ("PKCS", "DEFAULT"),
}
"""The paddings Spark accepts per mode (``DEFAULT`` is the first)."""


def check_spark_key(spark_key: str | bytes) -> bytes:
    """The key as bytes (a str is UTF-8, as Spark encodes it); its size must be 16, 24 or 32."""
    if isinstance(spark_key, str):
        spark_key = spark_key.encode("utf-8")
    if not isinstance(spark_key, bytes):
        raise TypeError(f"spark_key must be str or bytes, not {type(spark_key).__name__}")
    if len(spark_key) not in SPARK_KEY_SIZES:
        # The length only, never the key: it is the secret.
        raise ValueError(f"spark_key must be 16, 24 or 32 bytes, got {len(spark_key)}")
    return spark_key


def _check_mode(mode: str, padding: str) -> SparkMode:
    """Normalise ``mode``/``padding`` as Spark does (case-insensitive), refusing other pairs."""
    if not isinstance(mode, str) or not isinstance(padding, str):
        raise TypeError("mode and padding must be str")
    upper = mode.upper()
    if upper not in _PADDINGS:
        raise ValueError(f"mode must be 'GCM' or 'CBC', got {mode!r}")
    if padding.upper() not in _PADDINGS[upper]:
        allowed = " or ".join(repr(p) for p in _PADDINGS[upper])
        raise ValueError(f"padding for {upper} must be {allowed}, got {padding!r}")
    return "GCM" if upper == "GCM" else "CBC"


def spark_decrypt(
    value: bytes,
    spark_key: str | bytes,
    *,
    mode: str = "GCM",
    padding: str = "DEFAULT",
    aad: bytes | None = None,
) -> bytes:
    """Decrypt one ``aes_encrypt`` value, as Spark's ``aes_decrypt`` would; failures: InvalidToken.

    GCM: the tag (over ``aad`` and the ciphertext) is checked before plaintext is returned.
    CBC: unauthenticated; only the length and the padding are checked (``aad`` is refused).
    """
    if not isinstance(value, bytes | bytearray | memoryview):
        raise TypeError(f"value must be bytes, not {type(value).__name__}")
    value = bytes(value)
    which = _check_mode(mode, padding)
    raw_key = check_spark_key(spark_key)
    if aad is not None and not isinstance(aad, bytes):
        raise TypeError("aad must be bytes or None")
    if which == "GCM":
        if len(value) < GCM_IV_SIZE + GCM_TAG_SIZE:
            raise InvalidToken("spark value: too short for GCM")
        try:
            return AESGCM(raw_key).decrypt(value[:GCM_IV_SIZE], value[GCM_IV_SIZE:], aad)
        except InvalidTag:
            raise InvalidToken("spark value: wrong key, wrong aad or tampered") from None
    if aad is not None:
        raise ValueError("aad is only defined for GCM")
    body = value[CBC_IV_SIZE:]
    if len(value) < CBC_IV_SIZE + BLOCK_SIZE or len(body) % BLOCK_SIZE:
        raise InvalidToken("spark value: wrong length for CBC")
    dec = Cipher(algorithms.AES(raw_key), modes.CBC(value[:CBC_IV_SIZE])).decryptor()
    padded = dec.update(body) + dec.finalize()
    try:
        return pkcs7_unpad(padded)
    except ValueError:
        raise InvalidToken("spark value: bad padding (wrong key or damaged)") from None


def import_spark(
    value: bytes,
    spark_key: str | bytes,
    *,
    mode: str = "GCM",
    padding: str = "DEFAULT",
    aad: bytes | None = None,
    password: Secret | None = None,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
    associated_data: bytes | None = None,
) -> str:
    """Convert one ``aes_encrypt`` value into one of our tokens under ``password`` or ``key``.

    GCM values are verified first (``spark_decrypt``); CBC values cannot be (no MAC). A
    ``PasswordKey`` converts many values for one KDF run. The plaintext comes out as bytes.
    """
    target = token_target(password, key, kdf)
    check_kdf(kdf)
    data = spark_decrypt(value, spark_key, mode=mode, padding=padding, aad=aad)
    return encrypt(data, target, kdf=kdf, associated_data=associated_data)


def import_spark_base64(
    line: str | bytes,
    spark_key: str | bytes,
    *,
    mode: str = "GCM",
    password: Secret | None = None,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
) -> str:
    """``import_spark`` of one standard-base64 value: Spark SQL's ``base64(aes_encrypt(...))``."""
    try:
        value = base64.b64decode(line.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidToken("spark value: bad base64") from None
    return import_spark(value, spark_key, mode=mode, password=password, key=key, kdf=kdf)
