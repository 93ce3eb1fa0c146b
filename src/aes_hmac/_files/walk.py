"""The folder walker of ``encrypt_tree`` / ``decrypt_tree``: every path on open descriptors.

The walk works on open folder descriptors on both sides: every folder below the two the user
named is opened relative to its parent with ``O_NOFOLLOW``, every source file likewise with
``O_NONBLOCK`` and read only once ``fstat`` says it is a regular file, every output folder made
with ``mkdir(dir_fd=...)`` and opened the same way. So a link planted (or swapped in mid-run) on
either side is refused, never followed, and a FIFO never blocks the run. Links, FIFOs, sockets
and devices in the source are skipped and listed, not failures. The same openers serve every
other file a folder run reads or writes (the batch's manifest, the headers it checks): no file of
a tree is ever opened by path.
"""

from __future__ import annotations

import errno
import io
import os
import platform
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Final, cast

from .._stream.io import StrPath, fs_path
from .atomic import atomic_output_at, check_output_link

SUFFIX: Final = ".ahm"
"""What ``encrypt_tree`` appends to every file name and ``decrypt_tree`` takes off."""


@dataclass
class TreeResult:
    """What a tree operation did: files written, outputs skipped because they existed, plaintext
    bytes, entries of the input that are not regular files (skipped, with why), failures."""

    files: int = 0
    skipped: int = 0
    bytes: int = 0
    failures: list[tuple[str, BaseException]] = field(default_factory=list)
    skipped_entries: list[tuple[str, str]] = field(default_factory=list)
    """(path, reason) of each symlink, FIFO, socket or device of the input: never read."""

    @property
    def ok(self) -> bool:
        return not self.failures


_FOLLOWS_NOT: Final = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_ROOT_FLAGS: Final = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
"""A folder the user named: its own links are followed (the user chose the path)."""
_DIR_FLAGS: Final = _ROOT_FLAGS | _FOLLOWS_NOT | getattr(os, "O_NONBLOCK", 0)
"""Every folder below one the user named: never through a link, never blocking."""
_FILE_FLAGS: Final = os.O_RDONLY | _FOLLOWS_NOT | getattr(os, "O_NONBLOCK", 0)
"""A source file: never through a link; a FIFO opens at once instead of waiting for a writer."""
_SWAPPED: Final = frozenset({errno.ELOOP, errno.ENOTDIR, errno.EMLINK})
"""What ``O_NOFOLLOW``/``O_DIRECTORY`` report for a link or a non-folder (EMLINK: FreeBSD)."""


class NotRegularFile(ValueError):
    """A file of a tree that is not (or no longer) a regular file: refused, never read."""


class RunStopped(Exception):
    """The folder run this file belonged to was interrupted; the file was abandoned."""


