"""Write the seed corpora of the fuzz harnesses from tests/vectors (and a few library-made streams).

Usage: ``python fuzz/make_corpus.py OUTDIR``; creates ``OUTDIR/<harness>/seed-NNN`` files. Seeds
are generated on every run rather than committed, so they always follow the current vectors.
"""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from _runner import KEY, PASSWORD

import aes_hmac
from aes_hmac._kdf import KDF_RAW, PARAMS_SIZE
from aes_hmac._primitives import IV_SIZE, KEY_SIZE, SALT_SIZE, TAG_SIZE

VECTORS = Path(__file__).resolve().parent.parent / "tests" / "vectors"
CHUNK = 4096
HEADER_MARGIN = 80
# A slot: KDF id, its parameters, a salt (password slots), IV, wrapped file key, tag (FORMAT.md).
SLOT_SIZES = {
    kdf_id: 1 + size + (SALT_SIZE if kdf_id != KDF_RAW else 0) + IV_SIZE + KEY_SIZE + TAG_SIZE
    for kdf_id, size in PARAMS_SIZE.items()
}


def _load(name: str) -> dict[str, list[dict[str, object]]]:
    data: dict[str, list[dict[str, object]]] = json.loads((VECTORS / name).read_text("utf-8"))
    return data


def _library_streams() -> Iterator[bytes]:
    """Streams ``_runner.KEY`` and ``PASSWORD`` open, so the fuzzer starts past the header."""
    for size in (0, 100, CHUNK, 2 * CHUNK + 5):
        for credential in ({"key": KEY}, {"password": PASSWORD}):
            out = io.BytesIO()
            aes_hmac.encrypt_stream(
                io.BytesIO(bytes(range(256)) * (size // 256) + bytes(size % 256)),
                out,
                kdf=aes_hmac.PBKDF2(iterations=1000),
                chunk_size=CHUNK,
                workers=1,
                **credential,  # type: ignore[arg-type]
            )
            yield out.getvalue()


def token_seeds() -> Iterator[bytes]:
    """Every token vector, text and binary, valid and invalid."""
    for case in _load("token_valid.json")["tests"]:
        yield str(case["token"]).encode("utf-8")
        yield bytes.fromhex(str(case["token_hex"]))
    for case in _load("token_invalid.json")["tests"]:
        yield str(case["token"]).encode("utf-8")
    yield aes_hmac.token_to_bytes(aes_hmac.Key(KEY).encrypt(b"seed"))


def stream_seeds() -> Iterator[bytes]:
    """Whole streams: the vectors and library-made ones."""
    for case in _load("stream_v1.json")["vectors"]:
        yield bytes.fromhex(str(case["stream"]))
    yield from _library_streams()


def _header_size(stream: bytes) -> int:
    """FORMAT.md 3.1/3.2: 43 bytes, the slots (size by KDF id), the 32-byte header tag."""
    pos = 43
    for _ in range(stream[42]):
        pos += SLOT_SIZES[stream[pos]]
    return pos + 32


def header_seeds() -> Iterator[bytes]:
    """Streams cut shortly after their header, so mutations land in the header."""
    for stream in stream_seeds():
        yield stream[: _header_size(stream) + HEADER_MARGIN]


def armor_seeds() -> Iterator[bytes]:
    """Every armor vector, and the data it encodes."""
    for case in _load("armor_v1.json")["vectors"]:
        yield str(case["armor"]).encode("ascii")
        yield bytes.fromhex(str(case["data_hex"]))


def _write(folder: Path, seeds: Iterable[bytes]) -> int:
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for count, seed in enumerate(seeds, start=1):
        (folder / f"seed-{count:03d}").write_bytes(seed)
    return count


def main(out: Path) -> None:
    """Write all four corpora under ``out`` and say how many seeds each got."""
    streams = list(stream_seeds())
    corpora = {
        "token": token_seeds(),
        "stream_header": header_seeds(),
        # First byte 0: decrypt the rest as it is; 1: round trip of the rest plus one edit.
        "stream": [b"\x00" + s for s in streams] + [b"\x01" + s[:300] for s in streams],
        "armor": armor_seeds(),
    }
    for name, seeds in corpora.items():
        print(f"corpus {name}: {_write(out / name, seeds)} seeds")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
