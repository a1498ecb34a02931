"""``sscjak-node approve`` through the real CLI: the one warning about approved plans that
release the same numbers (twins, shared segments, overlaps), ``--participants`` starting
a release epoch, and confirmation by a ``yes`` line on a non-terminal standard input."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from sscjak.node.cli import main as node_main
from sscjak.node.guard.approvals import (
    ApprovalStore,
    are_twins,
    related_approvals,
    shared_segments,
)
from sscjak.node.guard.node_keys import create_node_identity, roster_entry
from sscjak.node.guard.release_epoch import new_epoch, read_epoch, write_epoch
from sscjak.node.guard.round_ledger import LEDGER_DIRECTORY
from sscjak.shared.plan import Plan
from sscjak.shared.roster import Roster, write_roster
from sscjak.shared.summary_layout import SummaryLayout

NAMES = ("centre-a", "centre-b", "centre-c", "centre-d")
QUESTION = Plan(title="mRSS and TJC at 12 months", outcomes=("mrss", "tjc"), months=(12,))
#: The same numbers: only title, SMC choice and exact p-value differ.
TWIN = Plan(title="renamed", outcomes=("mrss", "tjc"), months=(12,), smc="change")
#: Shares the 12-month mRSS cell (same window) and the cohort-wide numbers; no overlap.
SIBLING = Plan(title="mRSS and FVC at 12 months", outcomes=("mrss", "fvc_pct"), months=(12,))
#: Another window: no change cell in common, only the cohort-wide numbers; overlaps.
WIDER = Plan(title="wider", outcomes=("mrss",), months=(12,), window_months=2.5)
#: Shares nothing but the cohort-wide numbers.
OTHER = Plan(title="DLCO at 24 months", outcomes=("dlco_pct",), months=(24,))


@pytest.fixture
def centre(tmp_path: Path) -> tuple[Path, list[str]]:
    """centre-b's state, a roster of four and the argv prefix to approve a plan file."""
    for name in NAMES:
        create_node_identity(tmp_path / name, name)
    roster_file = tmp_path / "roster.toml"
    write_roster(Roster(tuple(roster_entry(tmp_path / n) for n in NAMES)), roster_file)
    for key, plan in {
        "question": QUESTION,
        "twin": TWIN,
        "sibling": SIBLING,
        "wider": WIDER,
        "other": OTHER,
    }.items():
        (tmp_path / f"{key}.toml").write_text(plan.canonical_toml, encoding="utf-8")
    state = tmp_path / "centre-b"
    return state, ["--roster", str(roster_file), "--state", str(state)]


def _approve(centre: tuple[Path, list[str]], plan: str, *extra: str) -> int:
    state, options = centre
    return node_main(["approve", str(state.parent / f"{plan}.toml"), *options, *extra])


def test_shared_segments_depend_on_the_window_and_twins_on_the_numbers() -> None:
    common = [
        s.name for s in SummaryLayout.for_plan(OTHER).segments if not s.name.startswith("change.")
    ]
    assert shared_segments(OTHER, QUESTION) == tuple(common)
    assert shared_segments(WIDER, QUESTION) == tuple(common)  # same cell name, other window
    assert "change.mrss.12.sums" in shared_segments(SIBLING, QUESTION)
    assert "change.mrss.12.histogram" in shared_segments(SIBLING, QUESTION)
    assert "change.fvc_pct.12.sums" not in shared_segments(SIBLING, QUESTION)
    assert are_twins(TWIN, QUESTION)
    assert are_twins(Plan(outcomes=("mrss", "tjc"), months=(12,), min_cell=9), QUESTION)
    assert are_twins(Plan(outcomes=("tjc", "mrss"), months=(12,)), QUESTION)  # same numbers
    assert not are_twins(SIBLING, QUESTION)
    assert not are_twins(WIDER, Plan(outcomes=("mrss",), months=(12,)))
    assert not are_twins(Plan(outcomes=("mrss",), months=(12,)), QUESTION)  # a subset


