"""A malicious coordinator tries to isolate one centre's summary, and fails every way.

Any two unmasked sums over participant sets that differ by one centre give that
centre's whole vector. Each test plays one way of getting two such sums — reruns,
subsets, one nonce served to two sets, twin plans, plans sharing a segment, a slow
centre's late answer, a data update — and asserts that the nodes never let it happen.
"""

from __future__ import annotations

import functools
import itertools
from pathlib import Path

import numpy as np
import pytest
from malicious_coordinator import MaliciousCoordinator

from sscjak.coordinator.federation.secure_round import (
    InProcessTransport,
    SecureRoundError,
    run_secure_analysis,
)
from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.release_epoch import new_epoch, write_epoch
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.shared.plan import Plan
from sscjak.shared.protocol import REFUSAL_KIND, decode_reply
from sscjak.shared.secure_aggregation import sum_masked
from sscjak.shared.summary_layout import SummaryLayout

LUNG = Plan(title="lung", outcomes=("fvc_pct", "dlco_pct"), months=(12,))
LUNG_TWIN = Plan(title="lung, same vector", outcomes=("fvc_pct", "dlco_pct"), months=(12,))
SKIN = Plan(title="skin", outcomes=("mrss",), months=(12,))


class Study:
    """In-process centres with known summaries, LUNG, LUNG_TWIN and SKIN approved."""

    def __init__(self, root: Path, count: int) -> None:
        rng = np.random.default_rng(count)
        self.folders = [root / "data" / f"centre-{chr(ord('a') + i)}" for i in range(count)]
        for folder in self.folders:
            folder.mkdir(parents=True)
            (folder / "patients.csv").write_text("version 1\n", encoding="utf-8")
        self.vectors = {
            (folder.name, plan.sha256): rng.integers(
                0, 1000, SummaryLayout.for_plan(plan).length, dtype=np.int64
            )
            for folder in self.folders
            for plan in (LUNG, LUNG_TWIN, SKIN)
        }
        # the twin releases the identical vector, the cohort block is shared by all plans
        for folder in self.folders:
            self.vectors[folder.name, LUNG_TWIN.sha256] = self.vectors[folder.name, LUNG.sha256]

        def summarise(folder: Path, plan: Plan) -> np.ndarray:
            return self.vectors[folder.name, plan.sha256]

        self.roster, self.nodes = prepare_simulated_nodes(
            self.folders, LUNG, root / "state", summarise=summarise
        )
        for node in self.nodes.values():
            node.approvals.record(LUNG_TWIN, self.roster)
            node.approvals.record(SKIN, self.roster)
        self.names = tuple(sorted(self.nodes))
        self.coordinator = MaliciousCoordinator(self.nodes, self.roster)

    def pooled(self, plan: Plan, names: tuple[str, ...]) -> np.ndarray:
        return sum(self.vectors[name, plan.sha256] for name in names)

    def without(self, name: str) -> tuple[str, ...]:
        return tuple(n for n in self.names if n != name)


def test_four_triples_of_a_four_centre_study_unmask_at_most_one_set(tmp_path: Path) -> None:
    """Sums over the four triples would give every centre's vector (4 equations)."""
    study = Study(tmp_path, 4)
    unmasked = {}
    for triple in itertools.combinations(study.names, 3):
        total = study.coordinator.unmasked_sum(LUNG, triple)
        if total is not None:
            np.testing.assert_array_equal(total, study.pooled(LUNG, triple))
            unmasked[triple] = total
    assert len(unmasked) == 1
    assert all("one participant set per epoch" in r for r in study.coordinator.refusals)


def test_one_nonce_served_to_two_sets_never_isolates_the_seventh_centre(
    tmp_path: Path,
) -> None:
    """Sum over all seven, then A,B,C told {A,B,C} and D,E,F told {D,E,F} under one nonce."""
    study = Study(tmp_path, 7)
    everyone = study.coordinator.unmasked_sum(LUNG, study.names)
    np.testing.assert_array_equal(everyone, study.pooled(LUNG, study.names))
    first, second = study.names[:3], study.names[3:6]
    told = {name: first for name in first} | {name: second for name in second}
    nonce, summaries = study.coordinator.summaries(LUNG, told)
    assert {r["kind"] for r in summaries.values()} == {REFUSAL_KIND}
    seeds = study.coordinator.seeds(LUNG, told, nonce)
    assert {r["kind"] for r in seeds.values()} == {REFUSAL_KIND}


