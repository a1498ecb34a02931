"""The node never imports the coordinator and vice versa (the brief's layout rule).

The single exception is the coordinator's in-process simulation, which plays every node
in one process by design; it is listed here by name so that any other crossing fails.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COORDINATOR_MODULES_THAT_PLAY_NODES = {"simulate.py", "in_process.py"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_node_never_imports_the_coordinator() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "node").rglob("*.py")
        if any(name.startswith("sscjak.coordinator") for name in imported_modules(path))
    ]
    assert offenders == []


def test_coordinator_imports_node_code_only_to_simulate_nodes() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "coordinator").rglob("*.py")
        if path.name not in COORDINATOR_MODULES_THAT_PLAY_NODES
        and any(name.startswith("sscjak.node") for name in imported_modules(path))
    ]
    assert offenders == []


def test_shared_imports_neither_side() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "shared").rglob("*.py")
        if any(
            name.startswith(("sscjak.node", "sscjak.coordinator"))
            for name in imported_modules(path)
        )
    ]
    assert offenders == []
