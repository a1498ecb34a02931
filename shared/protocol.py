"""The messages of one secure analysis, and their strict validation.

An analysis is two exchanges (docs/secure-aggregation.md). First the coordinator sends
every node of the participant set S the same *analysis request*; each node answers
with an *analysis reply* carrying its doubly masked summary vector and a commitment to
its self-mask seed, or with a *refusal* saying in plain words why it will not answer.
When every member of S answered, the coordinator sends each an *unmask request* for
that nonce and set; each node answers with an *unmask reply* revealing its self-mask
seed, or refuses. Nothing else ever travels between them.

Payloads are flat dictionaries ``dict[str, str | int | bytes | list[str]]`` so that
they map one to one onto a Flower ``ConfigRecord``. Every decoder here is strict: an
unknown kind or version, a missing or extra key, a value of the wrong type, a value
too long, a malformed hash, nonce or node name raise :class:`ProtocolError`; nothing
is coerced. Sizes are bounded *before* anything expensive is done with a value.

Analysis request (coordinator → node), kind ``sscjak.analysis/2``:

=================  ===========  ====================================================
key                type         meaning
=================  ===========  ====================================================
``kind``           str          ``"sscjak.analysis/2"``
``plan_sha256``    str          SHA-256 (hex) of the plan's canonical TOML text
``plan_toml``      str          the plan's canonical TOML text itself
``roster_sha256``  str          SHA-256 (hex) of the coordinator's study roster
``participants``   list[str]    sorted, distinct roster names of the set S
``nonce``          str          32 fresh random bytes (hex), new for every attempt
``attempt``        int          1 for the first attempt, 2… after a dropout
=================  ===========  ====================================================

Random-effects request (coordinator → node), kind ``sscjak.random-effects/1``: the keys of
an analysis request plus ``tau2`` (list[str]): one τ² per change cell of the plan, in its
order, each written exactly as ``float.hex`` (finite, from 0 to :data:`MAX_TAU2`). Only a
plan with ``heterogeneity = true`` is answered this way; the reply is an analysis reply
whose masked vector has the random-effects layout, unmasked like any other.

Analysis reply (node → coordinator), kind ``sscjak.analysis-reply/2``: ``node``,
``plan_sha256``, ``nonce`` (echoing the request), ``masked`` (bytes: the masked
summary as unsigned 64-bit little-endian words) and ``self_mask_commitment`` (hex
SHA-256 commitment to the self-mask seed).

Unmask request (coordinator → node), kind ``sscjak.unmask/2``: ``plan_sha256``,
``roster_sha256``, ``nonce`` and ``participants`` of the attempt every member answered.
Unmask reply (node → coordinator), kind ``sscjak.unmask-reply/2``: ``node``,
``plan_sha256``, ``nonce`` and ``self_mask_seed`` (32 bytes).

Refusal (node → coordinator), kind ``sscjak.refusal/1``: ``node`` and ``reason``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

#: A payload as it travels: it maps one to one onto a Flower ``ConfigRecord``.
Payload = dict[str, str | int | bytes | list[str]]

ANALYSIS_REQUEST_KIND = "sscjak.analysis/2"
RANDOM_EFFECTS_REQUEST_KIND = "sscjak.random-effects/1"
ANALYSIS_REPLY_KIND = "sscjak.analysis-reply/2"
REFUSAL_KIND = "sscjak.refusal/1"
UNMASK_REQUEST_KIND = "sscjak.unmask/2"
UNMASK_REPLY_KIND = "sscjak.unmask-reply/2"
_KINDS = (
    ANALYSIS_REQUEST_KIND,
    RANDOM_EFFECTS_REQUEST_KIND,
    ANALYSIS_REPLY_KIND,
    REFUSAL_KIND,
    UNMASK_REQUEST_KIND,
    UNMASK_REPLY_KIND,
)

#: Bytes of a self-mask seed.
SELF_MASK_SEED_BYTES = 32

#: Bytes of fresh randomness in a nonce (sent as 64 hex digits).
NONCE_BYTES = 32
#: Upper bound on the plan text a node will even look at.
MAX_PLAN_TOML_BYTES = 64 * 1024
#: Smallest participant set: with two, each participant learns the other's summary from
#: the pooled sum. The coordinator, every node and every centre's policy hold to it.
MIN_PARTICIPANTS = 3
#: Upper bound on the size of a participant set.
MAX_PARTICIPANTS = 1000
#: Upper bound on a summary vector (words of 8 bytes): 32 MiB, far above any plan's layout.
MAX_SUMMARY_WORDS = 4 * 1024 * 1024
#: Upper bound on a refusal reason, in characters.
MAX_REASON_CHARS = 2000
#: Upper bound on the attempt number.
MAX_ATTEMPT = 1000
#: Largest τ² a random-effects request may carry (an SMC's between-centre variance is far
#: below it).
MAX_TAU2 = 1e6
#: Upper bound on the number of τ² values in one request (one per change cell).
MAX_TAU2_VALUES = 10_000

#: A node name: 1 to 64 characters, letters, digits, ``.``, ``_`` and ``-``, starting
#: with a letter or digit. Names are compared as exact strings and sorted by code point.
NODE_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
_NONCE_PATTERN = re.compile(f"[0-9a-f]{{{2 * NONCE_BYTES}}}")


class ProtocolError(ValueError):
    """A payload that is not a well-formed message of this protocol."""


@dataclass(frozen=True)
class AnalysisRequest:
    """What the coordinator asks every node of the participant set for one attempt.

    ``tau2`` is ``None`` for an analysis request; for a random-effects request it holds
    one τ² per change cell of the plan.
    """

    plan_sha256: str
    plan_toml: str
    roster_sha256: str
    participants: tuple[str, ...]
    nonce: str
    attempt: int
    tau2: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        _check_sha256("plan_sha256", self.plan_sha256)
        _check_text("plan_toml", self.plan_toml, max_bytes=MAX_PLAN_TOML_BYTES)
        _check_sha256("roster_sha256", self.roster_sha256)
        _check_participants(self.participants)
        _check_nonce(self.nonce)
        _check_attempt(self.attempt)
        if self.tau2 is not None:
            _check_tau2(self.tau2)


@dataclass(frozen=True)
class UnmaskRequest:
    """Second exchange: every participant of the attempt ``nonce`` answered.

    The coordinator asks each participant to reveal its self-mask seed for that attempt.
    """

    plan_sha256: str
    roster_sha256: str
    nonce: str
    participants: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_sha256("plan_sha256", self.plan_sha256)
        _check_sha256("roster_sha256", self.roster_sha256)
        _check_nonce(self.nonce)
        _check_participants(self.participants)


@dataclass(frozen=True)
class UnmaskReply:
    """A node's self-mask seed for one attempt (second exchange)."""

    node: str
    plan_sha256: str
    nonce: str
    self_mask_seed: bytes

    def __post_init__(self) -> None:
        check_node_name(self.node, "node")
        _check_sha256("plan_sha256", self.plan_sha256)
        _check_nonce(self.nonce)
        if not isinstance(self.self_mask_seed, bytes):
            raise ProtocolError("self_mask_seed must be bytes")
        if len(self.self_mask_seed) != SELF_MASK_SEED_BYTES:
            raise ProtocolError(f"self_mask_seed must be {SELF_MASK_SEED_BYTES} bytes")


