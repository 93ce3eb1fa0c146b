"""Looking at an input's first bytes before asking for a secret, to say what it really is.

The answers are the library's: ``armor.sniff`` finds armor (after leading text too) and
``aes_hmac.inspect_stream`` on the first bytes says what is wrong with anything that is not a
stream (empty, too short, a token) and which kinds of slot a stream has. The CLI only adds
where to go instead ('aes-hmac token decrypt', --key-file), before any prompt rather than after.
"""

from __future__ import annotations

import io
from typing import BinaryIO, Final

import aes_hmac
from aes_hmac import armor

from .common import CliError
from .io_policy import PipeView

HEAD_BYTES: Final = 64 << 10
"""Read ahead of decryption: more than any header (16 slots)."""
_NOT_A_STREAM: Final = "this is an aes-hmac token, not a stream"
"""How the library's ``HeaderError`` for a token given as a stream ends."""


def _read_upto(src: BinaryIO, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        piece = src.read(n - len(data))
        if not piece:
            break
        data += piece
    return bytes(data)


def open_encrypted(src: BinaryIO) -> tuple[BinaryIO, bool, bytes]:
    """(binary stream, armored, its first HEAD_BYTES): armor is found after leading text too."""
    stream, armored = armor.sniff(src)
    head = _read_upto(stream, HEAD_BYTES)
    return io.BufferedReader(PipeView(stream, head)), armored, head


def check_input(head: bytes, *, key_file: bool | None) -> aes_hmac.StreamInfo:
    """What the header in ``head`` says, refusing before any prompt an input the secret cannot
    open (the library's ``HeaderError``, or the CLI's hint where it has one).

    ``key_file``: whether a key file (True) or a password (False) will be given; ``None``
    checks only what the input is.
    """
    try:
        info = aes_hmac.inspect_stream(io.BytesIO(head))
    except aes_hmac.HeaderError as exc:
        if str(exc).endswith(_NOT_A_STREAM):
            raise CliError(
                "the input is a token, not a file: use 'aes-hmac token decrypt'"
            ) from None
        raise
    raw_key_slots = sum(slot.kdf is None for slot in info.slots)
    if key_file is False and raw_key_slots == len(info.slots):
        raise CliError("this file opens with a key file (--key-file), not a password")
    if key_file and not raw_key_slots:
        raise CliError("this file opens with a password, not a key file")
    return info


def is_encrypted_file(data: bytes) -> bool:
    """Whether ``data`` starts like what 'aes-hmac encrypt' writes: armor, or a stream header."""
    if armor.looks_armored(data):
        return True
    try:
        aes_hmac.inspect_stream(io.BytesIO(data))
    except aes_hmac.HeaderError:
        return False
    return True
