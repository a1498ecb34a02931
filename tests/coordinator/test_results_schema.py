"""The typed results schema is the file the round writes, and the one every reader reads."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from sscjak.coordinator.federation.in_process import pool_centre_summaries
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.results.schema import (
    READABLE_SCHEMAS,
    RESULTS_SCHEMA,
    AgeAtStart,
    ChangeCell,
    Cohort,
    PlanRecord,
    Results,
    ResultsSchemaError,
    SafetyRow,
    Stratified,
    StratifiedCell,
    StratumCurve,
    TimeToEvent,
    read_results,
    write_results,
)
from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
from sscjak.shared.plan import default_plan


@pytest.fixture(scope="module")
def demo_results() -> Results:
    plan = replace(default_plan(), time_to_event=("drug_retention",), by="jaki_drug")
    pooled, nodes = pool_centre_summaries(list(demo_centre_folders().values()), plan)
    return build_results(pooled, plan, nodes)


def test_the_results_built_have_every_key_of_the_schema(demo_results: Results) -> None:
    assert demo_results["schema"] == RESULTS_SCHEMA in READABLE_SCHEMAS
    assert Results.__required_keys__ <= demo_results.keys()
    plan_keys = demo_results["plan"].keys()
    assert PlanRecord.__required_keys__ <= plan_keys
    assert plan_keys <= PlanRecord.__required_keys__ | PlanRecord.__optional_keys__
    assert Cohort.__required_keys__ == demo_results["cohort"].keys()
    for cell in demo_results["changes"]:
        assert ChangeCell.__required_keys__ <= cell.keys()
        assert cell.keys() <= ChangeCell.__required_keys__ | ChangeCell.__optional_keys__
    age = demo_results["cohort"]["age_at_start_years"]
    assert AgeAtStart.__required_keys__ <= age.keys()
    for row in demo_results["safety"]:
        assert SafetyRow.__required_keys__ == row.keys()
    stratified = demo_results["stratified"]
    assert Stratified.__required_keys__ == stratified.keys()
    for cell in stratified["changes"]:
        assert StratifiedCell.__required_keys__ == cell.keys()
        for row in cell["strata"]:
            assert row.keys() <= ChangeCell.__required_keys__ | ChangeCell.__optional_keys__
    for entry in demo_results["time_to_event"]:
        assert TimeToEvent.__required_keys__ == entry.keys()
        for row in entry["strata"]:
            assert StratumCurve.__required_keys__ <= row.keys()
            assert row.keys() <= StratumCurve.__required_keys__ | StratumCurve.__optional_keys__
    undeclared = demo_results.keys() - Results.__required_keys__ - Results.__optional_keys__
    assert undeclared == set()


def test_written_results_read_back_equal(demo_results: Results, tmp_path: Path) -> None:
    path = write_results(demo_results, tmp_path / "results.json")
    assert read_results(path) == json.loads(path.read_text(encoding="utf-8"))
    assert read_results(path)["cohort"]["patients"] == demo_results["cohort"]["patients"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "must be a JSON object"),
        ('{"schema": "sscjak.results/0"}', "results schema is 'sscjak.results/0'"),
        ('{"schema": "sscjak.results/1", "cohort": {}}', "changes"),
        ('{"schema": "sscjak.results/1", "cohort": {}, "changes": [1]}', "list of objects"),
        ("{not json", "not a readable JSON results file"),
    ],
)
def test_a_file_this_version_cannot_read_is_named_with_its_problem(
    text: str, message: str, tmp_path: Path
) -> None:
    path = tmp_path / "results.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ResultsSchemaError, match=message) as error:
        read_results(path)
    assert str(path) in str(error.value)


def test_nothing_is_written_for_results_that_are_not_results(tmp_path: Path) -> None:
    with pytest.raises(ResultsSchemaError):
        write_results({"schema": "other/1"}, tmp_path / "results.json")  # type: ignore[typeddict-item]
    assert list(tmp_path.iterdir()) == []
