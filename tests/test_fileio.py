"""Tests of the file API: open() objects, atomic file helpers, key-slot edits, inspect_stream."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest

import aes_hmac
from aes_hmac import (
    PBKDF2,
    HeaderError,
    KdfLimits,
    SlotInfo,
    StreamDamaged,
    StreamReader,
    StreamWriter,
    _pipeline,
    add_password,
    change_password,
    decrypt_file,
    decrypt_stream,
    encrypt_file,
    inspect_stream,
    remove_password,
)
from aes_hmac._stream import CHUNK_OVERHEAD

CHEAP = PBKDF2(iterations=1000)
CHUNK = 4096
FULL = CHUNK + CHUNK_OVERHEAD


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".aes-hmac-tmp-" in p.name)


def open_writer(fileobj: object, **kw: object) -> StreamWriter:
    w = aes_hmac.open(fileobj, "wb", password="pw", kdf=CHEAP, chunk_size=CHUNK, **kw)  # type: ignore[call-overload, arg-type]
    assert isinstance(w, StreamWriter)
    return w


def open_reader(fileobj: object, password: str = "pw") -> StreamReader:
    r = aes_hmac.open(fileobj, "rb", password=password)  # type: ignore[arg-type]
    assert isinstance(r, StreamReader)
    return r


# --- open() ---


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3])
def test_open_round_trip_in_odd_pieces(size: int) -> None:
    data = os.urandom(size)
    buf = io.BytesIO()
    with open_writer(buf) as w:
        for i in range(0, size, 999):
            assert w.write(data[i : i + 999]) == len(data[i : i + 999])
    assert not buf.closed, "a file object passed in stays open"
    blob = buf.getvalue()
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(blob), out, "pw")
    assert out.getvalue() == data
    with open_reader(io.BytesIO(blob)) as r:
        assert r.read() == data
        assert r.read() == b""


def test_open_paths(tmp_path: Path) -> None:
    path = tmp_path / "f.ahm"
    with aes_hmac.open(path, "wb", password="pw", kdf=CHEAP) as w:
        w.write(b"hello")
    with aes_hmac.open(str(path), "rb", password="pw") as r:
        assert r.read() == b"hello"
    assert inspect_stream(path).slots == (SlotInfo(CHEAP),)


def test_open_with_a_key(tmp_path: Path) -> None:
    key = os.urandom(32)
    buf = io.BytesIO()
    with aes_hmac.open(buf, "wb", key=key, chunk_size=CHUNK) as w:
        w.write(b"k" * 10000)
    assert inspect_stream(io.BytesIO(buf.getvalue())).slots == (SlotInfo(None),)
    with aes_hmac.open(io.BytesIO(buf.getvalue()), key=key) as r:
        assert r.read() == b"k" * 10000


def test_open_argument_errors() -> None:
    with pytest.raises(ValueError, match="mode must be 'rb' or 'wb', got 'r'"):
        aes_hmac.open(io.BytesIO(), "r", password="pw")  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="password or a key"):
        aes_hmac.open(io.BytesIO(), "wb")
    with pytest.raises(ValueError, match="chunk_size"):
        aes_hmac.open(io.BytesIO(), "wb", password="pw", chunk_size=100)


def test_copyfileobj_both_ways() -> None:
    data = os.urandom(3 * CHUNK + 11)
    buf = io.BytesIO()
    with open_writer(buf) as w:
        shutil.copyfileobj(io.BytesIO(data), w, 1000)
    out = io.BytesIO()
    with open_reader(io.BytesIO(buf.getvalue())) as r:
        shutil.copyfileobj(r, out, 777)
    assert out.getvalue() == data


def test_tarfile_stream_modes_round_trip() -> None:
    buf = io.BytesIO()
    files = {"a.txt": b"alpha" * 1000, "dir/b.bin": os.urandom(9000), "empty": b""}
    with open_writer(buf) as w, tarfile.open(fileobj=w, mode="w|") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    with open_reader(io.BytesIO(buf.getvalue())) as r:
        with tarfile.open(fileobj=r, mode="r|") as tar:
            got = {}
            for member in tar:
                f = tar.extractfile(member)
                assert f is not None
                got[member.name] = f.read()
        rest = r.read()  # tar's zero record padding; reading it authenticates the end
        assert rest == bytes(len(rest))
    assert got == files


def test_text_io_wrapper_both_ways() -> None:
    buf = io.BytesIO()
    text = "grüße, ünïcode\n" * 500
    with open_writer(buf) as w:
        tw = io.TextIOWrapper(w, encoding="utf-8")
        tw.write(text)
        tw.flush()
        tw.detach()
    r = open_reader(io.BytesIO(buf.getvalue()))
    with io.TextIOWrapper(r, encoding="utf-8") as tr:
        assert tr.read() == text


def test_reader_keeps_raising_the_same_error() -> None:
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(bytes(3 * CHUNK))
    blob = bytearray(buf.getvalue())
    blob[-FULL] ^= 1  # damage inside the second-to-last... any chunk after the first
    r = open_reader(io.BytesIO(bytes(blob)))
    got = bytearray()
    with pytest.raises(StreamDamaged) as first:
        while chunk := r.read(1000):
            got += chunk
    for _ in range(3):
        with pytest.raises(StreamDamaged) as again:
            r.read(10)
        assert again.value is first.value
    assert bytes(got) == bytes(len(got)) and len(got) % CHUNK == 0


def test_reader_wrong_password_fails_at_open() -> None:
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(b"x")
    with pytest.raises(HeaderError, match="wrong password or damaged header"):
        open_reader(io.BytesIO(buf.getvalue()), password="nope")


def test_reader_detects_truncation_and_trailing_data() -> None:
    buf = io.BytesIO()
    with open_writer(buf) as w:
        w.write(bytes(2 * CHUNK + 5))
    blob = buf.getvalue()
    with pytest.raises(StreamDamaged, match="truncated"):
        open_reader(io.BytesIO(blob[:-64])).read()
    with pytest.raises(StreamDamaged):
        open_reader(io.BytesIO(blob + b"\x00")).read()


def test_writer_exception_in_with_block_does_not_finalize() -> None:
    """Leaving the block by an exception must not make a partial stream look complete."""
    buf = io.BytesIO()
    with pytest.raises(RuntimeError), open_writer(buf) as w:
        w.write(bytes(CHUNK + 10))
        raise RuntimeError("boom")
    with pytest.raises(StreamDamaged, match="truncated"):
        decrypt_stream(io.BytesIO(buf.getvalue()), io.BytesIO(), "pw")


def test_unclosed_writer_collected_does_not_finalize() -> None:
    """Regression (review): garbage collection used to close, so seal, an abandoned writer."""
    import gc

    buf = io.BytesIO()

    def abandon() -> None:
        w = open_writer(buf)
        w.write(b"first half")

    abandon()
    gc.collect()
    with pytest.raises(StreamDamaged, match="truncated"):
        decrypt_stream(io.BytesIO(buf.getvalue()), io.BytesIO(), "pw")


def test_wrapped_writer_aborted_on_failure_reads_truncated() -> None:
    """A TextIOWrapper's close finalizes the writer; abort() on the failure path keeps it cut."""
    buf = io.BytesIO()
    w = open_writer(buf)
    with pytest.raises(RuntimeError), io.TextIOWrapper(w, encoding="utf-8") as text:
        try:
            text.write("partial")
            text.flush()
            raise RuntimeError("boom")
        except RuntimeError:
            w.abort()  # before the wrapper's __exit__ closes (and so would finalize) the writer
            raise
    with pytest.raises(StreamDamaged, match="truncated"):
        decrypt_stream(io.BytesIO(buf.getvalue()), io.BytesIO(), "pw")


