"""scripts/import_graph.py: every place is in the map's layer table and no import points up."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "import_graph.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def copy_repo(tmp_path: Path) -> Path:
    """The package and the map, copied so a test can break one of them."""
    shutil.copytree(REPO / "src" / "aes_hmac", tmp_path / "src" / "aes_hmac")
    (tmp_path / "docs").mkdir()
    shutil.copy(REPO / "docs" / "ARCHITECTURE.md", tmp_path / "docs")
    return tmp_path


def test_the_package_has_no_upward_arrow(capsys: pytest.CaptureFixture[str]) -> None:
    assert load().main(["--root", str(REPO)]) == 0
    out = capsys.readouterr().out
    assert "upward arrows and cycles: none" in out
    # ``ls src/aes_hmac`` is the layer list (exit 0 means every entry is in exactly one row).
    assert "level 1: _errors.py, _primitives.py" in out


def test_an_upward_import_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_repo(tmp_path)
    kdf = root / "src" / "aes_hmac" / "_kdf.py"
    kdf.write_text(kdf.read_text() + "\nfrom ._stream import engine  # noqa\n")
    assert load().main(["--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "upward arrow: _kdf.py (layer 2, key derivation) imports _stream/ (layer 6" in err
    assert "cycle through" in err  # the engine imports _kdf back


def test_a_place_missing_from_the_map_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = copy_repo(tmp_path)
    (root / "src" / "aes_hmac" / "_helpers.py").write_text("from . import _errors\n")
    assert load().main(["--root", str(root)]) == 1
    assert "_helpers.py is not in the layer table" in capsys.readouterr().err