class StopFlag:
    """Set when a folder run is interrupted; every file of the run checks it before each chunk
    it reads and before its output is committed. A copy sent to another process is a fresh,
    unset flag: an interrupt reaches worker processes as their own signal."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def __reduce__(self) -> tuple[object, ...]:
        return (StopFlag, ())

    def set(self) -> None:
        self._event.set()

    def check(self) -> None:
        if self._event.is_set():
            raise RunStopped("folder run interrupted")


class _Guarded(io.RawIOBase):
    """A source file that stops being readable once its run is stopped: how an interrupt
    reaches a file in the middle (the engines read one chunk at a time)."""

    def __init__(self, raw: io.FileIO, stop: StopFlag | None) -> None:
        super().__init__()
        self._raw = raw
        self._stop = stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        if self._stop is not None:
            self._stop.check()
        return self._raw.readinto(buffer)

    def close(self) -> None:
        self._raw.close()
        super().close()


@dataclass(frozen=True)
class Root:
    """A folder the user named, as this run opened it. A file's job opens it again by path
    (jobs may run in other processes, which cannot share descriptors) and refuses it unless it
    is still the same folder (device and inode; checked only on the same machine, since a
    shared file system's device numbers differ between hosts)."""

    path: str
    """Its real path, opened again by each job."""
    given: str
    """As the user wrote it: what messages name."""
    side: str
    """ "input" or "output", for messages."""
    dev: int
    ino: int
    host: str

    @classmethod
    def of(cls, path: str, given: str, side: str) -> Root:
        fd = os.open(path, _ROOT_FLAGS)
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        return cls(path, given, side, st.st_dev, st.st_ino, platform.node())

    def open(self) -> int:
        fd = os.open(self.path, _ROOT_FLAGS)
        st = os.fstat(fd)
        if self.host == platform.node() and (st.st_dev, st.st_ino) != (self.dev, self.ino):
            os.close(fd)
            raise ValueError(
                f"{self.side} folder {self.given} was replaced during the run: not followed"
            )
        return fd


@dataclass(frozen=True)
class Place:
    """An entry of a tree: its root, the folders leading to it and its name."""

    root: Root
    parts: tuple[str, ...]
    name: str

    @property
    def shown(self) -> str:
        return os.path.join(self.root.given, *self.parts, self.name)


@dataclass(frozen=True)
class Job:
    src: Place
    dst: Place
    size: int


def _refused(exc: OSError, what: str) -> BaseException:
    """A clear error for a component that is (now) a link or not a folder; others as they are."""
    if exc.errno in _SWAPPED:
        return ValueError(f"{what} is a symlink or not a folder: not followed")
    return exc


def open_folder(root: Root, parts: tuple[str, ...]) -> int:
    """A descriptor of ``root/parts...``, every component opened without following links."""
    fd = root.open()
    for i, part in enumerate(parts):
        try:
            child = os.open(part, _DIR_FLAGS, dir_fd=fd)
        except OSError as exc:
            shown = os.path.join(root.given, *parts[: i + 1])
            raise _refused(exc, f"{root.side} folder {shown}") from None
        finally:
            os.close(fd)
        fd = child
    return fd


@contextmanager
def folder(root: Root, parts: tuple[str, ...]) -> Iterator[int]:
    fd = open_folder(root, parts)
    try:
        yield fd
    finally:
        os.close(fd)


def open_file_at(folder_fd: int, name: str, shown: str) -> io.FileIO:
    """Open a file of an open folder for reading: never through a link, and read only if
    ``fstat`` says regular file (a FIFO swapped in after the walk would otherwise block
    forever: ``NotRegularFile``)."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno in _SWAPPED:
            raise ValueError(f"{shown} is a symlink: not followed") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFile(f"{shown} is not a regular file any more: not read")
        os.set_blocking(fd, True)
        return io.FileIO(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def source(place: Place, stop: StopFlag | None) -> Iterator[tuple[BinaryIO, int]]:
    """A file of a tree opened for reading (a job's source, or a file a run checks), guarded by
    the run's stop flag, and its size."""
    with folder(place.root, place.parts) as fd:
        raw = open_file_at(fd, place.name, place.shown)
    with _Guarded(raw, stop) as guarded:
        yield cast(BinaryIO, guarded), os.fstat(raw.fileno()).st_size


@contextmanager
def output(place: Place, overwrite: bool, stop: StopFlag | None) -> Iterator[BinaryIO]:
    """The atomic output of a job (or the batch's manifest), in its output folder opened without
    following links; an interrupted run never commits it."""
    with (
        folder(place.root, place.parts) as fd,
        atomic_output_at(
            fd, place.name, overwrite, place.shown, None if stop is None else stop.check
        ) as out,
    ):
        yield out


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink, not followed"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "not a regular file"


def _make_folder(parent_fd: int, name: str, shown: str) -> int:
    """Create (if missing) and open an output folder without following a link planted there."""
    try:
        os.mkdir(name, dir_fd=parent_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        raise _refused(exc, f"output folder {shown}") from None


def walk(src: Root, dst: Root, decrypt: bool, result: TreeResult) -> Iterator[tuple[Job, int, int]]:
    """Every regular file under ``src`` with its mirrored output, in sorted order, with the open
    descriptors of its source and output folders (valid until the next item).

    Every folder is recreated in the output, empty ones included. Links, FIFOs, sockets and
    devices are listed in ``result.skipped_entries``; ``decrypt`` takes only ``*.ahm`` files.
    """
    with folder(src, ()) as sfd, folder(dst, ()) as dfd:
        yield from _walk_folder(src, dst, (), sfd, dfd, decrypt, result)


def _walk_folder(
    src: Root,
    dst: Root,
    parts: tuple[str, ...],
    sfd: int,
    dfd: int,
    decrypt: bool,
    result: TreeResult,
) -> Iterator[tuple[Job, int, int]]:
    with os.scandir(sfd) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        here = Place(src, parts, entry.name)
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed since the listing
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            try:
                child = os.open(entry.name, _DIR_FLAGS, dir_fd=sfd)
            except OSError as exc:
                result.failures.append((here.shown, _refused(exc, f"input folder {here.shown}")))
                continue
            try:
                out = _make_folder(dfd, entry.name, Place(dst, parts, entry.name).shown)
            except (OSError, ValueError) as exc:
                os.close(child)
                result.failures.append((here.shown, exc))
                continue
            try:
                yield from _walk_folder(src, dst, (*parts, entry.name), child, out, decrypt, result)
            finally:
                os.close(child)
                os.close(out)
        elif not stat.S_ISREG(mode):
            result.skipped_entries.append((here.shown, _kind(mode)))
        elif not decrypt:
            target = Place(dst, parts, entry.name + SUFFIX)
            yield Job(here, target, st.st_size), sfd, dfd
        elif entry.name.endswith(SUFFIX) and entry.name != SUFFIX:
            target = Place(dst, parts, entry.name[: -len(SUFFIX)])
            yield Job(here, target, st.st_size), sfd, dfd


def prepare_dirs(src_dir: StrPath, dst_dir: StrPath) -> tuple[Root, Root]:
    """The two folders as opened roots: the input must be a folder, the output passes the
    output-link policy (``check_output_link``: no link to nothing, no other user's link in a
    shared folder such as /tmp) and is created if missing; neither may contain the other."""
    if os.open not in os.supports_dir_fd or not hasattr(os, "O_NOFOLLOW"):
        raise OSError("folder runs need a platform with openat-style dir_fd and O_NOFOLLOW")
    given_src, given_dst = fs_path(src_dir, "src_dir"), fs_path(dst_dir, "dst_dir")
    src = os.path.realpath(given_src)
    if not os.path.isdir(src):
        raise ValueError(f"input folder {given_src} does not exist or is not a folder")
    check_output_link(given_dst, "output folder")
    dst = os.path.realpath(given_dst)
    if dst == src:
        raise ValueError(f"output folder {given_dst} is the input folder {given_src}")
    if os.path.commonpath([src, dst]) == src:
        raise ValueError(f"output folder {given_dst} is inside the input folder {given_src}")
    if os.path.commonpath([src, dst]) == dst:
        raise ValueError(f"input folder {given_src} is inside the output folder {given_dst}")
    os.makedirs(dst, exist_ok=True)
    return Root.of(src, given_src, "input"), Root.of(dst, given_dst, "output")


def wanted(job: Job, dst_fd: int, existing: str, result: TreeResult) -> bool:
    """Whether ``job`` runs, given what is at its output; counts a skip or records a refusal.

    An output that is a symlink is always refused: replacing it would write outside the tree.
    """
    try:
        mode = os.stat(job.dst.name, dir_fd=dst_fd, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return True
    if stat.S_ISLNK(mode):
        result.failures.append(
            (job.src.shown, ValueError(f"{job.dst.shown} is a symlink: not followed"))
        )
        return False
    if not stat.S_ISREG(mode):
        result.failures.append(
            (job.src.shown, ValueError(f"{job.dst.shown} is not a regular file"))
        )
        return False
    if existing == "overwrite":
        return True
    if existing == "skip":
        result.skipped += 1
    else:
        result.failures.append((job.src.shown, FileExistsError(f"{job.dst.shown} exists")))
    return False
