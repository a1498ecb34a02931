"""The vectorised derivation equals the plain per-patient reading of docs/derivation.md."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from random_cohort import random_cohort
from reference_derivation import derive_reference

from sscjak.node.summarise.derivation import derive_cohort
from sscjak.shared.data_contract import EVENT_TYPES
from sscjak.shared.plan import Plan

PLANS = [Plan(), Plan(months=(6, 12, 18, 24, 36), window_months=1.5)]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40), plan=st.sampled_from(PLANS))
def test_vectorised_derivation_matches_reference(seed: int, n: int, plan: Plan) -> None:
    patients, visits, events = random_cohort(seed, n)
    derived = derive_cohort(patients, visits, events, plan)
    reference = derive_reference(patients, visits, events, plan)

    assert derived.followup_days.tolist() == [r.followup_days for r in reference]
    for (outcome, months), cell in derived.cells.items():
        got = {
            int(i): (int(b), int(d))
            for i, b, d in zip(
                cell.patient_index, cell.baseline_units, cell.change_units, strict=True
            )
        }
        expected = {
            i: r.changes[(outcome, months)]
            for i, r in enumerate(reference)
            if (outcome, months) in r.changes
        }
        assert got == expected, (outcome, months)
    assert derived.calcinosis_baseline.tolist() == [r.calcinosis_baseline for r in reference]
    assert derived.calcinosis_improved.tolist() == [r.calcinosis_improved for r in reference]
    assert derived.developed_du.tolist() == [r.developed_du for r in reference]
    assert derived.on_gc_at_baseline.tolist() == [r.on_gc_at_baseline for r in reference]
    for event_type in EVENT_TYPES:
        assert derived.events_on_treatment[event_type].tolist() == [
            r.events[event_type] for r in reference
        ]
