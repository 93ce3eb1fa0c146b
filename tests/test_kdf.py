"""The KDF layer against public vectors: RFC 7914 PBKDF2 and scrypt, Wycheproof PBKDF2 and PBES2,
RFC 9106 Argon2id; plus parameter encoding, limits and password encoding.

Every KDF here yields 32 bytes. PBKDF2 and scrypt outputs of other lengths share their first 32
bytes with ours (both end in PBKDF2, whose output blocks do not depend on the length), so vectors
with other lengths are compared on that prefix.
"""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from typing import Any, ClassVar

import pytest
from _vectors import cases, unhex
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id as ReferenceArgon2id
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

import aes_hmac
from aes_hmac import cli
from aes_hmac._kdf import (
    DEFAULT_KDF,
    DEFAULT_LIMITS,
    KDF_CLASS_NAMES,
    KDF_RAW,
    KDFS,
    NO_LIMITS,
    PARAMS_SIZE,
    PBKDF2,
    Argon2id,
    Kdf,
    KdfLimits,
    Scrypt,
    check_kdf,
    decode_kdf,
    encode_password,
    kdf_by_id,
    kdf_by_name,
)
from aes_hmac._primitives import aes_cbc_decrypt_raw, pkcs7_unpad
from aes_hmac.cli import options

UNUSED_KDF_ID = max(PARAMS_SIZE) + 1
"""A KDF id no registered KDF uses (the next free one)."""

SLOW = os.environ.get("AES_HMAC_SLOW_TESTS") == "1"


@pytest.mark.parametrize(("group", "test"), cases("wycheproof/pbkdf2_hmacsha256_test.json"))
def test_wycheproof_pbkdf2(group: dict[str, Any], test: dict[str, Any]) -> None:
    dk = PBKDF2(test["iterationCount"]).derive(unhex(test["password"]), unhex(test["salt"]))
    n = min(32, test["dkLen"])
    assert (dk[:n] == unhex(test["dk"])[:n]) is (test["result"] == "valid")


@pytest.mark.parametrize(("group", "test"), cases("rfc/rfc7914_pbkdf2_hmac_sha256.json"))
def test_rfc7914_pbkdf2(group: dict[str, Any], test: dict[str, Any]) -> None:
    dk = PBKDF2(test["iterationCount"]).derive(unhex(test["password"]), unhex(test["salt"]))
    assert dk == unhex(test["dk"])[:32]


@pytest.mark.parametrize(("group", "test"), cases("rfc/rfc7914_scrypt.json"))
def test_rfc7914_scrypt(group: dict[str, Any], test: dict[str, Any]) -> None:
    if test["memoryBytes"] > 1 << 28 and not SLOW:
        pytest.skip("1 GiB scrypt case: set AES_HMAC_SLOW_TESTS=1 to run it")
    kdf = Scrypt(test["N"].bit_length() - 1, test["r"], test["p"])
    assert 1 << kdf.log2_n == test["N"]
    assert kdf.memory_bytes() == test["memoryBytes"]
    dk = kdf.derive(unhex(test["password"]), unhex(test["salt"]))
    assert dk == unhex(test["dk"])[:32]


ARGON = "rfc/rfc9106_argon2.json"


@pytest.mark.parametrize(("group", "test"), cases(ARGON, lambda g, t: t["type"] == "argon2id"))
def test_rfc9106_argon2id(group: dict[str, Any], test: dict[str, Any]) -> None:
    # RFC 9106 5.3 uses a secret K and associated data X, which the library's Argon2id never sets;
    # so the vector checks cryptography's Argon2id with them, and the library's own class is
    # checked to compute exactly that function (same parameters, no K or X).
    password, salt = unhex(test["password"]), unhex(test["salt"])
    params = {
        "iterations": test["iterations"],
        "lanes": test["parallelism"],
        "memory_cost": test["memoryKiB"],
    }
    reference = ReferenceArgon2id(
        salt=salt, length=32, ad=unhex(test["ad"]), secret=unhex(test["secret"]), **params
    )
    assert reference.derive(password) == unhex(test["tag"])
    ours = Argon2id(test["iterations"], test["memoryKiB"], test["parallelism"])
    plain = ReferenceArgon2id(salt=salt, length=32, **params)
    assert ours.derive(password, salt) == plain.derive(password)


PBES2 = "wycheproof/pbes2_hmacsha256_aes_256_test.json"


@pytest.mark.parametrize(("group", "test"), cases(PBES2))
def test_wycheproof_pbes2(group: dict[str, Any], test: dict[str, Any]) -> None:
    key = PBKDF2(test["iterationCount"]).derive(unhex(test["password"]), unhex(test["salt"]))
    plain = pkcs7_unpad(aes_cbc_decrypt_raw(key, unhex(test["iv"]), unhex(test["ct"])))
    assert plain == unhex(test["msg"])


