"""Tests of sscjak.coordinator.federation.server_app: node identity mapping and the transport."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from flwr.app import Error, Message
from flwr.supercore.task_identity import TaskIdentity

from sscjak.coordinator.federation.server_app import FlowerTransport, node_ids_by_name
from sscjak.shared.flower_payload import message_content, payload_from_message
from sscjak.shared.roster import Roster, RosterMember


@pytest.fixture(autouse=True)
def flower_task_identity():
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 1, 1


def pem() -> str:
    key = ec.generate_private_key(ec.SECP384R1()).public_key()
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


@dataclass
class NodeInfo:  # the fields of flwr.proto.node_pb2.NodeInfo we read
    node_id: int
    public_key: bytes
    name: str
    status: str = "online"


def make_roster(keys: dict[str, str | None]) -> Roster:
    return Roster(
        tuple(
            RosterMember(name, f"{i + 1:064x}", key) for i, (name, key) in enumerate(keys.items())
        )
    )


def test_nodes_are_named_by_their_authenticated_key_not_their_label():
    keys = {"centre-a": pem(), "centre-b": pem(), "centre-c": None}
    roster = make_roster(keys)
    nodes = [
        # registered under a misleading name, but it holds centre-a's key
        NodeInfo(11, keys["centre-a"].encode(), "centre-b"),
        NodeInfo(12, keys["centre-b"].encode(), "whatever"),
        NodeInfo(13, b"", "centre-c"),  # no key in the roster: matched by registered name
        NodeInfo(14, pem().encode(), "centre-a"),  # unknown key claiming a roster name
        NodeInfo(15, keys["centre-b"].encode(), "x", status="offline"),
    ]
    assert node_ids_by_name(nodes, roster) == {"centre-a": 11, "centre-b": 12, "centre-c": 13}


class FakeGrid:
    """Answers pushed messages after ``delay_pulls`` pulls; some nodes never answer."""

    def __init__(self, nodes, answer, silent=(), errors=()):
        self.nodes = nodes
        self.answer = answer
        self.silent = set(silent)
        self.errors = set(errors)
        self.pushed: list[Message] = []
        self.pulls = 0

    def get_nodes(self):
        return self.nodes

    def push_messages(self, messages):
        ids = []
        for i, message in enumerate(messages):
            message.metadata.__dict__["_message_id"] = f"m{len(self.pushed) + i}"
            ids.append(message.metadata.message_id)
        self.pushed.extend(messages)
        return ids

    def pull_messages(self, message_ids):
        self.pulls += 1
        replies = []
        for message in self.pushed:
            if message.metadata.message_id not in message_ids:
                continue
            node_id = message.metadata.dst_node_id
            if node_id in self.silent:
                continue
            if node_id in self.errors:
                reply = Message(Error(code=1, reason="boom"), reply_to=message)
            else:
                reply = Message(message_content(self.answer(node_id)), reply_to=message)
            reply.metadata.__dict__["_src_node_id"] = node_id
            replies.append(reply)
        return replies


def test_transport_maps_replies_to_names_and_drops_silent_or_failed_nodes():
    keys = {"centre-a": pem(), "centre-b": pem(), "centre-c": pem(), "centre-d": pem()}
    roster = make_roster(keys)
    nodes = [NodeInfo(100 + i, k.encode(), n) for i, (n, k) in enumerate(keys.items())]
    grid = FakeGrid(
        nodes, answer=lambda node_id: {"kind": "k", "from": node_id}, silent={102}, errors={103}
    )
    seen: list[tuple[str, int, int]] = []
    transport = FlowerTransport(
        grid, roster, on_reply=lambda n, k, total: seen.append((n, k, total)), poll_interval=0.01
    )
    requests = {name: {"kind": "req", "to": name} for name in roster.names}
    replies = transport.exchange(requests, timeout=0.3)
    assert replies == {
        "centre-a": {"kind": "k", "from": 100},
        "centre-b": {"kind": "k", "from": 101},
    }
    assert [s[1:] for s in seen] == [(1, 4), (2, 4)]
    sent = {m.metadata.dst_node_id: payload_from_message(m) for m in grid.pushed}
    assert sent[100] == {"kind": "req", "to": "centre-a"}
    assert all(m.metadata.message_type == "query" for m in grid.pushed)
    assert grid.pulls > 1  # kept polling for the silent node until the timeout
    # the SuperLink drops a message, and refuses a reply to it, once its TTL is over:
    # a late answer to an abandoned exchange never arrives
    assert all(m.metadata.ttl == 0.3 for m in grid.pushed)


def test_transport_waits_for_named_nodes_to_come_back_online():
    keys = {"centre-a": pem(), "centre-b": pem(), "centre-c": pem()}
    roster = make_roster(keys)
    online = [NodeInfo(1, keys["centre-a"].encode(), "centre-a")]
    grid = FakeGrid(online, answer=lambda n: {"ok": 1})
    transport = FlowerTransport(grid, roster, poll_interval=0.01)
    assert transport.wait_for(["centre-a"], timeout=0.0)
    assert not transport.wait_for(["centre-a", "centre-b"], timeout=0.6)
    online.append(NodeInfo(2, keys["centre-b"].encode(), "centre-b"))
    assert transport.wait_for(["centre-a", "centre-b"], timeout=0.6)


def test_transport_skips_nodes_that_are_not_online():
    keys = {"centre-a": pem(), "centre-b": pem(), "centre-c": pem()}
    roster = make_roster(keys)
    grid = FakeGrid(
        [NodeInfo(1, keys["centre-a"].encode(), "centre-a")], answer=lambda n: {"ok": 1}
    )
    replies = FlowerTransport(grid, roster, poll_interval=0.01).exchange(
        {name: {"kind": "req"} for name in roster.names}, timeout=1.0
    )
    assert replies == {"centre-a": {"ok": 1}}
    assert len(grid.pushed) == 1
