"""Hostile inputs: absurd KDF parameters, huge size fields, too many slots, lengths past the end.

Each must be refused with a clear error before any large allocation (peak traced memory stays
under ``MEMORY_CEILING``) and before any KDF runs (counted by patching every KDF's ``derive``,
not by timing). Also the regression tests for fuzz findings live here (none so far).
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

import aes_hmac
import aes_hmac.importers
from aes_hmac import PBKDF2, Argon2id, DecryptionError, HeaderError, InvalidToken, Scrypt
from aes_hmac._kdf import Credential
from aes_hmac._stream.format import encode_prefix, open_header, read_header, seal_header, seal_slot
from aes_hmac.armor import ArmorReader

MEMORY_CEILING = 8 * 1024 * 1024
KEY = bytes(range(32))
PASSWORD = "hostile"
U32 = 2**32 - 1
STREAM_MAGIC = b"AESHMAC\x00"

# KDF id and parameter block, each refused by the limits or the valid ranges of FORMAT.md 1.1.
ABSURD_KDFS = {
    "pbkdf2 2^31-1 iterations": (1, struct.pack(">I", 2**31 - 1), "pbkdf2 iterations 2147483647"),
    "pbkdf2 2^32-1 iterations": (1, struct.pack(">I", U32), "must be between"),
    "scrypt N=2^63": (2, struct.pack(">BII", 63, 8, 1), "128 * r * N must be below"),
    "scrypt 1 TiB": (2, struct.pack(">BII", 30, 8, 1), "kdf memory"),
    "scrypt r=2^32-1": (2, struct.pack(">BII", 14, U32, 1), "r * p must be below"),
    "scrypt p=2^32-1": (2, struct.pack(">BII", 1, 1, U32), "r * p must be below"),
    "scrypt p=2^20": (2, struct.pack(">BII", 1, 1, 2**20), "scrypt p 1048576"),
    "argon2id 4 TiB": (3, struct.pack(">III", 1, U32, 1), "kdf memory"),
    "argon2id t=2^32-1": (3, struct.pack(">III", U32, 64, 1), "argon2id iterations"),
    "argon2id 2^24-1 lanes": (3, struct.pack(">III", 1, U32, 2**24 - 1), "kdf memory"),
    "argon2id 2^24 lanes": (3, struct.pack(">III", 1, U32, 2**24), "must be between"),
    "scrypt log2 N = 255": (2, struct.pack(">BII", 255, 1, 1), "must be between"),
}


@pytest.fixture
def kdf_runs(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Names of every password-KDF run (each KDF class's ``derive``), in order."""
    runs: list[str] = []
    for cls in (PBKDF2, Scrypt, Argon2id):
        original = cls.derive

        def derive(
            self: Any, password: bytes, salt: bytes, _orig: Callable[..., bytes] = original
        ) -> bytes:
            runs.append(type(self).__name__)
            return _orig(self, password, salt)

        monkeypatch.setattr(cls, "derive", derive)
    yield runs


def refused(call: Callable[[], object], error: type[Exception], message: str) -> tuple[str, int]:
    """Run ``call`` under tracemalloc; it must raise ``error`` containing ``message``.

    Returns the message and the peak traced memory in bytes.
    """
    tracemalloc.start()
    try:
        with pytest.raises(error) as info:
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message in str(info.value)
    return str(info.value), peak


def token(kdf_id: int, params: bytes, body_blocks: int = 2) -> bytes:
    """A binary token with the given KDF block, a zero salt/IV/ciphertext and a zero tag."""
    salt = bytes(16) if kdf_id else b""
    return bytes([0xA5, 1, kdf_id]) + params + salt + bytes(16 + 16 * body_blocks + 32)


def slot(kdf_id: int, params: bytes) -> bytes:
    """One key slot (FORMAT.md 3.2) with zero salt, IV, wrapped key and tag."""
    salt = bytes(16) if kdf_id else b""
    return bytes([kdf_id]) + params + salt + bytes(16 + 32 + 32)


def stream(slots: list[bytes], *, chunk_log2: int = 12, count: int | None = None) -> bytes:
    """A stream header (FORMAT.md 3.1) with a zero header tag and one zero 64-byte chunk."""
    n = len(slots) if count is None else count
    prefix = STREAM_MAGIC + bytes([1, chunk_log2]) + bytes(32) + bytes([n])
    return prefix + b"".join(slots) + bytes(32) + bytes(64)


