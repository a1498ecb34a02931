"""The repository explains itself: no tracked file points outside it.

The reference pages in ``docs/`` (input files, derivation, statistics, results file,
commands) are where code, tests and pages send a reader. A tracked file that names a
specification document kept outside the repository, or a relative path that climbs to a
``shared`` folder above the checkout, would send the reader somewhere a centre's copy
of sscjak does not have. This test lists every such line.

Scope: every file ``git ls-files`` lists, except binary files (a NUL byte, or not
UTF-8) and the CI folder ``.ci/``. The searched texts are assembled at run time so that
this file does not match itself.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SKIPPED_FOLDERS = (".ci/",)
#: Texts no tracked file may contain: a reference to the outside specification document,
#: and a relative path leaving the repository towards a sibling ``shared`` folder.
FORBIDDEN = ("CONTRACT" + ".md", ".." + "/shared")


def tracked_files() -> list[str]:
    """Paths of the tracked files, relative to the repository root."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: the tracked files cannot be listed")
    listing = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"],
        check=True,
        capture_output=True,
    ).stdout
    return [name for name in listing.decode("utf-8").split("\0") if name]


def text_of(path: Path) -> str | None:
    """The file's text, or ``None`` for a binary file (NUL byte or not UTF-8) or none at all."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None  # tracked but deleted in the work tree, or a submodule
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def offending_lines() -> list[str]:
    """``path:line: text`` for every line of a tracked text file holding a forbidden text."""
    offenders: list[str] = []
    for name in tracked_files():
        if name.startswith(SKIPPED_FOLDERS):
            continue
        text = text_of(ROOT / name)
        if text is None:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if any(forbidden in line for forbidden in FORBIDDEN):
                offenders.append(f"{name}:{number}: {line.strip()}")
    return offenders


def test_no_tracked_file_points_outside_the_repository() -> None:
    offenders = offending_lines()
    assert offenders == [], (
        f"{len(offenders)} line(s) point outside the repository; cite the page in docs/ "
        "instead (input-files.md, derivation.md, statistics.md, results-file.md, "
        "commands.md):\n" + "\n".join(offenders)
    )


def test_the_check_finds_what_it_looks_for(tmp_path: Path) -> None:
    """The binary filter and the search themselves work (a guard against a vacuous pass)."""
    text_file = tmp_path / "page.md"
    text_file.write_text("see " + FORBIDDEN[0] + " §2\n", encoding="utf-8")
    binary_file = tmp_path / "image.png"
    binary_file.write_bytes(b"\x89PNG\r\n\x1a\n\0" + FORBIDDEN[1].encode())
    latin1_file = tmp_path / "old.csv"
    latin1_file.write_bytes("caf\xe9 ".encode("latin-1") + FORBIDDEN[1].encode())
    assert any(forbidden in (text_of(text_file) or "") for forbidden in FORBIDDEN)
    assert text_of(binary_file) is None
    assert text_of(latin1_file) is None
