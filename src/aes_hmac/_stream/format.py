"""The stream format: header, key slots and chunk seal/open (docs/FORMAT.md, "stream format").

Only bytes in, bytes out: no file policy and no threads here (``engine`` runs streams). The
header parser reads through a callable; ``FORMATS`` maps each version byte to its parser, so a
format version 2 is one new module plus one line there.
A random 32-byte file key protects the payload; each key slot wraps it under a key derived from
one password or one raw key, so changing a password rewrites the header and never the payload.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from .._errors import HeaderError, KdfLimitError, StreamDamaged
from .._kdf import KDF_RAW, PARAMS_SIZE, Credential, Kdf, KdfLimits, WorkBudget, decode_kdf
from .._primitives import (
    BLOCK_SIZE,
    IV_SIZE,
    KEY_SIZE,
    SALT_SIZE,
    TAG_SIZE,
    BytesLike,
    CbcHmac,
    CbcHmacInto,
    constant_time_equal,
    hkdf_sha256,
    hmac_sha256,
    split_key,
)
from .._token.format import MAGIC as TOKEN_MAGIC

MAGIC: Final = b"AESHMAC\x00"
"""First 8 bytes of every stream; distinct from the token's first byte 0xA5."""
VERSION: Final = 0x01
MIN_CHUNK_LOG2: Final = 12
MAX_CHUNK_LOG2: Final = 24
DEFAULT_CHUNK_SIZE: Final = 1 << 20
"""Plaintext bytes per chunk: large enough to amortize per-chunk costs, small for memory."""
MAX_SLOTS: Final = 16
STREAM_ID_SIZE: Final = 32
PREFIX_SIZE: Final = len(MAGIC) + 1 + 1 + STREAM_ID_SIZE
"""magic || version || chunk_log2 || stream_id: the part of the header chunks are bound to."""
CHUNK_OVERHEAD: Final = IV_SIZE + TAG_SIZE
"""Bytes a chunk adds to its ciphertext: IV before, tag after."""
MIN_FINAL_CHUNK: Final = CHUNK_OVERHEAD + BLOCK_SIZE
"""An encrypted final chunk holds at least one padding block."""

_TOKEN_TEXT: Final = b"pQ"
"""How a token's text form starts: base64 of the token magic 0xA5 and a version below 16."""
TRAILING_SEARCH: Final = 64 * 1024
"""How many bytes after a final chunk, within the chunk that failed, are still recognised as
trailing data (a longer run reads as damage): bounds the search to 4096 tag checks."""
_SLOT_LABEL: Final = b"aes-hmac stream v1 slot"
_CHUNK_LABEL: Final = b"aes-hmac stream v1 chunk"
_HEADER_INFO: Final = b"aes-hmac stream v1 header authentication"
_WRONG: Final = "wrong password or damaged header"
_LAST_FLAG: Final = {False: 0x00, True: 0x01}


@dataclass(frozen=True)
class SlotInfo:
    """What ``inspect_stream`` tells about one key slot without any password."""

    kdf: Kdf | None
    """The slot's KDF and parameters; ``None`` for a raw-key slot."""


@dataclass(frozen=True)
class StreamInfo:
    """What ``inspect_stream`` tells about a stream's header without any password."""

    version: int
    chunk_size: int
    header_size: int
    slots: tuple[SlotInfo, ...]


_SLOT_TAIL: Final = IV_SIZE + KEY_SIZE + TAG_SIZE
"""Every slot ends with iv || wrapped file key || tag, whatever its KDF."""


@dataclass(frozen=True)
class Slot:
    """One parsed key slot; ``encoded`` is its exact bytes, covered by the header tag.

    The IV, wrapped file key and tag are slices of ``encoded`` taken on demand.
    """

    kdf: Kdf | None
    salt: bytes
    encoded: bytes

    @property
    def iv(self) -> bytes:
        return self.encoded[-_SLOT_TAIL : -KEY_SIZE - TAG_SIZE]

    @property
    def wrapped(self) -> bytes:
        return self.encoded[-KEY_SIZE - TAG_SIZE : -TAG_SIZE]

    @property
    def tag(self) -> bytes:
        return self.encoded[-TAG_SIZE:]


