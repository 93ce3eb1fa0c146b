"""The design note's tuple API (hardened), ``aes_hmac.compat``.

The JSON vectors are written by ``python scripts/make_vectors.py``.
"""

from __future__ import annotations

import base64
from typing import Any

import pytest
from _vectors import cases, unhex

import aes_hmac
from aes_hmac import InvalidToken, decrypt
from aes_hmac._kdf import PBKDF2, encode_password
from aes_hmac._primitives import aes_cbc_encrypt_raw, hmac_sha256, pkcs7_pad
from aes_hmac._token.codec import token_to_text
from aes_hmac._token.v1 import seal_fixed
from aes_hmac.compat import aes_decrypt, aes_encrypt, decrypt_legacy_insecure

CHEAP = 1000  # test setting: cheap iteration count passed explicitly, the default is untouched
SALT = bytes(range(100, 116))
IV = bytes(range(200, 216))


def original_encrypt(plaintext: str, password: str, salt: bytes, iv: bytes) -> tuple[str, bytes]:
    """The ORIGINAL script's encryption (test helper only): one key for AES and HMAC, and a MAC
    over the base64 text alone. Returns (ciphertext, mac)."""
    key = PBKDF2(200_000).derive(password.encode("utf-8"), salt)
    ct = aes_cbc_encrypt_raw(key, iv, pkcs7_pad(plaintext.encode("utf-8")))
    text = base64.b64encode(ct).decode("ascii")
    return text, hmac_sha256(key, text.encode("ascii"))


def tuple_from_parts(
    plaintext: str | bytes, password: str, iterations: int, ad: bytes | None
) -> tuple[str, bytes, bytes, bytes]:
    """``aes_encrypt``'s tuple with the fixed salt and IV (through the token's private hook)."""
    kdf = PBKDF2(iterations)
    raw = seal_fixed(plaintext, kdf.derive(encode_password(password), SALT), kdf, SALT, IV, ad)
    return base64.b64encode(raw[39:-32]).decode(), raw[23:39], raw[7:23], raw[-32:]


# --- the design note, verbatim ------------------------------------------------------------------


def test_design_note_example_verbatim() -> None:
    from aes_hmac import aes_decrypt, aes_encrypt

    plaintext = "secret delicious message"
    password = "password"

    encrypted_data = aes_encrypt(plaintext, password)
    ciphertext, iv, salt, mac = encrypted_data

    decrypted_data = aes_decrypt(ciphertext, password, iv, salt, mac)
    plaintext = decrypted_data
    assert plaintext == "secret delicious message"
    assert isinstance(ciphertext, str) and base64.b64decode(ciphertext, validate=True)
    assert (len(iv), len(salt), len(mac)) == (16, 16, 32)


# --- the hardened tuple --------------------------------------------------------------------------


@pytest.mark.parametrize(("group", "case"), cases("compat_tuple.json"))
def test_tuple_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    data: str | bytes = case["text"] if "text" in case else unhex(case["data_hex"])
    ad = None if case["associated_data"] is None else unhex(case["associated_data"])
    made = tuple_from_parts(data, case["password"], case["iterations"], ad)
    expected = (case["ciphertext"], unhex(case["iv"]), unhex(case["salt"]), unhex(case["mac"]))
    assert made == expected
    opened = aes_decrypt(
        *expected[:1],
        case["password"],
        *expected[1:],
        iterations=case["iterations"],
        associated_data=ad,
    )
    assert opened == data and type(opened) is type(data)


def test_tuple_is_a_split_pbkdf2_token() -> None:
    ct, iv, salt, mac = aes_encrypt(b"bytes in", "pw", iterations=CHEAP)
    token = b"\xa5\x01\x01" + PBKDF2(CHEAP).encode() + salt + iv + base64.b64decode(ct) + mac
    assert decrypt(token_to_text(token), "pw") == b"bytes in"
    assert aes_decrypt(ct, "pw", iv, salt, mac, iterations=CHEAP) == b"bytes in"


def test_iterations_keyword_reads_tuples_made_under_another_default() -> None:
    parts = aes_encrypt("old", "pw", iterations=CHEAP)
    with pytest.raises(InvalidToken, match="authentication failed"):
        aes_decrypt(*parts[:1], "pw", *parts[1:], iterations=CHEAP + 1)
    assert aes_decrypt(parts[0], "pw", *parts[1:], iterations=CHEAP) == "old"


def test_associated_data_binds_the_tuple() -> None:
    ct, iv, salt, mac = aes_encrypt("v", "pw", iterations=CHEAP, associated_data=b"row 1")
    assert aes_decrypt(ct, "pw", iv, salt, mac, iterations=CHEAP, associated_data=b"row 1") == "v"
    with pytest.raises(InvalidToken):
        aes_decrypt(ct, "pw", iv, salt, mac, iterations=CHEAP, associated_data=b"row 2")


@pytest.mark.parametrize("field", ["ciphertext", "iv", "salt", "mac", "password"])
def test_tampering_and_wrong_password_raise_the_same_error(field: str) -> None:
    ct, iv, salt, mac = aes_encrypt("secret", "pw", iterations=CHEAP)
    args: dict[str, Any] = {"ciphertext": ct, "iv": iv, "salt": salt, "mac": mac, "password": "pw"}
    if field == "ciphertext":
        raw = bytearray(base64.b64decode(ct))
        raw[0] ^= 1
        args[field] = base64.b64encode(raw).decode()
    elif field == "password":
        args[field] = "pW"
    else:
        value = bytearray(args[field])
        value[-1] ^= 0x80
        args[field] = bytes(value)
    with pytest.raises(InvalidToken, match=r"^authentication failed$"):
        aes_decrypt(
            args["ciphertext"],
            args["password"],
            args["iv"],
            args["salt"],
            args["mac"],
            iterations=CHEAP,
        )


