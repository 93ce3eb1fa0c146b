"""Keyring: decrypt by key kind without needless KDFs, encrypt under the primary, rotation."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import aes_hmac
from aes_hmac import (
    PBKDF2,
    Argon2id,
    InvalidToken,
    KdfLimitError,
    KdfLimits,
    Key,
    Keyring,
    PasswordKey,
    Scrypt,
)
from aes_hmac._token.codec import DEFAULT_VERSION, parse, token_to_bytes, token_to_text

CHEAP = PBKDF2(iterations=1000)
CHEAPER = PBKDF2(iterations=500)
CHEAP_SCRYPT = Scrypt(log2_n=4, r=1, p=1)
KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


@pytest.fixture
def kdf_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Record every password-KDF run (PBKDF2 and scrypt), wherever it is called from."""
    calls: list[object] = []

    def counting(original: Callable[[Any, bytes, bytes], bytes]) -> Callable[..., bytes]:
        def derive(self: object, password: bytes, salt: bytes) -> bytes:
            calls.append(self)
            return original(self, password, salt)

        return derive

    monkeypatch.setattr(PBKDF2, "derive", counting(PBKDF2.derive))
    monkeypatch.setattr(Scrypt, "derive", counting(Scrypt.derive))
    yield calls


def test_round_trip_password_primary_keeps_type_and_ad() -> None:
    ring = Keyring("primary pw", Key(KEY_A), kdf=CHEAP)
    text = ring.encrypt("héllo", associated_data=b"row 7")
    data = ring.encrypt(b"\x00bytes", associated_data=None)
    assert ring.decrypt(text, associated_data=b"row 7") == "héllo"
    assert ring.decrypt(data) == b"\x00bytes"
    assert parse(text).kdf == CHEAP
    with pytest.raises(InvalidToken):
        ring.decrypt(text, associated_data=b"row 8")
    with pytest.raises(InvalidToken):
        ring.decrypt(text)


def test_round_trip_raw_primary_and_token_api_interop() -> None:
    ring = Keyring(Key(KEY_A), "old password", kdf=CHEAP)
    token = ring.encrypt(b"data", associated_data=b"ad")
    assert parse(token).kdf is None
    assert Key(KEY_A).decrypt(token, associated_data=b"ad") == b"data"
    assert ring.decrypt(aes_hmac.encrypt("x", "old password", kdf=CHEAP)) == "x"


def test_decrypts_with_any_entry_of_each_kind() -> None:
    ring = Keyring(
        "new", PasswordKey(b"\xffbyte pw", kdf=CHEAP), "old", Key(KEY_B), Key(KEY_A), kdf=CHEAP
    )
    assert ring.decrypt(aes_hmac.encrypt(b"1", "old", kdf=CHEAPER)) == b"1"
    assert ring.decrypt(aes_hmac.encrypt(b"2", b"\xffbyte pw", kdf=CHEAP_SCRYPT)) == b"2"
    assert ring.decrypt(Key(KEY_A).encrypt(b"3")) == b"3"
    assert ring.decrypt(Key(KEY_B).encrypt("4")) == "4"


def test_wrong_keyring_is_invalid_token() -> None:
    token = aes_hmac.encrypt(b"secret", "right", kdf=CHEAP)
    raw_token = Key(KEY_A).encrypt(b"secret")
    ring = Keyring("wrong", "also wrong", Key(KEY_B), kdf=CHEAP)
    for t in (token, raw_token):
        with pytest.raises(InvalidToken, match="no keyring entry opens this token"):
            ring.decrypt(t)
    with pytest.raises(InvalidToken):
        ring.decrypt("not a token")


def test_raw_key_tokens_never_run_a_kdf(kdf_calls: list[object]) -> None:
    ring = Keyring("p1", "p2", PasswordKey("p3", kdf=CHEAP), Key(KEY_B), Key(KEY_A), kdf=CHEAP)
    kdf_calls.clear()
    token = Key(KEY_A).encrypt(b"fast")
    for _ in range(3):
        assert ring.decrypt(token) == b"fast"
    with pytest.raises(InvalidToken):
        ring.decrypt(Key(bytes(32)).encrypt(b"nobody"))
    assert kdf_calls == []