def test_writer_refuses_writes_after_close() -> None:
    w = open_writer(io.BytesIO())
    w.close()
    w.close()  # idempotent
    with pytest.raises(ValueError, match="closed"):
        w.write(b"x")


# --- encrypt_file / decrypt_file ---


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "plain.bin"
    path.write_bytes(os.urandom(5 * CHUNK + 123))
    return path


def enc_file(src: Path, dst: Path, **kw: object) -> None:
    encrypt_file(src, dst, "pw", kdf=CHEAP, chunk_size=CHUNK, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("workers", [1, 2])
def test_file_round_trip_and_progress(plain: Path, tmp_path: Path, workers: int) -> None:
    before = digest(plain)
    seen: list[tuple[int, int | None]] = []
    enc_file(plain, tmp_path / "c", workers=workers, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (plain.stat().st_size, plain.stat().st_size)
    seen.clear()
    decrypt_file(
        tmp_path / "c",
        tmp_path / "p",
        "pw",
        workers=workers,
        progress=lambda d, t: seen.append((d, t)),
    )
    assert (tmp_path / "p").read_bytes() == plain.read_bytes()
    assert seen[-1] == ((tmp_path / "c").stat().st_size,) * 2
    assert digest(plain) == before
    assert leftovers(tmp_path) == []


def test_existing_destination_refused_unless_overwrite(plain: Path, tmp_path: Path) -> None:
    dst = tmp_path / "c"
    dst.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        enc_file(plain, dst)
    assert dst.read_bytes() == b"keep me"
    enc_file(plain, dst, overwrite=True)
    assert dst.read_bytes()[:8] == b"AESHMAC\x00"


def test_same_file_refused(plain: Path, tmp_path: Path) -> None:
    before = digest(plain)
    with pytest.raises(ValueError, match="different files"):
        enc_file(plain, plain, overwrite=True)
    link = tmp_path / "link"
    os.link(plain, link)
    with pytest.raises(ValueError, match="different files"):
        enc_file(plain, link, overwrite=True)
    assert digest(plain) == before


@pytest.fixture
def cipher(plain: Path, tmp_path: Path) -> Path:
    path = tmp_path / "cipher.ahm"
    enc_file(plain, path)
    return path


def assert_no_output(folder: Path, dst: Path) -> None:
    assert not dst.exists()
    assert leftovers(folder) == []


def test_decrypt_file_wrong_password_leaves_nothing(cipher: Path, tmp_path: Path) -> None:
    before = digest(cipher)
    with pytest.raises(HeaderError):
        decrypt_file(cipher, tmp_path / "out", "wrong")
    assert_no_output(tmp_path, tmp_path / "out")
    assert digest(cipher) == before


@pytest.mark.parametrize("workers", [1, 2])
def test_decrypt_file_damage_leaves_nothing(cipher: Path, tmp_path: Path, workers: int) -> None:
    blob = bytearray(cipher.read_bytes())
    blob[-10] ^= 0x40  # the final chunk: every earlier chunk verifies and was written to the temp
    cipher.write_bytes(bytes(blob))
    before = digest(cipher)
    with pytest.raises(StreamDamaged):
        decrypt_file(cipher, tmp_path / "out", "pw", workers=workers)
    assert_no_output(tmp_path, tmp_path / "out")
    assert digest(cipher) == before


def test_existing_destination_survives_a_failed_overwrite(cipher: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out"
    dst.write_bytes(b"old")
    with pytest.raises(HeaderError):
        decrypt_file(cipher, dst, "wrong", overwrite=True)
    assert dst.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


def test_disk_full_from_the_writer_leaves_nothing(
    plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real, real_at = _pipeline.write_all, _pipeline.pwrite_all
    calls = 0

    def full() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk(dst: object, data: object) -> None:
        full()
        real(dst, data)  # type: ignore[arg-type]

    def full_disk_at(fd: int, data: object, offset: int) -> None:
        full()  # the workers' own writes (a temporary file's descriptor)
        real_at(fd, data, offset)  # type: ignore[arg-type]

    monkeypatch.setattr(_pipeline, "write_all", full_disk)
    monkeypatch.setattr(_pipeline, "pwrite_all", full_disk_at)
    before = digest(plain)
    with pytest.raises(OSError, match="No space"):
        enc_file(plain, tmp_path / "c")
    assert_no_output(tmp_path, tmp_path / "c")
    assert digest(plain) == before


@pytest.mark.parametrize("which", ["encrypt", "decrypt"])
def test_keyboard_interrupt_from_progress_leaves_nothing(
    plain: Path, cipher: Path, tmp_path: Path, which: str
) -> None:
    def interrupt(done: int, total: int | None) -> None:
        if done > CHUNK:
            raise KeyboardInterrupt

    dst = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        if which == "encrypt":
            enc_file(plain, dst, progress=interrupt, workers=2)
        else:
            decrypt_file(cipher, dst, "pw", progress=interrupt, workers=2)
    assert_no_output(tmp_path, dst)


def test_missing_source_creates_nothing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        enc_file(tmp_path / "nope", tmp_path / "c")
    assert_no_output(tmp_path, tmp_path / "c")


# --- slot edits ---


def payload(path: Path) -> bytes:
    with path.open("rb") as f:
        size = inspect_stream(f).header_size
    return path.read_bytes()[size:]


def plaintext_of(path: Path, password: str) -> bytes:
    out = io.BytesIO()
    with path.open("rb") as f:
        decrypt_stream(f, out, password)
    return out.getvalue()


def test_change_password_keeps_payload_bytes(cipher: Path, plain: Path) -> None:
    before = payload(cipher)
    change_password(cipher, "pw", "new pw", kdf=CHEAP)
    assert payload(cipher) == before, "the payload is copied, never re-encrypted"
    assert plaintext_of(cipher, "new pw") == plain.read_bytes()
    with pytest.raises(HeaderError, match="wrong password"):
        plaintext_of(cipher, "pw")
    with pytest.raises(HeaderError, match="wrong password"):
        change_password(cipher, "pw", "other", kdf=CHEAP)
    assert leftovers(cipher.parent) == []


def test_change_password_through_a_symlink_edits_the_target(cipher: Path, plain: Path) -> None:
    """Regression (review): the rename replaced the link and left the real file's old slot."""
    link = cipher.parent / "link.ahm"
    link.symlink_to(cipher.name)
    change_password(link, "pw", "new pw", kdf=CHEAP)
    assert link.is_symlink()
    assert plaintext_of(cipher, "new pw") == plain.read_bytes()
    with pytest.raises(HeaderError, match="wrong password"):
        plaintext_of(cipher, "pw")


def test_change_password_keeps_file_mode(cipher: Path) -> None:
    cipher.chmod(0o640)
    change_password(cipher, "pw", "new pw", kdf=CHEAP)
    assert cipher.stat().st_mode & 0o777 == 0o640


def test_add_and_remove_passwords(cipher: Path, plain: Path) -> None:
    before = payload(cipher)
    add_password(cipher, "pw", "second", kdf=PBKDF2(1001))
    info = inspect_stream(cipher)
    assert info.slots == (SlotInfo(CHEAP), SlotInfo(PBKDF2(1001)))
    assert plaintext_of(cipher, "pw") == plaintext_of(cipher, "second") == plain.read_bytes()
    remove_password(cipher, "pw")
    assert inspect_stream(cipher).slots == (SlotInfo(PBKDF2(1001)),)
    with pytest.raises(HeaderError):
        plaintext_of(cipher, "pw")
    with pytest.raises(ValueError, match="last key slot"):
        remove_password(cipher, "second")
    assert payload(cipher) == before
    assert plaintext_of(cipher, "second") == plain.read_bytes()


def test_slot_edit_with_wrong_password_changes_nothing(cipher: Path) -> None:
    before = digest(cipher)
    with pytest.raises(HeaderError):
        add_password(cipher, "wrong", "x", kdf=CHEAP)
    with pytest.raises(HeaderError):
        remove_password(cipher, "wrong")
    assert digest(cipher) == before
    assert leftovers(cipher.parent) == []


def test_slot_edit_respects_kdf_limits(cipher: Path) -> None:
    with pytest.raises(HeaderError, match="exceed the limit"):
        add_password(cipher, "pw", "x", kdf=CHEAP, limits=KdfLimits(max_pbkdf2_iterations=10))


def test_inspect_stream_rejects_non_streams(tmp_path: Path) -> None:
    with pytest.raises(HeaderError, match="not an aes-hmac stream"):
        inspect_stream(io.BytesIO(b"\xa5" + bytes(100)))


def test_slot_edits_check_kdf_and_limits_before_any_kdf(cipher: Path) -> None:
    """Review: a bad kdf only failed after the old password's KDF had run; limits not checked."""
    with pytest.raises(TypeError, match="kdf must be PBKDF2, Scrypt or Argon2id, not str"):
        change_password(cipher, "pw", "new", kdf="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="kdf must be PBKDF2, Scrypt or Argon2id, not str"):
        add_password(cipher, "pw", "new", kdf="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="limits must be KdfLimits, not str"):
        remove_password(cipher, "pw", limits="x")  # type: ignore[arg-type]


# --- destinations that are not plain files (review 2, item 1.1) ---


@pytest.mark.parametrize("overwrite", [False, True])
def test_fifo_destination_refused_and_kept(
    plain: Path, cipher: Path, tmp_path: Path, overwrite: bool
) -> None:
    """Regression: with overwrite the rename replaced the FIFO by a regular file."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ValueError, match=f"dst_path {fifo} is not a regular file"):
        enc_file(plain, fifo, overwrite=overwrite)
    with pytest.raises(ValueError, match="is not a regular file"):
        decrypt_file(cipher, fifo, "pw", overwrite=overwrite)
    assert fifo.is_fifo()
    assert leftovers(tmp_path) == []


def test_folder_destination_refused(plain: Path, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(ValueError, match="is not a regular file"):
        enc_file(plain, folder, overwrite=True)
    assert folder.is_dir()


def test_symlink_to_fifo_refused(plain: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo.name)
    with pytest.raises(ValueError, match=f"dst_path {link} is not a regular file"):
        enc_file(plain, link, overwrite=True)
    assert link.is_symlink() and fifo.is_fifo()


def test_symlink_destination_replaces_its_target(cipher: Path, plain: Path, tmp_path: Path) -> None:
    """Regression: the rename replaced the link itself and left its target untouched."""
    sub = tmp_path / "sub"
    sub.mkdir()
    target = sub / "target"
    target.write_bytes(b"old")
    link = tmp_path / "link"
    link.symlink_to(target)
    decrypt_file(cipher, link, "pw", overwrite=True)
    assert link.is_symlink()
    assert target.read_bytes() == plain.read_bytes()
    assert leftovers(tmp_path) == [] and leftovers(sub) == []


def test_symlink_destination_needs_overwrite(cipher: Path, tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"old")
    link = tmp_path / "link"
    link.symlink_to(target.name)
    with pytest.raises(FileExistsError):
        decrypt_file(cipher, link, "pw")
    assert target.read_bytes() == b"old"


def test_replaced_file_keeps_its_mode_new_file_is_private(plain: Path, tmp_path: Path) -> None:
    dst = tmp_path / "c"
    enc_file(plain, dst)
    assert dst.stat().st_mode & 0o777 == 0o600
    dst.chmod(0o644)
    enc_file(plain, dst, overwrite=True)
    assert dst.stat().st_mode & 0o777 == 0o644