def decrypt_stream_of(data: bytes, **credential: Any) -> Callable[[], object]:
    """A call decrypting ``data`` as a stream into a throwaway buffer."""
    return lambda: aes_hmac.decrypt_stream(io.BytesIO(data), io.BytesIO(), **credential)


@pytest.mark.parametrize("name", ABSURD_KDFS)
def test_absurd_token_kdf_refused_without_running_it(name: str, kdf_runs: list[str]) -> None:
    kdf_id, params, message = ABSURD_KDFS[name]
    hostile = token(kdf_id, params)
    for call in (
        lambda: aes_hmac.decrypt(hostile, PASSWORD),
        lambda: aes_hmac.PasswordKey(PASSWORD, kdf=PBKDF2(1000)).decrypt(hostile),
        lambda: aes_hmac.Keyring(PASSWORD, kdf=PBKDF2(1000)).decrypt(hostile),
    ):
        text, peak = refused(call, InvalidToken, message)
        assert peak < MEMORY_CEILING, (name, peak)
        assert PASSWORD not in text
    assert kdf_runs == []


@pytest.mark.parametrize("name", ABSURD_KDFS)
def test_absurd_slot_kdf_refused_without_running_it(name: str, kdf_runs: list[str]) -> None:
    kdf_id, params, message = ABSURD_KDFS[name]
    hostile = stream([slot(kdf_id, params)])
    if "must be" in message:
        # Parameter ranges are part of parsing: refused for every caller, inspect included.
        refused(lambda: aes_hmac.inspect_stream(io.BytesIO(hostile)), HeaderError, message)
    else:
        assert aes_hmac.inspect_stream(io.BytesIO(hostile)).slots
    text, peak = refused(decrypt_stream_of(hostile, password=PASSWORD), HeaderError, message)
    assert text.startswith("failed to read header: ")
    assert peak < MEMORY_CEILING
    assert kdf_runs == []


def test_sixteen_hostile_slots_all_skipped(kdf_runs: list[str]) -> None:
    """Every slot over the limits: all skipped, the error names the last one (FORMAT.md 3.5)."""
    over_limits = [name for name in ABSURD_KDFS if "must be" not in ABSURD_KDFS[name][2]]
    names = (over_limits * 3)[:16]
    hostile = stream([slot(*ABSURD_KDFS[name][:2]) for name in names])
    text, peak = refused(
        decrypt_stream_of(hostile, password=PASSWORD), HeaderError, ABSURD_KDFS[names[-1]][2]
    )
    assert text.startswith("failed to read header: ")
    assert peak < MEMORY_CEILING
    assert kdf_runs == []


@pytest.mark.parametrize("chunk_log2", [0, 11, 25, 31, 32, 63, 255])
def test_chunk_size_field_out_of_range(chunk_log2: int, kdf_runs: list[str]) -> None:
    """chunk_log2 = 31 is a 2 GiB chunk: refused before any buffer of that size exists."""
    hostile = stream([slot(0, b"")], chunk_log2=chunk_log2)
    message = f"failed to read header: bad chunk size exponent {chunk_log2}"
    for call in (
        decrypt_stream_of(hostile, key=KEY),
        decrypt_stream_of(hostile, password=PASSWORD),
        lambda: aes_hmac.inspect_stream(io.BytesIO(hostile)),
        lambda: aes_hmac.open(io.BytesIO(hostile), "rb", key=KEY).read(),
    ):
        _, peak = refused(call, HeaderError, message)
        assert peak < MEMORY_CEILING
    assert kdf_runs == []


def test_thousands_of_password_slots(kdf_runs: list[str]) -> None:
    """A slot count of 255 followed by 5,000 PBKDF2 slots: refused by the count, nothing read."""
    many = slot(1, struct.pack(">I", 1000)) * 5000
    hostile = stream([], count=255)[:43] + many
    source = io.BytesIO(hostile)
    _, peak = refused(
        decrypt_stream_of(hostile, password=PASSWORD), HeaderError, "bad slot count 255"
    )
    assert peak < MEMORY_CEILING
    refused(lambda: aes_hmac.inspect_stream(source), HeaderError, "bad slot count 255")
    assert source.tell() <= 64, "the reader went on past the slot count"
    assert kdf_runs == []


