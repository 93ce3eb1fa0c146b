"""Tuples of the original script (``aes_hmac.importers.legacy``): read them, convert them."""

from __future__ import annotations

from typing import Any

import pytest
from _vectors import cases, unhex
from test_compat import CHEAP, IV, SALT, original_encrypt

from aes_hmac import InvalidToken, decrypt
from aes_hmac._kdf import PBKDF2
from aes_hmac.importers.legacy import convert_legacy, decrypt_legacy_insecure


@pytest.mark.parametrize(("group", "case"), cases("compat_legacy.json"))
def test_legacy_vectors(group: dict[str, Any], case: dict[str, Any]) -> None:
    salt, iv, mac = unhex(case["salt"]), unhex(case["iv"]), unhex(case["mac"])
    assert original_encrypt(case["plaintext"], case["password"], salt, iv) == (
        case["ciphertext"],
        mac,
    )
    assert (
        decrypt_legacy_insecure(case["ciphertext"], case["password"], iv, salt, mac)
        == (case["plaintext"])
    )
    token = convert_legacy(
        case["ciphertext"],
        case["password"],
        iv,
        salt,
        mac,
        kdf=PBKDF2(CHEAP),
        associated_data=b"migrated",
    )
    assert decrypt(token, case["password"], associated_data=b"migrated") == case["plaintext"]
    bad = bytearray(mac)
    bad[0] ^= 1
    with pytest.raises(InvalidToken, match="authentication failed"):
        decrypt_legacy_insecure(case["ciphertext"], case["password"], iv, salt, bytes(bad))
    with pytest.raises(InvalidToken, match="authentication failed"):
        convert_legacy(case["ciphertext"], case["password"] + "x", iv, salt, mac)


def test_legacy_mac_is_checked_before_decrypting() -> None:
    with pytest.raises(InvalidToken, match="authentication failed"):
        decrypt_legacy_insecure("!!not base64!!", "pw", IV, SALT, bytes(32))