@dataclass(frozen=True)
class Header:
    """A parsed, not yet authenticated, stream header.

    ``signed`` is its exact bytes before the tag (prefix, slot count, slots): what the tag covers.
    """

    chunk_log2: int
    stream_id: bytes
    slots: tuple[Slot, ...]
    signed: bytes
    tag: bytes

    @property
    def size(self) -> int:
        return len(self.signed) + TAG_SIZE

    @property
    def chunk_size(self) -> int:
        return 1 << self.chunk_log2

    @property
    def prefix(self) -> bytes:
        return self.signed[:PREFIX_SIZE]

    @property
    def version(self) -> int:
        """The version byte after the magic (every version starts so: ``read_header``)."""
        return self.signed[len(MAGIC)]

    def info(self) -> StreamInfo:
        return StreamInfo(
            self.version, self.chunk_size, self.size, tuple(SlotInfo(s.kdf) for s in self.slots)
        )


def check_chunk_size(chunk_size: int) -> int:
    """``chunk_size`` itself if a stream can use it; ``ValueError`` naming the allowed range."""
    chunk_log2_of(chunk_size)
    return chunk_size


def chunk_log2_of(chunk_size: int) -> int:
    """The header's encoding of ``chunk_size``; ``ValueError`` unless a power of two in range."""
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int):
        raise TypeError(f"chunk_size must be an int, not {type(chunk_size).__name__}")
    log2 = chunk_size.bit_length() - 1
    if chunk_size <= 0 or chunk_size != 1 << log2 or not MIN_CHUNK_LOG2 <= log2 <= MAX_CHUNK_LOG2:
        raise ValueError(
            f"chunk_size must be a power of two from {1 << MIN_CHUNK_LOG2} to "
            f"{1 << MAX_CHUNK_LOG2}, got {chunk_size}"
        )
    return log2


def encode_prefix(chunk_log2: int, stream_id: bytes) -> bytes:
    """magic || version || chunk_log2 || stream_id."""
    if len(stream_id) != STREAM_ID_SIZE:
        raise ValueError(f"stream_id must be {STREAM_ID_SIZE} bytes, got {len(stream_id)}")
    return MAGIC + bytes((VERSION, chunk_log2)) + stream_id


def seal_slot(
    prefix: bytes, credential: Credential, file_key: bytes, salt: bytes, iv: bytes
) -> bytes:
    """Wrap ``file_key`` for ``credential``: kdf_id || params || [salt] || iv || wrapped || tag."""
    if len(file_key) != KEY_SIZE:
        raise ValueError(f"file_key must be {KEY_SIZE} bytes, got {len(file_key)}")
    if len(iv) != IV_SIZE:
        raise ValueError(f"iv must be {IV_SIZE} bytes, got {len(iv)}")
    if credential.kdf is None:
        head = bytes((KDF_RAW,))
    else:
        if len(salt) != SALT_SIZE:
            raise ValueError(f"salt must be {SALT_SIZE} bytes, got {len(salt)}")
        head = bytes((credential.kdf.kdf_id,)) + credential.kdf.encode() + salt
    cipher = CbcHmac(*split_key(credential.master(salt), _SLOT_LABEL))
    body = head + iv + cipher.encrypt_unpadded(iv, file_key)
    return body + cipher.tag(prefix, body)


def unwrap_slot(prefix: bytes, slot: Slot, credential: Credential) -> bytes | None:
    """The file key when ``credential`` opens ``slot`` (a password is stretched with the slot's
    own KDF: one derivation, limits are the caller's business), else ``None``."""
    if (slot.kdf is None) != (credential.kdf is None):
        return None
    slot_credential = credential if slot.kdf is None else credential.with_kdf(slot.kdf)
    cipher = CbcHmac(*split_key(slot_credential.master(slot.salt), _SLOT_LABEL))
    if not cipher.verify(slot.tag, prefix, slot.encoded[:-TAG_SIZE]):
        return None
    return cipher.decrypt_unpadded(slot.iv, slot.wrapped)


