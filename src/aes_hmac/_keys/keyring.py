"""Keyring: several passwords and raw keys; decrypt with any, encrypt and rotate to the primary.

Tokens name the kind of key they need (KDF id 0x00 = raw key, else a password KDF), so a keyring
tries only the entries of that kind: a raw-key token never costs a KDF, and a password token
never tries raw keys. Password entries are ``PasswordKey`` objects, so each derived key is cached
per (salt, KDF) and repeated decrypts do not repeat KDFs.
"""

from __future__ import annotations

from typing import Final

from .._errors import InvalidToken, KdfLimitError
from .._kdf import (
    DEFAULT_KDF,
    DEFAULT_LIMITS,
    NO_LIMITS,
    Kdf,
    KdfLimits,
    WorkBudget,
    check_kdf,
    check_limits_arg,
)
from .._primitives import BytesLike
from .._token.codec import (
    DEFAULT_FORMAT,
    DEFAULT_VERSION,
    check_limits,
    parse,
    token_format,
    token_to_bytes,
)
from .._token.format import TokenParts
from .keys import DEFAULT_CACHE_SIZE, Key, PasswordKey, decrypt_within

__all__ = ["Keyring"]

_WORK_FIELD: Final = "max_kdf_work"
_NO_ENTRY: Final = (
    "no keyring entry opens this token (wrong keys or tampered; entries past "
    "the limits' max_kdf_work are not tried)"
)

Entry = str | bytes | PasswordKey | Key
"""A keyring entry: a password (``str`` or ``bytes``, or a ``PasswordKey`` with its own KDF), or
a raw key (``Key``): the rule every API here follows."""


def _entry(value: object, index: int, kdf: Kdf, cache_size: int) -> PasswordKey | Key:
    if isinstance(value, PasswordKey | Key):
        return value
    if isinstance(value, str | bytes | bytearray | memoryview):
        # The keyring checks the caller's limits itself before any entry derives, so the limits
        # built into its own PasswordKey entries must never be the stricter ones.
        password = value if isinstance(value, str) else bytes(value)
        return PasswordKey(password, kdf=kdf, limits=NO_LIMITS, cache_size=cache_size)
    raise TypeError(
        f"entry {index} must be str, bytes, Key or PasswordKey, not {type(value).__name__}"
    )


