"""One Key, one PasswordKey (bulk mode) and one Keyring shared by 8 threads at once.

Every thread encrypts with all three, decrypts what the others made (handed over through a
queue), decrypts tokens made before the threads started, provokes failures (wrong associated
data, tampering) and rotates; every result is checked. A small decrypt cache with more foreign
salts than slots makes the bulk object's LRU evict under contention.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
import warnings
from collections import Counter
from typing import Any

import pytest

import aes_hmac
from aes_hmac import PBKDF2, InvalidToken, Key, Keyring, PasswordKey

THREADS = 8
ROUNDS = 150
CHEAP = PBKDF2(iterations=1000)
RAW_KEY = bytes(range(32))
PASSWORD = "shared by threads"
FOREIGN_SALTS = 12


def _tamper(token: str) -> str:
    """The token with one base64 character in its ciphertext changed (still canonical)."""
    i = len(token) // 2
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def test_key_password_key_and_keyring_shared_by_eight_threads() -> None:
    key = Key(RAW_KEY)
    bulk = PasswordKey(PASSWORD, kdf=CHEAP, cache_size=4)
    ring = Keyring(PASSWORD, Key(RAW_KEY), kdf=CHEAP)
    foreign = [
        (aes_hmac.encrypt(f"foreign {n}", PASSWORD, kdf=CHEAP), f"foreign {n}")
        for n in range(FOREIGN_SALTS)
    ]
    handoff: queue.Queue[tuple[str, Any, bytes]] = queue.Queue()
    errors: list[BaseException] = []
    done = Counter[str]()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def check(label: str, got: object, expected: object) -> None:
        if got != expected:
            raise AssertionError(f"{label}: {got!r} != {expected!r}")

    def refused(call: Any, *args: Any, **kwargs: Any) -> None:
        try:
            call(*args, **kwargs)
        except InvalidToken:
            return
        raise AssertionError(f"{call} accepted a bad token")

    def work(n: int) -> None:
        ops = 0
        try:
            barrier.wait()
            for i in range(ROUNDS):
                text = f"thread {n} round {i} " + "é" * (i % 7)
                data = bytes([n, i % 256]) * (i % 50)
                ad = f"row {n}:{i}".encode()
                t_key = key.encrypt(data, associated_data=ad)
                t_bulk = bulk.encrypt(text)
                t_ring = ring.encrypt(data, associated_data=ad)
                check("key", key.decrypt(t_key, associated_data=ad), data)
                check("bulk", bulk.decrypt(t_bulk), text)
                check("ring", ring.decrypt(t_ring, associated_data=ad), data)
                # Cross-object: the ring holds the same raw key and password.
                check("ring<-key", ring.decrypt(t_key, associated_data=ad), data)
                check("ring<-bulk", ring.decrypt(t_bulk), text)
                check("bulk<-ring", bulk.decrypt(t_ring, associated_data=ad), data)
                refused(key.decrypt, t_key, associated_data=ad + b"!")
                refused(bulk.decrypt, _tamper(t_bulk))
                refused(ring.decrypt, t_ring)
                token, expected = foreign[(n + i) % FOREIGN_SALTS]
                check("bulk<-foreign", bulk.decrypt(token), expected)
                check("rotate", ring.decrypt(ring.rotate(token)), expected)
                handoff.put((t_key, data, ad))
                other, other_data, other_ad = handoff.get()
                check("handoff", key.decrypt(other, associated_data=other_ad), other_data)
                ops += 15
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)
        with lock:
            done[f"thread {n}"] = ops

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sum(done.values()) == THREADS * ROUNDS * 15  # 18,000 checked operations
    # The objects still work after the storm.
    assert bulk.decrypt(bulk.encrypt("after")) == "after"
    assert ring.decrypt(key.encrypt(b"after")) == b"after"


def test_shared_password_key_streams_of_tokens_match_a_serial_run() -> None:
    """Tokens made by 8 threads from one bulk object all decrypt serially afterwards."""
    bulk = PasswordKey(PASSWORD, kdf=CHEAP)
    made: list[tuple[str, bytes]] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        local = [(bulk.encrypt(bytes([n]) * i), bytes([n]) * i) for i in range(250)]
        with lock:
            made.extend(local)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(made) == THREADS * 250
    assert len({token for token, _ in made}) == len(made)  # fresh IVs: no two tokens alike
    fresh = PasswordKey(PASSWORD, kdf=CHEAP)
    assert all(fresh.decrypt(token) == data for token, data in made)


FORKS = 20
CHILD_TIMEOUT = 10.0
"""Seconds a forked child gets for a few tokens: far beyond need, short of a hung test run."""


def _child_exit_code(pid: int) -> int | None:
    """The child's exit code, or None (after killing it) if it did not finish in time."""
    deadline = time.monotonic() + CHILD_TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_other_threads_hold_the_locks() -> None:
    """Regression (issue 10 #6): a child forked while another thread was inside ``Key.encrypt``
    (the cipher chain's lock) or a ``PasswordKey`` derivation inherited a held lock and hung."""
    key = Key(RAW_KEY)
    bulk = PasswordKey(PASSWORD, kdf=CHEAP)
    ring = Keyring(PASSWORD, Key(RAW_KEY), kdf=CHEAP)
    stop = threading.Event()

    def hammer_key() -> None:
        while not stop.is_set():
            key.decrypt(key.encrypt(b"x" * 64))

    def hammer_derivations() -> None:
        while not stop.is_set():  # new salts: the derive lock is held most of the time
            bulk.decrypt(aes_hmac.encrypt(b"y", PASSWORD, kdf=CHEAP))

    threads = [threading.Thread(target=t) for t in (hammer_key, hammer_key, hammer_derivations)]
    for thread in threads:
        thread.start()
    codes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
            for _ in range(FORKS):
                pid = os.fork()
                if pid == 0:  # child: must not touch pytest; exit code says what happened
                    try:
                        token = key.encrypt(b"child")
                        ok = key.decrypt(token) == b"child"
                        ok &= bulk.decrypt(bulk.encrypt(b"child")) == b"child"
                        ok &= bulk.decrypt(aes_hmac.encrypt(b"z", PASSWORD, kdf=CHEAP)) == b"z"
                        ok &= ring.decrypt(ring.encrypt("child")) == "child"
                    except BaseException:
                        os._exit(2)
                    os._exit(0 if ok else 1)
                codes.append(_child_exit_code(pid))
                time.sleep(0.01)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert codes == [0] * FORKS
