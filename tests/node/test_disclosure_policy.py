"""The node's disclosure policy as small units: overlapping plans warn before approval,
two participants are never answered, and nothing row-level reaches a reply, a refusal
or the audit log. The end-to-end proof is tests/integration/test_disclosure.py."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from disclosure_support import leak_patterns, scan, write_disclosure_centres

from sscjak.node.cli import main as node_main
from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.approvals import (
    ApprovalStore,
    describe_overlaps,
    find_overlap,
    overlapping_approvals,
)
from sscjak.node.guard.node_keys import create_node_identity, roster_entry
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.node.summarise.summary_vector import summarise_centre
from sscjak.shared.plan import Plan
from sscjak.shared.protocol import REFUSAL_KIND, AnalysisRequest, encode_request
from sscjak.shared.roster import Roster, write_roster
from sscjak.shared.summary_layout import SummaryLayout

QUESTION = Plan(title="mRSS and TJC at 12 months", outcomes=("mrss", "tjc"), months=(12,))


def _variant(**changes: object) -> Plan:
    fields = {
        "title": QUESTION.title,
        "outcomes": QUESTION.outcomes,
        "months": QUESTION.months,
        "window_months": QUESTION.window_months,
        "min_cell": QUESTION.min_cell,
        "smc": QUESTION.smc,
        "exact_conditional_p": QUESTION.exact_conditional_p,
    }
    fields.update(changes)
    return Plan(**fields)  # type: ignore[arg-type]


def _roster(root: Path) -> Roster:
    names = ("centre-a", "centre-b", "centre-c")
    for name in names:
        create_node_identity(root / name, name)
    return Roster(tuple(roster_entry(root / name) for name in names))


def _approved(tmp_path: Path, plan: Plan) -> ApprovalStore:
    store = ApprovalStore(tmp_path / "state")
    store.record(plan, _roster(tmp_path / "keys"))
    return store


@pytest.mark.parametrize(
    ("changes", "difference"),
    [
        ({"window_months": 2.5}, "window +/- 2 months in the approved plan, +/- 2.5 months"),
        ({"months": (12, 24)}, "time points 12 months in the approved plan, 12, 24 months"),
        ({"min_cell": 3}, "minimum cell 5 in the approved plan, 3 in this one"),
        ({"outcomes": ("mrss",), "window_months": 1.5}, "window +/- 2 months"),
    ],
)
def test_plans_sharing_an_outcome_with_other_windows_or_cells_overlap(
    tmp_path: Path, changes: dict, difference: str
) -> None:
    store = _approved(tmp_path, QUESTION)
    plan = _variant(**changes)
    overlaps = overlapping_approvals(plan, store)
    assert [o.approved.plan_sha256 for o in overlaps] == [QUESTION.sha256]
    assert any(difference in d for d in overlaps[0].differences), overlaps[0].differences
    assert "mrss" in overlaps[0].shared_outcomes
    warning = describe_overlaps(overlaps)
    assert warning.startswith("WARNING: this plan overlaps a plan this centre already approved.")
    assert "could" in warning and "isolate individual patients" in warning
    assert QUESTION.sha256[:12] in warning and difference in warning


@pytest.mark.parametrize(
    "changes",
    [
        {"title": "the same question, renamed"},
        {"smc": "change"},
        {"exact_conditional_p": True},
        {"outcomes": ("fvc_pct",), "window_months": 2.5},  # no outcome in common
        {},  # the approved plan itself, approved again
    ],
)
def test_plans_releasing_the_same_cells_or_other_outcomes_do_not_overlap(
    tmp_path: Path, changes: dict
) -> None:
    store = _approved(tmp_path, QUESTION)
    plan = _variant(**changes)
    assert overlapping_approvals(plan, store) == []
    assert find_overlap(plan, store.find(QUESTION.sha256)) is None


def test_overlap_with_several_approved_plans_lists_each(tmp_path: Path) -> None:
    store = _approved(tmp_path, QUESTION)
    roster = store.find(QUESTION.sha256).roster
    wider = _variant(window_months=3)
    store.record(wider, roster)
    overlaps = overlapping_approvals(_variant(window_months=2.5), store)
    assert sorted(o.approved.plan_sha256 for o in overlaps) == sorted(
        [QUESTION.sha256, wider.sha256]
    )
    assert "overlaps 2 plans this centre already approved" in describe_overlaps(overlaps)


@pytest.fixture
def centre(tmp_path: Path) -> tuple[Path, Path]:
    """A node state approved for QUESTION, its roster file and two plan files."""
    roster = _roster(tmp_path)
    roster_file = tmp_path / "roster.toml"
    write_roster(roster, roster_file)
    for key, plan in {"question": QUESTION, "twin": _variant(window_months=2.5)}.items():
        (tmp_path / f"{key}.toml").write_text(plan.canonical_toml, encoding="utf-8")
    state = tmp_path / "centre-b"
    argv = ["approve", str(tmp_path / "question.toml"), "--roster", str(roster_file)]
    assert node_main([*argv, "--state", str(state), "--yes"]) == 0
    return state, roster_file


def test_approving_an_overlapping_plan_warns_and_needs_confirmation(
    centre: tuple[Path, Path], capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    state, roster_file = centre
    capsys.readouterr()
    twin = _variant(window_months=2.5)
    argv = ["approve", str(state.parent / "twin.toml"), "--roster", str(roster_file)]
    argv += ["--state", str(state)]
    store = ApprovalStore(state)

    # no terminal, no --yes: refused, with the warning and the reason
    assert node_main(argv) == 1
    captured = capsys.readouterr()
    assert "WARNING: this plan overlaps" in captured.out
    assert "overlaps an approved plan" in captured.err
    assert store.find(twin.sha256) is None

    # at a terminal: anything but "yes" is a refusal; the question names the overlap
    questions: list[str] = []
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda q: questions.append(q) or "y")
    assert node_main(argv) == 1
    assert "DESPITE the overlap" in questions[-1]
    assert store.find(twin.sha256) is None
    monkeypatch.setattr("builtins.input", lambda q: "yes")
    assert node_main(argv) == 0
    approval = store.find(twin.sha256)
    assert approval is not None
    assert approval.acknowledged_overlaps == (QUESTION.sha256,)
    assert "accepted and recorded" in capsys.readouterr().out


def test_yes_approves_an_overlapping_plan_but_still_shows_the_warning(
    centre: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    state, roster_file = centre
    capsys.readouterr()
    argv = ["approve", str(state.parent / "twin.toml"), "--roster", str(roster_file)]
    assert node_main([*argv, "--state", str(state), "--yes"]) == 0
    captured = capsys.readouterr()
    assert "WARNING: this plan overlaps" in captured.out
    assert "approving despite the overlap" in captured.err
    document = json.loads(
        (state / "approvals" / f"{_variant(window_months=2.5).sha256}.json").read_text()
    )
    assert document["acknowledged_overlaps"] == [QUESTION.sha256]


def test_the_twin_plan_really_differs_by_one_patient(tmp_path: Path) -> None:
    """Why the warning exists: in the test centres the two plans differ by the edge
    patient alone, so subtracting the results gives that patient's change."""
    centres = write_disclosure_centres(tmp_path)
    twin = _variant(window_months=2.5)
    layout_q, layout_t = SummaryLayout.for_plan(QUESTION), SummaryLayout.for_plan(twin)
    for name, folder in centres.folders.items():
        question = layout_q.counts(summarise_centre(folder, QUESTION), "change.mrss.12.sums")
        widened = layout_t.counts(summarise_centre(folder, twin), "change.mrss.12.sums")
        moved = widened["n"] - question["n"]
        assert moved == (1 if name == centres.edge_centre else 0)


