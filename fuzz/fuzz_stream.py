"""Fuzz stream decryption: hostile streams, and round trips that must refuse any single edit.

Run: ``python fuzz/fuzz_stream.py [libFuzzer options] [corpus dirs]`` (see scripts/fuzz.sh).
The first input byte picks the mode: decrypt the rest as a stream (seeds: the stream vectors,
whose raw-key slots open with ``KEY`` and password slots with the vector passwords), or encrypt
the rest, check it decrypts back (one and two workers, and through ``open`` in small reads), then
truncate, flip, insert or delete at an input-chosen place and require a ``DecryptionError``.
"""

from __future__ import annotations

import io

import _runner
import atheris  # type: ignore[import-untyped]
from _runner import CHEAP_LIMITS, KEY, PASSWORD

import aes_hmac

CHUNK = 4096
VECTOR_PASSWORDS = ("correct horse", "pässword", "second", "third", PASSWORD)
EDITS = 4


def _decrypt(stream: bytes, workers: int = 1, **credential: object) -> bytes:
    out = io.BytesIO()
    aes_hmac.decrypt_stream(
        io.BytesIO(stream),
        out,
        limits=CHEAP_LIMITS,
        workers=workers,
        **credential,  # type: ignore[arg-type]
    )
    return out.getvalue()


def _read_small(stream: bytes, size: int) -> bytes:
    parts = []
    with aes_hmac.open(io.BytesIO(stream), "rb", key=KEY, limits=CHEAP_LIMITS) as reader:
        while part := reader.read(size):
            parts.append(part)
    return b"".join(parts)


def _hostile(data: bytes) -> None:
    try:
        _decrypt(data, key=KEY)
    except (aes_hmac.HeaderError, aes_hmac.StreamDamaged):
        pass
    for password in VECTOR_PASSWORDS[:2]:
        try:
            _decrypt(data, password=password)
        except (aes_hmac.HeaderError, aes_hmac.StreamDamaged):
            pass


def _edited(stream: bytes, fdp: atheris.FuzzedDataProvider) -> bytes:
    kind = fdp.ConsumeIntInRange(0, EDITS - 1)
    where = fdp.ConsumeIntInRange(0, len(stream) - 1)
    if kind == 0:
        return stream[:where]
    if kind == 1:
        flipped = bytearray(stream)
        flipped[where] ^= fdp.ConsumeIntInRange(1, 255)
        return bytes(flipped)
    if kind == 2:
        inserted: bytes = fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 80))
        return stream[:where] + inserted + stream[where:]
    return stream[:where] + stream[where + fdp.ConsumeIntInRange(1, 80) :]


def _round_trip(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    plain = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 3 * CHUNK + 100))
    sealed = io.BytesIO()
    workers = fdp.ConsumeIntInRange(1, 3)
    aes_hmac.encrypt_stream(io.BytesIO(plain), sealed, key=KEY, chunk_size=CHUNK, workers=workers)
    stream = sealed.getvalue()
    if _decrypt(stream, key=KEY, workers=fdp.ConsumeIntInRange(1, 3)) != plain:
        raise RuntimeError("stream round trip changed the data")
    if _read_small(stream, fdp.ConsumeIntInRange(1, 5000)) != plain:
        raise RuntimeError("open() round trip changed the data")
    edited = _edited(stream, fdp)
    if edited == stream:
        return
    errors = []
    for n in (1, workers):
        try:
            _decrypt(edited, key=KEY, workers=n)
        except (aes_hmac.HeaderError, aes_hmac.StreamDamaged) as exc:
            errors.append(str(exc))
            continue
        raise RuntimeError("an edited stream decrypted without error")
    if errors[0] != errors[1]:
        # The parallel engine must report the first failure in stream order, as the loop does.
        raise RuntimeError(f"workers changed the error: {errors}")


def one_input(data: bytes) -> None:
    """Dispatch on the first byte: hostile stream, or round trip plus one edit."""
    if data[:1] == b"\x01":
        _round_trip(data[1:])
    else:
        _hostile(data[1:])


if __name__ == "__main__":
    _runner.main(one_input, expected=())
