"""Key objects for many tokens: a raw 32-byte key (no KDF), or a password derived once.

Both build their ciphers once and reuse them, so a small message costs a few microseconds; both
are safe to share between threads.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections import OrderedDict
from typing import Final

from .._errors import InvalidToken
from .._kdf import (
    DEFAULT_KDF,
    DEFAULT_LIMITS,
    Credential,
    Kdf,
    KdfLimits,
    WorkBudget,
    check_kdf,
    check_limits_arg,
    derive_master,
    encode_password,
)
from .._primitives import (
    KEY_SIZE,
    SALT_SIZE,
    BytesLike,
    constant_time_equal,
    hkdf_sha256,
    random_bytes,
    reset_after_fork,
)
from .._token.codec import (
    DEFAULT_FORMAT,
    DEFAULT_VERSION,
    charge,
    check_limits,
    parse,
    token_format,
    token_to_bytes,
    token_to_text,
)
from .._token.format import TokenCipher, TokenFormat, TokenParts

_KEY_ID_LABEL: Final = b"aes-hmac key id"
DEFAULT_CACHE_SIZE: Final = 16
DASK_TOKEN_SIZE: Final = 16
"""Random bytes in the Dask token of a ``Key`` or ``PasswordKey`` (nothing derived from the key)."""
KEY_TEXT_PREFIX: Final = "aes-hmac-key-1:"
"""Starts the text form of a ``Key`` (a key file): names the tool, the kind and the version."""
_KEY_TEXT_CHARS: Final = 43
"""base64url characters of 32 bytes without padding."""
_KEY_TEXT_ALPHABET: Final = frozenset(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)


def generate_key() -> bytes:
    """A new random 32-byte key for ``Key`` (store it like a password: whoever has it reads all)."""
    return random_bytes(KEY_SIZE)


class Key:
    """Raw-key mode: tokens under a 32-byte key, no KDF; the fast path for many small messages.

    Tokens record KDF id 0x00 and no salt. ``repr`` hides the key; two ``Key`` objects compare
    equal when their keys are equal (compared in constant time); the hash is of a derived key id.
    """

    __slots__ = ("__weakref__", "_ciphers", "_dask_token", "_header", "_key", "_key_id", "_keys")

    def __init__(self, key: BytesLike) -> None:
        if not isinstance(key, bytes | bytearray | memoryview):
            raise TypeError(f"key must be bytes, not {type(key).__name__}")
        key = bytes(key)
        if len(key) != KEY_SIZE:
            raise ValueError(f"key must be {KEY_SIZE} bytes, got {len(key)}")
        self._key = key
        # The default version's ciphers and header: the fast path of both directions.
        self._keys = DEFAULT_FORMAT.cipher(key)
        self._header = DEFAULT_FORMAT.raw_header
        self._ciphers: dict[int, TokenCipher] = {DEFAULT_VERSION: self._keys}
        self._key_id = hkdf_sha256(key, _KEY_ID_LABEL, 8)
        self._dask_token = random_bytes(DASK_TOKEN_SIZE).hex()

    @classmethod
    def generate(cls) -> Key:
        """A ``Key`` holding a new random key."""
        return cls(generate_key())

    def __repr__(self) -> str:
        return "<aes_hmac.Key (hidden)>"

    def __dask_tokenize__(self) -> str:
        """Dask's token (task names): random per object, nothing derived from the key."""
        return self._dask_token

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return constant_time_equal(self._key, other._key)

    def __hash__(self) -> int:
        return hash(self._key_id)

    def credential(self) -> Credential:
        """This key as a stream/file credential (a raw-key slot); ``repr`` hides it."""
        return Credential(self._key, None)

    def to_text(self) -> str:
        """The key file form: ``aes-hmac-key-1:`` and the key in base64url (no padding), one line.

        Whoever reads this text decrypts everything the key encrypts: store it like a password.
        """
        encoded = base64.urlsafe_b64encode(self._key).rstrip(b"=").decode("ascii")
        return KEY_TEXT_PREFIX + encoded

    @classmethod
    def from_text(cls, text: str | bytes) -> Key:
        """Read ``to_text``'s form; one trailing line end is allowed, nothing else.

        ``ValueError`` says what is wrong without ever quoting the text (it may be a key).
        """
        if isinstance(text, bytes):
            # Checked before decoding: a UnicodeDecodeError would carry the whole text along
            # in the context of any error raised while handling it.
            if not text.isascii():
                raise ValueError("key text must be ASCII")
            text = text.decode("ascii")
        if not isinstance(text, str):
            raise TypeError(f"text must be str or bytes, not {type(text).__name__}")
        line = text.removesuffix("\n").removesuffix("\r")
        if "\n" in line or "\r" in line:
            raise ValueError("key text must be a single line")
        if not line.startswith(KEY_TEXT_PREFIX):
            raise ValueError(f"key text must start with {KEY_TEXT_PREFIX!r}")
        encoded = line[len(KEY_TEXT_PREFIX) :]
        if not set(encoded) <= _KEY_TEXT_ALPHABET:
            raise ValueError("key text has a character outside base64url after the prefix")
        if len(encoded) != _KEY_TEXT_CHARS:
            raise ValueError(
                f"key text must have {_KEY_TEXT_CHARS} base64url characters after the prefix, "
                f"got {len(encoded)}"
            )
        try:
            key = base64.urlsafe_b64decode(encoded + "=")
        except (binascii.Error, ValueError):  # pragma: no cover - excluded by the checks above
            raise ValueError("key text is not valid base64url") from None
        if base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii") != encoded:
            raise ValueError("key text is not canonical base64url (unused low bits are set)")
        return cls(key)

    def _cipher(self, fmt: TokenFormat) -> TokenCipher:
        """This key's ciphers for ``fmt``, built on first use (a race builds two; one is kept)."""
        cipher = self._ciphers.get(fmt.version)
        if cipher is None:
            cipher = self._ciphers.setdefault(fmt.version, fmt.cipher(self._key))
        return cipher

    def encrypt(
        self,
        data: bytes | str,
        *,
        associated_data: BytesLike | None = None,
        version: int = DEFAULT_VERSION,
    ) -> str:
        """Text token of ``data`` in format ``version``; ``str`` comes back as ``str``, ``bytes``
        as ``bytes``."""
        if version is DEFAULT_VERSION:  # the fast path; any other value is checked below
            return token_to_text(self._keys.seal(self._header, data, associated_data))
        fmt = token_format(version)
        return token_to_text(self._cipher(fmt).seal(fmt.raw_header, data, associated_data))

    def decrypt(
        self, token: str | BytesLike, *, associated_data: BytesLike | None = None
    ) -> bytes | str:
        """Verify and decrypt a raw-key token (either form); ``InvalidToken`` on any failure."""
        raw = token_to_bytes(token)
        plain = self._keys.open_own(raw, self._header, associated_data)
        if plain is None:
            # Slow path: name the failure precisely, or open another format version.
            parts = parse(raw)
            if parts.kdf is not None:
                raise InvalidToken("token needs a password, not a raw key")
            return self._cipher(parts.format).open(raw, len(parts.header), associated_data)
        return plain


