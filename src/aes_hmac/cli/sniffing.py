"""Looking at an input's first bytes before asking for a secret, to say what it really is.

The answers are the library's: ``armor.sniff`` finds armor (after leading text too) and
``aes_hmac.read_stream_header`` reads and parses the header once, saying what is wrong with
anything that is not a stream (empty, too short, a token) and which kinds of slot a stream has;
decryption goes on from that header. The CLI only adds where to go instead ('aes-hmac token
decrypt', --key-file), before any prompt rather than after.
"""

from __future__ import annotations

import io
import os
import stat
from typing import BinaryIO, Final

import aes_hmac
from aes_hmac import armor

from .common import CliError

HEAD_BYTES: Final = 64 << 10
"""How far 'rekey' looks for text before an armor's begin line (as far as ``armor.sniff``)."""
_NOT_A_STREAM: Final = "this is an aes-hmac token, not a stream"
"""How the library's ``HeaderError`` for a token given as a stream ends."""


def _regular_file_start(src: BinaryIO) -> int | None:
    """``src``'s position when it is a seekable regular file (a path, or stdin from ``<``), else
    ``None`` (a pipe, a terminal, a wrapper without a descriptor)."""
    try:
        if stat.S_ISREG(os.fstat(src.fileno()).st_mode) and src.seekable():
            return src.tell()
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        pass
    return None


def open_encrypted(src: BinaryIO) -> tuple[BinaryIO, bool, aes_hmac.StreamHeader]:
    """(binary stream at its first chunk, armored, the header read and parsed once): armor is
    found after leading text too. Hand both to ``decrypt_stream(stream, ..., header=)``.

    A binary regular file comes back itself, positioned past the header: the engine then reads
    it directly (no wrapper, no copy), and no header byte is read twice. ``CliError`` for a
    token (the hint), the library's ``HeaderError`` for anything else that is not a stream.
    """
    start = _regular_file_start(src)
    stream, armored = armor.sniff(src)
    try:
        header = aes_hmac.read_stream_header(stream)
    except aes_hmac.HeaderError as exc:
        if str(exc).endswith(_NOT_A_STREAM):
            raise CliError(
                "the input is a token, not a file: use 'aes-hmac token decrypt'"
            ) from None
        raise
    if start is None or armored:
        return stream, armored, header
    src.seek(start + header.info.header_size)
    return src, armored, header


def check_input(info: aes_hmac.StreamInfo, *, key_file: bool | None) -> aes_hmac.StreamInfo:
    """``info`` itself, once the secret that will be given can open one of its slots: refused
    before any prompt otherwise (with the option to use instead).

    ``key_file``: whether a key file (True) or a password (False) will be given; ``None``
    checks nothing.
    """
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
