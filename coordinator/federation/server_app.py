"""The coordinator's Flower ServerApp: one secure analysis over the connected nodes.

``sscjak-coordinator run`` submits a run whose bundle names
``sscjak.coordinator.federation.server_app:app`` (installed code, not code from the bundle);
Flower's SuperExec on the coordinator's host starts it with a ``Grid`` on the SuperLink.
The app reads the plan, the roster and where to write from the run config, builds a
:class:`FlowerTransport` over the Grid and calls
:func:`sscjak.coordinator.federation.plan_rounds.run_plan_rounds` (the plan's secure sum, and
the random-effects one of a heterogeneity plan); the pooled summary becomes
the results file of docs/results-file.md (:mod:`sscjak.coordinator.results.pooled_results`).

It reports progress as JSON lines in ``progress_file``, which the ``run``/``demo``
commands print (:func:`sscjak.coordinator.federation.deployment.print_progress`); a ServerApp runs
in its own process, so a file is the simplest channel. Events: ``waiting`` (roster nodes
not online yet: who is online, who is awaited, seconds left; at most one every
:data:`WAITING_REPORT_INTERVAL` seconds, sooner when a node comes online), ``nodes``
(who is online when the analysis starts, who is not), ``reply`` (one per reply, with
its exchange: masked summaries or revealed seeds), ``attempt`` (one per exchange of
each attempt), then ``done`` or ``failed`` (with the reason, naming the roster nodes
that were not online and what to do about them).

Node identity: a Flower node id is mapped to a roster name by the node-authentication
public key the SuperLink holds for it (``NodeInfo.public_key``, registered by the
coordinator and proven by the node at every request) against the roster's
``flower_auth_public_key``; a roster member without that key is matched by the name it
was registered under. Each reply must also be signed with the same name inside the
payload (checked by the secure round).
"""

from __future__ import annotations

import json
import time
import traceback
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from sscjak.coordinator.federation.plan_rounds import run_plan_rounds
from sscjak.coordinator.federation.round_settings import RoundSettings
from sscjak.coordinator.federation.secure_round import (
    RANDOM_EFFECTS,
    RANDOM_EFFECTS_SEEDS,
    SEEDS,
    SUMMARIES,
    RoundProgress,
    SecureRoundError,
)
from sscjak.coordinator.results.pooled_results import build_results
from sscjak.coordinator.results.schema import write_results
from sscjak.shared.cli_support import counted
from sscjak.shared.flower_payload import (
    ANALYSIS_MESSAGE_TYPE,
    PING_MESSAGE_TYPE,
    PING_REPLY_KIND,
    message_content,
    payload_from_message,
)
from sscjak.shared.plan import load_plan
from sscjak.shared.protocol import (
    MIN_PARTICIPANTS,
    RANDOM_EFFECTS_REQUEST_KIND,
    UNMASK_REQUEST_KIND,
    Payload,
)
from sscjak.shared.roster import Roster, load_roster

#: Seconds between two pulls of replies from the SuperLink (Flower's own
#: ``Grid.send_and_receive`` sleeps 3 s; a round should not wait for that).
REPLY_POLL_INTERVAL = 0.2

#: Seconds between two ``waiting`` events while roster nodes are awaited (one sooner,
#: but not before :data:`WAITING_REPORT_MIN_GAP`, when the set of online nodes changes).
WAITING_REPORT_INTERVAL = 5.0
WAITING_REPORT_MIN_GAP = 2.0


def _public_key_der(pem: str | bytes) -> bytes | None:
    """The SubjectPublicKeyInfo DER of a PEM public key (a canonical form), else None."""
    try:
        data = pem.encode("ascii") if isinstance(pem, str) else bytes(pem)
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError, UnicodeError):
        return None
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def node_ids_by_name(nodes: Iterable[Any], roster: Roster) -> dict[str, int]:
    """Roster name → Flower node id of the *online* nodes that are roster members."""
    by_key: dict[bytes, str] = {}
    by_registered_name: dict[str, str] = {}
    for member in roster.members:
        der = (
            _public_key_der(member.flower_auth_public_key)
            if member.flower_auth_public_key
            else None
        )
        if der is not None:
            by_key[der] = member.name
        else:
            by_registered_name[member.name] = member.name
    found: dict[str, int] = {}
    for node in nodes:
        status = getattr(node, "status", "online") or "online"
        if status != "online":
            continue
        name = None
        der = _public_key_der(node.public_key) if getattr(node, "public_key", b"") else None
        if der is not None and der in by_key:
            name = by_key[der]
        elif getattr(node, "name", "") in by_registered_name:
            name = by_registered_name[node.name]
        if name is not None:
            found[name] = int(node.node_id)
    return found


