"""Approvals: recorded with the pinned roster, found by plan hash, shown in plain words."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from sscjak.node.cli import main as node_main
from sscjak.node.guard.approvals import ApprovalStore, describe_release
from sscjak.node.guard.node_keys import create_node_identity, roster_entry, roster_entry_toml
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.roster import Roster, write_roster
from sscjak.shared.summary_layout import SummaryLayout


def _roster(root: Path, names: tuple[str, ...] = ("centre-a", "centre-b", "centre-c")) -> Roster:
    for name in names:
        create_node_identity(root / name, name)
    return Roster(tuple(roster_entry(root / name) for name in names))


def test_record_and_find(tmp_path: Path) -> None:
    roster = _roster(tmp_path)
    store = ApprovalStore(tmp_path / "centre-a")
    plan = default_plan()
    assert store.find(plan.sha256) is None
    approval = store.record(plan, roster)
    found = store.find(plan.sha256)
    assert found == approval
    assert found.roster_sha256 == roster.sha256
    assert found.plan_toml == plan.canonical_toml
    assert store.find(Plan(min_cell=7).sha256) is None
    assert store.find("not a hash") is None
    assert store.approved_plans() == [plan.sha256]
    path = store.directory / f"{plan.sha256}.json"
    assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0


def test_approving_again_gives_a_new_approval_id(tmp_path: Path) -> None:
    roster = _roster(tmp_path)
    store = ApprovalStore(tmp_path / "centre-a")
    first = store.record(default_plan(), roster)
    second = store.record(default_plan(), roster)
    assert first.approval_id != second.approval_id
    assert store.find(default_plan().sha256).approval_id == second.approval_id


def test_tampered_approval_file_counts_as_not_approved(tmp_path: Path) -> None:
    roster = _roster(tmp_path)
    store = ApprovalStore(tmp_path / "centre-a")
    plan = default_plan()
    store.record(plan, roster)
    path = store.directory / f"{plan.sha256}.json"
    document = json.loads(path.read_text())
    document["roster_toml"] = document["roster_toml"].replace("centre-c", "centre-x")
    path.write_text(json.dumps(document))
    assert store.find(plan.sha256) is None


def test_release_description_lists_every_element_of_the_summary(tmp_path: Path) -> None:
    roster = _roster(tmp_path)
    plan = Plan(outcomes=("mrss", "tjc"), months=(12,), min_cell=6)
    text = describe_release(plan, roster)
    layout = SummaryLayout.for_plan(plan)
    for segment in layout.segments:
        assert f"- {segment.name} ({segment.length} number" in text
    assert f"{layout.length} integers ({8 * layout.length} bytes" in text
    assert "fewer than 6 patients are suppressed" in text
    assert "mRSS (mrss" in text and "fvc_pct" not in text
    assert all(name in text for name in roster.names)


def test_release_description_says_what_the_coordinator_sees(tmp_path: Path) -> None:
    """The steward reads that small cells are hidden only in the report, that the pooled
    vector is seen in full, and the one-set-per-epoch rule; no per-plan answer cap."""
    text = " ".join(describe_release(Plan(min_cell=6), _roster(tmp_path)).split())
    assert "never sees this centre's own vector" in text
    assert "It sees the POOLED vector in full, small cells included" in text
    assert "fewer than 6 patients is hidden only in the report, not from the coordinator" in text
    assert "exact pooled histogram of changes" in text
    assert "one participant set per epoch, pinned by the first result" in text
    assert "at most" not in text and "times" not in text


def test_approve_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    roster = _roster(tmp_path)
    roster_file = tmp_path / "roster.toml"
    write_roster(roster, roster_file)
    state = tmp_path / "centre-b"
    argv = ["approve", "default", "--roster", str(roster_file), "--state", str(state)]
    # no terminal and no --yes: nothing is recorded
    assert node_main(argv) == 1
    assert ApprovalStore(state).find(default_plan().sha256) is None
    assert "not approved: type yes or pass --yes" in capsys.readouterr().err
    assert node_main([*argv, "--yes"]) == 0
    out = capsys.readouterr().out
    assert "change.mrss.12.histogram" in out and "Approved plan" in out
    assert ApprovalStore(state).find(default_plan().sha256).roster == roster


def test_approve_refuses_a_roster_without_this_node_or_with_another_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = _roster(tmp_path)
    create_node_identity(tmp_path / "outsider", "outsider")
    roster_file = tmp_path / "roster.toml"
    write_roster(roster, roster_file)
    argv = ["approve", "default", "--roster", str(roster_file), "--yes"]
    assert node_main([*argv, "--state", str(tmp_path / "outsider")]) == 1
    assert "not in the roster" in capsys.readouterr().err
    # centre-a's entry replaced by a key that is not centre-a's own
    impostor = roster_entry(tmp_path / "outsider")
    forged = roster.with_member(type(impostor)("centre-a", impostor.x25519_public_key))
    write_roster(forged, roster_file)
    assert node_main([*argv, "--state", str(tmp_path / "centre-a")]) == 1
    assert "another key" in capsys.readouterr().err


def test_keys_command_creates_once_and_prints_the_entry(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    assert node_main(["keys", "--state", str(state)]) == 1
    assert "give --name" in capsys.readouterr().err
    out_file = tmp_path / "entry.toml"
    assert (
        node_main(["keys", "--state", str(state), "--name", "centre-z", "--out", str(out_file)])
        == 0
    )
    entry = roster_entry(state)
    assert out_file.read_text() == roster_entry_toml(entry)
    assert entry.x25519_public_key in capsys.readouterr().out
    # running again prints the same key; another name is refused
    assert node_main(["keys", "--state", str(state)]) == 0
    assert roster_entry(state) == entry
    assert node_main(["keys", "--state", str(state), "--name", "centre-y"]) == 1


def test_the_approval_text_says_what_a_time_to_event_plan_releases(tmp_path: Path) -> None:
    plan = Plan(time_to_event=("drug_retention", "infection"), by="jaki_drug", horizon_months=36)
    text = " ".join(describe_release(plan, _roster(tmp_path)).split())
    assert "time to event: drug_retention, infection, per jaki_drug (tofacitinib," in text
    assert "grid of 30.4375 days up to 36 months" in text
    for segment in SummaryLayout.for_plan(plan).segments:
        assert f"- {segment.name} (" in text
    assert "time to event" not in " ".join(
        describe_release(Plan(), _roster(tmp_path / "other")).split()
    )


def test_time_to_event_plans_on_other_grids_are_not_twins() -> None:
    from sscjak.node.guard.approvals import are_twins, shared_segments

    plan = Plan(time_to_event=("drug_retention",), by="sex")
    assert are_twins(plan, Plan(title="other", time_to_event=("drug_retention",), by="sex"))
    longer = Plan(time_to_event=("drug_retention",), by="sex", horizon_months=121)
    assert not are_twins(plan, longer)
    assert not any(name.startswith("tte.") for name in shared_segments(plan, longer))
    daily = Plan(time_to_event=("drug_retention",), by="sex", time_grid_days=1.0)
    assert not any(name.startswith("tte.") for name in shared_segments(plan, daily))
