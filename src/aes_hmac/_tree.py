"""Whole folders: ``encrypt_tree`` / ``decrypt_tree`` with one password derivation per tree.

A batch shares one salt, so every file's password slot wraps its own random file key under the
same derived slot key: the password is stretched once for the whole tree (files of one batch are
linkable as belonging to one batch, as ``PasswordKey`` tokens are; nothing else is shared).
Files run in parallel on any ``concurrent.futures.Executor``; what is sent to it is a
``BatchCredential``, which pickles as the derived slot keys only, never the password.

The walk works on open folder descriptors on both sides: every folder below the two the user
named is opened relative to its parent with ``O_NOFOLLOW``, every source file likewise with
``O_NONBLOCK`` and read only once ``fstat`` says it is a regular file, every output folder made
with ``mkdir(dir_fd=...)`` and opened the same way. So a link planted (or swapped in mid-run) on
either side is refused, never followed, and a FIFO never blocks the run. Links, FIFOs, sockets
and devices in the source are skipped and listed, not failures.
"""

from __future__ import annotations

import errno
import io
import os
import platform
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO, Final, cast

from ._atomic import atomic_output_at, check_output_link
from ._credential import BatchCredential, to_credential
from ._engine import iter_plain, new_stream, resolve_workers, seal_chunks
from ._io import StrPath, fs_path, write_all
from ._kdf import DEFAULT_KDF, DEFAULT_LIMITS, Credential, Kdf, KdfLimits, check_limits_arg
from ._primitives import SALT_SIZE, random_bytes
from ._stream import (
    DEFAULT_CHUNK_SIZE,
    chunk_log2_of,
    open_codec,
    read_header,
)

TreeProgress = Callable[[int, int], None]
"""progress(bytes of all files done so far, bytes of all files)."""

SUFFIX: Final = ".ahm"
"""What ``encrypt_tree`` appends to every file name and ``decrypt_tree`` takes off."""
_EXISTING: Final = ("skip", "error", "overwrite")


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
_STOP_GRACE: Final = 5.0
"""Seconds an interrupted run waits for its running files to notice the stop and remove their
temporary files: each checks between chunks (milliseconds); the bound covers a stalled disk."""


class RunStopped(Exception):
    """The folder run this file belonged to was interrupted; the file was abandoned."""


class _StopFlag:
    """Set when a folder run is interrupted; every file of the run checks it before each chunk
    it reads and before its output is committed. A copy sent to another process is a fresh,
    unset flag: an interrupt reaches worker processes as their own signal."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def __reduce__(self) -> tuple[object, ...]:
        return (_StopFlag, ())

    def set(self) -> None:
        self._event.set()

    def check(self) -> None:
        if self._event.is_set():
            raise RunStopped("folder run interrupted")


class _Guarded(io.RawIOBase):
    """A source file that stops being readable once its run is stopped: how an interrupt
    reaches a file in the middle (the engines read one chunk at a time)."""

    def __init__(self, raw: io.FileIO, stop: _StopFlag | None) -> None:
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
class _Root:
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
    def of(cls, path: str, given: str, side: str) -> _Root:
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
class _Place:
    """An entry of a tree: its root, the folders leading to it and its name."""

    root: _Root
    parts: tuple[str, ...]
    name: str

    @property
    def shown(self) -> str:
        return os.path.join(self.root.given, *self.parts, self.name)


@dataclass(frozen=True)
class _Job:
    src: _Place
    dst: _Place
    size: int


def _refused(exc: OSError, what: str) -> BaseException:
    """A clear error for a component that is (now) a link or not a folder; others as they are."""
    if exc.errno in _SWAPPED:
        return ValueError(f"{what} is a symlink or not a folder: not followed")
    return exc


def _open_folder(root: _Root, parts: tuple[str, ...]) -> int:
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
def _folder(root: _Root, parts: tuple[str, ...]) -> Iterator[int]:
    fd = _open_folder(root, parts)
    try:
        yield fd
    finally:
        os.close(fd)


def _open_file_at(folder_fd: int, name: str, shown: str) -> io.FileIO:
    """Open a source file of an open folder: never through a link, and read only if ``fstat``
    says regular file (a FIFO swapped in after the walk would otherwise block forever)."""
    try:
        fd = os.open(name, _FILE_FLAGS, dir_fd=folder_fd)
    except OSError as exc:
        if exc.errno in _SWAPPED:
            raise ValueError(f"{shown} is a symlink: not followed") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError(f"{shown} is not a regular file any more: not read")
        os.set_blocking(fd, True)
        return io.FileIO(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


@contextmanager
def _source(place: _Place, stop: _StopFlag | None) -> Iterator[tuple[BinaryIO, int]]:
    """The source file of a job, guarded by the run's stop flag, and its size."""
    with _folder(place.root, place.parts) as folder:
        raw = _open_file_at(folder, place.name, place.shown)
    with _Guarded(raw, stop) as guarded:
        yield cast(BinaryIO, guarded), os.fstat(raw.fileno()).st_size


