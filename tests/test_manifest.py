"""The folder manifest (FORMAT.md section 4): the codec, its vectors, and what it makes
``decrypt_tree`` and ``aes-hmac decrypt -r`` refuse: swapped, moved, foreign, dropped, replayed and
unlisted files, and a manifest deleted, damaged or taken from another batch."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import struct
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from _vectors import load
from hypothesis import given
from hypothesis import strategies as st
from test_cli import PASSWORD, run
from test_stream import seal_vector

import aes_hmac
from aes_hmac import PBKDF2, HeaderError, KdfLimits, ManifestError, StreamDamaged
from aes_hmac._files import manifest as manifest
from aes_hmac._files.tree import BatchCredential, decrypt_one, decrypt_tree, encrypt_tree
from aes_hmac._files.walk import Place, prepare_dirs
from aes_hmac._keys.credentials import to_credential
from aes_hmac._primitives import TAG_SIZE
from aes_hmac._stream.format import read_header

CHEAP = PBKDF2(iterations=1000)
PW = PASSWORD
FILES = {
    "etc/allow.txt": b"alice\n",
    "etc/deny.txt": b"mallory\n",
    "data/big.bin": bytes(range(256)) * 40,
}
SWAPPED = "not the file the manifest lists at this path"
MISSING = "listed in the manifest but missing"
UNLISTED = "not listed in the manifest"


# --- the codec ------------------------------------------------------------------------------------


def _id(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


COMPONENT = st.binary(min_size=1, max_size=12).filter(
    lambda c: b"/" not in c and b"\x00" not in c and c not in (b".", b"..")
)
PATHS = st.builds(
    lambda dirs, name: b"/".join([*dirs, name + manifest.SUFFIX]),
    st.lists(COMPONENT, max_size=3),
    COMPONENT,
)
ENTRIES = st.dictionaries(PATHS, st.binary(min_size=32, max_size=32), max_size=20)


@given(ENTRIES)
def test_codec_round_trip_is_canonical(entries: dict[bytes, bytes]) -> None:
    data = manifest.encode(entries)
    assert manifest.decode(data) == entries
    assert manifest.encode(dict(reversed(list(entries.items())))) == data  # order never matters


@given(ENTRIES, st.data())
def test_codec_damage_is_refused_or_reencodes_identically(
    entries: dict[bytes, bytes], data: st.DataObject
) -> None:
    """Any byte changed gives an error or another canonical manifest, never a second spelling."""
    raw = bytearray(manifest.encode(entries))
    index = data.draw(st.integers(0, len(raw) - 1))
    raw[index] ^= data.draw(st.integers(1, 255))
    try:
        decoded = manifest.decode(bytes(raw))
    except ManifestError as exc:
        assert str(exc).startswith("bad manifest: ")
    else:
        assert manifest.encode(decoded) == bytes(raw)


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        (b"", "length 0"),
        (b"a" * 65532 + b".ahm", "length 65536"),
        (b"/etc/x.ahm", "component"),
        (b"etc//x.ahm", "component"),
        (b"etc/../x.ahm", "component"),
        (b"./x.ahm", "component"),
        (b"x\x00.ahm", "NUL"),
        (b"etc/x.txt", "not a .ahm"),
        (b"etc/.ahm", "not a .ahm"),
    ],
)
def test_encode_refuses_a_non_canonical_path(path: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        manifest.encode({path: bytes(32)})


def test_encode_refuses_a_short_stream_id() -> None:
    with pytest.raises(ValueError, match="stream id must be 32 bytes, got 31"):
        manifest.encode({b"x.ahm": bytes(31)})


# --- vectors (tests/vectors/manifest_v1.json, written by scripts/make_vectors.py) ---------------

MANIFEST_VECTOR_INPUTS: list[dict[str, Any]] = [
    {
        "name": "three files, one pbkdf2 password slot",
        "chunk_size": 4096,
        "entries": {p + ".ahm": _id(p).hex() for p in sorted(FILES)},
        "slots": [
            {
                "kind": "password",
                "kdf": {"name": "PBKDF2", "iterations": 1000},
                "password": "correct horse",
                "salt": _id("salt")[:16].hex(),
                "iv": _id("slot iv")[:16].hex(),
            }
        ],
    },
    {
        "name": "empty folder, raw key slot",
        "chunk_size": 4096,
        "entries": {},
        "slots": [{"kind": "key", "key": _id("key").hex(), "iv": _id("slot iv 2")[:16].hex()}],
    },
    {
        "name": "80 files with non-ASCII and non-UTF-8 names, two chunks",
        "chunk_size": 4096,
        "entries": {
            **{f"dir{i % 7}/naïve résumé {i:03}.ahm": _id(f"f{i}").hex() for i in range(79)},
            # A name that is not UTF-8 (Linux allows any byte but "/" and NUL): hex in JSON.
            "hex:" + b"raw\xff\xfe.ahm".hex(): _id("raw").hex(),
        },
        "slots": [
            {
                "kind": "password",
                "kdf": {"name": "PBKDF2", "iterations": 1000},
                "password": "pässwörd",
                "salt": _id("salt 3")[:16].hex(),
                "iv": _id("slot iv 3")[:16].hex(),
            }
        ],
    },
]


def entries_of(v: dict[str, Any]) -> dict[bytes, bytes]:
    """A vector's entries as bytes: paths are UTF-8, or ``hex:`` + their bytes."""
    return {
        bytes.fromhex(p[4:]) if p.startswith("hex:") else p.encode(): bytes.fromhex(i)
        for p, i in v["entries"].items()
    }


