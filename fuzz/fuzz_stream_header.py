"""Fuzz stream header parsing: inspect, open and decrypt with a raw key and with a password.

Run: ``python fuzz/fuzz_stream_header.py [libFuzzer options] [corpus dirs]`` (see scripts/fuzz.sh).
Seeds are the stream vectors cut to their header and first chunk, so mutations land in the header.
Only ``DecryptionError`` subclasses (``HeaderError``, ``StreamDamaged``) may escape.
"""

from __future__ import annotations

import io

import _runner
from _runner import CHEAP_LIMITS, KEY, PASSWORD

import aes_hmac


def one_input(data: bytes) -> None:
    """Parse ``data`` as a stream header three ways; none may fail outside the documented errors."""
    try:
        info = aes_hmac.inspect_stream(io.BytesIO(data))
    except aes_hmac.HeaderError:
        pass
    else:
        if not 1 <= len(info.slots) <= 16:
            raise RuntimeError(f"inspect_stream accepted {len(info.slots)} slots")
    for credential in ({"key": KEY}, {"password": PASSWORD}):
        try:
            aes_hmac.decrypt_stream(
                io.BytesIO(data), io.BytesIO(), limits=CHEAP_LIMITS, workers=1, **credential
            )
        except (aes_hmac.HeaderError, aes_hmac.StreamDamaged):
            pass


if __name__ == "__main__":
    _runner.main(one_input, expected=())