def test_a_participant_set_of_two_is_refused_with_real_centre_data(tmp_path: Path) -> None:
    centres = write_disclosure_centres(tmp_path / "data")
    folders = list(centres.folders.values())
    roster, nodes = prepare_simulated_nodes(folders, QUESTION, tmp_path / "state")
    pair = tuple(sorted(nodes)[:2])
    patterns = [p for folder in folders for p in leak_patterns(folder)]
    for name in pair:
        request = AnalysisRequest(
            plan_sha256=QUESTION.sha256,
            plan_toml=QUESTION.canonical_toml,
            roster_sha256=roster.sha256,
            participants=pair,
            nonce=secrets.token_hex(32),
            attempt=1,
        )
        reply = handle_analysis_request(encode_request(request), nodes[name])
        assert reply["kind"] == REFUSAL_KIND
        assert "participant set of 2 is below the minimum of 3" in reply["reason"]
        assert "masked" not in reply
        last = list(nodes[name].audit_log.entries())[-1]
        assert last["event"] == "refusal" and last["participants"] == list(pair)
        assert "released_summary" not in last
    # the three together are answered; no reply or audit line holds a patient byte
    request = AnalysisRequest(
        plan_sha256=QUESTION.sha256,
        plan_toml=QUESTION.canonical_toml,
        roster_sha256=roster.sha256,
        participants=tuple(sorted(nodes)),
        nonce=secrets.token_hex(32),
        attempt=1,
    )
    replies = [handle_analysis_request(encode_request(request), n) for n in nodes.values()]
    assert all(r["kind"] != REFUSAL_KIND for r in replies), replies
    sent = [r["masked"] for r in replies]
    report = scan(sent, patterns)
    assert report.bytes_scanned == 8 * SummaryLayout.for_plan(QUESTION).length * 3
    assert report.hits == [], list(zip(report.hits, report.contexts, strict=True))
    # The audit log holds the decoded pooled-able counts and sums as JSON numbers, which
    # may equal a day number by chance; ids and dates written as dates must never be there.
    audit = [node.audit_log.path.read_bytes() for node in nodes.values()]
    as_text = [p for p in patterns if p.encoding.startswith(("utf", "text %", "CSV", "text ISO"))]
    audit_report = scan(audit, as_text)
    assert audit_report.hits == [], list(zip(audit_report.hits, audit_report.contexts, strict=True))


def test_the_policy_bounds_time_to_event_plans() -> None:
    from sscjak.node.guard.disclosure_policy import DisclosurePolicy, PolicyError
    from sscjak.shared.plan import Plan

    policy = DisclosurePolicy(
        allowed_time_to_event=("drug_retention",), allowed_by=("jaki_drug",),
        min_time_grid_days=30.4375,
    )
    assert policy.plan_problems(Plan(time_to_event=("drug_retention",), by="jaki_drug")) == []
    problems = policy.plan_problems(
        Plan(time_to_event=("death",), by="sex", time_grid_days=1.0)
    )
    assert len(problems) == 3
    text = " | ".join(problems)
    assert "time to event death is not among" in text
    assert "strata by sex are not allowed" in text
    assert "time_grid_days 1 is finer than this centre's minimum of 30.4375" in text
    # strata are bounded without time to event too
    assert policy.plan_problems(Plan(by="sex")) == [
        "strata by sex are not allowed by this centre (allowed: jaki_drug)"
    ]
    import pytest

    with pytest.raises(PolicyError, match="allowed_by"):
        DisclosurePolicy(allowed_by=("age",))
    with pytest.raises(PolicyError, match="min_time_grid_days"):
        DisclosurePolicy(min_time_grid_days=0.5)
