"""The derived-key cache behind folders and the fsspec protocol: what a pickled credential
carries, no lock held around a KDF run, one derivation per (salt, KDF), fork safety, and no
secret kept in module globals once its filesystems are gone."""

from __future__ import annotations

import gc
import os
import pickle
import threading
import time
import uuid
from pathlib import Path

import pytest

import aes_hmac
from aes_hmac import PBKDF2, HeaderError
from aes_hmac._files.tree import BatchCredential
from aes_hmac._keys.credentials import to_credential

CHEAP = PBKDF2(iterations=1000)
SLOW = PBKDF2(iterations=3_000_000)  # about 2 s here: long enough to act during it
STARTED = 0.2  # seconds for a thread that was started to be inside its derivation
PASSWORD = "cache test password 7b1e"


def batch(kdf: PBKDF2 = CHEAP) -> BatchCredential:
    return BatchCredential.of(to_credential(PASSWORD, kdf=kdf))


def test_a_slow_derivation_does_not_stall_keys_already_derived() -> None:
    cred = batch(SLOW)
    cheap = cred.with_kdf(CHEAP)
    known = cheap.master(b"k" * 16)
    slow = threading.Thread(target=cred.master, args=(b"h" * 16,))  # a hostile slot's cost
    slow.start()
    time.sleep(STARTED)
    try:
        assert cheap.master(b"k" * 16) == known
        # The cached key came back while the other derivation still runs: no shared lock.
        assert slow.is_alive()
    finally:
        slow.join()


def test_two_threads_asking_for_one_salt_derive_it_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = aes_hmac._kdf.derive_master

    def counting(password: bytes, salt: bytes, kdf: object) -> bytes:
        calls.append(salt)
        return real(password, salt, kdf)  # type: ignore[arg-type]

    monkeypatch.setattr(aes_hmac._kdf, "derive_master", counting)
    cred = batch(PBKDF2(iterations=500_000))
    keys: list[bytes] = []
    threads = [
        threading.Thread(target=lambda: keys.append(cred.master(b"s" * 16))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [b"s" * 16] and len(set(keys)) == 1 and len(keys) == 4


def test_a_pickle_holds_no_password_and_a_random_value() -> None:
    a, b = batch(), batch()
    a.master(b"s" * 16), b.master(b"s" * 16)
    wire_a, wire_b = pickle.dumps(a), pickle.dumps(b)
    assert PASSWORD.encode() not in wire_a
    # Same password, same derived keys, yet the pickles differ: a hash of one (Dask's task
    # names) cannot be matched against guesses. One object pickles the same each time.
    assert wire_a != wire_b and pickle.dumps(a) == wire_a
    assert a.__dask_tokenize__() != b.__dask_tokenize__()
    with pytest.raises(TypeError, match="never travels"):
        pickle.dumps(to_credential(PASSWORD, kdf=CHEAP))


def test_a_copy_writes_its_batch_and_says_what_to_do_for_other_salts() -> None:
    cred = batch().for_writing()
    copy = pickle.loads(pickle.dumps(cred))
    assert copy.new_salt() == cred.new_salt()
    assert copy.master(copy.new_salt()) == cred.master(cred.new_salt())
    with pytest.raises(HeaderError, match="password_env"):
        copy.master(b"t" * 16)


@pytest.mark.slow
def test_fork_during_a_derivation_does_not_deadlock_the_child(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    path = str(tmp_path / "slow.ahm")
    options = {"password": PASSWORD, "kdf": SLOW}
    # Written outside the filesystem, so that its salt is in no cache of this process.
    with aes_hmac.open(path, "wb", password=PASSWORD, kdf=SLOW) as f:
        f.write(b"made with a slow kdf")
    afs = fsspec.filesystem("aeshmac", **options)
    reader = threading.Thread(target=afs.cat_file, args=(path,))
    reader.start()
    time.sleep(STARTED)  # the reader's thread is inside the KDF (and, before, held the lock)
    pid = os.fork()
    if pid == 0:  # the child: a new filesystem, same password, same file
        code = 1
        try:
            child = fsspec.filesystem("aeshmac", **options)
            code = 0 if child.cat_file(path) == b"made with a slow kdf" else 2
        finally:
            os._exit(code)
    reader.join()
    # Generous bound: the child needs one ~2 s derivation; a deadlock never ends.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        pytest.fail("the forked child deadlocked")
    assert os.waitstatus_to_exitcode(status) == 0


def test_secrets_do_not_linger_after_their_filesystems() -> None:
    fsspec = pytest.importorskip("fsspec")
    from aes_hmac.integrations import fsspec as module

    secret = f"short lived {uuid.uuid4().hex}"
    afs = fsspec.filesystem("aeshmac", target_protocol="memory", password=secret, kdf=CHEAP)
    path = f"/l{uuid.uuid4().hex}/x.ahm"
    afs.pipe_file(path, b"data")
    assert afs.cat_file(path) == b"data"

    def held() -> bool:
        return any(secret.encode() == ident[0] for ident in list(module._CREDENTIALS.shared))

    assert held()
    del afs
    gc.collect()
    assert not held()


def test_a_password_key_pickles_without_its_password() -> None:
    fsspec = pytest.importorskip("fsspec")
    key = aes_hmac.PasswordKey(PASSWORD, kdf=CHEAP)
    wire = pickle.dumps(key)
    assert PASSWORD.encode() not in wire
    copy = pickle.loads(wire)  # never raises: Dask would hang
    assert copy.__dask_tokenize__() == key.__dask_tokenize__()
    afs = fsspec.filesystem("aeshmac", target_protocol="memory", password=copy)
    with pytest.raises(ValueError, match="password_env"):
        afs.cat_file(f"/k{uuid.uuid4().hex}/x.ahm")
