"""Write every generated test vector file under tests/vectors from its fixed inputs.

Usage: ``python scripts/make_vectors.py`` rewrites token_valid.json, token_invalid.json,
compat_tuple.json, compat_legacy.json, armor_v1.json, stream_v1.json, manifest_v1.json and
column_v2.json; ``--check`` writes nothing and exits 1 when a file differs from what this script
makes. The vectors pin the formats: regenerate only for a deliberate format change, with
docs/FORMAT.md. The fixed inputs and the helpers that recompute a vector live in the test modules
that check them; this script is the one place that decides which cases exist and writes them.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from pathlib import Path
from typing import Any, Final

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

import test_compat  # noqa: E402
from _vectors import VECTORS, unhex  # noqa: E402
from test_armor import VECTOR_INPUTS, armor  # noqa: E402
from test_compat import CHEAP, original_encrypt, tuple_from_parts  # noqa: E402
from test_manifest import (  # noqa: E402
    FORGED_ID,
    FORGED_KEY,
    FORGED_PLAINTEXTS,
    INVALID_PLAINTEXTS,
    MANIFEST_VECTOR_INPUTS,
    manifest_vector,
)
from test_sqlalchemy_binding import VECTOR_FILE, column_vectors  # noqa: E402
from test_stream import seal_vector  # noqa: E402
from test_token import IV, KDFS, MASTER, SALT, _encrypt_from_parts, _kdf_spec  # noqa: E402

from aes_hmac._kdf import KDFS as KDF_REGISTRY  # noqa: E402
from aes_hmac._kdf import PARAMS_SIZE, PBKDF2, Scrypt  # noqa: E402
from aes_hmac._primitives import ChainedCbcHmac, pkcs7_pad, split_key  # noqa: E402
from aes_hmac._token.codec import FORMATS, token_to_bytes, token_to_text  # noqa: E402
from aes_hmac._token.v1 import KEY_LABEL, RAW_HEADER, header_for  # noqa: E402

# --- tokens (tests/test_token.py) ----------------------------------------------------------------

KDF_NAMES: Final = tuple(cls.name for cls in KDF_REGISTRY)
"""One pair of valid vectors per registered KDF, with the cheap instance ``test_token.KDFS``
gives it, in registry order."""
UNUSED_KDF_ID: Final = max(PARAMS_SIZE) + 1
"""The next KDF id no KDF uses: what a tampered raw token's KDF byte becomes."""


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
            case.update(kdf=_kdf_spec(kdf_name, kdf), password="pässwörd", salt=SALT.hex())  # noqa: S106
            token = _encrypt_from_parts(data, "pässwörd", kdf, SALT, IV, ad)
        case["token"] = token
        case["token_hex"] = token_to_bytes(token).hex()
        out.append(case)

    missing = [name for name in KDF_NAMES if name not in KDFS]
    if missing:
        raise SystemExit(f"tests/test_token.py KDFS needs a cheap instance of {', '.join(missing)}")
    for kdf_name in (None, *KDF_NAMES):
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
    unread = max(FORMATS) + 1  # the first version this library cannot read
    add("wrong-version", pw, flip(pw_raw, 1, unread), f"unsupported token version {unread}")
    if 9 in PARAMS_SIZE:
        raise SystemExit("kdf id 9 is registered now: pick an unused id for 'unknown-kdf'")
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
    add("wrong-password", pw, pw_raw, auth, password="passwörd")  # noqa: S106
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
    add(
        "raw-tampered-header",
        rk,
        flip(rk_raw, 2, UNUSED_KDF_ID),
        f"unknown kdf id {UNUSED_KDF_ID}",
    )
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


def token_files() -> dict[str, str]:
    valid = _valid_cases()
    invalid = _invalid_cases(valid)
    header = {
        "format": "aes-hmac token v1, see docs/FORMAT.md; hex unless named text/token",
        "generator": "python tests/test_token.py",
    }
    return {
        name: json.dumps({**header, "tests": items}, indent=1, ensure_ascii=False) + "\n"
        for name, items in (("token_valid.json", valid), ("token_invalid.json", invalid))
    }


# --- the design-note tuple and the original script (tests/test_compat.py) ------------------------


