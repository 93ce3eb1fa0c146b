"""Token format v1: vectors recomputed byte for byte, negative vectors with their exact errors,
exhaustive single-bit flips, property tests.

The JSON vectors are written by ``python scripts/make_vectors.py``.
"""

from __future__ import annotations

import base64
import struct
import unicodedata
from typing import Any

import pytest
from _vectors import cases, unhex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aes_hmac import (
    InvalidToken,
    KdfLimits,
    Key,
    Keyring,
    PasswordKey,
    decrypt,
    encrypt,
    token_to_bytes,
)
from aes_hmac._kdf import (
    KDF_CLASS_NAMES,
    PBKDF2,
    Argon2id,
    Kdf,
    Scrypt,
    encode_password,
    kdf_by_name,
)
from aes_hmac._kdf import KDFS as KDF_REGISTRY
from aes_hmac._primitives import split_key
from aes_hmac._token.codec import open_parts, parse, seal, token_to_text
from aes_hmac._token.v1 import KEY_LABEL, RAW_HEADER, header_for, seal_fixed

CHEAP = PBKDF2(1000)  # test setting: cheap KDF parameters passed explicitly, defaults untouched
# Random headers must never start a slow KDF in the tests: tight limits on every parameter.
FLIP_LIMITS = KdfLimits(
    max_pbkdf2_iterations=1000, max_memory_bytes=1 << 20, max_argon2_iterations=2
)
SALT = bytes(range(16))
IV = bytes(range(16, 32))
MASTER = bytes(range(32, 64))

KDFS: dict[str, Kdf] = {
    "pbkdf2": CHEAP,
    "scrypt": Scrypt(10, 8, 1),
    "argon2id": Argon2id(1, 64, 1),
}


def _encrypt_from_parts(
    data: bytes | str,
    password: str | None,
    kdf: Kdf | None,
    salt: bytes,
    iv: bytes,
    ad: bytes | None,
    *,
    master: bytes | None = None,
) -> str:
    """A text token with fixed salt and IV: a password and a KDF, or a raw ``master`` key."""
    if master is None:
        assert password is not None and kdf is not None
        master = kdf.derive(encode_password(password), salt)
    return token_to_text(seal_fixed(data, master, kdf, salt, iv, ad))


def _kdf_from(spec: dict[str, Any] | None) -> Kdf | None:
    if spec is None:
        return None
    params = dict(spec)
    name = params.pop("name")
    return kdf_by_name(name)(**params)


def _kdf_spec(name: str, kdf: Kdf) -> dict[str, Any]:
    return {"name": name, **kdf.__dict__}


def _data(case: dict[str, Any]) -> bytes | str:
    return case["text"] if "text" in case else unhex(case["data_hex"])


def _ad(case: dict[str, Any]) -> bytes | None:
    return None if case["associated_data"] is None else unhex(case["associated_data"])


# --- positive vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("group", "case"), cases("token_valid.json"))
def test_valid_vector_recomputed(group: dict[str, Any], case: dict[str, Any]) -> None:
    kdf = _kdf_from(case["kdf"])
    data, ad = _data(case), _ad(case)
    if kdf is None:
        made = _encrypt_from_parts(
            data, None, None, b"", unhex(case["iv"]), ad, master=unhex(case["key"])
        )
        opened = Key(unhex(case["key"])).decrypt(case["token"], associated_data=ad)
    else:
        made = _encrypt_from_parts(
            data, case["password"], kdf, unhex(case["salt"]), unhex(case["iv"]), ad
        )
        opened = decrypt(case["token"], case["password"], associated_data=ad)
    assert made == case["token"]
    assert type(opened) is type(data)
    assert opened == data
    raw = token_to_bytes(case["token"])
    assert raw.hex() == case["token_hex"]
    assert decrypt_any(raw, case) == data  # the binary form opens too