def _spellings(canonical: str) -> set[str]:
    """Texts that lenient base64 decoders read as the same bytes as ``canonical``."""
    body = canonical.rstrip("=")
    pad = "=" * (len(canonical) - len(body))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    same_bytes = {body[:-1] + c + pad for c in alphabet}  # other unused low bits of the last char
    padding = {body, body + "=", body + pad + "=", body + pad[:-1], body + pad + "==="}
    spaced = {canonical + "\n", " " + canonical, canonical[:4] + "\n" + canonical[4:]}
    urlsafe = {canonical.replace("+", "-").replace("/", "_")}
    lenient = {
        text
        for text in same_bytes | padding | spaced | urlsafe
        if _lenient_decode(text) == base64.b64decode(canonical)
    }
    return lenient - {canonical}


def _lenient_decode(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.strip() + "==", altchars=b"-_")
    except ValueError:
        return None


@pytest.mark.parametrize("size", [1, 20, 40])
def test_only_the_canonical_base64_spelling_opens(size: int) -> None:
    """Regression (issue 10 #7): "any change to any of the four values raises" holds for the
    ciphertext text too: other spellings of the same bytes (unused low bits, padding, spaces,
    the URL-safe alphabet) are refused before any KDF work."""
    ct, iv, salt, mac = aes_encrypt(b"x" * size, "pw", iterations=CHEAP)
    assert aes_decrypt(ct, "pw", iv, salt, mac, iterations=CHEAP) == b"x" * size
    others = _spellings(ct)
    assert len(others) >= (3 if size < 40 else 1)
    for text in others:
        with pytest.raises(InvalidToken, match="ciphertext is not valid base64"):
            aes_decrypt(text, "pw", iv, salt, mac, iterations=CHEAP)


def test_iv_alteration_attack_works_on_the_original_and_fails_now() -> None:
    """Regression: the original MACs only the ciphertext text, so flipping IV bits flips the same
    bits of the first plaintext block undetected. The hardened MAC covers the IV."""
    plaintext = "pay 100 EUR to alice, thanks"
    ct, mac = original_encrypt(plaintext, "password", SALT, IV)
    evil_iv = bytearray(IV)
    for i, (a, b) in enumerate(zip(b"100", b"999", strict=True)):
        evil_iv[4 + i] ^= a ^ b
    forged = decrypt_legacy_insecure(ct, "password", bytes(evil_iv), SALT, mac)
    assert forged == "pay 999 EUR to alice, thanks"  # the attack works on the original design

    h_ct, h_iv, h_salt, h_mac = aes_encrypt(plaintext, "password", iterations=CHEAP)
    evil = bytes(a ^ b for a, b in zip(h_iv, bytes(evil_iv), strict=True))
    evil = bytes(x ^ y for x, y in zip(evil, IV, strict=True))  # same bit flips on the new IV
    assert evil != h_iv
    with pytest.raises(InvalidToken, match="authentication failed"):
        aes_decrypt(h_ct, "password", evil, h_salt, h_mac, iterations=CHEAP)


def test_caller_mistakes_name_the_argument() -> None:
    ct, iv, salt, mac = aes_encrypt("x", "pw", iterations=CHEAP)
    with pytest.raises(ValueError, match="iv must be 16 bytes, got 15"):
        aes_decrypt(ct, "pw", iv[:15], salt, mac, iterations=CHEAP)
    with pytest.raises(ValueError, match="salt must be 16 bytes, got 17"):
        aes_decrypt(ct, "pw", iv, salt + b"!", mac, iterations=CHEAP)
    with pytest.raises(ValueError, match="mac must be 32 bytes, got 31"):
        aes_decrypt(ct, "pw", iv, salt, mac[:31], iterations=CHEAP)
    with pytest.raises(TypeError, match="iv must be bytes, not str"):
        aes_decrypt(ct, "pw", "iv", salt, mac, iterations=CHEAP)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="password must not be empty"):
        aes_encrypt("x", "")
    with pytest.raises(ValueError, match="iterations must be between 1 and"):
        aes_encrypt("x", "pw", iterations=0)
    with pytest.raises(TypeError, match="data must be bytes or str, not int"):
        aes_encrypt(3, "pw", iterations=CHEAP)  # type: ignore[arg-type]
    with pytest.raises(InvalidToken, match="ciphertext is not valid base64"):
        aes_decrypt(ct + "!", "pw", iv, salt, mac, iterations=CHEAP)
    with pytest.raises(InvalidToken, match="ciphertext length is not a whole number of blocks"):
        aes_decrypt("AAAA", "pw", iv, salt, mac, iterations=CHEAP)


def test_top_level_keeps_the_design_note_names() -> None:
    assert aes_hmac.aes_encrypt is aes_encrypt and aes_hmac.aes_decrypt is aes_decrypt
    assert {"aes_encrypt", "aes_decrypt"} <= set(aes_hmac.__all__)
