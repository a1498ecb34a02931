"""``sscjak-node preview``: the decoded summary that would be sent, and its size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sscjak.coordinator.synthetic.demo_bundle import bundled_demo_folder
from sscjak.node.cli import main as node_main
from sscjak.node.guard.audit_log import summary_digest
from sscjak.node.summarise.summary_vector import summarise_centre
from sscjak.shared.plan import default_plan
from sscjak.shared.summary_layout import SummaryLayout


def _centre() -> Path:
    return sorted(p for p in bundled_demo_folder().iterdir() if p.is_dir())[0]


def test_preview_prints_the_decoded_summary_its_digest_and_size(
    capsys: pytest.CaptureFixture[str],
) -> None:
    plan = default_plan()
    layout = SummaryLayout.for_plan(plan)
    summary = summarise_centre(_centre(), plan)
    assert node_main(["preview", "--data", str(_centre())]) == 0
    out = capsys.readouterr().out
    assert f"{8 * layout.length} bytes" in out
    assert summary_digest(summary) in out
    # Every number is printed next to its unit: sums of a change cell in grid units, and
    # the same sum in the measure's own unit.
    sums = layout.counts(summary, "change.fvc_pct.12.sums")
    baseline = sums["sum_baseline"]
    assert (
        f"sum_baseline = {baseline} grid units of 0.1 % predicted (= {baseline / 10:g} % predicted)"
        in out
    )
    assert f"n = {sums['n']} patients" in out
    squares = layout.counts(summary, "change.gc_dose_mg.12.sums")["sum_change_sq"]
    assert (
        f"sum_change_sq = {squares} squared grid units of 0.25 mg/day prednisone-equivalent "
        f"(= {squares / 16:g} (mg/day prednisone-equivalent)²)" in out
    )
    cohort = layout.counts(summary, "cohort")
    assert f"followup_days_total = {cohort['followup_days_total']} days" in out
    assert "age_at_start_histogram (patients per value in years): " in out
    # --json prints exactly what the audit log records, units included.
    assert node_main(["preview", "--data", str(_centre()), "--json"]) == 0
    decoded = json.loads(capsys.readouterr().out)
    assert decoded == layout.describe(summary)
    assert decoded["units"]["change.fvc_pct.12.sums"].startswith(
        "n in patients; sum_baseline in grid units of 0.1 % predicted"
    )


def test_preview_json_only_and_bad_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan_file = tmp_path / "plan.toml"
    plan_file.write_text('outcomes = ["mrss"]\nmonths = [12]\n')
    assert node_main(["preview", "--data", str(_centre()), "--plan", str(plan_file), "--json"]) == 0
    decoded = json.loads(capsys.readouterr().out)
    assert "change.mrss.12.histogram" in decoded and "change.tjc.12.histogram" not in decoded
    (tmp_path / "empty").mkdir()
    assert node_main(["preview", "--data", str(tmp_path / "empty")]) == 1
    assert "patients" in capsys.readouterr().err


def test_preview_shows_the_heterogeneity_terms_of_a_plan_that_asks_for_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The terms of the centre's own estimate are in the preview with their unit, as they
    would be sent; the τ² exchange's vector is not (it needs the coordinator's τ²)."""
    from sscjak.shared.plan import load_plan

    plan_file = tmp_path / "plan.toml"
    plan_file.write_text(
        'outcomes = ["mrss"]\nmonths = [12]\nheterogeneity = true\n', encoding="utf-8"
    )
    plan = load_plan(plan_file)
    layout = SummaryLayout.for_plan(plan)
    terms = layout.counts(summarise_centre(_centre(), plan), "het.mrss.12")
    assert node_main(["preview", "--data", str(_centre()), "--plan", str(plan_file)]) == 0
    out = capsys.readouterr().out
    assert "het.mrss.12" in out
    assert f"sum_w = {terms['sum_w']} units of 2^-32" in out
    assert terms["centres"] + terms["centres_left_out"] == 1
