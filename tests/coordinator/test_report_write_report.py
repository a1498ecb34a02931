"""write_report: the files of a report, self-contained HTML, and no half-written report."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from sscjak.coordinator.cli import main as coordinator_main
from sscjak.coordinator.report import write_report as write_report_module
from sscjak.coordinator.report.write_report import ReportError, ReportFiles, write_report
from sscjak.coordinator.synthetic.demo_bundle import bundled_demo_folder
from sscjak.shared.cli_support import UserError, run_cli
from sscjak.shared.errors import SscjakError

DEMO_CENTRES = sorted(bundled_demo_folder().glob("centre_*"))

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    """Results of ``sscjak-coordinator simulate`` over the demo centres, and their file."""
    folder = tmp_path_factory.mktemp("simulate")
    args = ["simulate", *map(str, DEMO_CENTRES), "--out", str(folder / "results.json")]
    assert coordinator_main(args) == 0
    path = folder / "results.json"
    return json.loads(path.read_text(encoding="utf-8")), path


@pytest.fixture(scope="module")
def written(demo, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], ReportFiles]:
    """The demo results and the report written from them (shared by read-only tests)."""
    results, _ = demo
    return results, write_report(results, tmp_path_factory.mktemp("written") / "report")


@pytest.fixture(scope="module")
def small(demo) -> dict[str, Any]:
    """The demo results cut to their first measure: a report of three figures, for the
    tests of how the report's files are put in place, which do not depend on how many
    measures it shows."""
    results = copy.deepcopy(demo[0])
    kept = results["changes"][0]["outcome"]
    results["changes"] = [c for c in results["changes"] if c["outcome"] == kept]
    distributions = results["distributions"]
    distributions["changes"] = [d for d in distributions["changes"] if d["outcome"] == kept]
    return results


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path → bytes)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_write_report_writes_html_markdown_tables_and_figures(written) -> None:
    results, files = written
    assert isinstance(files, ReportFiles)
    assert files.html.name == "report.html"
    assert files.markdown == files.html.parent / "report.md"
    assert {p.name for p in files.tables} == {
        "table1_cohort.csv",
        "table2_change_from_baseline.csv",
        "table3_calcinosis_digital_ulcers.csv",
        "table4_glucocorticoid_dose.csv",
        "table5_safety.csv",
    }
    outcomes = {c["outcome"] for c in results["changes"]}
    assert {p.name for p in files.figures} == {
        "forest_smc.png",
        "followup_months.png",
        *(f"changes_{o}.png" for o in outcomes),
    }
    for path in files.figures:
        assert path.read_bytes().startswith(PNG_SIGNATURE)
    markdown = files.markdown.read_text(encoding="utf-8")
    for path in files.figures:
        assert f"(figures/{path.name})" in markdown


def test_html_embeds_every_figure_and_references_nothing_outside(written) -> None:
    _, files = written
    html = files.html.read_text(encoding="utf-8")
    sources = re.findall(r'<img src="([^"]+)"', html)
    embedded = [base64.b64decode(s.split(",", 1)[1]) for s in sources]
    assert sorted(embedded) == sorted(p.read_bytes() for p in files.figures)
    # No reference to anything outside the file: no URL of any scheme but data:.
    assert not re.search(r"https?://", html)
    assert not re.search(r"""(?:src|href|url)\s*[=(]\s*["']?(?!data:)[a-z/.]""", html, re.I)
    assert not re.search(r"@import|<link|<script", html, re.I)
    # And the page forbids fetching anything even if it had such a reference.
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_html_prints_readably(written) -> None:
    html = written[1].html.read_text(encoding="utf-8")
    print_css = html[html.index("@media print") :]
    assert "break-inside: avoid" in print_css  # rows and figures not split across pages
    assert "thead { display: table-header-group; }" in print_css  # headers repeat
    assert "@page { size: A4" in html


def test_other_files_of_the_folder_are_kept_and_stale_report_files_replaced(
    demo, small, tmp_path: Path
) -> None:
    _, results_path = demo
    results = small
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / "results.json").write_bytes(results_path.read_bytes())
    (folder / "figures").mkdir()
    (folder / "figures" / "stale_figure.png").write_bytes(b"old")
    write_report(results, folder)
    assert (folder / "results.json").read_bytes() == results_path.read_bytes()
    assert not (folder / "figures" / "stale_figure.png").exists()
    assert (folder / "report.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["study"], "staging left behind"


def test_a_refused_report_leaves_the_previous_one_untouched(small, tmp_path: Path) -> None:
    results = small
    folder = tmp_path / "report"
    write_report(results, folder)
    before = snapshot(folder)
    unsafe = copy.deepcopy(results)
    unsafe["distributions"]["changes"][0]["bins"] = [[0.0, 0.0, 2]]
    with pytest.raises(ReportError, match="minimum cell"):
        write_report(unsafe, folder)
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"], "staging left behind"


def test_a_failure_while_moving_into_place_restores_the_previous_report(
    small, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = small
    folder = tmp_path / "report"
    write_report(results, folder)
    before = snapshot(folder)
    real_rename = write_report_module.os.rename
    calls = {"n": 0}

    def failing_rename(source, target):
        # Fail on the move of report.md from staging, after tables/ and figures/ moved.
        staged = Path(source).parent.name.startswith(".report.report-")
        if staged and Path(source).name == "report.md":
            raise OSError("disk full")
        calls["n"] += 1
        return real_rename(source, target)

    monkeypatch.setattr(write_report_module.os, "rename", failing_rename)
    changed = copy.deepcopy(results)
    changed["plan"]["title"] = "A different title"
    with pytest.raises(ReportError, match=r"cannot write the report in .*: disk full"):
        write_report(changed, folder)
    monkeypatch.undo()
    assert calls["n"] > 0
    assert snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_a_folder_that_cannot_be_written_is_a_user_error(small, tmp_path: Path) -> None:
    results = small
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where a folder is needed")
    with pytest.raises(ReportError, match="cannot write the report in"):
        write_report(results, blocked / "report")


def test_a_symlinked_folder_receives_the_report(small, tmp_path: Path) -> None:
    results = small
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real, target_is_directory=True)
    files = write_report(results, tmp_path / "link")
    assert (tmp_path / "link").is_symlink()
    assert (real / "report.html").is_file() and files.html == tmp_path / "link" / "report.html"


def test_a_missing_folder_is_created_with_its_parents(small, tmp_path: Path) -> None:
    results = small
    files = write_report(results, tmp_path / "a" / "b" / "report")
    assert files.html.is_file()
    assert (files.html.parent.stat().st_mode & 0o777) == 0o755


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([], "must be a JSON object"),
        ({"schema": "other/1"}, "results schema is 'other/1'"),
        ({"schema": "sscjak.results/1", "cohort": {}}, "changes"),
    ],
)
def test_results_that_are_not_sscjak_results_are_refused(
    results: Any, message: str, tmp_path: Path
) -> None:
    with pytest.raises(ReportError, match=message):
        write_report(results, tmp_path / "report")
    assert not (tmp_path / "report").exists()
    assert issubclass(ReportError, SscjakError) and not issubclass(ReportError, UserError)


