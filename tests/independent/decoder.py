"""A second, minimal reader of the token and stream formats, written only from docs/FORMAT.md.

It imports nothing from ``aes_hmac``: only ``cryptography`` and the standard library. If the
library and this reader disagree on a vector or a file, either the library or the spec is wrong.
Every failure is a ``FormatError`` whose message follows the spec's tables where they give one.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import string
import struct
import unicodedata
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives import hashes, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

SALT_SIZE = 16
IV_SIZE = 16
TAG_SIZE = 32
BLOCK = 16

TOKEN_MAGIC = 0xA5
TOKEN_VERSION = 1
TOKEN_LABEL = b"aes-hmac token v1"

STREAM_MAGIC = b"AESHMAC\x00"
STREAM_VERSION = 1
PREFIX_SIZE = 42
SLOT_COUNT_MAX = 16
CHUNK_LOG2_MIN = 12
CHUNK_LOG2_MAX = 24
STREAM_LABEL = b"aes-hmac stream v1"
URLSAFE = frozenset(string.ascii_letters + string.digits + "-_")


class FormatError(Exception):
    """Any input this reader refuses; the message follows docs/FORMAT.md."""


@dataclass(frozen=True)
class KdfSpec:
    """A parsed KDF block: id and its integer parameters in spec order."""

    kdf_id: int
    params: tuple[int, ...]


# Section 1.1's table is read from FORMAT.md itself: which KDF each id names and its parameter
# block's layout and size. What each KDF family checks and computes is this reader's own code.
FORMAT_MD = Path(__file__).resolve().parents[2] / "docs" / "FORMAT.md"
_FIELD_CODES = {"u8": "B", "u32": "I"}
_TABLE_ROW = re.compile(r"\| 0x([0-9A-Fa-f]{2}) \| ([^|]+?) \| ([^|]+?) \| (\d+) \|")
RAW, PBKDF2_FAMILY, SCRYPT, ARGON2ID = "none", "PBKDF2", "scrypt", "Argon2id"
"""The KDF families this reader implements, as the table's KDF column starts."""


@dataclass(frozen=True)
class KdfRow:
    """One row of the section 1.1 table."""

    family: str
    """One of RAW, PBKDF2_FAMILY, SCRYPT, ARGON2ID."""
    hash_name: str
    """PBKDF2's HMAC hash as the table names it (``SHA256`` in ``PBKDF2-HMAC-SHA256``), else ''."""
    layout: struct.Struct


def _kdf_table(text: str) -> dict[int, KdfRow]:
    """Section 1.1's table: KDF id -> family, hash and parameter layout (sizes cross-checked)."""
    section = text.split("### 1.1 ", 1)[1].split("\n### ", 1)[0]
    table: dict[int, KdfRow] = {}
    for match in _TABLE_ROW.finditer(section):
        kdf_id, name, block, size = int(match[1], 16), match[2], match[3], int(match[4])
        family = re.split(r"[-: ]", name, maxsplit=1)[0]
        if family not in (RAW, PBKDF2_FAMILY, SCRYPT, ARGON2ID):
            raise RuntimeError(f"FORMAT.md 1.1 id {kdf_id:#04x}: no code here for KDF {name!r}")
        codes = "".join(_FIELD_CODES[kind] for kind in re.findall(r"\b(u8|u32)\b", block))
        layout = struct.Struct(">" + codes)
        if layout.size != size:
            raise RuntimeError(f"FORMAT.md 1.1 id {kdf_id:#04x}: {block!r} is not {size} bytes")
        hash_name = name.rsplit("-", 1)[1] if family == PBKDF2_FAMILY else ""
        table[kdf_id] = KdfRow(family, hash_name, layout)
    return table


KDF_TABLE = _kdf_table(FORMAT_MD.read_text(encoding="utf-8"))
PARAM_SIZES = {kdf_id: row.layout.size for kdf_id, row in KDF_TABLE.items()}


def _hkdf(master: bytes, info: bytes) -> bytes:
    # Section 1.2: HKDF-SHA256, empty salt, 32 bytes.
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"", info=info).derive(master)