class AbsentPassword:
    """What a ``PasswordKey`` becomes in another process: its KDF, never its password.

    Used as a secret, it gives a credential that fails at first use saying why (so that
    unpickling never fails: Dask would then hang).
    """

    __slots__ = ("_dask_token", "kdf")

    def __init__(self, kdf: Kdf, dask_token: str) -> None:
        self.kdf = kdf
        self._dask_token = dask_token

    def __repr__(self) -> str:
        return "<aes_hmac.PasswordKey copy without its password>"

    def __dask_tokenize__(self) -> str:
        return self._dask_token

    def __reduce__(self) -> tuple[object, ...]:
        return (AbsentPassword, (self.kdf, self._dask_token))


class PasswordKey:
    """Derive-once bulk mode: one KDF run for all tokens this object encrypts.

    The object draws one random salt at creation and derives its key on first use; every token it
    makes shares that salt (so tokens made by one object are linkable as "same password, same
    object", and one derivation opens them all). Decrypting tokens from any ``PasswordKey`` or
    ``encrypt`` call works too: derived keys are kept in a small LRU cache keyed by (salt, KDF),
    so tokens from the same object cost one KDF for all of them. Thread-safe.
    """

    __slots__ = (
        "__weakref__",
        "_cache",
        "_cache_lock",
        "_cache_size",
        "_dask_token",
        "_derive_lock",
        "_kdf",
        "_limits",
        "_own",
        "_password",
        "_salt",
    )

    def __init__(
        self,
        password: str | bytes,
        *,
        kdf: Kdf = DEFAULT_KDF,
        limits: KdfLimits = DEFAULT_LIMITS,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._password = encode_password(password)
        self._kdf = check_kdf(kdf)
        check_limits_arg(limits)
        if isinstance(cache_size, bool) or not isinstance(cache_size, int):
            raise TypeError(f"cache_size must be an int, not {type(cache_size).__name__}")
        if cache_size < 1:
            raise ValueError(f"cache_size must be at least 1, got {cache_size}")
        self._limits = limits
        self._cache_size = cache_size
        self._salt = random_bytes(SALT_SIZE)
        self._dask_token = random_bytes(DASK_TOKEN_SIZE).hex()
        # (version, header, cipher) per version this object wrote in: its own tokens' fast path.
        # Replaced, never mutated, so readers iterate it without a lock.
        self._own: tuple[tuple[int, bytes, TokenCipher], ...] = ()
        self._cache: OrderedDict[tuple[int, bytes, Kdf], TokenCipher] = OrderedDict()
        self.after_fork_in_child()
        reset_after_fork(self)

    def after_fork_in_child(self) -> None:
        """New locks: another thread may have held one at the fork (also makes the first ones)."""
        self._cache_lock = threading.Lock()
        self._derive_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<aes_hmac.PasswordKey kdf={self._kdf!r} (password hidden)>"

    def __dask_tokenize__(self) -> str:
        """Dask's token (task names): random per object, so a password given as a
        ``PasswordKey`` in ``storage_options`` leaves nothing in a task name to test guesses
        against (a plain ``str`` there is hashed by Dask itself)."""
        return self._dask_token

    def __reduce__(self) -> tuple[object, ...]:
        # The password never crosses a process boundary (docs/SECURITY.md): Dask pickles
        # ``storage_options`` with the expression it sends to its scheduler, which needs no
        # password; what the workers read with travels in the filesystem, as derived keys.
        return (AbsentPassword, (self._kdf, self._dask_token))

    @property
    def kdf(self) -> Kdf:
        """The KDF and parameters this object encrypts with."""
        return self._kdf

    def credential(self) -> Credential:
        """This password and KDF as a stream/file credential (a password slot)."""
        return Credential(self._password, self._kdf)

    def _keys_for(
        self, fmt: TokenFormat, salt: bytes, kdf: Kdf, budget: WorkBudget | None = None
    ) -> TokenCipher:
        cache_key = (fmt.version, salt, kdf)
        with self._cache_lock:
            keys = self._cache.get(cache_key)
            if keys is not None:
                self._cache.move_to_end(cache_key)
                return keys
        # One derivation at a time: eight threads asking for the same salt pay one KDF, not eight.
        with self._derive_lock:
            with self._cache_lock:
                keys = self._cache.get(cache_key)
            if keys is None:
                if budget is not None:
                    charge(budget, kdf)  # only a real derivation costs: cache hits are free
                keys = fmt.cipher(derive_master(self._password, salt, kdf))
                with self._cache_lock:
                    self._cache[cache_key] = keys
                    while len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
        return keys

    def _own_for(self, fmt: TokenFormat) -> tuple[bytes, TokenCipher]:
        """Header and ciphers of this object's tokens in ``fmt``; derives on first use."""
        for version, header, cipher in self._own:
            if version == fmt.version:
                return header, cipher
        cipher = self._keys_for(fmt, self._salt, self._kdf)
        header = fmt.header_for(self._kdf, self._salt)
        with self._cache_lock:
            if all(version != fmt.version for version, _, _ in self._own):
                self._own = (*self._own, (fmt.version, header, cipher))
        return header, cipher

    def encrypt(
        self,
        data: bytes | str,
        *,
        associated_data: BytesLike | None = None,
        version: int = DEFAULT_VERSION,
    ) -> str:
        """Text token of ``data`` in format ``version`` under the password; derives the key on
        the first call (per version) only."""
        own = self._own
        if own and own[0][0] is version:  # the fast path; any other value is checked below
            _, header, cipher = own[0]
        else:
            header, cipher = self._own_for(token_format(version))
        return token_to_text(cipher.seal(header, data, associated_data))

    def decrypt(
        self, token: str | BytesLike, *, associated_data: BytesLike | None = None
    ) -> bytes | str:
        """Verify and decrypt a password token; one KDF per new (salt, KDF), then cached."""
        raw = token_to_bytes(token)
        for _, header, cipher in self._own:
            plain = cipher.open_own(raw, header, associated_data)
            if plain is not None:
                return plain
        return self._open_parts(parse(raw), associated_data, None, None)

    def _open_parts(
        self,
        parts: TokenParts,
        associated_data: BytesLike | None,
        budget: WorkBudget | None,
        checked: KdfLimits | None,
    ) -> bytes | str:
        """Open a parsed token: this object's own ciphers, else the cache or one derivation
        (charged to ``budget`` when given) after this object's limits (unless they are the
        ``checked`` ones the caller already applied)."""
        for _, header, cipher in self._own:
            if parts.header == header:
                return cipher.open(parts.raw, len(header), associated_data)
        if parts.kdf is None:
            raise InvalidToken("token needs a raw key, not a password")
        if self._limits is not checked:
            check_limits(parts.kdf, self._limits)
        keys = self._keys_for(parts.format, parts.salt, parts.kdf, budget)
        return keys.open(parts.raw, len(parts.header), associated_data)


def decrypt_parts(
    key: PasswordKey, parts: TokenParts, associated_data: BytesLike | None, checked: KdfLimits
) -> bytes | str:
    """``key.decrypt`` of a token its caller already parsed and checked against ``checked``
    (the key applies its own limits too, unless they are the same object)."""
    return key._open_parts(parts, associated_data, None, checked)


def decrypt_within(
    key: PasswordKey, parts: TokenParts, associated_data: BytesLike | None, budget: WorkBudget
) -> bytes | str:
    """``decrypt_parts`` whose derivation, if it needs one (a cache miss), is charged to
    ``budget`` first: how a ``Keyring`` bounds the work of one token over all its entries."""
    return key._open_parts(parts, associated_data, budget, None)