# Two instances of every registered KDF: its defaults and its cheapest valid parameters. A new KDF
# in KDFS fails test_every_kdf_has_test_instances until it gets its two here.
INSTANCES: dict[type[Kdf], tuple[Kdf, Kdf]] = {
    PBKDF2: (PBKDF2(), PBKDF2(1)),
    Scrypt: (Scrypt(), Scrypt(1, 1, 1)),
    Argon2id: (Argon2id(), Argon2id(1, 8, 1)),
}
ALL_INSTANCES = [kdf for pair in INSTANCES.values() for kdf in pair]

# What ``describe`` says for the defaults: the text the CLI's inspect prints.
DESCRIPTIONS = {
    PBKDF2: "pbkdf2-hmac-sha256 iterations=600000",
    Scrypt: "scrypt log2n=17 r=8 p=1 (memory 128 MiB)",
    Argon2id: "argon2id memory=65536 KiB iterations=3 lanes=4",
}


def test_every_kdf_has_test_instances() -> None:
    assert set(INSTANCES) == set(KDFS) == set(DESCRIPTIONS)


def test_registry_ids_names_and_lookup() -> None:
    assert [cls.kdf_id for cls in KDFS] == sorted({cls.kdf_id for cls in KDFS})
    assert KDF_RAW not in {cls.kdf_id for cls in KDFS}
    assert len({cls.name for cls in KDFS}) == len(KDFS)
    assert aes_hmac.KDFS is KDFS and aes_hmac.KdfOption is not None
    for cls in KDFS:  # every KDF is public API under its class name
        assert getattr(aes_hmac, cls.__name__) is cls and cls.__name__ in aes_hmac.__all__
    for cls in KDFS:
        assert kdf_by_name(cls.name) is cls
        assert kdf_by_id(cls.kdf_id) is cls
        assert PARAMS_SIZE[cls.kdf_id] == cls.params_size
    assert PARAMS_SIZE[KDF_RAW] == 0
    names = ", ".join(cls.name for cls in KDFS)
    with pytest.raises(ValueError, match=re.escape(f"unknown kdf 'bcrypt' (choose {names})")):
        kdf_by_name("bcrypt")
    for bad_id in (KDF_RAW, UNUSED_KDF_ID, 255):
        with pytest.raises(ValueError, match=f"unknown kdf id {bad_id}"):
            kdf_by_id(bad_id)
        with pytest.raises(ValueError, match=f"unknown kdf id {bad_id}"):
            decode_kdf(bad_id, b"")


@pytest.mark.parametrize("cls", KDFS)
def test_options_name_real_fields(cls: type[Kdf]) -> None:
    """Each CLI option sets a distinct dataclass field, and every field has an option."""
    names = {f.name for f in dataclasses.fields(cls)}
    assert sorted(o.field for o in cls.options) == sorted(names)
    assert all(o.metavar and o.help for o in cls.options)
    made = cls(**{o.field: getattr(INSTANCES[cls][1], o.field) for o in cls.options})
    assert made == INSTANCES[cls][1]


@pytest.mark.parametrize("kdf", ALL_INSTANCES)
def test_encode_decode_round_trip(kdf: Kdf) -> None:
    block = kdf.encode()
    assert len(block) == type(kdf).params_size == PARAMS_SIZE[kdf.kdf_id]
    assert decode_kdf(kdf.kdf_id, block) == kdf == type(kdf).decode(block)
    for wrong in (block[:-1], block + b"\0"):
        with pytest.raises(ValueError, match="truncated kdf parameters"):
            type(kdf).decode(wrong)


@pytest.mark.parametrize("cls", KDFS)
def test_describe_default(cls: type[Kdf]) -> None:
    assert cls().describe() == DESCRIPTIONS[cls]


@pytest.mark.parametrize("kdf", ALL_INSTANCES)
def test_weaker_than_compares_within_one_algorithm(kdf: Kdf) -> None:
    assert not kdf.weaker_than(kdf)
    for other in ALL_INSTANCES:
        if type(other) is not type(kdf):
            assert kdf.weaker_than(other) and other.weaker_than(kdf)
    cheap, strong = INSTANCES[type(kdf)][1], INSTANCES[type(kdf)][0]
    assert cheap.weaker_than(strong) and not strong.weaker_than(cheap)


@pytest.mark.parametrize("kdf", ALL_INSTANCES)
def test_no_limits_admit_everything(kdf: Kdf) -> None:
    NO_LIMITS.check(kdf)
    assert check_kdf(kdf) is kdf


def test_check_kdf_names_the_registered_classes() -> None:
    with pytest.raises(TypeError, match=f"kdf must be {KDF_CLASS_NAMES}, not str"):
        check_kdf("pbkdf2")
    # Every class, in registry order, the last one after "or".
    listed = KDF_CLASS_NAMES.replace(" or ", ", ").split(", ")
    assert listed == [cls.__name__ for cls in KDFS]
    assert KDF_CLASS_NAMES.endswith(f" or {KDFS[-1].__name__}")


