"""The release epoch: what pins it, what it refuses, its file, and the data fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest

from sscjak.node.guard.release_epoch import (
    EpochFileError,
    data_fingerprint,
    describe_new_epoch,
    new_epoch,
    read_epoch,
    write_epoch,
)

SET = ("centre-a", "centre-b", "centre-c")
ROSTER = "ab" * 32


def test_an_open_epoch_allows_anything_and_pins_what_it_is_given() -> None:
    epoch = new_epoch("first use")
    assert not epoch.pinned and epoch.refusal(SET, ROSTER, "data-1") is None
    pinned = epoch.pinned_to(SET, ROSTER, "data-1")
    assert pinned.pinned and pinned.epoch_id == epoch.epoch_id
    assert pinned.refusal(SET, ROSTER, "data-1") is None
    other = (*SET[:2], "centre-d")
    assert "one participant set per epoch" in pinned.refusal(other, ROSTER, "data-1")
    assert "study roster" in pinned.refusal(SET, "cd" * 32, "data-1")
    assert "data changed" in pinned.refusal(SET, ROSTER, "data-2")


def test_a_stewards_epoch_names_its_set_from_the_start() -> None:
    epoch = new_epoch("steward", tuple(reversed(SET)))
    assert epoch.participants == SET and not epoch.pinned
    assert "one participant set per epoch" in epoch.refusal(SET[:2], ROSTER, None)
    assert epoch.pinned_to(SET, ROSTER, "data-1").participants == SET


def test_the_epoch_file_round_trips_privately_and_a_damaged_one_is_refused(
    tmp_path: Path,
) -> None:
    assert read_epoch(tmp_path) is None
    epoch = new_epoch("steward", SET).pinned_to(SET, ROSTER, "data-1")
    write_epoch(tmp_path, epoch)
    assert read_epoch(tmp_path) == epoch
    path = tmp_path / "release_epoch.json"
    assert path.stat().st_mode & 0o077 == 0
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(EpochFileError, match="cannot be read"):
        read_epoch(tmp_path)


def test_the_new_epoch_warning_names_the_centres_that_differ() -> None:
    current = new_epoch("first use").pinned_to(SET, ROSTER, "data-1")
    text = describe_new_epoch(current, ("centre-a", "centre-b", "centre-d"))
    assert "only in the earlier set: centre-c" in text.replace("\n", " ")
    assert "only in the new set: centre-d" in text.replace("\n", " ").lower()
    assert "that centre's whole summary" in text


def test_the_fingerprint_covers_every_file_the_reader_could_read(tmp_path: Path) -> None:
    (tmp_path / "patients.csv").write_text("patient_id\nP1\n", encoding="utf-8")
    first = data_fingerprint(tmp_path)
    (tmp_path / "notes.txt").write_text("not data", encoding="utf-8")
    assert data_fingerprint(tmp_path) == first  # other files do not count
    (tmp_path / "export.xlsx").write_bytes(b"a workbook holding the tables as sheets")
    with_workbook = data_fingerprint(tmp_path)
    assert with_workbook != first
    (tmp_path / "export.xlsx").write_bytes(b"the same workbook, one visit changed")
    assert data_fingerprint(tmp_path) != with_workbook
    (tmp_path / "patients.csv").write_text("patient_id\nP2\n", encoding="utf-8")
    assert data_fingerprint(tmp_path) not in (first, with_workbook)
    assert data_fingerprint(tmp_path / "missing") == data_fingerprint(tmp_path / "missing")


def test_a_spreadsheet_lock_file_does_not_count_but_an_upper_case_suffix_does(
    tmp_path: Path,
) -> None:
    (tmp_path / "visits.csv").write_text("patient_id\n", encoding="utf-8")
    first = data_fingerprint(tmp_path)
    (tmp_path / "~$export.xlsx").write_bytes(b"lock file of an open workbook")
    assert data_fingerprint(tmp_path) == first
    (tmp_path / "EXPORT.XLSX").write_bytes(b"a workbook")
    assert data_fingerprint(tmp_path) != first
