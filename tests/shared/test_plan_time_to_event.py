"""The plan's time-to-event keys: parsed, checked, and in the canonical text only when used."""

from __future__ import annotations

from fractions import Fraction

import pytest

from sscjak.shared.plan import PlanError, default_plan, parse_plan
from sscjak.shared.summary_layout import SummaryLayout

BASE = default_plan().canonical_toml


def test_a_plan_without_time_to_event_keeps_its_text_and_hash() -> None:
    assert "time_to_event" not in BASE
    assert parse_plan(BASE).sha256 == default_plan().sha256


def test_time_to_event_keys_are_read_and_written_back() -> None:
    plan = parse_plan(
        BASE + 'time_to_event = ["drug_retention", "infection"]\nby = "sex"\n'
        "time_grid_days = 1\nhorizon_months = 24\nat_risk_months = [12, 0]\n"
    )
    assert plan.time_to_event == ("drug_retention", "infection")
    assert plan.strata == ("F", "M") and plan.at_risk_months == (0, 12)
    assert plan.time_grid == Fraction(1) and plan.horizon_grid == 731  # ⌈24 × 30.4375⌉
    assert parse_plan(plan.canonical_toml) == plan
    month = parse_plan(BASE + 'time_to_event = ["drug_retention"]\n')
    assert month.time_grid == Fraction(487, 16) and month.horizon_grid == 120
    assert month.strata == ("all",)


def test_the_summary_grows_by_two_histograms_per_endpoint_and_stratum() -> None:
    plan = parse_plan(BASE + 'time_to_event = ["drug_retention", "death"]\nby = "sex"\n')
    by_sex = parse_plan(BASE + 'by = "sex"\n')
    layout = SummaryLayout.for_plan(plan)
    grown = layout.length - SummaryLayout.for_plan(by_sex).length
    assert grown == 2 * 2 * 2 * (plan.horizon_grid + 1)
    assert layout.segment("tte.death.M.censored").length == plan.horizon_grid + 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('time_to_event = ["retention"]', "time_to_event: expected a list of endpoints"),
        ('time_to_event = ["death", "death"]', "only once"),
        ('time_to_event = ["death"]\nby = "age"', "by: expected"),
        ('time_to_event = ["death"]\ntime_grid_days = 0.5', "time_grid_days"),
        ('time_to_event = ["death"]\nhorizon_months = 0', "horizon_months"),
        ('time_to_event = ["death"]\nat_risk_months = [1, 1]', "at_risk_months"),
        ('horizon_months = 12', "only used with time_to_event"),
    ],
)
def test_a_bad_time_to_event_key_is_named(extra: str, message: str) -> None:
    with pytest.raises(PlanError, match=message):
        parse_plan(BASE + extra + "\n", "plan.toml")
