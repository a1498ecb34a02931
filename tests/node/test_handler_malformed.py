"""Malformed messages reaching a node: a refusal and an audit line each, never a crash.

Every crafted message of ``tests/support/malformed_messages.py`` (wrong shape or type,
oversized, unknown plan, replayed nonce, wrong message type, garbage bytes) is handed to
the node's own ClientApp as a Flower ``Message`` — the path a deployed node takes — and
its payload to :func:`handle_analysis_request` directly; hypothesis then generates
arbitrary message contents and mutated requests, analysis and unmask alike. After all
of it the node's state is intact: a valid request is answered, its seeds are revealed
for exactly the set that was answered, and the unmasked sum is the plain sum.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.supercore.task_identity import TaskIdentity
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from malformed_messages import (
    PAYLOAD_RECORD,
    REPLAY_REASON,
    UNKNOWN_PLAN_REASON,
    crafted_messages,
    replay_pair,
    valid_request,
    valid_unmask_request,
)

from sscjak.node.flower.client_app import answer_message, build_client_app
from sscjak.node.guard.analysis_handler import handle_analysis_request
from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
from sscjak.shared.flower_payload import message_content, payload_from_message
from sscjak.shared.plan import Plan, default_plan
from sscjak.shared.protocol import (
    ANALYSIS_REPLY_KIND,
    REFUSAL_KIND,
    UNMASK_REPLY_KIND,
    AnalysisReply,
    ProtocolError,
    UnmaskReply,
    decode_node_message,
    decode_reply,
    decode_request,
)
from sscjak.shared.secure_aggregation import remove_self_masks, self_mask_commitment, sum_masked
from sscjak.shared.summary_layout import SummaryLayout

PLAN = default_plan()
LAYOUT = SummaryLayout.for_plan(PLAN)
CASES = crafted_messages(
    node="a", participants=["a", "b", "c"], roster_sha256="0" * 64,
    approved_plan_toml=PLAN.canonical_toml,
)  # fmt: skip
CASE_NAMES = [case.name for case in CASES]


@pytest.fixture(autouse=True)
def flower_task_identity():
    # Flower stamps messages with the identity of the running task; a test is none.
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1


class Nodes:
    """Three approved nodes with known random summaries (no data folders needed)."""

    def __init__(self, root: Path) -> None:
        folders = [root / "data" / f"centre-{i}" for i in range(3)]
        rng = np.random.default_rng(11)
        self.vectors = {f.name: rng.integers(0, 90, LAYOUT.length, dtype=np.int64) for f in folders}

        def summarise(folder: Path, plan: Plan) -> np.ndarray:
            return self.vectors[folder.name]

        self.roster, self.contexts = prepare_simulated_nodes(
            folders, PLAN, root / "state", summarise=summarise
        )
        self.name = self.roster.names[0]
        self.node = self.contexts[self.name]
        self.app = build_client_app(self.node)

    def crafted(self):
        return crafted_messages(
            node=self.name,
            participants=list(self.roster.names),
            roster_sha256=self.roster.sha256,
            approved_plan_toml=PLAN.canonical_toml,
        )

    def send(self, content: RecordDict, message_type: str = "query", name: str | None = None):
        """Hand one Flower message to a node's ClientApp; the reply's payload."""
        context = self.contexts[name or self.name]
        app = self.app if name is None else build_client_app(context)
        message = Message(content, dst_node_id=2, message_type=message_type)
        flower_context = Context(
            run_id=1, node_id=2, node_config={}, state=RecordDict(), run_config={}
        )
        reply = answer_message(app, context, message, flower_context)
        return payload_from_message(reply)

    def audit(self, name: str | None = None) -> list[dict]:
        return list(self.contexts[name or self.name].audit_log.entries())

    def valid(self, nonce: str | None = None) -> dict:
        return valid_request(
            plan_sha256=PLAN.sha256,
            plan_toml=PLAN.canonical_toml,
            roster_sha256=self.roster.sha256,
            participants=list(self.roster.names),
            nonce=nonce,
        )

    def unmask_request(self, request: dict) -> dict:
        """The unmask request (second exchange) for the analysis request ``request``."""
        return valid_unmask_request(
            plan_sha256=request["plan_sha256"],
            roster_sha256=request["roster_sha256"],
            participants=request["participants"],
            nonce=request["nonce"],
        )

    def pooled(self, request: dict) -> np.ndarray:
        """Both exchanges with every node; each seed checked against its commitment."""
        replies = {
            name: decode_reply(self.send(message_content(request), name=name))
            for name in self.roster.names
        }
        assert all(isinstance(reply, AnalysisReply) for reply in replies.values()), replies
        unmask = message_content(self.unmask_request(request))
        seeds = {name: decode_reply(self.send(unmask, name=name)) for name in self.roster.names}
        assert all(isinstance(seed, UnmaskReply) for seed in seeds.values()), seeds
        for name in self.roster.names:
            assert self_mask_commitment(seeds[name].self_mask_seed) == (
                replies[name].self_mask_commitment
            )
        masked = sum_masked(reply.masked_vector() for reply in replies.values())
        # the masked sum alone is noise: the self-masks are still in it
        assert np.count_nonzero(masked == sum(self.vectors.values())) < 5
        return remove_self_masks(masked, (seed.self_mask_seed for seed in seeds.values()))


@pytest.fixture
def nodes(tmp_path: Path) -> Nodes:
    return Nodes(tmp_path)


def assert_refused_and_logged(payload: dict, audit: list[dict], expected_reason: str) -> None:
    assert payload.get("kind") == REFUSAL_KIND, {k: v for k, v in payload.items() if k != "masked"}
    assert expected_reason in payload["reason"], payload["reason"]
    assert "masked" not in payload
    assert audit[-1]["event"] == "refusal"
    assert audit[-1]["reason"] == payload["reason"]


@pytest.mark.parametrize("case_name", CASE_NAMES)
def test_crafted_flower_message_is_refused_and_logged(nodes: Nodes, case_name: str) -> None:
    (case,) = [c for c in nodes.crafted() if c.name == case_name]
    payload = nodes.send(case.content, case.message_type)
    audit = nodes.audit()
    assert len(audit) == 1
    assert_refused_and_logged(payload, audit, case.reason)


@pytest.mark.parametrize("case_name", [c.name for c in CASES if c.message_type == "query"])
def test_crafted_payload_given_to_the_handler_directly_is_refused(
    nodes: Nodes, case_name: str
) -> None:
    (case,) = [c for c in nodes.crafted() if c.name == case_name]
    records = dict(case.content.items())
    record = records.get(PAYLOAD_RECORD)
    payload = (
        {str(k): v for k, v in record.items()}
        if len(records) == 1 and isinstance(record, ConfigRecord)
        else {}
    )
    reply = handle_analysis_request(payload, nodes.node)
    assert_refused_and_logged(reply, nodes.audit(), case.reason)


def test_a_replayed_nonce_is_refused_even_for_an_approved_plan(nodes: Nodes) -> None:
    first, second = replay_pair(
        participants=list(nodes.roster.names),
        roster_sha256=nodes.roster.sha256,
        approved_plan_toml=PLAN.canonical_toml,
    )
    assert_refused_and_logged(
        nodes.send(message_content(first)), nodes.audit(), UNKNOWN_PLAN_REASON
    )
    assert_refused_and_logged(nodes.send(message_content(second)), nodes.audit(), REPLAY_REASON)
    assert len(nodes.audit()) == 2
    # the same valid request with a fresh nonce would have been answered
    assert nodes.send(message_content(nodes.valid()))["kind"] == ANALYSIS_REPLY_KIND
    # and the refused requests left no answer behind whose seed could be revealed
    for refused in (first, second):
        unmask = message_content(nodes.unmask_request(refused))
        assert_refused_and_logged(nodes.send(unmask), nodes.audit(), "did not answer")


def test_after_every_crafted_message_the_node_still_answers_correctly(nodes: Nodes) -> None:
    crafted = nodes.crafted()
    for case in crafted:
        assert nodes.send(case.content, case.message_type)["kind"] == REFUSAL_KIND
    assert [e["event"] for e in nodes.audit()] == ["refusal"] * len(crafted)
    pooled = nodes.pooled(nodes.valid())
    np.testing.assert_array_equal(pooled, sum(nodes.vectors.values()))
    events = [e["event"] for e in nodes.audit()]
    assert events[: len(crafted)] == ["refusal"] * len(crafted)
    assert events[len(crafted) :] == ["analysis-reply", "self-mask-revealed"]


# -- hypothesis ----------------------------------------------------------------------------
_config_scalars = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.binary(max_size=300),
    st.booleans(),
)
_config_values = st.one_of(
    _config_scalars,
    st.lists(st.text(max_size=12), max_size=5),
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=5),
    st.lists(st.binary(max_size=20), max_size=3),
)
_keys = st.one_of(
    st.sampled_from(
        [
            "kind",
            "plan_sha256",
            "plan_toml",
            "roster_sha256",
            "participants",
            "nonce",
            "attempt",
            "unmasking",
            "self_mask_commitment",
            "self_mask_seed",
        ]
    ),
    st.text(min_size=1, max_size=12),
)
_records = st.one_of(
    st.dictionaries(_keys, _config_values, max_size=9).map(ConfigRecord),
    st.dictionaries(st.text(min_size=1, max_size=8), st.floats(allow_nan=False), max_size=3).map(
        MetricRecord
    ),
    st.binary(min_size=8, max_size=64).map(
        lambda b: ArrayRecord({"a": Array(np.frombuffer(b[: len(b) // 8 * 8], dtype="<u8"))})
    ),
)
_message_types = st.sampled_from(
    ["query", "train", "evaluate", "query.ping", "query.other", "train.fit"]
)
_slow = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_slow
@given(
    records=st.dictionaries(
        st.sampled_from(["sscjak", "data", "x"]), _records, min_size=0, max_size=3
    ),
    message_type=_message_types,
)
def test_arbitrary_flower_messages_never_crash_the_node(
    nodes: Nodes, records: dict, message_type: str
) -> None:
    before = len(nodes.audit())
    payload = nodes.send(RecordDict(records), message_type)
    if message_type == "query.ping":  # the liveness probe: no data, nothing to log
        assert payload["kind"] == "sscjak.ping-reply/1"
        assert len(nodes.audit()) == before
        return
    assert payload["kind"] == REFUSAL_KIND  # nothing random is a valid request
    assert len(nodes.audit()) == before + 1
    assert nodes.audit()[-1]["reason"] == payload["reason"]
    json.dumps(nodes.audit()[-1])


@_slow
@given(data=st.data())
def test_mutated_requests_never_crash_the_handler(nodes: Nodes, data: st.DataObject) -> None:
    base = nodes.valid()
    key = data.draw(st.sampled_from(sorted(base)), label="key")
    mutation = data.draw(st.sampled_from(["replace", "drop", "add"]), label="mutation")
    payload = dict(base)
    if mutation == "replace":
        payload[key] = data.draw(_config_values, label="value")
    elif mutation == "drop":
        del payload[key]
    else:
        payload[data.draw(st.text(min_size=1, max_size=12), label="new key")] = data.draw(
            _config_values, label="value"
        )
    before = len(nodes.audit())
    reply = handle_analysis_request(payload, nodes.node)
    assert len(nodes.audit()) == before + 1
    try:
        decode_request(payload)
        well_formed = True
    except ProtocolError:
        well_formed = False
    if reply["kind"] == ANALYSIS_REPLY_KIND:  # only a still-valid request is ever answered
        assert well_formed
        assert payload["plan_toml"] == PLAN.canonical_toml
        assert payload["roster_sha256"] == nodes.roster.sha256
    else:
        assert reply["kind"] == REFUSAL_KIND
        assert not well_formed or "malformed" not in reply["reason"]


_unmask_values = st.one_of(
    _config_values,
    st.sampled_from(["a" * 64, "0" * 64, "", "ab" * 32]),
    st.lists(st.sampled_from(["centre-0", "centre-1", "centre-2", "zz"]), max_size=4),
)


def _audit_lines(nodes: Nodes) -> list[bytes]:
    """The node's audit lines, unparsed: each answer's line is large, parse only the last."""
    return nodes.node.audit_log.path.read_bytes().splitlines()


@pytest.mark.slow
@_slow
@given(data=st.data())
def test_mutated_unmask_requests_reveal_nothing_but_the_answered_seed(
    nodes: Nodes, data: st.DataObject
) -> None:
    """Only an unmask request naming exactly what the node answered gets its seed."""
    request = nodes.valid()
    answer = decode_reply(nodes.send(message_content(request)))
    assert isinstance(answer, AnalysisReply)
    base = nodes.unmask_request(request)
    key = data.draw(st.sampled_from(sorted(base)), label="key")
    mutation = data.draw(st.sampled_from(["replace", "drop", "add", "none"]), label="mutation")
    payload = dict(base)
    if mutation == "replace":
        payload[key] = data.draw(_unmask_values, label="value")
    elif mutation == "drop":
        del payload[key]
    elif mutation == "add":
        payload[data.draw(st.text(min_size=1, max_size=12), label="new key")] = data.draw(
            _config_values, label="value"
        )
    before = len(_audit_lines(nodes))
    reply = handle_analysis_request(payload, nodes.node)
    lines = _audit_lines(nodes)
    assert len(lines) == before + 1
    logged = json.loads(lines[-1])
    if reply["kind"] == UNMASK_REPLY_KIND:  # only the exact unmask request is ever answered
        assert decode_node_message(payload) == decode_node_message(base)
        seed = decode_reply(reply)
        assert isinstance(seed, UnmaskReply)
        assert seed.nonce == request["nonce"]
        assert self_mask_commitment(seed.self_mask_seed) == answer.self_mask_commitment
        assert logged["event"] == "self-mask-revealed"
    else:
        assert reply["kind"] == REFUSAL_KIND
        assert logged["event"] == "refusal" and logged["reason"] == reply["reason"]
        assert mutation != "none", reply["reason"]
