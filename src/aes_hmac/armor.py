"""ASCII armor: a PEM-like text form of any binary stream (docs/FORMAT.md, section "armor").

The armor carries no cryptography of its own: the binary stream it wraps is authenticated, so
the armor only needs to be strict enough that a mangled copy fails loudly instead of decoding to
something else. Both directions are streaming objects with constant memory, like age's armor.
"""

from __future__ import annotations

import binascii
import io
from typing import BinaryIO, Final

from ._errors import ArmorError

LABEL: Final = b"AES-HMAC ENCRYPTED FILE"
BEGIN_LINE: Final = b"-----BEGIN " + LABEL + b"-----"
END_LINE: Final = b"-----END " + LABEL + b"-----"
LINE_CHARS: Final = 64
"""Base64 characters on every data line but the last (which holds 4..64)."""
LINE_BYTES: Final = LINE_CHARS // 4 * 3
"""Binary bytes carried by one full data line."""

_ARMOR_PREFIX: Final = b"-----"
_WHITESPACE: Final = b" \t\r\n"
_SNIFF_SIZE: Final = 64
"""Bytes read ahead to tell armor from binary; the binary magic never starts with whitespace."""
_SNIFF_LIMIT: Final = 64 * 1024
"""How far detection reads through leading whitespace looking for the begin line."""
_READ_SIZE: Final = 64 * 1024
_MAX_LINE: Final = max(LINE_CHARS, len(BEGIN_LINE)) + 2
"""Longest acceptable line including CR LF: anything longer is refused without buffering it."""
_BATCH_LINES: Final = 1024
"""Full data lines decoded in one base64 call, to keep per-line Python work small."""


class ArmorWriter(io.RawIOBase):
    """Writable binary stream that writes the armored form of everything written to it into ``dst``.

    ``close()`` writes the last data line and the end line and flushes ``dst`` but does not close
    it, so armor can be written to ``sys.stdout.buffer``. Without ``close()`` the armor is
    incomplete (a reader refuses it as truncated).
    """

    def __init__(self, dst: BinaryIO) -> None:
        super().__init__()
        self._dst = dst
        self._pending = bytearray()
        self._finished = False
        dst.write(BEGIN_LINE + b"\n")

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.closed:
            raise ValueError("write to a closed ArmorWriter")
        view = memoryview(data).cast("B")
        self._pending += view
        full = len(self._pending) // LINE_BYTES * LINE_BYTES
        if full >= _BATCH_LINES * LINE_BYTES:
            self._dst.write(_encode_lines(self._pending[:full]))
            del self._pending[:full]
        return len(view)

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._finished:
                self._finished = True
                if self._pending:
                    self._dst.write(_encode_lines(self._pending))
                    self._pending.clear()
                self._dst.write(END_LINE + b"\n")
                self._dst.flush()
        finally:
            super().close()


def _encode_lines(data: bytes | bytearray) -> bytes:
    """Base64 of ``data`` cut into LINE_CHARS-character lines, each ending in LF."""
    encoded = binascii.b2a_base64(data, newline=False)
    lines = [encoded[i : i + LINE_CHARS] for i in range(0, len(encoded), LINE_CHARS)]
    return b"\n".join(lines) + b"\n"


