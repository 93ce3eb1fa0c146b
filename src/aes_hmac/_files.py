"""Whole files: atomic output, ``encrypt_file`` / ``decrypt_file``, key-slot edits, inspection.

Every helper that writes a named file writes a temporary file beside it, fsyncs it, renames it
into place and fsyncs the folder; on any failure the temporary file is removed, so no partial
output (and no unauthenticated plaintext) ever appears under the destination name.
"""

from __future__ import annotations

import builtins
import functools
import os
import shutil
import stat
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any, BinaryIO, Final, TypeVar

from ._credential import RawKey, Secret, secret_credential, to_credential
from ._engine import decrypt_stream, encrypt_stream
from ._io import check_file, read_full_bytes, write_all
from ._kdf import (
    DEFAULT_KDF,
    DEFAULT_LIMITS,
    Credential,
    Kdf,
    KdfLimits,
    check_kdf,
    check_limits_arg,
)
from ._parallel import Progress
from ._primitives import IV_SIZE, SALT_SIZE, random_bytes
from ._stream import (
    DEFAULT_CHUNK_SIZE,
    MAX_SLOTS,
    Header,
    StreamInfo,
    chunk_log2_of,
    open_header,
    read_header,
    seal_header,
    seal_slot,
)

StrPath = str | os.PathLike[str]
_COPY_SIZE: Final = 1 << 20
_TMP_MARK: Final = ".aes-hmac-tmp-"


def inspect_stream(file: StrPath | BinaryIO) -> StreamInfo:
    """Read a stream's header without a password: version, chunk size, header size, slot KDFs.

    ``HeaderError`` when the header is malformed. Nothing here is authenticated.
    """
    if isinstance(file, str | os.PathLike):
        with builtins.open(file, "rb") as f:
            return read_header(partial(read_full_bytes, f)).info()
    check_file(file, "file", "read")
    return read_header(partial(read_full_bytes, file)).info()


def _fsync_dir(folder: str) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return  # platforms without directory handles (Windows): rename is as durable as it gets
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _existing_target(dst: str) -> tuple[str, int | None]:
    """Where ``dst`` really is (symlinks followed) and its permission bits if it exists.

    Only a regular file may be replaced: renaming over a device, FIFO, socket or folder would
    destroy the entry instead of writing to it.
    """
    target = os.path.realpath(dst)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target, None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"dst_path {dst} is not a regular file")
    return target, stat.S_IMODE(st.st_mode)


@contextmanager
def atomic_output(dst_path: StrPath, overwrite: bool) -> Iterator[BinaryIO]:
    """Yield a temp file beside ``dst_path``; on success fsync + rename it there, else delete it.

    A symlink is followed: its target is replaced and the link stays. A replaced file keeps its
    permission bits; a new file is created with mode 0600. ``ValueError`` when ``dst_path``
    exists and is not a regular file (device, FIFO, socket, folder).
    """
    dst = os.fspath(dst_path)
    target, mode = _existing_target(dst)
    if not overwrite and os.path.lexists(dst):
        raise FileExistsError(f"{dst} exists (pass overwrite=True to replace it)")
    folder = os.path.dirname(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}{_TMP_MARK}", dir=folder)
    try:
        with builtins.open(fd, "wb") as out:
            if mode is not None:
                os.chmod(out.fileno(), mode)
            yield out
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_no_clobber(tmp, target)
        _fsync_dir(folder)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _link_no_clobber(tmp: str, dst: str) -> None:
    """Move ``tmp`` to ``dst`` unless ``dst`` appeared meanwhile (a hard link never replaces)."""
    try:
        os.link(tmp, dst)
    except FileExistsError:
        raise FileExistsError(f"{dst} exists (pass overwrite=True to replace it)") from None
    except OSError:
        # File systems without hard links: re-check, then rename (a narrow race remains).
        if os.path.lexists(dst):
            raise FileExistsError(f"{dst} exists (pass overwrite=True to replace it)") from None
        os.replace(tmp, dst)
        return
    os.unlink(tmp)


