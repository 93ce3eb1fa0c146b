"""``import_sources``: sources declare their guarantee and options; one binary dispatch."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import pytest

import aes_hmac
from aes_hmac import _kdf, cli
from aes_hmac.cli import common, import_sources
from aes_hmac.cli.commands import import_
from aes_hmac.cli.import_sources import ImportSource, SourceOption

SECRET, NEW = "source secret", "new passphrase for probes"
COUNT = SourceOption("--probe-count", "count", "N", "a count of the probe format", 7, 100)


class Calls:
    """The library pair of a test source: records what the dispatch passed to which one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def to_file(self, *args: Any, **kwargs: Any) -> int:
        self.calls.append(("file", args, kwargs))
        return 0

    def to_stream(self, *args: Any, **kwargs: Any) -> int:
        self.calls.append(("stream", args, kwargs))
        return 0


def probe_source(calls: Calls, *, verified: bool = False) -> ImportSource:
    return ImportSource(
        name="probe",
        title="probe files",
        help="a probe file -> a binary encrypted file.",
        run=import_sources.convert_binary(calls.to_file, calls.to_stream),
        verified=verified,
        options=(COUNT,),
    )


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """A source "probe" registered for this test (the parser reads ``SOURCES`` when built)."""
    recorded = Calls()
    monkeypatch.setitem(import_sources.SOURCES, "probe", probe_source(recorded))
    monkeypatch.setenv("PROBE_OLD", SECRET)
    monkeypatch.setenv("PROBE_NEW", NEW)
    return recorded


def parse(argv: list[str]) -> argparse.Namespace:
    return cli.build_parser().parse_args(["import", *argv])


def run(argv: list[str]) -> int:
    passwords = ["--password-env", "PROBE_OLD", "--new-password-env", "PROBE_NEW", "-q"]
    args = parse([*argv, *passwords, "--iterations", "1000"])
    status: int = args.run(args)
    return status


def test_every_source_states_its_guarantee() -> None:
    """The help promised "everything is verified" whatever the source: now each one says."""
    text = import_.COMMAND.epilog
    for source in import_sources.SOURCES.values():
        assert source.describe() in text
        assert (import_sources.VERIFIED_HELP in source.describe()) is source.verified
        assert (import_sources.UNVERIFIED_HELP in source.describe()) is not source.verified
    assert all(import_sources.SOURCES[name].verified for name in ("aescrypt", "fernet", "legacy"))
    assert "Everything is verified" not in text
    unverified = import_sources.epilog([probe_source(Calls())])
    assert import_sources.UNVERIFIED_HELP in unverified
    assert import_sources.VERIFIED_HELP not in unverified
    assert unverified.endswith(import_sources.FAILED_IMPORT)


def test_source_options_are_flags_of_their_source_only(calls: Calls) -> None:
    probe = import_sources.SOURCES["probe"]
    assert import_.read_source_options(probe, parse(["--from", "probe"])) == {"count": 7}
    args = parse(["--from", "probe", "--probe-count", "9"])
    assert import_.read_source_options(probe, args) == {"count": 9}
    aescrypt = import_sources.SOURCES["aescrypt"]
    args = parse(["--from", "aescrypt", "--probe-count", "9"])
    with pytest.raises(common.UsageError, match="--probe-count needs --from probe"):
        import_.read_source_options(aescrypt, args)
    assert import_.read_source_options(aescrypt, parse(["--from", "aescrypt"])) == {}
    for bad, why in (("0", "positive integer"), ("101", "at most 100"), ("x", "positive")):
        with pytest.raises(common.UsageError, match=why):
            parse(["--from", "probe", "--probe-count", bad])


def test_path_to_path_goes_to_the_file_importer_with_options(tmp_path: Path, calls: Calls) -> None:
    src, dst = tmp_path / "in.probe", tmp_path / "out.ahm"
    src.write_bytes(b"probe data")
    assert run(["--from", "probe", str(src), "-o", str(dst), "--probe-count", "3"]) == 0
    [(kind, args, kwargs)] = calls.calls
    assert kind == "file"
    assert args == (str(src), str(dst), SECRET, NEW)
    assert kwargs["count"] == 3 and kwargs["overwrite"] is False
    assert isinstance(kwargs["kdf"], aes_hmac.PBKDF2)


def test_in_place_output_streams_through_a_non_seekable_view(tmp_path: Path, calls: Calls) -> None:
    """A device output cannot take bytes back: the importer gets a view it cannot read twice."""
    src = tmp_path / "in.probe"
    src.write_bytes(b"probe data")
    assert run(["--from", "probe", str(src), "-o", os.devnull]) == 0
    [(kind, args, kwargs)] = calls.calls
    assert kind == "stream" and kwargs["count"] == COUNT.default
    reader = args[0]
    assert not reader.seekable()
    assert args[2:] == (SECRET, NEW)


def test_check_int_is_shared() -> None:
    """Importers validate their own counts with the KDFs' public check, not a private one."""
    with pytest.raises(ValueError, match="iterations must be between 1 and 5, got 0"):
        _kdf.check_int("iterations", 0, 1, 5)
    with pytest.raises(TypeError, match="iterations must be an int, not bool"):
        _kdf.check_int("iterations", True, 1, 5)
