"""The README's "main job": round-trip the design note's example, a token and a file.

Run with ``bash scripts/demo.sh`` (sets up the virtualenv) or ``python -m aes_hmac._demo``.
Prints what it did and exits non-zero if any round trip fails.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from . import Key, aes_decrypt, aes_encrypt, decrypt, decrypt_file, encrypt, encrypt_file


def _check(label: str, ok: bool) -> bool:
    print(f"{'ok ' if ok else 'FAIL'} {label}")
    return ok


def main() -> int:
    """Run every round trip; 0 when all succeed."""
    results = []

    # The design note's example, verbatim (default 600,000 PBKDF2 iterations).
    plaintext = "secret delicious message"
    password = "password"  # noqa: S105 - the design note's example
    encrypted_data = aes_encrypt(plaintext, password)
    ciphertext, iv, salt, mac = encrypted_data
    decrypted_data = aes_decrypt(ciphertext, password, iv, salt, mac)
    print(f"design note: ciphertext={ciphertext} iv={iv.hex()} salt={salt.hex()}")
    results.append(_check("aes_encrypt/aes_decrypt round trip", decrypted_data == plaintext))

    token = encrypt(plaintext, password)
    print(f"token: {token}")
    opened_text = decrypt(token, password)
    results.append(_check("encrypt/decrypt token round trip", opened_text == plaintext))

    key = Key.generate()
    raw_token = key.encrypt(b"\x00binary\xff", associated_data=b"record 1")
    opened = key.decrypt(raw_token, associated_data=b"record 1")
    results.append(_check("raw-key token round trip", opened == b"\x00binary\xff"))

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "plain.bin"
        data = os.urandom(3 * 1024 * 1024 + 17)
        source.write_bytes(data)
        encrypt_file(source, Path(tmp) / "plain.bin.ahm", password)
        decrypt_file(Path(tmp) / "plain.bin.ahm", Path(tmp) / "back.bin", password)
        back = (Path(tmp) / "back.bin").read_bytes()
        results.append(_check(f"file round trip ({len(data):,} bytes)", back == data))

    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