def _hmac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), "sha256").digest()


def _cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def _unpad(data: bytes) -> bytes:
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(data) + unpadder.finalize()


def _password_bytes(password: str | bytes) -> bytes:
    if isinstance(password, str):
        return unicodedata.normalize("NFC", password).encode("utf-8")
    return password


U32_MAX = 2**32 - 1
ARGON2_MAX_LANES = 2**24 - 1
PBKDF2_MAX_ITERATIONS = 2**31 - 1


def _in_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise FormatError(
            f"invalid kdf parameters: {name} must be between {low} and {high}, got {value}"
        )


def parse_kdf(kdf_id: int, block: bytes) -> KdfSpec:
    """Decode a parameter block (section 1.1) and check each parameter's valid range in order."""
    row = KDF_TABLE[kdf_id]
    values = row.layout.unpack(block)
    if row.family == PBKDF2_FAMILY:
        (iterations,) = values
        _in_range("iterations", iterations, 1, PBKDF2_MAX_ITERATIONS)
    elif row.family == SCRYPT:
        log2_n, r, p = values
        _in_range("log2_n", log2_n, 1, 63)
        _in_range("r", r, 1, U32_MAX)
        _in_range("p", p, 1, U32_MAX)
        if r * p >= 2**30:
            raise FormatError(f"invalid kdf parameters: r * p must be below 2**30, got {r * p}")
        memory = 128 * r * (1 << log2_n)
        if memory >= 2**63:
            raise FormatError(
                f"invalid kdf parameters: 128 * r * N must be below 2**63, got {memory}"
            )
        if log2_n >= 16 * r:
            raise FormatError(
                f"invalid kdf parameters: log2_n must be below 16 * r = {16 * r}, got {log2_n}"
            )
    elif row.family == ARGON2ID:
        t, m, lanes = values
        _in_range("iterations", t, 1, U32_MAX)
        _in_range("lanes", lanes, 1, ARGON2_MAX_LANES)
        _in_range("memory_kib", m, 8 * lanes, U32_MAX)
    return KdfSpec(kdf_id, values)


@dataclass(frozen=True)
class Limits:
    """Decrypt-side KDF limits (section 1.1), defaults as documented."""

    max_pbkdf2_iterations: int = 20_000_000
    max_memory_bytes: int = 1 << 30
    max_scrypt_p: int = 16
    max_argon2_iterations: int = 64
    max_argon2_lanes: int = 64


DEFAULT_LIMITS = Limits()


def _limit(what: str, value: int, limit: int, verb: str = "exceed") -> None:
    if value > limit:
        raise FormatError(f"kdf limits exceeded: {what} {value} {verb} the limit {limit}")


