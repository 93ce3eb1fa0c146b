"""Tests of the armor text form: vectors, round trips, streaming, and every strictness rule.

The JSON vectors are written by ``python scripts/make_vectors.py``.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aes_hmac import DecryptionError
from aes_hmac._errors import ArmorError
from aes_hmac.armor import (
    BEGIN_LINE,
    END_LINE,
    ArmorReader,
    ArmorWriter,
    looks_armored,
    sniff,
)

VECTOR_FILE = Path(__file__).parent / "vectors" / "armor_v1.json"
VECTORS: list[dict[str, Any]] = json.loads(VECTOR_FILE.read_text())["vectors"]
VECTOR_INPUTS = {
    "empty": b"",
    "one byte": b"\x00",
    "one full line": bytes(range(48)),
    "line plus one": bytes(range(49)),
    "two lines minus one": bytes(range(95)),
    "three lines": bytes(range(144)),
}


def armor(data: bytes, pieces: int = 1) -> bytes:
    out = io.BytesIO()
    writer = ArmorWriter(out)
    step = max(1, len(data) // pieces)
    for i in range(0, len(data), step):
        writer.write(data[i : i + step])
    writer.close()
    return out.getvalue()


def dearmor(text: bytes) -> bytes:
    return ArmorReader(io.BytesIO(text)).read()


def reference_armor(data: bytes) -> bytes:
    """The armor rules restated independently of the module: base64 cut at 64 characters."""
    encoded = base64.b64encode(data)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return b"\n".join([BEGIN_LINE, *lines, END_LINE]) + b"\n"


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vectors(vector: dict[str, Any]) -> None:
    data = bytes.fromhex(vector["data_hex"])
    text = vector["armor"].encode("ascii")
    assert armor(data) == text
    assert reference_armor(data) == text
    assert dearmor(text) == data


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=3000), st.integers(min_value=1, max_value=7))
def test_round_trip_any_write_pattern(data: bytes, pieces: int) -> None:
    text = armor(data, pieces)
    assert text == reference_armor(data)
    assert dearmor(text) == data


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=100))
def test_reader_small_reads(data: bytes, size: int) -> None:
    reader = ArmorReader(io.BytesIO(armor(data)))
    got = bytearray()
    while chunk := reader.read(size):
        got += chunk
    assert bytes(got) == data


def test_large_streams_in_batches() -> None:
    data = bytes(range(256)) * 2000 + b"tail"
    text = armor(data, pieces=13)
    assert text == reference_armor(data)
    assert dearmor(text) == data


def test_crlf_leading_blank_lines_and_trailing_whitespace_accepted() -> None:
    data = bytes(range(100))
    text = armor(data).replace(b"\n", b"\r\n")
    assert dearmor(b"\n  \r\n" + text + b"\n\t \n") == data


def test_end_line_without_newline_accepted() -> None:
    assert dearmor(armor(b"abc").rstrip(b"\n")) == b"abc"


def test_writer_does_not_close_destination() -> None:
    out = io.BytesIO()
    writer = ArmorWriter(out)
    writer.write(b"x")
    writer.close()
    writer.close()
    assert not out.closed
    with pytest.raises(ValueError):
        writer.write(b"y")


def lines_of(data: bytes) -> list[bytes]:
    return armor(data).split(b"\n")


def join(lines: list[bytes]) -> bytes:
    return b"\n".join(lines)


BAD_CASES: dict[str, tuple[bytes, str]] = {
    "empty input": (b"", "missing begin line"),
    "text before begin": (b"hello\n" + armor(b"abc"), "missing begin line"),
    "wrong label": (armor(b"abc").replace(b"BEGIN AES-HMAC", b"BEGIN PGP"), "missing begin line"),
    "no end line": (join(lines_of(bytes(100))[:-2]) + b"\n", "truncated: no end line"),
    "short line in the middle": (
        join([*lines_of(bytes(200))[:1], b"AAAA", *lines_of(bytes(200))[2:]]),
        "data after the last (short) line",
    ),
    "long line": (
        join([lines_of(bytes(200))[0], lines_of(bytes(200))[1] + b"A", *lines_of(bytes(200))[2:]]),
        "line 2 is 65 characters long, expected 64",
    ),
    "very long line": (BEGIN_LINE + b"\n" + b"A" * 5000 + b"\n" + END_LINE, "line 2 is too long"),
    "bad character": (armor(bytes(100)).replace(b"AAAA", b"AA*A", 1), "bad base64 character"),
    "url-safe alphabet": (armor(b"\xfb\xff" * 40).replace(b"+", b"-"), "bad base64 character"),
    "length not multiple of 4": (armor(b"abcd").replace(b"YWJjZA==", b"YWJjZA="), "multiple of 4"),
    "padding in a full line": (
        join([lines_of(bytes(200))[0], b"A" * 62 + b"==", *lines_of(bytes(200))[2:]]),
        "data after the last (short) line",
    ),
    "non-canonical padding bits": (armor(b"a").replace(b"YQ==", b"YR=="), "non-canonical"),
    "data after end line": (armor(b"abc") + b"junk\n", "data after the end line"),
    "second armor after end": (armor(b"abc") + armor(b"def"), "data after the end line"),
}


@pytest.mark.parametrize("case", BAD_CASES, ids=list(BAD_CASES))
def test_strictness(case: str) -> None:
    text, message = BAD_CASES[case]
    with pytest.raises(ArmorError) as info:
        dearmor(text)
    assert str(info.value).startswith("invalid armor: ")
    assert message in str(info.value)
    assert isinstance(info.value, DecryptionError)


def test_reader_keeps_raising_the_first_error() -> None:
    reader = ArmorReader(io.BytesIO(armor(bytes(500)) + b"junk"))
    with pytest.raises(ArmorError) as first:
        reader.read()
    with pytest.raises(ArmorError) as second:
        reader.read(10)
    assert second.value is first.value


def test_reader_constant_memory_on_huge_line() -> None:
    """A single endless line is refused after a bounded read, not buffered whole."""

    class Endless(io.RawIOBase):
        def __init__(self) -> None:
            self.served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> int:
            view = memoryview(buffer)
            if self.served == 0:
                head = BEGIN_LINE + b"\n"
                view[: len(head)] = head
                self.served = len(head)
                return len(head)
            view[:] = b"A" * len(view)
            self.served += len(view)
            return len(view)

    src = Endless()
    with pytest.raises(ArmorError, match="too long"):
        ArmorReader(src).read()  # type: ignore[arg-type]
    assert src.served < 1 << 20


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        (BEGIN_LINE, True),
        (b"\n\n  " + BEGIN_LINE, True),
        (b"-----BEGIN SOMETHING ELSE", True),
        (b"AESHMAC\x00\x01", False),
        (b"", False),
        (b"\xa5abc", False),
    ],
)
def test_looks_armored(prefix: bytes, expected: bool) -> None:
    assert looks_armored(prefix) is expected


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 10_000])
def test_sniff_binary_passes_every_byte_through(size: int) -> None:
    data = bytes((i * 7 + 1) % 256 for i in range(size))
    stream, armored = sniff(io.BytesIO(data))
    assert armored is False
    assert stream.read() == data


class Trickle(io.RawIOBase):
    """A pipe-like source returning at most 3 bytes per read and no seek."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(3, len(buffer), len(self._data))
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


