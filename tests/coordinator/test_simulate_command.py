"""``sscjak-coordinator simulate`` as a user runs it: files in, results file and table out."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from sscjak.coordinator.cli import main
from sscjak.coordinator.results.schema import RESULTS_SCHEMA
from sscjak.coordinator.synthetic.cohort_model import generate_cohort, split_into_centres
from sscjak.coordinator.synthetic.writers import write_centre
from sscjak.shared.data_contract import EVENT_TYPES, JAKI_DRUGS
from sscjak.shared.plan import default_plan

REQUIRED_CHANGE_KEYS = {
    "outcome",
    "months",
    "suppressed",
    "n",
    "n_pos",
    "n_neg",
    "n_zero",
    "mean_baseline",
    "sd_baseline",
    "mean_change",
    "sd_change",
    "median_change",
    "q1_change",
    "q3_change",
    "smc",
    "smc_baseline",
    "smc_change",
    "smc_ci",
    "V",
    "p_value",
    "p_method",
}


def simulate_as_a_process(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The command as a user runs it: a new Python process."""
    return subprocess.run(
        [sys.executable, "-m", "sscjak.coordinator.cli", "simulate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def simulate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The command's ``main`` in this process (the same code path without the seconds of
    starting Python and importing the libraries); an exception it lets out fails the
    test, as a traceback would."""
    argv = ["simulate", *map(str, args)]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's usage errors
            code = stop.code if isinstance(stop.code, int) else 1
    return subprocess.CompletedProcess(argv, code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="module")
def centres(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("centres")
    folders = []
    cohort = generate_cohort(160, seed=11)
    for index, tables in enumerate(split_into_centres(cohort, 3, seed=12)):
        folder = root / f"centre_{index}"
        write_centre(tables, folder, fmt=["csv", "xlsx", "parquet"][index])
        folders.append(folder)
    return folders


def test_simulate_writes_the_contract_results_file(centres: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    completed = simulate_as_a_process(*centres, "--out", out)
    assert completed.returncode == 0, completed.stderr
    results = json.loads(out.read_text())
    assert results["schema"] == RESULTS_SCHEMA
    assert results["plan_sha256"] == default_plan().sha256
    assert results["nodes"] == 3
    assert results["cohort"]["patients"] == 160
    assert set(results["cohort"]["drugs"]) == set(JAKI_DRUGS)
    assert [row["event_type"] for row in results["safety"]] == list(EVENT_TYPES)
    assert len(results["changes"]) == 14
    assert {row["p_method"] for row in results["changes"] if not row["suppressed"]} <= {
        "exact",
        "normal",
        None,
    }
    for row in results["changes"]:
        if not row["suppressed"]:
            assert set(row) >= REQUIRED_CHANGE_KEYS
    assert "NaN" not in out.read_text()
    assert "Pooled analysis: 160 patients from 3 centres" in completed.stdout
    assert "mRSS" in completed.stdout


def test_simulate_with_a_plan_file(centres: list[Path], tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('outcomes = ["mrss", "tjc"]\nmonths = [12]\nmin_cell = 6\nsmc = "change"\n')
    out = tmp_path / "results.json"
    completed = simulate(*centres, "--plan", plan, "--out", out)
    assert completed.returncode == 0, completed.stderr
    results = json.loads(out.read_text())
    assert [(r["outcome"], r["months"]) for r in results["changes"]] == [("mrss", 12), ("tjc", 12)]
    row = results["changes"][0]
    assert row["smc"] == row["smc_change"]


def test_a_bad_plan_is_a_clear_error(centres: list[Path], tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('outcomes = ["height"]\nmin_cell = 0\n')
    out = tmp_path / "results.json"
    completed = simulate(*centres, "--plan", plan, "--out", out)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert "height" in completed.stderr and "min_cell" in completed.stderr
    assert not out.exists()


def test_invalid_centre_data_fails_without_a_results_file(
    centres: list[Path], tmp_path: Path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "patients.csv").write_text(
        "patient_id,jaki_drug,jaki_start,followup_end\np1,aspirin,2020-01-01,2021-01-01\n"
    )
    (broken / "visits.csv").write_text("patient_id,visit_date,mrss\np1,2020-01-01,99\n")
    out = tmp_path / "results.json"
    completed = simulate(centres[0], broken, "--out", out)
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert "jaki_drug" in completed.stderr and "mrss" in completed.stderr
    assert not out.exists()


def test_a_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    completed = simulate(tmp_path / "nowhere", "--out", tmp_path / "r.json")
    assert completed.returncode == 1
    assert "not a folder" in completed.stderr
    assert "Traceback" not in completed.stderr


def test_one_or_two_folders_are_summed_directly_with_a_note(
    centres: list[Path], tmp_path: Path
) -> None:
    out = tmp_path / "results.json"
    completed = simulate(centres[0], "--out", out)
    assert completed.returncode == 0, completed.stderr
    assert "secure aggregation needs at least 3 nodes" in completed.stderr
    results = json.loads(out.read_text())
    assert results["nodes"] == 1
    assert results["cohort"]["centres"] == 1


def test_a_plan_below_the_centres_policy_is_refused_by_every_node(
    centres: list[Path], tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('outcomes = ["mrss"]\nmonths = [12]\nmin_cell = 3\n')
    out = tmp_path / "results.json"
    completed = simulate(*centres, "--plan", plan, "--out", out)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    assert "min_cell 3 is below this centre's minimum of 5" in completed.stderr
    assert not out.exists()


def test_simulate_analyses_a_declared_measure_and_the_report_names_it(tmp_path: Path) -> None:
    """A plan declaring HAQ-DI runs on centres whose visits carry that column: the results
    hold its cells with the declared label, unit and benefit, and the report shows them."""
    import numpy as np
    import pandas as pd

    from sscjak.coordinator.synthetic.demo_bundle import bundled_demo_folder

    folders = []
    sources = sorted(p for p in bundled_demo_folder().iterdir() if p.is_dir())
    for index, source in enumerate(sources):
        visits = pd.read_csv(source / "visits.csv", dtype=str, keep_default_na=False)
        rng = np.random.default_rng(index)
        haq = rng.integers(0, 25, len(visits)) * 0.125
        visits["haq_di"] = [f"{value:g}" for value in haq]
        folder = tmp_path / source.name
        folder.mkdir()
        for name in ("patients.csv", "events.csv"):
            if (source / name).exists():
                (folder / name).write_bytes((source / name).read_bytes())
        visits.to_csv(folder / "visits.csv", index=False)
        folders.append(folder)
    plan = tmp_path / "plan.toml"
    plan.write_text(
        'outcomes = ["haq_di", "mrss"]\nmonths = [12]\n'
        '[[measures]]\nname = "haq_di"\nlabel = "HAQ-DI"\nunit = "points"\n'
        'low = 0\nhigh = 3\nresolution = 0.125\nbenefit = "decrease"\n',
        encoding="utf-8",
    )
    out = tmp_path / "results.json"
    done = simulate(*folders, "--plan", plan, "--out", out, "--report", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    results = json.loads(out.read_text(encoding="utf-8"))
    [haq] = [row for row in results["changes"] if row["outcome"] == "haq_di"]
    assert haq["label"] == "HAQ-DI" and haq["unit"] == "points" and haq["benefit"] == "decrease"
    assert haq["suppressed"] is False and haq["n"] > 20
    assert "HAQ-DI" in done.stdout
    report = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert "HAQ-DI (points)" in report
