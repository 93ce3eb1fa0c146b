"""Looking at an input's first bytes before asking for a secret, to say what it really is.

An empty or too-short input, a token given where a file is expected, armor after an e-mail's
leading text, a key-file-only file given a password (and the reverse): each is told plainly,
before any prompt, instead of as a header error after it.
"""

from __future__ import annotations

import io
from typing import Any, BinaryIO, Final

import aes_hmac
from aes_hmac import armor

from .common import CliError

HEAD_BYTES: Final = 64 << 10
"""Read ahead of decryption: more than any header (16 slots), and where armor is looked for."""
STREAM_MAGIC: Final = b"AESHMAC\x00"
"""The first bytes of the binary format (docs/FORMAT.md)."""
MIN_HEADER_BYTES: Final = 43
"""The smallest input that can hold a header's fixed part (docs/FORMAT.md)."""
TOKEN_MAGIC: Final = 0xA5
"""The first byte of a binary token (docs/FORMAT.md)."""
_BASE64URL: Final = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_ASCII_SPACE: Final = b" \t\r\n"


class _Replay(io.RawIOBase):
    """``head`` again, then the rest of ``src``: a look ahead that a pipe can afford."""

    def __init__(self, head: bytes, src: BinaryIO) -> None:
        super().__init__()
        self._head = head
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._head:
            n = min(len(view), len(self._head))
            view[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._src.read(len(view))
        view[: len(data)] = data
        return len(data)


def _read_upto(src: BinaryIO, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        piece = src.read(n - len(data))
        if not piece:
            break
        data += piece
    return bytes(data)


def read_head(src: BinaryIO) -> tuple[bytes, BinaryIO]:
    """The first HEAD_BYTES of ``src`` (fewer only at its end) and a stream of all of it."""
    head = _read_upto(src, HEAD_BYTES)
    return head, io.BufferedReader(_Replay(head, src))


def open_encrypted(src: BinaryIO) -> tuple[BinaryIO, bool, bytes]:
    """(binary stream, armored, its first bytes): armor is found after leading text too."""
    stream, armored = armor.sniff(src)
    head = _read_upto(stream, HEAD_BYTES)
    if not armored and not head.startswith(STREAM_MAGIC):
        start = head.find(b"\n" + armor.BEGIN_LINE)
        if start >= 0:
            # An e-mail or a note before the armor: skip to its begin line.
            rest = io.BufferedReader(_Replay(head[start + 1 :], stream))
            stream, armored = armor.sniff(rest)
            head = _read_upto(stream, HEAD_BYTES)
    return io.BufferedReader(_Replay(head, stream)), armored, head


def looks_like_token(head: bytes) -> bool:
    """Whether ``head`` is one text token (base64url of a binary token), as ``encrypt`` makes."""
    text = head.strip(_ASCII_SPACE)
    if not text or not set(text) <= _BASE64URL:
        return False
    try:
        raw = aes_hmac.token_to_bytes(text.decode("ascii"))
    except aes_hmac.InvalidToken:
        return False
    return raw[:1] == bytes((TOKEN_MAGIC,))


def check_input(head: bytes, *, key_file: bool | None) -> None:
    """Refuse, before any prompt, an input the secret cannot open, saying what it is.

    ``key_file``: whether a key file (True) or a password (False) will be given; ``None``
    checks only what the input is.
    """
    if not head:
        raise CliError("the input is empty: not an aes-hmac file")
    if not head.startswith(STREAM_MAGIC):
        if looks_like_token(head):
            raise CliError("the input is a token, not a file: use 'aes-hmac token decrypt'")
        if len(head) < MIN_HEADER_BYTES:
            raise CliError(f"not an aes-hmac file (too short: {len(head)} bytes)")
        return  # the library names what is wrong with it
    if len(head) < MIN_HEADER_BYTES:
        raise CliError(
            f"not an aes-hmac file (too short: {len(head)} bytes, a header has at least "
            f"{MIN_HEADER_BYTES})"
        )
    if key_file is None:
        return
    try:
        info = aes_hmac.inspect_stream(io.BytesIO(head))
    except aes_hmac.HeaderError:
        return  # the library tells it when decrypting
    raw_key_slots = sum(slot.kdf is None for slot in info.slots)
    if not key_file and raw_key_slots == len(info.slots):
        raise CliError("this file opens with a key file (--key-file), not a password")
    if key_file and not raw_key_slots:
        raise CliError("this file opens with a password, not a key file")