def manifest_vector(v: dict[str, Any]) -> dict[str, Any]:
    """Complete a vector's inputs: fixed stream id, file key and chunk IVs, the manifest tag,
    the plaintext (body || tag) and the sealed manifest stream (through the stream vectors'
    private hook)."""
    stream_id, file_key = _id(v["name"] + " stream id"), _id(v["name"] + " file key")
    plain = manifest.seal(entries_of(v), file_key, stream_id)
    chunks = len(plain) // v["chunk_size"] + 1
    out = {
        **v,
        "stream_id": stream_id.hex(),
        "file_key": file_key.hex(),
        "chunk_ivs": [_id(f"{v['name']} chunk iv {i}")[:16].hex() for i in range(chunks)],
        "tag": plain[-TAG_SIZE:].hex(),
        "plaintext": plain.hex(),
    }
    out["stream"] = seal_vector(out).hex()
    return out


FORGED_KEY, FORGED_ID = _id("forged file key"), _id("forged stream id")
_GOOD_BODY = manifest.encode({b"x.ahm": bytes(32)})
FORGED_PLAINTEXTS: list[tuple[str, bytes, str]] = [
    ("shorter than a tag", bytes(31), "truncated"),
    ("body without its tag", _GOOD_BODY, "tag does not verify (not a manifest a batch wrote)"),
    (
        "tag of another stream id",
        _GOOD_BODY + manifest.tag(FORGED_KEY, bytes(32), _GOOD_BODY),
        "tag does not verify (not a manifest a batch wrote)",
    ),
    (
        "a valid tag over a body too short",
        b"junk" + manifest.tag(FORGED_KEY, FORGED_ID, b"junk"),
        "truncated",
    ),
]
"""Plaintexts of the stream FORGED_ID under file key FORGED_KEY, with the exact error: the tag
is checked first (the last case has a valid tag over a body too short to parse)."""

INVALID_PLAINTEXTS: list[tuple[str, bytes, str]] = [
    ("truncated head", manifest.MAGIC + b"\x01\x00\x00", "truncated"),
    ("wrong magic", b"AESHMAC-MANIFESX\x01" + bytes(4), "not an aes-hmac manifest"),
    ("version 2", manifest.MAGIC + b"\x02" + bytes(4), "unsupported version 2"),
    ("count past the end", manifest.MAGIC + b"\x01" + struct.pack(">I", 1), "truncated in entry 0"),
    (
        "path length 0",
        manifest.MAGIC + b"\x01" + struct.pack(">IH", 1, 0) + bytes(32),
        "path length 0 in entry 0",
    ),
    (
        "stream id cut",
        manifest.MAGIC + b"\x01" + struct.pack(">IH", 1, 5) + b"x.ahm" + bytes(31),
        "truncated in entry 0",
    ),
    (
        "dot-dot component",
        manifest.MAGIC + b"\x01" + struct.pack(">IH", 1, 8) + b"../x.ahm" + bytes(32),
        "path of entry 0: empty, '.' or '..' component",
    ),
    (
        "not a .ahm name",
        manifest.MAGIC + b"\x01" + struct.pack(">IH", 1, 5) + b"x.txt" + bytes(32),
        "path of entry 0: not a .ahm file name",
    ),
    (
        "out of order",
        manifest.MAGIC
        + b"\x01"
        + struct.pack(">IH", 2, 5)
        + b"y.ahm"
        + bytes(32)
        + struct.pack(">H", 5)
        + b"x.ahm"
        + bytes(32),
        "entry 1 out of order or repeated",
    ),
    (
        "repeated",
        manifest.MAGIC
        + b"\x01"
        + struct.pack(">IH", 2, 5)
        + b"x.ahm"
        + bytes(32)
        + struct.pack(">H", 5)
        + b"x.ahm"
        + bytes(32),
        "entry 1 out of order or repeated",
    ),
    ("trailing data", manifest.encode({b"x.ahm": bytes(32)}) + b"\x00", "trailing data at byte 60"),
]

