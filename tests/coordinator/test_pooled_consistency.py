"""The coordinator refuses a pooled summary that no set of honest nodes could produce.

Honest vectors (the bundled demo centres, random cohorts split across centres) pass every
check; each kind of corruption a malicious node could slip into the secure sum is caught
with a message naming the check; ``build_results`` and ``simulate`` refuse to produce or
write results for such a vector.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from random_cohort import random_cohort, split_into_centres

from sscjak.coordinator.cli import main as coordinator_main
from sscjak.coordinator.commands import simulate as simulate_command
from sscjak.coordinator.federation.in_process import centre_summaries
from sscjak.coordinator.federation.secure_round import InProcessTransport, run_secure_analysis
from sscjak.coordinator.results.pooled_consistency import (
    MAX_PROBLEMS_SHOWN,
    InconsistentPooledSummaryError,
    check_pooled_summary,
    consistency_problems,
)
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.synthetic.demo_bundle import bundled_demo_folder
from sscjak.node.flower.client_app import answer_payload_in_process
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.node.summarise.derivation import derive_cohort
from sscjak.node.summarise.summary_vector import summarise_derived
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.summary_layout import SummaryLayout

PLAN = default_plan()
LAYOUT = SummaryLayout.for_plan(PLAN)
HEAD = "the pooled summary is inconsistent, results not written:"
HONEST_PLANS = [
    default_plan(),
    Plan(outcomes=("mrss",), months=(12,)),
    Plan(min_cell=5, smc="change", months=(6, 12), window_months=3),
]


def demo_folders() -> list[Path]:
    return sorted(p for p in bundled_demo_folder().iterdir() if p.is_dir())


@pytest.fixture(scope="module")
def demo_vectors() -> list[np.ndarray]:
    return centre_summaries(demo_folders(), PLAN)


@pytest.fixture
def pooled(demo_vectors: list[np.ndarray]) -> np.ndarray:
    """The pooled vector of the bundled demo centres (a fresh copy per test)."""
    return np.sum(demo_vectors, axis=0, dtype=np.int64)


def element(vector: np.ndarray, qualified: str) -> np.ndarray:
    """A one-element view of ``segment.label`` (writes go through)."""
    name, label = qualified.rsplit(".", 1)
    index = LAYOUT.segment(name).labels.index(label)
    return LAYOUT.view(vector, name)[index : index + 1]


def add_wrapping(vector: np.ndarray, qualified: str, amount: int) -> None:
    """Add ``amount`` modulo 2**64, as the secure sum does with a node's value."""
    element(vector, qualified).view(np.uint64)[:] += np.uint64(amount % 2**64)


# --- honest vectors pass ------------------------------------------------------------------


@pytest.mark.parametrize("plan", HONEST_PLANS, ids=["default", "mrss-12", "change-6-12"])
def test_bundled_demo_centres_pass_every_check(plan: Plan) -> None:
    vectors = centre_summaries(demo_folders(), plan)
    layout = SummaryLayout.for_plan(plan)
    for vector in vectors:
        assert consistency_problems(vector, layout, 1) == []
    summed = np.sum(vectors, axis=0, dtype=np.int64)
    assert consistency_problems(summed, layout, len(vectors)) == []
    results = build_results(summed, plan, len(vectors))
    assert results["cohort"]["centres"] == len(vectors)


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    n_patients=st.integers(0, 120),
    n_centres=st.integers(1, 6),
    plan=st.sampled_from(HONEST_PLANS),
)
def test_random_honest_cohorts_pass_every_check(
    seed: int, n_patients: int, n_centres: int, plan: Plan
) -> None:
    layout = SummaryLayout.for_plan(plan)
    summed = layout.zeros()
    for part in split_into_centres(
        random_cohort(seed, n_patients), n_centres, np.random.default_rng(seed + 1)
    ):
        vector = summarise_derived(derive_cohort(*part, plan), plan)
        assert consistency_problems(vector, layout, 1) == []
        summed += vector
    assert consistency_problems(summed, layout, n_centres) == []


# --- each corruption is caught, named -----------------------------------------------------