def test_password_tokens_try_only_passwords_and_cache(kdf_calls: list[object]) -> None:
    token = aes_hmac.encrypt(b"x", "p2", kdf=CHEAP)
    kdf_calls.clear()
    ring = Keyring("p1", "p2", Key(KEY_A), kdf=CHEAP)
    for _ in range(5):
        assert ring.decrypt(token) == b"x"
    assert len(kdf_calls) == 2  # p1 fails once, p2 opens once; both cached afterwards
    raw_only = Keyring(Key(KEY_A), Key(KEY_B))
    with pytest.raises(InvalidToken):
        raw_only.decrypt(token)
    assert len(kdf_calls) == 2


def test_limits_checked_before_any_kdf(kdf_calls: list[object]) -> None:
    token = aes_hmac.encrypt(b"x", "pw", kdf=PBKDF2(2000))
    kdf_calls.clear()
    ring = Keyring("pw", kdf=CHEAP)
    with pytest.raises(InvalidToken, match="pbkdf2 iterations 2000 exceed the limit 1500"):
        ring.decrypt(token, limits=KdfLimits(max_pbkdf2_iterations=1500))
    with pytest.raises(InvalidToken, match="limit 1500"):
        ring.needs_rotation(
            aes_hmac.encrypt(b"x", "pw", kdf=PBKDF2(2000)),
            limits=KdfLimits(max_pbkdf2_iterations=1500),
        )
    assert len(kdf_calls) == 1  # only the encrypt above
    assert ring.decrypt(token) == b"x"


def test_rotate_keeps_ad_and_type_and_upgrades_kdf() -> None:
    old = aes_hmac.encrypt("text", "old", kdf=CHEAPER, associated_data=b"id=1")
    ring = Keyring("new", "old", kdf=CHEAP)
    assert ring.needs_rotation(old, associated_data=b"id=1")
    new = ring.rotate(old, associated_data=b"id=1")
    assert parse(new).kdf == CHEAP
    assert aes_hmac.decrypt(new, "new", associated_data=b"id=1") == "text"
    with pytest.raises(InvalidToken):
        aes_hmac.decrypt(new, "new")
    with pytest.raises(InvalidToken):
        aes_hmac.decrypt(new, "old", associated_data=b"id=1")
    assert not ring.needs_rotation(new, associated_data=b"id=1")
    with pytest.raises(InvalidToken):
        ring.rotate(old)  # associated data missing: nothing opens it


def test_rotate_between_kinds() -> None:
    to_raw = Keyring(Key(KEY_A), "pw", kdf=CHEAP)
    rotated = to_raw.rotate(aes_hmac.encrypt(b"d", "pw", kdf=CHEAP))
    assert parse(rotated).kdf is None
    assert Key(KEY_A).decrypt(rotated) == b"d"
    to_password = Keyring("pw", Key(KEY_A), kdf=CHEAP)
    back = to_password.rotate(rotated)
    assert parse(back).kdf == CHEAP
    assert aes_hmac.decrypt(back, "pw") == b"d"


@pytest.mark.parametrize(
    ("token_kdf", "expected"),
    [
        (CHEAP, False),  # same parameters, made elsewhere (other salt) under the primary password
        (PBKDF2(1500), False),  # stronger than the primary: left alone
        (CHEAPER, True),  # weaker
        (CHEAP_SCRYPT, True),  # another algorithm: converge on the primary's
    ],
)
def test_needs_rotation_by_kdf(token_kdf: PBKDF2 | Scrypt, expected: bool) -> None:
    ring = Keyring("pw", "other", kdf=CHEAP)
    assert ring.needs_rotation(aes_hmac.encrypt(b"d", "pw", kdf=token_kdf)) is expected


def test_needs_rotation_by_key() -> None:
    password_ring = Keyring("pw", "other", Key(KEY_A), kdf=CHEAP)
    assert not password_ring.needs_rotation(password_ring.encrypt(b"own"))
    assert password_ring.needs_rotation(aes_hmac.encrypt(b"d", "other", kdf=CHEAP))
    assert password_ring.needs_rotation(Key(KEY_A).encrypt(b"raw"))
    raw_ring = Keyring(Key(KEY_A), Key(KEY_B), "pw", kdf=CHEAP)
    assert not raw_ring.needs_rotation(
        Key(KEY_A).encrypt(b"d", associated_data=b"a"), associated_data=b"a"
    )
    assert raw_ring.needs_rotation(Key(KEY_A).encrypt(b"d", associated_data=b"a"))  # wrong ad
    assert raw_ring.needs_rotation(Key(KEY_B).encrypt(b"d"))
    assert raw_ring.needs_rotation(aes_hmac.encrypt(b"d", "pw", kdf=CHEAP))
    with pytest.raises(InvalidToken):
        raw_ring.needs_rotation("garbage!")