VECTORS = load("manifest_v1.json")


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector_recomputed_byte_for_byte(v: dict[str, Any]) -> None:
    inputs = {k: v[k] for k in ("name", "chunk_size", "entries", "slots")}
    assert manifest_vector(inputs) == v


@pytest.mark.parametrize("v", VECTORS["vectors"], ids=lambda v: v["name"])
def test_vector_opens_to_its_entries(v: dict[str, Any]) -> None:
    stream = bytes.fromhex(v["stream"])
    assert read_header(io.BytesIO(stream).read).stream_id.hex() == v["stream_id"]
    slot = v["slots"][0]
    secret = {"key": bytes.fromhex(slot["key"])} if slot["kind"] == "key" else slot
    with aes_hmac.open(
        io.BytesIO(stream), key=secret.get("key"), password=secret.get("password")
    ) as f:
        plain = f.read()
    ids = (bytes.fromhex(v["file_key"]), bytes.fromhex(v["stream_id"]))
    assert manifest.unseal(plain, *ids) == entries_of(v)
    assert manifest.decode(plain[:-TAG_SIZE]) == entries_of(v)
    assert len(v["chunk_ivs"]) == (2 if len(v["entries"]) > 3 else 1)


@pytest.mark.parametrize("case", VECTORS["invalid"], ids=lambda c: c["name"])
def test_invalid_vectors_fail_with_their_message(case: dict[str, str]) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest.decode(bytes.fromhex(case["body"]))
    assert str(caught.value) == case["error"]


@pytest.mark.parametrize("case", VECTORS["forged"], ids=lambda c: c["name"])
def test_forged_vectors_fail_with_their_message(case: dict[str, str]) -> None:
    with pytest.raises(ManifestError) as caught:
        manifest.unseal(
            bytes.fromhex(case["plaintext"]),
            bytes.fromhex(case["file_key"]),
            bytes.fromhex(case["stream_id"]),
        )
    assert str(caught.value) == case["error"]


@given(ENTRIES, st.data())
def test_any_changed_byte_of_a_sealed_plaintext_fails_the_tag(
    entries: dict[bytes, bytes], data: st.DataObject
) -> None:
    plain = bytearray(manifest.seal(entries, FORGED_KEY, FORGED_ID))
    assert manifest.unseal(bytes(plain), FORGED_KEY, FORGED_ID) == entries
    plain[data.draw(st.integers(0, len(plain) - 1))] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ManifestError, match="tag does not verify"):
        manifest.unseal(bytes(plain), FORGED_KEY, FORGED_ID)


# --- folders: what decrypt_tree refuses ----------------------------------------------------------


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def batch(base: Path, name: str, files: dict[str, bytes] = FILES) -> Path:
    """``files`` written under ``base/name-src`` and encrypted to ``base/name`` (one batch)."""
    write_tree(base / f"{name}-src", files)
    result = encrypt_tree(base / f"{name}-src", base / name, PW, kdf=CHEAP, chunk_size=4096)
    assert result.ok and (base / name / manifest.NAME).is_file()
    return base / name


def foreign(base: Path) -> Path:
    """Another batch under the same password, same paths, different contents."""
    return batch(base, "other", {rel: b"mallory\n" for rel in FILES})


def swap(enc: Path, base: Path) -> dict[str, str]:
    a, b = enc / "etc/allow.txt.ahm", enc / "etc/deny.txt.ahm"
    tmp = enc / "etc/t"
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    return {"etc/allow.txt.ahm": SWAPPED, "etc/deny.txt.ahm": SWAPPED}


def move(enc: Path, base: Path) -> dict[str, str]:
    (enc / "data/old").mkdir()
    (enc / "data/big.bin.ahm").rename(enc / "data/old/big.bin.ahm")
    return {"data/old/big.bin.ahm": UNLISTED, "data/big.bin.ahm": MISSING}


def copy_foreign(enc: Path, base: Path) -> dict[str, str]:
    shutil.copyfile(foreign(base) / "etc/allow.txt.ahm", enc / "etc/allow.txt.ahm")
    return {"etc/allow.txt.ahm": SWAPPED}


