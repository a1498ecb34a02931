"""Atomic replacement and private key files (shared/private_files.py)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from sscjak.shared import private_files
from sscjak.shared.private_files import (
    PrivateFileError,
    read_private_file,
    replace_private_file,
    write_private_file,
    write_text_atomically,
)


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


def test_read_private_file_returns_an_owner_only_secret(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    write_private_file(key, b"secret")
    assert read_private_file(key) == b"secret"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o610, 0o601, 0o644])
def test_read_private_file_refuses_any_group_or_other_bit(tmp_path: Path, mode: int) -> None:
    key = tmp_path / "key.pem"
    write_private_file(key, b"secret")
    key.chmod(mode)
    with pytest.raises(PrivateFileError, match=f"mode {mode:o}.*" + re.escape(f"chmod 600 {key}")):
        read_private_file(key)


def test_read_private_file_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "key.pem"
    os.mkfifo(fifo, 0o600)
    with pytest.raises(PrivateFileError, match="not a regular file"):
        read_private_file(fifo)


def test_read_private_file_lets_a_missing_file_be_explained_by_the_caller(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_private_file(tmp_path / "absent.pem")


def test_replace_private_file_is_atomic_and_0600(tmp_path: Path) -> None:
    key = tmp_path / "server.key"
    key.write_bytes(b"old")
    key.chmod(0o644)
    old_umask = os.umask(0)
    try:
        replace_private_file(key, b"new")
    finally:
        os.umask(old_umask)
    assert key.read_bytes() == b"new"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["server.key"]


def test_a_failed_private_replacement_keeps_the_old_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "server.key"
    write_private_file(key, b"old")

    def failing_replace(source: str, destination: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(private_files.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        replace_private_file(key, b"new")
    assert key.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["server.key"]
