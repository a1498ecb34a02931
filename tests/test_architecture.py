"""The layout's rules, checked on the source: who may import whom, and where errors live.

* node/ never imports the coordinator, the coordinator never imports node/ (with one
  exception, below), and shared/ imports neither.
* The one exception: ``coordinator/federation/in_process.py`` plays every node in one
  process for ``simulate``; it is named by path, must exist and must really import node
  code, so the exemption can never outlive its reason.
* Libraries never import command modules; only the two ``cli.py`` name them.
* Libraries raise their own errors (subclasses of ``SscjakError``), never the command
  line's ``UserError``, and define none derived from it.

Each rule is a function of a source tree, and each has a mutation test: a copy of the
tree with one offending line added, which the rule must report.
"""

from __future__ import annotations

import ast
import functools
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOP_LEVEL = ("node", "coordinator", "shared")
#: The one coordinator module allowed to import node code.
PLAYS_EVERY_NODE = Path("coordinator/federation/in_process.py")


@functools.lru_cache(maxsize=1024)
def _parsed(source: str, filename: str) -> ast.Module:
    """The syntax tree of ``source``; the rules and mutation tests read the same files
    many times, and a file's tree depends only on its text."""
    return ast.parse(source, filename=filename)


def parsed(path: Path) -> ast.Module:
    return _parsed(path.read_text(encoding="utf-8"), str(path))


def imported_modules(path: Path) -> set[str]:
    tree = parsed(path)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def modules(root: Path, top: str) -> list[Path]:
    return sorted((root / top).rglob("*.py"))


def is_command_module(root: Path, path: Path) -> bool:
    relative = path.relative_to(root)
    return "commands" in relative.parts or relative.name == "cli.py" or relative == Path(
        "shared/cli_support.py"
    )


def boundary_crossings(root: Path) -> list[str]:
    """Every import that crosses the node/coordinator/shared boundary against the rules."""
    forbidden = {
        "node": ("sscjak.coordinator",),
        "coordinator": ("sscjak.node",),
        "shared": ("sscjak.node", "sscjak.coordinator"),
    }
    found = []
    for top, prefixes in forbidden.items():
        for path in modules(root, top):
            if path.relative_to(root) == PLAYS_EVERY_NODE:
                continue
            for name in sorted(imported_modules(path)):
                if name.startswith(prefixes):
                    found.append(f"{path.relative_to(root)} imports {name}")
    return found


def commands_imported_by_libraries(root: Path) -> list[str]:
    found = []
    for top in TOP_LEVEL:
        for path in modules(root, top):
            if is_command_module(root, path):
                continue
            for name in sorted(imported_modules(path)):
                if name.startswith(("sscjak.node.commands", "sscjak.coordinator.commands")):
                    found.append(f"{path.relative_to(root)} imports {name}")
    return found


def libraries_using_the_cli_error(root: Path) -> list[str]:
    """Library modules that raise ``UserError`` or derive an exception from it."""
    found = []
    for top in TOP_LEVEL:
        for path in modules(root, top):
            if is_command_module(root, path):
                continue
            for node in ast.walk(parsed(path)):
                if isinstance(node, ast.ClassDef) and any(
                    isinstance(base, ast.Name) and base.id == "UserError" for base in node.bases
                ):
                    found.append(f"{path.relative_to(root)}: class {node.name}(UserError)")
                if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                    called = node.exc.func
                    if isinstance(called, ast.Name) and called.id == "UserError":
                        found.append(f"{path.relative_to(root)}:{node.lineno}: raise UserError")
    return found


RULES: dict[str, Callable[[Path], list[str]]] = {
    "boundary": boundary_crossings,
    "commands": commands_imported_by_libraries,
    "errors": libraries_using_the_cli_error,
}


@pytest.mark.parametrize("rule", sorted(RULES))
def test_the_repository_keeps_the_rule(rule: str) -> None:
    assert RULES[rule](ROOT) == []


def test_the_one_exemption_is_alive() -> None:
    exempt = ROOT / PLAYS_EVERY_NODE
    assert exempt.is_file(), "the exempt module is gone: remove the exemption"
    assert any(name.startswith("sscjak.node") for name in imported_modules(exempt)), (
        "the exempt module no longer imports node code: remove the exemption"
    )


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("tree")
    for top in TOP_LEVEL:
        shutil.copytree(ROOT / top, copy / top, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


MUTATIONS = [
    ("boundary", "node/guard/approvals.py", "from sscjak.coordinator.federation import errors\n"),
    ("boundary", "node/data/csv_reader.py", "import sscjak.coordinator.results.schema\n"),
    ("boundary", "coordinator/results/schema.py", "from sscjak.node.guard import audit_log\n"),
    ("boundary", "shared/plan.py", "from sscjak.node.summarise import derivation\n"),
    ("commands", "coordinator/federation/loopback.py", "import sscjak.coordinator.commands.demo\n"),
    ("commands", "node/guard/release.py", "from sscjak.node.commands import serve\n"),
    ("errors", "shared/roster.py", "class Stray(UserError):\n    pass\n"),
    ("errors", "node/guard/audit_log.py", "def stray():\n    raise UserError('x')\n"),
]


@pytest.mark.parametrize(("rule", "module", "line"), MUTATIONS)
def test_a_mutation_breaking_the_rule_is_caught(
    tree_copy: Path, rule: str, module: str, line: str
) -> None:
    target = tree_copy / module
    original = target.read_text(encoding="utf-8")
    assert RULES[rule](tree_copy) == []
    try:
        target.write_text(original + "\n" + line, encoding="utf-8")
        reported = RULES[rule](tree_copy)
        assert len(reported) == 1 and reported[0].startswith(module), reported
    finally:
        target.write_text(original, encoding="utf-8")
