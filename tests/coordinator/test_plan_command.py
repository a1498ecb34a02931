"""``sscjak-coordinator plan new|show``: the default plan to a file, a plan's text and hash."""

from __future__ import annotations

from sscjak.coordinator.cli import main
from sscjak.shared.plan import default_plan, load_plan
from sscjak.shared.summary_layout import SummaryLayout


def test_new_writes_the_default_plan_with_comments(tmp_path, capsys):
    out = tmp_path / "plan.toml"
    assert main(["plan", "new", "--out", str(out)]) == 0
    plan = load_plan(out)
    assert plan == default_plan()
    assert plan.sha256 == default_plan().sha256
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# ") and text.endswith(default_plan().canonical_toml)
    assert all(len(line) <= 100 for line in text.splitlines())
    printed = capsys.readouterr().out
    assert default_plan().sha256 in printed and f"plan show {out}" in printed


def test_new_refuses_to_overwrite_without_force(tmp_path, capsys):
    out = tmp_path / "plan.toml"
    out.write_text("months = [6]\n", encoding="utf-8")
    assert main(["plan", "new", "--out", str(out)]) == 1
    assert "--force" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "months = [6]\n"
    assert main(["plan", "new", "--out", str(out), "--force"]) == 0
    assert load_plan(out) == default_plan()


def test_show_prints_canonical_text_hash_cells_and_vector_size(tmp_path, capsys):
    path = tmp_path / "plan.toml"
    path.write_text(
        "# a comment that is not part of the plan\n"
        'outcomes = ["mrss", "fvc_pct"]\nmonths = [6, 12, 24]\nmin_cell = 10\n',
        encoding="utf-8",
    )
    plan = load_plan(path)
    assert main(["plan", "show", str(path)]) == 0
    printed = capsys.readouterr().out
    assert f"plan_sha256: {plan.sha256}" in printed
    for line in plan.canonical_toml.splitlines():
        assert f"    {line}" in printed
    assert "a comment" not in printed
    assert "Change cells: 6 (2 outcomes × 3 time points, window ±2 months)" in printed
    assert "mRSS (mrss): 6, 12, 24 months" in printed
    assert "Cells with pooled n < 10 are suppressed" in printed
    length = SummaryLayout.for_plan(plan).length
    assert f"Summary vector: {length:,} integers, {8 * length:,} bytes per node" in printed
    assert f"sscjak-node approve {path} --roster roster.toml --state STATE" in printed


def test_show_default_is_the_reference_study(capsys):
    assert main(["plan", "show", "default"]) == 0
    printed = capsys.readouterr().out
    assert f"plan_sha256: {default_plan().sha256}" in printed
    assert "Change cells: 14 (7 outcomes × 2 time points" in printed


def test_show_lists_every_problem_of_a_bad_plan(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('months = [1000]\nsmc = "median"\n', encoding="utf-8")
    assert main(["plan", "show", str(path)]) == 1
    error = capsys.readouterr().err
    assert error.count("\n") >= 1 and "months" in error and "smc" in error
    assert "Traceback" not in error


def test_show_of_a_missing_file_is_one_line(tmp_path, capsys):
    assert main(["plan", "show", str(tmp_path / "none.toml")]) == 1
    assert "plan file not found" in capsys.readouterr().err


def test_show_describes_a_time_to_event_plan(tmp_path, capsys) -> None:
    from sscjak.coordinator.synthetic.demo_bundle import demo_plan

    path = tmp_path / "plan.toml"
    path.write_text(demo_plan().canonical_toml, encoding="utf-8")
    assert main(["plan", "show", str(path)]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "Time to event: drug_retention, by jaki_drug (tofacitinib," in printed
    assert "horizon 120 months, numbers at risk at 0, 12, 24, 36, 48, 60 months" in printed
