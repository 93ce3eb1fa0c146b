"""The folder manifest format, bytes only: which stream belongs at which path of a batch.

``encrypt_tree`` seals this list as an ordinary stream (FORMAT.md section 4) so that
``decrypt_tree`` can tell a swapped, moved, foreign, dropped, added or replayed file from the
one the batch wrote: each file's 32-byte stream id is authenticated by its header and every
chunk tag, so it names exactly one stream. The plaintext ends with a tag under a key derived
from the manifest stream's own file key with a label no data stream uses, so no data file's
plaintext (whatever bytes an attacker got encrypted) passes as a manifest. This module encodes,
tags, verifies and decodes the plaintext and words the per-file verdicts; opening files and
streams is ``tree_manifest``'s job.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final

from .._errors import ManifestError
from .._primitives import TAG_SIZE, constant_time_equal, hkdf_sha256, hmac_sha256
from .._stream.format import STREAM_ID_SIZE

NAME: Final = ".aes-hmac-manifest"
"""The manifest's file name in a batch's output root; not ``*.ahm``, so never taken for data."""
MAGIC: Final = b"AESHMAC-MANIFEST"
VERSION: Final = 0x01
MAX_PATH: Final = 0xFFFF
"""Longest path in bytes: what the u16 length field holds (a tree walked by descriptors can go
past PATH_MAX, so the format does not stop at it)."""
SUFFIX: Final = b".ahm"
_HEAD: Final = struct.Struct(">16sBI")  # magic, version, entry count
_LENGTH: Final = struct.Struct(">H")
_PREFIX: Final = "bad manifest: "
TAG_LABEL: Final = b"aes-hmac manifest v1"
"""HKDF info of the manifest tag key; no other key of the format is derived with it."""


def path_problem(path: bytes) -> str | None:
    """Why ``path`` is not a canonical manifest path (relative, ``/``-separated, no empty,
    ``.`` or ``..`` component, no NUL, a ``*.ahm`` file name), or None when it is one."""
    if not 1 <= len(path) <= MAX_PATH:
        return f"length {len(path)} not between 1 and {MAX_PATH}"
    if b"\x00" in path:
        return "NUL byte"
    parts = path.split(b"/")
    if any(p in (b"", b".", b"..") for p in parts):
        return "empty, '.' or '..' component"
    if not parts[-1].endswith(SUFFIX) or parts[-1] == SUFFIX:
        return "not a .ahm file name"
    return None


def encode(entries: Mapping[bytes, bytes]) -> bytes:
    """The canonical body of a manifest listing ``entries`` (path -> stream id), untagged."""
    out = [_HEAD.pack(MAGIC, VERSION, len(entries))]
    for path in sorted(entries):
        problem = path_problem(path)
        if problem is not None:
            raise ValueError(f"manifest path {path!r}: {problem}")
        stream_id = entries[path]
        if len(stream_id) != STREAM_ID_SIZE:
            raise ValueError(f"stream id must be {STREAM_ID_SIZE} bytes, got {len(stream_id)}")
        out += [_LENGTH.pack(len(path)), path, stream_id]
    return b"".join(out)


def tag(file_key: bytes, stream_id: bytes, body: bytes) -> bytes:
    """The manifest tag: HMAC-SHA256(HKDF-SHA256(file key, ``TAG_LABEL``), stream id || body).

    The file key is the manifest stream's own (random, known only to the key holders), and only
    a manifest is ever tagged under a key derived with this label: a data stream's plaintext
    cannot carry a valid tag, so chosen plaintext encrypted as a file does not pass as one."""
    return hmac_sha256(hkdf_sha256(file_key, TAG_LABEL), stream_id, body)


def seal(entries: Mapping[bytes, bytes], file_key: bytes, stream_id: bytes) -> bytes:
    """The plaintext of the manifest stream ``stream_id`` (file key ``file_key``): body || tag."""
    body = encode(entries)
    return body + tag(file_key, stream_id, body)


def unseal(plain: bytes, file_key: bytes, stream_id: bytes) -> dict[bytes, bytes]:
    """The entries of a manifest stream's plaintext (FORMAT.md 4.2): the tag verified in
    constant time before any byte of the body is parsed."""
    if len(plain) < TAG_SIZE:
        raise ManifestError(f"{_PREFIX}truncated")
    body, found = plain[:-TAG_SIZE], plain[-TAG_SIZE:]
    if not constant_time_equal(found, tag(file_key, stream_id, body)):
        raise ManifestError(f"{_PREFIX}tag does not verify (not a manifest a batch wrote)")
    return decode(body)


def decode(data: bytes) -> dict[bytes, bytes]:
    """Parse a manifest's body, its tag already verified (FORMAT.md 4.2, checks in its order);
    ``ManifestError`` ``bad manifest: <what>`` on anything but the one canonical encoding."""
    if len(data) < _HEAD.size:
        raise ManifestError(f"{_PREFIX}truncated")
    magic, version, count = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise ManifestError(f"{_PREFIX}not an aes-hmac manifest")
    if version != VERSION:
        raise ManifestError(f"{_PREFIX}unsupported version {version}")
    entries: dict[bytes, bytes] = {}
    pos = _HEAD.size
    previous = b""
    for index in range(count):
        if pos + _LENGTH.size > len(data):
            raise ManifestError(f"{_PREFIX}truncated in entry {index}")
        (length,) = _LENGTH.unpack_from(data, pos)
        pos += _LENGTH.size
        if not 1 <= length <= MAX_PATH:
            raise ManifestError(f"{_PREFIX}path length {length} in entry {index}")
        end = pos + length + STREAM_ID_SIZE
        if end > len(data):
            raise ManifestError(f"{_PREFIX}truncated in entry {index}")
        path = data[pos : pos + length]
        problem = path_problem(path)
        if problem is not None:
            raise ManifestError(f"{_PREFIX}path of entry {index}: {problem}")
        if index and path <= previous:
            raise ManifestError(f"{_PREFIX}entry {index} out of order or repeated")
        entries[path] = data[pos + length : end]
        previous, pos = path, end
    if pos != len(data):
        raise ManifestError(f"{_PREFIX}trailing data at byte {pos}")
    return entries


def mismatch(where: str) -> ManifestError:
    """A file whose stream is not the one the manifest lists at its path."""
    return ManifestError(
        f"{where}: not the file the manifest lists at this path"
        " (swapped, moved, from another batch or an older version)"
    )


def missing(where: str) -> ManifestError:
    """A file the manifest lists that is not in the folder."""
    return ManifestError(f"{where}: listed in the manifest but missing")


def unlisted(where: str) -> ManifestError:
    """A ``*.ahm`` file in the folder that the manifest does not list."""
    return ManifestError(f"{where}: not listed in the manifest (not written by this batch)")


def earlier_unreadable(where: str, exc: BaseException) -> ManifestError:
    """The manifest of an earlier run into the same folder does not open (another password,
    or damage): the files only it listed are not listed any more."""
    return ManifestError(
        f"{where}: the earlier manifest does not open ({exc}); files it listed that this run"
        " did not write are no longer listed"
    )


def absent(where: str) -> ManifestError:
    """The folder has no manifest: checks cannot be skipped by deleting it."""
    return ManifestError(
        f"{where}: manifest missing (a folder written before manifests existed decrypts"
        " only with manifest=False, --no-manifest on the command line)"
    )
