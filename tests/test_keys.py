"""Raw-key mode (Key, generate_key) and derive-once bulk mode (PasswordKey)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from aes_hmac import (
    InvalidToken,
    KdfLimits,
    Key,
    PasswordKey,
    decrypt,
    encrypt,
    generate_key,
)
from aes_hmac._encrypt import parse
from aes_hmac._kdf import KDF_CLASS_NAMES, PBKDF2, Scrypt
from aes_hmac._keys import keys as _keys

CHEAP = PBKDF2(1000)  # test setting: cheap KDF parameters passed explicitly


@pytest.fixture
def kdf_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record every KDF run that PasswordKey makes."""
    calls: list[Any] = []
    real = _keys.derive_master

    def counting(password: bytes, salt: bytes, kdf: Any) -> bytes:
        calls.append((salt, kdf))
        return real(password, salt, kdf)

    monkeypatch.setattr(_keys, "derive_master", counting)
    return calls


def run_eight_threads(work: Callable[[int], None]) -> None:
    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_generate_key() -> None:
    a, b = generate_key(), generate_key()
    assert len(a) == 32 and a != b


def test_key_round_trip_and_types() -> None:
    key = Key.generate()
    assert key.decrypt(key.encrypt("text")) == "text"
    assert key.decrypt(key.encrypt(b"bytes")) == b"bytes"
    assert key.decrypt(key.encrypt(bytearray(b"ba"))) == b"ba"
    token = key.encrypt(b"x", associated_data=b"id 1")
    assert parse(token).kdf is None
    assert key.decrypt(token, associated_data=b"id 1") == b"x"
    with pytest.raises(InvalidToken, match="authentication failed"):
        key.decrypt(token, associated_data=b"id 2")
    with pytest.raises(InvalidToken, match="authentication failed"):
        Key.generate().decrypt(token, associated_data=b"id 1")


def test_key_hides_its_bytes() -> None:
    raw = bytes(range(32))
    key = Key(raw)
    assert raw.hex() not in repr(key) and "hidden" in repr(key)
    assert key == Key(raw) and key != Key(bytes(32)) and key != raw
    assert hash(key) == hash(Key(raw))
    assert len({key, Key(raw), Key(bytes(32))}) == 2


def test_key_argument_errors() -> None:
    with pytest.raises(ValueError, match="key must be 32 bytes, got 16"):
        Key(bytes(16))
    with pytest.raises(TypeError, match="key must be bytes, not str"):
        Key("k" * 32)  # type: ignore[arg-type]


def test_key_refuses_password_tokens() -> None:
    token = encrypt(b"x", "pw", kdf=CHEAP)
    with pytest.raises(InvalidToken, match="token needs a password, not a raw key"):
        Key.generate().decrypt(token)


def test_password_key_derives_once(kdf_calls: list[Any]) -> None:
    bulk = PasswordKey("pw", kdf=CHEAP)
    assert kdf_calls == []  # derived lazily
    tokens = [bulk.encrypt(f"value {i}") for i in range(50)]
    assert len(kdf_calls) == 1
    assert len({parse(t).salt for t in tokens}) == 1  # one salt for all of this object's tokens
    other = PasswordKey("pw", kdf=CHEAP)
    assert [other.decrypt(t) for t in tokens] == [f"value {i}" for i in range(50)]
    assert len(kdf_calls) == 2  # one more derivation for the other object, then cached
    assert decrypt(tokens[0], "pw") == "value 0"  # ordinary tokens, readable by decrypt()


def test_password_key_reads_plain_encrypt_tokens(kdf_calls: list[Any]) -> None:
    bulk = PasswordKey("pw", kdf=CHEAP)
    tokens = [encrypt(b"a", "pw", kdf=CHEAP) for _ in range(3)]
    for token in tokens * 2:
        assert bulk.decrypt(token) == b"a"
    assert len(kdf_calls) == 3  # one per distinct salt


def test_password_key_cache_is_bounded(kdf_calls: list[Any]) -> None:
    bulk = PasswordKey("pw", kdf=CHEAP, cache_size=2)
    tokens = [encrypt(b"a", "pw", kdf=CHEAP) for _ in range(3)]
    for token in tokens:
        bulk.decrypt(token)
    assert len(bulk._cache) == 2
    bulk.decrypt(tokens[0])  # evicted, derived again
    assert len(kdf_calls) == 4


def test_password_key_checks_limits_and_kinds() -> None:
    bulk = PasswordKey("pw", kdf=CHEAP, limits=KdfLimits(max_pbkdf2_iterations=999))
    with pytest.raises(InvalidToken, match="kdf limits exceeded: pbkdf2 iterations 1000"):
        bulk.decrypt(encrypt(b"a", "pw", kdf=CHEAP))
    assert bulk.decrypt(bulk.encrypt(b"own")) == b"own"  # its own parameters are trusted
    with pytest.raises(InvalidToken, match="token needs a raw key, not a password"):
        bulk.decrypt(Key.generate().encrypt(b"a"))
    with pytest.raises(InvalidToken, match="authentication failed"):
        PasswordKey("other", kdf=CHEAP).decrypt(bulk.encrypt(b"a"))


def test_password_key_argument_errors() -> None:
    with pytest.raises(ValueError, match="password must not be empty"):
        PasswordKey("")
    with pytest.raises(ValueError, match="cache_size must be at least 1, got 0"):
        PasswordKey("pw", cache_size=0)
    with pytest.raises(TypeError, match=f"kdf must be {KDF_CLASS_NAMES}"):
        PasswordKey("pw", kdf=1000)  # type: ignore[arg-type]
    bulk = PasswordKey("hunter2", kdf=Scrypt(10, 8, 1))
    assert "hunter2" not in repr(bulk) and "hidden" in repr(bulk)
    assert bulk.kdf == Scrypt(10, 8, 1)


def test_password_key_from_eight_threads(kdf_calls: list[Any]) -> None:
    bulk = PasswordKey("pw", kdf=CHEAP)
    foreign = encrypt(b"foreign", "pw", kdf=CHEAP)
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            barrier.wait()
            for i in range(200):
                data = f"{n}:{i}".encode()
                assert bulk.decrypt(bulk.encrypt(data)) == data
                assert bulk.decrypt(foreign) == b"foreign"
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    run_eight_threads(work)
    assert errors == []
    assert len(kdf_calls) == 2  # own salt once, the foreign salt once


def test_key_from_eight_threads() -> None:
    key = Key.generate()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(500):
                data = bytes([n]) * (i % 40)
                assert key.decrypt(key.encrypt(data)) == data
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    run_eight_threads(work)
    assert errors == []
