"""The node's guards: every bad request is refused with a reason and an audit line."""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.audit_log import summary_digest
from sscjak.node.guard.node_context import NodeContext
from sscjak.node.guard.release_epoch import new_epoch, write_epoch
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.protocol import (
    ANALYSIS_REPLY_KIND,
    REFUSAL_KIND,
    UNMASK_REPLY_KIND,
    UNMASK_REQUEST_KIND,
    AnalysisRequest,
    decode_reply,
    encode_request,
)
from sscjak.shared.roster import Roster, RosterMember
from sscjak.shared.secure_aggregation import (
    remove_self_masks,
    self_mask_commitment,
    sum_masked,
)
from sscjak.shared.summary_layout import SummaryLayout

PLAN = default_plan()
LAYOUT = SummaryLayout.for_plan(PLAN)


class Federation:
    """Four simulated nodes with known (random) summary vectors."""

    def __init__(self, root: Path, count: int = 4, **settings: object) -> None:
        rng = np.random.default_rng(count)
        self.vectors: dict[str, np.ndarray] = {}
        folders = [root / "data" / f"centre-{i}" for i in range(count)]

        def summarise(folder: Path, plan: Plan) -> np.ndarray:
            return self.vectors[folder.name]

        for folder in folders:
            self.vectors[folder.name] = rng.integers(0, 100, LAYOUT.length, dtype=np.int64)
        self.roster, self.nodes = prepare_simulated_nodes(
            folders, PLAN, root / "state", summarise=summarise, **settings
        )

    def request(self, **changes: object) -> dict:
        participants = changes.pop("participants", tuple(self.nodes))
        fields = {
            "plan_sha256": PLAN.sha256,
            "plan_toml": PLAN.canonical_toml,
            "roster_sha256": self.roster.sha256,
            "participants": tuple(sorted(participants)),
            "nonce": secrets.token_hex(32),
            "attempt": 1,
        }
        fields.update(changes)
        return encode_request(AnalysisRequest(**fields))

    def audit(self, name: str) -> list[dict]:
        return list(self.nodes[name].audit_log.entries())


@pytest.fixture
def federation(tmp_path: Path) -> Federation:
    return Federation(tmp_path)


def _refusal_reason(reply: dict) -> str:
    assert reply["kind"] == REFUSAL_KIND, reply
    return str(reply["reason"])


def test_all_nodes_answer_and_the_unmasked_sum_is_the_plain_sum(federation: Federation) -> None:
    request = federation.request()
    replies = {n: handle_analysis_request(request, node) for n, node in federation.nodes.items()}
    assert all(r["kind"] == ANALYSIS_REPLY_KIND for r in replies.values())
    decoded = [decode_reply(r) for r in replies.values()]
    masked_sum = sum_masked(d.masked_vector() for d in decoded)
    plain = sum(federation.vectors.values())
    assert np.count_nonzero(masked_sum == plain) < 5  # the self-masks are still on
    seeds = [
        decode_reply(handle_analysis_request(_unmask(federation, request), node))
        for node in federation.nodes.values()
    ]
    for reply, seed in zip(decoded, seeds, strict=True):
        assert self_mask_commitment(seed.self_mask_seed) == reply.self_mask_commitment
    pooled = remove_self_masks(masked_sum, (seed.self_mask_seed for seed in seeds))
    np.testing.assert_array_equal(pooled, plain)
    for name, reply in replies.items():
        assert len(reply["masked"]) == 8 * LAYOUT.length
        masked = np.frombuffer(reply["masked"], "<u8").view(np.int64)
        assert not np.array_equal(masked, federation.vectors[name])
        answer, reveal = federation.audit(name)
        assert answer["event"] == "analysis-reply"
        assert answer["summary_sha256"] == summary_digest(federation.vectors[name])
        assert reveal["event"] == "self-mask-revealed"
        assert reply["self_mask_commitment"] not in json.dumps([answer, reveal])


def test_node_outside_the_participant_set_refuses(federation: Federation) -> None:
    others = [n for n in federation.nodes if n != "centre-0"]
    reply = handle_analysis_request(
        federation.request(participants=others), federation.nodes["centre-0"]
    )
    assert "not in the participant set" in _refusal_reason(reply)


def test_participant_set_below_three_is_refused(federation: Federation) -> None:
    reply = handle_analysis_request(
        federation.request(participants=("centre-0", "centre-1")), federation.nodes["centre-0"]
    )
    assert "below the minimum of 3" in _refusal_reason(reply)