def drop(enc: Path, base: Path) -> dict[str, str]:
    (enc / "etc/deny.txt.ahm").unlink()
    return {"etc/deny.txt.ahm": MISSING}


def replay(enc: Path, base: Path) -> dict[str, str]:
    """The old version of a file put back after the folder was re-encrypted with new contents."""
    old = (enc / "etc/deny.txt.ahm").read_bytes()
    (base / "enc-src/etc/deny.txt").write_bytes(b"alice\nbob\n")
    again = encrypt_tree(base / "enc-src", enc, PW, kdf=CHEAP, existing="overwrite")
    assert again.ok
    (enc / "etc/deny.txt.ahm").write_bytes(old)
    return {"etc/deny.txt.ahm": SWAPPED}


def add_extra(enc: Path, base: Path) -> dict[str, str]:
    shutil.copyfile(foreign(base) / "etc/allow.txt.ahm", enc / "etc/admins.txt.ahm")
    return {"etc/admins.txt.ahm": UNLISTED}


def delete_manifest(enc: Path, base: Path) -> dict[str, str]:
    (enc / manifest.NAME).unlink()
    return {manifest.NAME: "manifest missing"}


def damage_manifest(enc: Path, base: Path) -> dict[str, str]:
    raw = bytearray((enc / manifest.NAME).read_bytes())
    raw[-1] ^= 1
    (enc / manifest.NAME).write_bytes(bytes(raw))
    return {manifest.NAME: "data damaged at byte"}


def other_manifest(enc: Path, base: Path) -> dict[str, str]:
    shutil.copyfile(foreign(base) / manifest.NAME, enc / manifest.NAME)
    return {f"{rel}.ahm": SWAPPED for rel in FILES}


FORGED = "bad manifest: tag does not verify"


def stream_id_of(path: Path) -> bytes:
    """The public stream id in the header of the stream at ``path``."""
    with path.open("rb") as f:
        return read_header(f.read).stream_id


def forged_body(enc: Path) -> bytes:
    """What an attacker who sees ``enc`` (stream ids are public) wants listed: deny.txt's
    stream at allow.txt's path, and nothing else (the other files can then be dropped)."""
    return manifest.encode({b"etc/allow.txt.ahm": stream_id_of(enc / "etc/deny.txt.ahm")})


def plant(enc: Path, old_deny: bytes) -> None:
    """The old deny.txt put at allow.txt's path, every other data file dropped."""
    for found in enc.rglob("*.ahm"):
        found.unlink()
    (enc / "etc/allow.txt.ahm").write_bytes(old_deny)


def data_file_of_the_batch_as_manifest(enc: Path, base: Path) -> dict[str, str]:
    """Review finding 1: the attacker's file, encrypted in the victim's batch, renamed to the
    manifest; its plaintext is the manifest body the attacker wants."""
    old_deny, body = (enc / "etc/deny.txt.ahm").read_bytes(), forged_body(enc)
    (base / "enc-src/invoice.pdf").write_bytes(body)
    again = encrypt_tree(base / "enc-src", enc, PW, kdf=CHEAP, existing="overwrite")
    assert again.ok
    forged = (enc / "invoice.pdf.ahm").read_bytes()
    plant(enc, old_deny)
    (enc / manifest.NAME).write_bytes(forged)
    return {manifest.NAME: FORGED}


def encrypted_file_as_manifest(enc: Path, base: Path) -> dict[str, str]:
    """Review finding 1: one ``encrypt_file`` of attacker-chosen bytes under the password."""
    old_deny, body = (enc / "etc/deny.txt.ahm").read_bytes(), forged_body(enc)
    (base / "chosen.bin").write_bytes(body)
    plant(enc, old_deny)
    (enc / manifest.NAME).unlink()
    aes_hmac.encrypt_file(base / "chosen.bin", enc / manifest.NAME, PW, kdf=CHEAP)
    return {manifest.NAME: FORGED}


ATTACKS: dict[str, Callable[[Path, Path], dict[str, str]]] = {
    "swapped pair": swap,
    "moved file": move,
    "foreign file": copy_foreign,
    "dropped file": drop,
    "old version replayed": replay,
    "unlisted extra file": add_extra,
    "manifest deleted": delete_manifest,
    "manifest damaged": damage_manifest,
    "manifest of another batch": other_manifest,
    "data file of the batch as manifest": data_file_of_the_batch_as_manifest,
    "encrypted file as manifest": encrypted_file_as_manifest,
}


