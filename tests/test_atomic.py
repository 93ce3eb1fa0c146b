"""The writer lifecycle at the file level (issue 16): ``atomic_output`` and ``open(path, "wb")``
write a file with no name (``O_TMPFILE``) that only a clean close links in; the named fallback
removes this tool's stale temporary files; an unwritable folder is reported by the destination's
name; ``close()`` with an exception in flight discards."""

from __future__ import annotations

import errno
import gc
import io
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import aes_hmac
from aes_hmac import PBKDF2, DecryptionError, WriterDiscardedWarning, atomic_output
from aes_hmac._files import atomic as _atomic

PASSWORD = "lifecycle"
CHEAP = PBKDF2(iterations=1000)
STALE_AGE = 3600.0  # seconds before this run: a temporary file a killed run left behind
TMP_NAME = ".x.aes-hmac-tmp-0123456789ab"  # the pattern of this tool's temporary files


def plain(path: Path) -> bytes:
    with aes_hmac.open(path, "rb", password=PASSWORD) as f:
        return f.read()


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture
def no_tmpfile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fallback path, as on a platform or file system without ``O_TMPFILE``."""
    monkeypatch.delattr(os, "O_TMPFILE", raising=False)


# --- O_TMPFILE: nothing has a name until the commit ------------------------------------------


def test_no_directory_entry_while_writing(tmp_path: Path) -> None:
    dst = tmp_path / "x"
    with atomic_output(dst) as out:
        out.write(b"secret plaintext")
        out.flush()
        assert names(tmp_path) == []  # was [".x.aes-hmac-tmp-..."]: a kill left it behind
    assert dst.read_bytes() == b"secret plaintext"
    assert names(tmp_path) == ["x"]


def test_overwrite_keeps_the_old_file_and_its_mode_until_the_commit(tmp_path: Path) -> None:
    dst = tmp_path / "x"
    dst.write_bytes(b"old")
    dst.chmod(0o640)
    with atomic_output(dst, overwrite=True) as out:
        out.write(b"new")
        assert names(tmp_path) == ["x"] and dst.read_bytes() == b"old"
    assert dst.read_bytes() == b"new"
    assert dst.stat().st_mode & 0o777 == 0o640
    assert names(tmp_path) == ["x"]


def test_new_file_is_private_and_never_clobbers(tmp_path: Path) -> None:
    dst = tmp_path / "x"
    with atomic_output(dst) as out:
        out.write(b"mine")
    assert dst.stat().st_mode & 0o077 == 0
    with pytest.raises(FileExistsError, match="overwrite=True"):
        with atomic_output(tmp_path / "y") as out:
            out.write(b"late")
            (tmp_path / "y").write_bytes(b"theirs")  # appears meanwhile
    assert (tmp_path / "y").read_bytes() == b"theirs"
    assert names(tmp_path) == ["x", "y"]


def test_exception_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(KeyboardInterrupt):
        with atomic_output(tmp_path / "x") as out:
            out.write(b"half")
            raise KeyboardInterrupt
    assert names(tmp_path) == []


# --- the named fallback and its stale temporary files ----------------------------------------


def plant(path: Path, age: float) -> Path:
    path.write_bytes(b"plaintext left by a kill")
    when = time.time() - age
    os.utime(path, (when, when))
    return path


@pytest.mark.usefixtures("no_tmpfile")
def test_fallback_is_atomic_and_removes_only_its_own_stale_files(tmp_path: Path) -> None:
    stale = plant(tmp_path / TMP_NAME, STALE_AGE)
    fresh = plant(tmp_path / ".x.aes-hmac-tmp-ba9876543210", -STALE_AGE)  # newer than the run
    other = plant(tmp_path / ".y.aes-hmac-tmp-0123456789ab", STALE_AGE)  # another target's
    lookalike = plant(tmp_path / ".x.aes-hmac-tmp-keep", STALE_AGE)  # not the pattern
    link = tmp_path / ".x.aes-hmac-tmp-aaaaaaaaaaaa"
    link.symlink_to(other)  # not a regular file
    kept = {fresh.name, other.name, lookalike.name, link.name}
    dst = tmp_path / "x"
    with atomic_output(dst) as out:
        out.write(b"data")
        during = set(names(tmp_path)) - kept
        assert len(during) == 1 and during.pop().startswith(".x.aes-hmac-tmp-")
        assert not dst.exists()
    assert dst.read_bytes() == b"data"
    assert not stale.exists()  # was kept forever: no later run removed it
    assert set(names(tmp_path)) == kept | {"x"}


@pytest.mark.usefixtures("no_tmpfile")
def test_fallback_exception_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "x") as out:
            out.write(b"half")
            raise RuntimeError
    assert names(tmp_path) == []


def test_other_users_stale_file_is_left_alone(tmp_path: Path, no_tmpfile: None) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to plant another user's file")
    theirs = plant(tmp_path / TMP_NAME, STALE_AGE)
    os.chown(theirs, 65534, 65534)
    os.utime(theirs, (time.time() - STALE_AGE,) * 2)
    with atomic_output(tmp_path / "x") as out:
        out.write(b"data")
    assert theirs.exists()


# --- an unwritable folder: the error names the destination -----------------------------------


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A real read-only file system (a tmpfs mounted ``ro``): needs root and mount rights."""
    folder = tmp_path / "ro"
    folder.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode != 0:
        pytest.skip("cannot mount a read-only tmpfs here (test_refused_open_... covers it)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("nameless", [True, False], ids=["O_TMPFILE", "fallback"])
def test_read_only_folder_error_names_the_destination(
    read_only_folder: Path, nameless: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not nameless:
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    dst = read_only_folder / "x"
    with pytest.raises(OSError) as caught:
        with atomic_output(dst):
            pass
    assert caught.value.errno == errno.EROFS
    assert caught.value.filename == str(dst)  # was ".x.aes-hmac-tmp-...", never created


@pytest.mark.parametrize("nameless", [True, False], ids=["O_TMPFILE", "fallback"])
@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_refused_open_error_names_the_destination(
    tmp_path: Path, code: int, nameless: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without mount rights: ``os.open`` of the output refused as a read-only or forbidden
    folder refuses it (the cleanup then must not replace the error with its own)."""
    if not nameless:
        monkeypatch.delattr(os, "O_TMPFILE", raising=False)
    real_open = os.open

    def refuse(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_WRONLY:
            raise OSError(code, os.strerror(code), path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(_atomic.os, "open", refuse)
    dst = tmp_path / "x"
    with pytest.raises(OSError) as caught:
        with atomic_output(dst):
            pass
    assert caught.value.errno == code
    assert caught.value.filename == str(dst)
    assert names(tmp_path) == []


# --- open(path, "wb") and the stream writer ----------------------------------------------------


def test_open_path_wb_is_atomic(tmp_path: Path) -> None:
    dst = tmp_path / "x.ahm"
    dst.write_bytes(b"old")
    dst.chmod(0o640)
    with aes_hmac.open(dst, "wb", password=PASSWORD, kdf=CHEAP) as f:
        f.write(b"new data")
        assert dst.read_bytes() == b"old"  # was written in place: a cut stream meanwhile
        assert names(tmp_path) == ["x.ahm"]
    assert plain(dst) == b"new data"
    assert dst.stat().st_mode & 0o777 == 0o640


def test_close_inside_except_discards(tmp_path: Path) -> None:
    dst = tmp_path / "x.ahm"
    writer = aes_hmac.open(dst, "wb", password=PASSWORD, kdf=CHEAP)
    writer.write(b"first half")
    try:
        raise RuntimeError("failed half way")
    except RuntimeError:
        with pytest.warns(WriterDiscardedWarning):
            writer.close()  # cleanup code, as fsspec and pandas run it
    assert names(tmp_path) == []  # was a complete stream holding "first half"


def test_close_inside_unrelated_except_warns_naming_path_and_exception(tmp_path: Path) -> None:
    """Regression (review of issue 16, finding 3a): an explicit close() inside an unrelated
    ``except`` block dropped the file silently; the discard now says so, without data."""
    dst = tmp_path / "x.ahm"
    writer = aes_hmac.open(dst, "wb", password=PASSWORD, kdf=CHEAP)
    writer.write(b"all the data")
    with pytest.warns(WriterDiscardedWarning) as caught:
        try:
            raise KeyError("optional column missing")
        except KeyError:
            writer.close()
    assert names(tmp_path) == []
    [warning] = caught
    message = str(warning.message)
    assert str(dst) in message and "KeyError" in message
    assert "all the data" not in message and PASSWORD not in message
    assert "optional column" not in message  # the exception's text may carry data
    assert warning.filename == __file__  # points at the close() call, not into the library


def test_warning_made_an_error_still_discards(tmp_path: Path) -> None:
    """The warning is emitted after the discard: ``-W error`` cannot leave a file behind."""
    writer = aes_hmac.open(tmp_path / "x.ahm", "wb", password=PASSWORD, kdf=CHEAP)
    writer.write(b"first half")
    with warnings.catch_warnings():
        warnings.simplefilter("error", WriterDiscardedWarning)
        with pytest.raises(WriterDiscardedWarning):
            try:
                raise RuntimeError
            except RuntimeError:
                writer.close()
    assert writer.closed
    assert names(tmp_path) == []


def test_explicit_failure_paths_do_not_warn(tmp_path: Path) -> None:
    """Only a discard inferred from an exception in flight warns: ``abort()`` and a ``with``
    block left by an exception are the caller's own decision."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", WriterDiscardedWarning)
        writer = aes_hmac.open(tmp_path / "a.ahm", "wb", password=PASSWORD, kdf=CHEAP)
        writer.abort()
        with pytest.raises(RuntimeError):
            with aes_hmac.open(tmp_path / "b.ahm", "wb", password=PASSWORD, kdf=CHEAP) as w:
                w.write(b"half")
                raise RuntimeError
    assert names(tmp_path) == []


def test_writer_opened_in_except_left_by_reraise_discards(tmp_path: Path) -> None:
    """Regression (review of issue 16, finding 3b): the exception handled when the writer
    opened was exempt even when raised again, so a close() in ``finally`` committed partial
    data. Raised again, it has a new traceback: in flight."""
    dst = tmp_path / "report.ahm"
    with pytest.raises(ConnectionError), pytest.warns(WriterDiscardedWarning):
        try:
            raise ConnectionError("upstream down")
        except ConnectionError as exc:
            writer = aes_hmac.open(dst, "wb", password=PASSWORD, kdf=CHEAP)
            writer.write(b"PARTIAL")
            try:
                raise exc
            finally:
                writer.close()
    assert names(tmp_path) == []


def test_writer_opened_in_except_left_by_reraise_from_a_callee_discards(tmp_path: Path) -> None:
    """A bare ``raise`` of the handled exception in a helper: it reaches the caller's frame
    with a new traceback, so the close() on its way out discards."""

    def reraise() -> None:
        raise  # called only inside the except block below: re-raises its exception

    dst = tmp_path / "report.ahm"
    with pytest.raises(ConnectionError), pytest.warns(WriterDiscardedWarning):
        try:
            raise ConnectionError("upstream down")
        except ConnectionError:
            writer = aes_hmac.open(dst, "wb", password=PASSWORD, kdf=CHEAP)
            try:
                writer.write(b"PARTIAL")
                reraise()
            finally:
                writer.close()
    assert names(tmp_path) == []


def test_writer_opened_in_except_commits_despite_nested_handled_exception(
    tmp_path: Path,
) -> None:
    """The exemption is the handling at open: an inner exception handled and finished in
    between does not count at the close."""
    dst = tmp_path / "report.ahm"
    try:
        raise ValueError("outer")
    except ValueError:
        writer = aes_hmac.open(dst, "wb", password=PASSWORD, kdf=CHEAP)
        writer.write(b"report")
        try:
            int("x")
        except ValueError:
            pass
        writer.close()
    assert plain(dst) == b"report"


def test_close_in_finally_while_propagating_discards(tmp_path: Path) -> None:
    dst = tmp_path / "x.ahm"
    writer = aes_hmac.open(dst, "wb", password=PASSWORD, kdf=CHEAP)
    with pytest.raises(RuntimeError):
        try:
            writer.write(b"first half")
            raise RuntimeError
        finally:
            writer.close()
    assert names(tmp_path) == []


def test_writer_opened_and_closed_inside_except_commits(tmp_path: Path) -> None:
    """An exception already handled when the writer opened is not the writer's failure."""
    dst = tmp_path / "report.ahm"
    try:
        raise KeyError("handled")
    except KeyError:
        writer = aes_hmac.open(dst, "wb", password=PASSWORD, kdf=CHEAP)
        writer.write(b"error report")
        writer.close()
    assert plain(dst) == b"error report"


def test_unclosed_writer_collected_leaves_nothing(tmp_path: Path) -> None:
    writer = aes_hmac.open(tmp_path / "x.ahm", "wb", password=PASSWORD, kdf=CHEAP)
    writer.write(b"x" * 100_000)
    del writer
    gc.collect()
    assert names(tmp_path) == []  # was a truncated stream under the name


def test_caller_file_object_close_inside_except_reads_truncated(tmp_path: Path) -> None:
    """On a caller's file object, discarding can only mean: no final chunk."""
    dst = tmp_path / "x.ahm"
    with dst.open("wb") as raw:
        writer = aes_hmac.open(raw, "wb", password=PASSWORD, kdf=CHEAP)
        writer.write(b"first half")
        try:
            raise RuntimeError
        except RuntimeError:
            with pytest.warns(WriterDiscardedWarning, match="BufferedWriter"):
                writer.close()
    with pytest.raises(DecryptionError):
        plain(dst)


def test_text_wrapper_closed_during_an_exception_discards(tmp_path: Path) -> None:
    dst = tmp_path / "x.ahm"
    with pytest.raises(ValueError, match="row 3"), pytest.warns(WriterDiscardedWarning):
        with io.TextIOWrapper(aes_hmac.open(dst, "wb", password=PASSWORD, kdf=CHEAP)) as text:
            for row in range(5):
                if row == 3:
                    raise ValueError("row 3")
                text.write(f"{row}\n")
    assert names(tmp_path) == []