def test_one_nonce_served_to_two_sets_before_any_result_unmasks_at_most_one(
    tmp_path: Path,
) -> None:
    """The split first: the two subset sums, then the whole set, would give G's vector."""
    study = Study(tmp_path, 7)
    first, second = study.names[:3], study.names[3:6]
    told = {name: first for name in first} | {name: second for name in second}
    coordinator = study.coordinator
    # each subset leaves out four of the seven centres: every centre's policy refuses it
    _, summaries = coordinator.summaries(LUNG, told)
    assert all("max_missing_centres" in r["reason"] for r in summaries.values())
    # even centres whose policy allows such small sets never let the whole set follow
    for node in study.nodes.values():
        (node.state_dir / "policy.toml").write_text("max_missing_centres = 4\n")
    nonce, summaries = coordinator.summaries(LUNG, told)
    seeds = coordinator.seeds(LUNG, told, nonce)
    sums = [
        coordinator.unmask({n: summaries[n] for n in group}, {n: seeds[n] for n in group})
        for group in (first, second)
    ]
    np.testing.assert_array_equal(sums[0], study.pooled(LUNG, first))
    np.testing.assert_array_equal(sums[1], study.pooled(LUNG, second))
    assert coordinator.unmasked_sum(LUNG, study.names) is None


def test_centres_colluding_with_the_coordinator_never_isolate_an_honest_centre(
    tmp_path: Path,
) -> None:
    """Two centres D, E collude: their vectors are known and their nodes reveal for any set.

    Sets {A, D, E}, {B, D, E}, {C, D, E} would each give one honest centre's vector as the
    sum minus D's and E's. The honest centres refuse sets that leave out more than one
    roster centre, and pin the first set they reveal for: every set the coalition can
    unmask holds at least two honest centres.
    """
    study = Study(tmp_path, 5)
    honest, colluders = study.names[:3], study.names[3:]
    unmasked = []
    for size in (3, 4):
        for members in itertools.combinations(honest, size - len(colluders)):
            for name in colluders:  # colluding nodes ignore their own epoch
                write_epoch(study.nodes[name].ledger.directory, new_epoch("steward"))
            participants = tuple(sorted((*members, *colluders)))
            if study.coordinator.unmasked_sum(LUNG, participants) is not None:
                unmasked.append(set(members))
    assert unmasked, "the coalition got no sum at all: the test shows nothing"
    assert all(len(members) >= 2 for members in unmasked)
    assert any("max_missing_centres" in reason for reason in study.coordinator.refusals)


def test_masks_bound_to_one_set_do_not_cancel_in_another(tmp_path: Path) -> None:
    """Under one nonce, nodes told different sets hold masks that never cancel."""
    study = Study(tmp_path, 4)
    a, b, c, d = study.names
    told = {a: (a, b, c), b: (a, b, c, d), c: (a, b, c)}
    _, summaries = study.coordinator.summaries(LUNG, told)
    masked = [decode_reply(r).masked_vector() for r in summaries.values()]
    plain = study.pooled(LUNG, (a, b, c))
    assert np.count_nonzero(sum_masked(masked) == plain) < 5


@pytest.mark.parametrize("second_plan", [LUNG_TWIN, SKIN, LUNG])
def test_a_second_plan_or_rerun_over_a_smaller_set_is_refused(
    tmp_path: Path, second_plan: Plan
) -> None:
    """LUNG over S, then a twin, a plan sharing the cohort block, or LUNG again over S∖{D}."""
    study = Study(tmp_path, 4)
    assert study.coordinator.unmasked_sum(LUNG, study.names) is not None
    fewer = study.without(study.names[-1])
    assert study.coordinator.unmasked_sum(second_plan, fewer) is None
    assert "one participant set per epoch" in study.coordinator.refusals[-1]
    # over the same set every plan still runs: identical segments give identical sums
    again = study.coordinator.unmasked_sum(second_plan, study.names)
    np.testing.assert_array_equal(again, study.pooled(second_plan, study.names))


def test_masked_summaries_alone_never_give_the_sum(tmp_path: Path) -> None:
    """There is no one-exchange mode to fall back to: without every seed the sum is noise."""
    study = Study(tmp_path, 4)
    _, summaries = study.coordinator.summaries(LUNG, {n: study.names for n in study.names})
    masked = sum_masked(decode_reply(r).masked_vector() for r in summaries.values())
    assert np.count_nonzero(masked == study.pooled(LUNG, study.names)) < 5
    # asking for the old one-exchange mode is a malformed request
    request = dict(next(iter(summaries.values())))
    request = {
        "kind": "sscjak.analysis/2",
        "plan_sha256": LUNG.sha256,
        "plan_toml": LUNG.canonical_toml,
        "roster_sha256": study.roster.sha256,
        "participants": list(study.names),
        "nonce": "ab" * 32,
        "attempt": 1,
        "unmasking": "pairwise",
    }
    reply = handle_analysis_request(request, study.nodes[study.names[0]])
    assert reply["kind"] == REFUSAL_KIND and "unexpected keys ['unmasking']" in reply["reason"]