def test_skip_run_does_not_carry_a_planted_manifest(tmp_path: Path) -> None:
    """Review finding 1 at encrypt time: a forged manifest planted in the output folder (an
    ``encrypt_file`` of chosen bytes) is not carried into the next ``existing="skip"`` run's
    genuine manifest, so the file planted with it stays unlisted and is refused."""
    run1 = batch(tmp_path, "run1")
    (tmp_path / "chosen.bin").write_bytes(forged_body(run1))
    enc = tmp_path / "enc"
    (enc / "etc").mkdir(parents=True)
    shutil.copyfile(run1 / "etc/deny.txt.ahm", enc / "etc/allow.txt.ahm")
    aes_hmac.encrypt_file(tmp_path / "chosen.bin", enc / manifest.NAME, PW, kdf=CHEAP)
    result = encrypt_tree(tmp_path / "run1-src", enc, PW, kdf=CHEAP, existing="skip")
    assert not result.ok
    got = failures_by_rel(enc, result.failures)
    assert list(got) == [manifest.NAME] and FORGED in got[manifest.NAME], got
    assert "earlier manifest does not open" in got[manifest.NAME]
    assert result.skipped == 1  # the planted allow.txt.ahm: kept, but no longer listed
    opened = decrypt_tree(enc, tmp_path / "out", PW)
    failed = failures_by_rel(enc, opened.failures)
    assert list(failed) == ["etc/allow.txt.ahm"] and UNLISTED in failed["etc/allow.txt.ahm"]
    assert not (tmp_path / "out/etc/allow.txt").exists()
    assert (tmp_path / "out/etc/deny.txt").read_bytes() == FILES["etc/deny.txt"]


def failures_by_rel(enc: Path, failures: list[tuple[str, BaseException]]) -> dict[str, str]:
    root = os.path.realpath(enc)
    return {os.path.relpath(path, root): str(exc) for path, exc in failures}


@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_decrypt_tree_refuses(tmp_path: Path, attack: str) -> None:
    enc = batch(tmp_path, "enc")
    expected = ATTACKS[attack](enc, tmp_path)
    result = decrypt_tree(enc, tmp_path / "out", PW)
    assert not result.ok
    got = failures_by_rel(enc, result.failures)
    assert got.keys() == expected.keys(), got
    for rel, text in expected.items():
        assert text in got[rel]
    for rel in expected:  # nothing refused is decrypted; a refused manifest decrypts nothing
        assert not (tmp_path / "out" / rel.removesuffix(".ahm")).exists()
    if manifest.NAME in expected:
        assert result.files == 0 and not list((tmp_path / "out").rglob("*"))
    else:
        written = {
            p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*")
        }
        assert all(
            b"mallory" != (tmp_path / "out" / w).read_bytes() for w in written if "allow" in w
        )


def test_manifest_errors_keep_their_kind(tmp_path: Path) -> None:
    """A wrong password is the manifest's HeaderError, damage its StreamDamaged; a file that
    does not match is a ManifestError (so callers can tell them apart)."""
    enc = batch(tmp_path, "enc")
    intact = (enc / manifest.NAME).read_bytes()
    wrong = decrypt_tree(enc, tmp_path / "out", "not the password")
    assert [type(e) for _, e in wrong.failures] == [HeaderError]
    damage_manifest(enc, tmp_path)
    damaged = decrypt_tree(enc, tmp_path / "out", PW)
    assert [type(e) for _, e in damaged.failures] == [StreamDamaged]
    (enc / manifest.NAME).write_bytes(intact)
    swap(enc, tmp_path)
    swapped = decrypt_tree(enc, tmp_path / "out", PW)
    assert [type(e) for _, e in swapped.failures] == [ManifestError, ManifestError]


def test_no_manifest_opt_out_decrypts_an_old_folder(tmp_path: Path) -> None:
    enc = batch(tmp_path, "enc")
    (enc / manifest.NAME).unlink()  # as a folder written before manifests existed
    result = decrypt_tree(enc, tmp_path / "out", PW, manifest=False)
    assert result.ok and result.files == len(FILES)
    for rel, data in FILES.items():
        assert (tmp_path / "out" / rel).read_bytes() == data


