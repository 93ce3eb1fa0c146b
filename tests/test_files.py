"""Tests of whole files: atomic encrypt_file / decrypt_file, key-slot edits, inspect_stream."""

from __future__ import annotations

import errno
import hashlib
import io
import os
from pathlib import Path

import pytest

import aes_hmac
from aes_hmac import (
    PBKDF2,
    HeaderError,
    KdfLimits,
    SlotInfo,
    StreamDamaged,
    add_password,
    armor,
    change_password,
    decrypt_file,
    decrypt_stream,
    encrypt_file,
    inspect_stream,
    remove_password,
)
from aes_hmac._files import files as _files
from aes_hmac._kdf import KDF_CLASS_NAMES
from aes_hmac._stream import engine as _engine
from aes_hmac._stream import io as _io
from aes_hmac._stream import parallel as _parallel
from aes_hmac._stream.format import CHUNK_OVERHEAD

CHEAP = PBKDF2(iterations=1000)
CHUNK = 4096
FULL = CHUNK + CHUNK_OVERHEAD


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".aes-hmac-tmp-" in p.name)


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
    real, real_at = _io.write_all, _io.pwrite_all
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

    for module in (_engine, _parallel, _files):
        monkeypatch.setattr(module, "write_all", full_disk)
    monkeypatch.setattr(_parallel, "pwrite_all", full_disk_at)
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
    with pytest.raises(HeaderError, match="this is an aes-hmac token, not a stream"):
        inspect_stream(io.BytesIO(b"\xa5" + bytes(100)))
    with pytest.raises(HeaderError, match=r"not an aes-hmac stream$"):
        inspect_stream(io.BytesIO(b"PK\x03\x04" + bytes(100)))


def test_slot_edits_check_kdf_and_limits_before_any_kdf(cipher: Path) -> None:
    """Review: a bad kdf only failed after the old password's KDF had run; limits not checked."""
    with pytest.raises(TypeError, match=f"kdf must be {KDF_CLASS_NAMES}, not str"):
        change_password(cipher, "pw", "new", kdf="x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=f"kdf must be {KDF_CLASS_NAMES}, not str"):
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


# --- aes_hmac.atomic_output and its symlink policy (issue 10 #11) ---


def test_atomic_output_leaves_nothing_on_failure(tmp_path: Path) -> None:
    dst = tmp_path / "out"
    with pytest.raises(RuntimeError), aes_hmac.atomic_output(dst) as out:
        out.write(b"partial")
        raise RuntimeError("stop")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_never_replaces_without_overwrite(tmp_path: Path) -> None:
    dst = tmp_path / "out"
    dst.write_bytes(b"old")
    with pytest.raises(FileExistsError), aes_hmac.atomic_output(dst, overwrite=False):
        pass
    with aes_hmac.atomic_output(dst, overwrite=True) as out:
        out.write(b"new")
    assert dst.read_bytes() == b"new"
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_output_before_commit_failure_keeps_the_old_file(tmp_path: Path) -> None:
    dst = tmp_path / "out"
    dst.write_bytes(b"old")

    def refuse() -> None:
        raise RuntimeError("changed")

    with pytest.raises(RuntimeError), aes_hmac.atomic_output(dst, True, refuse) as out:
        out.write(b"new")
    assert dst.read_bytes() == b"old" and leftovers(tmp_path) == []


@pytest.mark.parametrize("overwrite", [False, True])
def test_dangling_symlink_is_never_written_through(
    plain: Path, cipher: Path, tmp_path: Path, overwrite: bool
) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path / "nowhere" / "target")
    (tmp_path / "nowhere").mkdir()
    dangling = f"dst_path {link} is a symlink to nothing: refusing to create a file through it"
    with pytest.raises(ValueError, match=dangling):
        enc_file(plain, link, overwrite=overwrite)
    with pytest.raises(ValueError, match=dangling):
        decrypt_file(cipher, link, "pw", overwrite=overwrite)
    with pytest.raises(ValueError, match="dst_path"), aes_hmac.atomic_output(link, overwrite):
        pass
    chain = tmp_path / "chain"
    chain.symlink_to(link.name)  # a link to the dangling link leads to nothing as well
    with pytest.raises(ValueError, match=f"dst_path {chain} is a symlink to nothing"):
        enc_file(plain, chain, overwrite=overwrite)
    assert link.is_symlink() and list((tmp_path / "nowhere").iterdir()) == []
    assert leftovers(tmp_path) == []


