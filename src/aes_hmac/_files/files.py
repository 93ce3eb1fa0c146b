"""Whole files: ``encrypt_file`` / ``decrypt_file``, key-slot edits, inspection.

Every named file is written through ``atomic_output`` (``atomic``): whole or not at all, so no
partial output (and no unauthenticated plaintext) ever appears under the destination name.
"""

from __future__ import annotations

import builtins
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import BinaryIO, Final

from .. import armor
from .._errors import KdfLimitError
from .._kdf import (
    DEFAULT_KDF,
    DEFAULT_LIMITS,
    Credential,
    Kdf,
    KdfLimits,
    WorkBudget,
    check_kdf,
    check_limits_arg,
)
from .._keys.credentials import RawKey, Secret, secret_credential, to_credential
from .._primitives import IV_SIZE, SALT_SIZE, constant_time_equal, random_bytes
from .._stream.engine import decrypt_stream, encrypt_stream
from .._stream.format import (
    DEFAULT_CHUNK_SIZE,
    MAX_SLOTS,
    Header,
    StreamInfo,
    check_slot_kind,
    chunk_log2_of,
    open_header,
    read_header,
    seal_header,
    seal_slot,
    unwrap_slot,
)
from .._stream.io import (
    StrPath,
    TextPath,
    fs_path,
    locked_for_edit,
    path_or_file,
    read_full_bytes,
    write_all,
)
from .._stream.parallel import Progress
from .atomic import atomic_output, check_output_link

_COPY_SIZE: Final = 1 << 20
_ARMOR_PEEK: Final = 64
"""Bytes looked at to tell an armored file (its begin line, after blank lines) from binary."""


def inspect_stream(file: TextPath | BinaryIO) -> StreamInfo:
    """Read a stream's header without a password: version, chunk size, header size, slot KDFs.

    ``HeaderError`` when the header is malformed. Nothing here is authenticated.
    """
    path = path_or_file(file, "file", "read")
    if path is not None:
        with builtins.open(path, "rb") as f:
            return read_header(partial(read_full_bytes, f)).info()
    return read_header(partial(read_full_bytes, file)).info()  # type: ignore[arg-type]


def check_distinct_paths(src_path: StrPath, dst_path: StrPath) -> None:
    src, dst = fs_path(src_path, "src_path"), fs_path(dst_path, "dst_path")
    same = os.path.realpath(src) == os.path.realpath(dst)
    if not same and os.path.exists(dst):
        same = os.path.samefile(src, dst)
    if same:
        raise ValueError("src_path and dst_path must be different files")


@contextmanager
def file_to_file(
    src_path: StrPath, dst_path: StrPath, overwrite: bool
) -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """(source opened for reading, ``atomic_output`` for ``dst_path``): what every file-to-file
    helper works on, once the two paths are checked to be different files."""
    check_distinct_paths(src_path, dst_path)
    with builtins.open(fs_path(src_path, "src_path"), "rb") as src:
        with atomic_output(dst_path, overwrite) as out:
            yield src, out