def test_participant_outside_the_pinned_roster_is_refused(federation: Federation) -> None:
    reply = handle_analysis_request(
        federation.request(participants=("centre-0", "centre-1", "sock-puppet")),
        federation.nodes["centre-0"],
    )
    assert "outside the approved roster: sock-puppet" in _refusal_reason(reply)


def test_changed_roster_hash_is_refused(federation: Federation) -> None:
    # the coordinator swapped centre-3's key for its own: the roster hash changes
    forged = federation.roster.with_member(
        RosterMember("centre-3", hashlib.sha256(b"coordinator's key").hexdigest())
    )
    assert forged.sha256 != federation.roster.sha256
    reply = handle_analysis_request(
        federation.request(roster_sha256=forged.sha256), federation.nodes["centre-0"]
    )
    assert "roster changed" in _refusal_reason(reply)


def test_unapproved_plan_is_refused(federation: Federation) -> None:
    other = Plan(min_cell=10)
    reply = handle_analysis_request(
        federation.request(plan_sha256=other.sha256, plan_toml=other.canonical_toml),
        federation.nodes["centre-0"],
    )
    assert "not approved" in _refusal_reason(reply)


def test_plan_text_not_matching_its_hash_is_refused(federation: Federation) -> None:
    tampered = PLAN.canonical_toml.replace("min_cell = 5", "min_cell = 1")
    reply = handle_analysis_request(
        federation.request(plan_toml=tampered), federation.nodes["centre-0"]
    )
    assert "does not match the plan hash" in _refusal_reason(reply)


def test_replayed_nonce_is_refused(federation: Federation) -> None:
    node = federation.nodes["centre-0"]
    request = federation.request()
    assert handle_analysis_request(request, node)["kind"] == ANALYSIS_REPLY_KIND
    assert "already used" in _refusal_reason(handle_analysis_request(request, node))
    # a fresh node context over the same state directory remembers it too
    again = NodeContext(node.name, node.data_folder, node.state_dir, summarise=node.summarise)
    assert "already used" in _refusal_reason(handle_analysis_request(request, again))


def test_every_answer_is_remembered_with_a_fresh_seed(tmp_path: Path) -> None:
    federation = Federation(tmp_path)
    node = federation.nodes["centre-0"]
    for _ in range(3):
        assert handle_analysis_request(federation.request(), node)["kind"] == ANALYSIS_REPLY_KIND
    answered = node.ledger.answers(PLAN.sha256)
    assert len(answered) == 3
    assert all(row["participants"] == sorted(federation.nodes) for row in answered)
    assert len({row["self_mask_seed"] for row in answered}) == 3
    ledger_files = list(node.ledger.directory.iterdir())
    assert ledger_files and all(path.stat().st_mode & 0o077 == 0 for path in ledger_files)


def test_node_whose_key_differs_from_the_pinned_one_refuses(federation: Federation) -> None:
    node = federation.nodes["centre-0"]
    roster = federation.roster.with_member(
        RosterMember("centre-0", hashlib.sha256(b"another key").hexdigest())
    )
    node.approvals.record(PLAN, roster)
    reply = handle_analysis_request(federation.request(roster_sha256=roster.sha256), node)
    assert "key is not the one pinned" in _refusal_reason(reply)


def test_failing_centre_data_gives_a_refusal_not_an_exception(tmp_path: Path) -> None:
    federation = Federation(tmp_path)

    def broken(folder: Path, plan: Plan) -> np.ndarray:
        raise ValueError("patients.csv row 7: patient_id SECRET-ID duplicated")

    node = federation.nodes["centre-1"]
    broken_node = NodeContext(node.name, node.data_folder, node.state_dir, summarise=broken)
    reason = _refusal_reason(handle_analysis_request(federation.request(), broken_node))
    assert "could not be summarised" in reason
    assert "SECRET-ID" not in reason
    assert "SECRET-ID" not in broken_node.audit_log.path.read_text()


def test_wrong_length_summary_is_refused(tmp_path: Path) -> None:
    federation = Federation(tmp_path)
    node = federation.nodes["centre-1"]
    short = NodeContext(
        node.name,
        node.data_folder,
        node.state_dir,
        summarise=lambda folder, plan: np.zeros(5, dtype=np.int64),
    )
    assert "failed" in _refusal_reason(handle_analysis_request(federation.request(), short))


