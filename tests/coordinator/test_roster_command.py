"""``sscjak-coordinator roster add|show`` from the entries ``sscjak-node keys`` prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from sscjak.coordinator.cli import main as coordinator_main
from sscjak.node.cli import main as node_main
from sscjak.node.node_keys import roster_entry
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