def test_needs_rotation_refuses_a_version_it_cannot_read() -> None:
    """Version 1 is the first: a "version 0" token is malformed, not one to rotate (review)."""
    raw = bytearray(token_to_bytes(Key(KEY_A).encrypt(b"d")))
    raw[1] = DEFAULT_VERSION - 1
    with pytest.raises(InvalidToken, match="unsupported token version 0"):
        Keyring(Key(KEY_A)).needs_rotation(token_to_text(bytes(raw)))


@pytest.mark.parametrize("method", ["decrypt", "needs_rotation", "rotate"])
def test_limits_argument_type_checked(method: str) -> None:
    token = Key(KEY_A).encrypt(b"d")
    with pytest.raises(TypeError, match="limits must be KdfLimits, not str"):
        getattr(Keyring(Key(KEY_A)), method)(token, limits="x")


@pytest.mark.parametrize(
    ("kdf", "target", "weaker"),
    [
        (PBKDF2(10), PBKDF2(10), False),
        (PBKDF2(9), PBKDF2(10), True),
        (Scrypt(4, 8, 1), Scrypt(4, 8, 1), False),
        (Scrypt(4, 8, 1), Scrypt(5, 8, 1), True),
        (Scrypt(6, 7, 1), Scrypt(5, 8, 1), True),
        (Argon2id(3, 1024, 4), Argon2id(3, 1024, 4), False),
        (Argon2id(3, 512, 4), Argon2id(3, 1024, 4), True),
        (Argon2id(2, 2048, 4), Argon2id(3, 1024, 4), True),
        (Argon2id(3, 1024, 4), PBKDF2(10), True),
    ],
)
def test_weaker_than_is_the_rotation_rule(
    kdf: PBKDF2 | Scrypt | Argon2id, target: PBKDF2 | Scrypt | Argon2id, weaker: bool
) -> None:
    assert kdf.weaker_than(target) is weaker


def test_repr_hides_secrets() -> None:
    ring = Keyring("hunter2 password", Key(KEY_A), kdf=CHEAP)
    text = repr(ring)
    assert "hunter2" not in text
    assert KEY_A.hex() not in text
    assert repr(KEY_A)[2:20] not in text
    assert "1 password(s), 1 raw key(s), primary: password" in text


