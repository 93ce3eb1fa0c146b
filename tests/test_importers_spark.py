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
SLOW = pytest.mark.slow  # drives a real Spark (a JVM subprocess)


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    yield from spark_session("test_importers_spark")


MODES = [
    ("GCM", ""),  # Spark's default mode and padding
    ("GCM", ", 'GCM'"),
    ("GCM", ", 'GCM', 'NONE'"),
    ("GCM", ", 'GCM', 'DEFAULT'"),
    ("CBC", ", 'CBC'"),
    ("CBC", ", 'CBC', 'PKCS'"),
    ("CBC", ", 'CBC', 'DEFAULT'"),
]


@pytest.fixture(scope="module")
def made(spark: Any) -> dict[tuple[int, str], list[bytes]]:
    """``aes_encrypt(message, key, ...)`` for every key size, mode and message: one Spark query."""
    rows = spark.createDataFrame([(m,) for m in MESSAGES], "m string")
    rows.createOrReplaceTempView("messages")
    cases = [(size, args) for size in sorted(KEYS) for _, args in MODES]
    columns = ", ".join(
        f"aes_encrypt(m, '{KEYS[size]}'{args}) AS c{i}" for i, (size, args) in enumerate(cases)
    )
    out = spark.sql(f"SELECT {columns} FROM messages").collect()
    return {case: [bytes(row[i]) for row in out] for i, case in enumerate(cases)}


@SLOW
@pytest.mark.parametrize("size", sorted(KEYS))
@pytest.mark.parametrize(("mode", "mode_args"), MODES)
def test_values_spark_made_convert(
    made: dict[tuple[int, str], list[bytes]], size: int, mode: str, mode_args: str
) -> None:
    key = KEYS[size]
    for message, value in zip(MESSAGES, made[size, mode_args], strict=True):
        token = sp.import_spark(value, key, mode=mode, password="new", kdf=CHEAP)
        assert aes_hmac.decrypt(token, "new") == message.encode()


@SLOW
def test_gcm_with_aad_spark_made(spark: Any) -> None:
    key = KEYS[32]
    sql = f"SELECT aes_encrypt('secret row', '{key}', 'GCM', 'DEFAULT', unhex(''), 'row 7') AS v"
    value = bytes(spark.sql(sql).collect()[0].v)
    assert sp.spark_decrypt(value, key, aad=b"row 7") == b"secret row"
    with pytest.raises(aes_hmac.InvalidToken, match="wrong aad"):
        sp.spark_decrypt(value, key, aad=b"row 8")


@SLOW
def test_our_decryption_is_sparks(spark: Any, made: dict[tuple[int, str], list[bytes]]) -> None:
    """What ``spark_decrypt`` returns for a value is what Spark's own ``aes_decrypt`` returns."""
    key = KEYS[16]
    value = made[16, ""][3]
    text = base64.b64encode(value).decode()
    sql = f"SELECT cast(aes_decrypt(unbase64('{text}'), '{key}') AS string) AS p"
    assert spark.sql(sql).collect()[0].p == sp.spark_decrypt(value, key).decode()


@SLOW
def test_gcm_tampering_and_wrong_key_refused(made: dict[tuple[int, str], list[bytes]]) -> None:
    key = KEYS[16]
    value = made[16, ""][1]
    flipped = bytearray(value)
    flipped[sp.GCM_IV_SIZE] ^= 1
    with pytest.raises(aes_hmac.InvalidToken, match="tampered"):
        sp.import_spark(bytes(flipped), key, password="new", kdf=CHEAP)
    with pytest.raises(aes_hmac.InvalidToken, match="wrong key"):
        sp.spark_decrypt(value, "fedcba9876543210")
    with pytest.raises(aes_hmac.InvalidToken, match="too short"):
        sp.spark_decrypt(value[:27], key)


@SLOW
def test_cbc_checks_only_length_and_padding(made: dict[tuple[int, str], list[bytes]]) -> None:
    key = KEYS[24]
    value = made[24, ", 'CBC'"][2]
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


@SLOW
def test_cli_import_from_spark(made: dict[tuple[int, str], list[bytes]], tmp_path: Path) -> None:
    """``aes-hmac import --from spark`` and ``--from spark-cbc`` on ``base64(aes_encrypt(..))``."""
    key = KEYS[32]
    script = Path(sys.executable).parent / "aes-hmac"
    env = {**os.environ, "OLD_SECRET": key, "NEW_SECRET": "new password"}
    for source, mode_args in (("spark", ""), ("spark-cbc", ", 'CBC'")):
        lines = b"".join(base64.b64encode(v) + b"\n" for v in made[32, mode_args])
        (tmp_path / "values").write_bytes(lines)
        result = subprocess.run(
            [
                script,
                "import",
                "--from",
                source,
                str(tmp_path / "values"),
                "-o",
                str(tmp_path / source),
                "--password-env",
                "OLD_SECRET",
                "--new-password-env",
                "NEW_SECRET",
                "--iterations",
                "1000",
                "-q",
            ],
            capture_output=True,
            env=env,
            timeout=60,
            check=False,
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
