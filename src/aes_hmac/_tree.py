"""Whole folders: ``encrypt_tree`` / ``decrypt_tree`` with one password derivation per tree.

A batch shares one salt, so every file's password slot wraps its own random file key under the
same derived slot key: the password is stretched once for the whole tree (files of one batch are
linkable as belonging to one batch, as ``PasswordKey`` tokens are; nothing else is shared).
Files run in parallel on any ``concurrent.futures.Executor``; what is sent to it is a
``BatchCredential``, which pickles as the derived slot keys only, never the password.
Each batch ends with a manifest (``_manifest``) binding every file's stream id to its path.
"""

from __future__ import annotations

import builtins
import io
import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import BinaryIO, Final

from . import _manifest
from ._atomic import atomic_output
from ._credential import to_credential
from ._engine import iter_plain, new_stream, resolve_workers, seal_chunks
from ._errors import DecryptionError, HeaderError, ManifestError
from ._io import StrPath, fs_path, write_all
from ._kdf import DEFAULT_KDF, DEFAULT_LIMITS, Credential, Kdf, KdfLimits, check_limits_arg
from ._primitives import SALT_SIZE, random_bytes
from ._stream import (
    DEFAULT_CHUNK_SIZE,
    STREAM_ID_SIZE,
    Header,
    chunk_log2_of,
    open_codec,
    read_header,
)

TreeProgress = Callable[[int, int], None]
"""progress(bytes of all files done so far, bytes of all files)."""

SUFFIX: Final = ".ahm"
"""What ``encrypt_tree`` appends to every file name and ``decrypt_tree`` takes off."""
_EXISTING: Final = ("skip", "error", "overwrite")
_NOT_DERIVED: Final = "wrong password or damaged header"