def test_a_folder_path_that_is_a_file_is_refused(small, tmp_path: Path) -> None:
    results = small
    (tmp_path / "report").write_text("not a folder")
    with pytest.raises(ReportError, match="not a folder"):
        write_report(results, tmp_path / "report")


def run_report_cli(argv: list[str]) -> int:
    """The ``report`` sub-command as ``sscjak-coordinator`` will dispatch it."""
    return run_cli(
        "sscjak-coordinator", "test", {"report": "sscjak.coordinator.commands.report"}, argv
    )


def test_report_command_writes_the_report_from_a_results_file(
    demo, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, results_path = demo
    assert run_report_cli(["report", str(results_path), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").is_file()
    assert "report written" in capsys.readouterr().out


def test_report_command_names_a_bad_results_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "results.json"
    bad.write_text("{not json", encoding="utf-8")
    assert run_report_cli(["report", str(bad), "--out", str(tmp_path / "r")]) == 1
    error = capsys.readouterr().err
    assert "results.json: not a readable JSON results file" in error
    assert "Traceback" not in error
    assert run_report_cli(["report", str(tmp_path / "none.json"), "--out", "x"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_the_contracts_minimal_results_give_a_report(tmp_path: Path) -> None:
    # docs/results-file.md's required keys only: no plan, software, sex, subset or histograms.
    minimal = {
        "schema": "sscjak.results/1",
        "plan_sha256": "ab" * 32,
        "nodes": 4,
        "cohort": {
            "patients": 32,
            "patient_years": 52.8,
            "followup_months": {"median": 16.9, "q1": 10.3, "q3": 31.8},
            "drugs": {"tofacitinib": 12, "baricitinib": 20},
        },
        "changes": [
            {
                "outcome": "mrss",
                "months": 12,
                "suppressed": False,
                "n": 25,
                "n_pos": 6,
                "n_neg": 15,
                "n_zero": 4,
                "mean_baseline": 14.1,
                "sd_baseline": 9.8,
                "mean_change": -2.9,
                "sd_change": 4.9,
                "median_change": -2.0,
                "q1_change": -5.0,
                "q3_change": 0.0,
                "smc": -0.29,
                "smc_baseline": -0.29,
                "smc_change": -0.59,
                "smc_ci": [-0.6, 0.02],
                "V": 52.5,
                "p_value": 0.03,
                "p_method": "normal",
            },
        ],
        "calcinosis": {"baseline_present": 11, "improved": 5},
        "digital_ulcers": {"patients": 10},
        "safety": [
            {
                "event_type": "herpes_zoster",
                "events": 3,
                "patients": 3,
                "rate_per_100py": 5.7,
                "ci": [1.2, 16.6],
            }
        ],
    }
    files = write_report(minimal, tmp_path / "report")
    html = re.sub(r"<[^>]+>", "", files.html.read_text(encoding="utf-8"))
    assert "mRSS (points)" in html and "−0.29 (−0.60 to 0.02)" in html
    assert "5/11 (45.5%)" in html and "10/32 (31.3%)" in html
    # A panel without a released distribution is stated in words, not drawn as an empty
    # panel: this results file has no distributions, so no histogram figure at all.
    assert "12 months: no distribution released." in html
    assert {p.name for p in files.figures} == {"forest_smc.png"}


def test_provenance_states_how_the_vectors_were_combined(small, tmp_path: Path) -> None:
    results = small
    summed = write_report(results, tmp_path / "summed").markdown.read_text(encoding="utf-8")
    assert "these vectors were summed." in summed
    assert "secure aggregation" not in summed
    federated = copy.deepcopy(results)
    federated |= {"participants": ["centre-a", "centre-b", "centre-c"], "attempts": 2}
    text = write_report(federated, tmp_path / "federated").markdown.read_text(encoding="utf-8")
    assert "combined these vectors by secure aggregation" in text
    assert "**Participating nodes:** centre-a, centre-b, centre-c" in text
    assert "**Aggregation attempts:** 2" in text