def test_own_symlink_in_a_sticky_folder_is_followed(plain: Path, tmp_path: Path) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    target = tmp_path / "target"
    target.write_bytes(b"old")
    link = shared / "out"
    link.symlink_to(target)
    enc_file(plain, link, overwrite=True)
    assert link.is_symlink() and target.read_bytes().startswith(b"AESHMAC")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant another user's FIFO")
def test_another_users_fifo_in_a_sticky_folder_is_refused(tmp_path: Path) -> None:
    """A FIFO (or device) someone else owns in /tmp may be theirs to read: the output policy
    refuses it there (the CLI writes FIFOs in place), also at the end of one's own link."""
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    fifo = shared / "out"
    os.mkfifo(fifo, 0o622)
    os.chown(fifo, 65534, 65534)
    with pytest.raises(ValueError, match=f"dst_path {fifo} is another user's FIFO in a shared"):
        aes_hmac.check_output_link(fifo)
    own = tmp_path / "own"
    own.symlink_to(fifo)
    with pytest.raises(ValueError, match=f"output {own} is another user's FIFO in a shared"):
        aes_hmac.check_output_link(own, "output")
    os.chown(fifo, os.geteuid(), os.getegid())
    aes_hmac.check_output_link(fifo)  # one's own FIFO passes


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to plant another user's symlink")
def test_another_users_symlink_in_a_sticky_folder_is_refused(
    plain: Path, cipher: Path, tmp_path: Path
) -> None:
    shared = tmp_path / "tmp"
    shared.mkdir()
    shared.chmod(0o1777)
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep me")
    planted = shared / "out"
    planted.symlink_to(victim)
    os.lchown(planted, 65534, 65534)
    refused = f"dst_path {planted} is a symlink owned by another user in a shared folder"
    with pytest.raises(ValueError, match=refused):
        enc_file(plain, planted, overwrite=True)
    with pytest.raises(ValueError, match=refused):
        decrypt_file(cipher, planted, "pw", overwrite=True)
    # The user's own link to the planted one: the planted link is still on the way.
    own = tmp_path / "own"
    own.symlink_to(planted)
    with pytest.raises(ValueError, match=f"dst_path {own} is a symlink owned by another user"):
        enc_file(plain, own, overwrite=True)
    # Slot edits follow the same policy, naming their own argument.
    os.link(cipher, shared / "enc")
    edited = shared / "edit"
    edited.symlink_to(shared / "enc")
    os.lchown(edited, 65534, 65534)
    with pytest.raises(ValueError, match=f"path {edited} is a symlink owned by another user"):
        add_password(edited, "pw", "other", kdf=CHEAP)
    assert victim.read_bytes() == b"keep me" and leftovers(shared) == []
    os.lchown(planted, os.geteuid(), os.getegid())
    enc_file(plain, planted, overwrite=True)
    assert victim.read_bytes().startswith(b"AESHMAC")


def test_replaced_file_keeps_its_mode_new_file_is_private(plain: Path, tmp_path: Path) -> None:
    dst = tmp_path / "c"
    enc_file(plain, dst)
    assert dst.stat().st_mode & 0o777 == 0o600
    dst.chmod(0o644)
    enc_file(plain, dst, overwrite=True)
    assert dst.stat().st_mode & 0o777 == 0o644


# --- one credential rule for files and slot edits ---


def test_files_take_a_key_as_password_or_as_key(plain: Path, tmp_path: Path) -> None:
    key = aes_hmac.Key(bytes(range(32)))
    encrypt_file(plain, tmp_path / "a", key=key, chunk_size=CHUNK)
    encrypt_file(plain, tmp_path / "b", key, chunk_size=CHUNK)
    for name in ("a", "b"):
        assert inspect_stream(tmp_path / name).slots == (SlotInfo(None),)
        decrypt_file(tmp_path / name, tmp_path / f"{name}.out", key=bytes(range(32)))
        assert (tmp_path / f"{name}.out").read_bytes() == plain.read_bytes()


