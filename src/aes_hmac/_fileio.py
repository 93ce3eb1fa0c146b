"""File-level API: ``open()`` objects, atomic whole-file helpers, key-slot edits, inspection.

Every helper that writes a named file writes a temporary file beside it, fsyncs it, renames it
into place and fsyncs the folder; on any failure the temporary file is removed, so no partial
output (and no unauthenticated plaintext) ever appears under the destination name.
"""

from __future__ import annotations

import builtins
import io
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import BinaryIO, Final, Literal, overload

from ._kdf import (
    DEFAULT_KDF,
    DEFAULT_LIMITS,
    Credential,
    Kdf,
    KdfLimits,
    check_kdf,
    check_limits_arg,
    encode_password,
)
from ._pipeline import (
    ChunkSealer,
    Progress,
    check_file,
    decrypt_to,
    encrypt_to,
    iter_plain,
    make_credential,
    new_stream,
    write_all,
)
from ._primitives import IV_SIZE, SALT_SIZE, random_bytes
from ._stream import (
    DEFAULT_CHUNK_SIZE,
    MAX_SLOTS,
    ChunkCodec,
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


class StreamWriter(io.BufferedIOBase):
    """Write side of ``open(..., "wb")``: buffers one chunk, seals each full chunk as it fills.

    ``close()`` seals the final chunk (last-chunk flag). Leaving a ``with`` block by an exception
    and garbage collection of an unclosed writer do NOT finalize: the output then reads as
    truncated instead of as a complete stream. A wrapper's ``close()`` (``io.TextIOWrapper``)
    closes, so finalizes, this writer: when wrapping it, call ``abort()`` on the failure path
    inside the wrapper's ``with`` block (the wrapper's close then does nothing).
    """

    def __init__(
        self, dst: BinaryIO, credential: Credential, chunk_size: int, close_dst: bool
    ) -> None:
        super().__init__()
        # Until the header is out, a close (also from __del__) must not write a final chunk.
        self._aborted = True
        header, codec = new_stream(credential, chunk_size)
        self._dst = dst
        self._close_dst = close_dst
        self._chunks = ChunkSealer(dst, codec)
        self._buf = bytearray(chunk_size)
        self._fill = 0
        write_all(dst, header)
        self._aborted = False

    def __del__(self) -> None:
        if "_fill" not in self.__dict__:
            return  # __init__ failed before there was anything to close
        # Nobody closed this writer: the stream was not finished, so it must read as truncated.
        if not self.closed:
            self._aborted = True
        super().__del__()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        """Take every byte of ``b``; full chunks are sealed and written at once."""
        if self.closed:
            raise ValueError("write to a closed stream")
        view = memoryview(b).cast("B")
        size = len(self._buf)
        taken = 0
        while taken < len(view):
            n = min(size - self._fill, len(view) - taken)
            self._buf[self._fill : self._fill + n] = view[taken : taken + n]
            self._fill += n
            taken += n
            if self._fill == size:
                self._chunks.write_full(self._buf)
                self._fill = 0
        return taken

    def flush(self) -> None:
        """Flush the underlying file; a partial chunk stays buffered until it fills or close."""
        if not self.closed:
            self._dst.flush()

    def abort(self) -> None:
        """Close without the final chunk, so the output is detected as truncated."""
        self._aborted = True
        self.close()

    def close(self) -> None:
        if self.closed:
            return
        try:
            if not self._aborted:
                self._chunks.write_final(self._buf[: self._fill])
                self._dst.flush()
        finally:
            self._buf[:] = bytes(len(self._buf))
            try:
                super().close()  # flushes dst: it must still be open
            finally:
                if self._close_dst:
                    self._dst.close()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self.abort()
        else:
            self.close()


class StreamReader(io.RawIOBase):
    """Read side of ``open(..., "rb")``: releases a chunk's plaintext only after its tag verified.

    The header is opened by the constructor (``HeaderError`` there). The first failure (a chunk
    that does not verify, or a read error) is stored and raised again by every later read, so no
    caller can read past damage or take a cut stream for a complete one.
    """

    def __init__(
        self, src: BinaryIO, credential: Credential, limits: KdfLimits, close_src: bool
    ) -> None:
        super().__init__()
        self._src = src
        self._close_src = close_src
        header = read_header(src)
        file_key, _ = open_header(header, credential, limits)
        codec = ChunkCodec(file_key, header.prefix, header.chunk_size)
        self._chunks = iter_plain(src, codec, header.size)
        self._plain: memoryview = memoryview(b"")
        self._error: BaseException | None = None
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        """Copy verified plaintext into ``b``; 0 only at the authenticated end of the stream."""
        if self.closed:
            raise ValueError("read from a closed stream")
        if self._error is not None:
            raise self._error
        while not self._plain and not self._eof:
            try:
                self._plain = next(self._chunks)[0]
            except StopIteration:
                self._eof = True
            except BaseException as exc:
                # Stored whatever it is (damage, or a read error part way through a chunk): the
                # chunk generator is finished now, and only the authenticated end may read as EOF.
                self._error = exc
                raise
        view = memoryview(b).cast("B")
        n = min(len(view), len(self._plain))
        view[:n] = self._plain[:n]
        self._plain = self._plain[n:]
        return n

    def close(self) -> None:
        if not self.closed and self._close_src:
            self._src.close()
        super().close()


@overload
def open(
    file: StrPath | BinaryIO,
    mode: Literal["rb"] = "rb",
    *,
    password: str | bytes | None = None,
    key: bytes | None = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> StreamReader: ...
@overload
def open(
    file: StrPath | BinaryIO,
    mode: Literal["wb"],
    *,
    password: str | bytes | None = None,
    key: bytes | None = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> StreamWriter: ...
def open(
    file: StrPath | BinaryIO,
    mode: Literal["rb", "wb"] = "rb",
    *,
    password: str | bytes | None = None,
    key: bytes | None = None,
    kdf: Kdf = DEFAULT_KDF,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> StreamWriter | StreamReader:
    """Open an encrypted stream as a file object: "wb" encrypts what is written, "rb" decrypts.

    ``file`` is a path (opened and closed here; "wb" writes it directly, not atomically: use
    ``encrypt_file`` for that) or a binary file object (left open). Give ``password`` or ``key``.
    """
    if mode not in ("rb", "wb"):
        raise ValueError(f"mode must be 'rb' or 'wb', got {mode!r}")
    credential = make_credential(password, key, kdf)
    if mode == "wb":
        chunk_log2_of(chunk_size)
    else:
        check_limits_arg(limits)
    owned = isinstance(file, str | os.PathLike)
    if not owned:
        check_file(file, "file", "write" if mode == "wb" else "read")
    fileobj: BinaryIO = builtins.open(file, mode) if owned else file  # type: ignore[arg-type,assignment]
    try:
        if mode == "wb":
            return StreamWriter(fileobj, credential, chunk_size, owned)
        return StreamReader(fileobj, credential, limits, owned)
    except BaseException:
        if owned:
            fileobj.close()
        raise


def inspect_stream(file: StrPath | BinaryIO) -> StreamInfo:
    """Read a stream's header without a password: version, chunk size, header size, slot KDFs.

    ``HeaderError`` when the header is malformed. Nothing here is authenticated.
    """
    if isinstance(file, str | os.PathLike):
        with builtins.open(file, "rb") as f:
            return read_header(f).info()
    check_file(file, "file", "read")
    return read_header(file).info()


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


def _own_fd(out: BinaryIO) -> int | None:
    """The descriptor of a plain temporary file from ``atomic_output``, for the workers to
    ``pwrite`` into; None for any other object (a wrapper must see every write)."""
    return out.fileno() if type(out) is io.BufferedWriter else None


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
    password: str | bytes | None = None,
    *,
    key: bytes | None = None,
    kdf: Kdf = DEFAULT_KDF,
    overwrite: bool = False,
    progress: Progress | None = None,
    workers: int | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> None:
    """Encrypt the file ``src_path`` to ``dst_path`` atomically (temp file, fsync, rename).

    ``FileExistsError`` if ``dst_path`` exists and not ``overwrite``; ``ValueError`` if both name
    the same file or ``dst_path`` is not a regular file. A symlink ``dst_path`` is followed (its
    target is replaced); a replaced file keeps its mode, a new one gets 0600. On any failure no
    output remains; the source is only ever read.
    """
    make_credential(password, key, kdf)
    chunk_log2_of(chunk_size)
    check_distinct_paths(src_path, dst_path)
    with builtins.open(src_path, "rb") as src, atomic_output(dst_path, overwrite) as out:
        encrypt_to(
            src,
            out,
            _own_fd(out),
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
    password: str | bytes | None = None,
    *,
    key: bytes | None = None,
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
    make_credential(password, key)
    check_distinct_paths(src_path, dst_path)
    with builtins.open(src_path, "rb") as src, atomic_output(dst_path, overwrite) as out:
        decrypt_to(
            src,
            out,
            _own_fd(out),
            password,
            key=key,
            limits=limits,
            workers=workers,
            progress=progress,
            total=os.fstat(src.fileno()).st_size,
        )


def _rewrite_slots(
    path: StrPath,
    password: str | bytes,
    limits: KdfLimits,
    edit: Callable[[Header, int, bytes], list[bytes]],
) -> None:
    """Open ``path``'s header with ``password``, let ``edit`` build the new slot list, then
    atomically write new header + the payload bytes copied unchanged (never re-encrypted)."""
    credential = make_credential(password, None)
    check_limits_arg(limits)
    # atomic_output follows a symlink (the target is edited, so the old password stops working)
    # and keeps the file's permission bits.
    with builtins.open(path, "rb") as src:
        header = read_header(src)
        file_key, index = open_header(header, credential, limits)
        slots = edit(header, index, file_key)
        new_header = seal_header(header.chunk_log2, header.stream_id, file_key, slots)
        with atomic_output(path, overwrite=True) as out:
            write_all(out, new_header)
            shutil.copyfileobj(src, out, _COPY_SIZE)


def _new_slot(header: Header, password: str | bytes, name: str, kdf: Kdf, file_key: bytes) -> bytes:
    credential = Credential(encode_password(password, name), kdf)
    return seal_slot(
        header.prefix, credential, file_key, random_bytes(SALT_SIZE), random_bytes(IV_SIZE)
    )


def change_password(
    path: StrPath,
    old_password: str | bytes,
    new_password: str | bytes,
    *,
    kdf: Kdf = DEFAULT_KDF,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> None:
    """Replace the key slot ``old_password`` opens by one for ``new_password``; the payload bytes
    are copied unchanged, so this costs a KDF run and a file copy, never a re-encryption."""
    encode_password(new_password, "new_password")
    check_kdf(kdf)

    def edit(header: Header, index: int, file_key: bytes) -> list[bytes]:
        slots = [s.encoded for s in header.slots]
        slots[index] = _new_slot(header, new_password, "new_password", kdf, file_key)
        return slots

    _rewrite_slots(path, old_password, limits, edit)


def add_password(
    path: StrPath,
    password: str | bytes,
    new_password: str | bytes,
    *,
    kdf: Kdf = DEFAULT_KDF,
    limits: KdfLimits = DEFAULT_LIMITS,
) -> None:
    """Add a key slot for ``new_password``, authorized by an existing ``password``."""
    encode_password(new_password, "new_password")
    check_kdf(kdf)

    def edit(header: Header, index: int, file_key: bytes) -> list[bytes]:
        if len(header.slots) >= MAX_SLOTS:
            raise ValueError(f"a stream holds at most {MAX_SLOTS} key slots")
        new = _new_slot(header, new_password, "new_password", kdf, file_key)
        return [s.encoded for s in header.slots] + [new]

    _rewrite_slots(path, password, limits, edit)


def remove_password(
    path: StrPath, password: str | bytes, *, limits: KdfLimits = DEFAULT_LIMITS
) -> None:
    """Remove the key slot ``password`` opens; ``ValueError`` if it is the last slot."""

    def edit(header: Header, index: int, file_key: bytes) -> list[bytes]:
        if len(header.slots) == 1:
            raise ValueError("cannot remove the last key slot")
        return [s.encoded for i, s in enumerate(header.slots) if i != index]

    _rewrite_slots(path, password, limits, edit)