class FlowerTransport:
    """:class:`sscjak.coordinator.federation.secure_round.Transport` over a Flower ``Grid``.

    ``exchange`` pushes one message per named node that is online, then pulls replies
    every :data:`REPLY_POLL_INTERVAL` seconds until all came or ``timeout`` passed; a
    node that is offline, unknown, answers with a Flower error or not at all is absent
    from the result (the secure round then reruns without it). ``on_reply(name,
    answered, expected)`` is told about every reply as it arrives; during the call,
    :attr:`exchange_name` says which exchange it belongs to (:data:`SUMMARIES`, or
    :data:`SEEDS` when the requests are unmask requests).
    """

    def __init__(
        self,
        grid: Grid,
        roster: Roster,
        *,
        message_type: str = ANALYSIS_MESSAGE_TYPE,
        on_reply: Callable[[str, int, int], None] | None = None,
        poll_interval: float = REPLY_POLL_INTERVAL,
    ) -> None:
        self.grid = grid
        self.roster = roster
        self.message_type = message_type
        self.on_reply = on_reply
        self.poll_interval = poll_interval
        self.exchanges = 0
        self.exchange_name = SUMMARIES

    def online_nodes(self) -> dict[str, int]:
        """Roster name → node id of the roster members online now."""
        return node_ids_by_name(self.grid.get_nodes(), self.roster)

    def wait_for(self, names: list[str], timeout: float) -> bool:
        """Wait up to ``timeout`` seconds until every named node is online again."""
        deadline = time.monotonic() + timeout
        while not set(names) <= set(self.online_nodes()):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)
        return True

    def exchange(self, requests: dict[str, Payload], timeout: float) -> dict[str, Payload]:
        self.exchanges += 1
        kinds = {p.get("kind") for p in requests.values()}
        if RANDOM_EFFECTS_REQUEST_KIND in kinds:
            self.exchange_name = RANDOM_EFFECTS
        elif UNMASK_REQUEST_KIND in kinds:
            random_effects_before = self.exchange_name == RANDOM_EFFECTS
            self.exchange_name = RANDOM_EFFECTS_SEEDS if random_effects_before else SEEDS
        else:
            self.exchange_name = SUMMARIES
        online = self.online_nodes()
        messages: list[Message] = []
        name_of: dict[int, str] = {}
        for name, payload in requests.items():
            node_id = online.get(name)
            if node_id is None:
                continue
            name_of[node_id] = name
            messages.append(
                Message(
                    message_content(payload),
                    dst_node_id=node_id,
                    message_type=self.message_type,
                    # the SuperLink drops the message, and refuses a reply to it,
                    # once the exchange's time is over: a late answer is worthless
                    ttl=timeout,
                )
            )
        replies: dict[str, Payload] = {}
        if not messages:
            return replies
        pending = set(self.grid.push_messages(messages))
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for reply in self.grid.pull_messages(list(pending)):
                pending.discard(reply.metadata.reply_to_message_id)
                name = name_of.get(reply.metadata.src_node_id)
                if name is None or reply.has_error():
                    continue
                replies[name] = payload_from_message(reply)
                if self.on_reply is not None:
                    self.on_reply(name, len(replies), len(requests))
            if pending:
                time.sleep(self.poll_interval)
        return replies