def test_sniff_armor_from_a_trickling_pipe() -> None:
    data = bytes(range(256)) * 3
    stream, armored = sniff(Trickle(armor(data)))  # type: ignore[arg-type]
    assert armored is True
    assert stream.read() == data


def test_sniff_binary_from_a_trickling_pipe() -> None:
    data = b"AESHMAC\x00" + bytes(300)
    stream, armored = sniff(Trickle(data))  # type: ignore[arg-type]
    assert armored is False
    assert stream.read() == data


@pytest.mark.parametrize("blank", [100, 5000])
def test_sniff_reads_past_long_leading_whitespace(blank: int) -> None:
    """Regression (review): 64+ blank bytes before the begin line hid the armor from detection."""
    data = b"payload"
    stream, armored = sniff(Trickle(b" \n" * blank + armor(data)))  # type: ignore[arg-type]
    assert armored is True
    assert stream.read() == data


def test_sniff_whitespace_search_is_bounded() -> None:
    """Only whitespace for ever: detection stops at its bound (binary), it does not read it all."""
    src = io.BytesIO(b" " * (1 << 20))
    _, armored = sniff(src)
    assert armored is False
    assert src.tell() <= 64 * 1024 + 64


def test_vector_file_covers_the_inputs() -> None:
    assert {v["name"]: bytes.fromhex(v["data_hex"]) for v in VECTORS} == VECTOR_INPUTS


# --- issue 12 #7: armor pasted below some text ---


@pytest.mark.parametrize("newline", [b"\n", b"\r\n"])
def test_sniff_finds_armor_after_leading_text(newline: bytes) -> None:
    """An e-mail with words before -----BEGIN was "not an aes-hmac stream"."""
    data = bytes(range(256)) * 2
    mail = newline.join([b"Hi Bob,", b"", b"here is the file -- see below.", b""])
    stream, armored = sniff(Trickle(mail + armor(data).replace(b"\n", newline)))  # type: ignore[arg-type]
    assert armored is True
    assert stream.read() == data


def test_sniff_leading_text_search_is_bounded() -> None:
    """Text with no begin line: detection stops at 64 KiB and hands every byte back."""
    text = b"just some words\n" * 10_000
    src = io.BytesIO(text + armor(b"late"))
    stream, armored = sniff(src)
    assert armored is False
    assert src.tell() <= 64 * 1024 + 64
    assert stream.read() == text + armor(b"late")


def test_sniff_does_not_read_ahead_in_binary_input() -> None:
    """A NUL byte (the stream magic has one) decides binary at the first peek."""
    src = io.BytesIO(b"AESHMAC\x00\x01" + bytes(10_000))
    _, armored = sniff(src)
    assert armored is False
    assert src.tell() == 64


def test_begin_line_must_start_a_line() -> None:
    src = io.BytesIO(b"quoted: " + armor(b"x"))
    _, armored = sniff(src)
    assert armored is False