def test_raw_key_slots_are_edited_like_password_slots(cipher: Path, plain: Path) -> None:
    key, other = aes_hmac.Key(bytes(32)), aes_hmac.Key(bytes(range(32)))
    before = payload(cipher)
    add_password(cipher, "pw", key)
    assert inspect_stream(cipher).slots == (SlotInfo(CHEAP), SlotInfo(None))
    change_password(cipher, key, other)
    with pytest.raises(HeaderError):
        decrypt_stream(io.BytesIO(cipher.read_bytes()), io.BytesIO(), key=key)
    out = io.BytesIO()
    decrypt_stream(io.BytesIO(cipher.read_bytes()), out, key=other)
    assert out.getvalue() == plain.read_bytes()
    remove_password(cipher, "pw")
    assert inspect_stream(cipher).slots == (SlotInfo(None),)
    change_password(cipher, other, aes_hmac.PasswordKey("again", kdf=CHEAP))
    assert inspect_stream(cipher).slots == (SlotInfo(CHEAP),)
    assert plaintext_of(cipher, "again") == plain.read_bytes()
    assert payload(cipher) == before


def test_slot_edit_secrets_are_checked_by_name(cipher: Path) -> None:
    before = digest(cipher)
    with pytest.raises(TypeError, match="new must be str, bytes, Key or PasswordKey, not int"):
        add_password(cipher, "pw", 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="old must be str, bytes, Key or PasswordKey, not NoneType"):
        change_password(cipher, None, "x")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="new must not be empty"):
        change_password(cipher, "pw", "")
    assert digest(cipher) == before


def test_keyword_names_that_never_shipped_are_refused(cipher: Path) -> None:
    """The package was never released: no alias for keyword names of an earlier draft."""
    before = digest(cipher)
    with pytest.raises(TypeError, match="unexpected keyword argument 'old_password'"):
        change_password(cipher, old_password="pw", new_password="two", kdf=CHEAP)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="unexpected keyword argument 'password'"):
        add_password(cipher, password="pw", new="three", kdf=CHEAP)  # type: ignore[call-arg]
    assert digest(cipher) == before


# --- issue 10: concurrent edits, duplicate slots, interrupts; issue 12: paths and messages ---


def _race_worker(secret: str, role: str, files: list[str], barrier: object) -> None:
    """One side of the race: for each file, wait for the other side, then edit at once."""
    for name in files:
        barrier.wait()  # type: ignore[attr-defined]
        if role == "remove":
            remove_password(name, secret)
        else:
            add_password(name, "main", secret, kdf=CHEAP)


@pytest.mark.parametrize("armored", [False, True], ids=["binary", "armored"])
def test_racing_remove_and_add_never_undo_the_removal(tmp_path: Path, armored: bool) -> None:
    """Issue 10 #4: remove_password(leaked) racing add_password(...) in another process (each
    edit released by a barrier at the same moment, 12 files). Before the lock, the later rename
    won: 3 slots and the leaked password still opened the file. Armored files too (the review
    found the CLI's armored rekey edited a private copy outside the lock)."""
    import multiprocessing

    files = []
    for i in range(12):
        name = tmp_path / f"f{i}.ahm"
        encrypt_file(_plain_file(tmp_path, i), name, "main", kdf=CHEAP)
        add_password(name, "main", "leaked", kdf=CHEAP)
        if armored:
            _armor_in_place(name)
        files.append(str(name))
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=_race_worker, args=("leaked", "remove", files, barrier)),
        ctx.Process(target=_race_worker, args=("added", "add", files, barrier)),
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    for name in files:
        path = Path(name)
        assert path.read_bytes().startswith(b"-----BEGIN") == armored
        if armored:
            _dearmor_in_place(path)
        assert len(inspect_stream(path).slots) == 2
        assert plaintext_of(path, "added") == plaintext_of(path, "main") == b"plain"
        with pytest.raises(HeaderError, match="wrong password"):
            plaintext_of(path, "leaked")
    assert leftovers(tmp_path) == []
    assert not [p.name for p in tmp_path.iterdir() if p.name.endswith(_io.LOCK_SUFFIX)]


def _armor_in_place(path: Path) -> None:
    binary = path.read_bytes()
    with path.open("wb") as out:
        writer = armor.ArmorWriter(out)
        writer.write(binary)
        writer.close()


def _dearmor_in_place(path: Path) -> None:
    with path.open("rb") as f:
        binary = armor.ArmorReader(f).read()
    path.write_bytes(binary)


def test_armored_file_edited_in_place_stays_armored(cipher: Path) -> None:
    _armor_in_place(cipher)
    add_password(cipher, "pw", "second", kdf=CHEAP)
    assert cipher.read_bytes().startswith(b"-----BEGIN AES-HMAC ENCRYPTED FILE-----")
    assert remove_password(cipher, "pw") == 1
    _dearmor_in_place(cipher)
    assert [s.kdf for s in inspect_stream(cipher).slots] == [CHEAP]


