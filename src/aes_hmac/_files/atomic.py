"""Atomic output: a named file is written whole or not at all, never through an unsafe symlink.

The one code path of every helper that writes a named file (``encrypt_file``, ``decrypt_file``,
key-slot edits, ``encrypt_tree``, importers, ``open(path, "wb")``, the fsspec integration, the
CLI). ``PendingFile`` is the output of the writer lifecycle (``lifecycle``): on Linux a file
without a name (``O_TMPFILE``) in the destination folder, linked in only by ``commit``, so
nothing (no partial output, no plaintext) is left under any name by an exception, a signal or
even SIGKILL; elsewhere a named temporary file beside the destination, removed on failure, and
this tool's own stale ones (left by a kill) removed the next time that target is written.
"""

from __future__ import annotations

import builtins
import errno
import os
import re
import secrets
import stat
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from typing import BinaryIO, Final

from .._stream.io import StrPath, fs_path

_TMP_MARK: Final = ".aes-hmac-tmp-"
"""In the name of every temporary output, so a leftover is recognisable."""
_TMP_ATTEMPTS: Final = 8
"""Fresh temporary names tried before giving up (48 random bits each: a clash is a planted file)."""
_MAX_LINKS: Final = 40
"""Symlinks followed in a row before giving up, as the kernel does (``ELOOP``)."""
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_TMP_HEX: Final = 12
"""Hex digits after ``_TMP_MARK`` (``secrets.token_hex(6)``)."""
_NO_TMPFILE: Final = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT})
"""``O_TMPFILE`` refused by the file system or kernel (``EISDIR``: kernels before 3.11; the
others: file systems without it, no /proc): fall back to a named temporary file."""
_PROC_FDS: Final = "/proc/self/fd"
"""Where a nameless file is found to be linked in."""
_RUN_STARTED_NS: Final = time.time_ns()
"""A temporary file last modified before this was not written by this run: if it is this tool's
and the user's, it was left by a kill and may go (fallback path only)."""


def _fsync_dir(folder: str, dir_fd: int | None = None) -> None:
    if dir_fd is not None:
        with suppress(OSError):
            os.fsync(dir_fd)
        return
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


