#!/usr/bin/env python3
"""Print the import graph of ``src/aes_hmac`` by place, and fail on an arrow that points upward.

A place is one entry of ``ls src/aes_hmac``: a module, or a package taken as a whole. An arrow is
"some module of place A imports some module of place B" (A != B), counted once. A place's level is
one more than the highest level it imports (level 1 imports no other place). The layers are the
table in docs/ARCHITECTURE.md: every place must be in exactly one row, and an arrow from a lower
row to a higher one is upward, as is any cycle between places; either exits 1, so the map and the
code cannot drift apart (``scripts/test.sh`` runs this).

Usage: ``python scripts/import_graph.py [--root REPO] [--no-layers]`` (``--no-layers`` only
counts, for a tree whose map lists other places).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = "aes_hmac"
MAP = Path("docs/ARCHITECTURE.md")
LAYER_ROW = re.compile(r"^\|\s*(\d+)\.\s*([^|]*?)\s*\|([^|]*)\|")
"""A row of the map's layer table: ``| 3. formats | `_token/`, `armor.py` | job |``."""
PLACE_CELL = re.compile(r"`([^`]+)`")


def module_names(src: Path) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for ``__init__``)."""
    names: dict[str, Path] = {}
    for path in sorted((src / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def imported(module: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The package's modules that ``module`` imports, anywhere in its body."""
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            bases = [alias.name for alias in node.names]
            names: list[str] = []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = here[: len(here) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            bases = [base]
            names = [alias.name for alias in node.names]
        else:
            continue
        for base in bases:
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            submodules = [f"{base}.{name}" for name in names if f"{base}.{name}" in modules]
            # ``from pkg import module`` imports the module (and runs pkg's __init__ first,
            # which for these packages imports nothing): the arrow goes to the module.
            if submodules:
                yield from submodules
            if len(submodules) < len(names) or not names:
                while base not in modules:  # ``import a.b.c`` of a name inside a module
                    base = base.rpartition(".")[0]
                yield base


def place_of(module: str, modules: dict[str, Path]) -> str:
    """The entry of ``ls src/aes_hmac`` that holds ``module``, spelled as ls shows it."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__.py"
    top = f"{PACKAGE}.{parts[1]}"
    return f"{parts[1]}/" if modules[top].name == "__init__.py" else f"{parts[1]}.py"


def read_layers(text: str) -> dict[str, tuple[int, str]]:
    """Place -> (row number, layer name), from the map's layer table."""
    layers: dict[str, tuple[int, str]] = {}
    for line in text.splitlines():
        row = LAYER_ROW.match(line)
        if row is None:
            continue
        number, name, cell = int(row.group(1)), row.group(2), row.group(3)
        for place in PLACE_CELL.findall(cell):
            if place in layers:
                raise SystemExit(f"import_graph: {place} is in two rows of {MAP}")
            layers[place] = (number, name)
    return layers


def levels_of(arrows: dict[str, set[str]]) -> tuple[dict[str, int], list[str]]:
    """Each place's level, and the places on a cycle (which have none)."""
    level: dict[str, int] = {}
    on_cycle: list[str] = []
    visiting: set[str] = set()

    def visit(place: str) -> int:
        if place in level:
            return level[place]
        if place in visiting:
            on_cycle.append(place)
            return 0
        visiting.add(place)
        level[place] = 1 + max((visit(target) for target in arrows[place]), default=0)
        visiting.discard(place)
        return level[place]

    for place in sorted(arrows):
        visit(place)
    return level, sorted(set(on_cycle))


def main(argv: list[str] | None = None) -> int:
    """Print places, levels and arrows; 1 on an upward arrow, a cycle or an unmapped place."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--no-layers", action="store_true", help="count only, check nothing")
    args = parser.parse_args(argv)
    src = args.root / "src"
    modules = module_names(src)
    module_arrows = {
        (module, target)
        for module, path in modules.items()
        for target in imported(module, path, modules)
        if target != module
    }
    arrows: dict[str, set[str]] = {place_of(m, modules): set() for m in modules}
    for module, target in module_arrows:
        source, goal = place_of(module, modules), place_of(target, modules)
        if source != goal:
            arrows[source].add(goal)
    level, on_cycle = levels_of(arrows)
    count = sum(len(targets) for targets in arrows.values())
    print(
        f"{len(arrows)} places on {max(level.values())} levels, {count} import arrows "
        f"({len(modules)} modules, {len(module_arrows)} module-to-module arrows)"
    )
    for number in sorted(set(level.values())):
        print(f"level {number}: {', '.join(sorted(p for p in arrows if level[p] == number))}")
    for place in sorted(arrows, key=lambda p: (level[p], p)):
        if arrows[place]:
            print(f"  {place} -> {', '.join(sorted(arrows[place], key=lambda p: (level[p], p)))}")
    problems = [f"cycle through {place}" for place in on_cycle]
    if not args.no_layers:
        layers = read_layers((args.root / MAP).read_text())
        problems += [f"{p} is not in the layer table of {MAP}" for p in arrows if p not in layers]
        problems += [f"{MAP} lists {p}, which does not exist" for p in layers if p not in arrows]
        for source, targets in sorted(arrows.items()):
            for goal in sorted(targets):
                if source in layers and goal in layers and layers[goal][0] > layers[source][0]:
                    problems.append(
                        f"upward arrow: {source} (layer {layers[source][0]}, {layers[source][1]})"
                        f" imports {goal} (layer {layers[goal][0]}, {layers[goal][1]})"
                    )
    print(f"upward arrows and cycles: {len(problems) or 'none'}")
    for problem in problems:
        print(f"import_graph: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
