"""A centre's own disclosure policy: safe defaults, hard floors no file can go below,
strict reading, every way a plan falls below it, and the ``sscjak-node policy`` command.

The attack it closes: one approved plan that exposes single patients (a window of a
day and a half, a minimum cell of 1) used to be accepted by ``sscjak-node approve``."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sscjak.node.cli import main as node_main
from sscjak.node.guard.approvals import ApprovalStore
from sscjak.node.guard.disclosure_policy import (
    POLICY_FILE,
    DisclosurePolicy,
    PolicyError,
    default_policy_toml,
    load_policy,
    policy_refusal,
    write_default_policy,
)
from sscjak.node.guard.node_keys import create_node_identity, roster_entry
from sscjak.shared.data_contract import MEASURES
from sscjak.shared.errors import SscjakError
from sscjak.shared.plan import Plan
from sscjak.shared.roster import Roster, write_roster

SINGLE_PATIENTS = Plan(
    title="one patient per cell", outcomes=("mrss",), months=(12,), window_months=0.05, min_cell=1
)


def _write_policy(state: Path, text: str) -> Path:
    state.mkdir(parents=True, exist_ok=True)
    path = state / POLICY_FILE
    path.write_text(text, encoding="utf-8")
    return path


def test_without_a_policy_file_the_safe_defaults_apply(tmp_path: Path) -> None:
    policy = load_policy(tmp_path)
    assert policy == DisclosurePolicy()
    assert policy.min_cell == 5
    assert policy.min_window_months == 1.0
    assert policy.min_participants == 3
    assert policy.allowed_outcomes == tuple(MEASURES)
    assert policy.max_months == 60
    assert policy.plan_problems(Plan()) == []  # the reference study is within the defaults


def test_stricter_values_are_read(tmp_path: Path) -> None:
    _write_policy(
        tmp_path,
        "min_cell = 10\nmin_window_months = 1.5\nmin_participants = 4\n"
        'allowed_outcomes = ["mrss", "fvc_pct"]\nmax_months = 24\n',
    )
    policy = load_policy(tmp_path)
    assert policy == DisclosurePolicy(
        min_cell=10,
        min_window_months=1.5,
        min_participants=4,
        allowed_outcomes=("mrss", "fvc_pct"),
        max_months=24,
    )


@pytest.mark.parametrize(
    ("line", "key", "floor"),
    [
        ("min_cell = 4", "min_cell", "floor of 5"),
        ("min_cell = 1", "min_cell", "floor of 5"),
        ("min_window_months = 0.5", "min_window_months", "floor of 1 month"),
        ("min_participants = 2", "min_participants", "floor of 3"),
    ],
)
def test_values_below_the_floors_are_refused_naming_file_key_and_floor(
    tmp_path: Path, line: str, key: str, floor: str
) -> None:
    path = _write_policy(tmp_path, line + "\n")
    with pytest.raises(PolicyError) as raised:
        load_policy(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{path}: {key}: ")
    assert floor in message
    assert isinstance(raised.value, SscjakError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('min_cell = "10"', "min_cell: expected a whole number"),
        ("min_cell = 10.0", "min_cell: expected a whole number"),
        ("min_participants = true", "min_participants: expected a whole number"),
        ("min_window_months = true", "min_window_months: expected a number"),
        ('allowed_outcomes = "mrss"', "allowed_outcomes: expected a non-empty list"),
        ("allowed_outcomes = []", "allowed_outcomes: expected a non-empty list"),
        ('allowed_outcomes = ["mrss", "bmi"]', "allowed_outcomes: unknown measure(s) ['bmi']"),
        ("max_months = 241", "max_months: 241 is outside 1 to 240"),
        ("min_cells = 10", "unknown key(s) min_cells; allowed: min_cell,"),
        ("min_cell = ", "not valid TOML"),
    ],
)
def test_unknown_keys_wrong_types_and_bad_toml_are_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write_policy(tmp_path, text + "\n")
    with pytest.raises(PolicyError) as raised:
        load_policy(tmp_path)
    assert str(raised.value).startswith(f"{path}: ")
    assert expected in str(raised.value)


def test_every_problem_of_a_policy_file_is_listed_at_once(tmp_path: Path) -> None:
    _write_policy(tmp_path, "min_cell = 2\nmin_participants = 1\ncolour = 'red'\n")
    with pytest.raises(PolicyError) as raised:
        load_policy(tmp_path)
    message = str(raised.value)
    assert "colour" in message and "min_cell: 2" in message and "min_participants: 1" in message


@pytest.mark.parametrize(
    "settings",
    [
        {"min_cell": 4},
        {"min_window_months": 0.9},
        {"min_participants": 2},
        {"allowed_outcomes": ("bmi",)},
        {"max_months": 0},
    ],
)
def test_the_constructor_itself_refuses_settings_below_the_floors(settings: dict) -> None:
    with pytest.raises(PolicyError, match=next(iter(settings))):
        DisclosurePolicy(**settings)


def test_plan_problems_name_every_way_a_plan_falls_below_the_policy() -> None:
    assert DisclosurePolicy().plan_problems(SINGLE_PATIENTS) == [
        "min_cell 1 is below this centre's minimum of 5",
        "window_months 0.05 is below this centre's minimum of 1 month",
    ]
    strict = DisclosurePolicy(min_window_months=1.5, allowed_outcomes=("mrss",), max_months=24)
    problems = strict.plan_problems(
        Plan(outcomes=("mrss", "tjc", "sjc"), months=(12, 36, 48), window_months=1)
    )
    assert problems == [
        "window_months 1 is below this centre's minimum of 1.5 months",
        "outcomes tjc, sjc are not among the outcomes this centre allows (mrss)",
        "time points 36, 48 months are beyond this centre's maximum of 24 months",
    ]
    assert strict.plan_problems(Plan(outcomes=("mrss",), months=(24,), window_months=2)) == []


def test_policy_refusal_for_the_request_handler() -> None:
    policy = DisclosurePolicy()
    assert policy_refusal(policy, Plan(), 3) is None
    reason = policy_refusal(policy, SINGLE_PATIENTS, 2)
    assert reason is not None and "\n" not in reason
    assert reason.startswith("this centre's disclosure policy refuses this request: ")
    assert "min_cell 1 is below this centre's minimum of 5" in reason
    assert "window_months 0.05" in reason
    assert "participant set of 2 is below the minimum of 3" in reason
    assert policy_refusal(DisclosurePolicy(min_participants=4), Plan(), 3) is not None


def test_the_written_default_policy_is_the_defaults_private_and_never_overwritten(
    tmp_path: Path,
) -> None:
    path = write_default_policy(tmp_path)
    assert path == tmp_path / POLICY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text(encoding="utf-8") == default_policy_toml()
    assert "# " in path.read_text(encoding="utf-8")  # commented for the steward
    assert load_policy(tmp_path) == DisclosurePolicy()
    path.write_text(path.read_text().replace("min_cell = 5", "min_cell = 11"))
    with pytest.raises(PolicyError, match="already exists"):
        write_default_policy(tmp_path)
    assert load_policy(tmp_path).min_cell == 11


def _centre(tmp_path: Path) -> tuple[Path, Path]:
    names = ("centre-a", "centre-b", "centre-c")
    for name in names:
        create_node_identity(tmp_path / name, name)
    roster_file = tmp_path / "roster.toml"
    write_roster(Roster(tuple(roster_entry(tmp_path / n) for n in names)), roster_file)
    return tmp_path / "centre-b", roster_file


def test_attack_one_approved_plan_exposing_single_patients_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before the policy, ``approve`` accepted (exit 0, recorded) a plan whose cells are
    a few days wide and shown from one patient on. Now: refused, every problem listed,
    nothing recorded — even with --yes."""
    state, roster_file = _centre(tmp_path)
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(SINGLE_PATIENTS.canonical_toml, encoding="utf-8")
    argv = ["approve", str(plan_file), "--roster", str(roster_file), "--state", str(state)]
    assert node_main([*argv, "--yes"]) == 1
    captured = capsys.readouterr()
    assert "min_cell 1 is below this centre's minimum of 5" in captured.err
    assert "window_months 0.05 is below this centre's minimum of 1 month" in captured.err
    assert "Traceback" not in captured.err
    assert "Approved" not in captured.out
    assert ApprovalStore(state).find(SINGLE_PATIENTS.sha256) is None
    assert ApprovalStore(state).approved_plans() == []


