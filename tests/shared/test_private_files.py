"""Atomic replacement and private key files (shared/private_files.py)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sscjak.shared import private_files
from sscjak.shared.private_files import write_private_file, write_text_atomically


def test_atomic_write_replaces_the_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "results.json"
    write_text_atomically(target, "old")
    write_text_atomically(target, "new content")
    assert target.read_text() == "new content"
    assert sorted(p.name for p in target.parent.iterdir()) == ["results.json"]


def test_a_failed_atomic_write_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "results.json"
    write_text_atomically(target, "old")

    def failing_replace(source: str, destination: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(private_files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomically(target, "new")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_private_files_are_0600_and_never_clobbered(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    old_umask = os.umask(0)
    try:
        write_private_file(key, b"secret")
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private_file(key, b"other")
    assert key.read_bytes() == b"secret"
    key.chmod(0o644)
    write_private_file(key, b"replaced", replace=True)
    assert key.read_bytes() == b"replaced"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
