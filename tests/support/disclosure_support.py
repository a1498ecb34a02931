"""Shared helpers of the disclosure tests: small centre folders with one differencing
patient, the byte patterns that would betray a patient, and a scanner.

``write_disclosure_centres`` writes three CSV centre folders (seeded, distinctive
pseudonyms) in which exactly one patient — the *edge patient* — has the 12-month visit
between 2 and 2.5 months from its target date: a plan with ``window_months = 2``
leaves that patient out of the 12-month cells, the same plan with ``window_months =
2.5`` takes it in. Every other follow-up visit is within 25 days of its target.

``leak_patterns`` reads a centre folder (with the ``csv`` module, independently of the
node's reader) and lists, for every patient id, date and measurement, the byte strings
that would appear if it were sent in any common encoding. ``scan`` finds them.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np

MONTH_DAYS = 30.4375
MEASURE_COLUMNS = (
    "fvc_pct",
    "dlco_pct",
    "mrss",
    "tjc",
    "sjc",
    "du_count",
    "calcinosis",
    "calcinosis_course",
    "gc_dose_mg",
)
#: Units per value of each numeric measure (docs/input-files.md resolution).
GRID_UNITS = {
    "fvc_pct": 10,
    "dlco_pct": 10,
    "mrss": 1,
    "tjc": 1,
    "sjc": 1,
    "du_count": 1,
    "calcinosis": 1,
    "gc_dose_mg": 4,
}
DRUGS = ("tofacitinib", "baricitinib", "upadacitinib", "filgotinib", "ruxolitinib")
EVENT_TYPES = ("infection", "herpes_zoster", "digital_ulcer", "other")
CENTRE_NAMES = ("centre-north", "centre-south", "centre-west")
#: Patients per centre; the first ``TJC_AT_12`` of each have a 12-month joint count.
PATIENTS_PER_CENTRE = 8
TJC_AT_12 = 4
#: The centre holding the edge patient (its first patient).
EDGE_CENTRE = "centre-south"
#: Days between the edge patient's 12-month visit and its target: beyond 2 months
#: (60.9 days), within 2.5 months (76.1 days).
EDGE_OFFSET_DAYS = 70


@dataclass(frozen=True)
class DisclosureCentres:
    folders: dict[str, Path]
    edge_centre: str
    edge_patient_index: int = 0


def write_disclosure_centres(root: Path, seed: int = 20261125) -> DisclosureCentres:
    """Write the three centre folders under ``root``; return where they are."""
    rng = np.random.default_rng(seed)
    folders: dict[str, Path] = {}
    for centre_index, name in enumerate(CENTRE_NAMES):
        folder = Path(root) / name
        folder.mkdir(parents=True, exist_ok=True)
        patients, visits, events = [], [], []
        for i in range(PATIENTS_PER_CENTRE):
            pid = f"SSCPT-{name[7:].upper()}-{i:03d}-{rng.integers(16**6):06x}"
            start = dt.date(2017, 1, 1) + dt.timedelta(days=int(rng.integers(0, 1500)))
            end = start + dt.timedelta(days=int(rng.integers(800, 1200)))
            patients.append(
                [
                    pid,
                    DRUGS[int(rng.integers(len(DRUGS)))],
                    start.isoformat(),
                    "",
                    end.isoformat(),
                    "F" if rng.random() < 0.75 else "M",
                    str(int(rng.integers(1950, 1990))),
                    "dcSSc" if rng.random() < 0.5 else "lcSSc",
                ]
            )
            calcinosis = int(rng.random() < 0.4)
            edge = name == EDGE_CENTRE and i == 0
            offsets = {
                "baseline": -int(rng.integers(0, 21)),
                "6": round(6 * MONTH_DAYS) + int(rng.integers(-10, 11)),
                "12": round(12 * MONTH_DAYS)
                + (EDGE_OFFSET_DAYS if edge else int(rng.integers(-25, 26))),
                "24": round(24 * MONTH_DAYS) + int(rng.integers(-25, 26)),
            }
            for visit, offset in offsets.items():
                values = _visit_values(rng, visit, calcinosis, with_tjc=i < TJC_AT_12)
                date = start + dt.timedelta(days=offset)
                visits.append([pid, date.isoformat(), *values])
            for _ in range(int(rng.integers(0, 3))):
                day = start + dt.timedelta(days=int(rng.integers(1, (end - start).days)))
                events.append([pid, day.isoformat(), EVENT_TYPES[int(rng.integers(4))]])
        _write(
            folder / "patients.csv",
            [
                "patient_id",
                "jaki_drug",
                "jaki_start",
                "jaki_stop",
                "followup_end",
                "sex",
                "birth_year",
                "ssc_subset",
            ],
            patients,
        )
        _write(folder / "visits.csv", ["patient_id", "visit_date", *MEASURE_COLUMNS], visits)
        _write(folder / "events.csv", ["patient_id", "event_date", "event_type"], events)
        folders[name] = folder
        del centre_index
    return DisclosureCentres(folders, EDGE_CENTRE)


def _visit_values(
    rng: np.random.Generator, visit: str, calcinosis: int, *, with_tjc: bool
) -> list[str]:
    follow_up = visit != "baseline"
    fvc = f"{float(np.clip(rng.normal(78, 12), 40, 120)):.1f}"
    dlco = f"{float(np.clip(rng.normal(55, 12), 20, 110)):.1f}"
    mrss = str(int(rng.integers(0, 35)))
    tjc = str(int(rng.integers(0, 15))) if (with_tjc or visit != "12") else ""
    sjc = str(int(rng.integers(0, 8)))
    du = str(int(rng.integers(0, 3)))
    calc = str(calcinosis) if visit == "baseline" else ""
    course = ""
    if follow_up and calcinosis:
        course = ("improved", "stable", "worsened")[int(rng.integers(3))]
    gc = ("0", "2.5", "5", "7.5", "10", "12.5")[int(rng.integers(6))]
    if visit == "6":
        dlco, sjc = "", ""
    return [fvc, dlco, mrss, tjc, sjc, du, calc, course, gc]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


# -- what a leak would look like ----------------------------------------------------------


@dataclass(frozen=True)
class Pattern:
    """One byte string that must never leave a node: what it encodes, and how."""

    kind: str  # "patient_id", "date" or "measurement"
    encoding: str
    needle: bytes
    #: a number written as text counts only where no letter or digit touches it: a day
    #: number 44081 is not found inside a content length of 144081, nor 19350 inside a
    #: hex digest "db19350b"
    whole_number: bool = False

    @property
    def structured(self) -> bool:
        """A binary number with four or more zero bytes (a small int64, a whole float64):
        found in any structured binary file (SQLite pages, headers) by coincidence."""
        return not self.encoding.startswith(("utf", "text", "CSV")) and self.needle.count(0) >= 4

    def found_in(self, stream: bytes) -> int:
        """Where the pattern first occurs in ``stream``, or -1."""
        if not self.whole_number:
            return stream.find(self.needle)
        match = re.search(
            rb"(?<![0-9A-Za-z])" + re.escape(self.needle) + rb"(?![0-9A-Za-z])", stream
        )
        return match.start() if match else -1


EPOCH = dt.date(1970, 1, 1)
EXCEL_EPOCH = dt.date(1899, 12, 30)
DATE_TEXT_FORMATS = (
    "%Y-%m-%d",
    "%Y%m%d",
    "%d/%m/%Y",
    "%m/%d/%Y",
    "%d.%m.%Y",
    "%Y/%m/%d",
    "%d-%m-%Y",
)


def _read(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as stream:
        return list(csv.DictReader(stream))


def _rows_with_text(path: Path) -> list[tuple[dict[str, str], str]]:
    """Each data row with its raw line (the CSV files here have no quoted newlines)."""
    lines = path.read_text(encoding="utf-8").splitlines()[1:]
    return list(zip(_read(path), lines, strict=True))


def date_patterns(date: dt.date) -> list[Pattern]:
    """A calendar date as text in common formats and as day/second/ns numbers."""
    found = [
        Pattern("date", f"text {f}", date.strftime(f).encode(), whole_number=f == "%Y%m%d")
        for f in DATE_TEXT_FORMATS
    ]
    found.append(Pattern("date", "text ISO utf-16le", date.isoformat().encode("utf-16-le")))
    days = (date - EPOCH).days
    seconds = days * 86400
    found += [
        Pattern("date", "text days since 1970", whole_number=True, needle=str(days).encode()),
        Pattern(
            "date",
            "text Excel serial day",
            whole_number=True,
            needle=str((date - EXCEL_EPOCH).days).encode(),
        ),
        Pattern("date", "text Unix seconds", whole_number=True, needle=str(seconds).encode()),
        Pattern("date", "int64 days since 1970", struct.pack("<q", days)),
        Pattern("date", "float64 days since 1970", struct.pack("<d", days)),
        Pattern("date", "int64 Unix seconds", struct.pack("<q", seconds)),
        Pattern("date", "float64 Unix seconds", struct.pack("<d", seconds)),
        Pattern("date", "int64 Unix milliseconds", struct.pack("<q", seconds * 1000)),
        Pattern("date", "int64 Unix nanoseconds (pandas)", struct.pack("<q", seconds * 10**9)),
        Pattern("date", "int64 Excel serial day", struct.pack("<q", (date - EXCEL_EPOCH).days)),
    ]
    return found


def leak_patterns(folder: Path) -> list[Pattern]:
    """Every byte string betraying a patient of the centre in ``folder``.

    Patient ids (UTF-8, UTF-16); every date of every table (see :func:`date_patterns`);
    every visit's measurements as the CSV text of the row after the date, as a packed
    float64 array and as a packed int64 array of grid units; every single measured value
    as float64 and as int64 in grid units. Texts of fewer than 5 bytes (a lone "80.3")
    are left out: 300 kB of uniformly random masked bytes contain such strings by chance.
    """
    patterns: list[Pattern] = []
    patients = _read(folder / "patients.csv")
    for row in patients:
        pid = row["patient_id"]
        patterns += [
            Pattern("patient_id", "utf-8", pid.encode()),
            Pattern("patient_id", "utf-16le", pid.encode("utf-16-le")),
        ]
    dates: set[dt.date] = set()
    for row in patients:
        for column in ("jaki_start", "jaki_stop", "followup_end"):
            if row[column]:
                dates.add(dt.date.fromisoformat(row[column]))
    for row in _read(folder / "events.csv"):
        dates.add(dt.date.fromisoformat(row["event_date"]))
    visits = _rows_with_text(folder / "visits.csv")
    for row, _line in visits:
        dates.add(dt.date.fromisoformat(row["visit_date"]))
    for date in sorted(dates):
        patterns += date_patterns(date)
    for row, line in visits:
        fragment = line.split(",", 2)[2]
        numeric = [(c, row[c]) for c in GRID_UNITS if row[c]]
        if len(fragment.encode()) >= 5 and len(numeric) >= 2:
            patterns.append(Pattern("measurement", "CSV text of a visit", fragment.encode()))
        if len(numeric) >= 2:
            as_float = [float(v) for _, v in numeric]
            as_units = [int(Decimal(v) * GRID_UNITS[c]) for c, v in numeric]
            patterns += [
                Pattern(
                    "measurement",
                    "float64 array of a visit",
                    struct.pack(f"<{len(as_float)}d", *as_float),
                ),
                Pattern(
                    "measurement",
                    "int64 grid-unit array of a visit",
                    struct.pack(f"<{len(as_units)}q", *as_units),
                ),
            ]
        for column, value in numeric:
            patterns += [
                Pattern("measurement", f"float64 {column}", struct.pack("<d", float(value))),
                Pattern(
                    "measurement",
                    f"int64 grid units {column}",
                    struct.pack("<q", int(Decimal(value) * GRID_UNITS[column])),
                ),
            ]
    unique = {(p.kind, p.needle): p for p in patterns if len(p.needle) >= 5}
    return list(unique.values())


@dataclass(frozen=True)
class ScanReport:
    bytes_scanned: int
    patterns: int
    hits: list[tuple[Pattern, int]]  # (pattern, number of streams it was found in)
    contexts: list[bytes]  # up to 24 bytes either side of each hit's first occurrence
    expected_chance_hits: float  # if the streams were uniformly random bytes

    def kinds_hit(self) -> set[str]:
        return {p.kind for p, _ in self.hits}


#: A run of digits no letter or digit touches (how a number written as text is found).
WHOLE_NUMBER = re.compile(rb"(?<![0-9A-Za-z])[0-9]+(?![0-9A-Za-z])")


def scan(streams: Iterable[bytes], patterns: list[Pattern]) -> ScanReport:
    """Look for every pattern in every stream (each stream searched as one whole).

    8-byte binary patterns are looked up at every offset at once (numpy, one pass per
    alignment); the others with ``bytes.find`` or, for whole numbers, a regex.
    """
    streams = [bytes(s) for s in streams if s]
    eight = [p for p in patterns if len(p.needle) == 8 and not p.whole_number]
    numbers = {p.needle: p for p in patterns if p.whole_number}
    others = [p for p in patterns if not p.whole_number and len(p.needle) != 8]
    wanted = np.frombuffer(b"".join(p.needle for p in eight), dtype="<u8")
    found: dict[bytes, list] = {}

    def note(pattern: Pattern, stream: bytes, at: int) -> None:
        entry = found.setdefault(pattern.needle, [pattern, 0, b""])
        entry[1] += 1
        entry[2] = entry[2] or stream[max(0, at - 24) : at + len(pattern.needle) + 24]

    by_needle = {p.needle: p for p in eight}
    for stream in streams:
        present: set[bytes] = set()
        for offset in range(8):
            usable = (len(stream) - offset) // 8 * 8
            if usable <= 0:
                continue
            words = np.frombuffer(stream, dtype="<u8", count=usable // 8, offset=offset)
            hits = np.unique(words[np.isin(words, wanted)])
            present.update(h.tobytes() for h in hits)
        for needle in present:
            note(by_needle[needle], stream, stream.find(needle))
        for match in WHOLE_NUMBER.finditer(stream):
            if match.group() in numbers:
                note(numbers[match.group()], stream, match.start())
        for pattern in others:
            at = pattern.found_in(stream)
            if at >= 0:
                note(pattern, stream, at)
    total = sum(len(s) for s in streams)
    expected = sum(
        max(0, len(s) - len(p.needle) + 1) / 256.0 ** len(p.needle)
        for p in patterns
        for s in streams
    )
    return ScanReport(
        total,
        len(patterns),
        [(p, c) for p, c, _ in found.values()],
        [context for _, _, context in found.values()],
        expected,
    )
