"""Atomic output: a named file is written whole or not at all, never through an unsafe symlink.

The one code path of every helper that writes a named file (``encrypt_file``, ``decrypt_file``,
key-slot edits, ``encrypt_tree``, importers, the fsspec integration, the CLI): a temporary file
beside the destination, fsynced, renamed into place, the folder fsynced; on any failure the
temporary file is removed, so no partial output (and no unauthenticated plaintext) ever appears
under the destination name.
"""

from __future__ import annotations

import builtins
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO, Final

from ._io import StrPath, fs_path

_TMP_MARK: Final = ".aes-hmac-tmp-"
"""In the name of every temporary output, so a leftover is recognisable."""
_TMP_ATTEMPTS: Final = 8
"""Fresh temporary names tried before giving up (48 random bits each: a clash is a planted file)."""
_MAX_LINKS: Final = 40
"""Symlinks followed in a row before giving up, as the kernel does (``ELOOP``)."""
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


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


def _shared_folder(folder: str) -> bool:
    """Sticky and world-writable, like /tmp: anyone may plant an entry there."""
    mode = os.stat(folder).st_mode
    return bool(mode & stat.S_ISVTX and mode & stat.S_IWOTH)


def check_output_link(path: StrPath, name: str = "dst_path") -> None:
    """The symlink policy of every output: ``ValueError`` (naming ``name``) for a symlink that
    leads to nothing, or for a symlink in a sticky world-writable folder (/tmp) owned by another
    user, anywhere along a chain of links, or for another user's FIFO, socket or device there at
    its end; a plain file, a missing one and the user's own links pass.

    An output is replaced by name after its links are followed, which the kernel's
    ``protected_symlinks`` cannot see: a link planted in /tmp would otherwise aim an overwrite
    (or a new file) at any file the user can write, and a dangling one would create its target.
    """
    dst = fs_path(path, name)
    current = os.path.abspath(dst)
    for _ in range(_MAX_LINKS):
        try:
            link = os.lstat(current)
        except FileNotFoundError:
            if current == os.path.abspath(dst):
                return  # a new file, no link involved
            raise ValueError(
                f"{name} {dst} is a symlink to nothing: refusing to create a file through it "
                "(remove the link or name its target)"
            ) from None
        folder = os.path.dirname(current)
        if not stat.S_ISLNK(link.st_mode):
            _check_shared_node(link, folder, name, dst)
            return
        if _shared_folder(folder) and link.st_uid != os.geteuid():  # Windows: never shared
            through = "" if current == os.path.abspath(dst) else f" ({current}, on its way)"
            raise ValueError(
                f"{name} {dst} is a symlink owned by another user in a shared folder{through}: "
                "refusing to follow it"
            )
        current = os.path.join(folder, os.readlink(current))
    raise ValueError(f"{name} {dst}: too many levels of symlinks")


def _check_shared_node(node: os.stat_result, folder: str, name: str, dst: str) -> None:
    """A FIFO, socket or device in a shared folder that another user owns may be theirs to
    read: whoever writes into it in place (the CLI does for FIFOs and devices) would hand them
    the data. Regular files and folders are not written in place, so they pass here."""
    mode = node.st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    if _shared_folder(folder) and node.st_uid != os.geteuid():
        kind = "FIFO" if stat.S_ISFIFO(mode) else "socket" if stat.S_ISSOCK(mode) else "device"
        raise ValueError(
            f"{name} {dst} is another user's {kind} in a shared folder: refusing to write to it"
        )


def _existing_target(dst: str, name: str) -> tuple[str, int | None]:
    """Where ``dst`` really is (symlinks followed, ``check_output_link``) and its permission
    bits if it exists.

    Only a regular file may be replaced: renaming over a device, FIFO, socket or folder would
    destroy the entry instead of writing to it.
    """
    check_output_link(dst, name)
    target = os.path.realpath(dst)
    try:
        st = os.stat(target)
    except FileNotFoundError:
        return target, None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{name} {dst} is not a regular file")
    return target, stat.S_IMODE(st.st_mode)


@contextmanager
def atomic_output(
    dst_path: StrPath, overwrite: bool = False, before_commit: Callable[[], None] | None = None
) -> Iterator[BinaryIO]:
    """A binary file to write ``dst_path`` through: either all of it appears there, or nothing.

    Guarantees: the data goes to a temporary file beside the destination, is fsynced, then
    renamed into place and the folder fsynced; any exception (``SystemExit``,
    ``KeyboardInterrupt`` and one raised by ``before_commit``, called right before the rename,
    included) removes the temporary file and leaves ``dst_path`` as it was. Without
    ``overwrite`` an existing ``dst_path`` is never replaced, even one that appears meanwhile
    (``FileExistsError``). A replaced file keeps its permission bits; a new one gets 0600.

    Symlinks: the target is replaced and the link stays, but never through a link to nothing,
    nor through another user's link in a sticky world-writable folder such as /tmp
    (``ValueError``, as for a destination that is not a regular file: device, FIFO, folder).
    """
    dst = fs_path(dst_path, "dst_path")
    target, mode = _existing_target(dst, "dst_path")
    if not overwrite and os.path.lexists(dst):
        raise FileExistsError(f"{dst} exists (pass overwrite=True to replace it)")
    folder = os.path.dirname(target)
    tmp = ""
    try:
        # The name is known before the file exists: whenever a signal lands, cleanup finds it.
        for _ in range(_TMP_ATTEMPTS):
            tmp = os.path.join(folder, _temporary_name(target))
            try:
                fd = os.open(tmp, _CREATE_FLAGS, 0o600)
                break
            except FileExistsError:
                tmp = ""  # not ours: never removed
        else:
            raise FileExistsError(f"cannot create a temporary file beside {dst}")
        with builtins.open(fd, "wb") as out:
            if mode is not None:
                os.chmod(out.fileno(), mode)
            yield out
            out.flush()
            os.fsync(out.fileno())
        if before_commit is not None:
            before_commit()
        if overwrite:
            os.replace(tmp, target)
        else:
            _link_no_clobber(tmp, target)
        _fsync_dir(folder)
    except BaseException:
        if tmp:
            with suppress(FileNotFoundError):
                os.unlink(tmp)
        raise


def _temporary_name(target: str) -> str:
    return f".{os.path.basename(target)}{_TMP_MARK}{secrets.token_hex(6)}"


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
