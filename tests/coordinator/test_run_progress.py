"""What ``run`` shows: waiting lines, both exchanges named, one failure message; busy
ports; plain-text process logs."""

from __future__ import annotations

import json
import socket
import sys
import time

import pytest

from sscjak.coordinator.commands.progress_lines import format_progress, print_progress
from sscjak.coordinator.commands.serve import check_ports_free
from sscjak.coordinator.federation import deployment
from sscjak.coordinator.federation import server_app as flower_server_app
from sscjak.coordinator.federation.deployment import run_flower_analysis
from sscjak.coordinator.federation.errors import FederationError
from sscjak.coordinator.federation.round_settings import RoundSettings
from sscjak.coordinator.federation.secure_round import SEEDS, SUMMARIES, RoundProgress
from sscjak.coordinator.federation.server_app import (
    FlowerTransport,
    too_few_online_message,
    wait_for_nodes,
    with_missing_nodes,
)
from sscjak.coordinator.federation.superlink_process import (
    SuperLinkSettings,
    busy_ports,
    port_in_use,
)
from sscjak.shared.cli_support import UserError
from sscjak.shared.process_control import ProcessGroup, strip_ansi
from sscjak.shared.protocol import UNMASK_REQUEST_KIND
from sscjak.shared.roster import Roster, RosterMember

NAMES = ("centre-a", "centre-b", "centre-c", "centre-d")


def roster(names=NAMES) -> Roster:
    return Roster(tuple(RosterMember(n, f"{i + 1:064x}", None) for i, n in enumerate(names)))


# -- console lines ---------------------------------------------------------------------
def test_reply_lines_name_the_exchange():
    reply = {"event": "reply", "node": "centre-b", "answered": 2, "expected": 4}
    assert format_progress({**reply, "exchange": SUMMARIES}) == "nodes answered 2/4 (centre-b)"
    assert format_progress({**reply, "exchange": SEEDS}) == "seeds revealed 2/4 (centre-b)"


def test_waiting_and_nodes_lines_say_who_is_online_and_who_is_awaited():
    waiting = {
        "event": "waiting",
        "online": ["centre-a", "centre-b", "centre-c"],
        "awaited": ["centre-d"],
        "seconds_left": 24.6,
    }
    assert (
        format_progress(waiting)
        == "waiting for centre-d (online: centre-a, centre-b, centre-c), 25 s left"
    )
    nodes = {"event": "nodes", "online": [], "roster": list(NAMES), "missing": list(NAMES)}
    assert format_progress(nodes) == (
        "nodes online: 0/4 (none); not online: centre-a, centre-b, centre-c, centre-d"
    )


def test_a_failure_is_printed_once_as_the_error(tmp_path, monkeypatch, capsys):
    """print_progress shows no line for 'failed': the raised UserError is the message."""

    def fake_start(settings, app_dir):
        progress = tmp_path / "run" / "progress.jsonl"
        lines = [
            {"event": "nodes", "online": ["centre-a"], "roster": ["centre-a", "centre-b"]},
            {"event": "failed", "reason": "centre-b is not online"},
        ]
        progress.write_text("".join(json.dumps(line) + "\n" for line in lines))
        return 1

    monkeypatch.setattr(deployment, "start_flower_run", fake_start)
    with pytest.raises(FederationError) as failure:
        run_flower_analysis(
            None,  # type: ignore[arg-type]
            tmp_path / "run",
            plan_file=tmp_path / "p",
            roster_file=tmp_path / "r",
            out_file=tmp_path / "o",
            round_settings=RoundSettings(timeout=1, wait_for_nodes=0),
            on_event=print_progress,
        )
    printed = capsys.readouterr().out
    assert "centre-b is not online" in str(failure.value)
    assert "not online" not in printed.replace("not online: ", "")
    assert "failed" not in printed
    print_progress({"event": "failed", "reason": "x"})
    assert capsys.readouterr().out == ""