def test_seeds_of_all_but_one_centre_leave_the_sum_masked(tmp_path: Path) -> None:
    study = Study(tmp_path, 4)
    told = {n: study.names for n in study.names}
    nonce, summaries = study.coordinator.summaries(LUNG, told)
    seeds = study.coordinator.seeds(LUNG, {n: study.names for n in study.names[:-1]}, nonce)
    partial = study.coordinator.unmask(summaries, seeds)
    assert np.count_nonzero(partial == study.pooled(LUNG, study.names)) < 5


def test_a_slow_centres_late_answer_is_worthless(tmp_path: Path) -> None:
    """Honest rerun without a slow centre; its late answer to attempt 1 unmasks nothing."""
    study = Study(tmp_path, 4)
    slow = study.names[-1]
    transport = InProcessTransport(
        {
            n: functools.partial(handle_analysis_request, node=node)
            for n, node in study.nodes.items()
        }
    )
    transport.unreachable.add(slow)
    result = run_secure_analysis(transport, LUNG, study.roster)
    assert result.participants == list(study.without(slow)) and result.attempts == 2
    first_attempt = transport.sent[0]
    # the slow centre answers attempt 1 late; the coordinator now holds every masked reply
    late = handle_analysis_request(first_attempt[slow], study.nodes[slow])
    summaries = {
        name: handle_analysis_request(payload, study.nodes[name])
        for name, payload in first_attempt.items()
        if name != slow
    }
    assert {r["kind"] for r in summaries.values()} == {REFUSAL_KIND}  # replayed nonce
    nonce = decode_reply(late).nonce
    seeds = study.coordinator.seeds(LUNG, {n: study.names for n in study.names}, nonce)
    refused = [n for n, r in seeds.items() if r["kind"] == REFUSAL_KIND]
    assert set(study.without(slow)) <= set(refused)


def test_a_data_update_within_an_epoch_is_refused(tmp_path: Path) -> None:
    """Same set, before and after one centre's data changed, would give the change."""
    study = Study(tmp_path, 4)
    assert study.coordinator.unmasked_sum(LUNG, study.names) is not None
    changed = study.names[0]
    (study.folders[0] / "patients.csv").write_text("version 2\n", encoding="utf-8")
    assert study.coordinator.unmasked_sum(SKIN, study.names) is None
    assert "data changed" in study.coordinator.refusals[-1]
    assert changed in study.names


def test_only_the_stewards_new_epoch_allows_another_set(tmp_path: Path) -> None:
    study = Study(tmp_path, 5)
    assert study.coordinator.unmasked_sum(LUNG, study.names) is not None
    fewer = study.without(study.names[-1])
    assert study.coordinator.unmasked_sum(LUNG, fewer) is None
    for name in fewer:
        write_epoch(study.nodes[name].ledger.directory, new_epoch("steward", fewer))
    np.testing.assert_array_equal(
        study.coordinator.unmasked_sum(LUNG, fewer), study.pooled(LUNG, fewer)
    )
    # and the old set is now refused by the centres that moved on
    assert study.coordinator.unmasked_sum(LUNG, study.names) is None


def test_reveals_out_of_order_or_for_another_set_are_refused(tmp_path: Path) -> None:
    study = Study(tmp_path, 4)
    told = {n: study.names for n in study.names}
    nonce, _ = study.coordinator.summaries(LUNG, told)
    never_answered = study.coordinator.seeds(LUNG, told, "cd" * 32)
    assert all("did not answer that request" in r["reason"] for r in never_answered.values())
    fewer = study.without(study.names[-1])
    other_set = study.coordinator.seeds(LUNG, {n: fewer for n in fewer}, nonce)
    assert all("participant set or roster differs" in r["reason"] for r in other_set.values())
    other_plan = study.coordinator.seeds(SKIN, told, nonce)
    assert all("did not answer that request" in r["reason"] for r in other_plan.values())


def test_a_wrong_seed_is_attributed_to_its_node(tmp_path: Path) -> None:
    """A node revealing another seed than it masked with is named, the sum not written."""
    study = Study(tmp_path, 4)
    liar = study.names[1]
    handlers = {
        n: functools.partial(handle_analysis_request, node=node) for n, node in study.nodes.items()
    }

    def wrong_seed(payload: dict) -> dict:
        reply = handlers[liar](payload)
        if "self_mask_seed" in reply:
            reply = dict(reply, self_mask_seed=bytes(32))
        return reply

    transport = InProcessTransport({**handlers, liar: wrong_seed})
    with pytest.raises(SecureRoundError, match=f"{liar}: revealed a self-mask seed that does not"):
        run_secure_analysis(transport, LUNG, study.roster)