def decrypt_any(token: str | bytes, case: dict[str, Any]) -> bytes | str:
    if case["kdf"] is None:
        return Key(unhex(case["key"])).decrypt(token, associated_data=_ad(case))
    limits = KdfLimits(**case.get("limits", {}))
    return decrypt(token, case["password"], associated_data=_ad(case), limits=limits)


def test_valid_vectors_cover_the_matrix() -> None:
    valid = [p.values[1] for p in cases("token_valid.json")]
    kinds = {None if c["kdf"] is None else c["kdf"]["name"] for c in valid}
    assert kinds == {None, *(cls.name for cls in KDF_REGISTRY)}
    assert any(c["associated_data"] is not None for c in valid)
    assert any("text" in c for c in valid) and any("data_hex" in c for c in valid)
    assert any(c.get("data_hex") == "" for c in valid)


def test_layout_of_a_pbkdf2_token() -> None:
    token = _encrypt_from_parts(b"hi", "pw", CHEAP, SALT, IV, None)
    raw = token_to_bytes(token)
    assert raw[:3] == b"\xa5\x01\x01"
    assert raw[3:7] == struct.pack(">I", 1000)
    assert raw[7:23] == SALT and raw[23:39] == IV
    assert len(raw) == 23 + 16 + 16 + 32
    parts = parse(token)
    assert (parts.kdf, parts.salt, parts.header, parts.raw) == (CHEAP, SALT, raw[:23], raw)
    assert (parts.version, parts.format.nonce_size, parts.format.overhead) == (1, 16, 48)
    assert "=" not in token and token == base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_key_schedule_and_mac_input() -> None:
    """Recompute a raw-key token from FORMAT.md's description with independent pieces."""
    from cryptography.hazmat.primitives import hashes, hmac
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    enc_key, mac_key = split_key(MASTER, KEY_LABEL)
    ad = b"record 7"
    token = _encrypt_from_parts(b"data", None, None, b"", IV, ad, master=MASTER)
    raw = token_to_bytes(token)
    enc = Cipher(algorithms.AES(enc_key), modes.CBC(IV)).encryptor()
    ct = enc.update(b"\x00data" + bytes([11]) * 11) + enc.finalize()
    h = hmac.HMAC(mac_key, hashes.SHA256())
    h.update(RAW_HEADER + IV + ct + ad + struct.pack(">Q", len(ad)))
    assert raw == RAW_HEADER + IV + ct + h.finalize()


def test_internal_api_for_the_keyring() -> None:
    token = seal("text", MASTER, None, b"", b"ad")
    parts = parse(token)
    assert parts.kdf is None and parts.salt == b""
    assert open_parts(parts, MASTER, b"ad") == "text"
    with pytest.raises(InvalidToken, match="authentication failed"):
        open_parts(parts, bytes(32), b"ad")
    pw_token = seal(b"x", MASTER, CHEAP, SALT, None)
    assert parse(pw_token).kdf == CHEAP
    assert open_parts(parse(pw_token), MASTER, None) == b"x"


# --- negative vectors ---------------------------------------------------------------------------


@pytest.mark.parametrize(("group", "case"), cases("token_invalid.json"))
def test_invalid_vector_rejected(group: dict[str, Any], case: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken) as info:
        decrypt_any(case["token"], case)
    assert str(info.value) == case["error"]


# --- bit flips ----------------------------------------------------------------------------------