class Keyring:
    """Several passwords and raw keys; decrypts with whichever opens a token, encrypts with one.

    ``Keyring(primary, *others, kdf=...)``: ``str`` and ``bytes`` entries are passwords
    (``kdf`` is what the primary encrypts with), ``PasswordKey`` entries bring their own KDF and
    keep their own decrypt limits on top of the ``limits`` given to each call, and ``Key``
    entries are raw keys (as everywhere else). A password primary derives its key once per
    keyring (one salt for all its tokens, like ``PasswordKey``). Thread-safe; ``repr`` shows
    only counts.
    """

    __slots__ = ("_keys", "_passwords", "_primary")

    def __init__(
        self,
        primary: Entry,
        *others: Entry,
        kdf: Kdf = DEFAULT_KDF,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        kdf = check_kdf(kdf)
        entries = [_entry(e, i, kdf, cache_size) for i, e in enumerate((primary, *others))]
        self._primary: PasswordKey | Key = entries[0]
        self._passwords = tuple(e for e in entries if isinstance(e, PasswordKey))
        self._keys = tuple(e for e in entries if isinstance(e, Key))

    def __repr__(self) -> str:
        kind = "password" if isinstance(self._primary, PasswordKey) else "raw key"
        return (
            f"<aes_hmac.Keyring {len(self._passwords)} password(s), {len(self._keys)} raw key(s), "
            f"primary: {kind} (secrets hidden)>"
        )

    @property
    def primary_kdf(self) -> Kdf | None:
        """The KDF new tokens use; None when the primary entry is a raw key."""
        return self._primary.kdf if isinstance(self._primary, PasswordKey) else None

    def encrypt(
        self,
        data: bytes | str,
        *,
        associated_data: BytesLike | None = None,
        version: int = DEFAULT_VERSION,
    ) -> str:
        """Text token of ``data`` in format ``version`` under the primary entry (``str`` in,
        ``str`` out on decrypt)."""
        return self._primary.encrypt(data, associated_data=associated_data, version=version)

    def _open(
        self,
        raw: bytes,
        parts: TokenParts | None,
        candidates: tuple[PasswordKey | Key, ...],
        associated_data: BytesLike | None,
        limits: KdfLimits,
    ) -> bytes | str:
        """The first candidate that opens ``raw`` (password entries open ``parts``, its parsed
        form, which they then need not parse again). Derivations share one ``WorkBudget``
        (cached keys cost nothing), so more entries never cost more than ``limits`` allow.

        When the budget runs out part way, the entries left are not tried and the error is the
        same ``InvalidToken`` as when every entry was tried: which of the two happened depends
        on how many entries a keyring has, which a token's sender must not learn. (A token
        whose single derivation passes the limit is refused before any entry, by ``decrypt``.)
        """
        budget = WorkBudget(limits)
        for entry in candidates:
            try:
                if isinstance(entry, PasswordKey):
                    if parts is None:
                        parts = parse(raw)
                    return decrypt_within(entry, parts, associated_data, budget)
                return entry.decrypt(raw, associated_data=associated_data)
            except KdfLimitError as exc:
                if exc.field != _WORK_FIELD:
                    raise
                break  # the budget is spent: the entries left are not tried
            except InvalidToken:
                continue
        raise InvalidToken(_NO_ENTRY)

    def decrypt(
        self,
        token: str | BytesLike,
        *,
        associated_data: BytesLike | None = None,
        limits: KdfLimits = DEFAULT_LIMITS,
    ) -> bytes | str:
        """Decrypt with the first entry of the token's kind that opens it; else ``InvalidToken``.

        Raw-key tokens try raw keys only (no KDF); password tokens are checked against
        ``limits`` first (``KdfLimitError`` when one derivation alone passes them), then try
        passwords in order, each derivation cached; the derivations for one token share
        ``limits.max_kdf_work``, so entries past it are not tried and the outcome is
        ``InvalidToken``, whatever the number of entries (it would otherwise show).
        """
        check_limits_arg(limits)
        raw = token_to_bytes(token)
        # Raw-key tokens of the default version skip ``parse``: ``Key.decrypt`` checks the layout.
        if not raw.startswith(DEFAULT_FORMAT.raw_header):
            parts = parse(raw)
            if parts.kdf is not None:
                check_limits(parts.kdf, limits)  # one derivation alone too costly: for any count
                return self._open(raw, parts, self._passwords, associated_data, limits)
        return self._open(raw, None, self._keys, associated_data, limits)

    def rotate(
        self,
        token: str | BytesLike,
        *,
        associated_data: BytesLike | None = None,
        limits: KdfLimits = DEFAULT_LIMITS,
        version: int = DEFAULT_VERSION,
    ) -> str:
        """Re-encrypt ``token`` under the primary entry in format ``version``, same data type and
        associated data.

        The new token uses the primary's KDF (by default the current default parameters), so
        rotating also upgrades tokens made with weaker KDF settings.
        """
        data = self.decrypt(token, associated_data=associated_data, limits=limits)
        return self.encrypt(data, associated_data=associated_data, version=version)

    def needs_rotation(
        self,
        token: str | BytesLike,
        *,
        associated_data: BytesLike | None = None,
        limits: KdfLimits = DEFAULT_LIMITS,
        version: int = DEFAULT_VERSION,
    ) -> bool:
        """True when ``token`` has a format version older than ``version`` (what ``rotate``
        writes), a weaker KDF, or another key.

        Version and KDF come from the header alone. Whether the primary entry made the token is
        decided by checking the tag with the primary (tokens carry no key id): free for a raw
        key or a token this keyring made, one cached KDF run otherwise. A wrong
        ``associated_data`` therefore reads as "needs rotation". Malformed -> ``InvalidToken``.
        """
        check_limits_arg(limits)
        target = token_format(version).version
        raw = token_to_bytes(token)
        parts = parse(raw)  # malformed, or a version this library cannot read: InvalidToken
        if parts.version < target:  # an older version still readable
            return True
        primary_kdf = self.primary_kdf
        if (parts.kdf is None) != (primary_kdf is None):
            return True
        if parts.kdf is not None and primary_kdf is not None:
            if parts.kdf.weaker_than(primary_kdf):
                return True
            check_limits(parts.kdf, limits)
        try:
            self._open(raw, parts, (self._primary,), associated_data, limits)
        except InvalidToken:
            return True
        return False
