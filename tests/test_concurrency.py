"""One Key, one PasswordKey (bulk mode) and one Keyring shared by 8 threads at once.

Every thread encrypts with all three, decrypts what the others made (handed over through a
queue), decrypts tokens made before the threads started, provokes failures (wrong associated
data, tampering) and rotates; every result is checked. A small decrypt cache with more foreign
salts than slots makes the bulk object's LRU evict under contention.
"""

from __future__ import annotations

import queue
import threading
from collections import Counter
from typing import Any

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