def test_seventeen_valid_slots_refused() -> None:
    hostile = stream([slot(1, struct.pack(">I", 1000))] * 17)
    refused(decrypt_stream_of(hostile, password=PASSWORD), HeaderError, "bad slot count 17")


@pytest.mark.parametrize("present", [0, 1, 15])
def test_slot_count_past_the_end(present: int, kdf_runs: list[str]) -> None:
    """The count says 16 slots, fewer are there: truncated, whatever the caller's secret."""
    slots = [slot(1, struct.pack(">I", 1000))] * present
    hostile = stream(slots, count=16)[: 43 + 101 * present]
    for credential in ({"password": PASSWORD}, {"key": KEY}):
        _, peak = refused(decrypt_stream_of(hostile, **credential), HeaderError, "truncated")
        assert peak < MEMORY_CEILING
    assert kdf_runs == []


@pytest.mark.parametrize("cut", [1, 8, 9, 10, 42, 43, 44, 60])
def test_header_cut_anywhere(cut: int) -> None:
    hostile = stream([slot(0, b"")])[:cut]
    refused(decrypt_stream_of(hostile, key=KEY), HeaderError, "failed to read header: truncated")


def test_token_length_past_the_end(kdf_runs: list[str]) -> None:
    """A token cut inside its KDF block, salt or IV is "token too short" before any KDF."""
    whole = token(1, struct.pack(">I", 1000))
    for cut in range(3, 3 + 4 + 16 + 16 + 16 + 32):
        refused(partial(aes_hmac.decrypt, whole[:cut], PASSWORD), InvalidToken, "too short")
    assert kdf_runs == []


class Endless(io.RawIOBase):
    """An endless source of one byte value; counts how much was read from it."""

    def __init__(self, fill: bytes, head: bytes = b"") -> None:
        super().__init__()
        self.head = head
        self.fill = fill
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self.head[: len(view)]
        self.head = self.head[len(data) :]
        data += self.fill * (len(view) - len(data))
        view[: len(data)] = data
        self.read_bytes += len(data)
        return len(data)


def test_armor_endless_line_refused_after_a_bounded_read() -> None:
    source = Endless(b"A", b"-----BEGIN AES-HMAC ENCRYPTED FILE-----\n")
    reader = ArmorReader(io.BufferedReader(source))
    _, peak = refused(reader.read, DecryptionError, "invalid armor")
    assert peak < MEMORY_CEILING
    assert source.read_bytes < 1024 * 1024


def test_stream_endless_garbage_after_header_stops_at_first_chunk() -> None:
    """Garbage forever after a valid header: the first chunk fails, reading stops there."""
    out = io.BytesIO()
    aes_hmac.encrypt_stream(io.BytesIO(b""), out, key=KEY, chunk_size=4096)
    header = out.getvalue()[:-64]
    source = Endless(b"\x00", header)
    buffered = io.BufferedReader(source)
    _, peak = refused(
        lambda: aes_hmac.decrypt_stream(buffered, io.BytesIO(), key=KEY, workers=1),
        aes_hmac.StreamDamaged,
        "data damaged",
    )
    assert peak < MEMORY_CEILING
    assert source.read_bytes < 4 * 1024 * 1024


AESCRYPT_HEAD = b"AES\x02\x00"


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("extension length past the end", AESCRYPT_HEAD + b"\xff\xff" + b"x" * 10, "truncated"),
        ("endless extensions", AESCRYPT_HEAD + (b"\xff\xff" + bytes(0xFFFF)) * 40, "too large"),
        ("no key block", AESCRYPT_HEAD + b"\x00\x00" + bytes(20), "truncated"),
    ],
)
def test_aescrypt_length_fields(name: str, data: bytes, message: str) -> None:
    """AES Crypt v2 extension lengths are u16 fields: refused by their bound or as truncated."""
    _, peak = refused(
        lambda: aes_hmac.importers.import_aescrypt(io.BytesIO(data), io.BytesIO(), "pw", key=KEY),
        HeaderError,
        message,
    )
    assert peak < MEMORY_CEILING, name