def test_every_bit_flip_of_a_raw_key_token_is_rejected() -> None:
    key = Key(MASTER)
    raw = token_to_bytes(key.encrypt(b"seventeen bytes!!", associated_data=b"ad"))
    text = token_to_text(raw)
    for i in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(InvalidToken):
            key.decrypt(bytes(flipped), associated_data=b"ad")
    for i in range(len(text) * 8):
        chars = bytearray(text.encode())
        chars[i // 8] ^= 1 << (i % 8)
        with pytest.raises(InvalidToken):
            key.decrypt(chars.decode("latin-1"), associated_data=b"ad")


def test_every_bit_flip_of_a_password_token_is_rejected() -> None:
    token = encrypt("secret", "pw", kdf=PBKDF2(1))
    raw = token_to_bytes(token)
    for i in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[i // 8] ^= 1 << (i % 8)
        with pytest.raises(InvalidToken):
            decrypt(bytes(flipped), "pw", limits=FLIP_LIMITS)


# --- properties ---------------------------------------------------------------------------------

KEY = Key(MASTER)
EDGE_SIZES = st.sampled_from([0, 1, 15, 16, 17, 31, 32, 33])


@given(data=st.one_of(st.binary(max_size=300), EDGE_SIZES.map(lambda n: b"\x00" * n)))
def test_raw_key_round_trip_bytes(data: bytes) -> None:
    token = KEY.encrypt(data)
    assert KEY.decrypt(token) == data
    assert KEY.decrypt(token_to_bytes(token)) == data


@given(text=st.text(max_size=100), ad=st.none() | st.binary(max_size=40))
def test_raw_key_round_trip_text(text: str, ad: bytes | None) -> None:
    assert KEY.decrypt(KEY.encrypt(text, associated_data=ad), associated_data=ad) == text


@settings(max_examples=40, deadline=None)
@given(password=st.text(min_size=1, max_size=20), data=st.binary(max_size=40))
def test_password_round_trip_and_nfc(password: str, data: bytes) -> None:
    token = encrypt(data, password, kdf=PBKDF2(1))
    assert decrypt(token, password) == data
    assert decrypt(token, unicodedata.normalize("NFD", password)) == data
    assert decrypt(token, unicodedata.normalize("NFC", password).encode()) == data


def test_one_mebibyte_round_trip() -> None:
    data = bytes(range(256)) * 4096
    assert KEY.decrypt(KEY.encrypt(data)) == data
    assert decrypt(encrypt(data, "pw", kdf=PBKDF2(1)), "pw") == data


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(junk=st.binary(max_size=200) | st.binary(max_size=200).map(lambda b: b"\xa5\x01" + b))
def test_arbitrary_bytes_raise_only_invalid_token(junk: bytes) -> None:
    with pytest.raises(InvalidToken):
        KEY.decrypt(junk)
    with pytest.raises(InvalidToken):
        decrypt(junk, "pw", limits=FLIP_LIMITS)


@settings(max_examples=300)
@given(junk=st.text(max_size=200))
def test_arbitrary_text_raises_only_invalid_token(junk: str) -> None:
    with pytest.raises(InvalidToken):
        KEY.decrypt(junk)
    with pytest.raises(InvalidToken):
        decrypt(junk, "pw", limits=FLIP_LIMITS)


# --- caller mistakes ----------------------------------------------------------------------------


def test_caller_mistakes_are_type_and_value_errors() -> None:
    with pytest.raises(TypeError, match="data must be bytes or str, not int"):
        KEY.encrypt(5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="associated_data must be bytes or None, not str"):
        KEY.encrypt(b"x", associated_data="id")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="token must be str or bytes, not int"):
        KEY.decrypt(5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="password must not be empty"):
        encrypt(b"x", "", kdf=CHEAP)
    with pytest.raises(TypeError, match=f"kdf must be {KDF_CLASS_NAMES}, not str"):
        encrypt(b"x", "pw", kdf="pbkdf2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="salt must be 16 bytes, got 3"):
        header_for(CHEAP, b"abc")


def test_whitespace_around_text_form_is_ignored() -> None:
    token = KEY.encrypt(b"x")
    assert KEY.decrypt(f"  {token}\n") == b"x"
    assert KEY.decrypt(f"{token}\n".encode()) == b"x"
    assert KEY.decrypt(f"\t\r\n {token} \r\n\t") == b"x"
    assert KEY.decrypt(f"\t\r\n {token} \r\n\t".encode()) == b"x"


@pytest.mark.parametrize("space", ["\u3000", "\u2028", "\u0085", "\u001c", "\x0b", "\x0c", "\xa0"])
@pytest.mark.parametrize("where", ["before", "after"])
def test_only_ascii_space_tab_cr_lf_around_a_token(space: str, where: str) -> None:
    """Regression (issue 10 #8): ``str.strip()`` took Unicode spaces, separators and controls."""
    token = KEY.encrypt(b"x")
    text = space + token if where == "before" else token + space
    ring = Keyring(KEY)
    for form in (text, text.encode("utf-8")):
        for call in (KEY.decrypt, ring.decrypt, lambda t: decrypt(t, KEY), token_to_bytes):
            with pytest.raises(InvalidToken, match="token is not valid base64"):
                call(form)


def test_unencodable_text_error_holds_no_plaintext() -> None:
    """Plaintext with a lone surrogate: ValueError naming ``data``, without the text in any form."""
    key = Key(bytes(32))
    with pytest.raises(ValueError, match="data is not valid unicode text") as info:
        key.encrypt("my credit card 4111\ud800")
    for exc in (info.value, info.value.__context__, info.value.__cause__):
        assert exc is None or "credit card" not in repr(exc)


# --- one credential rule: every kind of secret on encrypt and decrypt ----------------------------


@pytest.mark.parametrize(
    "secret",
    ["pässwörd", "pässwörd".encode(), PasswordKey("pässwörd", kdf=CHEAP), Key(MASTER)],
    ids=["str", "bytes", "PasswordKey", "Key"],
)
def test_every_secret_kind_encrypts_and_decrypts(secret: str | bytes | PasswordKey | Key) -> None:
    token = encrypt("data", secret, kdf=CHEAP, associated_data=b"ad")
    assert decrypt(token, secret, associated_data=b"ad") == "data"
    if isinstance(secret, Key):
        assert parse(token).kdf is None
        assert secret.decrypt(token, associated_data=b"ad") == "data"
    else:
        assert parse(token).kdf == CHEAP
        # a password, its bytes and a PasswordKey of it are one secret: each opens the others
        assert decrypt(token, "pässwörd", associated_data=b"ad") == "data"
        assert decrypt(token, PasswordKey("pässwörd", kdf=CHEAP), associated_data=b"ad") == "data"


def test_secret_kinds_refuse_the_other_kind_of_token() -> None:
    password_token = encrypt(b"x", PasswordKey("pw", kdf=CHEAP))
    with pytest.raises(InvalidToken, match="token needs a password, not a raw key"):
        decrypt(password_token, Key(MASTER))
    with pytest.raises(InvalidToken, match="token needs a raw key, not a password"):
        decrypt(encrypt(b"x", Key(MASTER)), PasswordKey("pw", kdf=CHEAP))
    with pytest.raises(TypeError, match="password must be str, bytes, Key or PasswordKey, not int"):
        encrypt(b"x", 5)  # type: ignore[arg-type]


def test_decrypt_limits_apply_to_a_password_key() -> None:
    token = encrypt(b"x", "pw", kdf=CHEAP)
    with pytest.raises(InvalidToken, match="kdf limits exceeded: pbkdf2 iterations 1000"):
        decrypt(token, PasswordKey("pw", kdf=CHEAP), limits=KdfLimits(max_pbkdf2_iterations=999))


def test_invalid_utf8_text_error_carries_no_plaintext() -> None:
    """An authentic token whose text is not UTF-8 (only the key holder can make one): the
    error must not chain the decode error, which would hold the plaintext."""
    [param] = cases("token_invalid.json", lambda _, c: c["name"] == "authentic-bad-utf8")
    case = param.values[1]
    key = Key(bytes.fromhex(case["key"]))
    with pytest.raises(InvalidToken, match="invalid utf-8 text") as info:
        key.decrypt(case["token"])
    assert info.value.__context__ is None


def _calls_of(fn: Any, target: Any) -> int:
    """How many times ``target`` (a Python function) runs during ``fn()``: a real count through
    ``sys.setprofile``, nothing replaced."""
    import sys

    code = target.__code__
    count = 0

    def profile(frame: Any, event: str, arg: object) -> None:
        nonlocal count
        if event == "call" and frame.f_code is code:
            count += 1

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_decrypt_with_a_password_key_parses_and_checks_limits_once() -> None:
    from aes_hmac._token import codec as _token_codec
    from aes_hmac._token import v1 as _token_v1

    pk = PasswordKey("pw", kdf=CHEAP)
    token = encrypt(b"data", "pw", kdf=CHEAP)  # another salt: the slow path of the key
    assert decrypt(token, pk) == b"data"  # derives once; the count below is a cache hit
    assert _calls_of(lambda: decrypt(token, pk), _token_v1.parse) == 1
    assert _calls_of(lambda: decrypt(token, pk), _token_codec.check_limits) == 1
    assert _calls_of(lambda: decrypt(token, pk), _token_codec.token_to_bytes) == 1


def test_decrypt_with_a_password_key_applies_the_keys_own_limits_too() -> None:
    pk = PasswordKey("pw", kdf=CHEAP, limits=KdfLimits(max_pbkdf2_iterations=999))
    with pytest.raises(InvalidToken, match="iterations 1000 exceed the limit 999"):
        decrypt(encrypt(b"data", "pw", kdf=CHEAP), pk)


def test_every_encrypt_takes_the_version_to_write() -> None:
    key, pk = Key.generate(), PasswordKey("pw", kdf=CHEAP)
    tokens = [
        encrypt(b"a", "pw", kdf=CHEAP, version=1),
        encrypt(b"a", key, version=1),
        encrypt(b"a", pk, version=1),
        key.encrypt(b"a", version=1),
        pk.encrypt(b"a", version=1),
        Keyring(key).encrypt(b"a", version=1),
    ]
    assert [token_to_bytes(t)[1] for t in tokens] == [1] * len(tokens)
    assert decrypt(tokens[0], "pw") == decrypt(tokens[1], key) == pk.decrypt(tokens[2]) == b"a"


@pytest.mark.parametrize(
    ("version", "error", "message"),
    [
        (2, ValueError, "version must be one of 1, got 2"),
        (0, ValueError, "version must be one of 1, got 0"),
        (True, TypeError, "version must be an int, not bool"),
        ("1", TypeError, "version must be an int, not str"),
    ],
)
def test_a_version_no_format_has_is_refused_by_every_writer(
    version: object, error: type[Exception], message: str
) -> None:
    key, pk = Key.generate(), PasswordKey("pw", kdf=CHEAP)
    ring = Keyring(key)
    token = ring.encrypt(b"a")
    writers: list[Any] = [
        lambda: encrypt(b"a", "pw", kdf=CHEAP, version=version),
        lambda: encrypt(b"a", key, version=version),
        lambda: key.encrypt(b"a", version=version),
        lambda: pk.encrypt(b"a", version=version),
        lambda: ring.encrypt(b"a", version=version),
        lambda: ring.rotate(token, version=version),
        lambda: ring.needs_rotation(token, version=version),
    ]
    for write in writers:
        with pytest.raises(error, match=message):
            write()


def test_the_format_says_its_sizes_and_raw_header() -> None:
    from aes_hmac._token.codec import DEFAULT_FORMAT, FORMATS

    assert FORMATS == {1: DEFAULT_FORMAT}
    assert DEFAULT_FORMAT.raw_header == RAW_HEADER == b"\xa5\x01\x00"
    raw = token_to_bytes(Key(bytes(32)).encrypt(b""))
    assert len(raw) == len(RAW_HEADER) + DEFAULT_FORMAT.overhead + 16  # one padded block
    assert DEFAULT_FORMAT.nonce_size == 16