def seal_header(chunk_log2: int, stream_id: bytes, file_key: bytes, slots: list[bytes]) -> bytes:
    """The whole header: prefix || slot_count || slots || HMAC(header key, all bytes before)."""
    if not 1 <= len(slots) <= MAX_SLOTS:
        raise ValueError(f"a stream has 1 to {MAX_SLOTS} key slots, got {len(slots)}")
    body = encode_prefix(chunk_log2, stream_id) + bytes((len(slots),)) + b"".join(slots)
    return body + _header_tag(file_key, body)


def _header_tag(file_key: bytes, body: bytes) -> bytes:
    """The header tag: HMAC under a key of its own, derived from the file key."""
    return hmac_sha256(hkdf_sha256(file_key, _HEADER_INFO), body)


Read = Callable[[int], bytes]
"""read(n): up to ``n`` bytes of the stream, fewer only at its end (``io.read_full_bytes``)."""


def _read_exact(read: Read, n: int) -> bytes:
    data = read(n)
    if len(data) != n:
        raise HeaderError("failed to read header: truncated")
    return data


def check_start(start: bytes) -> None:
    """``HeaderError`` unless ``start`` (the first bytes of an input, up to magic and version)
    begins like a stream; the message says what the input looks like instead: a token, an
    input too short to be a stream, or something else. A cut stream stays ``truncated``."""
    if start[:1] == bytes((TOKEN_MAGIC,)) or start.startswith(_TOKEN_TEXT):
        raise HeaderError("failed to read header: this is an aes-hmac token, not a stream")
    if len(start) < len(MAGIC) + 1:
        if start and MAGIC.startswith(start[: len(MAGIC)]):
            raise HeaderError("failed to read header: truncated")
        raise HeaderError(
            f"failed to read header: not an aes-hmac stream ({len(start)} bytes, too short)"
        )
    if start[: len(MAGIC)] != MAGIC:
        raise HeaderError("failed to read header: not an aes-hmac stream")


def read_header(read: Read) -> Header:
    """Parse a stream header through ``read``, dispatching on its version byte (``FORMATS``).

    Exactly the header's bytes are read; ``HeaderError`` for a bad magic or unknown version.
    """
    start = read(len(MAGIC) + 1)
    check_start(start)
    parse = FORMATS.get(start[-1])
    if parse is None:
        raise HeaderError(f"failed to read header: unsupported version {start[-1]}")
    return parse(start, read)


def parse_header_v1(start: bytes, read: Read) -> Header:
    """The rest of a version 1 header after magic and version (``start``); every length is
    checked first: ``HeaderError`` for a bad chunk size, slot count or KDF block, and nothing
    larger than one slot (at most 109 bytes) is ever read on the strength of an unchecked field.
    """
    fixed = start + _read_exact(read, PREFIX_SIZE + 1 - len(start))
    chunk_log2 = fixed[len(MAGIC) + 1]
    if not MIN_CHUNK_LOG2 <= chunk_log2 <= MAX_CHUNK_LOG2:
        raise HeaderError(f"failed to read header: bad chunk size exponent {chunk_log2}")
    count = fixed[PREFIX_SIZE]
    if not 1 <= count <= MAX_SLOTS:
        raise HeaderError(f"failed to read header: bad slot count {count}")
    slots = []
    for _ in range(count):
        kdf_id = _read_exact(read, 1)[0]
        if kdf_id not in PARAMS_SIZE:
            raise HeaderError(f"failed to read header: unknown kdf id {kdf_id}")
        salt_size = 0 if kdf_id == KDF_RAW else SALT_SIZE
        params_size = PARAMS_SIZE[kdf_id]
        rest = _read_exact(read, params_size + salt_size + _SLOT_TAIL)
        kdf: Kdf | None = None
        if kdf_id != KDF_RAW:
            try:
                kdf = decode_kdf(kdf_id, rest[:params_size])
            except (TypeError, ValueError) as exc:
                raise HeaderError(f"failed to read header: {exc}") from None
        encoded = bytes((kdf_id,)) + rest
        slots.append(Slot(kdf, rest[params_size : params_size + salt_size], encoded))
    signed = b"".join([fixed, *(slot.encoded for slot in slots)])
    tag = _read_exact(read, TAG_SIZE)
    return Header(chunk_log2, fixed[len(MAGIC) + 2 : PREFIX_SIZE], tuple(slots), signed, tag)


