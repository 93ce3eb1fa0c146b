"""The one rule for secrets: every API that takes one accepts the same kinds in the same way.

A secret is a password (``str``, or ``bytes`` used as given), a ``Key`` (a raw 32-byte key) or a
``PasswordKey`` (a password with its KDF). The keyword ``key=`` takes a raw key as ``bytes`` or a
``Key``. Tokens, streams, files, slot edits, ``Keyring`` entries and the importers all go
through ``to_credential``, so a new kind of secret is added here once.

``BatchCredential`` is the other half of that rule: what may cross a process boundary. A password
never does; a pickled credential carries the slot master keys derived so far (testing a password
against one costs a full KDF run, as the file header does), the salt and key of its write batch,
and a random value, so no hash of the pickle can be matched against guesses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from .._errors import HeaderError
from .._kdf import DEFAULT_KDF, Credential, Kdf, check_kdf, encode_password
from .._primitives import KEY_SIZE, SALT_SIZE, random_bytes, reset_after_fork
from .keys import AbsentPassword, Key, PasswordKey

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
    if isinstance(secret, AbsentPassword):
        return BatchCredential.missing(secret.kdf, KEY_COPY_UNUSABLE)
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


KEY_COPY_UNUSABLE: Final = (
    "a PasswordKey does not carry its password to another process: give password_env= so "
    "each process reads the password itself"
)
NOT_DERIVED: Final = (
    "this credential holds no password (a pickled copy carries only the slot keys derived "
    "before it was sent) and no key derived for this file's salt: give password_env= so each "
    "process reads the password itself, or open the file where the password is first"
)

DerivedKey = tuple[bytes, Kdf]
"""(salt, KDF): what one slot master key is derived for."""


class DerivedKeys:
    """The slot master keys one secret has derived, shared by every view of a credential.

    The lock guards only the dictionaries, never a KDF run: a hostile slot with a huge cost
    stalls only the readers of that slot, while ``pending`` makes a second thread asking for
    the same (salt, KDF) wait for the first one's result instead of deriving it again. A forked
    child gets a new lock and forgets derivations in flight (their threads did not fork).
    """

    __slots__ = ("__weakref__", "keys", "lock", "pending")

    def __init__(self, keys: dict[DerivedKey, bytes] | None = None) -> None:
        self.keys: dict[DerivedKey, bytes] = dict(keys or {})
        self.after_fork_in_child()
        reset_after_fork(self)

    def after_fork_in_child(self) -> None:
        """A new lock and no derivations in flight (also how ``__init__`` makes the first)."""
        self.lock = threading.Lock()
        self.pending: dict[DerivedKey, threading.Event] = {}

    def __repr__(self) -> str:
        return f"<DerivedKeys {len(self.keys)} key(s) (hidden)>"

    def get(self, ident: DerivedKey, derive: Callable[[], bytes] | None) -> bytes:
        """The key for ``ident``, derived by ``derive`` (outside the lock) when nobody has;
        ``derive`` None means this copy cannot derive (``HeaderError``)."""
        while True:
            with self.lock:
                key = self.keys.get(ident)
                if key is not None:
                    return key
                if derive is None:
                    raise HeaderError(NOT_DERIVED)
                waiter = self.pending.get(ident)
                mine = waiter is None
                if waiter is None:
                    waiter = self.pending[ident] = threading.Event()
            if not mine:
                # Another thread derives it; when it is done (or failed) look again.
                waiter.wait()
                continue
            try:
                key = derive()
                with self.lock:
                    self.keys[ident] = key
                return key
            finally:
                with self.lock:
                    if self.pending.get(ident) is waiter:
                        del self.pending[ident]
                waiter.set()


@dataclass(frozen=True, repr=False, eq=False)
class BatchCredential(Credential):
    """A credential that stretches its password once per (salt, KDF) and keeps the results.

    ``with_kdf`` and ``for_writing`` share the cache (``DerivedKeys``), so ``open_header``
    (which asks for each slot's KDF) reuses it. ``write_salt``, when set, is the salt every new
    stream made with this credential uses (a write batch: one derivation for all of them).
    Pickling (how an executor or Dask ships it) keeps the derived slot master keys, deriving the
    write batch's first, and drops the password: a copy opens the files of the salts derived so
    far and writes new files in the write batch, nothing else. A raw key has nothing to derive,
    so the raw key itself is what it carries.
    """

    derived: DerivedKeys = field(default_factory=DerivedKeys)
    has_password: bool = True
    write_salt: bytes | None = None
    unavailable: str | None = None
    """Why this copy has no secret at all (e.g. a variable missing on a worker): every use
    raises ``ValueError`` with it, deferred to first use so that unpickling never raises."""

    @classmethod
    def of(cls, credential: Credential, derived: DerivedKeys | None = None) -> BatchCredential:
        """``credential`` with a cache of derived keys (``derived``, shared, or a new one)."""
        return cls(credential.secret, credential.kdf, derived or DerivedKeys())

    @classmethod
    def missing(cls, kdf: Kdf | None, reason: str) -> BatchCredential:
        """A credential that fails on first use with ``reason`` (a ``ValueError``)."""
        return cls(b"", kdf, DerivedKeys(), has_password=False, unavailable=reason)

    def __reduce__(self) -> tuple[object, ...]:
        if self.unavailable is not None:
            return (BatchCredential.missing, (self.kdf, self.unavailable))
        if self.kdf is not None and self.write_salt is not None:
            self.master(self.write_salt)  # copies write new files without the password
        with self.derived.lock:
            keys = dict(self.derived.keys)
        secret = self.secret if self.kdf is None else b""
        return (_restore, (secret, self.kdf, keys, self.write_salt, self.nonce()))

    def with_kdf(self, kdf: Kdf) -> BatchCredential:
        if kdf == self.kdf:
            return self
        return BatchCredential(
            self.secret, kdf, self.derived, self.has_password, self.write_salt, self.unavailable
        )

    def for_writing(self, salt: bytes | None = None) -> BatchCredential:
        """A view sharing this cache whose new streams all use ``salt`` (default: random)."""
        salt = random_bytes(SALT_SIZE) if salt is None else salt
        return BatchCredential(
            self.secret, self.kdf, self.derived, self.has_password, salt, self.unavailable
        )

    def new_salt(self) -> bytes:
        return super().new_salt() if self.write_salt is None else self.write_salt

    def master(self, salt: bytes) -> bytes:
        if self.unavailable is not None:
            raise ValueError(self.unavailable)
        if self.kdf is None:
            return self.secret
        derive = None
        if self.has_password:

            def derive() -> bytes:
                return Credential.master(self, salt)

        return self.derived.get((salt, self.kdf), derive)


def _restore(
    secret: bytes,
    kdf: Kdf | None,
    keys: dict[DerivedKey, bytes],
    write_salt: bytes | None,
    nonce: bytes,
) -> BatchCredential:
    """Unpickle a ``BatchCredential``; ``nonce`` only made the pickle unpredictable."""
    return BatchCredential(secret, kdf, DerivedKeys(keys), kdf is None, write_salt)
