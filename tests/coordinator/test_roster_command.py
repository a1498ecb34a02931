"""``sscjak-coordinator roster add|show`` from the entries ``sscjak-node keys`` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from sscjak.coordinator.cli import main as coordinator_main
from sscjak.node.cli import main as node_main
from sscjak.node.guard.node_keys import roster_entry
from sscjak.shared.roster import load_roster


def test_add_show_and_replace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roster_file = tmp_path / "roster.toml"
    for name in ("centre-b", "centre-a"):
        entry = tmp_path / f"{name}.toml"
        state = tmp_path / name
        assert node_main(["keys", "--state", str(state), "--name", name, "--out", str(entry)]) == 0
        assert (
            coordinator_main(["roster", "add", "--roster", str(roster_file), "--entry", str(entry)])
            == 0
        )
    roster = load_roster(roster_file)
    assert roster.names == ["centre-a", "centre-b"]
    assert roster.member("centre-a") == roster_entry(tmp_path / "centre-a")
    capsys.readouterr()
    assert coordinator_main(["roster", "show", "--roster", str(roster_file)]) == 0
    shown = capsys.readouterr().out
    assert roster.sha256 in shown and "centre-a" in shown

    # the same key under a second name is refused
    duplicate = tmp_path / "dup.toml"
    duplicate.write_text((tmp_path / "centre-a.toml").read_text().replace("centre-a", "centre-x"))
    assert (
        coordinator_main(["roster", "add", "--roster", str(roster_file), "--entry", str(duplicate)])
        == 1
    )
    assert "already in the roster" in capsys.readouterr().err
    assert load_roster(roster_file) == roster


def test_bad_entry_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry = tmp_path / "entry.toml"
    entry.write_text('[[node]]\nname = "centre-a"\nx25519_public_key = "abc"\n')
    roster_file = tmp_path / "roster.toml"
    assert (
        coordinator_main(["roster", "add", "--roster", str(roster_file), "--entry", str(entry)])
        == 1
    )
    assert "64 lower-case hex" in capsys.readouterr().err
    assert not roster_file.exists()


def _roster_with_centre_a(tmp_path: Path) -> Path:
    """A roster file holding one real centre, added through the commands."""
    roster_file = tmp_path / "roster.toml"
    good = tmp_path / "centre-a.toml"
    node_main(["keys", "--state", str(tmp_path / "a"), "--name", "centre-a", "--out", str(good)])
    assert (
        coordinator_main(["roster", "add", "--roster", str(roster_file), "--entry", str(good)]) == 0
    )
    return roster_file


def test_roster_add_refuses_a_small_order_key_and_names_the_member(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster_file = _roster_with_centre_a(tmp_path)
    before = roster_file.read_text()
    capsys.readouterr()
    order_eight = "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"
    entry = tmp_path / "entry.toml"
    entry.write_text(f'[[node]]\nname = "centre-z"\nx25519_public_key = "{order_eight}"\n')
    assert (
        coordinator_main(["roster", "add", "--roster", str(roster_file), "--entry", str(entry)])
        == 1
    )
    err = capsys.readouterr().err
    assert "centre-z" in err and "small-order" in err and "Traceback" not in err
    assert roster_file.read_text() == before


def test_roster_add_refuses_a_copy_of_a_key_in_another_encoding(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster_file = _roster_with_centre_a(tmp_path)
    key = load_roster(roster_file).member("centre-a").x25519_public_key
    copy = key[:62] + f"{int(key[62:], 16) | 0x80:02x}"  # top bit set: the same point
    entry = tmp_path / "copy.toml"
    entry.write_text(f'[[node]]\nname = "centre-x"\nx25519_public_key = "{copy}"\n')
    capsys.readouterr()
    assert (
        coordinator_main(["roster", "add", "--roster", str(roster_file), "--entry", str(entry)])
        == 1
    )
    assert "already in the roster" in capsys.readouterr().err
    assert load_roster(roster_file).names == ["centre-a"]
