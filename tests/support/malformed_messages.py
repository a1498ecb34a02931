"""A catalogue of malformed or unacceptable Flower messages a node may receive.

Used twice: by ``tests/node/test_handler_malformed.py`` (each message handed to the
node's ClientApp in-process) and by ``tests/integration/test_malformed_messages.py``,
whose ServerApp (a bundle of the test's own, which copies this file into it) sends every
message through a real SuperLink to real nodes. Each case names the message, its Flower
message type, its content and a fragment of the refusal reason the node must give.
Nothing here is accepted: every case must be answered with a refusal and an audit line.

Categories: wrong shape, wrong type, oversized, unknown plan, replayed nonce (see
:func:`replay_pair`), wrong message type, garbage bytes in the record. The kinds are
those of :mod:`sscjak.shared.protocol`: an analysis request, or an unmask request for
the second exchange.
"""

from __future__ import annotations

import hashlib
import random
import secrets
from dataclasses import dataclass

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, MetricRecord, RecordDict

from sscjak.shared.protocol import (
    ANALYSIS_REPLY_KIND,
    ANALYSIS_REQUEST_KIND,
    UNMASK_REPLY_KIND,
    UNMASK_REQUEST_KIND,
)

PAYLOAD_RECORD = "sscjak"
MALFORMED = "malformed request"


@dataclass(frozen=True)
class Crafted:
    """One crafted message: what it is, how it travels, what the node must answer."""

    name: str
    category: str
    message_type: str
    content: RecordDict
    reason: str


def valid_request(
    *,
    plan_sha256: str,
    plan_toml: str,
    roster_sha256: str,
    participants: list[str],
    nonce: str | None = None,
    attempt: int = 1,
) -> dict:
    """A well-formed analysis request payload (a starting point for mutations)."""
    return {
        "kind": ANALYSIS_REQUEST_KIND,
        "plan_sha256": plan_sha256,
        "plan_toml": plan_toml,
        "roster_sha256": roster_sha256,
        "participants": sorted(participants),
        "nonce": nonce or secrets.token_hex(32),
        "attempt": attempt,
    }


def valid_unmask_request(
    *, plan_sha256: str, roster_sha256: str, participants: list[str], nonce: str | None = None
) -> dict:
    """A well-formed unmask request payload (second exchange) for the request ``nonce``."""
    return {
        "kind": UNMASK_REQUEST_KIND,
        "plan_sha256": plan_sha256,
        "roster_sha256": roster_sha256,
        "nonce": nonce or secrets.token_hex(32),
        "participants": sorted(participants),
    }


def _record(payload: dict) -> RecordDict:
    return RecordDict({PAYLOAD_RECORD: ConfigRecord(dict(payload))})