def test_a_stricter_policy_file_refuses_the_reference_plan(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, roster_file = _centre(tmp_path)
    policy_file = _write_policy(state, "min_cell = 10\nmax_months = 12\n")
    argv = ["approve", "default", "--roster", str(roster_file), "--state", str(state), "--yes"]
    assert node_main(argv) == 1
    err = capsys.readouterr().err
    assert str(policy_file) in err
    assert "min_cell 5 is below this centre's minimum of 10" in err
    assert "time point 24 months is beyond this centre's maximum of 12 months" in err
    assert ApprovalStore(state).approved_plans() == []


def test_an_invalid_policy_file_stops_approval_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, roster_file = _centre(tmp_path)
    policy_file = _write_policy(state, "min_cell = 3\n")
    argv = ["approve", "default", "--roster", str(roster_file), "--state", str(state), "--yes"]
    assert node_main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"sscjak-node: error: {policy_file}: min_cell: 3 is below the floor")
    assert ApprovalStore(state).approved_plans() == []


def test_policy_command_shows_writes_and_refuses_to_overwrite(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state, _ = _centre(tmp_path)
    assert node_main(["policy", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert "the safe defaults apply" in out
    assert "fewer than 5 patients" in out and "at most 60 months" in out
    assert "at least 3 centres" in out

    assert node_main(["policy", "--state", str(state), "--write-default"]) == 0
    path = state / POLICY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert str(path) in capsys.readouterr().out

    path.write_text(path.read_text().replace("max_months = 60", "max_months = 36"))
    assert node_main(["policy", "--state", str(state)]) == 0
    out = capsys.readouterr().out
    assert f"read from {path}" in out and "at most 36 months" in out

    assert node_main(["policy", "--state", str(state), "--write-default"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert "max_months = 36" in path.read_text()

    path.write_text("min_participants = 2\n")
    assert node_main(["policy", "--state", str(state)]) == 1
    err = capsys.readouterr().err
    assert str(path) in err and "min_participants: 2 is below the floor of 3" in err


def test_policy_command_refuses_a_missing_state_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert node_main(["policy", "--state", str(tmp_path / "nowhere"), "--write-default"]) == 1
    assert "not a node state directory" in capsys.readouterr().err
    assert not (tmp_path / "nowhere").exists()


def test_a_set_leaving_out_too_many_roster_centres_is_refused() -> None:
    plan = Plan()
    policy = DisclosurePolicy()
    assert policy.max_missing_centres == 1
    assert policy_refusal(policy, plan, 4, roster_size=5) is None
    reason = policy_refusal(policy, plan, 3, roster_size=5)
    assert reason is not None and "leaves out 2 of the roster's 5 centres" in reason
    assert "max_missing_centres" in reason and "colluding" in reason
    whole_roster_only = DisclosurePolicy(max_missing_centres=0)
    assert policy_refusal(whole_roster_only, plan, 4, roster_size=5) is not None
    assert policy_refusal(whole_roster_only, plan, 5, roster_size=5) is None


@pytest.mark.parametrize(
    "text", ["min_window_months = nan\n", "min_window_months = inf\n", "max_missing_centres = -1\n"]
)
def test_non_finite_or_negative_settings_are_refused(tmp_path: Path, text: str) -> None:
    (tmp_path / "policy.toml").write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match="expected"):
        load_policy(tmp_path)