@pytest.mark.parametrize(
    "payload",
    [
        None,
        "sscjak.analysis/1",
        {},
        {"kind": "sscjak.analysis/9"},
        {"kind": "sscjak.analysis/1", "nonce": 5},
        {"kind": ["sscjak.analysis/1"]},
    ],
)
def test_malformed_payloads_are_refused_and_logged(federation: Federation, payload: object) -> None:
    node = federation.nodes["centre-2"]
    reason = _refusal_reason(handle_analysis_request(payload, node))  # type: ignore[arg-type]
    assert reason.startswith("malformed request")
    (entry,) = federation.audit("centre-2")
    assert entry["event"] == "refusal" and entry["reason"] == reason


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("attempt", "1"),
        ("participants", "centre-0,centre-1,centre-2"),
        ("nonce", "00" * 31),
        ("plan_toml", "x" * 70_000),
        ("masked", b"\x00" * 8),
    ],
)
def test_wrong_types_lengths_and_sizes_are_refused(
    federation: Federation, key: str, value: object
) -> None:
    payload = {**federation.request(), key: value}
    node = federation.nodes["centre-2"]
    assert _refusal_reason(handle_analysis_request(payload, node)).startswith("malformed")
    assert [e["event"] for e in federation.audit("centre-2")] == ["refusal"]


_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=50),
    st.binary(max_size=50),
    st.lists(st.text(max_size=20), max_size=6),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_dicts_never_raise(federation: Federation, data: st.DataObject) -> None:
    node = federation.nodes["centre-3"]
    base = federation.request()
    payload = data.draw(
        st.one_of(
            st.dictionaries(st.text(max_size=12), _junk, max_size=8),
            st.builds(lambda k, v: {**base, k: v}, st.sampled_from(sorted(base)), _junk),
        )
    )
    before = len(federation.audit("centre-3"))
    reply = handle_analysis_request(payload, node)
    assert reply["kind"] in (REFUSAL_KIND, ANALYSIS_REPLY_KIND)
    assert len(federation.audit("centre-3")) == before + 1
    json.dumps({k: v for k, v in reply.items() if k != "masked"})


def test_roster_from_another_study_cannot_be_used(tmp_path: Path) -> None:
    first = Federation(tmp_path / "one")
    second = Federation(tmp_path / "two")
    mixed = Roster(first.roster.members[:2] + second.roster.members[2:])
    reply = handle_analysis_request(
        first.request(roster_sha256=mixed.sha256), first.nodes["centre-0"]
    )
    assert "roster changed" in _refusal_reason(reply)


def test_a_smaller_set_is_answered_before_any_result_and_refused_after(
    federation: Federation,
) -> None:
    node = federation.nodes["centre-0"]
    everyone = sorted(federation.nodes)
    fewer = [n for n in everyone if n != "centre-3"]
    # before any reveal, both sets are answered: the answers stay self-masked
    first = federation.request()
    assert handle_analysis_request(first, node)["kind"] == ANALYSIS_REPLY_KIND
    smaller = federation.request(participants=fewer, attempt=2)
    assert handle_analysis_request(smaller, node)["kind"] == ANALYSIS_REPLY_KIND
    # the first reveal pins the epoch to its set; the other set's seed is never revealed
    assert handle_analysis_request(_unmask(federation, smaller), node)["kind"] == (
        UNMASK_REPLY_KIND
    )
    assert "one participant set per epoch" in _refusal_reason(
        handle_analysis_request(_unmask(federation, first), node)
    )
    assert "one participant set per epoch" in _refusal_reason(
        handle_analysis_request(federation.request(), node)
    )
    assert node.ledger.epoch().participants == tuple(fewer)


def test_the_same_nonce_sent_twice_at_once_is_answered_once(federation: Federation) -> None:
    from concurrent.futures import ThreadPoolExecutor

    node = federation.nodes["centre-1"]
    request = federation.request()
    twins = [
        NodeContext(node.name, node.data_folder, node.state_dir, summarise=node.summarise)
        for _ in range(4)
    ]
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda n: handle_analysis_request(request, n), twins))
    kinds = sorted(r["kind"] for r in replies)
    assert kinds == [ANALYSIS_REPLY_KIND] + [REFUSAL_KIND] * 3