@dataclass(frozen=True)
class AnalysisReply:
    """A node's answer: its doubly masked summary (uint64 little-endian) and seed commitment."""

    node: str
    plan_sha256: str
    nonce: str
    masked: bytes
    self_mask_commitment: str

    def __post_init__(self) -> None:
        check_node_name(self.node, "node")
        _check_sha256("plan_sha256", self.plan_sha256)
        _check_nonce(self.nonce)
        _check_sha256("self_mask_commitment", self.self_mask_commitment)
        if not isinstance(self.masked, bytes):
            raise ProtocolError(f"masked must be bytes, not {type(self.masked).__name__}")
        if len(self.masked) == 0 or len(self.masked) % 8 != 0:
            raise ProtocolError(
                f"masked must be a whole number of 8-byte words, got {len(self.masked)} bytes"
            )
        if len(self.masked) > 8 * MAX_SUMMARY_WORDS:
            raise ProtocolError(f"masked is too large: {len(self.masked)} bytes")

    def masked_vector(self) -> np.ndarray:
        """The masked summary as a ``uint64`` array (a copy, writable)."""
        return np.frombuffer(self.masked, dtype="<u8").astype(np.uint64)


@dataclass(frozen=True)
class Refusal:
    """A node's refusal to take part, with the reason in plain words."""

    node: str
    reason: str

    def __post_init__(self) -> None:
        check_node_name(self.node, "node")
        _check_text("reason", self.reason, max_chars=MAX_REASON_CHARS)


def check_node_name(name: object, what: str = "node name") -> str:
    """Return ``name`` if it is a valid node name, else raise :class:`ProtocolError`."""
    if not isinstance(name, str):
        raise ProtocolError(f"{what} must be text, not {type(name).__name__}")
    if NODE_NAME_PATTERN.fullmatch(name) is None:
        raise ProtocolError(
            f"{what} {name[:80]!r} is not a node name (1-64 letters, digits, '.', '_', '-')"
        )
    return name


