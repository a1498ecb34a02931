"""Protocol messages: round trips and strict rejection of anything malformed."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sscjak.shared.protocol import (
    ANALYSIS_REPLY_KIND,
    ANALYSIS_REQUEST_KIND,
    MAX_PARTICIPANTS,
    MAX_PLAN_TOML_BYTES,
    REFUSAL_KIND,
    UNMASK_REPLY_KIND,
    UNMASK_REQUEST_KIND,
    AnalysisReply,
    AnalysisRequest,
    ProtocolError,
    Refusal,
    UnmaskReply,
    UnmaskRequest,
    check_node_name,
    decode_node_message,
    decode_reply,
    decode_request,
    encode_refusal,
    encode_reply,
    encode_request,
    encode_unmask_reply,
    encode_unmask_request,
)
from sscjak.shared.secure_aggregation import self_mask_commitment

PLAN_TEXT = 'schema = "sscjak.plan/1"\n'
PLAN_HASH = hashlib.sha256(PLAN_TEXT.encode()).hexdigest()
ROSTER_HASH = hashlib.sha256(b"roster").hexdigest()
NONCE = "ab" * 32
SEED = bytes(range(32))
COMMITMENT = self_mask_commitment(SEED)


def _request_payload(**changes: object) -> dict:
    payload = encode_request(
        AnalysisRequest(
            plan_sha256=PLAN_HASH,
            plan_toml=PLAN_TEXT,
            roster_sha256=ROSTER_HASH,
            participants=("a", "b", "c"),
            nonce=NONCE,
            attempt=1,
        )
    )
    payload.update(changes)
    return payload


def test_request_round_trip() -> None:
    payload = _request_payload()
    assert payload["kind"] == ANALYSIS_REQUEST_KIND
    assert all(isinstance(v, str | int | bytes | list) for v in payload.values())
    request = decode_request(payload)
    assert request.participants == ("a", "b", "c")
    assert encode_request(request) == payload


def _reply_payload(**changes: object) -> dict:
    payload = encode_reply(
        AnalysisReply(
            node="a",
            plan_sha256=PLAN_HASH,
            nonce=NONCE,
            masked=bytes(16),
            self_mask_commitment=COMMITMENT,
        )
    )
    payload.update(changes)
    return payload


def _unmask_request_payload(**changes: object) -> dict:
    payload = encode_unmask_request(
        UnmaskRequest(
            plan_sha256=PLAN_HASH,
            roster_sha256=ROSTER_HASH,
            nonce=NONCE,
            participants=("a", "b", "c"),
        )
    )
    payload.update(changes)
    return payload


def _unmask_reply_payload(**changes: object) -> dict:
    payload = encode_unmask_reply(
        UnmaskReply(node="a", plan_sha256=PLAN_HASH, nonce=NONCE, self_mask_seed=SEED)
    )
    payload.update(changes)
    return payload


def test_the_message_kinds_are_the_second_version_of_the_protocol() -> None:
    assert ANALYSIS_REQUEST_KIND == "sscjak.analysis/2"
    assert ANALYSIS_REPLY_KIND == "sscjak.analysis-reply/2"
    assert UNMASK_REQUEST_KIND == "sscjak.unmask/2"
    assert UNMASK_REPLY_KIND == "sscjak.unmask-reply/2"
    assert REFUSAL_KIND == "sscjak.refusal/1"


def test_reply_and_refusal_round_trip() -> None:
    reply = AnalysisReply(
        node="a",
        plan_sha256=PLAN_HASH,
        nonce=NONCE,
        masked=bytes(16),
        self_mask_commitment=COMMITMENT,
    )
    payload = encode_reply(reply)
    assert payload == _reply_payload()
    assert payload["kind"] == ANALYSIS_REPLY_KIND
    assert set(payload) == {
        "kind",
        "node",
        "plan_sha256",
        "nonce",
        "masked",
        "self_mask_commitment",
    }
    assert payload["self_mask_commitment"] == COMMITMENT
    assert all(isinstance(v, str | int | bytes | list) for v in payload.values())
    assert decode_reply(payload) == reply
    assert encode_reply(decode_reply(payload)) == payload
    assert list(reply.masked_vector()) == [0, 0]
    refusal = Refusal(node="b", reason="not approved")
    assert encode_refusal(refusal)["kind"] == REFUSAL_KIND
    assert decode_reply(encode_refusal(refusal)) == refusal


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "sscjak.analysis/1"}, "unknown message kind"),
        ({"kind": "sscjak.analysis/3"}, "unknown message kind"),
        ({"kind": UNMASK_REQUEST_KIND}, "expected"),
        ({"kind": ANALYSIS_REPLY_KIND}, "expected"),
        ({"attempt": "1"}, "attempt must be int"),
        ({"attempt": True}, "attempt must be int"),
        ({"attempt": 0}, "between 1"),
        ({"participants": "a,b,c"}, "participants must be list"),
        ({"participants": ["b", "a", "c"]}, "sorted and distinct"),
        ({"participants": ["a", "a", "c"]}, "sorted and distinct"),
        ({"participants": ["a", "b", 3]}, "must be text"),
        ({"participants": ["a", "b", "../etc"]}, "not a node name"),
        ({"participants": [f"n{i:04d}" for i in range(MAX_PARTICIPANTS + 1)]}, "at most"),
        ({"nonce": "ab" * 31}, "nonce"),
        ({"nonce": "AB" * 32}, "nonce"),
        ({"plan_sha256": "0" * 63}, "plan_sha256"),
        ({"plan_toml": b"bytes"}, "plan_toml must be str"),
        ({"plan_toml": "x" * (MAX_PLAN_TOML_BYTES + 1)}, "too long"),
        ({"plan_toml": "\u00e9" * (MAX_PLAN_TOML_BYTES // 2 + 1)}, "too long"),
        ({"roster_sha256": "0" * 65}, "roster_sha256"),
        ({"extra": "field"}, "unexpected keys"),
        # the one-exchange mode is gone: its field is an unexpected key, whatever its value
        ({"unmasking": "pairwise"}, r"unexpected keys \['unmasking'\]"),
        ({"unmasking": "confirmed"}, r"unexpected keys \['unmasking'\]"),
        ({"unmasking": "none"}, r"unexpected keys \['unmasking'\]"),
    ],
)
def test_malformed_requests_are_rejected(changes: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_request(_request_payload(**changes))


def test_missing_key_and_non_mapping_are_rejected() -> None:
    payload = _request_payload()
    del payload["nonce"]
    with pytest.raises(ProtocolError, match="missing keys"):
        decode_request(payload)
    with pytest.raises(ProtocolError, match="mapping"):
        decode_request(["kind", ANALYSIS_REQUEST_KIND])
    with pytest.raises(ProtocolError, match="kind"):
        decode_request({})


@pytest.mark.parametrize(
    "masked",
    [b"", bytes(7), bytes(12), "00" * 8],
)
def test_malformed_masked_vectors_are_rejected(masked: object) -> None:
    with pytest.raises(ProtocolError, match="masked"):
        decode_reply(_reply_payload(masked=masked))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"self_mask_commitment": COMMITMENT[:-1]}, "self_mask_commitment"),
        ({"self_mask_commitment": COMMITMENT + "0"}, "self_mask_commitment"),
        ({"self_mask_commitment": COMMITMENT.upper()}, "self_mask_commitment"),
        ({"self_mask_commitment": "g" * 64}, "self_mask_commitment"),
        ({"self_mask_commitment": ""}, "self_mask_commitment"),
        ({"self_mask_commitment": bytes.fromhex(COMMITMENT)}, "self_mask_commitment must be str"),
        ({"self_mask_commitment": 0}, "self_mask_commitment must be str"),
        ({"kind": "sscjak.analysis-reply/1"}, "unknown message kind"),
        ({"nonce": "ab" * 31}, "nonce"),
        ({"node": "../a"}, "not a node name"),
        ({"plan_sha256": "0" * 63}, "plan_sha256"),
        ({"extra": "field"}, "unexpected keys"),
    ],
)
def test_malformed_analysis_replies_are_rejected(changes: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_reply(_reply_payload(**changes))


def test_an_analysis_reply_without_a_commitment_is_rejected() -> None:
    payload = _reply_payload()
    del payload["self_mask_commitment"]
    with pytest.raises(ProtocolError, match=r"missing keys \['self_mask_commitment'\]"):
        decode_reply(payload)
    with pytest.raises(ProtocolError, match="self_mask_commitment"):
        AnalysisReply(
            node="a", plan_sha256=PLAN_HASH, nonce=NONCE, masked=bytes(8), self_mask_commitment="x"
        )


def test_oversized_refusal_reason_and_bad_node_name_are_rejected() -> None:
    with pytest.raises(ProtocolError):
        decode_reply({"kind": "sscjak.refusal/1", "node": "a", "reason": "x" * 5000})
    with pytest.raises(ProtocolError):
        decode_reply({"kind": "sscjak.refusal/1", "node": "", "reason": "no"})
    assert check_node_name("centre-A_1.b") == "centre-A_1.b"
    with pytest.raises(ProtocolError):
        check_node_name("x" * 65)


_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=80),
    st.binary(max_size=40),
    st.lists(st.text(max_size=10), max_size=5),
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.dictionaries(st.text(max_size=15), _values, max_size=8),
        *(
            st.builds(
                lambda base, k, v: {**base, k: v},
                st.just(base),
                st.sampled_from(sorted(base)),
                _values,
            )
            for base in (
                _request_payload(),
                _reply_payload(),
                _unmask_request_payload(),
                _unmask_reply_payload(),
            )
        ),
        _values,
    )
)
def test_random_payloads_either_decode_or_raise_protocol_error(payload: object) -> None:
    for decode in (decode_request, decode_node_message, decode_reply):
        with contextlib.suppress(ProtocolError):
            decode(payload)


def test_unmask_messages_round_trip_and_are_strict() -> None:
    request = UnmaskRequest(
        plan_sha256=PLAN_HASH, roster_sha256=ROSTER_HASH, nonce=NONCE, participants=("a", "b", "c")
    )
    payload = encode_unmask_request(request)
    assert payload == _unmask_request_payload()
    assert payload["kind"] == UNMASK_REQUEST_KIND
    assert set(payload) == {"kind", "plan_sha256", "roster_sha256", "nonce", "participants"}
    assert payload["roster_sha256"] == ROSTER_HASH
    assert all(isinstance(v, str | int | bytes | list) for v in payload.values())
    assert decode_node_message(payload) == request
    assert encode_unmask_request(decode_node_message(payload)) == payload
    assert decode_node_message(_request_payload()) == decode_request(_request_payload())

    reply = UnmaskReply(node="a", plan_sha256=PLAN_HASH, nonce=NONCE, self_mask_seed=SEED)
    reply_payload = encode_unmask_reply(reply)
    assert reply_payload["kind"] == UNMASK_REPLY_KIND
    assert set(reply_payload) == {"kind", "node", "plan_sha256", "nonce", "self_mask_seed"}
    assert decode_reply(reply_payload) == reply
    assert self_mask_commitment(decode_reply(reply_payload).self_mask_seed) == COMMITMENT
    with pytest.raises(ProtocolError, match="32 bytes"):
        decode_reply(_unmask_reply_payload(self_mask_seed=bytes(31)))
    with pytest.raises(ProtocolError, match="32 bytes"):
        decode_reply(_unmask_reply_payload(self_mask_seed=bytes(33)))
    with pytest.raises(ProtocolError, match="self_mask_seed must be bytes"):
        decode_reply(_unmask_reply_payload(self_mask_seed=SEED.hex()))
    with pytest.raises(ProtocolError, match="unknown message kind"):
        decode_reply(_unmask_reply_payload(kind="sscjak.unmask-reply/1"))
    with pytest.raises(ProtocolError, match="unexpected keys"):
        decode_node_message({**encode_unmask_request(request), "attempt": 1})


def test_an_unmask_request_needs_the_roster_hash() -> None:
    payload = _unmask_request_payload()
    del payload["roster_sha256"]
    with pytest.raises(ProtocolError, match=r"missing keys \['roster_sha256'\]"):
        decode_node_message(payload)
    with pytest.raises(ProtocolError, match="roster_sha256"):
        UnmaskRequest(
            plan_sha256=PLAN_HASH, roster_sha256="", nonce=NONCE, participants=("a", "b", "c")
        )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "sscjak.unmask/1"}, "unknown message kind"),
        ({"roster_sha256": "0" * 63}, "roster_sha256"),
        ({"roster_sha256": ROSTER_HASH.upper()}, "roster_sha256"),
        ({"roster_sha256": bytes.fromhex(ROSTER_HASH)}, "roster_sha256 must be str"),
        ({"plan_sha256": "0" * 63}, "plan_sha256"),
        ({"nonce": "AB" * 32}, "nonce"),
        ({"participants": ["b", "a", "c"]}, "sorted and distinct"),
        ({"participants": "a,b,c"}, "participants must be list"),
        ({"unmasking": "confirmed"}, r"unexpected keys \['unmasking'\]"),
    ],
)
def test_malformed_unmask_requests_are_rejected(changes: dict, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_node_message(_unmask_request_payload(**changes))


def test_a_node_accepts_only_requests_and_the_coordinator_only_replies() -> None:
    for reply in (_reply_payload(), _unmask_reply_payload(), encode_refusal(Refusal("a", "no"))):
        with pytest.raises(ProtocolError, match="expected"):
            decode_node_message(reply)
    for request in (_request_payload(), _unmask_request_payload()):
        with pytest.raises(ProtocolError, match="expected"):
            decode_reply(request)