def _unmask(federation: Federation, request: dict, **changes: object) -> dict:
    payload = {
        "kind": UNMASK_REQUEST_KIND,
        "plan_sha256": request["plan_sha256"],
        "roster_sha256": request["roster_sha256"],
        "nonce": request["nonce"],
        "participants": list(request["participants"]),
    }
    payload.update(changes)
    return payload


def test_self_mask_seed_is_revealed_only_for_the_answered_set(
    federation: Federation,
) -> None:
    node = federation.nodes["centre-0"]
    request = federation.request()
    assert "did not answer that request" in _refusal_reason(
        handle_analysis_request(_unmask(federation, request), node)
    )
    answer = handle_analysis_request(request, node)
    assert answer["kind"] == ANALYSIS_REPLY_KIND
    other_set = [n for n in federation.nodes if n != "centre-3"]
    assert "participant set or roster differs" in _refusal_reason(
        handle_analysis_request(_unmask(federation, request, participants=other_set), node)
    )
    reply = handle_analysis_request(_unmask(federation, request), node)
    assert reply["kind"] == UNMASK_REPLY_KIND and len(reply["self_mask_seed"]) == 32
    assert self_mask_commitment(reply["self_mask_seed"]) == answer["self_mask_commitment"]
    # asked again (a lost reply), the same seed: nothing new is revealed
    assert handle_analysis_request(_unmask(federation, request), node) == reply
    assert federation.audit("centre-0")[-1]["event"] == "self-mask-revealed"
    assert reply["self_mask_seed"].hex() not in node.audit_log.path.read_text()


def test_an_answer_of_an_earlier_epoch_stays_masked(federation: Federation) -> None:
    node = federation.nodes["centre-0"]
    request = federation.request()
    assert handle_analysis_request(request, node)["kind"] == ANALYSIS_REPLY_KIND
    write_epoch(node.ledger.directory, new_epoch("steward", tuple(federation.nodes)))
    assert "earlier release epoch" in _refusal_reason(
        handle_analysis_request(_unmask(federation, request), node)
    )


def test_a_request_below_the_centres_policy_is_refused(federation: Federation) -> None:
    node = federation.nodes["centre-0"]
    (node.state_dir / "policy.toml").write_text("min_cell = 10\n", encoding="utf-8")
    reason = _refusal_reason(handle_analysis_request(federation.request(), node))
    assert "min_cell" in reason and "10" in reason


def test_an_unreadable_policy_refuses_every_request(federation: Federation) -> None:
    node = federation.nodes["centre-0"]
    (node.state_dir / "policy.toml").write_text("min_cell = 1\n", encoding="utf-8")
    reason = _refusal_reason(handle_analysis_request(federation.request(), node))
    assert reason.startswith("this centre's disclosure policy cannot be read")
    assert "min_cell" in reason


def test_data_changing_while_being_read_is_refused(tmp_path: Path) -> None:
    federation = Federation(tmp_path)
    node = federation.nodes["centre-2"]
    node.data_folder.mkdir(parents=True, exist_ok=True)
    (node.data_folder / "visits.csv").write_text("before\n", encoding="utf-8")

    def summarise_while_the_export_is_replaced(folder: Path, plan: Plan) -> np.ndarray:
        (folder / "visits.csv").write_text("after\n", encoding="utf-8")
        return federation.vectors[folder.name]

    replaced = summarise_while_the_export_is_replaced
    changing = NodeContext(node.name, node.data_folder, node.state_dir, summarise=replaced)
    reason = _refusal_reason(handle_analysis_request(federation.request(), changing))
    assert "changed while they were being read" in reason
    assert node.ledger.answers() == []


def test_a_nonce_answered_twice_is_never_unmasked(federation: Federation) -> None:
    """A nonce forgotten by the bounded ledger and replayed: neither answer is revealed."""
    node = federation.nodes["centre-0"]
    request = federation.request()
    assert handle_analysis_request(request, node)["kind"] == ANALYSIS_REPLY_KIND
    (answer,) = node.ledger.answers()
    node.ledger.record_answer(
        **{k: v for k, v in answer.items() if k != "self_mask_seed"},
        self_mask_seed=bytes(32),
    )
    assert "answered more than once" in _refusal_reason(
        handle_analysis_request(_unmask(federation, request), node)
    )
    # and a nonce still among the remembered answers is refused as a replay
    (node.ledger.directory / "seen_nonces.txt").unlink()
    assert "already used" in _refusal_reason(handle_analysis_request(request, node))