def encrypt_file(
    src_path: StrPath,
    dst_path: StrPath,
    password: Secret | None = None,
    *,
    key: RawKey | None = None,
    kdf: Kdf = DEFAULT_KDF,
    overwrite: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Encrypt the file ``src_path`` to ``dst_path`` atomically (temp file, fsync, rename).

    ``password`` and ``key`` as for ``encrypt_stream``. ``FileExistsError`` if ``dst_path``
    exists and not ``overwrite``; ``ValueError`` if both name the same file or ``dst_path`` is
    not a regular file. A symlink ``dst_path`` is followed (its target is replaced); a replaced
    file keeps its mode, a new one gets 0600. On any failure no output remains; the source is
    only ever read.
    """
    to_credential(password, key, kdf=kdf)
    chunk_log2_of(chunk_size)
    with file_to_file(src_path, dst_path, overwrite) as (src, out):
        encrypt_stream(
            src,
            out,
            password,
            key=key,
            kdf=kdf,
            chunk_size=chunk_size,
            workers=workers,
            progress=progress,
            total=os.fstat(src.fileno()).st_size,
        )


def decrypt_file(
    src_path: StrPath,
    dst_path: StrPath,
    password: Secret | None = None,
    *,
    key: RawKey | None = None,
    limits: KdfLimits = DEFAULT_LIMITS,
    overwrite: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
) -> None:
    """Decrypt ``src_path`` to ``dst_path`` atomically; plaintext appears only once all verified.

    Wrong password, damage, truncation or any exception: the temporary file is removed and
    ``dst_path`` is left as it was. ``dst_path`` follows the rules of ``encrypt_file`` (regular
    files only, symlinks followed, mode kept, new files 0600).
    """
    to_credential(password, key)
    with file_to_file(src_path, dst_path, overwrite) as (src, out):
        decrypt_stream(
            src,
            out,
            password,
            key=key,
            limits=limits,
            workers=workers,
            progress=progress,
            total=os.fstat(src.fileno()).st_size,
        )


# --- key-slot edits: the payload is copied unchanged, only the header is rewritten ---


class FileChangedError(RuntimeError):
    """The file a key-slot edit read was replaced by something that does not take the edit
    lock before the edit could be written; nothing was written (try again)."""


Edit = Callable[[Header, list[int], bytes], list[bytes]]
"""edit(header, slots the opener opens, file key) -> the new list of encoded slots."""


def _rewrite_slots(
    path: StrPath,
    credential: Credential,
    limits: KdfLimits,
    edit: Edit,
    *,
    every_slot: bool,
) -> None:
    """Open ``path``'s header with ``credential``, let ``edit`` build the new slot list, then
    atomically write new header + the payload bytes copied unchanged (never re-encrypted).

    Edits of one file are serialised (``locked_for_edit``), and right before the rename the
    header on disk is checked to be the one edited, so two edits at once never undo each other
    (a removal is never lost). ``every_slot``: find every slot the credential opens (removal),
    not only the first.
    """
    check_limits_arg(limits)
    name = fs_path(path, "path")
    # atomic_output follows a symlink (the target is edited, so the old secret stops working)
    # and keeps the file's permission bits; its link policy is checked before any KDF runs.
    check_output_link(name, "path")
    with locked_for_edit(name) as src:
        before = os.fstat(src.fileno())
        armored = armor.looks_armored(src.read(_ARMOR_PEEK))
        src.seek(0)
        stream: BinaryIO = armor.ArmorReader(src) if armored else src  # type: ignore[assignment]
        header = read_header(partial(read_full_bytes, stream))
        check_slot_kind(header, credential)
        if every_slot:
            _check_every_slot_in_limits(header, credential, limits)
        file_key, index = open_header(header, credential, limits)
        opened = [index]
        if every_slot:
            opened += opened_slots(header, credential, limits, file_key, start=index + 1)
        slots = edit(header, opened, file_key)
        new_header = seal_header(header.chunk_log2, header.stream_id, file_key, slots)

        def unchanged() -> None:
            # The same inode, size and modification time as when the lock was taken: no other
            # edit (they all take the lock and replace the file by rename) came in between.
            now = os.stat(name)
            same = os.path.samestat(now, before) and (now.st_size, now.st_mtime_ns) == (
                before.st_size,
                before.st_mtime_ns,
            )
            if not same:
                raise FileChangedError(f"{name} changed during the key-slot edit; try again")

        with atomic_output(name, overwrite=True, before_commit=unchanged) as out:
            # An armored file stays armored: the payload is decoded and encoded again, but
            # never decrypted; only ciphertext passes through here.
            sink: BinaryIO = armor.ArmorWriter(out) if armored else out  # type: ignore[assignment]
            write_all(sink, new_header)
            shutil.copyfileobj(stream, sink, _COPY_SIZE)
            if armored:
                sink.close()


def _check_every_slot_in_limits(header: Header, credential: Credential, limits: KdfLimits) -> None:
    """A removal must try every slot of its kind: one over ``limits`` cannot be tried, so the
    removal is refused (naming the limit) rather than maybe leaving a slot the secret opens."""
    for slot in header.slots:
        if slot.kdf is not None and credential.kdf is not None:
            try:
                limits.check(slot.kdf)
            except KdfLimitError as exc:
                raise exc.prefixed("cannot check every key slot: ") from None


def opened_slots(
    header: Header, credential: Credential, limits: KdfLimits, file_key: bytes, start: int = 0
) -> list[int]:
    """Indexes (from ``start``) of the slots ``credential`` opens to ``file_key``: one KDF run
    per slot of its kind within ``limits`` (others skipped), all charged to one work budget
    (``max_kdf_work``) as opening is; past it, ``KdfLimitError`` saying not every slot could be
    checked (an edit that stopped there could keep a slot the secret opens)."""
    found = []
    budget = WorkBudget(limits)
    for index in range(start, len(header.slots)):
        slot = header.slots[index]
        if (slot.kdf is None) != (credential.kdf is None):
            continue
        if slot.kdf is not None:
            if not _within(limits, slot.kdf):
                continue
            try:
                budget.charge(slot.kdf)
            except KdfLimitError as exc:
                raise exc.prefixed("cannot check every key slot: ") from None
        key = unwrap_slot(header.prefix, slot, credential)
        if key is not None and constant_time_equal(key, file_key):
            found.append(index)
    return found


def _within(limits: KdfLimits, kdf: Kdf) -> bool:
    try:
        limits.check(kdf)
    except KdfLimitError:
        return False
    return True


def _refuse_duplicate(header: Header, added: Credential, limits: KdfLimits, key: bytes) -> None:
    """A second slot for one secret would survive a removal that stops at the first."""
    if opened_slots(header, added, limits, key):
        raise ValueError("new already opens a key slot of this file")


def _new_slot(header: Header, credential: Credential, file_key: bytes) -> bytes:
    return seal_slot(
        header.prefix, credential, file_key, random_bytes(SALT_SIZE), random_bytes(IV_SIZE)
    )


def change_password(
    path: StrPath,
    old: Secret,
    new: Secret,
    *,
    kdf: Kdf = DEFAULT_KDF,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> None:
    """Replace the key slot ``old`` opens by one for ``new``; each is a password (``new``
    stretched by ``kdf``), a ``PasswordKey`` or a ``Key`` (a raw-key slot). The payload bytes are
    copied unchanged: a KDF run and a file copy, never a re-encryption."""
    opener = secret_credential(old, "old")
    replacement = secret_credential(new, "new", check_kdf(kdf))

    def edit(header: Header, opened: list[int], file_key: bytes) -> list[bytes]:
        _refuse_duplicate(header, replacement, limits, file_key)
        # Every slot ``old`` opens goes, so ``old`` stops working; the first is replaced.
        slots = [s.encoded for i, s in enumerate(header.slots) if i not in opened[1:]]
        slots[opened[0]] = _new_slot(header, replacement, file_key)
        return slots

    _rewrite_slots(path, opener, limits, edit, every_slot=True)


def add_password(
    path: StrPath,
    existing: Secret,
    new: Secret,
    *,
    kdf: Kdf = DEFAULT_KDF,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> None:
    """Add a key slot for ``new`` (password, ``PasswordKey`` or ``Key``), authorized by the
    ``existing`` secret of any slot."""
    opener = secret_credential(existing, "existing")
    added = secret_credential(new, "new", check_kdf(kdf))

    def edit(header: Header, opened: list[int], file_key: bytes) -> list[bytes]:
        if len(header.slots) >= MAX_SLOTS:
            raise ValueError(f"a stream holds at most {MAX_SLOTS} key slots")
        _refuse_duplicate(header, added, limits, file_key)
        return [s.encoded for s in header.slots] + [_new_slot(header, added, file_key)]

    _rewrite_slots(path, opener, limits, edit, every_slot=False)


def remove_password(path: StrPath, password: Secret, *, limits: KdfLimits = DEFAULT_LIMITS) -> int:
    """Remove every key slot ``password`` (password, ``PasswordKey`` or ``Key``) opens and return
    how many; ``HeaderError`` if it opens none, ``ValueError`` if no slot would be left.

    Every slot of its kind is tried (one KDF run each), so a duplicate cannot survive; a slot
    whose KDF exceeds ``limits`` cannot be tried, so that refuses the removal (``KdfLimitError``).
    """
    opener = secret_credential(password, "password")
    removed = 0

    def edit(header: Header, opened: list[int], file_key: bytes) -> list[bytes]:
        nonlocal removed
        if len(opened) == len(header.slots):
            raise ValueError("cannot remove the last key slot")
        removed = len(opened)
        return [s.encoded for i, s in enumerate(header.slots) if i not in opened]

    _rewrite_slots(path, opener, limits, edit, every_slot=True)
    return removed