def first_nonzero_bin(vector: np.ndarray, name: str) -> int:
    return int(np.flatnonzero(LAYOUT.view(vector, name))[0])


def remove_one_patient_from_a_bin(vector: np.ndarray) -> None:
    histogram = LAYOUT.view(vector, "change.mrss.12.histogram")
    histogram[first_nonzero_bin(vector, "change.mrss.12.histogram")] -= 1


def move_one_patient_to_the_next_bin(vector: np.ndarray) -> None:
    histogram = LAYOUT.view(vector, "change.mrss.12.histogram")
    index = first_nonzero_bin(vector, "change.mrss.12.histogram")
    histogram[index] -= 1
    histogram[index + 1] += 1


def negative_histogram_bin(vector: np.ndarray) -> None:
    histogram = LAYOUT.view(vector, "followup_days_histogram")
    histogram[0] -= 1
    histogram[first_nonzero_bin(vector, "followup_days_histogram") + 1] += 1


def set_to(qualified: str, value: int) -> Callable[[np.ndarray], None]:
    def corrupt(vector: np.ndarray) -> None:
        element(vector, qualified)[:] = value

    return corrupt


def add(qualified: str, amount: int) -> Callable[[np.ndarray], None]:
    return functools.partial(add_wrapping, qualified=qualified, amount=amount)


CORRUPTIONS: dict[str, tuple[Callable[[np.ndarray], None], str]] = {
    "negative count": (set_to("drugs.other", -3), "drugs: negative other = -3"),
    "negative histogram bin": (
        negative_histogram_bin,
        "followup_days_histogram: 1 negative bin(s), the first at 0 grid units holds -1",
    ),
    "centres = 0": (set_to("centres.centres", 0), "centres is 0 but 4 node(s) took part"),
    "histogram total differs from n": (
        remove_one_patient_from_a_bin,
        "change.mrss.12.histogram holds 51 patients but change.mrss.12.sums n = 52",
    ),
    "histogram bin moved": (
        move_one_patient_to_the_next_bin,
        "change.mrss.12.sums: sum_change = -132 but the histogram's Σ change·count = -131",
    ),
    "sum_change off by one": (
        add("change.mrss.12.sums.sum_change", 1),
        "change.mrss.12.sums: sum_change = -131 but the histogram's Σ change·count = -132",
    ),
    "sum_change_sq off by one": (
        add("change.fvc_pct.24.sums.sum_change_sq", -1),
        "change.fvc_pct.24.sums: sum_change_sq = ",
    ),
    "patients wrapped past 2**63": (
        add("cohort.patients", 2**63 - 1),
        f"cohort: negative patients = {165 + 2**63 - 1 - 2**64}",
    ),
    "sum of squares wrapped past 2**63": (
        add("change.dlco_pct.12.sums.sum_baseline_sq", 2**63),
        "change.dlco_pct.12.sums: negative sum_baseline_sq",
    ),
    "sum of squares near 2**63": (
        set_to("change.dlco_pct.12.sums.sum_baseline_sq", 2**63 - 1),
        f"sum_baseline_sq = {2**63 - 1} exceeds n·max(low², high²)",
    ),
    "drugs do not sum to patients": (
        add("drugs.tofacitinib", 1),
        "drugs counts add up to 166 but cohort.patients is 165",
    ),
    "sex does not sum to patients": (
        add("sex.missing", -1),
        "sex counts add up to 164 but cohort.patients is 165",
    ),
    "age histogram holds a patient too many": (
        add("age_at_start.outside_0_120", 1),
        "age_at_start_histogram holds 161 patients and age_at_start 5 (birth_year_missing 4, "
        "outside_0_120 1), together 166, but cohort.patients is 165",
    ),
    "a patient missing from the age histogram": (
        add("age_at_start.birth_year_missing", -1),
        "together 164, but cohort.patients is 165",
    ),
    "follow-up total off": (
        add("cohort.followup_days_total", 7),
        "cohort.followup_days_total is ",
    ),
    "cell n above patients": (
        set_to("change.tjc.24.sums.n", 1000),
        "change cells with n above cohort.patients = 165: tjc.24 (n = 1000)",
    ),
    "baseline sum outside the range": (
        set_to("change.mrss.12.sums.sum_baseline", 52 * 51 + 1),
        f"change.mrss.12.sums: sum_baseline = {52 * 51 + 1} is outside",
    ),
    "Cauchy–Schwarz on baseline and change": (
        set_to("change.mrss.24.sums.sum_baseline_change", 10**6),
        "change.mrss.24.sums: sum_baseline_change² = 1000000000000 exceeds",
    ),
    "improved above baseline_present": (
        set_to("calcinosis.improved", 34),
        "calcinosis.improved = 34 exceeds calcinosis.baseline_present = 33",
    ),
    "gc cell above baseline_on_gc": (
        set_to("glucocorticoids.baseline_on_gc", 0),
        "change.gc_dose_mg.12.sums.n = 14 exceeds glucocorticoids.baseline_on_gc = 0",
    ),
    "safety patients above events": (
        add("safety.patients.vte", 100),
        "safety.patients.vte = ",
    ),
    "events without a patient": (
        set_to("safety.patients.infection", 0),
        "but no patient has such an event",
    ),
}


