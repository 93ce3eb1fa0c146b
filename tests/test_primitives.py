"""The primitives layer against public vectors: Wycheproof AES-CBC-PKCS5 and HMAC-SHA256, RFC 4231.

Also pins the chained-context fast path (``ChainedCbcHmac``) to plain AES-CBC output.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from _vectors import cases, unhex

from aes_hmac._primitives import (
    BLOCK_SIZE,
    TAG_SIZE,
    CbcHmac,
    ChainedCbcHmac,
    aes_cbc_decrypt_raw,
    aes_cbc_encrypt_raw,
    constant_time_equal,
    hmac_sha256,
    pkcs7_pad,
    pkcs7_unpad,
)

AES = "wycheproof/aes_cbc_pkcs5_test.json"
HMAC = "wycheproof/hmac_sha256_test.json"
MAC_KEY = bytes(range(32))


def _aes256(group: dict[str, Any], test: dict[str, Any]) -> bool:
    return bool(group["keySize"] == 256)


@pytest.mark.parametrize(("group", "test"), cases(AES, _aes256))
def test_wycheproof_aes256_cbc_pkcs5(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, iv, msg, ct = (unhex(test[k]) for k in ("key", "iv", "msg", "ct"))
    cbc = CbcHmac(key, MAC_KEY)
    if test["result"] == "valid":
        assert cbc.encrypt(iv, msg) == ct
        assert cbc.decrypt(iv, ct) == msg
        assert pkcs7_unpad(aes_cbc_decrypt_raw(key, iv, ct)) == msg
        assert aes_cbc_encrypt_raw(key, iv, pkcs7_pad(msg)) == ct
        padded = pkcs7_pad(msg)
        chained = ChainedCbcHmac(key, MAC_KEY)
        sealed = chained.seal_with_iv(b"", iv, padded, b"")
        assert sealed[BLOCK_SIZE:-TAG_SIZE] == ct
        assert chained.open(sealed, 0, b"") == padded
    else:
        with pytest.raises(ValueError):
            cbc.decrypt(iv, ct)
        with pytest.raises(ValueError):
            pkcs7_unpad(aes_cbc_decrypt_raw(key, iv, ct))


def test_wycheproof_aes_covers_both_results() -> None:
    results = {p.values[1]["result"] for p in cases(AES, _aes256)}
    assert results == {"valid", "invalid"}


@pytest.mark.parametrize(("group", "test"), cases(HMAC))
def test_wycheproof_hmac_sha256(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, msg, tag = unhex(test["key"]), unhex(test["msg"]), unhex(test["tag"])
    full = hmac_sha256(key, msg)
    assert len(full) == TAG_SIZE
    # The library never truncates tags; truncated-tag groups compare against a prefix, and such a
    # tag never passes CbcHmac.verify, which only accepts the full 32 bytes.
    matches = constant_time_equal(full[: group["tagSize"] // 8], tag)
    assert matches is (test["result"] == "valid")
    if len(key) == 32:
        cbc = CbcHmac(bytes(32), key)
        assert cbc.verify(tag, msg) is (test["result"] == "valid" and len(tag) == TAG_SIZE)


@pytest.mark.parametrize(("group", "test"), cases("rfc/rfc4231_hmac_sha256.json"))
def test_rfc4231_hmac_sha256(group: dict[str, Any], test: dict[str, Any]) -> None:
    key, msg, tag = unhex(test["key"]), unhex(test["msg"]), unhex(test["tag"])
    assert hmac_sha256(key, msg)[: test["tagSize"] // 8] == tag


def test_chained_contexts_match_fresh_cbc_across_messages() -> None:
    enc_key, mac_key = os.urandom(32), os.urandom(32)
    chained = ChainedCbcHmac(enc_key, mac_key)
    for size in (0, 1, 15, 16, 17, 100, 1000):
        padded = pkcs7_pad(os.urandom(size))
        sealed = chained.seal(b"hd", padded, b"trailer")
        iv, ct, tag = sealed[2:18], sealed[18:-32], sealed[-32:]
        assert aes_cbc_encrypt_raw(enc_key, iv, padded) == ct
        assert tag == hmac_sha256(mac_key, sealed[:-32], b"trailer")
        assert chained.open(sealed, 2, b"trailer") == padded
        assert chained.open(sealed, 2, b"other") is None


def test_chained_ivs_are_fresh() -> None:
    chained = ChainedCbcHmac(os.urandom(32), os.urandom(32))
    ivs = {chained.seal(b"", bytes(16), b"")[:16] for _ in range(1000)}
    assert len(ivs) == 1000


def test_chained_refuses_partial_blocks() -> None:
    chained = ChainedCbcHmac(os.urandom(32), os.urandom(32))
    with pytest.raises(ValueError, match="whole number of blocks"):
        chained.seal(b"", b"x" * 15, b"")
    with pytest.raises(ValueError, match="whole ciphertext blocks"):
        chained.open(b"\x00" * (16 + 15 + 32), 0, b"")
    with pytest.raises(ValueError, match="iv must be 16 bytes, got 15"):
        chained.seal_with_iv(b"", b"\x00" * 15, bytes(16), b"")
    assert "keys hidden" in repr(chained)