@dataclasses.dataclass(frozen=True)
class _PBKDF2SHA512(PBKDF2):
    """A PBKDF2 variant as the class docstring describes it, not registered (id unused)."""

    iterations: int = 210_000

    name: ClassVar[str] = "pbkdf2-sha512-test"
    kdf_id: ClassVar[int] = UNUSED_KDF_ID
    hash_algorithm: ClassVar[type[hashes.HashAlgorithm]] = hashes.SHA512
    work_per_iteration: ClassVar[int] = 2


def test_pbkdf2_variant_is_a_few_lines() -> None:
    """Setting the hash on a subclass changes the derivation, the text and the work; the block
    layout, checks and rotation rule are PBKDF2's."""
    kdf = _PBKDF2SHA512(1000)
    reference = PBKDF2HMAC(hashes.SHA512(), 32, b"s" * 16, 1000).derive(b"pw")
    assert kdf.derive(b"pw", b"s" * 16) == reference != PBKDF2(1000).derive(b"pw", b"s" * 16)
    assert kdf.describe() == "pbkdf2-hmac-sha512 iterations=1000"
    assert kdf.work() == 2000 and PBKDF2(1000).work() == 1000
    assert _PBKDF2SHA512.decode(kdf.encode()) == kdf and kdf.encode() == PBKDF2(1000).encode()
    assert kdf.weaker_than(PBKDF2(1000)) and PBKDF2(1000).weaker_than(kdf)
    assert _PBKDF2SHA512().iterations == 210_000
    with pytest.raises(ValueError, match="iterations must be between 1 and 2147483647"):
        _PBKDF2SHA512(0)


def test_cli_kdf_flags_are_unique_and_keep_their_former_names() -> None:
    """Flags derive from registry names, so no two KDFs share one (argparse would refuse the
    parser); every former flag still names a real field of a registered KDF."""
    flags = [f for kdf in KDFS for o in kdf.options for f in options.kdf_flags(kdf, o)]
    assert len(flags) == len(set(flags))
    assert all(flag.startswith("--") for flag in flags)
    for kdf in KDFS:
        for option in kdf.options:
            assert f"--{kdf.name}-{option.field.replace('_', '-')}" in options.kdf_flags(
                kdf, option
            )
    fields_ = {(kdf.name, o.field) for kdf in KDFS for o in kdf.options}
    assert set(options.FORMER_KDF_FLAGS) <= fields_
    assert set(options.FORMER_KDF_FLAGS.values()) <= set(flags)
    cli.build_parser()


def test_cli_default_kdf_name_is_the_library_default() -> None:
    assert options.kdf_class(options.DEFAULT_KDF_NAME)() == DEFAULT_KDF


def test_defaults() -> None:
    assert DEFAULT_KDF == PBKDF2(600_000)
    assert PBKDF2(600_000).encode() == bytes.fromhex("000927c0")


def test_limits_name_the_parameter() -> None:
    with pytest.raises(ValueError, match="pbkdf2 iterations 30000000 exceed the limit 20000000"):
        DEFAULT_LIMITS.check(PBKDF2(30_000_000))
    with pytest.raises(ValueError, match="kdf memory"):
        DEFAULT_LIMITS.check(Scrypt(24, 8, 1))
    with pytest.raises(ValueError, match="kdf work 30000000 exceeds the limit 13000000"):
        KdfLimits(max_pbkdf2_iterations=1 << 40).check(PBKDF2(30_000_000))
    KdfLimits(max_pbkdf2_iterations=1 << 40, max_kdf_work=1 << 40).check(PBKDF2(30_000_000))


def test_password_nfc_and_errors() -> None:
    nfd = unicodedata.normalize("NFD", "pässwörd")
    assert encode_password(nfd) == encode_password("pässwörd") == "pässwörd".encode()
    assert encode_password(b"\xff\x00") == b"\xff\x00"
    with pytest.raises(ValueError, match="password must not be empty"):
        encode_password("")
    with pytest.raises(TypeError, match="password must be str or bytes, not int"):
        encode_password(5)  # type: ignore[arg-type]


def test_pbkdf2_iterations_top_bit_refused() -> None:
    """cryptography panics (uncatchable) from 2**31 iterations, so the top bit is refused."""
    assert PBKDF2(2**31 - 1).iterations == 2**31 - 1
    with pytest.raises(ValueError, match="iterations must be between 1 and 2147483647"):
        PBKDF2(2**31)
    with pytest.raises(ValueError, match="iterations must be between"):
        decode_kdf(PBKDF2.kdf_id, (2**31).to_bytes(4, "big"))


@pytest.mark.parametrize("secret", ["hunter2\ud800", "\udcffmy card 4111"])
def test_unencodable_password_error_holds_no_secret(secret: str) -> None:
    """A lone surrogate: the error names the argument and index, never the text (its repr too)."""
    with pytest.raises(ValueError, match="password is not valid unicode text") as info:
        encode_password(secret)
    assert info.value.__context__ is None and info.value.__cause__ is None
    for text in (str(info.value), repr(info.value)):
        assert "hunter" not in text and "card" not in text