def open_header(header: Header, credential: Credential, limits: KdfLimits) -> tuple[bytes, int]:
    """Unwrap the file key with ``credential``; returns (file key, index of the slot it opened).

    Only slots of the credential's kind are tried (password slots for a password, raw slots for a
    key), in order. A slot whose KDF exceeds ``limits`` is skipped before any KDF work, and so is
    one that would take the KDF work of this header past ``limits.max_kdf_work`` (one budget for
    all its slots); if nothing opens and a slot was skipped, the error names the last limit that
    skipped one. Otherwise, any failure (no slot opens, or the header tag fails under the
    unwrapped key) is ``HeaderError("wrong password or damaged header")``.
    """
    prefix = header.prefix
    budget = WorkBudget(limits)
    over_limit: KdfLimitError | None = None
    for index, slot in enumerate(header.slots):
        if (slot.kdf is None) != (credential.kdf is None):
            continue
        if slot.kdf is not None:
            try:
                limits.check(slot.kdf)
                budget.charge(slot.kdf)
            except KdfLimitError as exc:
                over_limit = exc
                continue
            slot_credential = credential.with_kdf(slot.kdf)
        else:
            slot_credential = credential
        try:
            master = slot_credential.master(slot.salt)
        except KdfLimitError as exc:  # the system had no memory for this KDF
            raise exc.prefixed("failed to read header: ") from None
        cipher = CbcHmac(*split_key(master, _SLOT_LABEL))
        if not cipher.verify(slot.tag, prefix, slot.encoded[:-TAG_SIZE]):
            continue
        file_key = cipher.decrypt_unpadded(slot.iv, slot.wrapped)
        if not constant_time_equal(_header_tag(file_key, header.signed), header.tag):
            break
        return file_key, index
    if over_limit is not None:
        raise over_limit.prefixed("failed to read header: ")
    raise HeaderError(_WRONG)


def check_slot_kind(header: Header, credential: Credential) -> None:
    """``HeaderError`` naming what the stream opens with when it has no slot of the
    credential's kind (a password for a key-only stream, or the reverse): before any KDF runs.
    Slot kinds are public (``inspect_stream`` shows them), so this tells nothing secret."""
    wants_password = credential.kdf is not None
    if any((slot.kdf is not None) == wants_password for slot in header.slots):
        return
    if wants_password:
        raise HeaderError("no password slot: this stream opens with a key")
    raise HeaderError("no key slot: this stream opens with a password")


def open_codec(header: Header, credential: Credential, limits: KdfLimits) -> ChunkCodec:
    """The codec for a stream's chunks, once ``credential`` opened one of its slots."""
    check_slot_kind(header, credential)
    file_key, _ = open_header(header, credential, limits)
    return ChunkCodec(file_key, header.prefix, header.chunk_size)


def chunk_counter(index: int, last: bool) -> bytes:
    """u64 chunk index || last flag: the per-chunk part of the tag input."""
    if not 0 <= index < 1 << 64:
        raise ValueError(f"chunk index must fit in 64 bits, got {index}")
    return struct.pack(">QB", index, _LAST_FLAG[last])