def encode_request(request: AnalysisRequest) -> Payload:
    """The request as a flat payload (a random-effects request when it carries τ²)."""
    payload: Payload = {
        "kind": ANALYSIS_REQUEST_KIND,
        "plan_sha256": request.plan_sha256,
        "plan_toml": request.plan_toml,
        "roster_sha256": request.roster_sha256,
        "participants": list(request.participants),
        "nonce": request.nonce,
        "attempt": request.attempt,
    }
    if request.tau2 is not None:
        payload["kind"] = RANDOM_EFFECTS_REQUEST_KIND
        payload["tau2"] = [float(value).hex() for value in request.tau2]
    return payload


_REQUEST_FIELDS: dict[str, type] = {
    "plan_sha256": str,
    "plan_toml": str,
    "roster_sha256": str,
    "participants": list,
    "nonce": str,
    "attempt": int,
}


def decode_request(payload: object) -> AnalysisRequest:
    """Validate a payload as an analysis or random-effects request; raise
    :class:`ProtocolError` if it is neither."""
    random_effects = _kind(payload) == RANDOM_EFFECTS_REQUEST_KIND
    if random_effects:
        fields = _fields(
            payload, RANDOM_EFFECTS_REQUEST_KIND, {**_REQUEST_FIELDS, "tau2": list}
        )
    else:
        fields = _fields(payload, ANALYSIS_REQUEST_KIND, _REQUEST_FIELDS)
    return AnalysisRequest(
        plan_sha256=fields["plan_sha256"],
        plan_toml=fields["plan_toml"],
        roster_sha256=fields["roster_sha256"],
        participants=tuple(fields["participants"]),
        nonce=fields["nonce"],
        attempt=fields["attempt"],
        tau2=_parse_tau2(fields["tau2"]) if random_effects else None,
    )


def _parse_tau2(values: list[object]) -> tuple[float, ...]:
    """τ² values written with ``float.hex``; anything else is a :class:`ProtocolError`."""
    if len(values) > MAX_TAU2_VALUES:
        raise ProtocolError(f"tau2: {len(values)} values, at most {MAX_TAU2_VALUES} allowed")
    parsed = []
    for value in values:
        if not isinstance(value, str) or len(value) > 32:
            raise ProtocolError("tau2 values must be short texts written by float.hex")
        try:
            number = float.fromhex(value)
        except ValueError as error:
            raise ProtocolError(f"tau2 value {value[:32]!r} is not a float.hex text") from error
        if number.hex() != value:  # one spelling per number: "0.5" would read as hex 5/16
            raise ProtocolError(f"tau2 value {value[:32]!r} is not written as float.hex")
        parsed.append(number)
    return tuple(parsed)


def _check_tau2(values: object) -> None:
    if not isinstance(values, tuple) or len(values) > MAX_TAU2_VALUES:
        raise ProtocolError(f"tau2 must be a list of at most {MAX_TAU2_VALUES} numbers")
    for value in values:
        if (
            isinstance(value, bool)
            or not isinstance(value, float)
            or not math.isfinite(value)
            or not 0.0 <= value <= MAX_TAU2
        ):
            raise ProtocolError(f"every tau2 must be a finite number from 0 to {MAX_TAU2:g}")


def encode_unmask_request(request: UnmaskRequest) -> Payload:
    """The unmask request as a flat payload."""
    return {
        "kind": UNMASK_REQUEST_KIND,
        "plan_sha256": request.plan_sha256,
        "roster_sha256": request.roster_sha256,
        "nonce": request.nonce,
        "participants": list(request.participants),
    }


def decode_node_message(payload: object) -> AnalysisRequest | UnmaskRequest:
    """Validate what a node receives: an analysis or an unmask request."""
    if _kind(payload) == UNMASK_REQUEST_KIND:
        fields = _fields(
            payload,
            UNMASK_REQUEST_KIND,
            {"plan_sha256": str, "roster_sha256": str, "nonce": str, "participants": list},
        )
        return UnmaskRequest(
            plan_sha256=fields["plan_sha256"],
            roster_sha256=fields["roster_sha256"],
            nonce=fields["nonce"],
            participants=tuple(fields["participants"]),
        )
    return decode_request(payload)


def encode_unmask_reply(reply: UnmaskReply) -> Payload:
    """The unmask reply as a flat payload."""
    return {
        "kind": UNMASK_REPLY_KIND,
        "node": reply.node,
        "plan_sha256": reply.plan_sha256,
        "nonce": reply.nonce,
        "self_mask_seed": reply.self_mask_seed,
    }


def encode_reply(reply: AnalysisReply) -> Payload:
    """The reply as a flat payload."""
    return {
        "kind": ANALYSIS_REPLY_KIND,
        "node": reply.node,
        "plan_sha256": reply.plan_sha256,
        "nonce": reply.nonce,
        "masked": reply.masked,
        "self_mask_commitment": reply.self_mask_commitment,
    }


def encode_refusal(refusal: Refusal) -> Payload:
    """The refusal as a flat payload."""
    return {"kind": REFUSAL_KIND, "node": refusal.node, "reason": refusal.reason}


