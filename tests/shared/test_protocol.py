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
    AnalysisReply,
    AnalysisRequest,
    ProtocolError,
    Refusal,
    check_node_name,
    decode_reply,
    decode_request,
    encode_refusal,
    encode_reply,
    encode_request,
)

PLAN_TEXT = 'schema = "sscjak.plan/1"\n'
PLAN_HASH = hashlib.sha256(PLAN_TEXT.encode()).hexdigest()
ROSTER_HASH = hashlib.sha256(b"roster").hexdigest()
NONCE = "ab" * 32


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


def test_reply_and_refusal_round_trip() -> None:
    reply = AnalysisReply(node="a", plan_sha256=PLAN_HASH, nonce=NONCE, masked=bytes(16))
    payload = encode_reply(reply)
    assert payload["kind"] == ANALYSIS_REPLY_KIND
    assert decode_reply(payload) == reply
    assert list(reply.masked_vector()) == [0, 0]
    refusal = Refusal(node="b", reason="not approved")
    assert decode_reply(encode_refusal(refusal)) == refusal


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "sscjak.analysis/2"}, "unknown message kind"),
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
        ({"extra": "field"}, "unexpected keys"),
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
    payload = {
        "kind": ANALYSIS_REPLY_KIND,
        "node": "a",
        "plan_sha256": PLAN_HASH,
        "nonce": NONCE,
        "masked": masked,
    }
    with pytest.raises(ProtocolError):
        decode_reply(payload)


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
        st.builds(
            lambda base, k, v: {**base, k: v},
            st.just(_request_payload()),
            st.sampled_from(sorted(_request_payload())),
            _values,
        ),
        _values,
    )
)
def test_random_payloads_either_decode_or_raise_protocol_error(payload: object) -> None:
    for decode in (decode_request, decode_reply):
        with contextlib.suppress(ProtocolError):
            decode(payload)


def test_unmask_messages_round_trip_and_are_strict() -> None:
    from sscjak.shared.protocol import (
        UnmaskReply,
        UnmaskRequest,
        decode_node_message,
        encode_unmask_reply,
        encode_unmask_request,
    )

    request = UnmaskRequest(plan_sha256=PLAN_HASH, nonce=NONCE, participants=("a", "b", "c"))
    assert decode_node_message(encode_unmask_request(request)) == request
    assert decode_node_message(_request_payload()) == decode_request(_request_payload())
    reply = UnmaskReply(node="a", plan_sha256=PLAN_HASH, nonce=NONCE, self_mask_seed=bytes(32))
    assert decode_reply(encode_unmask_reply(reply)) == reply
    with pytest.raises(ProtocolError, match="32 bytes"):
        decode_reply({**encode_unmask_reply(reply), "self_mask_seed": bytes(31)})
    with pytest.raises(ProtocolError, match="unmasking must be one of"):
        decode_request(_request_payload(unmasking="none"))
    with pytest.raises(ProtocolError, match="unexpected keys"):
        decode_node_message({**encode_unmask_request(request), "attempt": 1})