@dataclass(frozen=True, repr=False, eq=False)
class BatchCredential(Credential):
    """A credential that stretches its password once per (salt, KDF) and keeps the results.

    ``with_kdf`` shares the cache, so ``open_header`` (which asks for each slot's KDF) reuses it.
    Pickling (how an executor ships it to other processes or machines) keeps the derived slot
    master keys and drops the password: a copy opens the files of the batches already derived
    and nothing else. A raw key has nothing to derive, so the raw key itself is what it carries.
    """

    masters: dict[tuple[bytes, Kdf], bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    has_password: bool = True

    @classmethod
    def of(cls, credential: Credential) -> BatchCredential:
        return cls(credential.secret, credential.kdf)

    def __reduce__(self) -> tuple[object, ...]:
        secret = self.secret if self.kdf is None else b""
        return (_restore, (secret, self.kdf, dict(self.masters)))

    def with_kdf(self, kdf: Kdf) -> BatchCredential:
        if kdf == self.kdf:
            return self
        return BatchCredential(self.secret, kdf, self.masters, self.lock, self.has_password)

    def master(self, salt: bytes) -> bytes:
        if self.kdf is None:
            return self.secret
        with self.lock:
            key = self.masters.get((salt, self.kdf))
            if key is None:
                if not self.has_password:
                    # A copy without the password met a salt nobody derived: not ours to open.
                    raise HeaderError(_NOT_DERIVED)
                key = self.masters[salt, self.kdf] = super().master(salt)
            return key


def _restore(secret: bytes, kdf: Kdf | None, masters: dict[tuple[bytes, Kdf], bytes]) -> Credential:
    return BatchCredential(secret, kdf, masters, threading.Lock(), has_password=kdf is None)


@dataclass
class TreeResult:
    """What a tree operation did: files written, files skipped, plaintext bytes, failures."""

    files: int = 0
    skipped: int = 0
    bytes: int = 0
    failures: list[tuple[str, BaseException]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass(frozen=True)
class _Job:
    src: str
    dst: str
    size: int


def _walk(src_dir: str, dst_dir: str, decrypt: bool, result: TreeResult) -> Iterator[_Job]:
    """Every regular file under ``src_dir`` with its mirrored output path, in sorted order.

    Symlinks are never followed (neither to files nor to folders), so nothing outside the tree
    is read; they are reported as failures. ``decrypt`` takes only names ending in ``.ahm``.
    """
    for folder, dirs, files in os.walk(src_dir, followlinks=False):
        dirs.sort()
        rel = os.path.relpath(folder, src_dir)
        for name in sorted(files) + sorted(
            d for d in dirs if os.path.islink(os.path.join(folder, d))
        ):
            path = os.path.join(folder, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                result.failures.append((path, ValueError(f"{path} is a symlink: not followed")))
                continue
            if not stat.S_ISREG(st.st_mode):
                continue
            if decrypt:
                if not name.endswith(SUFFIX) or name == SUFFIX:
                    continue
                out = name[: -len(SUFFIX)]
            else:
                out = name + SUFFIX
            yield _Job(path, os.path.normpath(os.path.join(dst_dir, rel, out)), st.st_size)


def encrypt_one(
    src: str,
    dst: str,
    credential: Credential,
    salt: bytes,
    chunk_size: int,
    overwrite: bool,
    stream_id: bytes,
) -> int:
    """Encrypt one file of a batch atomically: the batch's salt, its own file key, and the
    stream id the batch drew for it (so the manifest can list it, whatever executor runs this).

    A top-level function so process and cluster executors can pickle it.
    """
    workers = 1 if os.path.getsize(src) <= 2 * chunk_size else resolve_workers(None)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with _open_no_follow(src) as fin, atomic_output(dst, overwrite) as out:
        header, codec = new_stream(credential, chunk_size, salt, stream_id)
        return seal_chunks(fin, out, header, codec, workers=workers)


def decrypt_one(
    src: str,
    dst: str,
    credential: Credential,
    limits: KdfLimits,
    overwrite: bool,
    stream_id: bytes | None = None,
) -> int:
    """Decrypt one file atomically; plaintext appears under ``dst`` only once every chunk
    verified, and only if the file is the stream ``stream_id`` its manifest lists (checked
    again here: the file may have been swapped since the batch looked at it).
    A top-level function so process and cluster executors can pickle it."""
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with _open_no_follow(src) as fin, atomic_output(dst, overwrite) as out:
        header = read_header(fin.read)
        _check_listed(header, stream_id, src)
        codec = open_codec(header, credential, limits)
        total = 0
        for plain, _taken in iter_plain(fin, codec, header.size):
            write_all(out, plain)
            total += len(plain)
        return total


def _check_listed(header: Header, stream_id: bytes | None, src: str) -> None:
    """Refuse a file whose stream is not the one its manifest lists (None: no manifest).

    Stream ids are public (they sit in every header), so a plain comparison leaks nothing."""
    if stream_id is not None and header.stream_id != stream_id:
        raise _manifest.mismatch(src)


def _rel(root: str, path: str) -> bytes:
    """``path``'s place in the batch as the manifest spells it: relative, ``/``-separated."""
    return os.fsencode(os.path.relpath(path, root)).replace(os.fsencode(os.sep), b"/")


def _at(root: str, rel: bytes) -> str:
    """The file system path of the manifest path ``rel`` under ``root``."""
    return os.path.join(root, *os.fsdecode(rel).split("/"))


def _open_regular(path: str) -> BinaryIO:
    """Open ``path`` for reading only if it is a regular file: no link followed, and a FIFO or
    device planted there is refused instead of blocking the run (``O_NONBLOCK`` on the open)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ManifestError(f"{path}: not a regular file")
    return builtins.open(fd, "rb")


def _stream_id_at(path: str) -> bytes | None:
    """The stream id in the header at ``path``, or None when nothing readable is there."""
    try:
        with _open_regular(path) as fin:
            return read_header(fin.read).stream_id
    except (OSError, DecryptionError):
        return None


def _read_manifest(root: str, credential: Credential, limits: KdfLimits) -> dict[bytes, bytes]:
    """The entries of the manifest in ``root``, every chunk verified before it is parsed.

    Raises ``ManifestError`` when there is none, or the stream's own error when it does not open.
    """
    path = os.path.join(root, _manifest.NAME)
    try:
        fin = _open_regular(path)
    except FileNotFoundError:
        raise _manifest.absent(path) from None
    with fin:
        header = read_header(fin.read)
        codec = open_codec(header, credential, limits)
        plain = b"".join(bytes(part) for part, _ in iter_plain(fin, codec, header.size))
    return _manifest.decode(plain)


def _earlier_manifest(root: str, credential: Credential, result: TreeResult) -> dict[bytes, bytes]:
    """What the manifest of an earlier run into ``root`` lists (empty when there is none), so
    the new manifest can keep listing the files that run wrote and this one keeps."""
    where = os.path.join(root, _manifest.NAME)
    if not os.path.lexists(where):
        return {}
    try:
        return _read_manifest(root, credential, DEFAULT_LIMITS)
    except Exception as exc:
        # Its files stay, unlisted: decrypt_tree will name each of them.
        result.failures.append((where, _manifest.earlier_unreadable(where, exc)))
        return {}


def _seal_manifest(
    root: str,
    credential: Credential,
    salt: bytes,
    chunk_size: int,
    made: dict[bytes, bytes],
    earlier: dict[bytes, bytes],
    result: TreeResult,
) -> None:
    """Write the batch's manifest into ``root``, atomically and last.

    It lists each file whose header now carries the stream id this run drew for it (written) or
    the one the earlier manifest listed (kept), so failed, cancelled and changed files are not
    listed. A kept file that is no longer the listed one is a failure. Sealed under the batch's
    credential and salt: no extra KDF run.
    """
    entries: dict[bytes, bytes] = {}
    for rel in sorted(made.keys() | earlier.keys()):
        path = _at(root, rel)
        problem = _manifest.path_problem(rel)
        if problem is not None:  # a path the format cannot hold (over 65,535 bytes)
            result.failures.append(
                (path, ValueError(f"{path}: not listed in the manifest: {problem}"))
            )
            continue
        found = _stream_id_at(path)
        if found is not None and found in (made.get(rel), earlier.get(rel)):
            entries[rel] = found
        elif found is not None and rel not in made:
            result.failures.append((path, _manifest.mismatch(path)))
    where = os.path.join(root, _manifest.NAME)
    try:
        header, codec = new_stream(credential, chunk_size, salt)
        with atomic_output(where, True) as out:
            seal_chunks(io.BytesIO(_manifest.encode(entries)), out, header, codec, workers=1)
    except (OSError, ValueError) as exc:  # the output policy refuses what sits at its name
        result.failures.append((where, exc))


def _open_no_follow(path: str) -> BinaryIO:
    """Open a source file for reading, refusing a symlink swapped in after the walk."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    return builtins.open(fd, "rb")


def _prepare_dirs(src_dir: StrPath, dst_dir: StrPath) -> tuple[str, str]:
    given = fs_path(src_dir, "src_dir")
    src, dst = os.path.realpath(given), os.path.realpath(fs_path(dst_dir, "dst_dir"))
    if not os.path.isdir(src):
        raise ValueError(f"src_dir {given} is not a folder")
    if dst == src or dst.startswith(src + os.sep) or src.startswith(dst + os.sep):
        raise ValueError("src_dir and dst_dir must not contain each other")
    os.makedirs(dst, exist_ok=True)
    return src, dst


def _check_existing(existing: str) -> None:
    if existing not in _EXISTING:
        raise ValueError(f"existing must be one of {', '.join(_EXISTING)}, got {existing!r}")


def _wanted(job: _Job, existing: str, result: TreeResult) -> bool:
    """Whether ``job`` runs, given what is at its output; counts a skip or records a refusal.

    An output that is a symlink is always refused: replacing it would write outside the tree.
    """
    if os.path.islink(job.dst):
        result.failures.append((job.src, ValueError(f"{job.dst} is a symlink: not followed")))
        return False
    if existing == "overwrite" or not os.path.lexists(job.dst):
        return True
    if existing == "skip":
        result.skipped += 1
    else:
        result.failures.append((job.src, FileExistsError(f"{job.dst} exists")))
    return False


def _run(
    jobs: Sequence[tuple[_Job, Callable[..., int], tuple[object, ...]]],
    result: TreeResult,
    executor: Executor | None,
    progress: TreeProgress | None,
    stop_on_error: bool,
) -> TreeResult:
    """Run every job on ``executor`` (a thread per CPU when None); one failure stops the
    rest only with ``stop_on_error`` (jobs not yet started are cancelled)."""
    if stop_on_error and result.failures:
        return result
    total = sum(job.size for job, _, _ in jobs)
    done = 0
    own = executor is None
    pool = ThreadPoolExecutor(resolve_workers(None)) if executor is None else executor
    try:
        futures: dict[Future[int], _Job] = {pool.submit(fn, *args): job for job, fn, args in jobs}
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
                result.failures.append((job.src, exc))
                if stop_on_error and not stopped:
                    stopped = True
                    for other in futures:
                        other.cancel()
            done += job.size
            if progress is not None:
                progress(done, total)
    finally:
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

    One password derivation for the whole tree (one salt per batch). Each output is atomic.
    Symlinks are never followed (each is a failure). ``existing``: "error" (a failure for that
    file), "skip", or "overwrite". Failures do not stop the other files unless
    ``stop_on_error``. ``executor`` runs the files (default: a thread per CPU); a process or
    Dask executor receives the derived slot key, never the password. Last, the batch's
    manifest (``.aes-hmac-manifest``) is written: every file written, plus the files an earlier
    run's manifest lists that are still there unchanged (``existing="skip"`` runs).
    """
    _check_existing(existing)
    chunk_log2_of(chunk_size)
    credential = BatchCredential.of(to_credential(password, key, kdf=kdf))
    src, dst = _prepare_dirs(src_dir, dst_dir)
    salt = random_bytes(SALT_SIZE)
    credential.master(salt)  # the one derivation, here, before anything is sent anywhere
    result = TreeResult()
    earlier = _earlier_manifest(dst, credential, result)
    made: dict[bytes, bytes] = {}
    jobs = []
    for job in _walk(src, dst, False, result):
        if not _wanted(job, existing, result):
            continue
        stream_id = made[_rel(dst, job.dst)] = random_bytes(STREAM_ID_SIZE)
        args = (job.src, job.dst, credential, salt, chunk_size, existing == "overwrite", stream_id)
        jobs.append((job, encrypt_one, args))
    _run(jobs, result, executor, progress, stop_on_error)
    _seal_manifest(dst, credential, salt, chunk_size, made, earlier, result)
    return result


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
    manifest: bool = True,
) -> TreeResult:
    """Decrypt every ``*.ahm`` file under ``src_dir`` to ``dst_dir/<same path without .ahm>``.

    Headers are read here first and each distinct (salt, KDF) derived once, so a tree made by
    ``encrypt_tree`` costs one derivation; the workers get the derived slot keys, never the
    password. Other arguments as for ``encrypt_tree``; each output appears only once verified.

    The batch's manifest is opened first: a file that is not the stream it lists at that path,
    a listed file that is missing and an unlisted ``*.ahm`` file are failures naming the path,
    and none of them is decrypted; with no manifest (or one that does not open) nothing is.
    ``manifest=False`` skips these checks, for folders written before manifests existed.
    """
    _check_existing(existing)
    check_limits_arg(limits)
    credential = BatchCredential.of(to_credential(password, key))
    src, dst = _prepare_dirs(src_dir, dst_dir)
    result = TreeResult()
    listed: dict[bytes, bytes] | None = None
    if manifest:
        try:
            listed = _read_manifest(src, credential, limits)
        except Exception as exc:
            result.failures.append((os.path.join(src, _manifest.NAME), exc))
            return result
    seen: set[bytes] = set()
    jobs = []
    for job in _walk(src, dst, True, result):
        stream_id = None
        if listed is not None:
            rel = _rel(src, job.src)
            seen.add(rel)
            stream_id = listed.get(rel)
            if stream_id is None:
                result.failures.append((job.src, _manifest.unlisted(job.src)))
                continue
        if not _wanted(job, existing, result):
            continue
        try:
            with _open_no_follow(job.src) as fin:
                header = read_header(fin.read)
                _check_listed(header, stream_id, job.src)
                open_codec(header, credential, limits)
        except Exception as exc:
            result.failures.append((job.src, exc))
            continue
        args = (job.src, job.dst, credential, limits, existing == "overwrite", stream_id)
        jobs.append((job, decrypt_one, args))
    for rel in sorted((listed or {}).keys() - seen):
        where = _at(src, rel)
        result.failures.append((where, _manifest.missing(where)))
    return _run(jobs, result, executor, progress, stop_on_error)
