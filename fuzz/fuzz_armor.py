"""Fuzz armor decoding: the strict reader, detection, and write-then-read round trips.

Run: ``python fuzz/fuzz_armor.py [libFuzzer options] [corpus dirs]`` (see scripts/fuzz.sh).
Only ``ArmorError`` may escape the reader; a round trip must give the data back exactly.
"""

from __future__ import annotations

import io

import _runner

from aes_hmac import armor as _armor
from aes_hmac._errors import ArmorError


def _read_all(src: io.BytesIO) -> tuple[bytes, bool]:
    stream, armored = _armor.sniff(src)
    return stream.read(), armored


def one_input(data: bytes) -> None:
    """Decode ``data`` as armor (directly and after sniffing); armor ``data`` and read it back."""
    try:
        _armor.ArmorReader(io.BytesIO(data)).read()
    except ArmorError:
        pass
    try:
        sniffed, armored = _read_all(io.BytesIO(data))
    except ArmorError:
        pass
    else:
        # Armor may also follow leading text (FORMAT.md, armor detection); anything sniff calls
        # binary must come back byte for byte, and armor needs a begin line somewhere.
        if not armored and sniffed != data:
            raise RuntimeError("sniff changed binary input")
        if armored and _armor.BEGIN_LINE not in data:
            raise RuntimeError("sniff found armor without a begin line")
    out = io.BytesIO()
    writer = _armor.ArmorWriter(out)
    writer.write(data)
    writer.close()
    if _read_all(io.BytesIO(out.getvalue())) != (data, True):
        raise RuntimeError("armor round trip changed the data")


if __name__ == "__main__":
    _runner.main(one_input, expected=())
