"""Token format v1: vectors recomputed byte for byte, negative vectors with their exact errors,
exhaustive single-bit flips, property tests.

Regenerate the JSON vectors with ``python tests/test_token.py``.
"""

from __future__ import annotations

import base64
import json
import struct
import sys
import unicodedata
from typing import Any

import pytest
from _vectors import VECTORS, cases, unhex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aes_hmac import InvalidToken, KdfLimits, Key, decrypt, encrypt, token_to_bytes
from aes_hmac._kdf import KDFS as KDF_REGISTRY
from aes_hmac._kdf import PBKDF2, Argon2id, Kdf, Scrypt, kdf_by_name
from aes_hmac._primitives import ChainedCbcHmac, pkcs7_pad, split_key
from aes_hmac._token import (
    KEY_LABEL,
    RAW_HEADER,
    _encrypt_from_parts,
    header_for,
    open_parts,
    parse,
    seal,
    token_to_text,
)

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
    assert (parts.kdf, parts.salt, parts.iv, parts.tag) == (CHEAP, SALT, IV, raw[-32:])
    assert parts.header == raw[:23] and parts.ciphertext == raw[39:-32]
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
    with pytest.raises(TypeError, match="kdf must be PBKDF2, Scrypt or Argon2id, not str"):
        encrypt(b"x", "pw", kdf="pbkdf2")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="salt must be 16 bytes, got 3"):
        header_for(CHEAP, b"abc")


def test_whitespace_around_text_form_is_ignored() -> None:
    token = KEY.encrypt(b"x")
    assert KEY.decrypt(f"  {token}\n") == b"x"
    assert KEY.decrypt(f"{token}\n".encode()) == b"x"


# --- vector generation --------------------------------------------------------------------------


def _valid_cases() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []

    def add(name: str, kdf_name: str | None, data: bytes | str, ad: bytes | None) -> None:
        case: dict[str, Any] = {"name": name}
        if isinstance(data, str):
            case["text"] = data
        else:
            case["data_hex"] = data.hex()
        case["associated_data"] = None if ad is None else ad.hex()
        case["iv"] = IV.hex()
        if kdf_name is None:
            case.update(kdf=None, key=MASTER.hex())
            token = _encrypt_from_parts(data, None, None, b"", IV, ad, master=MASTER)
        else:
            kdf = KDFS[kdf_name]
            case.update(kdf=_kdf_spec(kdf_name, kdf), password="pässwörd", salt=SALT.hex())
            token = _encrypt_from_parts(data, "pässwörd", kdf, SALT, IV, ad)
        case["token"] = token
        case["token_hex"] = token_to_bytes(token).hex()
        out.append(case)

    for kdf_name in (None, "pbkdf2", "scrypt", "argon2id"):
        label = kdf_name or "raw"
        add(f"{label}-text", kdf_name, "secret delicious message", None)
        add(f"{label}-bytes-ad", kdf_name, b"\x00\x01binary\xff", b"record 42")
    add("raw-empty-bytes", None, b"", None)
    add("raw-empty-text", None, "", b"")
    add("raw-16-bytes", None, b"0123456789abcdef", None)
    add("pbkdf2-unicode-text", "pbkdf2", "héllo wörld ✓", None)
    return out


