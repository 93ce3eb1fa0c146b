"""A folder batch's manifest on disk: read it, check files against it, seal it.

``manifest`` is the format (bytes only); this is where ``encrypt_tree`` and ``decrypt_tree``
meet files. Every file here is opened through the walker (``walk``): the manifest, the headers
checked against it and the manifest written are entries of the opened input or output root,
every folder on the way opened relative to its parent with ``O_NOFOLLOW``, every file
``O_NOFOLLOW | O_NONBLOCK`` and read only if ``fstat`` says regular file; the manifest is
written with ``atomic_output_at`` inside the opened output root. So a link planted at the
manifest or at a listed path is never followed, and a FIFO there never stalls the run.
"""

from __future__ import annotations

import io
import os

from .._errors import DecryptionError, ManifestError
from .._kdf import DEFAULT_LIMITS, Credential, KdfLimits
from .._primitives import KEY_SIZE, random_bytes
from .._stream.engine import iter_plain, random_iv, seal_chunks, start_stream
from .._stream.format import (
    STREAM_ID_SIZE,
    ChunkCodec,
    Header,
    check_slot_kind,
    chunk_log2_of,
    open_header,
    read_header,
)
from . import manifest as _manifest
from .walk import NotRegularFile, Place, Root, TreeResult, output, source


def rel_of(place: Place) -> bytes:
    """``place``'s path in its batch as the manifest spells it: the file system's bytes of each
    component under the root, joined by ``/``."""
    return b"/".join(os.fsencode(part) for part in (*place.parts, place.name))


def place_of(root: Root, rel: bytes) -> Place:
    """The entry of ``root`` at the manifest path ``rel``."""
    *parts, name = os.fsdecode(rel).split("/")
    return Place(root, tuple(parts), name)


def check_listed(header: Header, stream_id: bytes | None, shown: str) -> None:
    """Refuse a file whose stream is not the one its manifest lists (None: no manifest).

    Stream ids are public (they sit in every header), so a plain comparison leaks nothing."""
    if stream_id is not None and header.stream_id != stream_id:
        raise _manifest.mismatch(shown)


def _stream_id_at(place: Place) -> bytes | None:
    """The stream id in the header at ``place``, or None when nothing readable is there (no
    file, a link, a FIFO, a folder on the way replaced by a link, a damaged header)."""
    try:
        with source(place, None) as (fin, _size):
            return read_header(fin.read).stream_id
    except (OSError, ValueError, DecryptionError):
        return None


def _open(root: Root, credential: Credential, limits: KdfLimits) -> dict[bytes, bytes] | None:
    """The entries of the manifest in ``root`` (None when there is none), every chunk and then
    the manifest tag verified before it is parsed. A FIFO or device there is ``ManifestError``
    without being read, a link the walker's refusal; a stream that does not open raises its own
    error, and one that opens but is not a manifest (any data file under the same password)
    fails the tag."""
    place = Place(root, (), _manifest.NAME)
    try:
        with source(place, None) as (fin, _size):
            header = read_header(fin.read)
            check_slot_kind(header, credential)
            file_key, _ = open_header(header, credential, limits)
            codec = ChunkCodec(file_key, header.prefix, header.chunk_size)
            plain = b"".join(bytes(part) for part, _ in iter_plain(fin, codec, header.size))
    except FileNotFoundError:
        return None
    except NotRegularFile:
        raise ManifestError(f"{place.shown}: not a regular file") from None
    return _manifest.unseal(plain, file_key, header.stream_id)


def read_manifest(root: Root, credential: Credential, limits: KdfLimits) -> dict[bytes, bytes]:
    """The entries of the manifest of the folder a run decrypts; ``ManifestError`` when there
    is none, or the stream's own error when it does not open."""
    entries = _open(root, credential, limits)
    if entries is None:
        raise _manifest.absent(Place(root, (), _manifest.NAME).shown)
    return entries


def earlier_manifest(root: Root, credential: Credential, result: TreeResult) -> dict[bytes, bytes]:
    """What the manifest of an earlier run into ``root`` lists (empty when there is none), so
    the new manifest can keep listing the files that run wrote and this one keeps."""
    try:
        return _open(root, credential, DEFAULT_LIMITS) or {}
    except Exception as exc:
        # Its files stay, unlisted: decrypt_tree will name each of them.
        where = Place(root, (), _manifest.NAME).shown
        result.failures.append((where, _manifest.earlier_unreadable(where, exc)))
        return {}


def seal_manifest(
    root: Root,
    credential: Credential,
    salt: bytes,
    chunk_size: int,
    made: dict[bytes, bytes],
    earlier: dict[bytes, bytes],
    result: TreeResult,
) -> None:
    """Write the batch's manifest into the output ``root``, atomically and last.

    It lists each file whose header now carries the stream id this run drew for it (written) or
    the one the earlier manifest listed (kept), so failed, cancelled and changed files are not
    listed, and neither is anything but a regular file (a link or FIFO at a listed path reads
    as no file). A kept file that is no longer the listed one is a failure. Sealed under the
    batch's credential and salt (no extra KDF run), its plaintext tagged under its own file key.
    """
    entries: dict[bytes, bytes] = {}
    for rel in sorted(made.keys() | earlier.keys()):
        place = place_of(root, rel)
        problem = _manifest.path_problem(rel)
        if problem is not None:  # a path the format cannot hold (over 65,535 bytes)
            result.failures.append(
                (place.shown, ValueError(f"{place.shown}: not listed in the manifest: {problem}"))
            )
            continue
        found = _stream_id_at(place)
        if found is not None and found in (made.get(rel), earlier.get(rel)):
            entries[rel] = found
        elif found is not None and rel not in made:
            result.failures.append((place.shown, _manifest.mismatch(place.shown)))
    where = Place(root, (), _manifest.NAME)
    try:
        stream_id, file_key = random_bytes(STREAM_ID_SIZE), random_bytes(KEY_SIZE)
        header, codec = start_stream(
            [credential],
            chunk_log2=chunk_log2_of(chunk_size),
            stream_id=stream_id,
            file_key=file_key,
            salts=[salt],
            slot_ivs=[random_iv()],
        )
        plain = _manifest.seal(entries, file_key, stream_id)
        with output(where, True, None) as out:
            seal_chunks(io.BytesIO(plain), out, header, codec, workers=1)
    except (OSError, ValueError) as exc:  # the output policy refuses what sits at its name
        result.failures.append((where.shown, exc))
