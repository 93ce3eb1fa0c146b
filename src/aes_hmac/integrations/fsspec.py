"""The ``aeshmac`` fsspec protocol: encrypted files on any fsspec filesystem (extra ``fsspec``).

Chained over another filesystem, every file is an aes-hmac stream::

    fsspec.open("aeshmac::file:///data/x.parquet.ahm", "rb", aeshmac={"password": "..."})
    pandas.read_parquet("aeshmac::memory://x.parquet.ahm",
                        storage_options={"aeshmac": {"password": "..."}})

"rb" returns the seekable reader: each read fetches (one range request) and verifies only the
chunks it touches. "wb" streams through the stream writer and keeps its rule (``_lifecycle``):
the file appears only on a clean close (local files: nameless until linked in; object stores
and other targets that defer commits: committed then; ``memory://``: stored in one piece then),
never after an exception in flight or garbage collection. Names are kept as given (``.ahm`` is
the caller's choice); sizes reported by ``ls``/``info`` are plaintext sizes, read from each
file's authenticated final chunk (``ls`` costs one ranged read per file and one derivation
per distinct salt; entries that vanish while listing and this tool's temp files are left out).

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

import io
import os
import shutil
import sys
import tempfile
import threading
import weakref
from collections import OrderedDict
from contextlib import suppress
from typing import Any, BinaryIO, ClassVar, Final, cast

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractFileSystem
from fsspec.utils import tokenize

from .._atomic import _TMP_MARK as TEMP_MARK
from .._atomic import PendingFile
from .._credential import BatchCredential, DerivedKeys, to_credential
from .._errors import DecryptionError
from .._fileobj import StreamWriter
from .._kdf import DEFAULT_KDF, DEFAULT_LIMITS, Credential, Kdf, KdfLimits, check_limits_arg
from .._lifecycle import Output
from .._primitives import reset_after_fork
from .._seekable import Allocate, SeekableReader, seekable_path
from .._stream import DEFAULT_CHUNK_SIZE, chunk_log2_of

try:  # fsspec >= 2025.x marks filesystems meant to be chained; older ones chain all the same
    from fsspec.implementations.chained import ChainedFileSystem as _Base
except ImportError:  # pragma: no cover
    _Base = AbstractFileSystem


class AesHmacFileSystem(_Base):  # type: ignore[misc]
    """Files of ``fs`` (or of ``target_protocol`` with ``target_options``) as aes-hmac streams.

    Give ``password`` (str, bytes, ``Key`` or ``PasswordKey``), ``key`` (32 bytes or ``Key``),
    or ``password_env``, the name of an environment variable holding the password where the
    filesystem is built or unpickled (so the password never travels with it); ``kdf`` and
    ``chunk_size`` apply to files written, ``limits`` to files read. Derived slot keys are
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
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        limits: KdfLimits = DEFAULT_LIMITS,
        password_env: str | None = None,
        fo: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if fs is not None and target_protocol is not None:
            raise TypeError("give fs or target_protocol, not both")
        chunk_log2_of(chunk_size)
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
        self._chunk_size = chunk_size
        self._limits = limits
        self.fs: AbstractFileSystem = (
            fs
            if fs is not None
            else fsspec.filesystem(target_protocol or "file", **(target_options or {}))
        )

    def __reduce__(self) -> tuple[object, ...]:
        # fsspec would rebuild from storage_options, which hold no secret (stripped above).
        # What the copy gets is decided in one place: the variable's name, or else the
        # credential, whose own pickle (``BatchCredential.__reduce__``) is the rule.
        c = self._credential
        if self._password_env is not None:
            env = (self._password_env, c.kdf, c.write_salt)
            return (_rebuild_from_env, (self.fs, *env, self._chunk_size, self._limits))
        return (_rebuild, (self.fs, c, self._chunk_size, self._limits))

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
            return self._reader(path)
        if mode == "wb":
            return _EncryptingFile(self, path, autocommit)
        raise ValueError(f"mode must be 'rb' or 'wb', got {mode!r}")

    def _reader(self, path: str) -> SeekableReader:
        self._check_secret()
        allocate = _arrow_allocator()
        if isinstance(self.fs, LocalFileSystem):
            return seekable_path(path, self._credential, self._limits, allocate)
        size = self.fs.size(path)
        fs = self.fs

        def read_at(offset: int, buf: memoryview) -> int:
            # One range request per chunk: fsspec filesystems are safe to call from threads.
            data = fs.cat_file(path, start=offset, end=offset + len(buf)) if len(buf) else b""
            buf[: len(data)] = data
            return len(data)

        return SeekableReader(read_at, size, self._credential, self._limits, allocate=allocate)

    def _check_secret(self) -> None:
        """A copy unpickled without its secret (say, a worker lacking ``password_env``) fails
        here, at first use, with the reason; unpickling it did not fail (Dask would hang)."""
        if self._credential.unavailable is not None:
            raise ValueError(self._credential.unavailable)

    # --- listing: the target's entries with plaintext sizes ---------------------------------

    def _plain(self, entry: dict[str, Any]) -> dict[str, Any]:
        """``entry`` with its plaintext size (None when not a stream this secret opens);
        ``FileNotFoundError`` when the file went away since it was listed."""
        if entry.get("type") != "file":
            return entry
        entry = dict(entry)
        try:
            with self._reader(entry["name"]) as reader:
                entry["size"] = reader.size
        except (DecryptionError, ValueError):
            self._check_secret()  # no secret at all is the caller's problem, not the file's
            entry["size"] = None  # not an aes-hmac stream (or not ours): size unknown
        return entry

    # Paths may arrive with this filesystem's own protocol still on them (DuckDB hands over
    # "aeshmac:///x" as written in SQL): every method below strips it before the target sees it.

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        """The target's entries under ``path``, without this tool's temp files; with
        ``detail``, plaintext sizes (one ranged read per file, one derivation per distinct
        salt), and files that vanish before they are opened (a concurrent writer) left out."""
        entries = [
            e
            for e in self.fs.ls(self._strip_protocol(path), detail=True, **kwargs)
            if not _is_temp(e["name"])
        ]
        if not detail:
            return [e["name"] for e in entries]
        listed = []
        for entry in entries:
            try:
                listed.append(self._plain(entry))
            except FileNotFoundError:
                continue  # renamed or removed since the listing: not there any more
        return listed

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._plain(self.fs.info(self._strip_protocol(path), **kwargs))

    # --- everything else is the target's own operation ----------------------------------------

    def exists(self, path: str, **kwargs: Any) -> bool:
        return bool(self.fs.exists(self._strip_protocol(path), **kwargs))

    def isdir(self, path: str) -> bool:
        return bool(self.fs.isdir(self._strip_protocol(path)))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.fs.mkdir(self._strip_protocol(path), create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self.fs.makedirs(self._strip_protocol(path), exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        self.fs.rmdir(self._strip_protocol(path))

    def rm_file(self, path: str) -> None:
        self.fs.rm_file(self._strip_protocol(path))

    def rm(self, path: str, recursive: bool = False, maxdepth: int | None = None) -> None:
        self.fs.rm(self._strip_protocol(path), recursive=recursive, maxdepth=maxdepth)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        # A stream is not bound to its name: copying the ciphertext copies the file.
        self.fs.cp_file(self._strip_protocol(path1), self._strip_protocol(path2), **kwargs)

    def created(self, path: str) -> Any:
        return self.fs.created(self._strip_protocol(path))

    def modified(self, path: str) -> Any:
        return self.fs.modified(self._strip_protocol(path))


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


def _is_temp(name: str) -> bool:
    """Whether ``name`` is a temp file of this tool's atomic writes (never a finished file)."""
    return TEMP_MARK in os.path.basename(name.rstrip("/"))


def _rebuild(
    fs: AbstractFileSystem, credential: BatchCredential, chunk_size: int, limits: KdfLimits
) -> AesHmacFileSystem:
    """Unpickle a filesystem given ``password=`` or ``key=``: it keeps the keys it was sent."""
    return AesHmacFileSystem(fs=fs, password=credential, chunk_size=chunk_size, limits=limits)


def _rebuild_from_env(
    fs: AbstractFileSystem,
    name: str,
    kdf: Kdf | None,
    write_salt: bytes | None,
    chunk_size: int,
    limits: KdfLimits,
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
        fs=fs, password=credential.for_writing(write_salt), chunk_size=chunk_size, limits=limits
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


_SPOOL_IN_MEMORY = 8 << 20
"""Bytes of a spooled write (targets that cannot defer a commit) kept in memory before disk."""
_COPY_PIECE = 1 << 20
"""Bytes per piece when a spool is copied to its target."""

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
        output: PendingFile | _TargetOutput = (
            PendingFile(path, overwrite=True, name="path")
            if isinstance(afs.fs, LocalFileSystem)
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
        if not isinstance(fs, MemoryFileSystem):
            with suppress(TypeError, NotImplementedError):
                self._target = fs.open(path, "wb", autocommit=False)
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