class ProgressFile:
    """Append-only JSON lines the ``run`` command follows (one object per event)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path

    def write(self, event: str, **fields: Any) -> None:
        if self.path is None:
            return
        line = json.dumps({"event": event, "time": time.time(), **fields}, default=str)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()


def wait_for_nodes(
    transport: FlowerTransport,
    expected: int,
    wait_seconds: float,
    on_wait: Callable[[list[str], list[str], float], None] | None = None,
) -> dict[str, int]:
    """Wait up to ``wait_seconds`` for ``expected`` roster nodes online; return those online.

    While waiting, ``on_wait(online, awaited, seconds_left)`` is called with the sorted
    roster names online and not online: at once, then every
    :data:`WAITING_REPORT_INTERVAL` seconds, and when the online set changes (at least
    :data:`WAITING_REPORT_MIN_GAP` seconds after the previous call).
    """
    started = time.monotonic()
    deadline = started + wait_seconds
    online = transport.online_nodes()
    last_report: float | None = None
    last_online: set[str] | None = None
    while len(online) < expected and time.monotonic() < deadline:
        now = time.monotonic()
        since = None if last_report is None else now - last_report
        if on_wait is not None and (
            since is None
            or since >= WAITING_REPORT_INTERVAL
            or (set(online) != last_online and since >= WAITING_REPORT_MIN_GAP)
        ):
            awaited = [name for name in transport.roster.names if name not in online]
            on_wait(sorted(online), sorted(awaited), max(0.0, deadline - now))
            last_report, last_online = now, set(online)
        time.sleep(0.5)
        online = transport.online_nodes()
    return online


def _names(names: Iterable[str]) -> str:
    return ", ".join(names) or "none"


class NodesNotOnlineError(SecureRoundError):
    """Too few roster nodes online to start: names the missing ones and what to do."""


def _what_to_do(missing: list[str]) -> str:
    one = len(missing) == 1
    return (
        f"start 'sscjak-node serve' at {_names(missing)}, or wait until "
        f"{'it is' if one else 'they are'} online and run again "
        "(--wait-for-nodes sets how long run waits for the nodes)"
    )


def too_few_online_message(online: list[str], missing: list[str]) -> str:
    """The one failure message when too few roster nodes are online to pool."""
    one = len(missing) == 1
    return (
        f"{_names(missing)} {'is' if one else 'are'} not online (online: {_names(online)}); "
        f"secure aggregation needs at least {counted(MIN_PARTICIPANTS, 'node')}. "
        f"To go on, {_what_to_do(missing)}."
    )


def with_missing_nodes(reason: str, missing: list[str]) -> str:
    """``reason``, followed by the roster nodes that were not online and what to do."""
    if not missing:
        return reason
    one = len(missing) == 1
    return (
        f"{reason.rstrip('.')}. {_names(missing)} {'was' if one else 'were'} not online "
        f"when the analysis started: {_what_to_do(missing)}."
    )


def run_analysis_on_grid(grid: Grid, run_config: dict[str, Any]) -> dict[str, Any]:
    """One secure analysis with the settings of ``run_config`` (see :func:`run_config_for`)."""
    progress = ProgressFile(Path(run_config["progress_file"]))
    plan = load_plan(Path(run_config["plan_file"]))
    roster = load_roster(Path(run_config["roster_file"]))
    settings = RoundSettings.from_run_config(run_config)

    def on_reply(name: str, answered: int, expected: int) -> None:
        progress.write(
            "reply",
            node=name,
            answered=answered,
            expected=expected,
            exchange=transport.exchange_name,
        )

    def on_attempt(outcome: RoundProgress) -> None:
        progress.write(
            "attempt",
            attempt=outcome.attempt,
            exchange=outcome.exchange,
            answered=len(outcome.answered),
            expected=len(outcome.participants),
            summary=outcome.describe(),
        )

    def on_wait(online: list[str], awaited: list[str], seconds_left: float) -> None:
        progress.write("waiting", online=online, awaited=awaited, seconds_left=seconds_left)

    transport = FlowerTransport(grid, roster, on_reply=on_reply)
    online = wait_for_nodes(transport, len(roster), settings.wait_for_nodes, on_wait)
    missing = [name for name in roster.names if name not in online]
    progress.write("nodes", online=sorted(online), roster=roster.names, missing=missing)
    only_online = run_config.get("only_online", True)
    if only_online and len(online) < settings.min_nodes:
        raise NodesNotOnlineError(too_few_online_message(sorted(online), missing))
    participants = sorted(online) if only_online else None
    started = time.monotonic()
    try:
        rounds = run_plan_rounds(
            transport,
            plan,
            roster,
            participants=participants,
            settings=settings,
            progress=on_attempt,
        )
    except SecureRoundError as error:
        if not missing:
            raise
        raise SecureRoundError(with_missing_nodes(str(error), missing)) from None
    result = rounds.summary
    results = build_results(
        result.pooled, plan, len(result.participants), rounds.random_effects
    )
    results["participants"] = list(result.participants)
    results["attempts"] = result.attempts
    if result.excluded:
        results["excluded_nodes"] = dict(result.excluded)
    write_results(results, Path(run_config["out_file"]))
    progress.write(
        "done",
        out=run_config["out_file"],
        participants=list(result.participants),
        attempts=result.attempts,
        seconds=time.monotonic() - started,
    )
    return results


def run_ping_rounds(grid: Grid, run_config: dict[str, Any]) -> list[float]:
    """``rounds`` bare query rounds (ping, no data) to time Flower alone; seconds each."""
    progress = ProgressFile(Path(run_config["progress_file"]))
    roster = load_roster(Path(run_config["roster_file"]))
    settings = RoundSettings.from_run_config(run_config)
    transport = FlowerTransport(grid, roster, message_type=PING_MESSAGE_TYPE)
    online = wait_for_nodes(transport, len(roster), settings.wait_for_nodes)
    seconds: list[float] = []
    for _ in range(int(run_config.get("rounds", 1))):
        started = time.monotonic()
        replies = transport.exchange(
            {name: {"kind": "sscjak.ping/1"} for name in online},
            settings.timeout,
        )
        seconds.append(time.monotonic() - started)
        good = sorted(n for n, p in replies.items() if p.get("kind") == PING_REPLY_KIND)
        progress.write("ping", answered=good, seconds=seconds[-1])
    progress.write("done", ping_seconds=seconds)
    return seconds


app = ServerApp()

#: Flower requires a bundle to name a ClientApp too. sscjak nodes never run the bundle
#: (they answer with their installed code only); a stock Flower node that did would find
#: this app without any handler and answer nothing.
client_app_not_used = ClientApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Entry point Flower calls: the run config says what to do (analysis or ping)."""
    run_config = dict(context.run_config)
    progress = ProgressFile(Path(str(run_config["progress_file"])))
    try:
        if run_config.get("mode", "analysis") == "ping":
            run_ping_rounds(grid, run_config)
        else:
            run_analysis_on_grid(grid, run_config)
    except Exception as error:  # reported to the waiting command, then re-raised for Flower
        progress.write("failed", reason=str(error), trace=traceback.format_exc()[-2000:])
        raise