def _plain_file(folder: Path, i: int) -> Path:
    path = folder / f"plain{i}"
    path.write_bytes(b"plain")
    return path


def test_edits_in_threads_are_serialised_too(cipher: Path, plain: Path) -> None:
    """flock locks open files, not processes: threads of one program wait for each other."""
    import threading

    names = [f"pw{i}" for i in range(6)]
    threads = [
        threading.Thread(target=add_password, args=(cipher, "pw", n), kwargs={"kdf": CHEAP})
        for n in names
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(inspect_stream(cipher).slots) == 7, "no add was lost"
    for n in names:
        assert plaintext_of(cipher, n) == plain.read_bytes()


def test_portable_lock_file_serialises_and_is_removed(tmp_path: Path) -> None:
    """The fallback where flock is missing (Windows): a lock file taken exclusively."""
    import threading

    target = tmp_path / "f"
    target.write_bytes(b"data")
    order: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def first() -> None:
        with _io.locked_for_edit(str(target), portable=True):
            order.append("first in")
            inside.set()
            release.wait(10)
            order.append("first out")

    def second() -> None:
        inside.wait(10)
        with _io.locked_for_edit(str(target), portable=True) as f:
            order.append("second in")
            assert f.read() == b"data"

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    inside.wait(10)
    assert (tmp_path / f".f{_io.LOCK_SUFFIX}").exists()
    release.set()
    for t in threads:
        t.join()
    assert order == ["first in", "first out", "second in"]
    assert not (tmp_path / f".f{_io.LOCK_SUFFIX}").exists()


def _two_slots_for_one_password(path: Path) -> None:
    """A stream with two slots for "pw" (as add_password made before duplicates were refused)."""
    cred = aes_hmac._keys.credentials.to_credential("pw", kdf=CHEAP)
    with path.open("wb") as out:
        _engine.seal_stream(
            io.BytesIO(b"secret"),
            out,
            [cred, cred, aes_hmac._keys.credentials.to_credential("other", kdf=CHEAP)],
            chunk_log2=12,
            stream_id=os.urandom(32),
            file_key=os.urandom(32),
            salts=[os.urandom(16) for _ in range(3)],
            slot_ivs=[os.urandom(16) for _ in range(3)],
            next_iv=lambda: os.urandom(16),
        )


def test_remove_removes_every_slot_the_password_opens(tmp_path: Path) -> None:
    """Issue 10 #5: with two slots for one password, removal took one and the password still
    worked. Now every slot goes and the count is returned."""
    path = tmp_path / "dup.ahm"
    _two_slots_for_one_password(path)
    assert remove_password(path, "pw") == 2
    assert len(inspect_stream(path).slots) == 1
    with pytest.raises(HeaderError, match="wrong password"):
        plaintext_of(path, "pw")
    assert plaintext_of(path, "other") == b"secret"


def test_removing_nothing_is_an_error(cipher: Path) -> None:
    add_password(cipher, "pw", "second", kdf=CHEAP)
    before = digest(cipher)
    with pytest.raises(HeaderError, match="wrong password"):
        remove_password(cipher, "never added")
    assert digest(cipher) == before


def test_change_password_drops_every_slot_of_the_old_one(tmp_path: Path) -> None:
    path = tmp_path / "dup.ahm"
    _two_slots_for_one_password(path)
    change_password(path, "pw", "new", kdf=CHEAP)
    assert len(inspect_stream(path).slots) == 2
    with pytest.raises(HeaderError, match="wrong password"):
        plaintext_of(path, "pw")
    assert plaintext_of(path, "new") == b"secret"


@pytest.mark.parametrize("edit", ["add", "change"])
def test_a_secret_that_already_opens_a_slot_is_not_added_again(cipher: Path, edit: str) -> None:
    add_password(cipher, "pw", "second", kdf=CHEAP)
    before = digest(cipher)
    with pytest.raises(ValueError, match="new already opens a key slot of this file"):
        if edit == "add":
            add_password(cipher, "pw", "second", kdf=PBKDF2(2000))
        else:
            change_password(cipher, "pw", "second", kdf=CHEAP)
    assert digest(cipher) == before


def test_duplicate_raw_key_slot_refused(cipher: Path) -> None:
    key = aes_hmac.Key(os.urandom(32))
    add_password(cipher, "pw", key)
    with pytest.raises(ValueError, match="already opens a key slot"):
        add_password(cipher, key, key)
    assert remove_password(cipher, key) == 1


def test_removal_refused_when_a_slot_cannot_be_tried(cipher: Path) -> None:
    """A slot over the limits might be another copy of the password: refuse, naming the limit."""
    add_password(cipher, "pw", "costly", kdf=PBKDF2(5000))
    before = digest(cipher)
    with pytest.raises(aes_hmac.KdfLimitError, match="cannot check every key slot"):
        remove_password(cipher, "pw", limits=KdfLimits(max_pbkdf2_iterations=1000))
    assert digest(cipher) == before


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("which", ["encrypt", "decrypt"])
def test_system_exit_from_progress_leaves_nothing(
    plain: Path, cipher: Path, tmp_path: Path, which: str, workers: int
) -> None:
    """Issue 10 #3: SystemExit (sys.exit in a signal handler) cleans up like any exception."""

    def leave(done: int, total: int | None) -> None:
        if done > CHUNK:
            raise SystemExit(143)

    dst = tmp_path / "out"
    with pytest.raises(SystemExit):
        if which == "encrypt":
            enc_file(plain, dst, progress=leave, workers=workers)
        else:
            decrypt_file(cipher, dst, "pw", progress=leave, workers=workers)
    assert_no_output(tmp_path, dst)


def test_bytes_and_pathlike_paths(plain: Path, tmp_path: Path) -> None:
    """Issue 12 #7: b"/tmp/x" failed with "Can't mix bytes and non-bytes"."""
    src, dst, back = bytes(plain), os.fsencode(tmp_path / "c.ahm"), os.fsencode(tmp_path / "p")
    encrypt_file(src, dst, "pw", kdf=CHEAP)
    add_password(dst, "pw", "second", kdf=CHEAP)
    assert remove_password(dst, "pw") == 1
    decrypt_file(dst, back, "second")
    assert Path(os.fsdecode(back)).read_bytes() == plain.read_bytes()
    assert inspect_stream(Path(os.fsdecode(dst))).version == 1
    with pytest.raises(TypeError, match=r"src_path must be a path .*, not int"):
        encrypt_file(3, dst, "pw")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"path must be a path .*, not NoneType"):
        remove_password(None, "pw")  # type: ignore[arg-type]