@contextmanager
def _output(place: _Place, overwrite: bool, stop: _StopFlag | None) -> Iterator[BinaryIO]:
    """The atomic output of a job, in its output folder opened without following links; an
    interrupted run never commits it."""
    with (
        _folder(place.root, place.parts) as folder,
        atomic_output_at(
            folder, place.name, overwrite, place.shown, None if stop is None else stop.check
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


def _walk(
    src: _Root, dst: _Root, decrypt: bool, result: TreeResult
) -> Iterator[tuple[_Job, int, int]]:
    """Every regular file under ``src`` with its mirrored output, in sorted order, with the open
    descriptors of its source and output folders (valid until the next item).

    Every folder is recreated in the output, empty ones included. Links, FIFOs, sockets and
    devices are listed in ``result.skipped_entries``; ``decrypt`` takes only ``*.ahm`` files.
    """
    with _folder(src, ()) as sfd, _folder(dst, ()) as dfd:
        yield from _walk_folder(src, dst, (), sfd, dfd, decrypt, result)


def _walk_folder(
    src: _Root,
    dst: _Root,
    parts: tuple[str, ...],
    sfd: int,
    dfd: int,
    decrypt: bool,
    result: TreeResult,
) -> Iterator[tuple[_Job, int, int]]:
    with os.scandir(sfd) as listing:
        entries = sorted(listing, key=lambda e: e.name)
    for entry in entries:
        here = _Place(src, parts, entry.name)
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
                out = _make_folder(dfd, entry.name, _Place(dst, parts, entry.name).shown)
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
            target = _Place(dst, parts, entry.name + SUFFIX)
            yield _Job(here, target, st.st_size), sfd, dfd
        elif entry.name.endswith(SUFFIX) and entry.name != SUFFIX:
            target = _Place(dst, parts, entry.name[: -len(SUFFIX)])
            yield _Job(here, target, st.st_size), sfd, dfd


def encrypt_one(
    src: _Place,
    dst: _Place,
    credential: Credential,
    salt: bytes,
    chunk_size: int,
    overwrite: bool,
    stop: _StopFlag | None = None,
) -> int:
    """Encrypt one file of a batch atomically: the batch's salt, its own file key and stream id.

    A top-level function so process and cluster executors can pickle it.
    """
    with _source(src, stop) as (fin, size), _output(dst, overwrite, stop) as out:
        workers = 1 if size <= 2 * chunk_size else resolve_workers(None)
        header, codec = new_stream(credential, chunk_size, salt)
        return seal_chunks(fin, out, header, codec, workers=workers)


def decrypt_one(
    src: _Place,
    dst: _Place,
    credential: Credential,
    limits: KdfLimits,
    overwrite: bool,
    stop: _StopFlag | None = None,
) -> int:
    """Decrypt one file atomically; plaintext appears under ``dst`` only once every chunk
    verified. A top-level function so process and cluster executors can pickle it."""
    with _source(src, stop) as (fin, _size), _output(dst, overwrite, stop) as out:
        header = read_header(fin.read)
        codec = open_codec(header, credential, limits)
        total = 0
        for plain, _taken in iter_plain(fin, codec, header.size):
            write_all(out, plain)
            total += len(plain)
        return total


def _prepare_dirs(src_dir: StrPath, dst_dir: StrPath) -> tuple[_Root, _Root]:
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
    return _Root.of(src, given_src, "input"), _Root.of(dst, given_dst, "output")


def _check_existing(existing: str) -> None:
    if existing not in _EXISTING:
        raise ValueError(f"existing must be one of {', '.join(_EXISTING)}, got {existing!r}")


def _wanted(job: _Job, dst_fd: int, existing: str, result: TreeResult) -> bool:
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


def _run(
    jobs: Sequence[tuple[_Job, Callable[..., int], tuple[object, ...]]],
    result: TreeResult,
    executor: Executor | None,
    progress: TreeProgress | None,
    stop_on_error: bool,
    stop: _StopFlag,
) -> TreeResult:
    """Run every job on ``executor`` (a thread per CPU when None); one failure stops the
    rest only with ``stop_on_error`` (jobs not yet started are cancelled).

    An interrupt (``KeyboardInterrupt`` or any exception here, e.g. a CLI signal) cancels the
    queued jobs, sets ``stop`` so running ones abandon their file between two chunks (their
    atomic outputs leave nothing), waits at most ``_STOP_GRACE`` for them and re-raises.
    """
    if stop_on_error and result.failures:
        return result
    total = sum(job.size for job, _, _ in jobs)
    done = 0
    own = executor is None
    pool = ThreadPoolExecutor(resolve_workers(None)) if executor is None else executor
    futures: dict[Future[int], _Job] = {}
    try:
        for job, fn, args in jobs:
            futures[pool.submit(fn, *args)] = job
        stopped = False
        for future in as_completed(futures):
            job = futures[future]
            if future.cancelled():
                continue
            exc = future.exception()
            if exc is None:
                result.files += 1
                result.bytes += future.result()
            else:
                result.failures.append((job.src.shown, exc))
                if stop_on_error and not stopped:
                    stopped = True
                    for other in futures:
                        other.cancel()
            done += job.size
            if progress is not None:
                progress(done, total)
    except BaseException:
        stop.set()
        running = [f for f in futures if not f.cancel()]
        if own:
            pool.shutdown(wait=False, cancel_futures=True)
        wait(running, timeout=_STOP_GRACE)
        raise
    if own:
        pool.shutdown(wait=True)
    return result


def encrypt_tree(
    src_dir: StrPath,
    dst_dir: StrPath,
    password: object = None,
    *,
    key: object = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    existing: str = "error",
    executor: Executor | None = None,
    progress: TreeProgress | None = None,
    stop_on_error: bool = False,
) -> TreeResult:
    """Encrypt every regular file under ``src_dir`` to ``dst_dir/<same path>.ahm``.

    One password derivation for the whole tree (one salt per batch). Each output is atomic and
    0600. Every folder is recreated, empty ones too. Nothing is followed through a link on
    either side: links, FIFOs, sockets and devices in ``src_dir`` are skipped and listed in
    ``skipped_entries``; a link planted in the output tree is a failure. ``existing``: "error"
    (a failure for that file), "skip", or "overwrite". Failures do not stop the other files
    unless ``stop_on_error``. ``executor`` runs the files (default: a thread per CPU); a process
    or Dask executor receives the derived slot key, never the password. ``KeyboardInterrupt``
    stops the run promptly: queued files are cancelled, running ones abandoned.
    """
    _check_existing(existing)
    chunk_log2_of(chunk_size)
    credential = BatchCredential.of(to_credential(password, key, kdf=kdf))
    src, dst = _prepare_dirs(src_dir, dst_dir)
    salt = random_bytes(SALT_SIZE)
    credential.master(salt)  # the one derivation, here, before anything is sent anywhere
    result = TreeResult()
    stop = _StopFlag()
    jobs = []
    for job, _sfd, dfd in _walk(src, dst, False, result):
        if not _wanted(job, dfd, existing, result):
            continue
        args = (job.src, job.dst, credential, salt, chunk_size, existing == "overwrite", stop)
        jobs.append((job, encrypt_one, args))
    return _run(jobs, result, executor, progress, stop_on_error, stop)


def decrypt_tree(
    src_dir: StrPath,
    dst_dir: StrPath,
    password: object = None,
    *,
    key: object = None,
    limits: KdfLimits = DEFAULT_LIMITS,
    existing: str = "error",
    executor: Executor | None = None,
    progress: TreeProgress | None = None,
    stop_on_error: bool = False,
) -> TreeResult:
    """Decrypt every ``*.ahm`` file under ``src_dir`` to ``dst_dir/<same path without .ahm>``.

    Headers are read here first and each distinct (salt, KDF) derived once, so a tree made by
    ``encrypt_tree`` costs one derivation; the workers get the derived slot keys, never the
    password. Other arguments as for ``encrypt_tree``; each output appears only once verified,
    with mode 0600 (an overwritten file's mode is not kept: it may have been planted).
    """
    _check_existing(existing)
    check_limits_arg(limits)
    credential = BatchCredential.of(to_credential(password, key))
    src, dst = _prepare_dirs(src_dir, dst_dir)
    result = TreeResult()
    stop = _StopFlag()
    jobs = []
    for job, sfd, dfd in _walk(src, dst, True, result):
        if not _wanted(job, dfd, existing, result):
            continue
        try:
            with _open_file_at(sfd, job.src.name, job.src.shown) as fin:
                open_codec(read_header(fin.read), credential, limits)
        except Exception as exc:
            result.failures.append((job.src.shown, exc))
            continue
        args = (job.src, job.dst, credential, limits, existing == "overwrite", stop)
        jobs.append((job, decrypt_one, args))
    return _run(jobs, result, executor, progress, stop_on_error, stop)
