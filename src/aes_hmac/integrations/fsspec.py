"""The ``aeshmac`` fsspec protocol: encrypted files on any fsspec filesystem (extra ``fsspec``).

Chained over another filesystem, every file is an aes-hmac stream::

    fsspec.open("aeshmac::file:///data/x.parquet.ahm", "rb", aeshmac={"password": "..."})
    pandas.read_parquet("aeshmac::memory://x.parquet.ahm",
                        storage_options={"aeshmac": {"password": "..."}})

"rb" returns the seekable reader: each read fetches (one range request) and verifies only the
chunks it touches. "wb" streams through the stream writer and keeps its rule (``_files.lifecycle``):
the file appears only on a clean close (local files: nameless until linked in; object stores
and other targets that defer commits: committed then; ``memory://``: stored in one piece then),
never after an exception in flight or garbage collection; on an object store a write larger
than a part goes up as a multipart upload, completed at that close and aborted otherwise.

Names: a file written as ``part.0.parquet`` is stored as ``part.0.parquet.ahm`` (``suffix``,
``""`` keeps names as given; a name ending with it is not doubled), and listed, globbed, read
and removed under the name it was written as; a name without the suffix is read as stored when
no suffixed file has it (files written before). Sizes reported by ``ls``/``info`` are plaintext
sizes, read from each file's authenticated final chunk (``ls`` costs two ranged reads per file,
header and final chunk, or one for a file under 2 KiB, and one derivation per distinct salt;
entries that vanish while listing and this tool's temp files are left out). ``info`` keeps the
reader it verified for the next ``open`` of that name, so pyarrow's info-then-open verifies once.

What crosses a process boundary when Dask (or anything else) pickles the filesystem to ship it
to workers (docs/SECURITY.md, "What crosses a process boundary"): never the password. With
``password_env="NAME"``, only the variable's name: each process that unpickles it reads the
password from its own environment (a worker without it fails its tasks with an error naming the
variable; unpickling itself never fails, which would hang Dask). With ``password=``, the slot
master keys derived so far plus the filesystem's write batch (one salt for every file it writes,
and its derived key), so copies read what the client derived and write new files: a copy that
meets a salt nobody derived says so and points to ``password_env``. With ``key=``, the key.
Every pickle and Dask token of the filesystem holds a random value, so task names carry
nothing that could test a password guess.
"""

from __future__ import annotations

import atexit
import gc
import io
import os
import re
import shutil
import sys
import tempfile
import threading
import weakref
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any, BinaryIO, ClassVar, Final, cast

import fsspec
from fsspec.implementations.dirfs import DirFileSystem
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractFileSystem
from fsspec.utils import tokenize

from .._errors import DecryptionError
from .._files.atomic import _TMP_HEX as TEMP_HEX
from .._files.atomic import _TMP_MARK as TEMP_MARK
from .._files.atomic import PendingFile
from .._files.fileobj import StreamWriter
from .._files.lifecycle import Output
from .._kdf import DEFAULT_KDF, DEFAULT_LIMITS, Credential, Kdf, KdfLimits, check_limits_arg
from .._keys.credentials import BatchCredential, DerivedKeys, to_credential
from .._primitives import reset_after_fork
from .._stream.format import DEFAULT_CHUNK_SIZE, chunk_log2_of
from .._stream.seekable import Allocate, SeekableReader, seekable_path, wait_until_released

SUFFIX: Final = ".ahm"
"""What the names of files written through the filesystem end with by default, so a stored
encrypted file never looks like plaintext (Dask writes ``part.0.parquet``) and ``decrypt -r``
finds it."""

try:  # fsspec >= 2025.x marks filesystems meant to be chained; older ones chain all the same
    from fsspec.implementations.chained import ChainedFileSystem as _Base
except ImportError:  # pragma: no cover
    _Base = AbstractFileSystem