def test_messages_for_files_that_are_not_streams(tmp_path: Path) -> None:
    """Issue 12 #7: what a wrong input is, said in the library's words (the CLI shows them)."""
    token = aes_hmac.encrypt(b"v", "pw", kdf=CHEAP)
    is_token = "^failed to read header: this is an aes-hmac token, not a stream$"
    cases = {
        b"": r"^failed to read header: not an aes-hmac stream \(0 bytes, too short\)$",
        b"hello\n": r"^failed to read header: not an aes-hmac stream \(6 bytes, too short\)$",
        token.encode(): is_token,
        aes_hmac.token_to_bytes(token): is_token,
    }
    for data, message in cases.items():
        src = tmp_path / "in"
        src.write_bytes(data)
        with pytest.raises(HeaderError, match=message):
            decrypt_file(src, tmp_path / "out", "pw")
        assert_no_output(tmp_path, tmp_path / "out")


def test_slot_checks_share_one_work_budget(tmp_path: Path) -> None:
    """Removal must try every slot the secret could open; past the header's KDF work budget it is
    refused (naming the limit) rather than stopping early and leaving a slot behind."""
    plain, path = tmp_path / "f", tmp_path / "f.ahm"
    plain.write_bytes(b"data")
    kdf = PBKDF2(1000)
    aes_hmac.encrypt_file(plain, path, "pw", kdf=kdf)
    for n in range(3):
        aes_hmac.add_password(path, "pw", f"other {n}", kdf=kdf)
    tight = KdfLimits(max_kdf_work=2500)  # opening slot 0 costs 1000, checking 4 slots 4000
    with pytest.raises(aes_hmac.KdfLimitError, match="cannot check every key slot") as info:
        aes_hmac.remove_password(path, "pw", limits=tight)
    assert info.value.field == "max_kdf_work"
    assert len(aes_hmac.inspect_stream(path).slots) == 4
    assert aes_hmac.remove_password(path, "pw", limits=KdfLimits()) == 1
    assert len(aes_hmac.inspect_stream(path).slots) == 3
