"""The key file text form: ``Key.to_text`` / ``Key.from_text`` (issue 12 #1).

One line, ``aes-hmac-key-1:`` and 43 base64url characters; strict parsing whose errors never
quote the text, since a rejected text may still be (almost) a key.
"""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aes_hmac import Key
from aes_hmac._keys.keys import KEY_TEXT_PREFIX

KEY = bytes(range(32))
TEXT = "aes-hmac-key-1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"


def test_known_text() -> None:
    assert Key(KEY).to_text() == TEXT
    assert Key.from_text(TEXT) == Key(KEY)


@given(st.binary(min_size=32, max_size=32))
def test_round_trip(raw: bytes) -> None:
    text = Key(raw).to_text()
    assert text.startswith(KEY_TEXT_PREFIX)
    assert "\n" not in text and "=" not in text
    assert Key.from_text(text) == Key(raw)
    assert Key.from_text(text + "\n") == Key(raw)
    assert Key.from_text((text + "\r\n").encode()) == Key(raw)


def test_opens_what_it_encrypted() -> None:
    key = Key.generate()
    token = key.encrypt(b"x")
    assert Key.from_text(key.to_text()).decrypt(token) == b"x"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must start with"),
        ("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "must start with"),
        ("aes-hmac-key-2:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8", "must start with"),
        (" " + TEXT, "must start with"),
        (TEXT + "\n\n", "single line"),
        (TEXT + "\nsecond", "single line"),
        (TEXT + " ", "outside base64url"),
        (TEXT[:-1] + "+", "outside base64url"),
        (TEXT + "=", "outside base64url"),
        (TEXT[:-1], "43 base64url characters"),
        (TEXT + "A", "43 base64url characters"),
        (TEXT[:-1] + "9", "not canonical"),  # the last character's unused low bits set
    ],
)
def test_bad_text_is_refused_without_quoting_it(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        Key.from_text(text)
    assert "AAECAwQF" not in str(info.value)


def test_bytes_must_be_ascii_and_type_is_named() -> None:
    with pytest.raises(ValueError, match="ASCII"):
        Key.from_text(TEXT.encode() + b"\xff")
    with pytest.raises(TypeError, match="text must be str or bytes, not int"):
        Key.from_text(42)  # type: ignore[arg-type]


def test_text_is_base64url_of_the_key() -> None:
    raw = bytes([0xFB, 0xFF] * 16)
    encoded = Key(raw).to_text().removeprefix(KEY_TEXT_PREFIX)
    assert "-" in encoded or "_" in encoded
    assert base64.urlsafe_b64decode(encoded + "=") == raw


def test_bad_key_text_carries_no_text_in_its_context() -> None:
    """A non-ASCII byte: the error must not chain a UnicodeDecodeError holding the key text."""
    text = Key.generate().to_text().encode() + "é".encode()
    with pytest.raises(ValueError, match="ASCII") as info:
        Key.from_text(text)
    assert info.value.__context__ is None and info.value.__cause__ is None