def check_limits(kdf: KdfSpec, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse a KDF over the limits (section 1.1), before any derivation."""
    family = KDF_TABLE[kdf.kdf_id].family
    if family == PBKDF2_FAMILY:
        _limit("pbkdf2 iterations", kdf.params[0], limits.max_pbkdf2_iterations)
    elif family == SCRYPT:
        log2_n, r, p = kdf.params
        memory = 128 * r * (1 << log2_n)
        if memory > limits.max_memory_bytes:
            raise FormatError(
                f"kdf limits exceeded: kdf memory {memory} bytes exceeds the limit "
                f"{limits.max_memory_bytes}"
            )
        _limit("scrypt p", p, limits.max_scrypt_p, "exceeds")
    elif family == ARGON2ID:
        t, m, lanes = kdf.params
        if m * 1024 > limits.max_memory_bytes:
            raise FormatError(
                f"kdf limits exceeded: kdf memory {m * 1024} bytes exceeds the limit "
                f"{limits.max_memory_bytes}"
            )
        _limit("argon2id iterations", t, limits.max_argon2_iterations)
        _limit("argon2id lanes", lanes, limits.max_argon2_lanes)


def derive(kdf: KdfSpec, password: bytes, salt: bytes) -> bytes:
    """The 32-byte master key of a password KDF (section 1.1)."""
    row = KDF_TABLE[kdf.kdf_id]
    if row.family == PBKDF2_FAMILY:
        algorithm = getattr(hashes, row.hash_name)()
        return PBKDF2HMAC(algorithm, 32, salt, kdf.params[0]).derive(password)
    if row.family == SCRYPT:
        log2_n, r, p = kdf.params
        return Scrypt(salt=salt, length=32, n=1 << log2_n, r=r, p=p).derive(password)
    t, m, lanes = kdf.params
    return Argon2id(salt=salt, length=32, iterations=t, lanes=lanes, memory_cost=m).derive(password)


def _token_bytes(token: str | bytes) -> bytes:
    """Section 2 "Accepted input": binary if the first byte is 0xA5, else canonical base64url."""
    if isinstance(token, bytes) and token[:1] == bytes([TOKEN_MAGIC]):
        return token
    try:
        text = token.decode("ascii") if isinstance(token, bytes) else token
    except UnicodeDecodeError:
        raise FormatError("token is not valid base64") from None
    text = text.strip()
    if not set(text) <= URLSAFE or len(text) % 4 == 1:
        raise FormatError("token is not valid base64")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise FormatError("token is not valid base64") from None
    # Canonical: the unused low bits of the last character must be zero.
    if base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=") != text:
        raise FormatError("token is not valid base64")
    return raw


def decode_token(
    token: str | bytes,
    *,
    password: str | bytes | None = None,
    key: bytes | None = None,
    associated_data: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> str | bytes:
    """Decrypt a token (section 2), following the order of checks table step by step."""
    if (password is None) == (key is None):
        raise ValueError("give exactly one of password and key")
    data = _token_bytes(token)
    if len(data) < 3:
        raise FormatError("token too short")
    if data[0] != TOKEN_MAGIC:
        raise FormatError("wrong magic byte")
    if data[1] != TOKEN_VERSION:
        raise FormatError(f"unsupported token version {data[1]}")
    kdf_id = data[2]
    if kdf_id not in PARAM_SIZES:
        raise FormatError(f"unknown kdf id {kdf_id}")
    p_size = PARAM_SIZES[kdf_id]
    s_size = SALT_SIZE if kdf_id else 0
    header_end = 3 + p_size + s_size
    if len(data) < header_end + IV_SIZE + BLOCK + TAG_SIZE:
        raise FormatError("token too short")
    if (len(data) - header_end - IV_SIZE - TAG_SIZE) % BLOCK:
        raise FormatError("token length is not a whole number of blocks")
    kdf = parse_kdf(kdf_id, data[3 : 3 + p_size])
    secret: bytes
    if kdf_id == 0:
        if key is None:
            raise FormatError("token needs a raw key, not a password")
        secret = key
    else:
        if password is None:
            raise FormatError("token needs a password, not a raw key")
        secret = _password_bytes(password)
    check_limits(kdf, limits)
    master = secret if kdf_id == 0 else derive(kdf, secret, data[3 + p_size : header_end])
    enc_key = _hkdf(master, TOKEN_LABEL + b" encryption")
    mac_key = _hkdf(master, TOKEN_LABEL + b" authentication")
    ad = associated_data or b""
    body, tag = data[:-TAG_SIZE], data[-TAG_SIZE:]
    if not hmac.compare_digest(_hmac(mac_key, body, ad, struct.pack(">Q", len(ad))), tag):
        raise FormatError("authentication failed")
    iv = data[header_end : header_end + IV_SIZE]
    try:
        plain = _unpad(_cbc_decrypt(enc_key, iv, data[header_end + IV_SIZE : -TAG_SIZE]))
    except ValueError:
        raise FormatError("invalid padding") from None
    if plain[:1] == b"\x00":
        return plain[1:]
    if plain[:1] == b"\x01":
        try:
            return plain[1:].decode("utf-8")
        except UnicodeDecodeError:
            raise FormatError("invalid utf-8 text") from None
    raise FormatError("invalid data type byte")


@dataclass(frozen=True)
class Slot:
    """One key slot (section 3.2): KDF, salt, IV, wrapped key, tag and the bytes the tag covers."""

    kdf: KdfSpec
    salt: bytes
    iv: bytes
    wrapped: bytes
    tag: bytes
    signed: bytes


@dataclass(frozen=True)
class Header:
    """A parsed, not yet authenticated stream header (section 3.1)."""

    prefix: bytes
    chunk_size: int
    slots: tuple[Slot, ...]
    signed: bytes
    tag: bytes

    @property
    def size(self) -> int:
        """Bytes from the start of the stream to the first chunk."""
        return len(self.signed) + TAG_SIZE


def parse_header(data: bytes) -> Header:
    """Parse the header (section 3.5 step 1), never trusting a size field before checking it."""

    def need(end: int) -> None:
        if len(data) < end:
            raise FormatError("failed to read header: truncated")

    if data[:1] == bytes([TOKEN_MAGIC]) or data.startswith(b"pQ"):
        raise FormatError("failed to read header: this is an aes-hmac token, not a stream")
    if len(data) < 9 and not (data and STREAM_MAGIC.startswith(data[:8])):
        raise FormatError(
            f"failed to read header: not an aes-hmac stream ({len(data)} bytes, too short)"
        )
    need(9)
    if data[:8] != STREAM_MAGIC:
        raise FormatError("failed to read header: not an aes-hmac stream")
    need(43)
    if data[8] != STREAM_VERSION:
        raise FormatError(f"failed to read header: unsupported version {data[8]}")
    chunk_log2 = data[9]
    if not CHUNK_LOG2_MIN <= chunk_log2 <= CHUNK_LOG2_MAX:
        raise FormatError(f"failed to read header: bad chunk size exponent {chunk_log2}")
    count = data[42]
    if not 1 <= count <= SLOT_COUNT_MAX:
        raise FormatError(f"failed to read header: bad slot count {count}")
    prefix = data[:PREFIX_SIZE]
    pos = 43
    slots = []
    for _ in range(count):
        need(pos + 1)
        kdf_id = data[pos]
        if kdf_id not in PARAM_SIZES:
            raise FormatError(f"failed to read header: unknown kdf id {kdf_id}")
        p_size = PARAM_SIZES[kdf_id]
        need(pos + 1 + p_size)
        try:
            kdf = parse_kdf(kdf_id, data[pos + 1 : pos + 1 + p_size])
        except FormatError as exc:
            detail = str(exc).removeprefix("invalid kdf parameters: ")
            raise FormatError(f"failed to read header: {detail}") from None
        s_size = SALT_SIZE if kdf_id else 0
        start = pos
        pos += 1 + p_size
        need(pos + s_size + IV_SIZE + 32 + TAG_SIZE)
        salt = data[pos : pos + s_size]
        pos += s_size
        iv = data[pos : pos + IV_SIZE]
        wrapped = data[pos + IV_SIZE : pos + IV_SIZE + 32]
        pos += IV_SIZE + 32
        slots.append(Slot(kdf, salt, iv, wrapped, data[pos : pos + TAG_SIZE], data[start:pos]))
        pos += TAG_SIZE
    need(pos + TAG_SIZE)
    return Header(prefix, 1 << chunk_log2, tuple(slots), data[:pos], data[pos : pos + TAG_SIZE])


def open_header(
    header: Header,
    *,
    password: str | bytes | None,
    key: bytes | None,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Find a slot for the caller's secret and return the file key (section 3.5 steps 2-3)."""
    raw_slots = sum(slot.kdf.kdf_id == 0 for slot in header.slots)
    if password is not None and raw_slots == len(header.slots):
        raise FormatError("no password slot: this stream opens with a key")
    if key is not None and raw_slots == 0:
        raise FormatError("no key slot: this stream opens with a password")
    skipped: FormatError | None = None
    for slot in header.slots:
        if slot.kdf.kdf_id == 0:
            if key is None:
                continue
            master = key
        else:
            if password is None:
                continue
            try:
                check_limits(slot.kdf, limits)
            except FormatError as exc:
                skipped = exc
                continue
            master = derive(slot.kdf, _password_bytes(password), slot.salt)
        enc_key = _hkdf(master, STREAM_LABEL + b" slot encryption")
        mac_key = _hkdf(master, STREAM_LABEL + b" slot authentication")
        if not hmac.compare_digest(_hmac(mac_key, header.prefix, slot.signed), slot.tag):
            continue
        file_key = _cbc_decrypt(enc_key, slot.iv, slot.wrapped)
        header_key = _hkdf(file_key, STREAM_LABEL + b" header authentication")
        if hmac.compare_digest(_hmac(header_key, header.signed), header.tag):
            return file_key
        break
    if skipped is not None:
        detail = str(skipped).removeprefix("kdf limits exceeded: ")
        raise FormatError(f"failed to read header: {detail}")
    raise FormatError("wrong password or damaged header")


def _chunk_verifies(
    mac_key: bytes, prefix: bytes, index: int, iv: bytes, body: bytes, chunk: bytes, last: bytes
) -> bool:
    """Section 3.4: TAG_i = HMAC(chunk_mac_key, prefix || u64(i) || last || IV_i || CT_i)."""
    expected = _hmac(mac_key, prefix, struct.pack(">Q", index), last, iv, body)
    return hmac.compare_digest(expected, chunk[-TAG_SIZE:])


TRAILING_SEARCH = 65536


def _trailing_or(
    mac_key: bytes, prefix: bytes, index: int, chunk: bytes, pos: int, message: str
) -> FormatError:
    """Section 3.5 step 4: a failed chunk with a prefix that verifies as the final chunk means
    trailing data; prefixes are 64 bytes or more, multiples of 16, at most 65536 bytes short."""
    for end in range(64, len(chunk) + 1, BLOCK):
        if len(chunk) - end > TRAILING_SEARCH:
            continue
        iv, body = chunk[:IV_SIZE], chunk[IV_SIZE : end - TAG_SIZE]
        tag = chunk[end - TAG_SIZE : end]
        expected = _hmac(mac_key, prefix, struct.pack(">Q", index), b"\x01", iv, body)
        if hmac.compare_digest(expected, tag):
            return FormatError(f"trailing data after the final chunk at byte {pos}")
    return FormatError(message)


def decode_stream(
    data: bytes,
    *,
    password: str | bytes | None = None,
    key: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> bytes:
    """Decrypt a whole stream held in memory (section 3.5), chunk by chunk."""
    return _decode_stream(data, password=password, key=key, limits=limits)[1]


def _decode_stream(
    data: bytes,
    *,
    password: str | bytes | None = None,
    key: bytes | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[bytes, bytes]:
    """``decode_stream`` that also returns the file key it unwrapped: (file key, plaintext)."""
    if (password is None) == (key is None):
        raise ValueError("give exactly one of password and key")
    header = parse_header(data)
    file_key = open_header(header, password=password, key=key, limits=limits)
    enc_key = _hkdf(file_key, STREAM_LABEL + b" chunk encryption")
    mac_key = _hkdf(file_key, STREAM_LABEL + b" chunk authentication")
    step = header.chunk_size + IV_SIZE + TAG_SIZE
    pos = header.size
    if pos == len(data):
        raise FormatError(f"data truncated at byte {pos}")
    out = []
    index = 0
    while True:
        chunk = data[pos : pos + step]
        at_end = pos + len(chunk) == len(data)
        failed = partial(_trailing_or, mac_key, header.prefix, index, chunk, pos)
        if at_end and (len(chunk) < IV_SIZE + BLOCK + TAG_SIZE or len(chunk) % BLOCK):
            raise failed(f"data truncated at byte {pos}")
        iv, body = chunk[:IV_SIZE], chunk[IV_SIZE:-TAG_SIZE]
        verifies = partial(_chunk_verifies, mac_key, header.prefix, index, iv, body, chunk)
        if at_end:
            if verifies(b"\x01"):
                try:
                    out.append(_unpad(_cbc_decrypt(enc_key, iv, body)))
                except ValueError:
                    raise FormatError(f"data damaged at byte {pos}") from None
                return file_key, b"".join(out)
            if verifies(b"\x00"):
                raise FormatError(f"data truncated after byte {pos + len(chunk)}")
            raise failed(f"data damaged at byte {pos}")
        if not verifies(b"\x00"):
            raise failed(f"data damaged at byte {pos}")
        out.append(_cbc_decrypt(enc_key, iv, body))
        pos += step
        index += 1


# Section 4: the folder manifest, a stream whose plaintext lists (path, stream id).
MANIFEST_NAME = ".aes-hmac-manifest"
MANIFEST_MAGIC = b"AESHMAC-MANIFEST"
MANIFEST_VERSION = 1
MANIFEST_PATH_MAX = 65535
MANIFEST_TAG_LABEL = b"aes-hmac manifest v1"
STREAM_ID = slice(10, 42)


def _manifest_error(what: str) -> FormatError:
    return FormatError(f"bad manifest: {what}")


def parse_manifest(plain: bytes) -> dict[bytes, bytes]:
    """Section 4.2: the body (tag already checked), its checks in its table's order."""
    if len(plain) < 21:
        raise _manifest_error("truncated")
    if plain[:16] != MANIFEST_MAGIC:
        raise _manifest_error("not an aes-hmac manifest")
    if plain[16] != MANIFEST_VERSION:
        raise _manifest_error(f"unsupported version {plain[16]}")
    (count,) = struct.unpack(">I", plain[17:21])
    entries: dict[bytes, bytes] = {}
    last = None
    at = 21
    for i in range(count):
        if len(plain) - at < 2:
            raise _manifest_error(f"truncated in entry {i}")
        (size,) = struct.unpack(">H", plain[at : at + 2])
        if size < 1 or size > MANIFEST_PATH_MAX:
            raise _manifest_error(f"path length {size} in entry {i}")
        if len(plain) - at - 2 < size + 32:
            raise _manifest_error(f"truncated in entry {i}")
        path = plain[at + 2 : at + 2 + size]
        parts = path.split(b"/")
        if 0 in path:
            raise _manifest_error(f"path of entry {i}: NUL byte")
        if b"" in parts or b"." in parts or b".." in parts:
            raise _manifest_error(f"path of entry {i}: empty, '.' or '..' component")
        if len(parts[-1]) <= 4 or parts[-1][-4:] != b".ahm":
            raise _manifest_error(f"path of entry {i}: not a .ahm file name")
        if last is not None and path <= last:
            raise _manifest_error(f"entry {i} out of order or repeated")
        entries[path] = plain[at + 2 + size : at + 2 + size + 32]
        last = path
        at += 2 + size + 32
    if at < len(plain):
        raise _manifest_error(f"trailing data at byte {at}")
    return entries


def unseal_manifest(plain: bytes, file_key: bytes, stream_id: bytes) -> dict[bytes, bytes]:
    """Section 4.2: the tag (the last 32 bytes) checked before the body is parsed."""
    if len(plain) < TAG_SIZE:
        raise _manifest_error("truncated")
    body, tag = plain[:-TAG_SIZE], plain[-TAG_SIZE:]
    expected = _hmac(_hkdf(file_key, MANIFEST_TAG_LABEL), stream_id, body)
    if not hmac.compare_digest(expected, tag):
        raise _manifest_error("tag does not verify (not a manifest a batch wrote)")
    return parse_manifest(body)


def decode_manifest(
    data: bytes, *, password: str | bytes | None = None, key: bytes | None = None
) -> dict[bytes, bytes]:
    """Section 4.1: a manifest is a stream; its plaintext is section 4.2."""
    file_key, plain = _decode_stream(data, password=password, key=key)
    return unseal_manifest(plain, file_key, data[STREAM_ID])


def check_folder(files: dict[bytes, bytes], entries: dict[bytes, bytes]) -> list[str]:
    """Section 4.3 steps 2 to 4 over ``files`` (path -> the file's bytes): one line per problem."""
    problems = []
    for path in sorted(files):
        if path not in entries:
            problems.append(f"{path!r}: not listed")
        elif files[path][STREAM_ID] != entries[path]:
            problems.append(f"{path!r}: not the listed stream")
    problems += [f"{path!r}: missing" for path in sorted(entries.keys() - files.keys())]
    return problems
