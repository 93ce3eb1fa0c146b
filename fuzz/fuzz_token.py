"""Fuzz token decoding: binary and text tokens; raw key, password, bulk mode and keyring.

Run: ``python fuzz/fuzz_token.py [libFuzzer options] [corpus dirs]`` (see scripts/fuzz.sh).
Round trips must give the data back. Every token failure must be ``InvalidToken`` (FORMAT.md
section 2); nothing else may escape.
"""

from __future__ import annotations

from contextlib import suppress

import _runner
from _runner import CHEAP_LIMITS, KEY, PASSWORD

import aes_hmac

RAW = aes_hmac.Key(KEY)
BULK = aes_hmac.PasswordKey(PASSWORD, kdf=aes_hmac.PBKDF2(iterations=1000), limits=CHEAP_LIMITS)
RING = aes_hmac.Keyring(PASSWORD, KEY, kdf=aes_hmac.PBKDF2(iterations=1000))


def one_input(data: bytes) -> None:
    """Decode ``data`` every way a caller can; a round trip of it must give it back."""
    text = data.decode("latin-1")
    for plain in (data, text):
        if RAW.decrypt(RAW.encrypt(plain, associated_data=data[:3]), associated_data=data[:3]) != (
            plain
        ):
            raise RuntimeError("raw-key round trip changed the data")
    for candidate in (data, text):
        with suppress(aes_hmac.InvalidToken):
            RAW.decrypt(candidate)
        with suppress(aes_hmac.InvalidToken):
            aes_hmac.decrypt(candidate, PASSWORD, limits=CHEAP_LIMITS)
        with suppress(aes_hmac.InvalidToken):
            BULK.decrypt(candidate)
        with suppress(aes_hmac.InvalidToken):
            RING.needs_rotation(candidate, limits=CHEAP_LIMITS)


if __name__ == "__main__":
    _runner.main(one_input, expected=())