def crafted_messages(
    *,
    node: str,
    participants: list[str],
    roster_sha256: str,
    approved_plan_toml: str,
    seed: int = 5,
) -> list[Crafted]:
    """Every crafted message for node ``node`` of a study whose nodes approved
    ``approved_plan_toml`` under the roster of hash ``roster_sha256``.

    Each valid-looking request carries a fresh nonce, so no case is refused merely as a
    replay; none is acceptable, so no summary ever leaves the node.
    """
    rng = random.Random(seed)
    approved_sha = hashlib.sha256(approved_plan_toml.encode("utf-8")).hexdigest()
    unknown_toml = approved_plan_toml.replace("min_cell = ", "min_cell = 9")
    unknown_sha = hashlib.sha256(unknown_toml.encode("utf-8")).hexdigest()

    def request(**changes: object) -> dict:
        base = valid_request(
            plan_sha256=approved_sha,
            plan_toml=approved_plan_toml,
            roster_sha256=roster_sha256,
            participants=participants,
        )
        base.update(changes)
        return base

    def without(key: str) -> dict:
        payload = request()
        del payload[key]
        return payload

    def unmask(**changes: object) -> dict:
        base = valid_unmask_request(
            plan_sha256=approved_sha, roster_sha256=roster_sha256, participants=participants
        )
        base.update(changes)
        return base

    def unmask_without(key: str) -> dict:
        payload = unmask()
        del payload[key]
        return payload

    garbage = bytes(rng.getrandbits(8) for _ in range(4096))
    others = [name for name in participants if name != node]
    cases = [
        # -- wrong shape ------------------------------------------------------------------
        Crafted("no records", "shape", "query", RecordDict(), MALFORMED),
        Crafted(
            "two records",
            "shape",
            "query",
            RecordDict({PAYLOAD_RECORD: ConfigRecord(request()), "extra": ConfigRecord({"a": 1})}),
            MALFORMED,
        ),
        Crafted(
            "record under another name",
            "shape",
            "query",
            RecordDict({"data": ConfigRecord(request())}),
            MALFORMED,
        ),
        Crafted("empty payload", "shape", "query", _record({}), MALFORMED),
        Crafted("missing nonce", "shape", "query", _record(without("nonce")), MALFORMED),
        Crafted("extra key", "shape", "query", _record(request(give_me="rows")), "unexpected keys"),
        Crafted(
            "unknown kind",
            "shape",
            "query",
            _record(request(kind="sscjak.analysis/9")),
            "unknown message kind",
        ),
        Crafted(
            "request of the previous protocol version",
            "shape",
            "query",
            _record(request(kind="sscjak.analysis/1", unmasking="pairwise")),
            "unknown message kind",
        ),
        Crafted(
            "unmasking field of the removed one-exchange mode",
            "shape",
            "query",
            _record(request(unmasking="pairwise")),
            "unexpected keys ['unmasking']",
        ),
        Crafted(
            "a reply sent to a node",
            "shape",
            "query",
            _record(
                {
                    "kind": ANALYSIS_REPLY_KIND,
                    "node": node,
                    "plan_sha256": approved_sha,
                    "nonce": secrets.token_hex(32),
                    "masked": b"\x00" * 8,
                    "self_mask_commitment": hashlib.sha256(b"seed").hexdigest(),
                }
            ),
            f"expected a {ANALYSIS_REQUEST_KIND!r} message",
        ),
        Crafted(
            "a revealed seed sent to a node",
            "shape",
            "query",
            _record(
                {
                    "kind": UNMASK_REPLY_KIND,
                    "node": node,
                    "plan_sha256": approved_sha,
                    "nonce": secrets.token_hex(32),
                    "self_mask_seed": bytes(32),
                }
            ),
            f"expected a {ANALYSIS_REQUEST_KIND!r} message",
        ),
        Crafted(
            "participants unsorted",
            "shape",
            "query",
            _record(request(participants=sorted(participants, reverse=True))),
            "sorted and distinct",
        ),
        Crafted(
            "only two participants",
            "shape",
            "query",
            _record(request(participants=sorted([node, others[0]]))),
            "below the minimum",
        ),
        Crafted(
            "node not a participant",
            "shape",
            "query",
            _record(request(participants=sorted([*others, "zz-stranger"]))),
            "not in the participant set",
        ),
        Crafted(
            "unmask for a request never answered",
            "shape",
            "query",
            _record(unmask()),
            "did not answer that request",
        ),
        Crafted(
            "unmask without a roster hash",
            "shape",
            "query",
            _record(unmask_without("roster_sha256")),
            "missing keys ['roster_sha256']",
        ),
        Crafted(
            "unmask with an extra key",
            "shape",
            "query",
            _record(unmask(attempt=1)),
            "unexpected keys ['attempt']",
        ),
        # -- wrong type -------------------------------------------------------------------
        Crafted("attempt as text", "type", "query", _record(request(attempt="1")), MALFORMED),
        Crafted("attempt as bool", "type", "query", _record(request(attempt=True)), MALFORMED),
        Crafted("attempt as float", "type", "query", _record(request(attempt=1.0)), MALFORMED),
        Crafted("attempt zero", "type", "query", _record(request(attempt=0)), "between 1"),
        Crafted(
            "participants as text",
            "type",
            "query",
            _record(request(participants=",".join(participants))),
            MALFORMED,
        ),
        Crafted(
            "nonce upper-case",
            "type",
            "query",
            _record(request(nonce=secrets.token_hex(32).upper())),
            "lower-case hex",
        ),
        Crafted(
            "unmask roster hash as bytes",
            "type",
            "query",
            _record(unmask(roster_sha256=bytes.fromhex(roster_sha256))),
            "roster_sha256 must be str",
        ),
        Crafted(
            "metric record instead of config record",
            "type",
            "query",
            RecordDict({PAYLOAD_RECORD: MetricRecord({"attempt": 1, "x": 0.5})}),
            MALFORMED,
        ),
        Crafted(
            "array record instead of config record",
            "type",
            "query",
            RecordDict({PAYLOAD_RECORD: ArrayRecord({"x": Array(np.zeros(2, dtype=np.uint64))})}),
            MALFORMED,
        ),
        # -- garbage bytes ----------------------------------------------------------------
        Crafted(
            "every field garbage bytes",
            "garbage",
            "query",
            _record({key: garbage[i * 64 : i * 64 + 64] for i, key in enumerate(request())}),
            "text 'kind'",
        ),
        Crafted(
            "plan text as garbage bytes",
            "garbage",
            "query",
            _record(request(plan_toml=garbage)),
            "plan_toml must be str",
        ),
        Crafted(
            "garbage bytes under a valid kind only",
            "garbage",
            "query",
            _record({"kind": ANALYSIS_REQUEST_KIND, "blob": garbage}),
            MALFORMED,
        ),
        # -- oversized --------------------------------------------------------------------
        Crafted(
            "plan text of 70 000 characters",
            "oversized",
            "query",
            _record(request(plan_toml="#" * 70_000)),
            "too long",
        ),
        Crafted(
            "1001 participants",
            "oversized",
            "query",
            _record(request(participants=sorted(f"n{i:04d}" for i in range(1001)))),
            "at most 1000",
        ),
        Crafted(
            "1 MiB extra field",
            "oversized",
            "query",
            _record(request(padding=b"\x00" * (1 << 20))),
            "unexpected keys",
        ),
        # -- unknown or altered plan ------------------------------------------------------
        Crafted(
            "unknown plan",
            "plan",
            "query",
            _record(request(plan_sha256=unknown_sha, plan_toml=unknown_toml)),
            "not approved by this centre",
        ),
        Crafted(
            "plan text not matching its hash",
            "plan",
            "query",
            _record(request(plan_toml=unknown_toml)),
            "does not match the plan hash",
        ),
        Crafted(
            "another roster",
            "plan",
            "query",
            _record(request(roster_sha256=hashlib.sha256(b"other study").hexdigest())),
            "roster changed",
        ),
        # -- wrong message type -----------------------------------------------------------
        Crafted("train message", "message type", "train", _record(request()), MALFORMED),
        Crafted("evaluate message", "message type", "evaluate", _record(request()), MALFORMED),
        Crafted(
            "query with an unknown action",
            "message type",
            "query.steal",
            _record(request()),
            MALFORMED,
        ),
    ]
    return cases


def replay_pair(
    *, participants: list[str], roster_sha256: str, approved_plan_toml: str
) -> tuple[dict, dict]:
    """Two requests under one nonce: the first (an unknown plan, refused — but its nonce is
    recorded) and then a request for the approved plan reusing that nonce, which must be
    refused as a replay. No summary ever leaves the node."""
    nonce = secrets.token_hex(32)
    unknown_toml = approved_plan_toml.replace("min_cell = ", "min_cell = 9")
    first = valid_request(
        plan_sha256=hashlib.sha256(unknown_toml.encode("utf-8")).hexdigest(),
        plan_toml=unknown_toml,
        roster_sha256=roster_sha256,
        participants=participants,
        nonce=nonce,
    )
    second = valid_request(
        plan_sha256=hashlib.sha256(approved_plan_toml.encode("utf-8")).hexdigest(),
        plan_toml=approved_plan_toml,
        roster_sha256=roster_sha256,
        participants=participants,
        nonce=nonce,
    )
    return first, second


#: What the replayed request's refusal says.
REPLAY_REASON = "nonce was already used"
#: What the first request of a replay pair is refused for.
UNKNOWN_PLAN_REASON = "not approved by this centre"