def compat_files() -> dict[str, str]:
    tuples: list[dict[str, Any]] = []
    for name, data, ad in (
        ("text", "secret delicious message", None),
        ("bytes-ad", b"\x00binary\xff", b"record 1"),
        ("empty-text", "", None),
    ):
        ct, iv, salt, mac = tuple_from_parts(data, "password", CHEAP, ad)
        case: dict[str, Any] = {"name": name, "password": "password", "iterations": CHEAP}
        case.update({"text": data} if isinstance(data, str) else {"data_hex": data.hex()})
        case.update(
            associated_data=None if ad is None else ad.hex(),
            ciphertext=ct,
            iv=iv.hex(),
            salt=salt.hex(),
            mac=mac.hex(),
        )
        tuples.append(case)
    legacy: list[dict[str, Any]] = []
    for name, plaintext, password in (
        ("note-example", "secret delicious message", "password"),
        ("unicode", "grüße, 世界", "pässwörd"),
        ("one-block", "0123456789abcdef", "password"),
    ):
        ct, mac = original_encrypt(plaintext, password, test_compat.SALT, test_compat.IV)
        legacy.append(
            {
                "name": name,
                "plaintext": plaintext,
                "password": password,
                "ciphertext": ct,
                "iv": test_compat.IV.hex(),
                "salt": test_compat.SALT.hex(),
                "mac": mac.hex(),
            }
        )
    files = {}
    for file, items, what in (
        ("compat_tuple.json", tuples, "aes_encrypt tuples with fixed salt/iv"),
        (
            "compat_legacy.json",
            legacy,
            "original script: PBKDF2-SHA256 200000, one key, HMAC over base64 text",
        ),
    ):
        doc = {"format": what, "generator": "python tests/test_compat.py", "tests": items}
        files[file] = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    return files


# --- armor (tests/test_armor.py) and streams (tests/test_stream.py) ------------------------------


def armor_files() -> dict[str, str]:
    doc = {
        "description": "aes-hmac armor (docs/FORMAT.md section armor): data and its exact armor",
        "vectors": [
            {"name": name, "data_hex": data.hex(), "armor": armor(data).decode("ascii")}
            for name, data in VECTOR_INPUTS.items()
        ],
    }
    return {"armor_v1.json": json.dumps(doc, indent=2) + "\n"}


def stream_files() -> dict[str, str]:
    """stream_v1.json keeps its inputs; only each vector's expected bytes are recomputed."""
    doc = json.loads((VECTORS / "stream_v1.json").read_text())
    for v in doc["vectors"]:
        v["stream"] = seal_vector(v).hex()
    return {"stream_v1.json": json.dumps(doc, indent=2) + "\n"}


def manifest_files() -> dict[str, str]:
    """manifest_v1.json: folder manifests sealed with every random value fixed, and plaintexts
    and bodies the decoder must refuse with their exact message (tests/test_manifest.py)."""
    doc = {
        "description": "aes-hmac folder manifest v1 (docs/FORMAT.md section 4): entries (path ->"
        " stream id; 'hex:' marks a path that is not UTF-8), the manifest tag, the plaintext"
        " (body || tag), and the manifest sealed as a stream v1 with every random value fixed;"
        " 'forged' lists plaintexts whose tag fails (or that are too short) for the given file"
        " key and stream id, 'invalid' lists bodies (tag already verified) with the exact error."
        " Generated by this project; license MIT.",
        "vectors": [manifest_vector(v) for v in MANIFEST_VECTOR_INPUTS],
        "forged": [
            {
                "name": name,
                "file_key": FORGED_KEY.hex(),
                "stream_id": FORGED_ID.hex(),
                "plaintext": plain.hex(),
                "error": f"bad manifest: {error}",
            }
            for name, plain, error in FORGED_PLAINTEXTS
        ],
        "invalid": [
            {"name": name, "body": body.hex(), "error": f"bad manifest: {error}"}
            for name, body, error in INVALID_PLAINTEXTS
        ],
    }
    return {"manifest_v1.json": json.dumps(doc, indent=2, ensure_ascii=False) + "\n"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 on a change")
    args = parser.parse_args()
    files = {
        **token_files(),
        **compat_files(),
        **armor_files(),
        **stream_files(),
        **manifest_files(),
        VECTOR_FILE: column_vectors(),
    }
    changed = []
    for name, text in files.items():
        path = VECTORS / name
        if path.exists() and path.read_text(encoding="utf-8") == text:
            continue
        changed.append(name)
        if not args.check:
            path.write_text(text, encoding="utf-8")
    verb = "differ" if args.check else "rewritten"
    print(f"{len(files)} vector files, {len(changed)} {verb}: {', '.join(changed) or '-'}")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