def test_attempt_lines_group_nodes_that_gave_the_same_reason():
    outcome = RoundProgress(
        attempt=1,
        participants=NAMES,
        answered=(),
        refused={n: "pinned to another participant set" for n in NAMES[:3]},
        missing=("centre-d",),
        exchange=SUMMARIES,
    )
    line = outcome.describe()
    assert line == (
        "attempt 1: 0/4 nodes answered; centre-a, centre-b, centre-c refused: pinned to "
        "another participant set; centre-d did not answer"
    )
    seeds = RoundProgress(1, NAMES, NAMES, exchange=SEEDS)
    assert seeds.describe() == "attempt 1: 4/4 seeds revealed"


def test_failure_messages_name_the_missing_nodes_and_what_to_do():
    message = too_few_online_message(["centre-a", "centre-b"], ["centre-c"])
    assert message.startswith("centre-c is not online (online: centre-a, centre-b)")
    assert "start 'sscjak-node serve' at centre-c" in message
    several = too_few_online_message([], ["centre-a", "centre-b"])
    assert "centre-a, centre-b are not online (online: none)" in several
    assert "until they are online" in several
    assert with_missing_nodes("only 0 nodes left", []) == "only 0 nodes left"
    added = with_missing_nodes("only 0 nodes left.", ["centre-d"])
    assert added.startswith("only 0 nodes left. centre-d was not online when the analysis")
    assert added.count("..") == 0


# -- the ServerApp side ----------------------------------------------------------------
class FakeTransport:
    """Roster nodes come online one after the other, one every ``step`` seconds."""

    def __init__(self, names, step):
        self.roster = roster(names)
        self.started = time.monotonic()
        self.step = step

    def online_nodes(self):
        count = 1 + int((time.monotonic() - self.started) / self.step)
        return {name: i for i, name in enumerate(self.roster.names[:count])}


def test_waiting_reports_who_is_awaited_at_most_every_few_seconds(monkeypatch):
    monkeypatch.setattr(flower_server_app, "WAITING_REPORT_INTERVAL", 0.6)
    monkeypatch.setattr(flower_server_app, "WAITING_REPORT_MIN_GAP", 0.3)
    transport = FakeTransport(("centre-a", "centre-b", "centre-c", "centre-d"), step=100)
    reports: list[tuple[list[str], list[str], float]] = []
    started = time.monotonic()
    online = wait_for_nodes(transport, 4, 1.5, lambda *report: reports.append(report))
    assert time.monotonic() - started >= 1.5
    assert online == {"centre-a": 0}
    assert 2 <= len(reports) <= 3
    first_online, first_awaited, first_left = reports[0]
    assert first_online == ["centre-a"]
    assert first_awaited == ["centre-b", "centre-c", "centre-d"]
    assert 1.0 < first_left <= 1.5
    assert [left for _, _, left in reports] == sorted(
        (left for _, _, left in reports), reverse=True
    )


def test_waiting_stops_once_every_node_is_online():
    transport = FakeTransport(("centre-a", "centre-b"), step=0.4)
    reports: list = []
    online = wait_for_nodes(transport, 2, 30, lambda *report: reports.append(report))
    assert set(online) == {"centre-a", "centre-b"}
    assert reports and reports[0][1] == ["centre-b"]


class RecordingGrid:
    """Answers every pushed message at once with ``{"kind": "ok"}``."""

    def __init__(self, names):
        self.nodes = [
            type("Node", (), {"node_id": i, "public_key": b"", "name": n})()
            for i, n in enumerate(names)
        ]
        self.pushed = []

    def get_nodes(self):
        return self.nodes

    def push_messages(self, messages):
        self.pushed = list(messages)
        return [f"m{i}" for i in range(len(messages))]

    def pull_messages(self, message_ids):
        replies = []
        for message_id in message_ids:
            index = int(message_id[1:])
            reply = type("Reply", (), {})()
            reply.metadata = type(
                "Meta", (), {"reply_to_message_id": message_id, "src_node_id": index}
            )()
            reply.has_error = lambda: False
            replies.append(reply)
        return replies