def test_the_demo_numbers_the_corruptions_rely_on(pooled: np.ndarray) -> None:
    sums = LAYOUT.counts(pooled, "change.mrss.12.sums")
    assert (sums["n"], sums["sum_change"]) == (52, -132)
    assert LAYOUT.counts(pooled, "cohort")["patients"] == 165
    assert LAYOUT.counts(pooled, "calcinosis")["baseline_present"] == 33
    assert LAYOUT.counts(pooled, "change.gc_dose_mg.12.sums")["n"] == 14
    assert LAYOUT.counts(pooled, "safety.events")["infection"] > 0
    assert LAYOUT.view(pooled, "followup_days_histogram")[0] == 0
    assert LAYOUT.counts(pooled, "age_at_start") == {"birth_year_missing": 4, "outside_0_120": 0}
    assert int(LAYOUT.view(pooled, "age_at_start_histogram").sum()) == 161


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_each_corruption_is_caught_and_named(pooled: np.ndarray, kind: str) -> None:
    corrupt, expected = CORRUPTIONS[kind]
    corrupt(pooled)
    problems = consistency_problems(pooled, LAYOUT, 4)
    assert any(expected in problem for problem in problems), problems
    with pytest.raises(InconsistentPooledSummaryError) as caught:
        build_results(pooled, PLAN, 4)
    assert expected in str(caught.value)


def test_every_failing_check_is_reported_not_only_the_first(pooled: np.ndarray) -> None:
    kinds = ["centres = 0", "sum_change off by one", "improved above baseline_present"]
    for kind in kinds:
        CORRUPTIONS[kind][0](pooled)
    problems = consistency_problems(pooled, LAYOUT, 4)
    assert len(problems) == 3, problems
    for kind in kinds:
        assert any(CORRUPTIONS[kind][1] in problem for problem in problems), kind


def test_the_error_names_the_checks_and_what_the_centres_can_do(pooled: np.ndarray) -> None:
    CORRUPTIONS["centres = 0"][0](pooled)
    with pytest.raises(InconsistentPooledSummaryError) as caught:
        check_pooled_summary(pooled, LAYOUT, 4)
    message = str(caught.value)
    assert message.startswith(HEAD + "\n  - centres is 0 but 4 node(s) took part")
    assert "Secure aggregation hides which centre sent it" in message
    assert "sscjak-node preview" in message and "audit log" in message
    assert isinstance(caught.value, ValueError)
    assert caught.value.problems == ("centres is 0 but 4 node(s) took part (each node adds 1)",)


def test_a_flood_of_problems_is_capped_in_the_message(pooled: np.ndarray) -> None:
    pooled[:] = -1
    problems = consistency_problems(pooled, LAYOUT, 4)
    assert len(problems) > MAX_PROBLEMS_SHOWN
    with pytest.raises(InconsistentPooledSummaryError) as caught:
        check_pooled_summary(pooled, LAYOUT, 4)
    message = str(caught.value)
    assert message.count("\n  - ") == MAX_PROBLEMS_SHOWN
    assert f"… and {len(problems) - MAX_PROBLEMS_SHOWN} more" in message
    assert caught.value.problems == tuple(problems)


