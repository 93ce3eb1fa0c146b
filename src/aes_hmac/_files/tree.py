"""Whole folders: ``encrypt_tree`` / ``decrypt_tree`` with one password derivation per tree.

A batch shares one salt, so every file's password slot wraps its own random file key under the
same derived slot key: the password is stretched once for the whole tree (files of one batch are
linkable as belonging to one batch, as ``PasswordKey`` tokens are; nothing else is shared).
Files run in parallel on any ``concurrent.futures.Executor``; what is sent to it is a
``BatchCredential``, which pickles as the derived slot keys only, never the password.
Every file is found and opened by the walker (``walk``: open folder descriptors, no link
followed on either side). Each batch ends with a manifest (``tree_manifest``) binding every
file's stream id to its path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor, as_completed, wait
from typing import Final

from .._kdf import DEFAULT_KDF, DEFAULT_LIMITS, Credential, Kdf, KdfLimits, check_limits_arg
from .._keys.credentials import BatchCredential, to_credential
from .._primitives import SALT_SIZE, random_bytes
from .._stream.engine import iter_plain, new_stream, seal_chunks
from .._stream.format import (
    DEFAULT_CHUNK_SIZE,
    STREAM_ID_SIZE,
    chunk_log2_of,
    open_codec,
    read_header,
)
from .._stream.io import StrPath, write_all
from .._stream.parallel import resolve_workers
from . import manifest as _manifest
from . import tree_manifest as listing
from .walk import SUFFIX as SUFFIX
from .walk import (
    Job,
    Place,
    StopFlag,
    open_file_at,
    output,
    prepare_dirs,
    source,
    walk,
    wanted,
)
from .walk import RunStopped as RunStopped
from .walk import TreeResult as TreeResult

TreeProgress = Callable[[int, int], None]
"""progress(bytes of all files done so far, bytes of all files)."""

_EXISTING: Final = ("skip", "error", "overwrite")
_STOP_GRACE: Final = 5.0
"""Seconds an interrupted run waits for its running files to notice the stop and remove their
temporary files: each checks between chunks (milliseconds); the bound covers a stalled disk."""


def encrypt_one(
    src: Place,
    dst: Place,
    credential: Credential,
    salt: bytes,
    chunk_size: int,
    overwrite: bool,
    stream_id: bytes,
    stop: StopFlag | None = None,
) -> int:
    """Encrypt one file of a batch atomically: the batch's salt, its own file key, and the
    stream id the batch drew for it (so the manifest can list it, whatever executor runs this).

    A top-level function so process and cluster executors can pickle it.
    """
    with source(src, stop) as (fin, size), output(dst, overwrite, stop) as out:
        workers = 1 if size <= 2 * chunk_size else resolve_workers(None)
        header, codec = new_stream(credential, chunk_size, salt, stream_id)
        return seal_chunks(fin, out, header, codec, workers=workers)


def decrypt_one(
    src: Place,
    dst: Place,
    credential: Credential,
    limits: KdfLimits,
    overwrite: bool,
    stream_id: bytes | None = None,
    stop: StopFlag | None = None,
) -> int:
    """Decrypt one file atomically; plaintext appears under ``dst`` only once every chunk
    verified, and only if the file is the stream ``stream_id`` its manifest lists (checked
    again here: the file may have been swapped since the batch looked at it).
    A top-level function so process and cluster executors can pickle it."""
    with source(src, stop) as (fin, _size), output(dst, overwrite, stop) as out:
        header = read_header(fin.read)
        listing.check_listed(header, stream_id, src.shown)
        codec = open_codec(header, credential, limits)
        total = 0
        for plain, _taken in iter_plain(fin, codec, header.size):
            write_all(out, plain)
            total += len(plain)
        return total


def _check_existing(existing: str) -> None:
    if existing not in _EXISTING:
        raise ValueError(f"existing must be one of {', '.join(_EXISTING)}, got {existing!r}")


def _run(
    jobs: Sequence[tuple[Job, Callable[..., int], tuple[object, ...]]],
    result: TreeResult,
    executor: Executor | None,
    progress: TreeProgress | None,
    stop_on_error: bool,
    stop: StopFlag,
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
    futures: dict[Future[int], Job] = {}
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
    or Dask executor receives the derived slot key, never the password. Last, the batch's
    manifest (``.aes-hmac-manifest``) is written: every file written, plus the files an earlier
    run's manifest lists that are still there unchanged (``existing="skip"`` runs); skipped
    entries are not listed. ``KeyboardInterrupt`` stops the run promptly: queued files are
    cancelled, running ones abandoned, and no manifest is written (an earlier one stays as it
    was, so the files this run committed are not listed until a run completes).
    """
    _check_existing(existing)
    chunk_log2_of(chunk_size)
    credential = BatchCredential.of(to_credential(password, key, kdf=kdf))
    src, dst = prepare_dirs(src_dir, dst_dir)
    salt = random_bytes(SALT_SIZE)
    credential.master(salt)  # the one derivation, here, before anything is sent anywhere
    result = TreeResult()
    earlier = listing.earlier_manifest(dst, credential, result)
    made: dict[bytes, bytes] = {}
    stop = StopFlag()
    jobs = []
    for job, _sfd, dfd in walk(src, dst, False, result):
        if not wanted(job, dfd, existing, result):
            continue
        stream_id = made[listing.rel_of(job.dst)] = random_bytes(STREAM_ID_SIZE)
        overwrite = existing == "overwrite"
        args = (job.src, job.dst, credential, salt, chunk_size, overwrite, stream_id, stop)
        jobs.append((job, encrypt_one, args))
    _run(jobs, result, executor, progress, stop_on_error, stop)  # raises when interrupted
    listing.seal_manifest(dst, credential, salt, chunk_size, made, earlier, result)
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
    password. Other arguments as for ``encrypt_tree``; each output appears only once verified,
    with mode 0600 (an overwritten file's mode is not kept: it may have been planted).

    The batch's manifest is opened first: a file that is not the stream it lists at that path,
    a listed file that is missing and an unlisted ``*.ahm`` file are failures naming the path,
    and none of them is decrypted; with no manifest (or one that does not open) nothing is.
    A link, FIFO or device in the folder is skipped and listed, never counted as an unlisted
    file; one at a listed path leaves that path missing. ``manifest=False`` skips these checks,
    for folders written before manifests existed.
    """
    _check_existing(existing)
    check_limits_arg(limits)
    credential = BatchCredential.of(to_credential(password, key))
    src, dst = prepare_dirs(src_dir, dst_dir)
    result = TreeResult()
    listed: dict[bytes, bytes] | None = None
    if manifest:
        try:
            listed = listing.read_manifest(src, credential, limits)
        except Exception as exc:
            result.failures.append((Place(src, (), _manifest.NAME).shown, exc))
            return result
    seen: set[bytes] = set()
    stop = StopFlag()
    jobs = []
    for job, sfd, dfd in walk(src, dst, True, result):
        stream_id = None
        if listed is not None:
            rel = listing.rel_of(job.src)
            seen.add(rel)
            stream_id = listed.get(rel)
            if stream_id is None:
                result.failures.append((job.src.shown, _manifest.unlisted(job.src.shown)))
                continue
        if not wanted(job, dfd, existing, result):
            continue
        try:
            with open_file_at(sfd, job.src.name, job.src.shown) as fin:
                header = read_header(fin.read)
                listing.check_listed(header, stream_id, job.src.shown)
                open_codec(header, credential, limits)
        except Exception as exc:
            result.failures.append((job.src.shown, exc))
            continue
        args = (job.src, job.dst, credential, limits, existing == "overwrite", stream_id, stop)
        jobs.append((job, decrypt_one, args))
    for rel in sorted((listed or {}).keys() - seen):
        where = listing.place_of(src, rel).shown
        result.failures.append((where, _manifest.missing(where)))
    return _run(jobs, result, executor, progress, stop_on_error, stop)
