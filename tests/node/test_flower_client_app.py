"""Tests of sscjak.node.flower.client_app: Flower messages in, sscjak payloads out, no crash."""

from __future__ import annotations

import secrets
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sscjak.node.flower.client_app import answer_message, build_client_app
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.shared.flower_payload import PING_REPLY_KIND, message_content, payload_from_message
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.protocol import (
    ANALYSIS_REPLY_KIND,
    ANALYSIS_REQUEST_KIND,
    REFUSAL_KIND,
    UNMASK_REPLY_KIND,
    AnalysisRequest,
    UnmaskRequest,
    decode_reply,
    encode_request,
    encode_unmask_request,
)
from sscjak.shared.secure_aggregation import self_mask_commitment
from sscjak.shared.summary_layout import SummaryLayout

PLAN = default_plan()
LAYOUT = SummaryLayout.for_plan(PLAN)


@pytest.fixture(autouse=True)
def flower_task_identity():
    # Flower stamps messages with the identity of the running task; a test is none.
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1


@pytest.fixture
def nodes(tmp_path: Path):
    folders = [tmp_path / "data" / f"centre-{i}" for i in range(3)]
    rng = np.random.default_rng(3)
    vectors = {f.name: rng.integers(0, 50, LAYOUT.length, dtype=np.int64) for f in folders}

    def summarise(folder: Path, plan: Plan) -> np.ndarray:
        return vectors[folder.name]

    roster, contexts = prepare_simulated_nodes(
        folders, PLAN, tmp_path / "state", summarise=summarise
    )
    return roster, contexts


def flower_context() -> Context:
    return Context(run_id=1, node_id=1, node_config={}, state=RecordDict(), run_config={})


def request_message(roster, message_type: str = "query") -> Message:
    request = AnalysisRequest(
        plan_sha256=PLAN.sha256,
        plan_toml=PLAN.canonical_toml,
        roster_sha256=roster.sha256,
        participants=tuple(roster.names),
        nonce=secrets.token_hex(32),
        attempt=1,
    )
    return Message(
        message_content(encode_request(request)), dst_node_id=2, message_type=message_type
    )


def answer(node, message: Message) -> dict:
    reply = answer_message(build_client_app(node), node, message, flower_context())
    return payload_from_message(reply)


def test_an_analysis_message_gets_a_masked_reply(nodes):
    roster, contexts = nodes
    node = contexts[roster.names[0]]
    payload = answer(node, request_message(roster))
    assert payload["kind"] == ANALYSIS_REPLY_KIND
    reply = decode_reply(payload)
    assert reply.node == node.name
    assert len(reply.masked) == 8 * LAYOUT.length
    assert len(reply.self_mask_commitment) == 64


def test_an_unmask_message_for_the_answered_request_gets_the_committed_seed(nodes):
    roster, contexts = nodes
    node = contexts[roster.names[0]]
    message = request_message(roster)
    request = payload_from_message(message)
    reply = decode_reply(answer(node, message))
    unmask = UnmaskRequest(
        plan_sha256=request["plan_sha256"],
        roster_sha256=request["roster_sha256"],
        nonce=request["nonce"],
        participants=tuple(request["participants"]),
    )
    content = message_content(encode_unmask_request(unmask))
    payload = answer(node, Message(content, dst_node_id=2, message_type="query"))
    assert payload["kind"] == UNMASK_REPLY_KIND
    seed = decode_reply(payload)
    assert seed.node == node.name and seed.nonce == request["nonce"]
    assert self_mask_commitment(seed.self_mask_seed) == reply.self_mask_commitment
    assert [e["event"] for e in node.audit_log.entries()] == [
        "analysis-reply",
        "self-mask-revealed",
    ]


def test_a_ping_reads_no_data_and_logs_nothing(nodes):
    roster, contexts = nodes
    node = contexts[roster.names[0]]
    message = Message(message_content({"kind": "x"}), dst_node_id=2, message_type="query.ping")
    assert answer(node, message) == {"kind": PING_REPLY_KIND, "node": node.name}
    assert list(node.audit_log.entries()) == []


@pytest.mark.parametrize(
    "content",
    [
        RecordDict(),
        RecordDict({"other": ConfigRecord({"kind": ANALYSIS_REQUEST_KIND})}),
        RecordDict({"sscjak": ArrayRecord({"a": Array(np.zeros(3))})}),
        RecordDict({"sscjak": ConfigRecord({"kind": "x"}), "extra": ConfigRecord({"a": 1})}),
        RecordDict({"sscjak": ConfigRecord({"kind": True, "nonce": 1.5})}),
    ],
)
def test_malformed_flower_messages_are_refused_and_logged(nodes, content):
    roster, contexts = nodes
    node = contexts[roster.names[0]]
    payload = answer(node, Message(content, dst_node_id=2, message_type="query"))
    assert payload["kind"] == REFUSAL_KIND
    assert payload["reason"].startswith("malformed request")
    assert list(node.audit_log.entries())[-1]["event"] == "refusal"


def test_a_message_type_the_app_does_not_handle_is_refused(nodes):
    roster, contexts = nodes
    node = contexts[roster.names[0]]
    payload = answer(node, request_message(roster, message_type="train"))
    assert payload["kind"] == REFUSAL_KIND
    assert list(node.audit_log.entries())[-1]["event"] == "refusal"


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.text(min_size=1, max_size=12),
        st.one_of(
            st.integers(-(2**63), 2**63 - 1),
            st.text(max_size=40),
            st.binary(max_size=40),
            st.lists(st.text(max_size=10), max_size=4),
            st.booleans(),
            st.floats(allow_nan=False),
        ),
        max_size=8,
    )
)
def test_random_config_records_never_crash_the_node(nodes, fields):
    roster, contexts = nodes
    node = contexts[roster.names[0]]
    payload = answer(node, Message(message_content(fields), dst_node_id=2, message_type="query"))
    assert payload["kind"] == REFUSAL_KIND


def test_in_process_answers_equal_the_deployed_path_and_cancel(nodes):
    """simulate's path through the ClientApp: replies decode, and their masks cancel."""
    from sscjak.node.flower.client_app import answer_payload_in_process
    from sscjak.shared.secure_aggregation import remove_self_masks, sum_masked

    roster, contexts = nodes
    request = payload_from_message(request_message(roster))
    replies = {name: answer_payload_in_process(request, contexts[name]) for name in roster.names}
    assert all(r["kind"] == ANALYSIS_REPLY_KIND for r in replies.values())
    unmask = encode_unmask_request(
        UnmaskRequest(
            plan_sha256=request["plan_sha256"],
            roster_sha256=request["roster_sha256"],
            nonce=request["nonce"],
            participants=tuple(request["participants"]),
        )
    )
    seeds = {name: answer_payload_in_process(unmask, contexts[name]) for name in roster.names}
    assert all(s["kind"] == UNMASK_REPLY_KIND for s in seeds.values())
    for name in roster.names:
        assert self_mask_commitment(decode_reply(seeds[name]).self_mask_seed) == (
            decode_reply(replies[name]).self_mask_commitment
        )
    masked = sum_masked(decode_reply(r).masked_vector() for r in replies.values())
    expected = sum(contexts[n].summarise(contexts[n].data_folder, PLAN) for n in roster.names)
    assert not np.array_equal(masked, expected)  # the self-masks are still in the sum
    pooled = remove_self_masks(masked, (decode_reply(s).self_mask_seed for s in seeds.values()))
    assert np.array_equal(pooled, expected)
    refused = answer_payload_in_process({"kind": "nonsense"}, contexts[roster.names[0]])
    assert refused["kind"] == REFUSAL_KIND