class PendingFile:
    """An output being written for ``dst_path``: ``file`` to write, then ``commit()`` to make it
    appear there whole, or ``discard()`` (also on garbage collection) to drop it.

    On Linux the file has no name until ``commit`` links it in (``O_TMPFILE``), so a kill leaves
    nothing; elsewhere it is a named temporary file beside the destination. The guarantees are
    those of ``atomic_output``, which is this class in a ``with`` block.
    """

    def __init__(self, dst_path: StrPath, overwrite: bool = False, name: str = "dst_path") -> None:
        self._done = True  # until there is a file: nothing for __del__ to drop
        dst = fs_path(dst_path, name)
        target, mode = _existing_target(dst, name)
        if not overwrite and os.path.lexists(dst):
            raise FileExistsError(f"{dst} exists (pass overwrite=True to replace it)")
        self._dst, self._target, self._overwrite = dst, target, overwrite
        self._folder = os.path.dirname(target)
        self._dir_fd: int | None = None  # set by ``at``: names are relative to that folder
        self._open(mode)

    @classmethod
    def at(cls, folder_fd: int, name: str, overwrite: bool, shown: str) -> PendingFile:
        """An output for the entry ``name`` of the open folder ``folder_fd`` (``dir_fd``): every
        call is relative to it, so no path is resolved again. Mode 0600, whatever was there.
        The caller checks the entry (``atomic_output_at``); ``shown`` is what messages name."""
        self = cls.__new__(cls)
        self._done = True
        self._dst, self._target, self._overwrite = shown, name, overwrite
        self._folder, self._dir_fd = ".", folder_fd
        self._open(None)
        return self

    def _open(self, mode: int | None) -> None:
        """Create the file, give it ``mode`` (else 0600) and open ``file`` on it."""
        self._tmp = ""  # the temporary file's name on the fallback path; "" while nameless
        fd = self._create()
        try:
            if mode is not None:
                os.chmod(fd, mode)
            self.file: BinaryIO = builtins.open(fd, "wb")
        except BaseException:
            os.close(fd)
            self._remove_tmp()
            raise
        self._done = False

    def __repr__(self) -> str:
        return f"<PendingFile for {self._dst!r}>"

    def _create(self) -> int:
        """A file without a name in the destination folder, or else a fresh temporary name.

        A failure names the destination (``EROFS``, ``EACCES``): the temporary file it was
        about was never created, and is no business of the caller's.
        """
        fd = _nameless_file(self._folder, self._dst, self._dir_fd)
        if fd is not None:
            return fd
        _remove_stale(self._folder, self._target, self._dir_fd)
        for _ in range(_TMP_ATTEMPTS):
            tmp = os.path.join(self._folder, _temporary_name(self._target))
            try:
                fd = os.open(tmp, _CREATE_FLAGS, 0o600, dir_fd=self._dir_fd)
            except FileExistsError:
                continue  # not ours: never removed
            except OSError as exc:
                raise _about(exc, self._dst) from None
            self._tmp = tmp
            return fd
        raise FileExistsError(f"cannot create a temporary file beside {self._dst}")

    def commit(self, before_commit: Callable[[], None] | None = None) -> None:
        """fsync the data, call ``before_commit``, put the file under its name, fsync the
        folder. Any failure (or exception of ``before_commit``) discards it and is raised."""
        if self._done:
            raise ValueError(f"the output for {self._dst} is already committed or discarded")
        try:
            self.file.flush()
            os.fsync(self.file.fileno())
            if before_commit is not None:
                before_commit()
            if self._tmp:
                self.file.close()  # before the rename: Windows renames no open file
                if self._overwrite:
                    os.replace(self._tmp, self._target, **self._in_folder())
                else:
                    _link_no_clobber(self._tmp, self._target, self._dir_fd)
                self._tmp = ""
            else:
                self._link_in()
        except BaseException:
            self.discard()
            raise
        self._done = True
        with suppress(OSError):
            self.file.close()  # the data is fsynced and in place: nothing left to lose
        _fsync_dir(self._folder, self._dir_fd)

    def _in_folder(self) -> dict[str, int | None]:
        """Both names of a rename relative to the output folder (``at``), else as they are."""
        return {"src_dir_fd": self._dir_fd, "dst_dir_fd": self._dir_fd}

    def _link_in(self) -> None:
        """Give the nameless file its name: straight to the target without ``overwrite`` (a
        link never replaces), else to a fresh temporary name, then renamed over the target."""
        if not self._overwrite:
            try:
                self._link_to(self._target)
            except FileExistsError:
                raise FileExistsError(
                    f"{self._dst} exists (pass overwrite=True to replace it)"
                ) from None
            return
        for _ in range(_TMP_ATTEMPTS):
            tmp = os.path.join(self._folder, _temporary_name(self._target))
            try:
                self._link_to(tmp)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(f"cannot create a temporary file beside {self._dst}")
        try:
            os.replace(tmp, self._target, **self._in_folder())
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp, dir_fd=self._dir_fd)
            raise

    def _link_to(self, name: str) -> None:
        """``linkat`` of ``/proc/self/fd/N`` with ``AT_SYMLINK_FOLLOW``: the way an unprivileged
        process names an ``O_TMPFILE`` file. ``src_dir_fd`` makes Python call ``linkat`` (with
        default arguments it calls ``link``, which links the /proc entry itself: ``EXDEV``)."""
        proc = os.open(_PROC_FDS, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(
                str(self.file.fileno()),
                name,
                src_dir_fd=proc,
                dst_dir_fd=self._dir_fd,
                follow_symlinks=True,
            )
        finally:
            os.close(proc)

    def discard(self) -> None:
        """Drop the output: nothing appears under any name. Never raises (it runs on failure
        paths, where its own error would replace the one that matters)."""
        if self._done:
            return
        self._done = True
        with suppress(OSError, ValueError):
            self.file.close()
        self._remove_tmp()

    def _remove_tmp(self) -> None:
        if self._tmp:
            with suppress(OSError):
                os.unlink(self._tmp, dir_fd=self._dir_fd)
            self._tmp = ""

    def __del__(self) -> None:
        self.discard()


@contextmanager
def atomic_output(
    dst_path: StrPath, overwrite: bool = False, before_commit: Callable[[], None] | None = None
) -> Iterator[BinaryIO]:
    """A binary file to write ``dst_path`` through: either all of it appears there, or nothing.

    Guarantees: the data goes to a file beside the destination that has no name on Linux
    (``O_TMPFILE``; elsewhere a temporary name), is fsynced, then put under ``dst_path`` and the
    folder fsynced; any exception (``SystemExit``, ``KeyboardInterrupt`` and one raised by
    ``before_commit``, called right before that, included) drops it and leaves ``dst_path`` as
    it was; so does a kill on Linux (elsewhere the temporary file of a killed run is removed the
    next time that target is written). Without ``overwrite`` an existing ``dst_path`` is never
    replaced, even one that appears meanwhile (``FileExistsError``). A replaced file keeps its
    permission bits; a new one gets 0600. A folder that cannot be written (read-only, no
    permission) raises the ``OSError`` naming ``dst_path``.

    Symlinks: the target is replaced and the link stays, but never through a link to nothing,
    nor through another user's link in a sticky world-writable folder such as /tmp
    (``ValueError``, as for a destination that is not a regular file: device, FIFO, folder).
    """
    pending = PendingFile(dst_path, overwrite)
    try:
        yield pending.file
    except BaseException:
        pending.discard()
        raise
    pending.commit(before_commit)


def _nameless_file(folder: str, dst: str, dir_fd: int | None = None) -> int | None:
    """A file without a name in ``folder`` (Linux ``O_TMPFILE``) that ``/proc/self/fd`` can link
    in, or ``None`` where that is not available."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag or not sys.platform.startswith("linux"):
        return None
    try:
        fd = os.open(folder, flag | os.O_WRONLY, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in _NO_TMPFILE:
            return None
        raise _about(exc, dst) from None
    if not os.path.exists(os.path.join(_PROC_FDS, str(fd))):  # no /proc: nothing could link it
        os.close(fd)
        return None
    return fd


def _about(exc: OSError, dst: str) -> OSError:
    """``exc`` (the same subclass and errno) naming the destination instead of a temporary file."""
    return OSError(exc.errno, exc.strerror, dst)


def _remove_stale(folder: str, target: str, dir_fd: int | None = None) -> None:
    """Remove this tool's temporary files for ``target`` that a killed run left behind: by the
    name pattern, regular files of the current user, last modified before this run started.
    Best effort: whatever cannot be read or removed stays."""
    pattern = re.compile(
        re.escape(f".{os.path.basename(target)}{_TMP_MARK}") + f"[0-9a-f]{{{_TMP_HEX}}}"
    )
    with suppress(OSError), os.scandir(folder if dir_fd is None else dir_fd) as entries:
        for entry in entries:
            if not pattern.fullmatch(entry.name):
                continue
            with suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if (
                    stat.S_ISREG(st.st_mode)
                    and st.st_uid == _uid()
                    and st.st_mtime_ns < _RUN_STARTED_NS
                ):
                    os.unlink(entry.name if dir_fd is not None else entry.path, dir_fd=dir_fd)


def _uid() -> int:
    """The effective user id (0, as every ``st_uid``, where the platform has none: Windows)."""
    geteuid: Callable[[], int] | None = getattr(os, "geteuid", None)
    return geteuid() if geteuid is not None else 0


def _temporary_name(target: str) -> str:
    return f".{os.path.basename(target)}{_TMP_MARK}{secrets.token_hex(_TMP_HEX // 2)}"


def _link_no_clobber(tmp: str, dst: str, dir_fd: int | None = None) -> None:
    """Move ``tmp`` to ``dst`` unless ``dst`` appeared meanwhile (a hard link never replaces);
    both relative to ``dir_fd`` when given."""
    try:
        os.link(tmp, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except FileExistsError:
        raise FileExistsError(f"{dst} exists (pass overwrite=True to replace it)") from None
    except OSError:
        # File systems without hard links: re-check, then rename (a narrow race remains).
        try:
            os.stat(dst, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            os.replace(tmp, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            return
        raise FileExistsError(f"{dst} exists (pass overwrite=True to replace it)") from None
    os.unlink(tmp, dir_fd=dir_fd)


@contextmanager
def atomic_output_at(
    folder_fd: int,
    name: str,
    overwrite: bool,
    shown: str,
    before_commit: Callable[[], None] | None = None,
) -> Iterator[BinaryIO]:
    """``atomic_output`` for the entry ``name`` of an already opened folder (``dir_fd``).

    For folder runs, whose output folders were opened one component at a time without
    following links: no path is resolved again, so nothing along the way can be swapped for a
    link meanwhile. The entry itself is never followed either: a symlink there is refused
    (``ValueError``), as is anything but a regular file. A replaced file's permission bits are
    not kept: the output is always 0600, never a mode lent by a file someone planted there.
    ``shown`` is the path messages name (as the caller's user gave it).
    """
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            raise ValueError(f"{shown} is a symlink: not followed")
        if not stat.S_ISREG(st.st_mode):
            raise ValueError(f"{shown} is not a regular file")
        if not overwrite:
            raise FileExistsError(f"{shown} exists")
    pending = PendingFile.at(folder_fd, name, overwrite, shown)
    try:
        yield pending.file
    except BaseException:
        pending.discard()
        raise
    pending.commit(before_commit)