def test_a_vector_of_the_wrong_shape_is_still_refused(pooled: np.ndarray) -> None:
    with pytest.raises(ValueError, match="must be 1-d int64"):
        consistency_problems(pooled[:-1], LAYOUT, 4)
    with pytest.raises(ValueError, match="must be 1-d int64"):
        build_results(pooled.astype(np.float64), PLAN, 4)


# --- nothing is written -------------------------------------------------------------------


def test_simulate_refuses_cleanly_and_writes_nothing(
    pooled: np.ndarray,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    CORRUPTIONS["drugs do not sum to patients"][0](pooled)
    monkeypatch.setattr(
        simulate_command, "pool_centre_summaries", lambda folders, plan: (pooled, 4)
    )
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    folders = [str(folder) for folder in demo_folders()]
    code = coordinator_main(["simulate", *folders, "--out", str(out_dir / "results.json")])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.err.startswith(f"sscjak-coordinator: error: {HEAD}")
    assert "drugs counts add up to 166 but cohort.patients is 165" in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""
    assert list(out_dir.iterdir()) == []


# --- end to end: a malicious node in a secure round ---------------------------------------


def test_a_malicious_node_in_a_secure_round_is_refused(tmp_path: Path) -> None:
    """One of three nodes sends a corrupted vector; the round cannot tell, the checks can."""
    folders = demo_folders()[:3]
    honest = dict(zip(folders, centre_summaries(folders, PLAN), strict=True))
    liar = folders[1]

    def summarise(folder: Path, _plan: Plan) -> np.ndarray:
        vector = honest[folder].copy()
        if folder == liar:
            LAYOUT.view(vector, "centres")[:] = 0
            element(vector, "change.mrss.12.sums.sum_change")[:] += 1
        return vector

    roster, nodes = prepare_simulated_nodes(folders, PLAN, tmp_path, summarise=summarise)
    transport = InProcessTransport(
        {
            name: functools.partial(answer_payload_in_process, node=node)
            for name, node in nodes.items()
        }
    )
    result = run_secure_analysis(transport, PLAN, roster)
    assert len(result.participants) == 3 and result.excluded == {}
    with pytest.raises(InconsistentPooledSummaryError) as caught:
        build_results(result.pooled, PLAN, len(result.participants))
    problems = caught.value.problems
    assert any("centres is 2 but 3 node(s) took part" in p for p in problems), problems
    assert any(
        p.startswith("change.mrss.12.sums: sum_change = ") and "Σ change·count" in p
        for p in problems
    ), problems
    assert len(problems) == 2, problems


@pytest.mark.parametrize(
    ("segment", "index", "message"),
    [
        ("by.tofacitinib.cohort", 0, "patients of the strata of jaki_drug"),
        ("change.mrss.12.other.histogram", 5, "change.mrss.12.other.histogram holds"),
        ("change.fvc_pct.12.baricitinib.sums", 0, "the strata's n add up to"),
        ("tte.drug_retention.other.events", 3, "tte.drug_retention: events and censorings"),
        ("strata", 0, "strata.tofacitinib = 5 centres, more than the 4 participants"),
    ],
)
def test_stratified_and_time_to_event_segments_are_checked(
    segment: str, index: int, message: str
) -> None:
    from sscjak.coordinator.federation.in_process import pool_centre_summaries
    from sscjak.coordinator.results.pooled_consistency import consistency_problems
    from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders, demo_plan

    plan = demo_plan()
    pooled, nodes = pool_centre_summaries(list(demo_centre_folders().values()), plan)
    layout = SummaryLayout.for_plan(plan)
    assert consistency_problems(pooled, layout, nodes) == []
    corrupted = pooled.copy()
    layout.view(corrupted, segment)[index] += 1
    assert any(message in problem for problem in consistency_problems(corrupted, layout, nodes))