class AesHmacFileSystem(_Base):  # type: ignore[misc]
    """Files of ``fs`` (or of ``target_protocol`` with ``target_options``) as aes-hmac streams.

        Give ``password`` (str, bytes, ``Key`` or ``PasswordKey``), ``key`` (32 bytes or ``Key``),
        or ``password_env``, the name of an environment variable holding the password where the
        filesystem is built or unpickled (so the password never travels with it); ``kdf`` and
        ``chunk_size`` apply to files written (default: 1 MiB on local files, ``REMOTE_CHUNK_SIZE``
    elsewhere), ``limits`` to files read; ``suffix`` is added to the names of files written
    (module docstring). Derived slot keys are
        cached per (salt, KDF) and process while a filesystem with that secret lives, so a folder
        written by ``encrypt_tree`` costs one derivation per process; the files one filesystem (and
        its pickled copies) writes share one salt, derived once.
    """

    protocol: ClassVar[str] = "aeshmac"
    root_marker = ""
    # The secret stays out of fsspec's token (a fast hash of it would end up in Dask task
    # names); so instances must not be shared through fsspec's cache (that would hand one
    # caller's secret to another) and each gets a random token of its own.
    _strip_tokenize_options = ("password", "key", "password_env")
    cachable = False

    def __init__(
        self,
        target_protocol: str | None = None,
        target_options: dict[str, Any] | None = None,
        fs: AbstractFileSystem | None = None,
        password: object = None,
        key: object = None,
        kdf: Kdf = DEFAULT_KDF,
        chunk_size: int | None = None,
        limits: KdfLimits = DEFAULT_LIMITS,
        password_env: str | None = None,
        suffix: str = SUFFIX,
        fo: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fs is not None and target_protocol is not None:
            raise TypeError("give fs or target_protocol, not both")
        _check_suffix(suffix)
        self._suffix = suffix
        check_limits_arg(limits)
        self._password_env = password_env
        if password_env is not None:
            password = _password_from_env(password_env, password, key)
        base = (
            password if isinstance(password, Credential) else to_credential(password, key, kdf=kdf)
        )
        # A ``BatchCredential`` is a copy (``_rebuild``, or a ``PasswordKey`` unpickled without
        # its password): it keeps what it was sent. Anything else shares this process's cache.
        credential = (
            base
            if isinstance(base, BatchCredential)
            else _shared_credential(base, password_env is not None)
        )
        self._credential = (
            credential if credential.write_salt is not None else credential.for_writing()
        )
        self._instance = os.urandom(16).hex()
        self._limits = limits
        # The reader ``info`` verified, handed to the next ``_open`` of the same name (pyarrow
        # asks for the info, then opens): one verified open instead of two.
        self._verified: tuple[str, SeekableReader] | None = None
        self.after_fork_in_child()
        reset_after_fork(self)
        _FILESYSTEMS.add(self)
        self.fs: AbstractFileSystem = (
            fs
            if fs is not None
            else fsspec.filesystem(target_protocol or "file", **(target_options or {}))
        )
        if chunk_size is None:
            local = isinstance(self.fs, LocalFileSystem)
            chunk_size = DEFAULT_CHUNK_SIZE if local else REMOTE_CHUNK_SIZE
        chunk_log2_of(chunk_size)
        self._chunk_size = chunk_size

    def after_fork_in_child(self) -> None:
        """A new lock, and no reader handed over (its source belongs to the parent)."""
        self._verified_lock = threading.Lock()
        self._verified = None

    def __reduce__(self) -> tuple[object, ...]:
        # fsspec would rebuild from storage_options, which hold no secret (stripped above).
        # What the copy gets is decided in one place: the variable's name, or else the
        # credential, whose own pickle (``BatchCredential.__reduce__``) is the rule.
        c = self._credential
        if self._password_env is not None:
            env = (self._password_env, c.kdf, c.write_salt)
            options = (self._chunk_size, self._limits, self._suffix)
            return (_rebuild_from_env, (self.fs, *env, *options))
        return (_rebuild, (self.fs, c, self._chunk_size, self._limits, self._suffix))

    @property
    def _fs_token(self) -> str:
        return str(tokenize(self._fs_token_, self._instance))

    def __repr__(self) -> str:
        return f"<AesHmacFileSystem over {type(self.fs).__name__} (secret hidden)>"

    # --- reading and writing -------------------------------------------------------------

    def _open(
        self,
        path: str,
        mode: str = "rb",
        block_size: int | None = None,
        autocommit: bool = True,
        cache_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> io.IOBase:
        if mode == "rb":
            self._check_secret()  # a missing secret is said first, whatever the file
            path = self._strip_protocol(path)
            with self._verified_lock:
                verified, self._verified = self._verified, None
            if verified is not None and verified[0] == path:
                return verified[1]
            return self._reader(self._target_entry(path))
        if mode == "wb":
            return _EncryptingFile(self, self._stored(path), autocommit)
        raise ValueError(f"mode must be 'rb' or 'wb', got {mode!r}")

    def _reader(self, entry: dict[str, Any]) -> SeekableReader:
        """The verified reader of the target's file ``entry`` (its name and ciphertext size,
        from ``info`` or a listing, so no request asks for the size again)."""
        self._check_secret()
        allocate = _arrow_allocator()
        path = entry["name"]
        if isinstance(self.fs, LocalFileSystem):
            return seekable_path(path, self._credential, self._limits, allocate)
        read_at = _RangeReads(self.fs, path).read_at
        return SeekableReader(
            read_at,
            entry["size"],
            self._credential,
            self._limits,
            allocate=allocate,
            piece_bytes=REMOTE_PIECE_BYTES,
        )

    def _check_secret(self) -> None:
        """A copy unpickled without its secret (say, a worker lacking ``password_env``) fails
        here, at first use, with the reason; unpickling it did not fail (Dask would hang)."""
        if self._credential.unavailable is not None:
            raise ValueError(self._credential.unavailable)

    # --- names: logical names (as the caller gives them) and stored names ----------------------

    def _stored(self, path: str) -> str:
        """The name a file written as ``path`` is stored under: ``path`` plus the suffix,
        unless it ends with it already (or the suffix is off)."""
        path = self._strip_protocol(path)
        if not self._suffix or path.endswith(self._suffix):
            return path
        return path + self._suffix

    def _logical(self, name: str) -> str:
        """The name the target's ``name`` is shown under: without the suffix."""
        if self._suffix and name.endswith(self._suffix) and len(name) > len(self._suffix):
            return name[: -len(self._suffix)]
        return name

    def _target_entry(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """The target's own entry for ``path``: the stored name first, then the name as
        given (files stored without the suffix, folders); ``FileNotFoundError`` if neither."""
        path = self._strip_protocol(path)
        stored = self._stored(path)
        if stored != path:
            with suppress(FileNotFoundError):
                entry: dict[str, Any] = self.fs.info(stored, **kwargs)
                return entry
        return cast(dict[str, Any], self.fs.info(path, **kwargs))

    def _existing(self, path: str) -> str:
        """The target's name of the existing file or folder ``path`` (stored name first)."""
        given: str = self._strip_protocol(path)
        stored = self._stored(given)
        return stored if stored != given and self.fs.isfile(stored) else given

    # --- listing: the target's entries with plaintext sizes ---------------------------------

    def _plain(self, entry: dict[str, Any]) -> dict[str, Any]:
        """The target's ``entry`` under its logical name, with its authenticated plaintext
        size (None when not a stream this secret opens); ``FileNotFoundError`` when the file
        went away since it was listed."""
        shown = dict(entry, name=self._logical(entry["name"]))
        if entry.get("type") != "file":
            return shown
        try:
            with self._reader(entry) as reader:
                shown["size"] = reader.size
        except (DecryptionError, ValueError):
            self._check_secret()  # no secret at all is the caller's problem, not the file's
            shown["size"] = None  # not an aes-hmac stream (or not ours): size unknown
        return shown

    # Paths may arrive with this filesystem's own protocol still on them (DuckDB hands over
    # "aeshmac:///x" as written in SQL): every method below strips it before the target sees it.

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The target's entries under ``path`` under their logical names, without this
        tool's temp files; with ``detail``, authenticated plaintext sizes (a file costs two
        ranged reads, its header and final chunk, or one when small, run on a few threads for
        object stores; one derivation per distinct salt), and files that vanish before they are
        opened (a concurrent writer) left out."""
        listing = self.fs.ls(self._strip_protocol(path), detail=True, **kwargs)
        entries = [e for e in listing if not _is_temp(e["name"])]
        # A file stored both with and without the suffix reads as the suffixed one: show that.
        names = {e["name"] for e in entries}
        entries = [
            e
            for e in entries
            if not (self._suffix and e["type"] == "file" and e["name"] + self._suffix in names)
        ]
        if not detail:
            return [self._logical(e["name"]) for e in entries]
        if isinstance(self.fs, LocalFileSystem) or len(entries) < 2:
            shown = [self._entry_or_none(e) for e in entries]
        else:
            with ThreadPoolExecutor(_LIST_THREADS) as pool:
                shown = list(pool.map(self._entry_or_none, entries))
        return [e for e in shown if e is not None]

    def _entry_or_none(self, entry: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return self._plain(entry)
        except FileNotFoundError:
            return None  # renamed or removed since the listing: not there any more

    def glob(self, path: str, maxdepth: int | None = None, **kwargs: Any) -> Any:
        """Names matching ``path``, as ``ls`` shows them; a pattern naming the stored suffix
        (``*.csv.ahm``) matches the same files as without it (``*.csv``)."""
        if self._suffix and path.endswith(self._suffix):
            path = path[: -len(self._suffix)]
        return super().glob(path, maxdepth=maxdepth, **kwargs)

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        """The entry of ``path`` with its authenticated plaintext size; for an object store,
        the reader verified to learn it is kept for the next ``open`` of ``path``."""
        path = self._strip_protocol(path)
        entry = self._target_entry(path, **kwargs)
        if entry.get("type") != "file" or isinstance(self.fs, LocalFileSystem):
            return self._plain(entry)
        shown = dict(entry, name=self._logical(entry["name"]))
        try:
            reader = self._reader(entry)
        except (DecryptionError, ValueError):
            self._check_secret()
            shown["size"] = None
            return shown
        shown["size"] = reader.size
        with self._verified_lock:
            self._verified = (path, reader)
        return shown

    # --- everything else is the target's own operation, on the stored names -------------------

    def exists(self, path: str, **kwargs: Any) -> bool:
        given = self._strip_protocol(path)
        stored = self._stored(given)
        return bool(self.fs.exists(stored, **kwargs) or self.fs.exists(given, **kwargs))

    def isdir(self, path: str) -> bool:
        return bool(self.fs.isdir(self._strip_protocol(path)))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.fs.mkdir(self._strip_protocol(path), create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self.fs.makedirs(self._strip_protocol(path), exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        self.fs.rmdir(self._strip_protocol(path))

    def rm_file(self, path: str) -> None:
        self.fs.rm_file(self._existing(path))

    def rm(self, path: Any, recursive: bool = False, maxdepth: int | None = None) -> None:
        paths = [path] if isinstance(path, str) else list(path)
        self.fs.rm([self._existing(p) for p in paths], recursive=recursive, maxdepth=maxdepth)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        # A stream is not bound to its name: copying the ciphertext copies the file.
        self.fs.cp_file(self._existing(path1), self._stored(path2), **kwargs)

    def created(self, path: str) -> Any:
        return self.fs.created(self._existing(path))

    def modified(self, path: str) -> Any:
        return self.fs.modified(self._existing(path))


def _arrow_allocator() -> Allocate | None:
    """pyarrow's memory pool for the buffers ``read_buffer`` hands to pyarrow, when pyarrow is
    loaded (it is whenever it reads through us): its memory is recycled, where a fresh buffer
    costs a page fault per 4 KiB, about as long as verifying the bytes (measured here)."""
    pa = sys.modules.get("pyarrow")
    if pa is None or not hasattr(pa, "allocate_buffer"):
        return None

    def allocate(n: int) -> memoryview:
        return memoryview(pa.allocate_buffer(n)).cast("B")

    return allocate


def _check_suffix(suffix: object) -> None:
    """``suffix`` is ``""`` (names kept as given) or a dot and a name without a slash."""
    if not isinstance(suffix, str):
        raise TypeError(f"suffix must be a str, not {type(suffix).__name__}")
    if suffix and (not suffix.startswith(".") or len(suffix) < 2 or "/" in suffix):
        raise ValueError(f"suffix must be '' or a dot and a name without '/', got {suffix!r}")


class _RangeReads:
    """``read_at`` of one file of a remote filesystem: one range request per call, except
    that the first request's bytes (the header probe) are kept, so a small file's final chunk
    (inside them) costs no second request."""

    def __init__(self, fs: AbstractFileSystem, path: str) -> None:
        self._fs, self._path = fs, path
        self._head: bytes | None = None

    def read_at(self, offset: int, buf: memoryview) -> int:
        if not len(buf):
            return 0
        head = self._head
        if head is not None and offset + len(buf) <= len(head):
            buf[:] = head[offset : offset + len(buf)]
            return len(buf)
        # fsspec filesystems are safe to call from the reader's threads.
        data = self._fs.cat_file(self._path, start=offset, end=offset + len(buf))
        if head is None and offset == 0:
            self._head = data
        buf[: len(data)] = data
        return len(data)


_TEMP_NAME: Final = re.compile(r"\..+" + re.escape(TEMP_MARK) + f"[0-9a-f]{{{TEMP_HEX}}}")
"""The exact name of a temp file of this tool's atomic writes: a user's file that merely
contains the mark (``q3.aes-hmac-tmp-report.csv``) is listed like any other."""


def _is_temp(name: str) -> bool:
    """Whether ``name`` is a temp file of this tool's atomic writes (never a finished file)."""
    return _TEMP_NAME.fullmatch(os.path.basename(name.rstrip("/"))) is not None


def _rebuild(
    fs: AbstractFileSystem,
    credential: BatchCredential,
    chunk_size: int,
    limits: KdfLimits,
    suffix: str = SUFFIX,
) -> AesHmacFileSystem:
    """Unpickle a filesystem given ``password=`` or ``key=``: it keeps the keys it was sent."""
    return AesHmacFileSystem(
        fs=fs, password=credential, chunk_size=chunk_size, limits=limits, suffix=suffix
    )


def _rebuild_from_env(
    fs: AbstractFileSystem,
    name: str,
    kdf: Kdf | None,
    write_salt: bytes | None,
    chunk_size: int,
    limits: KdfLimits,
    suffix: str = SUFFIX,
) -> AesHmacFileSystem:
    """Unpickle a ``password_env`` filesystem: the password from this process's environment.

    Never raises: a worker whose unpickling fails is restarted by Dask and the computation
    hangs, so a missing variable becomes a credential that fails every use, naming it.
    """
    try:
        password = _password_from_env(name, None, None)
    except (TypeError, ValueError) as exc:
        credential = BatchCredential.missing(kdf, f"{exc} (in process {os.getpid()})")
    else:
        credential = _shared_credential(to_credential(password, kdf=kdf or DEFAULT_KDF), True)
    afs = AesHmacFileSystem(
        fs=fs,
        password=credential.for_writing(write_salt),
        chunk_size=chunk_size,
        limits=limits,
        suffix=suffix,
    )
    afs._password_env = name
    return afs


def _password_from_env(name: object, password: object, key: object) -> str:
    """The password in environment variable ``name`` of this process (never in a message)."""
    if password is not None or key is not None:
        raise TypeError("give password, key or password_env, not several")
    if not isinstance(name, str) or not name:
        raise TypeError(f"password_env must be a variable name (str), not {type(name).__name__}")
    value = os.environ.get(name)
    if not value:
        raise ValueError(f"password_env: environment variable {name} is not set or empty")
    return value


REMOTE_CHUNK_SIZE: Final = 64 << 10
"""Chunk size of files written to a target other than local files (object stores): a ranged
read fetches the whole chunks it touches, so a Parquet column read through small chunks fetches
at most two chunks more than it needs (1 MiB chunks: up to 25% more for an 8 MiB column chunk,
measured in tests/test_s3.py), while pieces of many chunks keep one request per MiB or more."""
REMOTE_PIECE_BYTES: Final = 8 << 20
"""Bytes a remote reader reading in order fetches per request, four requests ahead: a request to
an object store costs a round trip whatever its size (benchmarks/bench_s3.py; 1 MiB pieces, as
for local files, made a full read 3.6 times as long as plain s3fs's)."""
_LIST_THREADS: Final = 16
"""Files of an object store opened at once by ``ls``: each opening waits on two round trips."""
_PART_BYTES: Final = 8 << 20
"""Part size of a multipart upload to an object store (S3's smallest is 5 MiB): a write larger
than this goes up in parts while it is written, completed at commit, aborted on failure."""

_SPOOL_IN_MEMORY = 8 << 20
"""Bytes of a spooled write (targets that cannot defer a commit) kept in memory before disk."""
_COPY_PIECE = 1 << 20
"""Bytes per piece when a spool is copied to its target."""
_MAX_WRAPPERS: Final = 8
"""Wrapping filesystems (``dir::``) looked through to find the one a write meets."""

_MAX_FROM_ENV: Final = 8
"""Secrets read from the environment whose derived keys stay cached with no filesystem alive."""


class _Cache:
    """The derived keys of each secret in this process, shared by its filesystems.

    Dask builds a filesystem per task, and each finds the keys the first one derived. Held
    weakly: once the last filesystem of a secret is gone, so are its secret and keys here.
    Secrets read from the environment are kept (a few): they stay in ``os.environ`` anyway, and
    a worker builds a filesystem per task. The lock guards only the dictionaries, never a KDF.
    """

    def __init__(self) -> None:
        self.shared: weakref.WeakValueDictionary[tuple[bytes, Kdf | None], DerivedKeys] = (
            weakref.WeakValueDictionary()
        )
        self.from_env: OrderedDict[tuple[bytes, Kdf | None], DerivedKeys] = OrderedDict()
        self.after_fork_in_child()
        reset_after_fork(self)

    def after_fork_in_child(self) -> None:
        """A new lock: another thread of the parent may have held this one at the fork."""
        self.lock = threading.Lock()

    def get(self, credential: Credential, from_env: bool) -> BatchCredential:
        ident = (credential.secret, credential.kdf)
        with self.lock:
            derived = self.shared.get(ident)
            if derived is None:
                derived = self.shared[ident] = DerivedKeys()
            if from_env:
                self.from_env[ident] = derived
                self.from_env.move_to_end(ident)
                while len(self.from_env) > _MAX_FROM_ENV:
                    self.from_env.popitem(last=False)
        return BatchCredential.of(credential, derived)


_CREDENTIALS: Final = _Cache()


def _shared_credential(credential: Credential, from_env: bool = False) -> BatchCredential:
    """``credential`` with this process's cache of keys derived for the same secret."""
    return _CREDENTIALS.get(credential, from_env)


class _EncryptingFile(StreamWriter):
    """ "wb" file of ``AesHmacFileSystem``: a ``StreamWriter`` whose output is the target file.

    The writer lifecycle of ``StreamWriter``: only a clean ``close`` seals the final chunk and
    makes the file appear; leaving a ``with`` block by an exception, ``close()`` with an
    exception in flight (fsspec's ``OpenFile.__exit__``, pandas' cleanup; it warns
    ``WriterDiscardedWarning``), ``discard()`` and garbage collection drop it, also of the
    ``TextIOWrapper`` fsspec puts around it for "wt" (its finalizer calls ``_dealloc_warn``).
    Inside a transaction (``autocommit=False``) a clean close seals the stream and the
    transaction's ``commit()``/``discard()`` decide.
    """

    def __init__(self, afs: AesHmacFileSystem, path: str, autocommit: bool = True) -> None:
        self.path = path
        self._autocommit = autocommit
        self._sealed: Output | None = None  # sealed, waiting for the transaction's commit()
        local = _local_path(afs.fs, path)
        output: PendingFile | _TargetOutput = (
            PendingFile(local, overwrite=True, name="path")
            if local is not None
            else _TargetOutput(afs.fs, path)
        )
        try:
            super().__init__(output.file, afs._credential, afs._chunk_size, False, output, path)
        except BaseException:
            output.discard()
            raise

    def _release(self, sealed: bool) -> None:
        if sealed and not self._autocommit and self._output is not None:
            self._sealed, self._output = self._output, None
            return
        super()._release(sealed)

    def commit(self) -> None:
        """Make a sealed file of a transaction appear (fsspec calls this at its end)."""
        if not self.closed:
            raise ValueError(f"{self.path}: close the file before committing it")
        if self._sealed is None:
            return  # its close discarded it (the failure was raised then), or committed
        sealed, self._sealed = self._sealed, None
        sealed.commit()

    def discard(self) -> None:
        """Drop the file: close without finalizing, or drop a sealed one of a transaction."""
        if not self.closed:
            self.abort()
        if self._sealed is not None:
            sealed, self._sealed = self._sealed, None
            sealed.discard()


def _local_path(fs: AbstractFileSystem, path: str) -> str | None:
    """The local path a write to ``path`` lands on, through ``dir::`` wrappers, or None for any
    other target. Local files are written through ``PendingFile`` (nameless until commit),
    never through fsspec's own local commit, a move from the temp folder that turns into a
    visible copy when that folder is on another file system."""
    for _ in range(_MAX_WRAPPERS):
        if isinstance(fs, LocalFileSystem):
            return str(fs._strip_protocol(path))
        if not isinstance(fs, DirFileSystem):
            return None
        path, fs = fs._join(path), fs.fs
    return None


_FILESYSTEMS: weakref.WeakSet[AesHmacFileSystem] = weakref.WeakSet()
"""Every filesystem alive, for ``_let_go_at_exit``."""


def _let_go_at_exit() -> None:
    """Before the interpreter finalizes, wait until no C++ object holds pyarrow's handler of
    one of our filesystems (at most ``EXIT_GRACE``): the reader's exit wait, for filesystems.

    ``pandas.read_parquet`` and pyarrow datasets wrap the filesystem as
    ``PyFileSystem(FSSpecHandler(fs))``; a dataset fragment released by one of pyarrow's threads
    after finalization began drops that C++ wrapper, whose destructor takes the GIL and aborts
    the process ("terminate called without an active exception"), as for a reader."""
    if "pyarrow" not in sys.modules:
        return
    wait_until_released(
        [
            holder
            for afs in list(_FILESYSTEMS)
            for holder in gc.get_referrers(afs)
            if type(holder).__name__ == "FSSpecHandler"
            and type(holder).__module__.startswith("pyarrow")
        ]
    )


# Registered after the reader's wait, so it runs first (atexit is last in, first out): a
# dataset lets go of its files and of its filesystem together.
atexit.register(_let_go_at_exit)


def _innermost(fs: AbstractFileSystem) -> AbstractFileSystem:
    """The filesystem under wrappers that pass ``open`` through (``dir::``), whose own commit
    behaviour is what a write meets (``dir::memory://`` commits at open like ``memory://``)."""
    for _ in range(_MAX_WRAPPERS):
        inner = getattr(fs, "fs", None)
        if not isinstance(inner, AbstractFileSystem):
            return fs
        fs = inner
    return fs


def _defers_commit(target: Any) -> bool:
    """Whether a file opened with ``autocommit=False`` says it honours it: fsspec's buffered
    files (object stores) and local files record the flag and have ``commit``/``discard``; a
    target that swallowed the argument does not, and gets the spool instead."""
    return (
        getattr(target, "autocommit", True) is False
        and callable(getattr(target, "commit", None))
        and callable(getattr(target, "discard", None))
    )


class _TargetOutput:
    """The ``Output`` of a writer on a filesystem other than the local one.

    Where the target defers its commit (``autocommit=False``: object stores upload but do not
    complete; fsspec's own local files), it writes straight there. A target that cannot
    (``memory://`` commits at open, and its ``discard`` does nothing; targets that refuse the
    argument) gets a spool (memory, then a private temporary file: ciphertext only) written to
    the target in one piece at commit, so nothing of a failed write is ever visible there.
    """

    def __init__(self, fs: AbstractFileSystem, path: str) -> None:
        self._fs, self._path = fs, path
        self._target: Any = None
        if not isinstance(_innermost(fs), MemoryFileSystem):
            with suppress(TypeError, NotImplementedError):
                target = fs.open(path, "wb", block_size=_PART_BYTES, autocommit=False)
                if _defers_commit(target):
                    self._target = target
                else:  # it took the argument and ignored it: nothing may be written through it
                    with suppress(Exception):
                        target.discard()
                    with suppress(Exception):
                        target.close()
        spool = (
            None if self._target is not None else tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY)
        )
        self.file: BinaryIO = self._target if spool is None else cast(BinaryIO, spool)

    def commit(self) -> None:
        try:
            if self._target is not None:
                self._target.close()
                self._target.commit()
                return
            self.file.seek(0)
            if isinstance(self._fs, MemoryFileSystem):
                self._fs.pipe_file(self._path, self.file.read())
            else:
                with self._fs.open(self._path, "wb") as out:
                    shutil.copyfileobj(self.file, out, _COPY_PIECE)
            self.file.close()
        except BaseException:
            self.discard()
            raise

    def discard(self) -> None:
        target, self._target = self._target, None
        if target is None:
            with suppress(OSError, ValueError):
                self.file.close()
            return
        # Closed first, then discarded, as fsspec's transactions do (an object store's close
        # uploads the last part, its discard then aborts the whole upload).
        with suppress(Exception):
            target.close()
        with suppress(Exception):
            target.discard()