def test_worker_checks_the_stream_id_again(tmp_path: Path) -> None:
    """decrypt_one refuses a file swapped after decrypt_tree's look at it (the worker's check)."""
    enc = batch(tmp_path, "enc")
    with open(enc / "etc/allow.txt.ahm", "rb") as f:
        allow_id = read_header(f.read).stream_id
    credential = BatchCredential.of(to_credential(PW))
    src_root, out_root = prepare_dirs(enc, tmp_path / "out")
    out = Place(out_root, (), "x")
    with pytest.raises(ManifestError, match=SWAPPED):
        decrypt_one(
            Place(src_root, ("etc",), "deny.txt.ahm"), out, credential, KdfLimits(), False, allow_id
        )
    assert not (tmp_path / "out/x").exists()
    allow = Place(src_root, ("etc",), "allow.txt.ahm")
    assert decrypt_one(allow, out, credential, KdfLimits(), False, allow_id) == 6


# --- what the manifest lists after incremental and failing runs ----------------------------------


def listed(enc: Path) -> set[str]:
    result = decrypt_tree(enc, enc.parent / "check", PW, existing="overwrite")
    assert result.ok, result.failures
    return {
        p.relative_to(enc.parent / "check").as_posix()
        for p in (enc.parent / "check").rglob("*")
        if p.is_file()
    }


def test_skip_existing_run_keeps_listing_the_files_it_kept(tmp_path: Path) -> None:
    enc = batch(tmp_path, "enc")
    (tmp_path / "enc-src/etc/new.txt").write_bytes(b"new\n")
    again = encrypt_tree(tmp_path / "enc-src", enc, PW, kdf=CHEAP, existing="skip")
    assert again.ok and again.files == 1 and again.skipped == len(FILES)
    assert listed(enc) == {*FILES, "etc/new.txt"}
    swap(enc, tmp_path)  # still bound after the incremental run
    assert failures_by_rel(enc, decrypt_tree(enc, tmp_path / "o", PW).failures).keys() == {
        "etc/allow.txt.ahm",
        "etc/deny.txt.ahm",
    }


def test_skip_run_does_not_list_a_kept_file_that_changed(tmp_path: Path) -> None:
    enc = batch(tmp_path, "enc")
    shutil.copyfile(foreign(tmp_path) / "etc/allow.txt.ahm", enc / "etc/allow.txt.ahm")
    again = encrypt_tree(tmp_path / "enc-src", enc, PW, kdf=CHEAP, existing="skip")
    assert failures_by_rel(enc, again.failures) == {
        "etc/allow.txt.ahm": f"{os.path.realpath(enc / 'etc/allow.txt.ahm')}: {SWAPPED}"
        " (swapped, moved, from another batch or an older version)"
    }
    result = decrypt_tree(enc, tmp_path / "out", PW)
    assert failures_by_rel(enc, result.failures).keys() == {"etc/allow.txt.ahm"}
    assert UNLISTED in str(result.failures[0][1])


def test_a_failed_file_is_not_listed_and_existing_ones_stay(tmp_path: Path) -> None:
    write_tree(tmp_path / "src", FILES)
    (tmp_path / "enc/etc").mkdir(parents=True)
    (tmp_path / "enc/etc/deny.txt.ahm").write_bytes(b"not ours")
    first = encrypt_tree(tmp_path / "src", tmp_path / "enc", PW, kdf=CHEAP)
    assert [Path(p).name for p, _ in first.failures] == ["deny.txt"]
    assert "etc/deny.txt.ahm" in failures_by_rel(
        tmp_path / "enc", decrypt_tree(tmp_path / "enc", tmp_path / "o", PW).failures
    )
    (tmp_path / "enc/etc/deny.txt.ahm").unlink()
    second = encrypt_tree(tmp_path / "src", tmp_path / "enc", PW, kdf=CHEAP)
    assert [type(e) for _, e in second.failures] == [FileExistsError, FileExistsError]
    assert listed(tmp_path / "enc") == set(FILES)


def test_an_earlier_manifest_that_does_not_open_is_reported(tmp_path: Path) -> None:
    enc = batch(tmp_path, "enc")
    again = encrypt_tree(tmp_path / "enc-src", enc, "another password", kdf=CHEAP, existing="skip")
    assert failures_by_rel(enc, again.failures) == {
        manifest.NAME: f"{os.path.realpath(enc / manifest.NAME)}: the earlier manifest does not"
        " open (wrong password or damaged header); files it listed that this run did not write"
        " are no longer listed"
    }
    result = decrypt_tree(enc, tmp_path / "out", "another password")
    assert {
        rel: UNLISTED in text for rel, text in failures_by_rel(enc, result.failures).items()
    } == {f"{rel}.ahm": True for rel in FILES}


