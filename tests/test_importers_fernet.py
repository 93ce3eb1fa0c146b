"""Fernet importer: the Fernet spec vectors, tokens from pyca's Fernet, bad keys and arguments."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import pytest
from _vectors import cases
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

import aes_hmac
from aes_hmac import PBKDF2, InvalidToken, Key, PasswordKey
from aes_hmac._token.codec import parse
from aes_hmac.importers import import_fernet
from aes_hmac.importers.fernet import fernet_decrypt

CHEAP = PBKDF2(iterations=1000)
KEY = bytes(range(32))
AESCRYPT_PASSWORD = "correct horse ☃ 🔑"

# The message each invalid Fernet spec vector must produce (keyed by its "desc").
FERNET_INVALID_MESSAGES = {
    "incorrect mac": "wrong key or tampered",
    "too short": "wrong length",
    "invalid base64": "bad base64",
    "payload size not multiple of block size": "wrong length",
    "payload padding error": "bad padding",
    "far-future TS (unacceptable clock skew)": "timestamp in the future",
    "expired TTL": "expired",
    "incorrect IV (causes padding error)": "bad padding",
}


def _now(case: dict[str, Any]) -> float:
    return datetime.fromisoformat(case["now"]).timestamp()


@pytest.mark.parametrize(
    ("group", "case"), cases("fernet/generate.json") + cases("fernet/verify.json")
)
def test_fernet_valid_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    ttl = case.get("ttl_sec")
    src = case["src"].encode()
    assert fernet_decrypt(case["token"], case["secret"], ttl=ttl, now=_now(case)) == src
    token = import_fernet(
        case["token"], case["secret"], password="new", kdf=CHEAP, ttl=ttl, now=_now(case)
    )
    assert aes_hmac.decrypt(token, "new") == src
    raw_token = import_fernet(
        case["token"], case["secret"], key=KEY, now=_now(case), associated_data=b"ad"
    )
    assert Key(KEY).decrypt(raw_token, associated_data=b"ad") == src


@pytest.mark.parametrize(("group", "case"), cases("fernet/invalid.json"))
def test_fernet_invalid_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    expected = FERNET_INVALID_MESSAGES[case["desc"]]
    with pytest.raises(InvalidToken, match=f"^fernet token: {expected}$"):
        fernet_decrypt(case["token"], case["secret"], ttl=case["ttl_sec"], now=_now(case))
    with pytest.raises(InvalidToken):
        import_fernet(
            case["token"], case["secret"], password="new", ttl=case["ttl_sec"], now=_now(case)
        )


def test_fernet_spec_token_without_ttl_or_now() -> None:
    # No ttl: age does not matter, but the 1985 timestamp is not in the future either.
    case = cases("fernet/verify.json")[0].values[1]
    assert fernet_decrypt(case["token"], case["secret"]) == b"hello"


def test_fernet_every_bit_flip_rejected() -> None:
    key = Fernet.generate_key()
    raw = bytearray(base64.urlsafe_b64decode(Fernet(key).encrypt_at_time(b"abc", 1000)))
    for i in range(len(raw) * 8):
        raw[i // 8] ^= 1 << (i % 8)
        with pytest.raises(InvalidToken):
            fernet_decrypt(base64.urlsafe_b64encode(bytes(raw)), key, now=1000)
        raw[i // 8] ^= 1 << (i % 8)
    assert fernet_decrypt(base64.urlsafe_b64encode(bytes(raw)), key, now=1000) == b"abc"


def test_fernet_wrong_key_and_bad_arguments() -> None:
    token = Fernet(Fernet.generate_key()).encrypt(b"x")
    with pytest.raises(InvalidToken, match="wrong key or tampered"):
        fernet_decrypt(token, Fernet.generate_key())
    with pytest.raises(ValueError, match="fernet_key must be 32 url-safe base64-encoded bytes"):
        fernet_decrypt(token, base64.urlsafe_b64encode(b"short"))
    with pytest.raises(TypeError, match="fernet_key must be str or bytes, not int"):
        fernet_decrypt(token, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token must be str or bytes"):
        fernet_decrypt(None, Fernet.generate_key())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ttl must be"):
        fernet_decrypt(token, Fernet.generate_key(), ttl=-1)
    with pytest.raises(TypeError, match="give password or key"):
        import_fernet(token, Fernet.generate_key())
    with pytest.raises(TypeError, match="give password or key"):
        import_fernet(token, Fernet.generate_key(), password="p", key=KEY)
    with pytest.raises(ValueError, match="key must be 32 bytes, got 3"):
        import_fernet(token, Fernet.generate_key(), key=b"abc")
    with pytest.raises(InvalidToken, match="bad base64"):
        fernet_decrypt("gAAAAA\u00e9", Fernet.generate_key())


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300), timestamp=st.integers(0, 2**40))
def test_fernet_tokens_from_pyca_convert(data: bytes, timestamp: int) -> None:
    key = Fernet.generate_key()
    token = Fernet(key).encrypt_at_time(data, timestamp)
    assert fernet_decrypt(token, key, ttl=10, now=timestamp + 5) == data
    converted = import_fernet(token, key.decode(), key=KEY, now=timestamp)
    assert Key(KEY).decrypt(converted) == data
    with pytest.raises(InvalidToken, match="expired"):
        fernet_decrypt(token, key, ttl=10, now=timestamp + 11)


def test_imported_token_kdf_is_the_requested_one() -> None:
    token = Fernet(Fernet.generate_key())
    raw = token.encrypt(b"x")
    key = token._signing_key + token._encryption_key
    converted = import_fernet(raw, base64.urlsafe_b64encode(key), password="p", kdf=CHEAP)
    assert parse(converted).kdf == CHEAP


def test_import_fernet_batch_with_password_key_runs_one_kdf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = Fernet.generate_key()
    tokens = [Fernet(key).encrypt(bytes([i])) for i in range(5)]
    bulk = aes_hmac.PasswordKey("new", kdf=CHEAP)
    runs: list[bytes] = []
    original = PBKDF2.derive

    def counting(self: PBKDF2, password: bytes, salt: bytes) -> bytes:
        runs.append(salt)
        return original(self, password, salt)

    monkeypatch.setattr(PBKDF2, "derive", counting)
    converted = [import_fernet(t, key, password=bulk) for t in tokens]
    assert len(runs) == 1
    assert [bulk.decrypt(c) for c in converted] == [bytes([i]) for i in range(5)]


@pytest.mark.parametrize(
    "target",
    [
        {"password": "new"},
        {"password": b"new"},
        {"password": PasswordKey("new", kdf=CHEAP)},
        {"password": Key(KEY)},
        {"key": KEY},
        {"key": Key(KEY)},
    ],
    ids=["str", "bytes", "PasswordKey", "Key-as-password", "key-bytes", "key-Key"],
)
def test_every_secret_kind_is_a_target(target: dict[str, Any]) -> None:
    fernet_key = Fernet.generate_key()
    converted = import_fernet(Fernet(fernet_key).encrypt(b"moved"), fernet_key, kdf=CHEAP, **target)
    secret = target.get("password", Key(KEY))
    opener = secret if isinstance(secret, Key | PasswordKey) else "new"
    assert aes_hmac.decrypt(converted, opener) == b"moved"