def _invalid_cases(valid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_name = {c["name"]: c for c in valid}
    pw = by_name["pbkdf2-bytes-ad"]
    rk = by_name["raw-text"]
    pw_raw = unhex(pw["token_hex"])
    rk_raw = unhex(rk["token_hex"])
    out: list[dict[str, Any]] = []

    def add(name: str, base: dict[str, Any], raw: bytes | str, error: str, **over: Any) -> None:
        case = {k: base[k] for k in ("kdf", "key", "password", "associated_data") if k in base}
        case.update(over)
        case["name"] = name
        case["token"] = raw if isinstance(raw, str) else token_to_text(raw)
        case["error"] = error
        out.append(case)

    def flip(raw: bytes, index: int, value: int | None = None) -> bytes:
        b = bytearray(raw)
        b[index] = b[index] ^ 1 if value is None else value
        return bytes(b)

    auth = "authentication failed"
    add("wrong-magic", pw, flip(pw_raw, 0, 0xA4), "wrong magic byte")
    add("wrong-version", pw, flip(pw_raw, 1, 2), "unsupported token version 2")
    add("unknown-kdf", pw, flip(pw_raw, 2, 9), "unknown kdf id 9")
    add("tampered-kdf-params", pw, flip(pw_raw, 6), auth)
    add("tampered-salt", pw, flip(pw_raw, 7), auth)
    add("tampered-iv", pw, flip(pw_raw, 23), auth)
    add("tampered-ciphertext", pw, flip(pw_raw, 40), auth)
    add("tampered-tag", pw, flip(pw_raw, len(pw_raw) - 1), auth)
    add("truncated-one-byte", pw, pw_raw[:-1], "token too short")  # one ciphertext block
    long_raw = unhex(by_name["pbkdf2-text"]["token_hex"])
    add(
        "truncated-one-byte-of-two-blocks",
        by_name["pbkdf2-text"],
        long_raw[:-1],
        "token length is not a whole number of blocks",
    )
    add("truncated-one-block", pw, pw_raw[:-16], "token too short")
    add("truncated-to-header", pw, pw_raw[:10], "token too short")
    add("truncated-to-two-bytes", pw, pw_raw[:2], "token too short")
    add("extended-one-byte", pw, pw_raw + b"\x00", "token length is not a whole number of blocks")
    add("extended-one-block", pw, pw_raw + bytes(16), auth)
    add("wrong-password", pw, pw_raw, auth, password="passwörd")
    add("wrong-ad", pw, pw_raw, auth, associated_data=b"record 43".hex())
    add("missing-ad", pw, pw_raw, auth, associated_data=None)
    add("empty-instead-of-ad", pw, pw_raw, auth, associated_data="")
    text = token_to_text(pw_raw)
    bad64 = "token is not valid base64"
    add("bad-base64-character", pw, text[:10] + "!" + text[11:], bad64)
    add("bad-base64-standard-alphabet", pw, text[:10] + "+" + text[11:], bad64)
    add("bad-base64-padding", pw, text + "=" * (-len(text) % 4 or 4), "token is not valid base64")
    add("bad-base64-length", pw, text + "A", "token is not valid base64")
    add(
        "bad-base64-non-canonical",
        rk,
        _non_canonical(token_to_text(rk_raw)),
        "token is not valid base64",
    )
    add("bad-base64-non-ascii", pw, text[:10] + "é" + text[11:], "token is not valid base64")
    add("empty", pw, "", "token too short")
    over_limit = header_for(PBKDF2(30_000_000), SALT) + pw_raw[23:]
    add(
        "limits-pbkdf2-iterations",
        pw,
        over_limit,
        "kdf limits exceeded: pbkdf2 iterations 30000000 exceed the limit 20000000",
    )
    big_scrypt = header_for(Scrypt(24, 8, 1), SALT) + pw_raw[23:]
    add(
        "limits-scrypt-memory",
        pw,
        big_scrypt,
        "kdf limits exceeded: kdf memory 17179869184 bytes exceeds the limit 1073741824",
    )
    add(
        "limits-lowered-by-caller",
        pw,
        pw_raw,
        "kdf limits exceeded: pbkdf2 iterations 1000 exceed the limit 999",
        limits={"max_pbkdf2_iterations": 999},
    )
    bad_scrypt = b"\xa5\x01\x02" + b"\x00" + struct.pack(">II", 8, 1) + SALT + pw_raw[23:]
    add(
        "invalid-kdf-params",
        pw,
        bad_scrypt,
        "invalid kdf parameters: log2_n must be between 1 and 63, got 0",
    )
    add("raw-token-given-a-password", pw, rk_raw, "token needs a raw key, not a password")
    add("password-token-given-a-key", rk, pw_raw, "token needs a password, not a raw key")
    add("raw-wrong-key", rk, rk_raw, auth, key=bytes(32).hex())
    add("raw-tampered-header", rk, flip(rk_raw, 2, 4), "unknown kdf id 4")
    # Authentic tokens with impossible contents (only someone holding the key can make them).
    cbc = ChainedCbcHmac(*split_key(MASTER, KEY_LABEL))
    trailer = bytes(8)
    for name, plain, error in (
        ("authentic-bad-type-byte", b"\x02hello", "invalid data type byte"),
        ("authentic-bad-utf8", b"\x01\xff\xfe", "invalid utf-8 text"),
    ):
        padded = pkcs7_pad(plain)
        add(name, rk, cbc.seal_with_iv(RAW_HEADER, IV, padded, trailer), error)
    add(
        "authentic-bad-padding",
        rk,
        cbc.seal_with_iv(RAW_HEADER, IV, b"\x00" * 16, trailer),
        "invalid padding",
    )
    return out


def _non_canonical(text: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    if len(text) % 4 == 0:
        raise ValueError("no spare bits in a text of length 0 mod 4")
    return text[:-1] + alphabet[alphabet.index(text[-1]) | 1]


def main() -> None:
    valid = _valid_cases()
    invalid = _invalid_cases(valid)
    header = {
        "format": "aes-hmac token v1, see docs/FORMAT.md; hex unless named text/token",
        "generator": "python tests/test_token.py",
    }
    for name, items in (("token_valid.json", valid), ("token_invalid.json", invalid)):
        path = VECTORS / name
        path.write_text(json.dumps({**header, "tests": items}, indent=1, ensure_ascii=False) + "\n")
        print(f"wrote {len(items)} cases to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()


def test_unencodable_text_error_holds_no_plaintext() -> None:
    """Plaintext with a lone surrogate: ValueError naming ``data``, without the text in any form."""
    key = Key(bytes(32))
    with pytest.raises(ValueError, match="data is not valid unicode text") as info:
        key.encrypt("my credit card 4111\ud800")
    for exc in (info.value, info.value.__context__, info.value.__cause__):
        assert exc is None or "credit card" not in repr(exc)