def test_bad_entries_and_arguments() -> None:
    with pytest.raises(ValueError, match="password must not be empty"):
        Keyring("pw", b"")
    with pytest.raises(TypeError, match="entry 0 must be str, bytes, Key or PasswordKey, not int"):
        Keyring(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="kdf must be"):
        Keyring("pw", kdf="pbkdf2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="password must not be empty"):
        Keyring("")
    with pytest.raises(TypeError, match="associated_data"):
        Keyring(Key(KEY_A)).encrypt(b"x", associated_data="text")  # type: ignore[arg-type]


def test_eight_threads_share_one_keyring(kdf_calls: list[object]) -> None:
    ring = Keyring("p1", "p2", Key(KEY_A), kdf=CHEAP)
    old = aes_hmac.encrypt(b"old", "p2", kdf=CHEAP)
    raw = Key(KEY_A).encrypt(b"raw")
    kdf_calls.clear()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(30):
                message = f"{n}:{i}"
                token = ring.encrypt(message, associated_data=b"t")
                assert ring.decrypt(token, associated_data=b"t") == message
                assert ring.decrypt(old) == b"old"
                assert ring.decrypt(raw) == b"raw"
                assert ring.decrypt(ring.rotate(old)) == b"old"
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    # primary derived once, p1 and p2 once each for the old token's salt: caching held up.
    assert len(kdf_calls) == 3


@settings(max_examples=50, deadline=None)
@given(data=st.one_of(st.binary(max_size=100), st.text(max_size=50)), ad=st.none() | st.binary())
def test_hypothesis_round_trip_raw_primary(data: bytes | str, ad: bytes | None) -> None:
    ring = Keyring(Key(KEY_A), Key(KEY_B))
    assert ring.decrypt(ring.encrypt(data, associated_data=ad), associated_data=ad) == data


@settings(max_examples=50, deadline=None)
@given(junk=st.one_of(st.binary(max_size=120), st.text(max_size=120)))
def test_hypothesis_junk_raises_only_invalid_token(junk: bytes | str) -> None:
    with pytest.raises(InvalidToken):
        Keyring(Key(KEY_A), "pw", kdf=CHEAP).decrypt(junk)


@pytest.mark.parametrize(
    "raw", [KEY_A, bytearray(KEY_A), memoryview(KEY_A)], ids=["bytes", "bytearray", "memoryview"]
)
def test_bytes_entries_are_passwords_as_everywhere_else(raw: bytes) -> None:
    """The package was never released: no draft rule (bytes as a raw key) is kept for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ring = Keyring(raw, Key(KEY_B), kdf=CHEAP)
    assert ring.primary_kdf == CHEAP
    assert ring.decrypt(aes_hmac.encrypt(b"d", bytes(KEY_A), kdf=CHEAP)) == b"d"
    with pytest.raises(InvalidToken):
        ring.decrypt(Key(KEY_A).encrypt(b"d"))  # 32 bytes are no raw key here
    assert aes_hmac.decrypt(ring.encrypt(b"e"), bytes(KEY_A)) == b"e"


@pytest.mark.parametrize(
    "entry",
    ["pw", PasswordKey("pw", kdf=CHEAP), PasswordKey(b"pw", kdf=CHEAP), Key(KEY_A)],
    ids=["str", "PasswordKey", "PasswordKey-bytes", "Key"],
)
def test_every_secret_kind_is_an_entry(entry: str | PasswordKey | Key) -> None:
    """The kinds ``encrypt`` takes open in a keyring the same way, either side."""
    ring = Keyring(entry, kdf=CHEAP)
    token = aes_hmac.encrypt(b"data", entry, kdf=CHEAP)
    assert ring.decrypt(token) == b"data"
    assert aes_hmac.decrypt(ring.encrypt("text"), entry) == "text"


@pytest.mark.parametrize("iterations", [1000, 3000])
def test_outcome_does_not_tell_how_many_entries_a_keyring_has(iterations: int) -> None:
    # A sender who can see error types must not learn the entry count: with the budget below,
    # 1-2 entries are all tried and 3+ stop part way; both end the same way. A token whose one
    # derivation passes the budget is refused whatever the count.
    token = aes_hmac.encrypt(b"x", "the sender's own password", kdf=PBKDF2(iterations=iterations))
    limits = KdfLimits(max_kdf_work=2500)
    outcomes = set()
    for count in (1, 2, 3, 5):
        ring = Keyring(*(f"entry {i}" for i in range(count)), kdf=PBKDF2(iterations=1000))
        with pytest.raises(InvalidToken) as caught:
            ring.decrypt(token, limits=limits)
        outcomes.add((type(caught.value), str(caught.value)))
    assert len(outcomes) == 1
    assert outcomes.pop()[0] is (InvalidToken if iterations <= 2500 else KdfLimitError)


def test_password_entries_open_the_token_the_keyring_parsed_once() -> None:
    import sys

    from aes_hmac._token import v1 as _token_v1

    ring = Keyring("one", "two", "three", kdf=CHEAP)
    token = aes_hmac.encrypt(b"data", "three", kdf=CHEAP)
    assert ring.decrypt(token) == b"data"  # derives; the count below is all cache hits
    parses = 0

    def profile(frame: Any, event: str, arg: object) -> None:
        nonlocal parses
        if event == "call" and frame.f_code is _token_v1.parse.__code__:
            parses += 1

    sys.setprofile(profile)  # a real count of the real parser's runs, nothing replaced
    try:
        assert ring.decrypt(token) == b"data"
    finally:
        sys.setprofile(None)
    assert parses == 1  # not once more per entry tried


def test_rotate_writes_and_needs_rotation_compares_the_version_asked_for() -> None:
    ring = Keyring("pw", kdf=CHEAP)
    token = ring.rotate(ring.encrypt(b"data"), version=DEFAULT_VERSION)
    assert token_to_bytes(token)[1] == DEFAULT_VERSION
    assert not ring.needs_rotation(token, version=DEFAULT_VERSION)
