"""The node's long-term key: created once, 0600, refused when exposed."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sscjak.node.guard.node_keys import (
    PRIVATE_KEY_FILE,
    NodeKeyError,
    create_node_identity,
    load_node_name,
    load_private_key,
    public_key_hex,
    roster_entry,
)


def test_key_file_is_owner_only_and_reloads(tmp_path: Path) -> None:
    os.umask(0o022)
    key = create_node_identity(tmp_path / "state", "centre-a")
    path = tmp_path / "state" / PRIVATE_KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert public_key_hex(load_private_key(tmp_path / "state")) == public_key_hex(key)
    assert load_node_name(tmp_path / "state") == "centre-a"
    assert roster_entry(tmp_path / "state").x25519_public_key == public_key_hex(key)


def test_key_is_never_overwritten(tmp_path: Path) -> None:
    key = create_node_identity(tmp_path, "centre-a")
    with pytest.raises(NodeKeyError, match="never overwritten"):
        create_node_identity(tmp_path, "centre-a")
    assert public_key_hex(load_private_key(tmp_path)) == public_key_hex(key)


def test_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    create_node_identity(tmp_path, "centre-a")
    os.chmod(tmp_path / PRIVATE_KEY_FILE, 0o644)
    with pytest.raises(NodeKeyError, match="chmod 600"):
        load_private_key(tmp_path)


def test_missing_identity_and_bad_name(tmp_path: Path) -> None:
    with pytest.raises(NodeKeyError, match="sscjak-node keys"):
        load_private_key(tmp_path)
    with pytest.raises(NodeKeyError, match="sscjak-node keys"):
        load_node_name(tmp_path)
    with pytest.raises(NodeKeyError, match="not a node name"):
        create_node_identity(tmp_path, "centre a/..")