class ChunkCodec:
    """Seals and opens chunks of one stream: iv || AES-CBC(chunk key, iv, data) || tag.

    tag = HMAC(chunk mac key, prefix || u64 index || last flag || iv || ciphertext); the prefix
    (magic, version, chunk size, stream id) excludes the slots, so a re-key keeps chunks valid.
    Thread-safe: each call builds its own cipher context and copies the keyed HMAC state.
    """

    __slots__ = ("_cipher", "_prefix", "chunk_size")

    def __init__(self, file_key: bytes, prefix: bytes, chunk_size: int) -> None:
        self._cipher = CbcHmacInto(*split_key(file_key, _CHUNK_LABEL))
        self._prefix = prefix
        self.chunk_size = chunk_size

    def __repr__(self) -> str:
        return "<ChunkCodec (keys hidden)>"

    def seal_into(self, index: int, iv: bytes, data: BytesLike, out: bytearray) -> int:
        """Seal a full (non-final) chunk of exactly ``chunk_size`` bytes into ``out``.

        ``out`` needs ``chunk_size + CHUNK_OVERHEAD + 15`` bytes; returns the bytes written.
        """
        n = len(data)
        view = memoryview(out)
        view[:IV_SIZE] = iv
        self._cipher.encrypt_into(iv, data, view[IV_SIZE : IV_SIZE + n + BLOCK_SIZE - 1])
        end = IV_SIZE + n
        view[end : end + TAG_SIZE] = self._cipher.tag(
            self._prefix, chunk_counter(index, False), view[:end]
        )
        return end + TAG_SIZE

    def seal_final(self, index: int, iv: bytes, data: BytesLike) -> bytes:
        """Seal the final chunk (0 to chunk_size - 1 bytes, PKCS7-padded)."""
        body = iv + self._cipher.encrypt(iv, bytes(data))
        return body + self._cipher.tag(self._prefix, chunk_counter(index, True), body)

    def verifies(self, index: int, last: bool, chunk: BytesLike) -> bool:
        """True when ``chunk`` (iv || ct || tag) carries the right tag for (index, last)."""
        view = memoryview(chunk)
        return self._cipher.verify(
            view[-TAG_SIZE:], self._prefix, chunk_counter(index, last), view[:-TAG_SIZE]
        )

    def _failure(self, index: int, offset: int, view: memoryview, message: str) -> StreamDamaged:
        """The error for chunk ``index`` that failed: trailing data when a prefix of it (cut at
        most ``TRAILING_SEARCH`` bytes short, a possible chunk length) verifies as the final
        chunk, since then the stream ended there and bytes were appended; else ``message``."""
        n = len(view)
        first = max(MIN_FINAL_CHUNK, -(-(n - TRAILING_SEARCH) // BLOCK_SIZE) * BLOCK_SIZE)
        ends = range(first, n - n % BLOCK_SIZE + 1, BLOCK_SIZE)
        head = (self._prefix, chunk_counter(index, True))
        if self._cipher.tagged_prefix(head, view, ends) is not None:
            return StreamDamaged(f"trailing data after the final chunk at byte {offset}", offset)
        return StreamDamaged(message, offset)

    def open_into(self, index: int, offset: int, chunk: BytesLike, out: bytearray) -> int:
        """Verify then decrypt a full (non-final) chunk into ``out``; returns plaintext bytes.

        ``StreamDamaged`` at ``offset`` when the tag fails; nothing is decrypted before that.
        """
        view = memoryview(chunk)
        if not self.verifies(index, False, view):
            raise self._failure(index, offset, view, f"data damaged at byte {offset}")
        iv = bytes(view[:IV_SIZE])
        ct = view[IV_SIZE:-TAG_SIZE]
        return self._cipher.decrypt_into(iv, ct, memoryview(out)[: len(ct) + BLOCK_SIZE - 1])

    def open_final(self, index: int, offset: int, chunk: BytesLike) -> bytes:
        """Verify, decrypt and unpad the final chunk; ``StreamDamaged`` on any failure.

        A chunk that verifies as a non-final one means the stream was cut after it: truncated.
        """
        view = memoryview(chunk)
        n = len(view)
        if n < MIN_FINAL_CHUNK or (n - CHUNK_OVERHEAD) % BLOCK_SIZE:
            raise self._failure(index, offset, view, f"data truncated at byte {offset}")
        if not self.verifies(index, True, view):
            if self.verifies(index, False, view):
                raise StreamDamaged(f"data truncated after byte {offset + n}", offset + n)
            raise self._failure(index, offset, view, f"data damaged at byte {offset}")
        try:
            return self._cipher.decrypt(bytes(view[:IV_SIZE]), bytes(view[IV_SIZE:-TAG_SIZE]))
        except ValueError:
            # Unreachable without the key: the tag verified, so only a writer bug gets here.
            raise StreamDamaged(f"data damaged at byte {offset}", offset) from None


FORMATS: Final[dict[int, Callable[[bytes, Read], Header]]] = {VERSION: parse_header_v1}
"""Header parser per stream version byte: the one place readers dispatch on the version."""