def test_pbkdf2_top_bit_refused_even_with_raised_limits(kdf_runs: list[str]) -> None:
    """Regression (lead's a868bc5): cryptography aborts the interpreter on >= 2^31 iterations.

    A caller who raises every limit must still get an error at parse time, never a derivation.
    """
    generous = aes_hmac.KdfLimits(max_pbkdf2_iterations=2**40, max_memory_bytes=2**60)
    for iterations in (2**31, 2**31 + 1, U32):
        hostile = token(1, struct.pack(">I", iterations))
        refused(
            partial(aes_hmac.decrypt, hostile, PASSWORD, limits=generous),
            InvalidToken,
            f"iterations must be between 1 and 2147483647, got {iterations}",
        )
        in_stream = stream([slot(1, struct.pack(">I", iterations))])
        refused(
            decrypt_stream_of(in_stream, password=PASSWORD, limits=generous),
            HeaderError,
            f"got {iterations}",
        )
    assert kdf_runs == []


def test_scrypt_overflow_refused_even_with_unbounded_limits() -> None:
    # Regression (fuzz campaign): log2_n=62, r=8 under raised limits made cryptography's Scrypt
    # panic ('attempt to multiply with overflow'); 128*r*N is now bounded at parse time.
    unbounded = aes_hmac.KdfLimits(max_memory_bytes=2**100, max_scrypt_p=2**32)
    for params, reason in (
        ((62, 8, 1), "128 \\* r \\* N must be below 2\\*\\*63"),
        ((4, 2**15, 2**15), "r \\* p must be below 2\\*\\*30"),
    ):
        hostile = token(2, struct.pack(">BII", *params))
        with pytest.raises(InvalidToken, match=reason):
            aes_hmac.decrypt(hostile, PASSWORD, limits=unbounded)


# --- One work budget per token and per header (issue 10 #1) -------------------------------------

WORK_BUDGET = aes_hmac.KdfLimits().max_kdf_work

# Each alone within every default limit, work included, and as costly as they get (FORMAT.md 1.1).
COSTLIEST_ADMITTED = {
    "pbkdf2 13,000,000 iterations": PBKDF2(WORK_BUDGET),
    "scrypt 512 MiB": Scrypt(19, 8, 1),
    "scrypt 128 MiB p=4": Scrypt(17, 8, 4),
    "argon2id 700 MiB t=1": Argon2id(1, 700 << 10, 64),
    "argon2id 448 MiB t=2": Argon2id(2, 448 << 10, 4),
    "argon2id 128 MiB t=9": Argon2id(9, 128 << 10, 64),
}


