"""Hardening of the node's private keys and of the rosters it pins.

Threat model: a centre trusts neither the coordinator nor other local users of its host.
A private key another user can read is a key that user holds; a key file another user
owns is a key that user may have planted; a roster entry whose X25519 key is a
small-order point makes the pairwise masks with that member predictable (RFC 7748 §6.1)
and the node fails while answering.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sscjak.node.cli import main as node_main
from sscjak.node.flower import auth_keys
from sscjak.node.flower.auth_keys import (
    FLOWER_AUTH_PRIVATE_KEY_FILE,
    ensure_flower_auth_key,
    load_flower_auth_key,
)
from sscjak.node.guard.node_keys import (
    PRIVATE_KEY_FILE,
    NodeKeyError,
    check_node_private_keys,
    create_node_identity,
    load_private_key,
    roster_entry,
)
from sscjak.shared import private_files
from sscjak.shared.errors import SscjakError
from sscjak.shared.roster import Roster, RosterMember, write_roster

#: Small-order encoding used to build a hostile roster (the all-zero point).
ZERO_POINT = "00" * 32


def _node(state: Path, name: str = "centre-a") -> Path:
    create_node_identity(state, name)
    ensure_flower_auth_key(state)
    return state


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_auth_key_readable_or_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    state = _node(tmp_path / "state")
    key_file = state / FLOWER_AUTH_PRIVATE_KEY_FILE
    key_file.chmod(mode)
    with pytest.raises(SscjakError, match=re.escape(f"chmod 600 {key_file}")):
        load_flower_auth_key(state)
    with pytest.raises(SscjakError, match="chmod 600"):
        ensure_flower_auth_key(state)  # an existing exposed key is not silently reused


def test_both_keys_use_the_one_private_file_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _node(tmp_path / "state")
    checked: list[str] = []
    original = private_files.read_private_file

    def spy(path: Path | str) -> bytes:
        checked.append(Path(path).name)
        return original(path)

    monkeypatch.setattr(private_files, "read_private_file", spy)
    load_private_key(state)
    load_flower_auth_key(state)
    assert checked == [PRIVATE_KEY_FILE, FLOWER_AUTH_PRIVATE_KEY_FILE]


def test_key_file_owned_by_another_user_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = _node(tmp_path / "state")
    me = os.geteuid()
    if me == 0:  # root can hand the files to another user
        for name in (PRIVATE_KEY_FILE, FLOWER_AUTH_PRIVATE_KEY_FILE):
            os.chown(state / name, 4242, 4242)
    else:  # otherwise pretend to be another non-root user
        monkeypatch.setattr(private_files.os, "geteuid", lambda: me + 4242)
    with pytest.raises(SscjakError, match="belongs to user id"):
        load_private_key(state)
    with pytest.raises(SscjakError, match="belongs to user id"):
        load_flower_auth_key(state)


def test_key_file_owned_by_root_is_accepted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A root-owned key cannot have been planted by an unprivileged user.
    state = _node(tmp_path / "state")
    if os.geteuid() == 0:
        monkeypatch.setattr(private_files.os, "geteuid", lambda: 4242)
    else:
        monkeypatch.setattr(private_files.os, "fstat", _owned_by_root(os.fstat))
    load_private_key(state)
    load_flower_auth_key(state)


def _owned_by_root(fstat):  # type: ignore[no-untyped-def]
    def patched(descriptor: int) -> os.stat_result:
        status = list(fstat(descriptor))
        status[4] = 0  # st_uid
        return os.stat_result(status)

    return patched


def test_a_key_that_is_not_a_regular_file_is_refused(tmp_path: Path) -> None:
    state = _node(tmp_path / "state")
    (state / PRIVATE_KEY_FILE).unlink()
    (state / PRIVATE_KEY_FILE).mkdir(mode=0o700)
    with pytest.raises(SscjakError, match="not a regular file"):
        load_private_key(state)


def test_a_damaged_auth_key_is_a_user_error_naming_the_file(tmp_path: Path) -> None:
    state = _node(tmp_path / "state")
    key_file = state / FLOWER_AUTH_PRIVATE_KEY_FILE
    key_file.write_bytes(b"not a key")
    with pytest.raises(SscjakError, match=re.escape(str(key_file))):
        load_flower_auth_key(state)


def test_startup_check_names_each_exposed_key(tmp_path: Path) -> None:
    state = _node(tmp_path / "state")
    check_node_private_keys(state)  # both fine
    (state / PRIVATE_KEY_FILE).chmod(0o644)
    with pytest.raises(NodeKeyError, match=re.escape(f"chmod 600 {state / PRIVATE_KEY_FILE}")):
        check_node_private_keys(state)
    (state / PRIVATE_KEY_FILE).chmod(0o600)
    (state / FLOWER_AUTH_PRIVATE_KEY_FILE).chmod(0o644)
    with pytest.raises(
        NodeKeyError, match=re.escape(f"chmod 600 {state / FLOWER_AUTH_PRIVATE_KEY_FILE}")
    ):
        check_node_private_keys(state)


def test_serve_refuses_to_start_with_an_exposed_auth_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _node(tmp_path / "state")
    key_file = state / FLOWER_AUTH_PRIVATE_KEY_FILE
    key_file.chmod(0o644)
    (tmp_path / "data").mkdir()
    (tmp_path / "ca.pem").write_text("placeholder: serve must stop before reading it\n")

    def no_supernode(*args: object, **kwargs: object) -> None:
        raise AssertionError("the SuperNode was started with an exposed key")

    from sscjak.node.commands import (
        serve as serve_command,  # imports Flower: only this test needs it
    )

    monkeypatch.setattr(serve_command.subprocess, "Popen", no_supernode)
    code = node_main(
        [
            "serve",
            "--state",
            str(state),
            "--data",
            str(tmp_path / "data"),
            "--superlink",
            "127.0.0.1:9",
            "--root-certificates",
            str(tmp_path / "ca.pem"),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert f"chmod 600 {key_file}" in err and "Traceback" not in err


def test_keys_command_refuses_an_exposed_auth_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = _node(tmp_path / "state")
    (state / FLOWER_AUTH_PRIVATE_KEY_FILE).chmod(0o604)
    assert node_main(["keys", "--state", str(state)]) == 1
    assert "chmod 600" in capsys.readouterr().err


def test_new_auth_key_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        key = auth_keys.ensure_flower_auth_key(tmp_path / "state")
    finally:
        os.umask(old)
    assert key.private_key_path.stat().st_mode & 0o777 == 0o600


def test_approve_refuses_a_roster_with_a_small_order_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members = [roster_entry(_node(tmp_path / n, n)) for n in ("centre-a", "centre-b")]
    hostile = tmp_path / "roster.toml"
    honest = Roster(tuple(members))
    text = (
        honest.canonical_toml
        + f'\n[[node]]\nname = "centre-z"\nx25519_public_key = "{ZERO_POINT}"\n'
    )
    hostile.write_text(text)
    code = node_main(
        [
            "approve",
            "default",
            "--roster",
            str(hostile),
            "--state",
            str(tmp_path / "centre-a"),
            "--yes",
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "centre-z" in err and "small-order" in err
    assert not (tmp_path / "centre-a" / "approvals").exists() or not any(
        (tmp_path / "centre-a" / "approvals").iterdir()
    )
    # the honest roster plus a real third centre is still approved
    third = roster_entry(_node(tmp_path / "centre-c", "centre-c"))
    write_roster(Roster((*members, third)), tmp_path / "good.toml")
    assert (
        node_main(
            [
                "approve",
                "default",
                "--roster",
                str(tmp_path / "good.toml"),
                "--state",
                str(tmp_path / "centre-a"),
                "--yes",
            ]
        )
        == 0
    )


def test_roster_member_with_a_small_order_key_cannot_be_built() -> None:
    with pytest.raises(SscjakError, match="centre-z"):
        RosterMember("centre-z", ZERO_POINT)
