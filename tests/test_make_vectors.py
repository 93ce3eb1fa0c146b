"""scripts/make_vectors.py: it reproduces every committed generated vector file byte for byte."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from _vectors import VECTORS

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "make_vectors.py"


def test_generator_reproduces_the_committed_vectors() -> None:
    spec = importlib.util.spec_from_file_location("make_vectors", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    files = {
        **module.token_files(),
        **module.compat_files(),
        **module.armor_files(),
        **module.stream_files(),
        **module.manifest_files(),
    }
    assert len(files) == 7
    for name, text in files.items():
        assert (VECTORS / name).read_text(encoding="utf-8") == text, name
