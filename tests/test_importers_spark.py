"""``importers.spark``: values a real local Spark made with ``aes_encrypt`` become tokens."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _spark import spark_session

import aes_hmac
from aes_hmac.importers import spark as sp

CHEAP = aes_hmac.PBKDF2(iterations=1000)
KEYS = {16: "0123456789abcdef", 24: "0123456789abcdef01234567", 32: "k" * 32}
MESSAGES = ["", "x", "exactly sixteen!", "pässword-free plaintext " * 5]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    yield from spark_session("test_importers_spark")


def spark_values(spark: Any, key: str, mode_args: str) -> list[bytes]:
    """``aes_encrypt(message, key{mode_args})`` of every message, computed by Spark itself."""
    rows = spark.createDataFrame([(m,) for m in MESSAGES], "m string")
    rows.createOrReplaceTempView("messages")
    out = spark.sql(f"SELECT aes_encrypt(m, '{key}'{mode_args}) AS v FROM messages").collect()
    return [bytes(row.v) for row in out]


@pytest.mark.parametrize("size", sorted(KEYS))
@pytest.mark.parametrize(
    ("mode", "mode_args"),
    [
        ("GCM", ""),  # Spark's default mode and padding
        ("GCM", ", 'GCM'"),
        ("GCM", ", 'GCM', 'NONE'"),
        ("GCM", ", 'GCM', 'DEFAULT'"),
        ("CBC", ", 'CBC'"),
        ("CBC", ", 'CBC', 'PKCS'"),
        ("CBC", ", 'CBC', 'DEFAULT'"),
    ],
)
def test_values_spark_made_convert(spark: Any, size: int, mode: str, mode_args: str) -> None:
    key = KEYS[size]
    for message, value in zip(MESSAGES, spark_values(spark, key, mode_args), strict=True):
        token = sp.import_spark(value, key, mode=mode, password="new", kdf=CHEAP)
        assert aes_hmac.decrypt(token, "new") == message.encode()


def test_gcm_with_aad_spark_made(spark: Any) -> None:
    key = KEYS[32]
    sql = f"SELECT aes_encrypt('secret row', '{key}', 'GCM', 'DEFAULT', unhex(''), 'row 7') AS v"
    value = bytes(spark.sql(sql).collect()[0].v)
    assert sp.spark_decrypt(value, key, aad=b"row 7") == b"secret row"
    with pytest.raises(aes_hmac.InvalidToken, match="wrong aad"):
        sp.spark_decrypt(value, key, aad=b"row 8")


def test_our_decryption_is_sparks(spark: Any) -> None:
    """Spark's own ``aes_decrypt`` agrees on a value made outside Spark with the same layout."""
    key = KEYS[16]
    value = spark_values(spark, key, "")[3]
    sql = f"SELECT cast(aes_decrypt(unbase64('{base64.b64encode(value).decode()}'), '{key}') AS string) AS p"
    assert spark.sql(sql).collect()[0].p == sp.spark_decrypt(value, key).decode()


def test_gcm_tampering_and_wrong_key_refused(spark: Any) -> None:
    key = KEYS[16]
    value = spark_values(spark, key, "")[1]
    flipped = bytearray(value)
    flipped[sp.GCM_IV_SIZE] ^= 1
    with pytest.raises(aes_hmac.InvalidToken, match="tampered"):
        sp.import_spark(bytes(flipped), key, password="new", kdf=CHEAP)
    with pytest.raises(aes_hmac.InvalidToken, match="wrong key"):
        sp.spark_decrypt(value, "fedcba9876543210")
    with pytest.raises(aes_hmac.InvalidToken, match="too short"):
        sp.spark_decrypt(value[:27], key)


def test_cbc_checks_only_length_and_padding(spark: Any) -> None:
    key = KEYS[24]
    value = spark_values(spark, key, ", 'CBC'")[2]
    assert len(value) == sp.CBC_IV_SIZE + 32  # 16 bytes of text: a full block of padding
    with pytest.raises(aes_hmac.InvalidToken, match="wrong length"):
        sp.spark_decrypt(value[:-1], key, mode="CBC")
    # A flipped IV bit changes the first plaintext byte undetected: CBC is not authenticated.
    changed = bytes([value[0] ^ 1]) + value[1:]
    assert sp.spark_decrypt(changed, key, mode="cbc") == b"dxactly sixteen!"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "ECB"}, ValueError, "mode must be 'GCM' or 'CBC'"),
        ({"mode": "GCM", "padding": "PKCS"}, ValueError, "padding for GCM"),
        ({"mode": "CBC", "padding": "NONE"}, ValueError, "padding for CBC"),
        ({"mode": "CBC", "aad": b"x"}, ValueError, "aad is only defined for GCM"),
    ],
)
def test_bad_arguments_named(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        sp.spark_decrypt(bytes(48), KEYS[16], **kwargs)


def test_bad_key_size_names_length_not_key() -> None:
    with pytest.raises(ValueError, match="16, 24 or 32 bytes, got 10") as info:
        sp.check_spark_key("secret1234")
    assert "secret1234" not in str(info.value)


@pytest.mark.slow
def test_cli_import_from_spark(spark: Any, tmp_path: Path) -> None:
    """``aes-hmac import --from spark`` and ``--from spark-cbc`` on ``base64(aes_encrypt(..))``."""
    key = KEYS[32]
    script = Path(sys.executable).parent / "aes-hmac"
    env = {**os.environ, "OLD_SECRET": key, "NEW_SECRET": "new password"}
    for source, mode_args in (("spark", ""), ("spark-cbc", ", 'CBC'")):
        lines = b"".join(base64.b64encode(v) + b"\n" for v in spark_values(spark, key, mode_args))
        (tmp_path / "values").write_bytes(lines)
        result = subprocess.run(
            [script, "import", "--from", source, str(tmp_path / "values"),
             "-o", str(tmp_path / source), "--password-env", "OLD_SECRET",
             "--new-password-env", "NEW_SECRET", "--iterations", "1000", "-q"],
            capture_output=True, env=env, timeout=60, check=False,
        )
        assert result.returncode == 0, result.stderr
        tokens = (tmp_path / source).read_text().split()
        assert [aes_hmac.decrypt(t, "new password") for t in tokens] == [
            m.encode() for m in MESSAGES
        ]
    help_text = subprocess.run(
        [script, "import", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--from spark-cbc" in help_text and "NOT verified" in help_text
