"""The SQLAlchemy column binding (docs/FORMAT.md, column binding) recomputed from the spec alone:
associated data, canonical form and blind index of every case of tests/vectors/column_v2.json."""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import unicodedata
from typing import Any

import pytest
from _vectors import load
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VECTORS = load("column_v2.json")


def names(table: str, column: str) -> bytes:
    return b"".join(len(n.encode()).to_bytes(2, "big") + n.encode() for n in (table, column))


def normalize_text(value: str) -> str:
    """SQLALCHEMY.md: NFC, case folding, surrounding whitespace stripped."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).casefold()).strip()


def json_numbers(value: Any) -> Any:
    if isinstance(value, float) and not isinstance(value, bool):
        assert math.isfinite(value)
        return int(value) if value.is_integer() else value
    if isinstance(value, dict):
        return {k: json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_numbers(v) for v in value]
    return value


def compact_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def index_value(index_key: bytes, info: bytes, data: bytes, bits: int) -> bytes:
    column_key = HKDF(hashes.SHA256(), 32, salt=b"", info=info).derive(index_key)
    full = int.from_bytes(hmac.new(column_key, data, hashlib.sha256).digest(), "big")
    size = (bits + 7) // 8
    return ((full >> (256 - bits)) << (size * 8 - bits)).to_bytes(size, "big")


@pytest.mark.parametrize("case", VECTORS["vectors"], ids=lambda c: f"{c['table']}.{c['column']}")
def test_column_vectors_follow_the_spec(case: dict[str, Any]) -> None:
    table, column = case["table"], case["column"]
    index_key = bytes.fromhex(VECTORS["index_key"])
    ad = b"aes-hmac sqlalchemy v2\x00" + names(table, column)
    assert bytes.fromhex(case["associated_data"]) == ad
    one_split = "." not in table + column  # only then is the v1 binding read by default
    legacy_ad = b"aes-hmac sqlalchemy v1\x00" + f"{table}.{column}".encode()
    assert case["associated_data_v1"] == (legacy_ad.hex() if one_split else None)
    value = bytes.fromhex(case["value"]) if case["value_is_bytes"] else case["value"]
    if case["normalize"] == "normalize_text":
        value = normalize_text(value)
    if isinstance(value, str):
        canonical, legacy = b"s" + value.encode(), value.encode()
    elif isinstance(value, bytes):
        canonical, legacy = b"b" + value, value
    else:
        canonical, legacy = b"j" + compact_json(json_numbers(value)), compact_json(value)
    assert bytes.fromhex(case["canonical"]) == canonical
    info = b"aes-hmac blind index v2\x00" + names(table, column)
    assert bytes.fromhex(case["index_256"]) == index_value(index_key, info, canonical, 256)
    if one_split:
        legacy_info = b"aes-hmac blind index v1\x00" + f"{table}.{column}".encode()
        expected = index_value(index_key, legacy_info, legacy, 256)
        assert bytes.fromhex(case["index_v1_256"]) == expected
    else:
        assert case["index_v1_256"] is None


def test_names_are_unambiguous() -> None:
    """The two columns the v1 binding confused have different v2 bytes, and 16-bit indexes of
    one value under them differ (the vectors hold both)."""
    by_pair = {(c["table"], c["column"]): c for c in VECTORS["vectors"]}
    one, other = by_pair[("hr", "salary.amount")], by_pair[("hr.salary", "amount")]
    assert one["associated_data"] != other["associated_data"]
    assert one["index_256"][:4] != other["index_256"][:4]
