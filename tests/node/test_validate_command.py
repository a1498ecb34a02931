"""Tests of ``sscjak-node validate DIR`` (sscjak.node.commands.validate), in process and as
a CLI.
"""

from __future__ import annotations

import itertools
import subprocess
from pathlib import Path

import pytest

from sscjak.node.cli import main

PATIENTS = (
    "patient_id,jaki_drug,jaki_start,jaki_stop,followup_end,sex,birth_year,ssc_subset\n"
    "A01,tofacitinib,2020-01-10,,2021-06-01,F,1960,dcSSc\n"
    "A02,baricitinib,2019-05-01,2020-05-01,,M,,lcSSc\n"
)
VISITS = (
    "patient_id,visit_date,fvc_pct,mrss,calcinosis,calcinosis_course\n"
    "A01,2020-01-05,80.35,12,1,\n"
    "A01,2021-01-12,82.1,10,1,improved\n"
    "A02,2019-04-20,70,20,0,\n"
    "A02,2019-04-20,,20,,\n"
)
EVENTS = "patient_id,event_date,event_type\nA01,2020-06-01,herpes_zoster\n"


def centre_folder(folder: Path, **replaced: str | bytes) -> Path:
    """A small valid centre folder; keyword arguments replace a file's content."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, str | bytes] = {
        "patients.csv": PATIENTS,
        "visits.csv": VISITS,
        "events.csv": EVENTS,
    }
    files.update({f"{name}.csv": content for name, content in replaced.items()})
    for name, content in files.items():
        data = content.encode("utf-8") if isinstance(content, str) else content
        (folder / name).write_bytes(data)
    return folder


def run_validate(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sscjak-node", "validate", str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_valid_folder_prints_a_summary_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = centre_folder(tmp_path / "centre")
    assert main(["validate", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "valid" in out
    assert "Files read: patients.csv, visits.csv, events.csv" in out
    assert "Patients: 2   visits: 3 (one per patient and date)   events: 1" in out
    section = out.split("Values present per measure:\n")[1].splitlines()
    measure_lines = itertools.takewhile(lambda line: line.startswith("  "), section)
    lines = {line.split()[0]: line.split()[1] for line in measure_lines}
    assert lines["fvc_pct"] == "3"
    assert lines["mrss"] == "3"
    assert lines["dlco_pct"] == "0"
    assert lines["calcinosis_course"] == "1"
    assert "Note: 1 fvc_pct value is off its 0.1 grid" in out


def test_invalid_folder_lists_problems_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    visits = VISITS.replace("80.35,12", "250,3.5").replace("improved", "better")
    folder = centre_folder(tmp_path / "centre", visits=visits)
    assert main(["validate", str(folder)]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"3 problems in {folder}:"
    assert err[1:] == [
        "  visits.csv, row 2, column fvc_pct: expected a number from 10 to 200, got '250'",
        "  visits.csv, row 2, column mrss: expected a whole number from 0 to 51, got '3.5'",
        "  visits.csv, row 3, column calcinosis_course: expected one of improved, stable, "
        "worsened, got 'better'",
    ]


def test_cli_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    valid = run_validate(centre_folder(tmp_path / "valid"))
    assert valid.returncode == 0, valid.stderr
    assert "Patients: 2" in valid.stdout
    bad = run_validate(centre_folder(tmp_path / "bad", events="patient_id;event_date\n"))
    assert bad.returncode == 1
    assert "1 problem in" in bad.stderr and "semicolons" in bad.stderr
    for result in (valid, bad):
        assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda root: root / "does-not-exist", "no such folder"),
        (lambda root: centre_folder(root / "c", patients=bytes(range(256)) * 8), "NUL bytes"),
        (lambda root: centre_folder(root / "c", patients=PATIENTS.encode("utf-16")), "UTF-16"),
        (
            lambda root: centre_folder(
                root / "c", patients=PATIENTS.replace("A02", "Müller").encode("cp1252")
            ),
            "row 3: the file is not UTF-8",
        ),
        (lambda root: centre_folder(root / "c", visits=""), "empty"),
    ],
    ids=["missing-folder", "binary-file", "utf16", "cp1252", "empty-file"],
)
def test_cli_turns_unreadable_input_into_problems(
    tmp_path: Path, make: object, expected: str
) -> None:
    folder = make(tmp_path)  # type: ignore[operator]
    result = run_validate(folder)
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


def test_cli_without_a_folder_argument_is_a_usage_error() -> None:
    result = subprocess.run(
        ["sscjak-node", "validate"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "DIR" in result.stderr
    assert "Traceback" not in result.stderr


def test_reader_closing_the_pipe_early_gives_no_traceback(tmp_path: Path) -> None:
    folder = centre_folder(tmp_path / "centre")
    process = subprocess.Popen(
        ["sscjak-node", "validate", str(folder)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.close()  # like `validate DIR | head -1` after head has exited
    _, err = process.communicate(timeout=120)
    assert "Traceback" not in err
    assert process.returncode == 0
