"""Replays the README's command-line session and checks every output line it shows.

The README section "command line" holds ```console blocks: lines starting with ``$ `` are
commands, the lines after them are what the terminal shows (stdout and stderr together). All
commands run in one bash process in a fresh folder, so ``export`` and files carry over.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # drives the installed script through subprocesses
README = Path(__file__).resolve().parent.parent / "README.md"
BIN_DIR = Path(sys.executable).parent
SECTION = re.compile(
    r"<!-- section: command line -->(.*?)<!-- /section: command line -->", re.DOTALL
)
CONSOLE_BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
MARKER = "@@aes-hmac-readme-step@@"


def session() -> list[tuple[str, list[str]]]:
    """(command, expected output lines) for every ``$ `` line of the section's console blocks."""
    match = SECTION.search(README.read_text())
    assert match, "README has no command line section"
    steps: list[tuple[str, list[str]]] = []
    for block in CONSOLE_BLOCK.findall(match.group(1)):
        for line in block.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], []))
            else:
                assert steps, f"output before any command: {line!r}"
                steps[-1][1].append(line)
    return steps


@pytest.mark.skipif(shutil.which("tar") is None, reason="the session uses tar")
def test_readme_session(tmp_path: Path) -> None:
    steps = session()
    assert len(steps) >= 10
    assert shutil.which("aes-hmac", path=str(BIN_DIR)), "console script not installed"
    script = "\n".join(f"{{ {command}\n}} 2>&1\necho {MARKER}" for command, _ in steps)
    env = {**os.environ, "PATH": f"{BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.stderr == ""
    outputs = result.stdout.split(MARKER + "\n")
    assert outputs[-1] == ""
    assert len(outputs) - 1 == len(steps)
    for (command, expected), shown in zip(steps, outputs, strict=False):
        assert shown.splitlines() == expected, f"$ {command}"
    assert "Traceback" not in result.stdout