@pytest.mark.skipif(os.name != "posix", reason="names that are not UTF-8 exist on POSIX only")
def test_names_that_are_not_utf8_are_bound_too(tmp_path: Path) -> None:
    src = os.fsencode(tmp_path / "src")
    os.makedirs(src + b"/d\xff")
    for name in (b"d\xff/a\xfe", b"d\xff/b\xfe"):
        with open(src + b"/" + name, "wb") as f:
            f.write(name)
    assert encrypt_tree(tmp_path / "src", tmp_path / "enc", PW, kdf=CHEAP).ok
    enc = os.fsencode(tmp_path / "enc")
    assert decrypt_tree(tmp_path / "enc", tmp_path / "out", PW).ok
    os.rename(enc + b"/d\xff/a\xfe.ahm", enc + b"/t")
    os.rename(enc + b"/d\xff/b\xfe.ahm", enc + b"/d\xff/a\xfe.ahm")
    os.rename(enc + b"/t", enc + b"/d\xff/b\xfe.ahm")
    result = decrypt_tree(tmp_path / "enc", tmp_path / "out2", PW)
    assert sorted(os.fsencode(p)[len(enc) :] for p, _ in result.failures) == [
        b"/d\xff/a\xfe.ahm",
        b"/d\xff/b\xfe.ahm",
    ]