class ArmorReader(io.RawIOBase):
    """Readable binary stream decoding the armor read from ``src``, with constant memory.

    Strict: optional blank lines, the begin line, full 64-character lines of standard base64, one
    last line of 4..64 characters (the only one that may hold ``=`` padding, canonical bits),
    the end line, then nothing but whitespace. LF or CRLF line ends. Any deviation raises
    ``ArmorError`` naming the line; like age's reader, the first error is kept and raised again
    on every later read.
    """

    def __init__(self, src: BinaryIO) -> None:
        super().__init__()
        self._src = src
        self._buf = bytearray()
        self._eof = False
        self._line_no = 0
        self._out = bytearray()
        self._out_pos = 0
        self._state = "begin"  # begin -> data -> done
        self._last_line_seen = False
        self._error: ArmorError | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._error is not None:
            raise self._error
        view = memoryview(buffer).cast("B")
        try:
            while self._out_pos == len(self._out) and self._state != "done":
                self._out = bytearray()
                self._out_pos = 0
                self._advance()
        except ArmorError as exc:
            self._error = exc
            raise
        n = min(len(view), len(self._out) - self._out_pos)
        view[:n] = self._out[self._out_pos : self._out_pos + n]
        self._out_pos += n
        return n

    def _fail(self, message: str) -> ArmorError:
        return ArmorError(f"invalid armor: {message}")

    def _advance(self) -> None:
        """Consume input until some output is decoded or the end of the armor is reached."""
        if self._state == "begin":
            line = self._next_line()
            while line is not None and not line.strip(_WHITESPACE):
                line = self._next_line()
            if line != BEGIN_LINE:
                raise self._fail("missing begin line " + BEGIN_LINE.decode())
            self._state = "data"
            return
        batch: list[bytes] = []
        while len(batch) < _BATCH_LINES:
            line = self._next_line()
            if line is None:
                raise self._fail("truncated: no end line")
            if line == END_LINE:
                self._finish()
                break
            if self._eof and not self._buf:
                # Only the end line may lack its line end: this is a cut-off copy.
                raise self._fail("truncated: no end line")
            if self._last_line_seen:
                raise self._fail(f"line {self._line_no}: data after the last (short) line")
            if len(line) > LINE_CHARS:
                raise self._fail(
                    f"line {self._line_no} is {len(line)} characters long, expected {LINE_CHARS}"
                )
            if len(line) < LINE_CHARS or line.endswith(b"="):
                self._last_line_seen = True
                self._out += self._decode_last(line)
                continue
            batch.append(line)
        if batch:
            # Decoded before the last line's bytes would be: keep output in input order.
            decoded = self._decode(b"".join(batch), self._line_no - len(batch) + 1)
            self._out[0:0] = decoded

    def _decode(self, text: bytes, first_line: int) -> bytes:
        try:
            return binascii.a2b_base64(text, strict_mode=True)
        except binascii.Error:
            raise self._fail(
                f"bad base64 character in lines {first_line}..{self._line_no}"
            ) from None

    def _decode_last(self, line: bytes) -> bytes:
        if not line or len(line) % 4:
            raise self._fail(
                f"line {self._line_no} has {len(line)} characters, not a multiple of 4"
            )
        decoded = self._decode(line, self._line_no)
        if binascii.b2a_base64(decoded, newline=False) != line:
            raise self._fail(f"line {self._line_no}: non-canonical base64 padding")
        return decoded

    def _finish(self) -> None:
        """After the end line only whitespace may follow; read it to EOF in bounded blocks."""
        rest = bytes(self._buf)
        self._buf.clear()
        while True:
            if rest.strip(_WHITESPACE):
                raise self._fail("data after the end line")
            if self._eof:
                break
            rest = self._src.read(_READ_SIZE)
            if not rest:
                break
        self._state = "done"

    def _next_line(self) -> bytes | None:
        """Next line without its LF or CRLF; None at EOF. The end line may lack its LF."""
        while True:
            newline = self._buf.find(b"\n", 0, _MAX_LINE)
            if newline >= 0:
                line = bytes(self._buf[:newline])
                del self._buf[: newline + 1]
                break
            if len(self._buf) >= _MAX_LINE:
                self._line_no += 1
                raise self._fail(f"line {self._line_no} is too long")
            chunk = b"" if self._eof else self._src.read(_READ_SIZE)
            if not chunk:
                self._eof = True
                if not self._buf:
                    return None
                line = bytes(self._buf)
                self._buf.clear()
                break
            self._buf += chunk
        self._line_no += 1
        return line[:-1] if line.endswith(b"\r") else line


class _Prefixed(io.RawIOBase):
    """Readable stream that yields ``prefix`` and then the rest of ``src`` (an undo of a peek)."""

    def __init__(self, prefix: bytes, src: BinaryIO) -> None:
        super().__init__()
        self._prefix = prefix
        self._src = src

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        # read1: what a buffered pipe has now; ``read(n)`` would wait for all n bytes, so the
        # buffer above (64 KiB) would hold a slow producer's first chunks back.
        data = getattr(self._src, "read1", self._src.read)(len(view))
        view[: len(data)] = data
        return len(data)


def looks_armored(prefix: bytes) -> bool:
    """Whether the first bytes of an input are armor rather than the binary format."""
    return prefix.lstrip(_WHITESPACE).startswith(_ARMOR_PREFIX)


def _begin_after_text(prefix: bytes, since: int) -> int:
    """Where a begin line starts after leading text (at a line start past ``since``), or -1."""
    at = prefix.find(b"\n" + BEGIN_LINE, max(0, since - len(BEGIN_LINE) - 1))
    return -1 if at < 0 else at + 1


def _undecided(prefix: bytes, begin: int) -> bool:
    """Whether more input is needed to tell armor from binary: only whitespace so far, or text
    with no begin line yet (an e-mail before its armor). A NUL byte means binary (the stream
    magic holds one), so a binary stream is never read further than the first peek."""
    if len(prefix.lstrip(_WHITESPACE)) < len(_ARMOR_PREFIX):
        return True
    return begin < 0 and not looks_armored(prefix) and b"\x00" not in prefix


def sniff(src: BinaryIO) -> tuple[BinaryIO, bool]:
    """Peek at ``src`` (pipes included: no seek) and return a stream of its binary content.

    Returns ``(stream, armored)``: for armor, ``stream`` decodes it; otherwise ``stream`` yields
    exactly the bytes of ``src``, the peeked ones included. Armor is found at the start (after
    blank lines) or after leading text, on a line of its own within the first 64 KiB (a message
    pasted below some words); the text before the begin line is then skipped.
    """
    prefix = b""
    begin = -1
    # At least _SNIFF_SIZE bytes, then on (bounded) while the input is undecided.
    while len(prefix) < _SNIFF_SIZE or (_undecided(prefix, begin) and len(prefix) < _SNIFF_LIMIT):
        chunk = src.read(_SNIFF_SIZE)
        if not chunk:
            break
        since = len(prefix)
        prefix += chunk
        if begin < 0:
            begin = _begin_after_text(prefix, since)
    if looks_armored(prefix):
        begin = 0
    if begin < 0:
        return io.BufferedReader(_Prefixed(prefix, src), _READ_SIZE), False
    stream = io.BufferedReader(_Prefixed(prefix[begin:], src), _READ_SIZE)
    return io.BufferedReader(ArmorReader(stream), _READ_SIZE), True
