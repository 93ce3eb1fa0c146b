"""README.md's python code blocks run: each alone in a fresh namespace, unless its first line
says it continues the block above (then in that block's namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aes_hmac import _demo

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
CONTINUES = "# (continues the block above)"


def python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text(encoding="utf-8"))


def test_readme_has_python_blocks() -> None:
    blocks = python_blocks()
    assert len(blocks) >= 5
    assert not blocks[0].startswith(CONTINUES)


def test_readme_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # blocks that write files write them here
    namespace: dict[str, object] = {}
    for number, code in enumerate(python_blocks(), start=1):
        if not code.startswith(CONTINUES):
            namespace = {"__name__": "__readme__"}
        try:
            # dont_inherit: this module's `from __future__ import annotations` must not leak in.
            compiled = compile(code, f"README.md python block {number}", "exec", dont_inherit=True)
            exec(compiled, namespace)
        except Exception as exc:
            pytest.fail(f"README python block {number} failed: {exc!r}\n{code}")


def test_demo_main_job(capsys: pytest.CaptureFixture[str]) -> None:
    assert _demo.main() == 0
    out = capsys.readouterr().out
    assert "FAIL" not in out and out.count("ok ") == 4