def _returns_within(fifo: Path, call: Callable[[], Any]) -> Any:
    """Run ``call`` in a thread; if it blocks opening ``fifo``, unblock it and fail."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(call()))
    worker.start()
    worker.join(30)  # generous: proves "does not hang on the FIFO", not a speed
    if worker.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))  # let the blocked open return
        worker.join()
        pytest.fail(f"blocked opening the FIFO {fifo}")
    return out[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_place_of_the_manifest_or_an_output_does_not_hang(tmp_path: Path) -> None:
    enc = batch(tmp_path, "enc")
    (enc / manifest.NAME).unlink()
    os.mkfifo(enc / manifest.NAME)
    result = _returns_within(enc / manifest.NAME, lambda: decrypt_tree(enc, tmp_path / "o", PW))
    assert failures_by_rel(enc, result.failures) == {
        manifest.NAME: f"{os.path.realpath(enc / manifest.NAME)}: not a regular file"
    }
    (tmp_path / "enc-src/etc/new.txt").write_bytes(b"new\n")
    os.mkfifo(enc / "etc/new.txt.ahm")
    again = _returns_within(
        enc / "etc/new.txt.ahm",
        lambda: encrypt_tree(tmp_path / "enc-src", enc, PW, kdf=CHEAP),
    )
    failed = failures_by_rel(enc, again.failures)
    assert "not a regular file" in failed[manifest.NAME]  # reported, neither followed nor hung
    assert "../enc-src/etc/new.txt" in failed  # the FIFO at its output: refused, not opened


# --- the manifest and the folder walker ----------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_skipped_entries_are_neither_listed_nor_unlisted(tmp_path: Path) -> None:
    """Links and FIFOs are skipped by the walker on both sides: the manifest does not list
    them, and a decrypt does not count them as unlisted files (nor read them)."""
    write_tree(tmp_path / "enc-src", FILES)
    (tmp_path / "outside.txt").write_bytes(b"outside")
    (tmp_path / "enc-src/etc/link.txt").symlink_to(tmp_path / "outside.txt")
    os.mkfifo(tmp_path / "enc-src/etc/pipe")
    made = encrypt_tree(tmp_path / "enc-src", tmp_path / "enc", PW, kdf=CHEAP)
    assert made.ok and len(made.skipped_entries) == 2
    enc = tmp_path / "enc"
    assert listed(enc) == set(FILES)
    (enc / "etc/planted.txt.ahm").symlink_to(tmp_path / "outside.txt")
    os.mkfifo(enc / "etc/fifo.txt.ahm")
    result = _returns_within(
        enc / "etc/fifo.txt.ahm", lambda: decrypt_tree(enc, tmp_path / "out", PW)
    )
    assert result.ok and result.files == len(FILES), result.failures
    assert sorted((Path(p).name, why) for p, why in result.skipped_entries) == [
        ("fifo.txt.ahm", "FIFO"),
        ("planted.txt.ahm", "symlink, not followed"),
    ]


def test_a_listed_file_replaced_by_a_link_is_missing_and_not_followed(tmp_path: Path) -> None:
    enc = batch(tmp_path, "enc")
    other = foreign(tmp_path)
    (enc / "etc/deny.txt.ahm").unlink()
    (enc / "etc/deny.txt.ahm").symlink_to(other / "etc/deny.txt.ahm")
    (enc / "data").rename(tmp_path / "data-moved")
    (enc / "data").symlink_to(tmp_path / "data-moved", target_is_directory=True)
    result = decrypt_tree(enc, tmp_path / "out", PW)
    assert failures_by_rel(enc, result.failures) == {
        "etc/deny.txt.ahm": f"{os.path.realpath(enc)}/etc/deny.txt.ahm: {MISSING}",
        "data/big.bin.ahm": f"{os.path.realpath(enc)}/data/big.bin.ahm: {MISSING}",
    }
    assert {Path(p).name for p, _ in result.skipped_entries} == {"deny.txt.ahm", "data"}
    assert result.files == 1 and not (tmp_path / "out/etc/deny.txt").exists()


def test_a_link_at_the_manifest_is_never_followed(tmp_path: Path) -> None:
    enc = batch(tmp_path, "enc")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(enc / manifest.NAME, elsewhere / "m")
    (enc / manifest.NAME).unlink()
    (enc / manifest.NAME).symlink_to(elsewhere / "m")
    result = decrypt_tree(enc, tmp_path / "out", PW)
    assert failures_by_rel(enc, result.failures) == {
        manifest.NAME: f"{os.path.realpath(enc)}/{manifest.NAME} is a symlink: not followed"
    }
    assert result.files == 0
    before = (elsewhere / "m").read_bytes()
    again = encrypt_tree(tmp_path / "enc-src", enc, PW, kdf=CHEAP, existing="skip")
    failed = failures_by_rel(enc, again.failures)
    assert failed.keys() == {manifest.NAME} and "symlink: not followed" in failed[manifest.NAME]
    assert (elsewhere / "m").read_bytes() == before  # neither read as the earlier one nor written
    assert (enc / manifest.NAME).is_symlink()


def test_an_interrupted_run_writes_no_manifest(tmp_path: Path) -> None:
    """Ctrl-C stops the run before its manifest: the earlier manifest stays as it was (the
    files the stopped run committed are not listed until a run completes)."""
    enc = batch(tmp_path, "enc")
    before = (enc / manifest.NAME).read_bytes()

    def interrupt(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        encrypt_tree(
            tmp_path / "enc-src", enc, PW, kdf=CHEAP, existing="overwrite", progress=interrupt
        )
    assert (enc / manifest.NAME).read_bytes() == before
    assert not [p for p in enc.rglob("*") if "aes-hmac-tmp" in p.name]
    with pytest.raises(KeyboardInterrupt):
        encrypt_tree(tmp_path / "enc-src", tmp_path / "fresh", PW, kdf=CHEAP, progress=interrupt)
    assert not (tmp_path / "fresh" / manifest.NAME).exists()


def test_process_executor_files_are_listed(tmp_path: Path) -> None:
    write_tree(tmp_path / "src", FILES)
    with ProcessPoolExecutor(2) as pool:
        assert encrypt_tree(tmp_path / "src", tmp_path / "enc", PW, kdf=CHEAP, executor=pool).ok
    assert listed(tmp_path / "enc") == set(FILES)


# --- the command line ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("attack", ATTACKS, ids=list(ATTACKS))
def test_cli_decrypt_r_refuses(tmp_path: Path, attack: str) -> None:
    enc = batch(tmp_path, "enc")
    expected = ATTACKS[attack](enc, tmp_path)
    cmd = ["decrypt", "-r", enc, "-o", tmp_path / "out", "--password-env", "P"]
    result = run(cmd, env={"P": PW})
    err = result.stderr.decode()
    assert result.returncode == 1, err
    root = os.path.realpath(enc)
    for rel, text in expected.items():
        assert any(
            line.startswith(f"aes-hmac: {os.path.join(root, rel)}: ") and text in line
            for line in err.splitlines()
        ), err
    assert "Traceback" not in err and PW not in err
    assert f"{len(expected)} failed" in err


@pytest.mark.slow
def test_cli_no_manifest(tmp_path: Path) -> None:
    enc = batch(tmp_path, "enc")
    (enc / manifest.NAME).unlink()
    cmd = ["decrypt", "-r", enc, "-o", tmp_path / "out", "--password-env", "P", "--no-manifest"]
    result = run(cmd, env={"P": PW})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out/etc/deny.txt").read_bytes() == FILES["etc/deny.txt"]
    usage = run(["decrypt", enc / "etc/deny.txt.ahm", "--no-manifest"], env={"P": PW})
    assert usage.returncode == 2 and b"need -r" in usage.stderr
