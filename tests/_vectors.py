"""Shared loader for the JSON test vectors under tests/vectors (never reads /work/shared).

``load(name)`` returns a file's JSON; ``cases(name, ...)`` turns a Wycheproof-style file (groups of
tests) or a flat ``tests`` list into ``pytest.param`` objects with readable ids.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest

VECTORS = Path(__file__).parent / "vectors"

Case = dict[str, Any]


@cache
def load(name: str) -> Any:
    """The parsed JSON of ``tests/vectors/<name>``."""
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def cases(
    name: str,
    select: Callable[[Case, Case], bool] | None = None,
    key: str = "tests",
) -> list[Any]:
    """Every test of ``name`` as ``pytest.param(group, test)``, optionally filtered.

    Files with ``testGroups`` (Wycheproof) yield each group's tests with their group; flat files
    (a list, or a dict with a ``key`` list) yield ``({}, test)``. Ids are ``tc<tcId>`` or ``name``.
    """
    data = load(name)
    pairs: list[tuple[Case, Case]] = []
    if isinstance(data, dict) and "testGroups" in data:
        for group in data["testGroups"]:
            pairs.extend((group, test) for test in group["tests"])
    else:
        items = data if isinstance(data, list) else data[key]
        pairs.extend(({}, test) for test in items)
    params = []
    for index, (group, test) in enumerate(pairs):
        if select is not None and not select(group, test):
            continue
        ident = test.get("name") or (f"tc{test['tcId']}" if "tcId" in test else str(index))
        params.append(pytest.param(group, test, id=str(ident)))
    return params


def unhex(value: str) -> bytes:
    """Bytes of a lowercase hex field."""
    return bytes.fromhex(value)
