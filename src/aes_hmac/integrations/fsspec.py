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
file's authenticated final chunk. The password and key are left out of fsspec's instance token,
so they never appear in Dask task names.

What crosses the wire when Dask (or anything else) pickles the filesystem to ship it to workers:
with ``password=``, the password itself and the slot keys derived from it so far; with ``key=``,
the key. With ``password_env="NAME"`` nothing secret does: the copy holds only the variable's
name, and each process that unpickles it reads the password from its own environment and
derives each slot key once (every task of a worker process shares that work).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import threading
from collections import OrderedDict
from contextlib import suppress
from typing import Any, BinaryIO, ClassVar, cast

import fsspec
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from fsspec.spec import AbstractFileSystem
from fsspec.utils import tokenize

from .._atomic import PendingFile
from .._credential import to_credential
from .._errors import DecryptionError
from .._fileobj import StreamWriter
from .._kdf import DEFAULT_KDF, DEFAULT_LIMITS, Credential, Kdf, KdfLimits, check_limits_arg
from .._lifecycle import Output
from .._seekable import Allocate, SeekableReader, seekable_path
from .._stream import DEFAULT_CHUNK_SIZE, chunk_log2_of
from .._tree import BatchCredential

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
    cached per (salt, KDF) and process, so a folder written by ``encrypt_tree`` costs one
    derivation per process.
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
        credential = (
            password if isinstance(password, Credential) else to_credential(password, key, kdf=kdf)
        )
        self._credential = _shared_credential(credential)
        self._instance = os.urandom(16).hex()
        self._chunk_size = chunk_size
        self._limits = limits
        self.fs: AbstractFileSystem = (
            fs
            if fs is not None
            else fsspec.filesystem(target_protocol or "file", **(target_options or {}))
        )

    def __reduce__(self) -> tuple[object, ...]:
        # fsspec would rebuild from storage_options, which hold no secret (stripped above). The
        # copy gets the variable's name, or else the secret itself (a worker may meet salts
        # this process never derived, and may write) and the slot keys derived so far.
        c = self._credential
        if self._password_env is not None:
            secret: Credential | str = self._password_env
            masters: dict[tuple[bytes, Kdf], bytes] = {}
        else:
            secret, masters = Credential(c.secret, c.kdf), dict(c.masters)
        return (_rebuild, (self.fs, secret, masters, self._chunk_size, self._limits, c.kdf))

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

    # --- listing: the target's entries with plaintext sizes ---------------------------------

    def _plain(self, entry: dict[str, Any]) -> dict[str, Any]:
        if entry.get("type") != "file":
            return entry
        entry = dict(entry)
        try:
            with self._reader(entry["name"]) as reader:
                entry["size"] = reader.size
        except (DecryptionError, ValueError):
            entry["size"] = None  # not an aes-hmac stream (or not ours): size unknown
        return entry

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        entries = self.fs.ls(path, detail=True, **kwargs)
        if not detail:
            return [e["name"] for e in entries]
        return [self._plain(e) for e in entries]

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return self._plain(self.fs.info(path, **kwargs))

    # --- everything else is the target's own operation ----------------------------------------

    def exists(self, path: str, **kwargs: Any) -> bool:
        return bool(self.fs.exists(path, **kwargs))

    def isdir(self, path: str) -> bool:
        return bool(self.fs.isdir(path))

    def mkdir(self, path: str, create_parents: bool = True, **kwargs: Any) -> None:
        self.fs.mkdir(path, create_parents=create_parents, **kwargs)

    def makedirs(self, path: str, exist_ok: bool = False) -> None:
        self.fs.makedirs(path, exist_ok=exist_ok)

    def rmdir(self, path: str) -> None:
        self.fs.rmdir(path)

    def rm_file(self, path: str) -> None:
        self.fs.rm_file(path)

    def rm(self, path: str, recursive: bool = False, maxdepth: int | None = None) -> None:
        self.fs.rm(path, recursive=recursive, maxdepth=maxdepth)

    def cp_file(self, path1: str, path2: str, **kwargs: Any) -> None:
        # A stream is not bound to its name: copying the ciphertext copies the file.
        self.fs.cp_file(path1, path2, **kwargs)

    def created(self, path: str) -> Any:
        return self.fs.created(path)

    def modified(self, path: str) -> Any:
        return self.fs.modified(path)


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


def _rebuild(
    fs: AbstractFileSystem,
    secret: Credential | str,
    masters: dict[tuple[bytes, Kdf], bytes],
    chunk_size: int,
    limits: KdfLimits,
    kdf: Kdf | None = None,
) -> AesHmacFileSystem:
    options: dict[str, Any] = {"chunk_size": chunk_size, "limits": limits}
    if isinstance(secret, str):
        options.update(password_env=secret, kdf=kdf or DEFAULT_KDF)
    else:
        options.update(password=secret)
    afs = AesHmacFileSystem(fs=fs, **options)
    with afs._credential.lock:
        afs._credential.masters.update(masters)
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

_CREDENTIALS: OrderedDict[tuple[bytes, Kdf | None], BatchCredential] = OrderedDict()
_CREDENTIALS_LOCK = threading.Lock()
_MAX_CREDENTIALS = 8


def _shared_credential(credential: Credential) -> BatchCredential:
    """One derivation cache per secret and process: Dask builds a filesystem per task from its
    options, and every task of a worker process then reuses the keys derived by the first."""
    with _CREDENTIALS_LOCK:
        ident = (credential.secret, credential.kdf)
        shared = _CREDENTIALS.get(ident)
        if shared is None:
            shared = _CREDENTIALS[ident] = BatchCredential.of(credential)
            while len(_CREDENTIALS) > _MAX_CREDENTIALS:
                _CREDENTIALS.popitem(last=False)
        _CREDENTIALS.move_to_end(ident)
        return shared


class _EncryptingFile(StreamWriter):
    """ "wb" file of ``AesHmacFileSystem``: a ``StreamWriter`` whose output is the target file.

    The writer lifecycle of ``StreamWriter``: only a clean ``close`` seals the final chunk and
    makes the file appear; leaving a ``with`` block by an exception, ``close()`` with an
    exception in flight (fsspec's ``OpenFile.__exit__``, pandas' cleanup), ``discard()`` and
    garbage collection drop it. Inside a transaction (``autocommit=False``) a clean close seals
    the stream and the transaction's ``commit()``/``discard()`` decide.
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
            super().__init__(output.file, afs._credential, afs._chunk_size, False, output)
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