def decode_reply(payload: object) -> AnalysisReply | UnmaskReply | Refusal:
    """Validate a node's answer: analysis reply, unmask reply or refusal, else ProtocolError."""
    kind = _kind(payload)
    if kind == REFUSAL_KIND:
        fields = _fields(payload, REFUSAL_KIND, {"node": str, "reason": str})
        return Refusal(node=fields["node"], reason=fields["reason"])
    if kind == UNMASK_REPLY_KIND:
        fields = _fields(
            payload,
            UNMASK_REPLY_KIND,
            {"node": str, "plan_sha256": str, "nonce": str, "self_mask_seed": bytes},
        )
        return UnmaskReply(
            node=fields["node"],
            plan_sha256=fields["plan_sha256"],
            nonce=fields["nonce"],
            self_mask_seed=fields["self_mask_seed"],
        )
    fields = _fields(
        payload,
        ANALYSIS_REPLY_KIND,
        {
            "node": str,
            "plan_sha256": str,
            "nonce": str,
            "masked": bytes,
            "self_mask_commitment": str,
        },
    )
    return AnalysisReply(
        node=fields["node"],
        plan_sha256=fields["plan_sha256"],
        nonce=fields["nonce"],
        masked=fields["masked"],
        self_mask_commitment=fields["self_mask_commitment"],
    )


def _kind(payload: object) -> str:
    if not isinstance(payload, Mapping):
        raise ProtocolError(f"a message must be a mapping, not {type(payload).__name__}")
    kind = payload.get("kind")
    if not isinstance(kind, str):
        raise ProtocolError("a message must have a text 'kind'")
    if kind not in _KINDS:
        raise ProtocolError(f"unknown message kind or version {kind[:80]!r}")
    return kind


def _fields(payload: object, kind: str, types: dict[str, type]) -> dict:
    """Check kind, the exact key set and each value's type; return the fields (no 'kind')."""
    found = _kind(payload)
    if found != kind:
        raise ProtocolError(f"expected a {kind!r} message, got {found!r}")
    assert isinstance(payload, Mapping)
    keys = set(payload)
    expected = set(types) | {"kind"}
    if keys != expected:
        missing = sorted(str(k) for k in expected - keys)
        extra = sorted(str(k)[:40] for k in keys - expected)
        raise ProtocolError(f"{kind} message: missing keys {missing}, unexpected keys {extra}")
    fields = {}
    for key, wanted in types.items():
        value = payload[key]
        # bool is an int in Python but never a valid integer field here
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise ProtocolError(
                f"{kind} message: {key} must be {wanted.__name__}, not {type(value).__name__}"
            )
        fields[key] = value
    return fields


def _check_sha256(what: str, value: object) -> None:
    if not isinstance(value, str) or _SHA256_PATTERN.fullmatch(value) is None:
        raise ProtocolError(f"{what} must be 64 lower-case hex digits")


def _check_nonce(value: object) -> None:
    if not isinstance(value, str) or _NONCE_PATTERN.fullmatch(value) is None:
        raise ProtocolError(f"nonce must be {2 * NONCE_BYTES} lower-case hex digits")


def _check_text(
    what: str, value: object, *, max_bytes: int | None = None, max_chars: int | None = None
) -> None:
    if not isinstance(value, str):
        raise ProtocolError(f"{what} must be text, not {type(value).__name__}")
    if max_chars is not None and len(value) > max_chars:
        raise ProtocolError(f"{what} is too long: {len(value)} characters (at most {max_chars})")
    if max_bytes is not None:
        if len(value) > max_bytes:  # cheap bound before encoding
            raise ProtocolError(f"{what} is too long: more than {max_bytes} bytes")
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError as error:
            raise ProtocolError(f"{what} is not valid UTF-8 text") from error
        if size > max_bytes:
            raise ProtocolError(f"{what} is too long: {size} bytes (at most {max_bytes})")


def _check_participants(participants: object) -> None:
    if not isinstance(participants, tuple):
        raise ProtocolError("participants must be a list of node names")
    if len(participants) > MAX_PARTICIPANTS:
        raise ProtocolError(
            f"participants: {len(participants)} names, at most {MAX_PARTICIPANTS} allowed"
        )
    for name in participants:
        check_node_name(name, "participant")
    if list(participants) != sorted(set(participants)):
        raise ProtocolError("participants must be sorted and distinct")


def _check_attempt(attempt: object) -> None:
    if not isinstance(attempt, int) or isinstance(attempt, bool):
        raise ProtocolError("attempt must be an integer")
    if not 1 <= attempt <= MAX_ATTEMPT:
        raise ProtocolError(f"attempt must be between 1 and {MAX_ATTEMPT}, got {attempt}")