@pytest.fixture
def kdf_work(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """The ``work()`` of every password-KDF run, in order, counted instead of run.

    The inputs of these tests are forged (no password made them), so they fail authentication
    under any derived key: the stand-in key changes nothing the caller can observe but the time.
    The real runs are in ``test_worst_case_runs_within_the_budget`` (slow).
    """
    work: list[int] = []
    for cls in (PBKDF2, Scrypt, Argon2id):

        def derive(self: Any, password: bytes, salt: bytes) -> bytes:
            work.append(self.work())
            return bytes(32)

        monkeypatch.setattr(cls, "derive", derive)
    yield work


def test_costliest_admitted_kdfs_pass_every_limit_alone() -> None:
    for kdf in COSTLIEST_ADMITTED.values():
        aes_hmac.KdfLimits().check(kdf)
        assert kdf.work() > WORK_BUDGET // 2


def test_every_default_kdf_fits_several_times() -> None:
    """Files made with any default open: 16 PBKDF2, 5 Argon2id or 4 scrypt default slots."""
    assert 16 * PBKDF2().work() <= WORK_BUDGET
    assert 5 * Argon2id().work() <= WORK_BUDGET
    assert 4 * Scrypt().work() <= WORK_BUDGET < 5 * Scrypt().work()


def test_forged_sixteen_slot_header_costs_one_budget(kdf_work: list[int]) -> None:
    """Slots are tried in order while the total stays within the budget; a slot that would pass
    it is skipped (a cheaper one after it is still tried)."""
    defaults = [Scrypt(), Argon2id(), PBKDF2()]
    kdfs = (defaults + list(COSTLIEST_ADMITTED.values()) + defaults) * 2
    hostile = stream([slot(kdf.kdf_id, kdf.encode()) for kdf in kdfs[:16]])
    text, _ = refused(decrypt_stream_of(hostile, password=PASSWORD), HeaderError, "total kdf work")
    assert text.startswith("failed to read header: total kdf work ")
    expected, spent = [], 0
    for kdf in kdfs[:16]:
        if spent + kdf.work() <= WORK_BUDGET:
            spent += kdf.work()
            expected.append(kdf.work())
    assert kdf_work == expected
    assert 0 < sum(kdf_work) <= WORK_BUDGET
    with pytest.raises(aes_hmac.KdfLimitError) as info:
        decrypt_stream_of(hostile, password=PASSWORD)()
    assert info.value.field == "max_kdf_work" and info.value.limit == WORK_BUDGET


def test_forged_header_of_default_scrypt_slots_runs_four(kdf_work: list[int]) -> None:
    hostile = stream([slot(Scrypt.kdf_id, Scrypt().encode())] * 16)
    refused(decrypt_stream_of(hostile, password=PASSWORD), HeaderError, "total kdf work")
    assert kdf_work == [Scrypt().work()] * 4


@pytest.mark.parametrize("name", COSTLIEST_ADMITTED)
def test_forged_token_costs_at_most_one_budget(name: str, kdf_work: list[int]) -> None:
    kdf = COSTLIEST_ADMITTED[name]
    hostile = token(kdf.kdf_id, kdf.encode())
    refused(lambda: aes_hmac.decrypt(hostile, PASSWORD), InvalidToken, "authentication failed")
    key = aes_hmac.PasswordKey(PASSWORD, kdf=PBKDF2(1000))
    refused(lambda: key.decrypt(hostile), InvalidToken, "authentication failed")
    ring = aes_hmac.Keyring(PASSWORD, kdf=PBKDF2(1000))
    refused(lambda: ring.decrypt(hostile), InvalidToken, "no keyring entry opens")
    assert kdf_work == [kdf.work()] * 3
    assert kdf.work() <= WORK_BUDGET


def test_token_over_the_budget_runs_nothing(kdf_work: list[int]) -> None:
    hostile = token(PBKDF2.kdf_id, PBKDF2(WORK_BUDGET + 1).encode())
    with pytest.raises(aes_hmac.KdfLimitError, match="kdf work 13000001 exceeds") as info:
        aes_hmac.decrypt(hostile, PASSWORD)
    assert info.value.field == "max_kdf_work"
    assert kdf_work == []


@pytest.mark.parametrize("entries", [4, 5, 16])
def test_keyring_entries_share_one_budget(entries: int, kdf_work: list[int]) -> None:
    """4 password entries and a forged default-scrypt token: all 4 tried; more are not, and
    the error is the same either way (it must not tell how many entries there are)."""
    ring = aes_hmac.Keyring(*(f"{PASSWORD}{i}" for i in range(entries)), kdf=PBKDF2(1000))
    hostile = token(Scrypt.kdf_id, Scrypt().encode())
    refused(lambda: ring.decrypt(hostile), InvalidToken, "no keyring entry opens")
    assert kdf_work == [Scrypt().work()] * min(entries, 4)
    assert sum(kdf_work) <= WORK_BUDGET


def test_keyring_budget_error_names_the_work_limit(kdf_work: list[int]) -> None:
    ring = aes_hmac.Keyring(*(f"{PASSWORD}{i}" for i in range(5)))
    hostile = token(Scrypt.kdf_id, Scrypt(20, 8, 1).encode())  # one derivation passes the limit
    with pytest.raises(aes_hmac.KdfLimitError) as info:
        ring.decrypt(hostile)
    assert str(info.value).startswith("kdf limits exceeded: kdf work ")
    assert info.value.field == "max_kdf_work"
    assert kdf_work == []


@pytest.mark.slow
@pytest.mark.parametrize("name", COSTLIEST_ADMITTED)
def test_worst_case_runs_within_the_budget(name: str, kdf_runs: list[str]) -> None:
    """The real thing: a forged token and a forged 16-slot header of the costliest admitted KDF
    each run it once and fail cleanly (the benchmark prints the seconds and MiB)."""
    kdf = COSTLIEST_ADMITTED[name]
    with pytest.raises(InvalidToken, match="authentication failed"):
        aes_hmac.decrypt(token(kdf.kdf_id, kdf.encode()), PASSWORD)
    hostile = stream([slot(kdf.kdf_id, kdf.encode())] * 16)
    with pytest.raises(HeaderError, match="total kdf work"):
        decrypt_stream_of(hostile, password=PASSWORD)()
    assert kdf_runs == [type(kdf).__name__] * 2


def sealed_header(kdfs: list[Any]) -> bytes:
    """A real header with one slot per KDF, the password of slot i being ``pw<i>``."""
    file_key, stream_id = os.urandom(32), os.urandom(32)
    prefix = encode_prefix(12, stream_id)
    slots = [
        seal_slot(prefix, Credential(f"pw{i}".encode(), kdf), file_key, os.urandom(16), bytes(16))
        for i, kdf in enumerate(kdfs)
    ]
    return seal_header(12, stream_id, file_key, slots)


def test_budget_stops_honest_slots_past_it_and_a_raised_one_opens_them() -> None:
    cheap = PBKDF2(1000)
    header = read_header(io.BytesIO(sealed_header([cheap] * 4)).read)
    limits = aes_hmac.KdfLimits(max_kdf_work=3 * cheap.work())
    for i in range(3):
        assert open_header(header, Credential(f"pw{i}".encode(), cheap), limits)[1] == i
    with pytest.raises(aes_hmac.KdfLimitError, match="total kdf work 4000 exceeds the limit 3000"):
        open_header(header, Credential(b"pw3", cheap), limits)
    raised = aes_hmac.KdfLimits(max_kdf_work=4 * cheap.work())
    assert open_header(header, Credential(b"pw3", cheap), raised)[1] == 3


@pytest.mark.slow
@pytest.mark.parametrize(("kdf", "count"), [(Scrypt(), 4), (Argon2id(), 5), (PBKDF2(), 16)])
def test_header_of_default_slots_opens_with_its_last_password(kdf: Any, count: int) -> None:
    header = read_header(io.BytesIO(sealed_header([kdf] * count)).read)
    last = Credential(f"pw{count - 1}".encode(), kdf)
    assert open_header(header, last, aes_hmac.KdfLimits())[1] == count - 1


MEMORY_CAPPED_CHILD = """
import io, resource, sys
cap = int(sys.argv[1]) << 20
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
import aes_hmac
tok, header = bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3])
for call in (
    lambda: aes_hmac.decrypt(tok, "pw"),
    lambda: aes_hmac.PasswordKey("pw").decrypt(tok),
    lambda: aes_hmac.Keyring("pw").decrypt(tok),
    lambda: aes_hmac.decrypt_stream(io.BytesIO(header), io.BytesIO(), "pw"),
):
    try:
        call()
    except aes_hmac.AesHmacError as exc:
        print(type(exc).__name__, getattr(exc, "field", "-"), exc, sep="|")
"""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_AS (POSIX)")
@pytest.mark.parametrize(
    ("cap_mib", "kdf"), [(640, Argon2id(1, 700 << 10, 4)), (512, Scrypt(19, 8, 1))]
)
def test_memory_error_from_a_kdf_is_the_librarys_error(cap_mib: int, kdf: Any) -> None:
    """Regression (issue 10 #9): under an address-space cap, a forged token or header inside every
    default limit made the KDF raise a raw ``MemoryError`` out of ``decrypt``."""
    aes_hmac.KdfLimits().check(kdf)
    tok, header = token(kdf.kdf_id, kdf.encode()), stream([slot(kdf.kdf_id, kdf.encode())])
    args = [str(cap_mib), tok.hex(), header.hex()]
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_CAPPED_CHILD, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    wanted = f"kdf needs more memory than is available ({kdf.memory_bytes()} bytes)"
    lines = result.stdout.splitlines()
    assert lines[:3] == [f"KdfLimitError|max_memory_bytes|{wanted}"] * 3
    assert lines[3:] == [f"KdfLimitError|max_memory_bytes|failed to read header: {wanted}"]