def check_distinct_paths(src_path: StrPath, dst_path: StrPath) -> None:
    src, dst = os.fspath(src_path), os.fspath(dst_path)
    same = os.path.realpath(src) == os.path.realpath(dst)
    if not same and os.path.exists(dst):
        same = os.path.samefile(src, dst)
    if same:
        raise ValueError("src_path and dst_path must be different files")


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
    check_distinct_paths(src_path, dst_path)
    with builtins.open(src_path, "rb") as src, atomic_output(dst_path, overwrite) as out:
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
    check_distinct_paths(src_path, dst_path)
    with builtins.open(src_path, "rb") as src, atomic_output(dst_path, overwrite) as out:
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

_F = TypeVar("_F", bound=Callable[..., None])


def _renamed(old_to_new: dict[str, str]) -> Callable[[_F], _F]:
    """Accept the keyword names of the previous release for one more, with a warning."""

    def wrap(fn: _F) -> _F:
        @functools.wraps(fn)
        def call(*args: Any, **kwargs: Any) -> None:
            used = [old for old in old_to_new if old in kwargs]
            for old in used:
                new = old_to_new[old]
                if new in kwargs:
                    raise TypeError(f"give {new}, not both {new} and {old}")
                kwargs[new] = kwargs.pop(old)
            if used:
                names = ", ".join(f"{old}= (now {old_to_new[old]}=)" for old in used)
                warnings.warn(
                    f"{fn.__name__}: deprecated keyword {names}", DeprecationWarning, stacklevel=2
                )
            fn(*args, **kwargs)

        return call  # type: ignore[return-value]

    return wrap


def _rewrite_slots(
    path: StrPath,
    credential: Credential,
    limits: KdfLimits,
    edit: Callable[[Header, int, bytes], list[bytes]],
) -> None:
    """Open ``path``'s header with ``credential``, let ``edit`` build the new slot list, then
    atomically write new header + the payload bytes copied unchanged (never re-encrypted)."""
    check_limits_arg(limits)
    # atomic_output follows a symlink (the target is edited, so the old secret stops working)
    # and keeps the file's permission bits.
    with builtins.open(path, "rb") as src:
        header = read_header(partial(read_full_bytes, src))
        file_key, index = open_header(header, credential, limits)
        slots = edit(header, index, file_key)
        new_header = seal_header(header.chunk_log2, header.stream_id, file_key, slots)
        with atomic_output(path, overwrite=True) as out:
            write_all(out, new_header)
            shutil.copyfileobj(src, out, _COPY_SIZE)


def _new_slot(header: Header, credential: Credential, file_key: bytes) -> bytes:
    return seal_slot(
        header.prefix, credential, file_key, random_bytes(SALT_SIZE), random_bytes(IV_SIZE)
    )


@_renamed({"old_password": "old", "new_password": "new"})
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

    def edit(header: Header, index: int, file_key: bytes) -> list[bytes]:
        slots = [s.encoded for s in header.slots]
        slots[index] = _new_slot(header, replacement, file_key)
        return slots

    _rewrite_slots(path, opener, limits, edit)


@_renamed({"password": "existing", "new_password": "new"})
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

    def edit(header: Header, index: int, file_key: bytes) -> list[bytes]:
        if len(header.slots) >= MAX_SLOTS:
            raise ValueError(f"a stream holds at most {MAX_SLOTS} key slots")
        return [s.encoded for s in header.slots] + [_new_slot(header, added, file_key)]

    _rewrite_slots(path, opener, limits, edit)


def remove_password(path: StrPath, password: Secret, *, limits: KdfLimits = DEFAULT_LIMITS) -> None:
    """Remove the key slot ``password`` (password, ``PasswordKey`` or ``Key``) opens;
    ``ValueError`` if it is the last slot."""
    opener = secret_credential(password, "password")

    def edit(header: Header, index: int, file_key: bytes) -> list[bytes]:
        if len(header.slots) == 1:
            raise ValueError("cannot remove the last key slot")
        return [s.encoded for i, s in enumerate(header.slots) if i != index]

    _rewrite_slots(path, opener, limits, edit)
