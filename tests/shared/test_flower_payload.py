"""Tests of sscjak.shared.flower_payload: payloads ride in Flower messages unchanged."""

from __future__ import annotations

import pytest
from flwr.app import Error, Message, RecordDict
from flwr.supercore.task_identity import TaskIdentity

from sscjak.shared.flower_payload import message_content, payload_from_message
from sscjak.shared.protocol import ANALYSIS_REPLY_KIND


@pytest.fixture(autouse=True)
def flower_task_identity():
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1


def test_every_payload_value_type_survives_the_round_trip():
    payload = {
        "kind": ANALYSIS_REPLY_KIND,
        "attempt": 2**62,
        "masked": bytes(range(256)) * 3,
        "self_mask_commitment": "0f" * 32,
        "participants": ["centre-a", "centre-b", "centre-c"],
        "empty": [],
    }
    message = Message(message_content(payload), dst_node_id=7, message_type="query")
    decoded = payload_from_message(message)
    assert decoded == payload
    assert type(decoded["masked"]) is bytes
    assert type(decoded["attempt"]) is int


def test_an_error_reply_or_empty_content_decodes_to_an_empty_payload():
    request = Message(message_content({"kind": "x"}), dst_node_id=7, message_type="query")
    assert payload_from_message(Message(Error(code=0, reason="r"), reply_to=request)) == {}
    assert payload_from_message(Message(RecordDict(), dst_node_id=7, message_type="query")) == {}
