"""A plan's declared visit measures: parsed, read and validated like the built-in ones,
shown at approval, bounded by the centre's policy, and kept apart in twin detection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sscjak.node.cli import main
from sscjak.node.data.centre_reader import CentreDataError, read_centre
from sscjak.node.guard.approvals import are_twins, describe_release, shared_segments
from sscjak.node.guard.disclosure_policy import DisclosurePolicy, load_policy
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.shared.plan import PlanError, parse_plan
from sscjak.shared.roster import Roster

HAQ = """
[[measures]]
name = "haq_di"
label = "HAQ-DI"
unit = "points"
low = 0
high = 3
resolution = 0.125
benefit = "decrease"
"""
WALK = """
[[measures]]
name = "six_minute_walk_m"
label = "6-minute walk distance"
unit = "m"
low = 0
high = 1000
resolution = 1
benefit = "increase"
"""
PLAN = 'outcomes = ["mrss", "haq_di", "six_minute_walk_m"]\nmonths = [12]\n' + HAQ + WALK

PATIENTS = (
    "patient_id,jaki_drug,jaki_start,jaki_stop,followup_end,sex,birth_year,ssc_subset\n"
    "A01,tofacitinib,2020-01-10,,2021-06-01,F,1960,dcSSc\n"
    "A02,baricitinib,2019-05-01,2020-05-01,,M,,lcSSc\n"
)
VISITS = (
    "patient_id,visit_date,mrss,haq_di,six_minute_walk_m\n"
    "A01,2020-01-05,12,1.25,410\n"
    "A01,2021-01-12,10,0.8,455\n"
    "A02,2019-04-20,20,2.5,300\n"
    "A02,2020-04-20,18,2.125,320\n"
)


def folder_with(tmp_path: Path, visits: str = VISITS) -> Path:
    folder = tmp_path / "centre"
    folder.mkdir(exist_ok=True)
    (folder / "patients.csv").write_text(PATIENTS, encoding="utf-8")
    (folder / "visits.csv").write_text(visits, encoding="utf-8")
    return folder


def test_a_declared_measure_is_read_on_its_grid_and_counted_off_grid(tmp_path: Path) -> None:
    plan = parse_plan(PLAN)
    centre = read_centre(folder_with(tmp_path), plan.measures)
    assert list(centre.visits["haq_di"]) == [1.25, 0.8, 2.5, 2.125]
    assert centre.off_grid["haq_di"] == 1  # 0.8 is not a multiple of 0.125
    assert centre.off_grid["six_minute_walk_m"] == 0
    derived = derive_cohort(centre.patients, centre.visits, centre.events, plan)
    haq = derived.cells[("haq_di", 12)]
    # A01: 0.8 → 6.4 units → 6; baseline 1.25 = 10 units; change −4 units (−0.5 points).
    # A02: 2.125 − 2.5 = −3 units.
    assert sorted(haq.change_units.tolist()) == [-4, -3]
    walk = derived.cells[("six_minute_walk_m", 12)]
    assert sorted(walk.change_units.tolist()) == [20, 45]


def test_without_the_plan_a_declared_column_is_ignored(tmp_path: Path) -> None:
    centre = read_centre(folder_with(tmp_path))
    assert "haq_di" not in centre.visits.columns
    assert any("haq_di" in str(warning) for warning in centre.warnings)


@pytest.mark.parametrize(
    ("row", "column", "expected"),
    [
        ("A01,2020-01-05,12,3.5,410", "haq_di", "from 0 to 3"),
        ("A01,2020-01-05,12,1,410.5", "six_minute_walk_m", "whole number"),
        ("A01,2020-01-05,12,1,-3", "six_minute_walk_m", "from 0 to 1000"),
        ("A01,2020-01-05,12,lots,410", "haq_di", "number"),
    ],
)
def test_a_bad_declared_value_is_a_located_error(
    tmp_path: Path, row: str, column: str, expected: str
) -> None:
    visits = VISITS.replace("A01,2020-01-05,12,1.25,410", row)
    with pytest.raises(CentreDataError) as raised:
        read_centre(folder_with(tmp_path, visits), parse_plan(PLAN).measures)
    [problem] = raised.value.problems
    text = str(problem)
    assert "visits.csv" in text and "row 2" in text and column in text and expected in text


def test_two_visits_on_a_date_must_agree_on_a_declared_measure(tmp_path: Path) -> None:
    visits = VISITS + "A02,2020-04-20,18,2.25,320\n"
    with pytest.raises(CentreDataError, match="disagree"):
        read_centre(folder_with(tmp_path, visits), parse_plan(PLAN).measures)


def test_validate_with_the_plan_checks_and_counts_the_declared_measures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(PLAN, encoding="utf-8")
    folder = folder_with(tmp_path)
    assert main(["validate", str(folder), "--plan", str(plan_file)]) == 0
    out = capsys.readouterr().out
    assert "haq_di" in out and "six_minute_walk_m" in out
    assert "1 haq_di value is off its 0.125 grid" in out
    bad = folder_with(tmp_path, VISITS.replace("2.125", "4"))
    assert main(["validate", str(bad), "--plan", str(plan_file)]) == 1
    err = capsys.readouterr().err
    assert "haq_di" in err and "row 5" in err
    # Without the plan the same folder is valid: the column is not read at all.
    assert main(["validate", str(bad)]) == 0


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (HAQ.replace('"haq_di"', '"mrss"'), "already a column of the data contract"),
        (HAQ.replace('"haq_di"', '"date_of_birth"'), "looks like a date of birth"),
        (HAQ.replace("0.125", "0.3"), "resolution: expected 1/k"),
        (HAQ.replace("high = 3", "high = 3.1"), "not on the grid"),
        (HAQ.replace("low = 0", "low = 5"), "must be below high"),
        (HAQ.replace("high = 3", "high = 30000"), "steps"),
        (HAQ.replace('benefit = "decrease"', 'benefit = "down"'), "benefit"),
        (HAQ.replace('unit = "points"\n', ""), "missing key(s) unit"),
        (HAQ + 'extra = 1\n', "unknown key(s) extra"),
    ],
)
def test_a_bad_declaration_is_refused_in_plain_words(declaration: str, message: str) -> None:
    text = 'outcomes = ["haq_di", "mrss"]\n' + declaration
    with pytest.raises(PlanError, match="measures\\[1\\]") as raised:
        parse_plan(text)
    assert message in str(raised.value)


def test_a_declared_measure_must_be_analysed_and_an_outcome_must_be_known() -> None:
    with pytest.raises(PlanError, match="declared but not in outcomes"):
        parse_plan('outcomes = ["mrss"]\n' + HAQ)
    with pytest.raises(PlanError, match="unknown measure"):
        parse_plan('outcomes = ["haq_di"]\n')


def test_declarations_change_the_hash_only_when_present() -> None:
    plain = parse_plan('outcomes = ["mrss"]\nmonths = [12]\n')
    declared = parse_plan('outcomes = ["mrss", "haq_di"]\nmonths = [12]\n' + HAQ)
    assert "[[measures]]" not in plain.canonical_toml
    assert parse_plan(declared.canonical_toml) == declared
    finer = parse_plan(
        'outcomes = ["mrss", "haq_di"]\nmonths = [12]\n' + HAQ.replace("0.125", "0.25")
    )
    assert finer.sha256 != declared.sha256


def test_the_approval_text_shows_each_declared_column(tmp_path: Path) -> None:
    plan = parse_plan(PLAN)
    text = describe_release(plan, Roster(()))
    assert "DECLARES" in text
    assert "haq_di: HAQ-DI in points, 0 to 3 by 0.125" in text
    assert "six_minute_walk_m: 6-minute walk distance in m, 0 to 1000 by 1" in text
    assert "change.haq_di.12.histogram" in text


def test_the_same_name_declared_on_another_grid_shares_no_change_segment() -> None:
    plan = parse_plan(PLAN)
    other = parse_plan(PLAN.replace("resolution = 0.125", "resolution = 0.25"))
    shared = shared_segments(plan, other)
    assert not any(name.startswith("change.haq_di.") for name in shared)
    assert any(name.startswith("change.mrss.") for name in shared)
    assert not are_twins(plan, other)
    assert are_twins(plan, parse_plan(PLAN.replace('"HAQ-DI"', '"HAQ disability index"')))


def test_the_centre_policy_can_refuse_declared_measures(tmp_path: Path) -> None:
    plan = parse_plan(PLAN)
    assert DisclosurePolicy().plan_problems(plan) == []
    strict = DisclosurePolicy(allow_declared_measures=False)
    [problem] = strict.plan_problems(plan)
    assert "haq_di" in problem and "allow_declared_measures" in problem
    (tmp_path / "policy.toml").write_text("allow_declared_measures = 1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="allow_declared_measures: expected true or false"):
        load_policy(tmp_path)


def test_built_in_outcomes_stay_bounded_by_allowed_outcomes() -> None:
    plan = parse_plan(PLAN)
    policy = DisclosurePolicy(allowed_outcomes=("fvc_pct",))
    [problem] = policy.plan_problems(plan)
    assert "mrss" in problem and "haq_di" not in problem


def test_a_summary_vector_carries_the_declared_cells(tmp_path: Path) -> None:
    from sscjak.node.summarise.summary_vector import summarise_centre
    from sscjak.shared.summary_layout import SummaryLayout

    plan = parse_plan(PLAN)
    vector = summarise_centre(folder_with(tmp_path), plan)
    layout = SummaryLayout.for_plan(plan)
    sums = layout.view(vector, "change.haq_di.12.sums")
    assert int(sums[0]) == 2 and int(sums[3]) == -7  # n, Σ change in 1/8 points
    histogram = layout.segment("change.haq_di.12.histogram")
    assert histogram.length == 2 * 24 + 1  # changes −3 … 3 points by 0.125
    assert np.asarray(layout.view(vector, "change.haq_di.12.histogram")).sum() == 2