def test_transport_tells_which_exchange_a_reply_belongs_to(monkeypatch):
    monkeypatch.setattr(flower_server_app, "payload_from_message", lambda reply: {"kind": "ok"})
    monkeypatch.setattr(flower_server_app, "message_content", lambda payload: None)
    monkeypatch.setattr(flower_server_app, "Message", lambda *a, **k: object())
    names = ("centre-a", "centre-b", "centre-c")
    seen: list[tuple[str, str]] = []
    transport = FlowerTransport(
        RecordingGrid(names),
        roster(names),
        on_reply=lambda name, k, n: seen.append((name, transport.exchange_name)),
        poll_interval=0.01,
    )
    transport.exchange({n: {"kind": "sscjak.analysis/2"} for n in names}, timeout=1)
    transport.exchange({n: {"kind": UNMASK_REQUEST_KIND} for n in names}, timeout=1)
    assert [exchange for _, exchange in seen] == [SUMMARIES] * 3 + [SEEDS] * 3


# -- busy ports ------------------------------------------------------------------------
def test_a_busy_port_is_named_before_anything_starts(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        assert port_in_use("127.0.0.1", busy)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            free = probe.getsockname()[1]
        settings = SuperLinkSettings(
            fleet_host="127.0.0.1",
            fleet_port=free,
            control_port=busy,
            database=tmp_path / "db",
            flwr_home=tmp_path,
            certificates=None,
            node_authentication=False,
        )
        assert [port for port, _ in busy_ports(settings)] == [busy]
        with pytest.raises(UserError, match=f"^port {busy} is in use \\(Control API on "):
            check_ports_free(settings)
    check_ports_free(settings)  # free again once the holder is gone


# -- plain-text logs -------------------------------------------------------------------
def test_strip_ansi_removes_colours_and_keeps_the_text():
    coloured = b"\x1b[92mINFO \x1b[0m:      Starting\x1b[1;31m!\x1b[0m\n\x1b]0;title\x07done\n"
    assert strip_ansi(coloured) == b"INFO :      Starting!\ndone\n"


def test_process_logs_are_written_without_escape_sequences(tmp_path):
    script = (
        "import sys\n"
        "print('\\x1b[92mINFO \\x1b[0m: coloured line', flush=True)\n"
        "sys.stderr.write('\\x1b[91mERROR\\x1b[0m: on stderr\\n')\n"
        "import os; print('NO_COLOR=' + os.environ.get('NO_COLOR', ''))\n"
    )
    with ProcessGroup(tmp_path) as processes:
        started = processes.start("child", [sys.executable, "-c", script])
        started.process.wait(timeout=30)
        processes.stop(started)
    text = (tmp_path / "child.log").read_bytes()
    assert b"\x1b" not in text
    assert b"INFO : coloured line" in text and b"ERROR: on stderr" in text
    assert b"NO_COLOR=1" in text


def test_the_random_effects_sum_is_named_in_the_progress_lines(tmp_path) -> None:
    """A heterogeneity plan's second secure sum is told apart from the first, in the
    attempt lines and in the per-reply lines of a real in-process round."""
    import functools

    from sscjak.coordinator.federation.plan_rounds import run_plan_rounds
    from sscjak.coordinator.federation.secure_round import InProcessTransport
    from sscjak.coordinator.synthetic.demo_bundle import demo_centre_folders
    from sscjak.node.guard.analysis_handler import handle_analysis_request
    from sscjak.node.guard.simulated_centres import prepare_simulated_nodes
    from sscjak.shared.plan import Plan

    plan = Plan(outcomes=("tjc",), months=(12,), heterogeneity=True)
    roster, nodes = prepare_simulated_nodes(list(demo_centre_folders().values()), plan, tmp_path)
    transport = InProcessTransport(
        {n: functools.partial(handle_analysis_request, node=c) for n, c in nodes.items()}
    )
    lines: list[str] = []
    rounds = run_plan_rounds(transport, plan, roster, progress=lambda p: lines.append(p.describe()))
    assert rounds.random_effects is not None
    assert lines == [
        "attempt 1: 4/4 nodes answered",
        "attempt 1: 4/4 seeds revealed",
        "attempt 1: 4/4 random-effects sums answered",
        "attempt 1: 4/4 random-effects seeds revealed",
    ]
    reply = {"event": "reply", "exchange": "random-effects", "answered": 2, "expected": 4}
    assert format_progress({**reply, "node": "centre-b"}) == (
        "random-effects sums answered 2/4 (centre-b)"
    )