def test_a_twin_is_named_as_such_with_the_epoch_rule(
    centre: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _approve(centre, "question", "--yes") == 0
    capsys.readouterr()
    assert _approve(centre, "twin", "--yes") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"approved plan {QUESTION.sha256[:12]} ({QUESTION.title})" in out
    assert "it is a TWIN: exactly the same numbers" in out
    assert "TWIN: releases exactly the numbers this plan releases" in out
    assert "harmless only because this node releases results over one participant set" in out
    assert "differ by one centre would give that centre's own values" in out
    assert "overlaps" not in out  # a twin with the same cells is not a few-patient overlap
    relations = related_approvals(TWIN, ApprovalStore(centre[0]))
    assert [(r.approved.plan_sha256, r.twin, r.overlap) for r in relations] == [
        (QUESTION.sha256, True, None)
    ]


def test_plans_sharing_segments_are_named_with_the_common_ones_in_one_phrase(
    centre: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _approve(centre, "question", "--yes") == 0
    assert _approve(centre, "other", "--yes") == 0
    capsys.readouterr()
    assert _approve(centre, "sibling", "--yes") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert out.count("WARNING") == 1  # one warning, not one per kind of risk
    assert "WARNING: 2 plans this centre already approved release some of the same numbers" in out
    assert "TWIN" not in out
    question_block = out[out.index(f"approved plan {QUESTION.sha256[:12]}") :]
    assert question_block.startswith(
        f"approved plan {QUESTION.sha256[:12]} ({QUESTION.title}), approved "
    )
    assert (
        "shares: the cohort-wide numbers every plan releases (centres, patients, follow-up"
        in question_block
    )
    assert "and the change cell mRSS at 12 months (window +/- 2 months" in question_block
    other_block = out[out.index(f"approved plan {OTHER.sha256[:12]}") :]
    other_block = other_block.split("approved plan")[1]
    assert "cohort-wide numbers" in other_block and "change cell" not in other_block
    warning = out[out.index("WARNING") :]
    assert "followup_days_histogram" not in warning and "safety.events" not in warning  # grouped
    assert "one participant set per epoch" in out


def test_an_overlap_and_shared_numbers_make_one_warning_that_needs_confirmation(
    centre: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _approve(centre, "question", "--yes") == 0
    capsys.readouterr()
    assert _approve(centre, "wider") == 1  # no answer on stdin: refused
    captured = capsys.readouterr()
    out = " ".join(captured.out.split())
    assert out.count("WARNING") == 1
    assert "WARNING: this plan overlaps a plan this centre already approved." in out
    assert "isolate individual patients" in out
    assert "Besides, a plan this centre already approved releases some of the same numbers" in out
    assert "same outcomes: mrss" in out
    assert "differs: window +/- 2 months in the approved plan, +/- 2.5 months" in out
    assert "shares: the cohort-wide numbers every plan releases" in out
    assert "DESPITE the overlap? Type 'yes' (or run again with --yes)" in out
    assert "not approved: type yes or pass --yes" in captured.err
    assert "overlaps an approved plan" in captured.err
    assert ApprovalStore(centre[0]).find(WIDER.sha256) is None


def test_approving_the_same_plan_again_does_not_warn(
    centre: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert _approve(centre, "question", "--yes") == 0
    capsys.readouterr()
    assert _approve(centre, "question", "--yes") == 0
    assert "WARNING" not in capsys.readouterr().out


def test_a_yes_line_on_a_non_terminal_stdin_approves(
    centre: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """``echo yes | sscjak-node approve ...``: a piped 'yes' is an answer."""
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    assert _approve(centre, "question") == 0
    out = capsys.readouterr().out
    question = f"Approve plan {QUESTION.sha256[:12]} for node centre-b? Type 'yes' "
    assert question + "(or run again with --yes): \n" in out  # the question names --yes
    assert "Approved plan" in out
    assert ApprovalStore(centre[0]).find(QUESTION.sha256) is not None


@pytest.mark.parametrize(("stdin", "expected"), [("no\n", "Not approved."), ("", None)])
def test_another_line_or_an_empty_stdin_is_no_approval(
    centre: tuple[Path, list[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch,
    stdin: str,
    expected: str | None,
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert _approve(centre, "question") == 1
    captured = capsys.readouterr()
    if expected is None:
        assert "sscjak-node: error: not approved: type yes or pass --yes" in captured.err
    else:
        assert expected in captured.out
    assert "Traceback" not in captured.err
    assert ApprovalStore(centre[0]).find(QUESTION.sha256) is None


def test_participants_start_a_release_epoch_after_the_warning(
    centre: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = centre
    ledger = state / LEDGER_DIRECTORY
    assert (
        _approve(centre, "question", "--participants", "centre-c, centre-a,centre-b", "--yes") == 0
    )
    captured = capsys.readouterr()
    epoch = read_epoch(ledger)
    assert epoch is not None
    assert epoch.participants == ("centre-a", "centre-b", "centre-c")
    assert epoch.started_by == "steward" and not epoch.pinned
    assert "New release epoch: from now on this centre releases results over" in captured.out
    assert f"Started release epoch {epoch.epoch_id[:12]}" in captured.out
    assert "starting a new release epoch" in captured.err
    assert ApprovalStore(state).find(QUESTION.sha256) is not None

    # a pinned epoch over a, b, c; the steward moves to a, b, d: the warning names both
    write_epoch(ledger, epoch.pinned_to(epoch.participants, "0" * 64, "f" * 64))
    assert _approve(centre, "twin", "--participants", "centre-a,centre-b,centre-d", "--yes") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "Until now it released results over centre-a, centre-b, centre-c." in out
    assert "WARNING: a result over one set of centres minus a result over another set" in out
    assert "only in the earlier set: centre-c; only in the new set: centre-d" in out
    after = read_epoch(ledger)
    assert after.participants == ("centre-a", "centre-b", "centre-d")
    assert after.epoch_id != epoch.epoch_id and not after.pinned


def test_participants_need_confirmation_too(
    centre: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    ledger = centre[0] / LEDGER_DIRECTORY
    participants = ("--participants", "centre-a,centre-b,centre-c")
    assert _approve(centre, "question", *participants) == 1
    assert read_epoch(ledger) is None
    assert ApprovalStore(centre[0]).find(QUESTION.sha256) is None
    monkeypatch.setattr("sys.stdin", io.StringIO("yes\n"))
    assert _approve(centre, "question", *participants) == 0
    assert "and start a release epoch over centre-a, centre-b, centre-c?" in capsys.readouterr().out
    assert read_epoch(ledger).participants == ("centre-a", "centre-b", "centre-c")


@pytest.mark.parametrize(
    ("participants", "policy", "expected"),
    [
        ("centre-a,centre-b,centre-x", "", "not in the roster: centre-x"),
        ("centre-a,centre-c,centre-d", "", "this node (centre-b) must be one of them"),
        ("centre-a,centre-b", "", "this centre's policy needs at least 3"),
        ("centre-a,centre-b,centre-a", "", "each centre may be named only once"),
        ("centre-a,centre-b,centre-c", "min_participants = 4\n", "policy needs at least 4"),
    ],
)
def test_participants_outside_the_roster_or_the_policy_are_refused(
    centre: tuple[Path, list[str]],
    capsys: pytest.CaptureFixture[str],
    participants: str,
    policy: str,
    expected: str,
) -> None:
    state, _ = centre
    ledger = state / LEDGER_DIRECTORY
    write_epoch(ledger, new_epoch("steward", ("centre-a", "centre-b", "centre-c")))
    before = read_epoch(ledger)
    if policy:
        state.joinpath("policy.toml").write_text(policy, encoding="utf-8")
    assert _approve(centre, "question", "--participants", participants, "--yes") == 1
    err = capsys.readouterr().err
    assert f"--participants {participants!r}" in err and expected in err
    assert read_epoch(ledger) == before
    assert ApprovalStore(state).find(QUESTION.sha256) is None
